use super::*;
use crate::cmd::fake::{self, event_line, transfer};
use proto::api::Direction;
use proto::transfer::TransferId;
use proto::{PeerName, SecretKey};

const SUBSCRIBE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{}}"#;
const PEERS: &str = r#"{"jsonrpc":"2.0","id":2,"method":"peers","params":{}}"#;
const SEND: &str = r#"{"jsonrpc":"2.0","id":3,"method":"send_files","params":{"peer":"bob","path":"/home/alice/photos"}}"#;
const PEERS_NO_WAIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"peers","params":{}}"#;
const SEND_NO_WAIT: &str = r#"{"jsonrpc":"2.0","id":2,"method":"send_files","params":{"peer":"bob","path":"/home/alice/photos"}}"#;

/// The call `send /home/alice/photos bob` makes.
fn photos() -> Call {
    Call::SendFiles {
        peer: "bob".into(),
        path: "/home/alice/photos".into(),
        paths: Vec::new(),
    }
}

fn at(state: TransferState) -> TransferInfo {
    transfer(Direction::Out, state)
}

fn running(done_bytes: u64) -> TransferInfo {
    TransferInfo {
        done_bytes,
        rate: 4_300_000,
        eta_secs: Some(21),
        ..at(TransferState::Running)
    }
}

fn bob(online: bool) -> PeerInfo {
    PeerInfo {
        name: PeerName::new("bob").expect("name"),
        id: SecretKey::from_seed([1; 32]).peer_id(),
        addrs: vec![],
        online,
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

fn json(t: &TransferInfo) -> String {
    serde_json::to_string(t).expect("json")
}

fn peers(online: bool) -> String {
    serde_json::to_string(&[bob(online)]).expect("json")
}

fn progress(t: &TransferInfo) -> String {
    event_line(&Event::TransferProgress {
        transfer: t.clone(),
    })
}

fn updated(t: &TransferInfo) -> String {
    event_line(&Event::TransferUpdated {
        transfer: t.clone(),
    })
}

/// Subscribed, bob online or not, then `send_files` answered with `first` followed by
/// `events`.
fn script_for(online: bool, first: &TransferInfo, events: Vec<String>) -> Vec<Vec<String>> {
    let mut reply = vec![fake::ok(3, &json(first))];
    reply.extend(events);
    vec![
        vec![fake::ok(1, r#"{"subscribed":true}"#)],
        vec![fake::ok(2, &peers(online))],
        reply,
    ]
}

/// As [`script_for`] with bob online.
fn script(first: &TransferInfo, events: Vec<String>) -> Vec<Vec<String>> {
    script_for(true, first, events)
}

/// What a run printed, and how it ended.
struct Ran {
    requests: Vec<String>,
    res: Result<(), Error>,
    stdout: String,
    stderr: String,
}

async fn send_with(
    replies: Vec<Vec<String>>,
    show: Show,
    no_wait: bool,
    stop: impl Future<Output = ()>,
) -> Ran {
    let (client, daemon) = fake::daemon(replies, vec![]);
    let mut out = Out::new(Vec::new());
    let mut notes = Out::new(Vec::new());
    let run = async {
        let mut client = client;
        run(
            &mut client,
            &mut out,
            &mut notes,
            show,
            photos(),
            no_wait,
            stop,
        )
        .await
    };
    let (requests, res) = tokio::join!(daemon, run);
    Ran {
        requests,
        res,
        stdout: String::from_utf8(out.into_inner()).expect("utf8"),
        stderr: String::from_utf8(notes.into_inner()).expect("utf8"),
    }
}

async fn send(replies: Vec<Vec<String>>, show: Show) -> Ran {
    send_with(replies, show, false, std::future::pending()).await
}

#[tokio::test]
async fn waits_for_done_and_says_so() {
    let other = TransferInfo {
        id: TransferId([9; 16]),
        ..at(TransferState::Failed)
    };
    let events = vec![
        updated(&other),
        updated(&at(TransferState::Offered)),
        updated(&TransferInfo {
            rate: 0,
            eta_secs: None,
            ..running(0)
        }),
        progress(&running(6_448_742)),
        progress(&running(9_000_000)),
        updated(&at(TransferState::Done)),
    ];
    let ran = send(script(&at(TransferState::Queued), events), Show::Plain).await;
    ran.res.expect("done");
    assert_eq!(ran.requests, [SUBSCRIBE, PEERS, SEND]);
    assert_eq!(ran.stdout, "bob has all 3 files (12.3 MiB) verified\n");
    // Events come faster than one a second here: one progress line only; then the time it
    // took and the average rate (measured here, so only their shape is known).
    let (lines, last) = ran.stderr.rsplit_once("sent ").expect("a summary");
    assert_eq!(
        lines,
        "offered 3 files (12.3 MiB) to bob (id abcd1234); waiting for bob to accept \
         (ctrl-c stops waiting; the offer stays)\n\
         bob accepted; sending 3 files (12.3 MiB)\n\
         6.1 MiB / 12.3 MiB  4.1 MiB/s  ETA 21 s\n"
    );
    assert!(last.starts_with("3 files to bob: 12.3 MiB in "), "{last}");
    assert!(last.ends_with("/s)\n"), "{last}");
}

#[tokio::test]
async fn directories_left_out_for_an_older_receiver_are_said_once() {
    let older = |t: TransferInfo| TransferInfo {
        dirs_left_out: 2,
        ..t
    };
    let events = vec![
        updated(&older(at(TransferState::Offered))),
        updated(&older(running(0))),
        updated(&older(at(TransferState::Done))),
    ];
    let line = "left out 2 empty directories: bob's p2pd speaks p2p-bulk/2, which carries \
                files only";
    let ran = send(
        script(&at(TransferState::Queued), events.clone()),
        Show::Plain,
    )
    .await;
    ran.res.expect("the files arrived: success");
    assert_eq!(ran.stdout, "bob has all 3 files (12.3 MiB) verified\n");
    assert_eq!(ran.stderr.matches(line).count(), 1, "{}", ran.stderr);
    assert!(
        ran.stderr.starts_with("offered 3 files") && ran.stderr.contains(&format!("\n{line}\n")),
        "{}",
        ran.stderr
    );
    // `--json`: said on stderr too, and every state on stdout carries the count.
    let ran = send(script(&at(TransferState::Queued), events), Show::Json).await;
    ran.res.expect("done");
    assert_eq!(ran.stderr.matches(line).count(), 1, "{}", ran.stderr);
    let last: serde_json::Value =
        serde_json::from_str(ran.stdout.lines().last().unwrap_or_default()).expect("json");
    assert_eq!(last["dirs_left_out"], 2, "{}", ran.stdout);
    // One directory, and an older p2pd's states (no count): nothing said.
    let one = TransferInfo {
        dirs_left_out: 1,
        ..at(TransferState::Done)
    };
    assert_eq!(
        wait::Note::DirsLeftOut.text(&one),
        "left out 1 empty directory: bob's p2pd speaks p2p-bulk/2, which carries files only"
    );
    let ran = send(
        script(
            &at(TransferState::Queued),
            vec![updated(&at(TransferState::Done))],
        ),
        Show::Plain,
    )
    .await;
    assert!(!ran.stderr.contains("left out"), "{}", ran.stderr);
    assert!(!json(&at(TransferState::Done)).contains("dirs_left_out"));
}

#[tokio::test]
async fn an_offline_peer_is_said_once_and_waited_for() {
    let events = vec![
        updated(&at(TransferState::Queued)),
        event_line(&Event::PeerJoined { peer: bob(true) }),
        event_line(&Event::TransferOffered {
            transfer: at(TransferState::Offered),
        }),
        updated(&at(TransferState::Done)),
    ];
    let ran = send(
        script_for(false, &at(TransferState::Queued), events),
        Show::Plain,
    )
    .await;
    ran.res.expect("done");
    assert_eq!(
        ran.stderr.lines().next(),
        Some(
            "bob is offline; the offer waits in p2pd until bob is back (ctrl-c stops waiting; \
             the offer stays)"
        )
    );
    assert_eq!(
        ran.stderr.matches("is offline").count(),
        1,
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "bob has all 3 files (12.3 MiB) verified\n");
}

#[tokio::test]
async fn queued_for_an_online_peer_is_not_called_offline() {
    let ran = send(
        script(
            &at(TransferState::Queued),
            vec![updated(&at(TransferState::Declined))],
        ),
        Show::Plain,
    )
    .await;
    assert!(ran.res.is_err());
    assert_eq!(ran.stderr, "");
}

#[tokio::test]
async fn the_peer_leaving_mid_transfer_is_said() {
    let events = vec![
        updated(&running(0)),
        event_line(&Event::PeerLeft { peer: bob(false) }),
        event_line(&Event::PeerJoined { peer: bob(true) }),
        updated(&at(TransferState::Done)),
    ];
    let ran = send(script(&at(TransferState::Offered), events), Show::Plain).await;
    ran.res.expect("done");
    assert!(
        ran.stderr
            .contains("\nbob went offline; the transfer goes on when bob is back\n"),
        "{}",
        ran.stderr
    );
}

#[tokio::test]
async fn declined_cancelled_failed_and_expired_exit_one() {
    for (state, error, text) in [
        (
            TransferState::Declined,
            Some("not now"),
            "bob declined the offer: not now",
        ),
        (
            TransferState::Cancelled,
            None,
            "transfer abcd1234 to bob was cancelled",
        ),
        (
            TransferState::Failed,
            Some("hash mismatch"),
            "transfer abcd1234 to bob failed: hash mismatch",
        ),
        (
            TransferState::Expired,
            Some(proto::transfer::OFFER_EXPIRED),
            "transfer abcd1234 to bob expired: bob did not decide in time",
        ),
    ] {
        let end = TransferInfo {
            error: error.map(Into::into),
            ..at(state)
        };
        let ran = send(
            script(&at(TransferState::Offered), vec![updated(&end)]),
            Show::Plain,
        )
        .await;
        let err = ran.res.expect_err("not done");
        assert_eq!(err.to_string(), text);
        assert_eq!(err.exit_code(), std::process::ExitCode::from(1));
        assert_eq!(ran.stdout, "");
    }
}

#[tokio::test]
async fn json_prints_every_state_of_this_transfer() {
    let other = TransferInfo {
        id: TransferId([9; 16]),
        ..running(5)
    };
    let events = vec![
        progress(&other),
        // p2pd announces the offer with the state `send_files` returned: not repeated.
        event_line(&Event::TransferOffered {
            transfer: at(TransferState::Offered),
        }),
        progress(&running(100)),
        updated(&at(TransferState::Done)),
    ];
    let ran = send(script(&at(TransferState::Offered), events), Show::Json).await;
    ran.res.expect("done");
    let states: Vec<TransferInfo> = ran
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one TransferInfo per line"))
        .collect();
    assert_eq!(
        states,
        [
            at(TransferState::Offered),
            running(100),
            at(TransferState::Done)
        ]
    );
    // Notes still go to stderr.
    assert!(ran.stderr.starts_with("offered 3 files"), "{}", ran.stderr);
    // A refusal still prints its state before failing.
    let ran = send(
        script(
            &at(TransferState::Offered),
            vec![updated(&at(TransferState::Declined))],
        ),
        Show::Json,
    )
    .await;
    assert!(ran.res.is_err());
    assert_eq!(ran.stdout.lines().count(), 2);
    assert!(ran.stdout.contains(r#""state":"declined""#));
}

#[tokio::test]
async fn no_wait_prints_the_id_and_returns() {
    let id = at(TransferState::Offered).id.to_string();
    for (online, line) in [
        (true, format!("offered {id} to bob: 3 files, 12.3 MiB\n")),
        (
            false,
            format!("queued {id} for bob (offline): 3 files, 12.3 MiB\n"),
        ),
    ] {
        let replies = vec![
            vec![fake::ok(1, &peers(online))],
            vec![fake::ok(2, &json(&at(TransferState::Queued)))],
        ];
        let ran = send_with(replies, Show::Plain, true, std::future::pending()).await;
        ran.res.expect("offered");
        assert_eq!(ran.requests, [PEERS_NO_WAIT, SEND_NO_WAIT]);
        assert_eq!(ran.stdout, line);
        assert_eq!(ran.stderr, "");
    }
    let raw = json(&at(TransferState::Queued));
    let ran = send_with(
        vec![vec![fake::ok(1, &peers(false))], vec![fake::ok(2, &raw)]],
        Show::Json,
        true,
        std::future::pending(),
    )
    .await;
    ran.res.expect("queued");
    assert_eq!(ran.stdout, format!("{raw}\n"));
}

#[test]
fn no_wait_names_a_changed_key() {
    let t = at(TransferState::Queued);
    assert_eq!(
        no_wait_line(&t, Reach::KeyChanged),
        format!(
            "queued {} for bob (not sent: the tracker shows another key for bob; see 'p2pctl \
             peers'): 3 files, 12.3 MiB",
            t.id
        )
    );
}

#[test]
fn no_wait_says_directories_alone() {
    let t = TransferInfo {
        files: 0,
        total_bytes: 0,
        ..at(TransferState::Offered)
    };
    assert_eq!(
        no_wait_line(&t, Reach::Online),
        format!("offered {} to bob: directories (no file)", t.id)
    );
}

#[tokio::test]
async fn lost_events_are_recovered_from_the_list() {
    let mut replies = script(
        &at(TransferState::Offered),
        vec![event_line(&Event::Lagged { missed: 9 })],
    );
    let other = TransferInfo {
        id: TransferId([9; 16]),
        ..at(TransferState::Running)
    };
    let list = serde_json::to_string(&[other, at(TransferState::Done)]).expect("json");
    replies.push(vec![fake::ok(4, &list)]);
    let ran = send(replies, Show::Plain).await;
    ran.res.expect("done");
    assert_eq!(
        ran.requests[3],
        r#"{"jsonrpc":"2.0","id":4,"method":"transfers","params":{"all":true}}"#
    );
    assert_eq!(ran.stdout, "bob has all 3 files (12.3 MiB) verified\n");
}

#[tokio::test]
async fn daemon_going_away_fails() {
    let ran = send(
        script(&at(TransferState::Offered), vec![progress(&running(1))]),
        Show::Plain,
    )
    .await;
    assert!(matches!(ran.res, Err(Error::Closed)), "{:?}", ran.res.err());
}

#[tokio::test]
async fn daemon_errors_fail_before_waiting() {
    let error = r#"{"jsonrpc":"2.0","id":3,"error":{"code":1001,"message":"no known peer matches \"zed\""}}"#;
    let replies = vec![
        vec![fake::ok(1, r#"{"subscribed":true}"#)],
        vec![fake::ok(2, "[]")],
        vec![error.into()],
    ];
    let ran = send(replies, Show::Plain).await;
    assert!(matches!(ran.res, Err(Error::Rpc(e)) if e.code == 1001));
    assert_eq!((ran.stdout.as_str(), ran.stderr.as_str()), ("", ""));
}

#[tokio::test]
async fn ctrl_c_stops_waiting_and_succeeds() {
    // The daemon keeps the connection open: only `stop` can end the wait.
    let (client, daemon) = fake::daemon_held_open(
        script_for(false, &at(TransferState::Queued), vec![]),
        vec![],
    );
    let mut out = Out::new(Vec::new());
    let mut notes = Out::new(Vec::new());
    let run = async {
        let mut client = client;
        run(
            &mut client,
            &mut out,
            &mut notes,
            Show::Plain,
            photos(),
            false,
            std::future::ready(()),
        )
        .await
    };
    let (_, res) = tokio::join!(daemon, run);
    res.expect("stopping is not a failure");
    assert!(out.into_inner().is_empty());
    let stderr = String::from_utf8(notes.into_inner()).expect("utf8");
    assert!(stderr.starts_with("bob is offline; "), "{stderr}");
    assert!(
        stderr.ends_with(
            "stopped waiting; transfer abcd1234 goes on in p2pd ('p2pctl transfers' shows it, \
             'p2pctl cancel abcd1234' stops it)\n"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_bar_keeps_stdout_for_the_outcome() {
    let events = vec![
        progress(&running(1_000_000)),
        updated(&at(TransferState::Done)),
    ];
    let ran = send(
        script(&at(TransferState::Offered), events),
        Show::Bar(ProgressDrawTarget::hidden()),
    )
    .await;
    ran.res.expect("done");
    assert_eq!(ran.stdout, "bob has all 3 files (12.3 MiB) verified\n");
    // Notes are printed above the bar, and the summary after it.
    assert_eq!(ran.stderr.lines().count(), 3, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("\nsent 3 files to bob: 12.3 MiB in "),
        "{}",
        ran.stderr
    );
}

#[test]
fn plain_lines_at_most_every_second() {
    let start = Instant::now();
    let mut last = None;
    assert!(due(&mut last, start));
    assert!(!due(&mut last, start + Duration::from_millis(999)));
    assert!(due(&mut last, start + Duration::from_secs(1)));
    assert!(!due(&mut last, start + Duration::from_millis(1500)));
    assert!(due(&mut last, start + Duration::from_millis(2001)));
}

#[test]
fn bar_messages() {
    let queued = at(TransferState::Queued);
    assert_eq!(
        bar_message(&queued, Reach::Offline, 80),
        "waiting for bob to come online"
    );
    assert_eq!(bar_message(&queued, Reach::Online, 80), "offering to bob");
    assert_eq!(
        bar_message(&queued, Reach::KeyChanged, 80),
        "not sent: bob's key changed"
    );
    assert_eq!(
        bar_message(&at(TransferState::Offered), Reach::Online, 80),
        "waiting for bob to accept"
    );
    assert_eq!(
        bar_message(&running(0), Reach::Online, 80),
        "4.1 MiB/s  ETA 21 s"
    );
    assert_eq!(
        bar_message(&running(0), Reach::Offline, 80),
        "paused: bob is offline"
    );
    assert_eq!(
        bar_message(
            &TransferInfo {
                eta_secs: None,
                ..running(0)
            },
            Reach::Online,
            80
        ),
        "4.1 MiB/s"
    );
    // Too narrow for both: the ETA goes, then the rate; never cut in the middle.
    assert_eq!(bar_message(&running(0), Reach::Online, 12), "4.1 MiB/s");
    assert_eq!(bar_message(&running(0), Reach::Online, 5), "");
    let hashing = TransferInfo {
        state: TransferState::Scanning,
        ..running(0)
    };
    assert_eq!(
        bar_message(&hashing, Reach::Online, 80),
        "hashing  4.1 MiB/s  ETA 21 s"
    );
}

#[test]
fn paths_are_made_canonical_or_refused() {
    let dir = std::env::temp_dir();
    let canonical = std::fs::canonicalize(&dir).expect("temp dir");
    assert_eq!(
        absolute_path(&dir).expect("exists"),
        canonical.to_str().expect("utf8")
    );
    let err = absolute_path(Path::new("no-such-file-p2pctl\u{1b}[1m")).expect_err("missing");
    assert_eq!(
        err.to_string(),
        "cannot send no-such-file-p2pctl\\e[1m: no such file or directory"
    );
    assert_eq!(err.exit_code(), std::process::ExitCode::from(1));
}

#[cfg(unix)]
#[test]
fn non_utf8_paths_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    let path = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/\xff"));
    let err = utf8(path).expect_err("not UTF-8");
    assert!(
        err.to_string()
            .ends_with("is not valid UTF-8, which p2pd's control API cannot carry"),
        "{err}"
    );
}

#[tokio::test]
async fn hashing_is_said_with_its_progress_then_a_scan_failure_exits_one() {
    let scanning = |done_bytes| TransferInfo {
        done_bytes,
        rate: 0,
        eta_secs: None,
        local_path: Some("/home/alice/photos".into()),
        ..at(TransferState::Scanning)
    };
    let failed = TransferInfo {
        error: Some("cannot read /home/alice/photos/a: permission denied".into()),
        ..scanning(0)
    };
    let failed = TransferInfo {
        state: TransferState::Failed,
        ..failed
    };
    let events = vec![progress(&scanning(1_048_576)), updated(&failed)];
    let ran = send(script(&scanning(0), events), Show::Plain).await;
    let err = ran.res.expect_err("failed");
    assert_eq!(
        err.to_string(),
        "transfer abcd1234 to bob failed: cannot read /home/alice/photos/a: permission denied"
    );
    assert_eq!(err.exit_code(), std::process::ExitCode::from(1));
    assert_eq!(
        ran.stderr,
        "hashing /home/alice/photos ...\nhashed 1.0 MiB / 12.3 MiB\n"
    );
    // Without waiting: the id, and where to look.
    let ran = send_with(
        vec![
            vec![fake::ok(1, &peers(true))],
            vec![fake::ok(2, &json(&scanning(0)))],
        ],
        Show::Plain,
        true,
        std::future::pending(),
    )
    .await;
    ran.res.expect("answered");
    assert_eq!(ran.requests, [PEERS_NO_WAIT, SEND_NO_WAIT]);
    assert!(
        ran.stdout
            .starts_with("hashing /home/alice/photos for bob (transfer abcd1234"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_pull_waits_for_the_owner_then_says_what_arrived_where() {
    let mut pull = transfer(Direction::In, TransferState::Queued);
    pull.kind = proto::api::TransferKind::Pull;
    let mut wait = Wait::new(&pull, Reach::Online);
    let Step::Waiting(Some(note)) = wait.update(&pull) else {
        panic!("no note for a pull waiting for its offer");
    };
    assert!(
        note.text(&pull).starts_with("asked bob for it"),
        "{}",
        note.text(&pull)
    );
    assert_eq!(
        bar_message(&pull, Reach::Online, 80),
        "waiting for bob",
        "the owner's hashing shows as waiting"
    );
    let done = TransferInfo {
        state: TransferState::Done,
        local_path: Some("/home/alice/in".into()),
        ..pull
    };
    assert_eq!(
        wait.update(&done),
        Step::Finished {
            code: 0,
            text: "got 3 files (12.3 MiB) from bob, verified, in /home/alice/in".into()
        }
    );
}

#[test]
fn several_paths_go_as_paths_and_one_as_path() {
    assert_eq!(
        call("bob".into(), vec!["/a".into()]),
        Call::SendFiles {
            peer: "bob".into(),
            path: "/a".into(),
            paths: Vec::new(),
        }
    );
    assert_eq!(
        call("bob".into(), vec!["/a".into(), "/b".into()]),
        Call::SendFiles {
            peer: "bob".into(),
            path: String::new(),
            paths: vec!["/a".into(), "/b".into()],
        }
    );
}

#[test]
fn two_paths_of_one_name_are_refused_and_skipped_entries_are_named() {
    let tmp = tempfile_dir();
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    std::fs::create_dir_all(a.join("x/sub")).expect("mkdir");
    std::fs::create_dir_all(b.join("x")).expect("mkdir");
    let err = absolute_paths(&[a.join("x"), b.join("x")]).expect_err("same name");
    assert!(err.to_string().contains("both would arrive as x"), "{err}");
    // What p2pd's answer says it left out, neutralised.
    let skipped = proto::api::Skipped {
        path: "x/sub/l\u{1b}[2Jink".into(),
        reason: "symlink (not followed)".into(),
    };
    assert_eq!(
        skipped_line(&skipped),
        r"skipped x/sub/l\e[2Jink: symlink (not followed)"
    );
    std::fs::remove_dir_all(&tmp).expect("clean up");
}

/// A fresh directory of this test process.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("p2pctl-send-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}
