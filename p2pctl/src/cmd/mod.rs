//! One module per command. Each takes the open [`Client`](crate::client::Client) and an
//! [`Out`], so tests can run it against a fake daemon and capture what it prints.

mod accept;
mod chat;
mod docs;
mod history;
mod log;
mod ls;
mod msg;
mod peers;
mod put;
mod rekey;
mod send;
mod share;
mod status;
mod transfers;
mod trust;
mod versions;
mod watch;

use std::io::{IsTerminal as _, Write as _};

use proto::api::{
    Call, Granted, Listing, LocalShare, MessageInfo, PeerInfo, Rekeyed, Revoked, ShareChanged,
    Status, Subscribed, TransferInfo, VersionList,
};
use proto::peer_ref::{self, Known, ResolveError};
use proto::reach::Reach;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cli::{Cli, Command, ShareAction, TransfersAction};
use crate::client::{self, Client, Notice};
use crate::error::Error;
use crate::lines::{LineReader, Tail};
use crate::output::{self, Out};
use crate::socket;
use accept::Answer;
use trust::Mark;

/// The next notification named `method` (others are skipped); `Ok(None)` once `stop`
/// completes; [`Error::Closed`] if p2pd closes the connection first.
pub(crate) async fn next_notice_of<S: AsyncRead + AsyncWrite>(
    client: &mut Client<S>,
    method: &str,
    mut stop: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<Option<Notice>, Error> {
    loop {
        let notice = tokio::select! {
            biased;
            () = &mut stop => return Ok(None),
            notice = client.next_notice() => notice?,
        };
        match notice {
            None => return Err(Error::Closed),
            Some(n) if n.method == method => return Ok(Some(n)),
            Some(_) => {}
        }
    }
}

/// Checks a `log --since` TIME, for the command-line parser.
pub(crate) fn check_since(text: &str) -> Result<(), String> {
    log::since(text, 0).map(|_| ())
}

/// Runs the command line: works out the socket, connects, and dispatches.
pub(crate) async fn run(cli: Cli) -> Result<(), Error> {
    // Local paths are checked first: a missing PATH is the user's error (exit 1) whether or
    // not p2pd runs.
    let sending = match &cli.command {
        Command::Send { paths, .. } => send::absolute_paths(paths)?,
        _ => Vec::new(),
    };
    let local = match &cli.command {
        Command::Put { path, .. } => Some(put::absolute_src(path)?),
        Command::Accept { to: Some(dir), .. } => Some(accept::absolute_dir(dir)?),
        Command::Get {
            dest: Some(dir), ..
        } => Some(accept::absolute_dir(dir)?),
        Command::Share {
            action: ShareAction::Add { dir, .. },
        } => Some(share::absolute_dir(dir)?),
        _ => None,
    };
    match cli.command {
        Command::Completions { shell } => return docs::completions(shell, &mut std::io::stdout()),
        Command::Manpage => return docs::manpage(&mut std::io::stdout()),
        _ => {}
    }
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
        Command::Log {
            peer,
            since,
            limit,
            follow,
        } => {
            let since = match since {
                Some(text) => {
                    let now = u64::try_from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap_or_default()
                            .as_millis(),
                    )
                    .unwrap_or(u64::MAX);
                    Some(log::since(&text, now).map_err(Error::Failed)?)
                }
                None => None,
            };
            let following = || {
                // Best effort: a closed stderr must not stop the stream.
                let _ = writeln!(
                    std::io::stderr(),
                    "following the activity log (ctrl-c to stop)"
                );
            };
            let q = log::Query {
                peer,
                since,
                limit,
                follow,
            };
            log::run(
                &mut client,
                &mut out,
                cli.json,
                q,
                following,
                watch::interrupted(),
            )
            .await
        }
        Command::History { peer, limit } => {
            history::run(&mut client, &mut out, cli.json, peer, limit).await
        }
        Command::Chat { peer, last } => {
            let interactive = std::io::stdin().is_terminal();
            let options = chat::Options {
                json: cli.json,
                interactive,
                drain: chat::DRAIN,
                last,
            };
            // The line editor when both ends are a terminal; stdin as it is otherwise, or
            // when the terminal cannot host an editor (TERM=dumb).
            if interactive
                && !cli.json
                && std::io::stdout().is_terminal()
                && let Ok((mut input, out, notes)) = chat::editor::Editor::start()
            {
                let (mut out, mut notes) = (Out::new(out), Out::new(notes));
                let stop = watch::interrupted();
                return chat::run(
                    &mut client,
                    &mut out,
                    &mut notes,
                    &mut input,
                    &peer,
                    options,
                    stop,
                )
                .await;
            }
            // One byte over the message limit, so a CRLF line of exactly the limit still fits.
            let mut input = LineReader::new(
                tokio::io::BufReader::new(tokio::io::stdin()),
                proto::peer::MAX_TEXT + 1,
                Tail::Keep,
            );
            let mut notes = Out::new(std::io::stderr());
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
            let show = send::Show::for_stderr(cli.json);
            let mut notes = Out::new(std::io::stderr());
            let several = sending.len() > 1;
            let sent = send::run(
                &mut client,
                &mut out,
                &mut notes,
                show,
                send::call(peer, sending),
                no_wait,
                watch::interrupted(),
            )
            .await;
            match sent {
                // A p2pd older than `paths` refuses the field.
                Err(Error::Rpc(e))
                    if several && e.code == -32602 && e.message.contains("paths") =>
                {
                    Err(Error::Failed(
                        "this p2pd takes one path at a time; upgrade it, or send each path \
                         on its own"
                            .into(),
                    ))
                }
                other => other,
            }
        }
        Command::Transfers { all, action } => match action {
            None => transfers::run(&mut client, &mut out, cli.json, all).await,
            Some(TransfersAction::Clear) => transfers::clear(&mut client, &mut out, cli.json).await,
        },
        Command::Accept { id, mkdir, .. } => {
            let answer = Answer::Accept { to: local, mkdir };
            accept::run(&mut client, &mut out, cli.json, answer, id).await
        }
        Command::Decline { id } => {
            accept::run(&mut client, &mut out, cli.json, Answer::Decline, id).await
        }
        Command::Cancel { id } => {
            accept::run(&mut client, &mut out, cli.json, Answer::Cancel, id).await
        }
        Command::Share { action } => {
            let (json, out) = (cli.json, &mut out);
            match action {
                ShareAction::Add {
                    name,
                    keep_versions,
                    max_version_bytes,
                    max_version_age,
                    quota,
                    ..
                } => {
                    let path = local.unwrap_or_default();
                    let call = Call::ShareAdd {
                        name,
                        path,
                        keep_versions,
                        max_version_bytes,
                        max_version_age,
                        quota,
                    };
                    show(&mut client, out, json, call, |s: LocalShare| {
                        share::added(&s)
                    })
                    .await
                }
                ShareAction::Rm { name } => {
                    let call = Call::ShareRm { name };
                    show(&mut client, out, json, call, |s: LocalShare| {
                        share::removed(&s)
                    })
                    .await
                }
                ShareAction::Ls => {
                    show(&mut client, out, json, Call::ShareLs {}, share::table).await
                }
            }
        }
        Command::Grant { share, peer, right } => {
            let call = Call::Grant {
                share,
                peer,
                right: right.into(),
            };
            show(&mut client, &mut out, cli.json, call, |g: Granted| {
                share::granted(&g)
            })
            .await
        }
        Command::Revoke { share, peer } => {
            let call = Call::Revoke { share, peer };
            show(&mut client, &mut out, cli.json, call, |r: Revoked| {
                share::revoked(&r)
            })
            .await
        }
        Command::Get {
            target,
            no_wait,
            from,
            ..
        } => {
            let show = send::Show::for_stderr(cli.json);
            let mut notes = Out::new(std::io::stderr());
            let stop = watch::interrupted();
            let (peer, share, path) = ls::pull_target(&target)?;
            let call = Call::Get {
                peer,
                share,
                path,
                dest: local,
                from,
            };
            let (c, o, n) = (&mut client, &mut out, &mut notes);
            send::run(c, o, n, show, call, no_wait, stop).await
        }
        Command::Put { target, force, .. } => {
            let (peer, share, at) = put::target(&target)?;
            let call = Call::Put {
                peer,
                share,
                path: at,
                src: local.unwrap_or_default(),
                force,
            };
            // Progress comes on a second connection; without it, only the outcome.
            let events = if cli.json {
                None
            } else {
                client::connect(&path).await.ok()
            };
            put::run(&mut client, events, &mut out, cli.json, call).await
        }
        Command::Versions { target } => {
            let t = versions::target(&target, "versions", false)?;
            let call = Call::Versions {
                peer: t.peer,
                share: t.share,
                path: t.path,
            };
            show(&mut client, &mut out, cli.json, call, |l: VersionList| {
                versions::table(&l)
            })
            .await
        }
        Command::Restore { target, version } => {
            let t = versions::target(&target, "restore", false)?;
            let call = Call::Restore {
                peer: t.peer,
                share: t.share,
                path: t.path,
                version,
            };
            show(&mut client, &mut out, cli.json, call, |c: ShareChanged| {
                versions::changed("restore", &c)
            })
            .await
        }
        Command::Rm { target } => {
            let (call, verb) = (versions::rm_call(&target)?, "rm");
            show(&mut client, &mut out, cli.json, call, |c: ShareChanged| {
                versions::changed(verb, &c)
            })
            .await
        }
        Command::Mkdir { target } => {
            let (call, verb) = (versions::mkdir_call(&target)?, "mkdir");
            show(&mut client, &mut out, cli.json, call, |c: ShareChanged| {
                versions::changed(verb, &c)
            })
            .await
        }
        // Answered above, without p2pd.
        Command::Completions { .. } | Command::Manpage => Ok(()),
        Command::Mv { from, to } => {
            let call = versions::mv_call(&from, &to)?;
            show(&mut client, &mut out, cli.json, call, |c: ShareChanged| {
                versions::changed("mv", &c)
            })
            .await
        }
        Command::Ls {
            target,
            long,
            recursive,
        } => {
            let call = ls::call(&target, long, recursive);
            show(&mut client, &mut out, cli.json, call, |l: Listing| {
                ls::render(&l, long)
            })
            .await
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

/// Whether to wait for p2pd to deliver to `p`: some source sees it and nothing holds what
/// is sent to it ([`Reach::Online`]). p2pd also dials a peer at its last known address (the
/// address book), but such a peer may be gone and a failed dial is not reported, so nothing
/// is waited for there: what was sent stays queued, and p2pd keeps trying.
pub(crate) fn awaited(p: &PeerInfo) -> bool {
    Reach::of(p) == Reach::Online
}

/// The peer `arg` names among `peers` (from `peers`), by the rule p2pd applies
/// ([`proto::peer_ref::resolve`]), so that a mistake reads the same whichever command made
/// it. When it names nobody, p2pd is asked who it is itself, so that naming oneself is said
/// as such.
pub(crate) async fn resolve<'a, S: AsyncRead + AsyncWrite>(
    client: &mut Client<S>,
    peers: &'a [PeerInfo],
    arg: &str,
) -> Result<&'a PeerInfo, Error> {
    // A name a pin or a tracker binds is not the name of an unverified peer claiming it, and
    // a pinned peer (verified, sharing its name with no one) outranks the others of its name.
    let wins = |q: &PeerInfo| q.verified && q.same_name.is_empty();
    let known: Vec<Known<'_>> = peers
        .iter()
        .filter(|p| {
            let other = |q: &&PeerInfo| q.id != p.id && q.name == p.name;
            (p.verified || !peers.iter().filter(other).any(|q| q.verified))
                && (wins(p) || !peers.iter().filter(other).any(wins))
        })
        .map(|p| Known {
            name: &p.name,
            id: p.id,
        })
        .collect();
    let id = match peer_ref::resolve(arg, &known, None) {
        Ok(id) => id,
        Err(ResolveError::NameClash(c)) => {
            let by = |id| {
                peers
                    .iter()
                    .find(|p| p.id == id)
                    .map(|p| p.trackers.clone())
                    .unwrap_or_default()
            };
            return Err(ResolveError::NameClash(c.with_trackers(by)).into());
        }
        Err(ResolveError::Unknown(_)) => {
            let me = client.call::<Status>(Call::Status {}).await?.value;
            let me = Known {
                name: &me.name,
                id: me.id,
            };
            peer_ref::resolve(arg, &known, Some(me))?
        }
        Err(e) => return Err(e.into()),
    };
    peers
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| ResolveError::unknown(arg).into())
}

/// Test support: a client wired to a fake daemon that answers from a script.
#[cfg(test)]
pub(crate) mod fake {
    use proto::api::{
        Direction, Resources, Status, TrackerLinkState, TrackerStatus, TransferInfo, TransferKind,
        TransferState,
    };
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

    /// A `status` answer (request `id`) from a daemon named `name` whose key has seed `seed`.
    pub(crate) fn status(id: u64, name: &str, seed: u8) -> String {
        let status = Status {
            name: PeerName::new(name).expect("name"),
            id: SecretKey::from_seed([seed; 32]).peer_id(),
            version: "0.1.0".into(),
            listen: "127.0.0.1:4000".parse().expect("addr"),
            socket: "/run/p2pd.sock".into(),
            tracker: Some(TrackerStatus {
                addr: "127.0.0.1:7000".into(),
                key: None,
                state: TrackerLinkState::Registered,
                detail: None,
                since: 1,
            }),
            sources: Vec::new(),
            peers_online: 0,
            peers_known: 0,
            resources: Resources {
                pid: 1,
                rss_bytes: 0,
                cpu_percent: 0.0,
                uptime_secs: 0,
            },
        };
        ok(id, &serde_json::to_string(&status).expect("json"))
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
            kind: match direction {
                Direction::Out => TransferKind::Send,
                Direction::In => TransferKind::Receive,
            },
            created_at: None,
            ended_at: None,
            landed: Vec::new(),
            sources: Vec::new(),
            dirs_left_out: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{PeerName, SecretKey};

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
            same_name: Vec::new(),
            trackers: Vec::new(),
            sources: Vec::new(),
            verified: true,
        }
    }

    #[tokio::test]
    async fn resolves_without_asking_more_of_p2pd() {
        let peers = [peer("bob", 1), peer("carol", 2)];
        let (mut client, daemon) = fake::daemon(vec![], vec![]);
        let prefix = peers[1].id.to_string()[..8].to_owned();
        let (requests, found) = tokio::join!(daemon, async {
            let by_name = resolve(&mut client, &peers, "BOB").await.map(|p| p.id);
            let by_id = resolve(&mut client, &peers, &prefix).await.map(|p| p.id);
            (by_name.expect("name"), by_id.expect("prefix"))
        });
        assert_eq!(found, (peers[0].id, peers[1].id));
        assert!(requests.is_empty(), "{requests:?}");
    }

    #[tokio::test]
    async fn an_unknown_peer_is_checked_against_ourselves_and_neutralised() {
        let peers = [peer("bob", 1)];
        let replies = vec![
            vec![fake::status(1, "alice", 9)],
            vec![fake::status(2, "alice", 9)],
        ];
        let (mut client, daemon) = fake::daemon(replies, vec![]);
        let (_, (myself, hostile)) = tokio::join!(daemon, async {
            let myself = resolve(&mut client, &peers, "alice").await.map(|p| p.id);
            let hostile = resolve(&mut client, &peers, "\u{1b}[2J")
                .await
                .map(|p| p.id);
            (myself, hostile)
        });
        let myself = myself.expect_err("ourselves");
        assert_eq!(myself.to_string(), "'alice' is you: name another peer");
        assert!(myself.hint().is_some_and(|h| h.contains("p2pctl peers")));
        let hostile = hostile.expect_err("unknown");
        assert!(
            hostile.to_string().starts_with("unknown peer '\\e[2J'"),
            "{hostile}"
        );
    }
}
