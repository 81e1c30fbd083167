//! One module per command. Each takes the open [`Client`](crate::client::Client) and an
//! [`Out`], so tests can run it against a fake daemon and capture what it prints.

mod accept;
mod chat;
mod history;
mod msg;
mod peers;
mod rekey;
mod send;
mod status;
mod transfers;
mod trust;
mod watch;

use std::io::{IsTerminal as _, Write as _};

use proto::PeerName;
use proto::api::{Call, MessageInfo, PeerInfo, Rekeyed, Subscribed, TransferInfo};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cli::{Cli, Command};
use crate::client::{self, Client, Notice};
use crate::error::Error;
use crate::lines::{LineReader, Tail};
use crate::output::{self, Out, clean};
use crate::socket;
use accept::Answer;
use trust::Mark;

/// Runs the command line: works out the socket, connects, and dispatches.
pub(crate) async fn run(cli: Cli) -> Result<(), Error> {
    // Local paths are checked first: a missing PATH is the user's error (exit 1) whether or
    // not p2pd runs.
    let local = match &cli.command {
        Command::Send { path, .. } => Some(send::absolute_path(path)?),
        Command::Accept { to: Some(dir), .. } => Some(accept::absolute_dir(dir)?),
        _ => None,
    };
    let path = socket::resolve(cli.socket)?;
    let mut client = client::connect(&path).await?;
    let mut out = Out::new(std::io::stdout());
    match cli.command {
        Command::Status => status::run(&mut client, &mut out, cli.json).await,
        Command::Peers => peers::run(&mut client, &mut out, cli.json).await,
        Command::Watch => {
            let subscribed = || {
                // Best effort: a closed stderr must not stop the stream.
                let line = format!("watching p2pd at {} (ctrl-c to stop)", path.display());
                let _ = writeln!(std::io::stderr(), "{}", output::clean(&line));
            };
            watch::run(
                &mut client,
                &mut out,
                cli.json,
                subscribed,
                watch::interrupted(),
            )
            .await
        }
        Command::Msg { peer, text } => {
            let text = text.join(" ");
            msg::run(
                &mut client,
                &mut out,
                cli.json,
                peer,
                text,
                msg::DELIVERY_WAIT,
            )
            .await
        }
        Command::History { peer, limit } => {
            history::run(&mut client, &mut out, cli.json, peer, limit).await
        }
        Command::Chat { peer } => {
            let interactive = std::io::stdin().is_terminal();
            // One byte over the message limit, so a CRLF line of exactly the limit still fits.
            let mut input = LineReader::new(
                tokio::io::BufReader::new(tokio::io::stdin()),
                proto::peer::MAX_TEXT + 1,
                Tail::Keep,
            );
            let mut notes = Out::new(std::io::stderr());
            let options = chat::Options {
                json: cli.json,
                interactive,
                drain: chat::DRAIN,
            };
            chat::run(
                &mut client,
                &mut out,
                &mut notes,
                &mut input,
                &peer,
                options,
                watch::interrupted(),
            )
            .await
        }
        Command::Trust { peer, auto_accept } => {
            let mark = Mark::Trust { auto_accept };
            trust::run(&mut client, &mut out, cli.json, mark, peer).await
        }
        Command::Untrust { peer } => {
            trust::run(&mut client, &mut out, cli.json, Mark::Untrust, peer).await
        }
        Command::Block { peer } => {
            trust::run(&mut client, &mut out, cli.json, Mark::Block, peer).await
        }
        Command::Unblock { peer } => {
            trust::run(&mut client, &mut out, cli.json, Mark::Unblock, peer).await
        }
        Command::ForgetKey { peer, force } => {
            trust::run(
                &mut client,
                &mut out,
                cli.json,
                Mark::ForgetKey { force },
                peer,
            )
            .await
        }
        Command::Rekey => {
            let render = |r: Rekeyed| rekey::explain(&r);
            show(&mut client, &mut out, cli.json, Call::Rekey {}, render).await
        }
        Command::Send { peer, no_wait, .. } => {
            let show = if cli.json {
                send::Show::Json
            } else if std::io::stderr().is_terminal() {
                send::Show::Bar(indicatif::ProgressDrawTarget::stderr())
            } else {
                send::Show::Plain
            };
            let mut notes = Out::new(std::io::stderr());
            send::run(
                &mut client,
                &mut out,
                &mut notes,
                show,
                local.unwrap_or_default(),
                peer,
                no_wait,
                watch::interrupted(),
            )
            .await
        }
        Command::Transfers => transfers::run(&mut client, &mut out, cli.json).await,
        Command::Accept { id, .. } => {
            let answer = Answer::Accept { to: local };
            accept::run(&mut client, &mut out, cli.json, answer, id).await
        }
        Command::Decline { id } => {
            accept::run(&mut client, &mut out, cli.json, Answer::Decline, id).await
        }
        Command::Cancel { id } => {
            accept::run(&mut client, &mut out, cli.json, Answer::Cancel, id).await
        }
    }
}

/// Makes one call and prints its answer: exactly as received with `--json`, else as
/// `render` draws it.
pub(crate) async fn show<T, S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
    call: Call,
    render: impl FnOnce(T) -> String,
) -> Result<(), Error>
where
    T: serde::de::DeserializeOwned,
    S: AsyncRead + AsyncWrite,
    W: std::io::Write,
{
    let reply = client.call::<T>(call).await?;
    if json {
        out.line(&reply.raw)
    } else {
        out.block(&render(reply.value))
    }
}

/// Subscribes to events; from the answer on, every event reaches this connection.
pub(crate) async fn subscribe<S: AsyncRead + AsyncWrite>(
    client: &mut Client<S>,
) -> Result<(), Error> {
    let reply = client.call::<Subscribed>(Call::Subscribe {}).await?;
    if reply.value.subscribed {
        Ok(())
    } else {
        Err(Error::Protocol(
            "p2pd did not confirm the subscription".into(),
        ))
    }
}

/// The `message` of a `message_received` / `message_updated` event as the daemon sent it;
/// `message` re-encoded if the raw text cannot be picked out.
pub(crate) fn message_raw(notice: &Notice, message: &MessageInfo) -> String {
    #[derive(Deserialize)]
    struct Carrier<'a> {
        #[serde(borrow)]
        message: &'a RawValue,
    }
    match serde_json::from_str::<Carrier<'_>>(&notice.raw_params) {
        Ok(c) => c.message.get().to_owned(),
        Err(_) => serde_json::to_string(message).unwrap_or_default(),
    }
}

/// The `transfer` of a `transfer_*` event as the daemon sent it; `transfer` re-encoded if the
/// raw text cannot be picked out.
pub(crate) fn transfer_raw(notice: &Notice, transfer: &TransferInfo) -> String {
    #[derive(Deserialize)]
    struct Carrier<'a> {
        #[serde(borrow)]
        transfer: &'a RawValue,
    }
    match serde_json::from_str::<Carrier<'_>>(&notice.raw_params) {
        Ok(c) => c.transfer.get().to_owned(),
        Err(_) => serde_json::to_string(transfer).unwrap_or_default(),
    }
}

/// Whether p2pd sends messages to `p` now: online, not blocked, no changed key. Otherwise
/// messages to it stay queued, so there is nothing to wait for.
pub(crate) fn deliverable(p: &PeerInfo) -> bool {
    p.online && !p.blocked && p.key_conflict.is_none()
}

/// Picks the peer a command-line argument names, the way p2pd does: its name (case folded),
/// else a unique id prefix of at least 8 characters.
pub(crate) fn resolve<'a>(peers: &'a [PeerInfo], arg: &str) -> Result<&'a PeerInfo, Error> {
    if let Ok(name) = PeerName::new(arg)
        && let Some(p) = peers.iter().find(|p| p.name == name)
    {
        return Ok(p);
    }
    let prefix = arg.to_ascii_lowercase();
    let matches: Vec<&PeerInfo> = if prefix.len() >= proto::identity::MIN_PREFIX_CHARS {
        peers
            .iter()
            .filter(|p| p.id.matches_prefix(&prefix))
            .collect()
    } else {
        Vec::new()
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::Failed(format!(
            "unknown peer '{}': give its name or at least 8 characters of its id \
             ('p2pctl peers' lists them)",
            clean(arg)
        ))),
        many => Err(Error::Failed(format!(
            "'{}' matches {} peers ({}); give more of the id",
            clean(arg),
            many.len(),
            many.iter()
                .map(|p| clean(p.name.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Test support: a client wired to a fake daemon that answers from a script.
#[cfg(test)]
pub(crate) mod fake {
    use proto::api::{Direction, TransferInfo, TransferState};
    use proto::transfer::TransferId;
    use proto::{PeerName, SecretKey};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

    use crate::client::Client;

    /// A client whose daemon reads one request line per entry of `replies` and answers it
    /// with that entry's lines, then sends `after` and closes the connection.
    /// Returns the client and a future that runs the daemon and yields the requests it read.
    pub(crate) fn daemon(
        replies: Vec<Vec<String>>,
        after: Vec<String>,
    ) -> (Client<DuplexStream>, impl Future<Output = Vec<String>>) {
        script(replies, after, false)
    }

    /// Like [`daemon`], but after `after` the daemon keeps the connection open (recording,
    /// without answering, any further request) until the client is dropped.
    pub(crate) fn daemon_held_open(
        replies: Vec<Vec<String>>,
        after: Vec<String>,
    ) -> (Client<DuplexStream>, impl Future<Output = Vec<String>>) {
        script(replies, after, true)
    }

    fn script(
        replies: Vec<Vec<String>>,
        after: Vec<String>,
        hold: bool,
    ) -> (Client<DuplexStream>, impl Future<Output = Vec<String>>) {
        let (a, b) = tokio::io::duplex(256 * 1024);
        let server = async move {
            let (read, mut write) = tokio::io::split(b);
            let mut lines = BufReader::new(read).lines();
            let mut requests = Vec::new();
            for reply in replies {
                let Ok(Some(req)) = lines.next_line().await else {
                    break;
                };
                requests.push(req);
                for line in reply {
                    write
                        .write_all(format!("{line}\n").as_bytes())
                        .await
                        .expect("write");
                }
            }
            for line in after {
                write
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .expect("write");
            }
            if hold {
                while let Ok(Some(req)) = lines.next_line().await {
                    requests.push(req);
                }
            }
            requests
        };
        (Client::new(a), server)
    }

    /// An `event` notification line carrying `event`.
    pub(crate) fn event_line(event: &proto::api::Event) -> String {
        let params = serde_json::to_string(event).expect("json");
        format!(r#"{{"jsonrpc":"2.0","method":"event","params":{params}}}"#)
    }

    /// A JSON-RPC success response line.
    pub(crate) fn ok(id: u64, result: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
    }

    /// A transfer with bob (`abcd1234...`): 3 files, 12.3 MiB, nothing done yet.
    pub(crate) fn transfer(direction: Direction, state: TransferState) -> TransferInfo {
        let mut id = [0x55; 16];
        id[..4].copy_from_slice(&[0xab, 0xcd, 0x12, 0x34]);
        TransferInfo {
            id: TransferId(id),
            peer: SecretKey::from_seed([1; 32]).peer_id(),
            peer_name: PeerName::new("bob").expect("name"),
            direction,
            state,
            files: 3,
            sample: vec![
                "photos/a.jpg".into(),
                "photos/b.jpg".into(),
                "notes.txt".into(),
            ],
            total_bytes: 12_897_485,
            done_bytes: 0,
            rate: 0,
            eta_secs: None,
            local_path: match direction {
                Direction::Out => Some("/home/alice/photos".into()),
                Direction::In => None,
            },
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;

    fn peer(name: &str, seed: u8) -> PeerInfo {
        PeerInfo {
            name: PeerName::new(name).expect("name"),
            id: SecretKey::from_seed([seed; 32]).peer_id(),
            addrs: vec![],
            online: true,
            since: 1,
            trusted: false,
            auto_accept: false,
            blocked: false,
            key_conflict: None,
            sources: Vec::new(),
            verified: true,
        }
    }

    #[test]
    fn resolves_names_and_id_prefixes() {
        let peers = [peer("bob", 1), peer("carol", 2)];
        let bob = &peers[0];
        assert_eq!(resolve(&peers, "bob").expect("name").id, bob.id);
        assert_eq!(resolve(&peers, "BOB").expect("folded").id, bob.id);
        let id = bob.id.to_string();
        assert_eq!(resolve(&peers, &id[..8]).expect("prefix").id, bob.id);
        assert_eq!(
            resolve(&peers, &id.to_uppercase()).expect("whole id").id,
            bob.id
        );
        let err = resolve(&peers, &id[..7]).expect_err("short prefix");
        assert!(err.to_string().starts_with("unknown peer "), "{err}");
        assert!(resolve(&peers, "dave").is_err());
        assert!(resolve(&[], "bob").is_err());
    }

    #[test]
    fn a_name_wins_over_a_prefix_and_ambiguity_is_an_error() {
        let mut twin = peer("twin", 3);
        let mut other = peer("other", 4);
        // Make two ids share an 8-character prefix by giving one peer the other's id text
        // as its name: the name match must win.
        let prefix = twin.id.to_string()[..8].to_owned();
        other.name = PeerName::new(&prefix).expect("name");
        let peers = [twin.clone(), other.clone()];
        assert_eq!(resolve(&peers, &prefix).expect("name").id, other.id);
        // Two peers with the same id (not possible in practice) make a prefix ambiguous.
        twin.name = PeerName::new("twin2").expect("name");
        let dup = [peer("twin", 3), twin];
        let err = resolve(&dup, &prefix).expect_err("ambiguous");
        assert!(
            err.to_string().contains("matches 2 peers (twin, twin2)"),
            "{err}"
        );
    }

    #[test]
    fn hostile_arguments_are_neutralised_in_errors() {
        let err = resolve(&[], "\u{1b}[2J").expect_err("unknown");
        assert!(
            err.to_string().starts_with("unknown peer '\\e[2J'"),
            "{err}"
        );
    }
}
