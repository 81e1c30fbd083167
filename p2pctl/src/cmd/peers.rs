//! `p2pctl peers`: every known peer with its short id, address, state, the sources that see
//! it, since when, and the user's settings for it (trusted, auto-accept, blocked) plus a
//! changed-key warning.

use std::io::Write;

use proto::api::{Call, PeerInfo};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::Client;
use crate::error::Error;
use crate::output::{self, Out, Table, addresses, clean, relative_time};

/// Asks for the known peers and prints them.
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    super::show(client, out, json, Call::Peers {}, |v: Vec<PeerInfo>| {
        render(v, output::unix_now())
    })
    .await
}

/// The human table, sorted by name, or a sentence when there is nobody. Peers whose key
/// changed get a line each under the table saying what to do.
fn render(mut peers: Vec<PeerInfo>, now: u64) -> String {
    if peers.is_empty() {
        return "no known peers\n".into();
    }
    peers.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()).then(a.id.cmp(&b.id)));
    let mut table = Table::new(&[
        "NAME", "ID", "ADDRESS", "STATE", "SOURCES", "SINCE", "FLAGS",
    ]);
    for p in &peers {
        table.row(vec![
            clean(p.name.as_str()),
            p.id.short(),
            addresses(&p.addrs),
            if p.online { "online" } else { "offline" }.into(),
            sources(p),
            relative_time(p.since, now),
            flags(p),
        ]);
    }
    let mut text = table.render();
    for p in peers.iter().filter(|p| p.key_conflict.is_some()) {
        let name = clean(p.name.as_str());
        let other = p
            .key_conflict
            .as_ref()
            .map(|k| k.short())
            .unwrap_or_default();
        text.push_str(&format!(
            "\nKEY CHANGED: the tracker shows {name} with key {other}, not the pinned {}. \
             Links to {name} are refused. If {name} really has a new key, run \
             'p2pctl forget-key {name}'.\n",
            p.id.short()
        ));
    }
    let mut told: Vec<&str> = Vec::new();
    for p in peers.iter().filter(|p| !p.same_name.is_empty()) {
        if told.contains(&p.name.as_str()) {
            continue;
        }
        told.push(p.name.as_str());
        let name = clean(p.name.as_str());
        let holders: Vec<String> = peers
            .iter()
            .filter(|q| q.name == p.name && (q.id == p.id || p.same_name.contains(&q.id)))
            .map(|q| match q.trackers.as_slice() {
                [] => q.id.short(),
                by => format!("{} (by {})", q.id.short(), clean(&by.join(", "))),
            })
            .collect();
        text.push_str(&format!(
            "\nAMBIGUOUS: trackers bind {name} to different keys: {}. Nothing is sent to \
             {name} by name: name one by its key prefix, or pin one with 'p2pctl trust \
             KEYPREFIX'.\n",
            holders.join(", ")
        ));
    }
    text
}

/// The SOURCES cell: what sees the peer (`tracker`, `link`...) and `book` when the address
/// book knows where to dial it, joined by commas; `-` when none.
fn sources(p: &PeerInfo) -> String {
    if p.sources.is_empty() {
        return "-".into();
    }
    let words: Vec<&str> = p.sources.iter().map(|s| s.as_str()).collect();
    words.join(",")
}

/// The FLAGS cell: `trusted`, `auto` (auto-accept), `blocked`, `KEY CHANGED`, joined by
/// commas; `-` when none applies.
pub(crate) fn flags(p: &PeerInfo) -> String {
    let mut flags = Vec::new();
    if p.trusted {
        flags.push("trusted");
    }
    if p.auto_accept {
        flags.push("auto");
    }
    if p.blocked {
        flags.push("blocked");
    }
    if p.key_conflict.is_some() {
        flags.push("KEY CHANGED");
    }
    if !p.same_name.is_empty() {
        flags.push("AMBIGUOUS");
    }
    if flags.is_empty() {
        "-".into()
    } else {
        flags.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::fake;
    use proto::api::PeerSource;
    use proto::{PeerName, SecretKey};

    fn peer(name: &str, seed: u8, addrs: &[&str], online: bool, since: u64) -> PeerInfo {
        PeerInfo {
            name: PeerName::new(name).expect("name"),
            id: SecretKey::from_seed([seed; 32]).peer_id(),
            addrs: addrs.iter().map(|a| a.parse().expect("addr")).collect(),
            online,
            since,
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
    fn table_of_peers() {
        let mut bob = peer("bob", 1, &["127.0.0.1:4000"], true, 1_000_000 - 180);
        bob.sources = vec![PeerSource::Tracker, PeerSource::Link];
        let mut carol = peer(
            "carol",
            2,
            &["10.0.0.2:4000", "[::1]:4000"],
            false,
            1_000_000 - 7200,
        );
        carol.sources = vec![PeerSource::Book];
        let al = peer("al", 3, &[], false, 0);
        let (b, c, a) = (bob.id.short(), carol.id.short(), al.id.short());
        assert_eq!(b.len(), 12);
        assert_eq!(
            render(vec![carol, bob, al], 1_000_000),
            format!(
                "NAME   ID            ADDRESS           STATE    SOURCES       SINCE      FLAGS\n\
                 al     {a}  -                 offline  -             -          -\n\
                 bob    {b}  127.0.0.1:4000    online   tracker,link  3 min ago  -\n\
                 carol  {c}  10.0.0.2:4000 +1  offline  book          2 h ago    -\n"
            )
        );
    }

    #[test]
    fn flags_and_changed_keys() {
        let mut bob = peer("bob", 1, &["127.0.0.1:4000"], true, 1_000_000 - 5);
        assert_eq!(flags(&bob), "-");
        bob.trusted = true;
        assert_eq!(flags(&bob), "trusted");
        bob.auto_accept = true;
        assert_eq!(flags(&bob), "trusted,auto");
        let mut eve = peer("eve", 2, &[], false, 1_000_000 - 5);
        eve.blocked = true;
        let other = SecretKey::from_seed([9; 32]).peer_id();
        eve.key_conflict = Some(other);
        assert_eq!(flags(&eve), "blocked,KEY CHANGED");
        let (b, e) = (bob.id.short(), eve.id.short());
        assert_eq!(
            render(vec![eve, bob], 1_000_000),
            format!(
                "NAME  ID            ADDRESS         STATE    SOURCES  SINCE    FLAGS\n\
                 bob   {b}  127.0.0.1:4000  online   -        5 s ago  trusted,auto\n\
                 eve   {e}  -               offline  -        5 s ago  blocked,KEY CHANGED\n\
                 \n\
                 KEY CHANGED: the tracker shows eve with key {o}, not the pinned {e}. \
                 Links to eve are refused. If eve really has a new key, run \
                 'p2pctl forget-key eve'.\n",
                o = other.short()
            )
        );
    }

    #[test]
    fn nobody_known() {
        assert_eq!(render(Vec::new(), 0), "no known peers\n");
    }

    #[tokio::test]
    async fn json_empty_list() {
        let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, "[]")]], vec![]);
        let mut out = Out::new(Vec::new());
        let (requests, res) = tokio::join!(daemon, run(&mut client, &mut out, true));
        res.expect("peers");
        assert_eq!(
            requests,
            [r#"{"jsonrpc":"2.0","id":1,"method":"peers","params":{}}"#]
        );
        assert_eq!(out.into_inner(), b"[]\n");
    }

    #[tokio::test]
    async fn rpc_error_fails() {
        let error =
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"internal error"}}"#;
        let (mut client, daemon) = fake::daemon(vec![vec![error.into()]], vec![]);
        let mut out = Out::new(Vec::new());
        let (_, res) = tokio::join!(daemon, run(&mut client, &mut out, false));
        assert!(matches!(res, Err(Error::Rpc(e)) if e.code == -32603));
        assert!(out.into_inner().is_empty());
    }
}
