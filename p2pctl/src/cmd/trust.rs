//! `p2pctl trust PEER [--auto-accept]`, `untrust`, `block`, `unblock`, `forget-key`: the
//! per-peer settings. They share one shape (a peer in, the updated [`PeerInfo`] out), so they
//! share this module.

use std::io::Write;

use proto::api::{Call, PeerInfo};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::Client;
use crate::error::Error;
use crate::output::{Out, clean};

/// Which setting to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Trust, optionally auto-accepting file offers.
    Trust {
        /// Accept file offers without asking.
        auto_accept: bool,
    },
    /// Remove trust and auto-accept.
    Untrust,
    /// Refuse links and messages.
    Block,
    /// Lift a block.
    Unblock,
    /// Forget the pinned key (`force`: even with no other key shown for the name).
    ForgetKey {
        /// Even without a key conflict.
        force: bool,
    },
}

impl Mark {
    /// The request for `peer`.
    fn call(self, peer: String) -> Call {
        match self {
            Mark::Trust { auto_accept } => Call::Trust { peer, auto_accept },
            Mark::Untrust => Call::Untrust { peer },
            Mark::Block => Call::Block { peer },
            Mark::Unblock => Call::Unblock { peer },
            Mark::ForgetKey { force } => Call::ForgetKey { peer, force },
        }
    }
}

/// Changes the setting and prints a one-line confirmation (or the [`PeerInfo`] with `--json`).
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
    mark: Mark,
    peer: String,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    let reply = client.call::<PeerInfo>(mark.call(peer)).await?;
    if json {
        out.line(&reply.raw)
    } else {
        out.line(&confirmation(mark, &reply.value))
    }
}

/// The confirmation line, worded from the peer's state as the daemon reports it.
fn confirmation(mark: Mark, p: &PeerInfo) -> String {
    let name = clean(p.name.as_str());
    let mut line = match mark {
        Mark::Trust { .. } => format!(
            "{name} is trusted (auto-accept {})",
            if p.auto_accept { "on" } else { "off" }
        ),
        Mark::Untrust => format!("{name} is no longer trusted"),
        Mark::Block => format!("{name} is blocked: no links or messages from it"),
        Mark::Unblock => format!("{name} is no longer blocked"),
        Mark::ForgetKey { .. } => format!(
            "{name} is now pinned to key {} (trust is not carried over to a new key)",
            p.id
        ),
    };
    if p.blocked && !matches!(mark, Mark::Block) {
        line.push_str(&format!(" (note: {name} is blocked)"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::fake;
    use proto::{PeerName, SecretKey};

    fn bob() -> PeerInfo {
        PeerInfo {
            name: PeerName::new("bob").expect("name"),
            id: SecretKey::from_seed([1; 32]).peer_id(),
            addrs: vec![],
            online: true,
            since: 1,
            trusted: false,
            auto_accept: false,
            blocked: false,
            key_conflict: None,
            same_name: Vec::new(),
            trackers: Vec::new(),
            sources: Vec::new(),
            verified: true,
        }
    }

    #[test]
    fn confirmations() {
        let mut p = bob();
        p.trusted = true;
        assert_eq!(
            confirmation(Mark::Trust { auto_accept: false }, &p),
            "bob is trusted (auto-accept off)"
        );
        p.auto_accept = true;
        assert_eq!(
            confirmation(Mark::Trust { auto_accept: true }, &p),
            "bob is trusted (auto-accept on)"
        );
        let p = bob();
        assert_eq!(confirmation(Mark::Untrust, &p), "bob is no longer trusted");
        assert_eq!(confirmation(Mark::Unblock, &p), "bob is no longer blocked");
        assert_eq!(
            confirmation(Mark::ForgetKey { force: false }, &p),
            format!(
                "bob is now pinned to key {} (trust is not carried over to a new key)",
                p.id
            )
        );
        let mut p = bob();
        p.blocked = true;
        assert_eq!(
            confirmation(Mark::Block, &p),
            "bob is blocked: no links or messages from it"
        );
        assert_eq!(
            confirmation(Mark::Trust { auto_accept: false }, &p),
            "bob is trusted (auto-accept off) (note: bob is blocked)"
        );
    }

    #[tokio::test]
    async fn sends_the_right_request_and_prints_json_verbatim() {
        let info = serde_json::to_string(&bob()).expect("json");
        let cases = [
            (
                Mark::Trust { auto_accept: true },
                r#"{"jsonrpc":"2.0","id":1,"method":"trust","params":{"peer":"bob","auto_accept":true}}"#,
            ),
            (
                Mark::Untrust,
                r#"{"jsonrpc":"2.0","id":1,"method":"untrust","params":{"peer":"bob"}}"#,
            ),
            (
                Mark::Block,
                r#"{"jsonrpc":"2.0","id":1,"method":"block","params":{"peer":"bob"}}"#,
            ),
            (
                Mark::Unblock,
                r#"{"jsonrpc":"2.0","id":1,"method":"unblock","params":{"peer":"bob"}}"#,
            ),
            (
                Mark::ForgetKey { force: false },
                r#"{"jsonrpc":"2.0","id":1,"method":"forget_key","params":{"peer":"bob"}}"#,
            ),
            (
                Mark::ForgetKey { force: true },
                r#"{"jsonrpc":"2.0","id":1,"method":"forget_key","params":{"peer":"bob","force":true}}"#,
            ),
        ];
        for (mark, request) in cases {
            let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, &info)]], vec![]);
            let mut out = Out::new(Vec::new());
            let (requests, res) =
                tokio::join!(daemon, run(&mut client, &mut out, true, mark, "bob".into()));
            res.expect("ok");
            assert_eq!(requests, [request]);
            assert_eq!(
                String::from_utf8(out.into_inner()).expect("utf8"),
                format!("{info}\n")
            );
        }
    }

    #[tokio::test]
    async fn unknown_peer_fails() {
        let error =
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":1001,"message":"unknown peer \"zed\""}}"#;
        let (mut client, daemon) = fake::daemon(vec![vec![error.into()]], vec![]);
        let mut out = Out::new(Vec::new());
        let (_, res) = tokio::join!(
            daemon,
            run(&mut client, &mut out, false, Mark::Block, "zed".into())
        );
        let err = res.expect_err("unknown peer");
        assert_eq!(err.to_string(), "unknown peer \"zed\"");
        assert_eq!(err.exit_code(), std::process::ExitCode::from(1));
        assert!(out.into_inner().is_empty());
    }
}
