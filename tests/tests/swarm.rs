//! Multi-source `get --from` between real daemons: alice, carol and dave each share `rel`
//! holding the same file, and grant bob read. bob's `get alice:rel/os.iso --from
//! carol,dave` lands the right bytes and every source contributes (`transfers` lists it as
//! a pull with each source's bytes); a source killed in the middle leaves the rest to the
//! others; bob killed in the middle keeps the chunks already written, and p2pd resumes the
//! download when it starts again (no `get`), fetching only what is missing, or nothing when
//! the file reached the destination meanwhile. Without `--from`, bob draws from the peers
//! that hold the content and let him read it (carol), not from one that holds it but does
//! not (dave). A cancelled download stays cancelled across a restart. mallory, a hostile
//! source built here, claims every chunk and sends wrong bytes: bob drops it after its first
//! chunk, names it in his activity log, and the file is right; as a staller (claims every
//! chunk, sends none) what it was asked comes from alice instead. alice revoking bob's read
//! mid-download ends it cancelled with `access revoked`, nothing left; so does a revoke
//! made while bob is down, when his p2pd resumes the download (though carol and dave still
//! let him read their copies), while dave's revoke alone leaves the resume to the others.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use p2p_tests::raw::random_key;
use p2p_tests::share_raw::hostile_source;
use p2p_tests::swarm::{answer, finish, listed, sources, start_plain_get, wait_listed};
use p2p_tests::sys::NetNs;
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, assert_content, ended, entries, progress, register_raw_at, sigkill,
    wait_no_parts, write_pattern,
};
use p2p_tests::{CmdOutput, DEADLINE, P2pd, TestNet, Tracker, poll};

/// A tracker, bob and three seeders of one file.
struct Swarm {
    bob: P2pd,
    seeders: Vec<P2pd>,
    data: Vec<u8>,
    tracker: Tracker,
}

#[track_caller]
fn ok(net: &TestNet, who: &P2pd, args: &[&str]) -> CmdOutput {
    let out = net.ctl(who, args);
    out.assert_success();
    out
}

/// Starts the daemons; each seeder shares a copy of `len` bytes as `rel/os.iso` and grants
/// bob read; returns once bob sees each copy hashed.
fn swarm(net: &TestNet, len: usize) -> Swarm {
    let tracker = net.spawn_tracker(None);
    let t = tracker.addr_string();
    let bob = net.spawn_p2pd("bob", &t, &[]);
    let seeders: Vec<P2pd> = ["alice", "carol", "dave"]
        .iter()
        .map(|n| net.spawn_p2pd(n, &t, &[]))
        .collect();
    let mut data = Vec::new();
    for s in &seeders {
        s.wait_peer("bob", true, DEADLINE);
        bob.wait_peer(&s.name, true, DEADLINE);
        let dir = net.unique_dir(&format!("rel-{}", s.name));
        data = write_pattern(&dir.join("os.iso"), len, 7);
        ok(net, s, &["share", "add", "rel", dir.to_str().unwrap()]);
        ok(net, s, &["grant", "rel", "bob", "read"]);
    }
    for s in &seeders {
        let target = format!("{}:rel", s.name);
        poll(TRANSFER_DEADLINE, Duration::from_millis(50), || {
            let l = ok(net, &bob, &["--json", "ls", &target, "-l"]).json();
            match l["entries"][0]["id"].as_str() {
                Some(_) => Ok(()),
                None => Err(format!("{target} not hashed yet: {l}")),
            }
        });
    }
    Swarm {
        bob,
        seeders,
        data,
        tracker,
    }
}

/// `p2pctl --json get alice:rel/os.iso DEST --from carol,dave` at bob, running.
fn start_get(net: &TestNet, bob: &P2pd, dest: &Path) -> Child {
    start_get_from(net, bob, dest, "carol,dave")
}

/// `p2pctl --json get alice:rel/os.iso DEST --from FROM` at bob, running.
fn start_get_from(net: &TestNet, bob: &P2pd, dest: &Path, from: &str) -> Child {
    p2p_tests::swarm::start_get(net, bob, "alice:rel/os.iso", dest, from)
}

/// Waits until `dest` holds a part file with data in it.
fn wait_part(dest: &Path) -> PathBuf {
    poll(TRANSFER_DEADLINE, Duration::from_millis(5), || {
        for e in std::fs::read_dir(dest).map_err(|e| e.to_string())? {
            let e = e.map_err(|e| e.to_string())?;
            let name = e.file_name().to_string_lossy().into_owned();
            let len = e.metadata().map_err(|e| e.to_string())?.len();
            if name.contains(".part") && len > 0 {
                return Ok(e.path());
            }
        }
        Err(format!("no part file with data in {}", dest.display()))
    })
}

#[test]
fn one_file_comes_from_every_source() {
    let net = TestNet::new();
    let s = swarm(&net, 24 << 20);
    let dest = net.unique_dir("dest");
    let (fine, out, err) = finish(start_get(&net, &s.bob, &dest));
    assert!(fine, "get failed:\n{out}\n{err}");
    assert_content(&dest.join("os.iso"), &s.data);
    let t = answer(&out);
    assert_eq!(t["state"], "done", "{t}");
    assert_eq!(t["kind"], "pull", "{t}");
    let got = sources(&t);
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["alice", "carol", "dave"], "{t}");
    for (name, bytes, dropped) in &got {
        assert!(*bytes > 0, "{name} served nothing: {t}");
        assert_eq!(*dropped, None, "{t}");
    }
    let total: u64 = got.iter().map(|(_, b, _)| b).sum();
    assert_eq!(total, s.data.len() as u64, "{t}");
    // Nothing is left behind but the file.
    let left: Vec<_> = std::fs::read_dir(&dest).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
    // `transfers` lists it as a pull with its sources.
    let listed = listed(&net, &s.bob, &t);
    assert_eq!(listed["kind"], "pull", "{listed}");
    assert_eq!(listed["direction"], "in", "{listed}");
    assert_eq!(listed["state"], "done", "{listed}");
    assert_eq!(sources(&listed), got, "{listed}");
}

#[test]
fn a_source_killed_mid_download_leaves_the_rest_to_the_others() {
    let net = TestNet::new();
    let mut s = swarm(&net, 96 << 20);
    let dest = net.unique_dir("dest");
    let child = start_get(&net, &s.bob, &dest);
    wait_part(&dest);
    sigkill(&mut s.seeders[1]);
    let (ok, out, err) = finish(child);
    assert!(ok, "get failed:\n{out}\n{err}");
    assert_content(&dest.join("os.iso"), &s.data);
    let t = answer(&out);
    let got = sources(&t);
    let carol = &got[1];
    assert_eq!(carol.0, "carol");
    assert!(carol.2.is_some(), "carol was killed after the end: {t}");
    assert!(carol.1 < s.data.len() as u64 / 2, "{t}");
}

/// Bytes of the chunks of `part` that hold what `data` holds there: those a resume keeps.
fn kept_bytes(part: &Path, data: &[u8]) -> u64 {
    let held = std::fs::read(part).expect("read the part file");
    let chunk = proto::content::CHUNK as usize;
    data.chunks(chunk)
        .enumerate()
        .filter(|(i, want)| held.get(i * chunk..i * chunk + want.len()) == Some(*want))
        .map(|(_, want)| want.len() as u64)
        .sum()
}

/// Starts bob's `get` into `dest` and kills bob once several chunks are written, not all:
/// the part file and the pull's id.
fn kill_bob_mid_download(net: &TestNet, s: &mut Swarm, dest: &Path) -> (PathBuf, String) {
    let child = start_get(net, &s.bob, dest);
    let part = wait_part(dest);
    poll(TRANSFER_DEADLINE, Duration::from_millis(5), || {
        let len = std::fs::metadata(&part).map_err(|e| e.to_string())?.len();
        if len >= 8 << 20 {
            Ok(())
        } else {
            Err(format!("part holds {len} bytes"))
        }
    });
    let running = wait_listed(net, &s.bob, |t| t["kind"] == "pull");
    assert_eq!(running["state"], "running", "{running}");
    let id = running["id"].as_str().unwrap().to_owned();
    sigkill(&mut s.bob);
    let (fine, out, err) = finish(child);
    assert!(
        !fine,
        "get succeeded although bob was killed:\n{out}\n{err}"
    );
    assert!(!dest.join("os.iso").exists());
    (part, id)
}

#[test]
fn bob_killed_mid_download_resumes_it_by_himself_after_a_restart() {
    let net = TestNet::new();
    let mut s = swarm(&net, 96 << 20);
    let dest = net.unique_dir("dest");
    let (part, id) = kill_bob_mid_download(&net, &mut s, &dest);
    let missing = s.data.len() as u64 - kept_bytes(&part, &s.data);
    assert!(missing > 0, "every chunk was written before the kill");
    // A source that is not the owner taking back bob's read meanwhile ends nothing.
    ok(&net, &s.seeders[2], &["revoke", "rel", "bob"]);
    // No `get` again: p2pd resumes it when it starts.
    s.bob.restart();
    let done = wait_listed(&net, &s.bob, |t| t["id"] == id && t["state"] != "running");
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["kind"], "pull", "{done}");
    assert_content(&dest.join("os.iso"), &s.data);
    // Only the chunks missing were fetched again, each once.
    let fetched: u64 = sources(&done).iter().map(|(_, b, _)| b).sum();
    assert_eq!(fetched, missing, "{done}");
    assert!(!part.exists(), "the part file is left behind");
    // It stays listed as done across another restart.
    s.bob.restart();
    let again = wait_listed(&net, &s.bob, |t| t["id"] == id);
    assert_eq!(again["state"], "done", "{again}");
    assert_eq!(sources(&again), sources(&done), "{again}");
}

#[test]
fn a_resumed_download_takes_the_chunks_already_on_this_machine() {
    let net = TestNet::new();
    let mut s = swarm(&net, 96 << 20);
    let dest = net.unique_dir("dest");
    let (part, id) = kill_bob_mid_download(&net, &mut s, &dest);
    assert!(
        kept_bytes(&part, &s.data) < s.data.len() as u64,
        "every chunk was written"
    );
    // While bob is down, the whole file arrives at the destination by other means.
    write_pattern(&dest.join("os.iso"), s.data.len(), 7);
    s.bob.restart();
    let done = wait_listed(&net, &s.bob, |t| t["id"] == id && t["state"] != "running");
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["landed"][0], "os (1).iso", "{done}");
    assert_content(&dest.join("os (1).iso"), &s.data);
    let fetched: u64 = sources(&done).iter().map(|(_, b, _)| b).sum();
    assert_eq!(fetched, 0, "{done}");
    assert!(!part.exists(), "the part file is left behind");
}

#[test]
fn a_cancelled_download_ends_and_is_not_resumed_after_a_restart() {
    let net = TestNet::new();
    let mut s = swarm(&net, 96 << 20);
    let dest = net.unique_dir("dest");
    let child = start_get(&net, &s.bob, &dest);
    wait_part(&dest);
    let running = wait_listed(&net, &s.bob, |t| t["kind"] == "pull");
    let id = running["id"].as_str().unwrap().to_owned();
    assert_eq!(running["state"], "running", "{running}");
    ok(&net, &s.bob, &["cancel", &id]);
    let (fine, out, err) = finish(child);
    assert!(!fine, "get succeeded although cancelled:\n{out}\n{err}");
    let said = answer(&out);
    let why = said["error"]["message"].as_str().unwrap_or_default();
    assert!(why.contains("cancelled by the receiver"), "{said}");
    // The chunks fetched go with it.
    poll(DEADLINE, Duration::from_millis(20), || {
        let left: Vec<String> = std::fs::read_dir(&dest)
            .map_err(|e| e.to_string())?
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        match left.is_empty() {
            true => Ok(()),
            false => Err(format!("left in the destination: {left:?}")),
        }
    });
    s.bob.restart();
    let after = wait_listed(&net, &s.bob, |t| t["id"] == id);
    assert_eq!(after["state"], "cancelled", "{after}");
    assert!(!dest.join("os.iso").exists());
    let again = net.ctl(&s.bob, &["cancel", &id]);
    assert!(!again.status.success(), "a second cancel: {}", again.stdout);
}

#[test]
fn without_from_the_peers_that_let_bob_read_the_content_are_sources() {
    let net = TestNet::new();
    let s = swarm(&net, 24 << 20);
    // dave holds the same content but no longer lets bob read it.
    ok(&net, &s.seeders[2], &["revoke", "rel", "bob"]);
    let dest = net.unique_dir("dest");
    let child = start_plain_get(&net, &s.bob, "alice:rel/os.iso", &dest);
    let (fine, out, err) = finish(child);
    assert!(fine, "get failed:\n{out}\n{err}");
    assert_content(&dest.join("os.iso"), &s.data);
    let t = answer(&out);
    assert_eq!(t["state"], "done", "{t}");
    let got = sources(&t);
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["alice", "carol"], "{t}");
    for (name, bytes, dropped) in &got {
        assert!(*bytes > 0, "{name} served nothing: {t}");
        assert_eq!(*dropped, None, "{t}");
    }
    let total: u64 = got.iter().map(|(_, b, _)| b).sum();
    assert_eq!(total, s.data.len() as u64, "{t}");
}

#[test]
fn a_revoke_at_the_owner_mid_download_cancels_it_and_leaves_nothing() {
    // Slow enough that the revoke comes while chunks are still being fetched.
    let ns = NetNs::rate_limited(64);
    let net = TestNet::in_netns(&ns);
    let s = swarm(&net, 48 << 20);
    // carol and dave stay online (so the download is a multi-source one) but are no
    // sources: alice's chunks, asked for all along, meet the revoke at once.
    for other in &s.seeders[1..] {
        ok(&net, other, &["revoke", "rel", "bob"]);
    }
    let dest = net.unique_dir("dest");
    let mut events = s.bob.rpc();
    events.subscribe();
    let target = ["--json", "get", "alice:rel/os.iso", dest.to_str().unwrap()];
    let asked = ok(&net, &s.bob, &[&target[..], &["--no-wait"]].concat()).json();
    let id = asked["id"].as_str().expect("id").to_owned();
    events.wait_event(
        "the pull's first chunks",
        progress(&id, 0),
        TRANSFER_DEADLINE,
    );
    ok(&net, &s.seeders[0], &["revoke", "rel", "bob"]);
    let end = events.wait_event("the pull's end", ended(&id), TRANSFER_DEADLINE);
    let t = &end["transfer"];
    assert_eq!(t["state"], "cancelled", "{end}");
    assert_eq!(t["error"], "access revoked", "{end}");
    // The owner's refusal is final: nothing is left.
    wait_no_parts(&dest, DEADLINE);
    assert!(entries(&dest).is_empty(), "{:?}", entries(&dest));
    let listed = listed(&net, &s.bob, t);
    assert_eq!(listed["state"], "cancelled", "{listed}");
    assert_eq!(listed["error"], "access revoked", "{listed}");
}

#[test]
fn a_revoke_at_the_owner_while_bob_is_down_cancels_the_resumed_download() {
    let net = TestNet::new();
    let mut s = swarm(&net, 96 << 20);
    let dest = net.unique_dir("dest");
    let (part, id) = kill_bob_mid_download(&net, &mut s, &dest);
    assert!(part.exists(), "no part file to resume");
    // alice takes back bob's read while he is down; carol and dave still let him read
    // their copies, which changes nothing: only the owner's answer decides.
    ok(&net, &s.seeders[0], &["revoke", "rel", "bob"]);
    s.bob.restart();
    let end = wait_listed(&net, &s.bob, |t| t["id"] == id && t["state"] != "running");
    assert_eq!(end["state"], "cancelled", "{end}");
    assert_eq!(end["error"], "access revoked", "{end}");
    wait_no_parts(&dest, DEADLINE);
    assert!(entries(&dest).is_empty(), "{:?}", entries(&dest));
    // Ended for good: the next start does not resume it.
    s.bob.restart();
    let again = wait_listed(&net, &s.bob, |t| t["id"] == id);
    assert_eq!(again["state"], "cancelled", "{again}");
    assert_eq!(again["error"], "access revoked", "{again}");
    assert!(entries(&dest).is_empty(), "{:?}", entries(&dest));
}

/// The swarm of [`swarm`] with `len` bytes, plus mallory registered and served by
/// [`hostile_source`]; then bob's `get ... --from FROM`: the swarm, the destination, how many
/// chunks mallory was asked for, and how `get` ended.
async fn with_mallory(
    net: &TestNet,
    len: u64,
    stall: bool,
    from: &str,
) -> (Swarm, PathBuf, Arc<AtomicU64>, (bool, String, String)) {
    let s = tokio::task::block_in_place(|| swarm(net, len as usize));
    let key = random_key();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let registration = register_raw_at(&s.tracker, &key, "mallory", at).await;
    let asked = Arc::new(AtomicU64::new(0));
    let server = tokio::spawn(hostile_source(
        listener,
        key,
        "mallory",
        len,
        stall,
        asked.clone(),
    ));
    let dest = net.unique_dir("dest");
    let ended = tokio::task::block_in_place(|| {
        s.bob.wait_peer("mallory", true, DEADLINE);
        finish(start_get_from(net, &s.bob, &dest, from))
    });
    server.abort();
    drop(registration);
    (s, dest, asked, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_source_is_dropped_and_named_and_the_file_is_right() {
    let net = TestNet::new();
    let len = 24u64 << 20;
    let (s, dest, sent, (ok, out, err)) =
        with_mallory(&net, len, false, "carol,dave,mallory").await;
    assert!(ok, "get failed:\n{out}\n{err}");
    assert_content(&dest.join("os.iso"), &s.data);
    let t = answer(&out);
    let got = sources(&t);
    let mallory = got
        .iter()
        .find(|g| g.0 == "mallory")
        .expect("mallory listed");
    assert_eq!(mallory.1, 0, "{t}");
    let why = mallory.2.as_deref().unwrap_or_default();
    assert!(why.contains("failed verification"), "{t}");
    assert!(sent.load(Ordering::SeqCst) >= 1);
    poll(DEADLINE, Duration::from_millis(50), || {
        let log = s.bob.activity_log();
        match log
            .iter()
            .any(|l| l.contains("swarm-drop") && l.contains("mallory"))
        {
            true => Ok(()),
            false => Err(format!("mallory not named in bob's activity log: {log:#?}")),
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalling_sources_requests_move_to_the_others() {
    let net = TestNet::new();
    let len = 24u64 << 20;
    let (s, dest, asked, (ok, out, err)) = with_mallory(&net, len, true, "mallory").await;
    assert!(ok, "get failed:\n{out}\n{err}");
    assert_content(&dest.join("os.iso"), &s.data);
    let t = answer(&out);
    let got = sources(&t);
    assert_eq!(got[1].0, "mallory", "{t}");
    assert_eq!(got[1].1, 0, "{t}");
    assert_eq!(got[0].1, len, "{t}");
    // mallory was asked, and what it held on to came from alice.
    assert!(asked.load(Ordering::SeqCst) >= 1);
}

/// Stands in for a peer that is online but never answers: accepts TCP connections and reads
/// them, sending nothing. Counts the share links opened to it (their TLS hello names the
/// share protocol) and those the dialler gave up on and closed.
async fn black_hole(
    listener: tokio::net::TcpListener,
    opened: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
) {
    use tokio::io::AsyncReadExt;
    let mut conns = tokio::task::JoinSet::new();
    while let Ok((mut sock, _)) = listener.accept().await {
        let (opened, closed) = (opened.clone(), closed.clone());
        conns.spawn(async move {
            let mut seen = Vec::new();
            let mut share = false;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = sock.read(&mut buf).await {
                if !share {
                    seen.extend_from_slice(&buf[..n]);
                    share = seen.windows(11).any(|w| w == proto::peer::ALPN_SHARE);
                    if share {
                        opened.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            if share {
                closed.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_starts_at_once_without_waiting_for_a_peer_that_never_answers() {
    let net = TestNet::new();
    let s = tokio::task::block_in_place(|| swarm(&net, 4 << 20));
    let key = random_key();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let registration = register_raw_at(&s.tracker, &key, "ghost", at).await;
    let (opened, closed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let hole = tokio::spawn(black_hole(listener, opened.clone(), closed.clone()));
    let dest = net.unique_dir("dest");
    let (fine, out, err) = tokio::task::block_in_place(|| {
        s.bob.wait_peer("ghost", true, DEADLINE);
        finish(start_plain_get(&net, &s.bob, "alice:rel/os.iso", &dest))
    });
    // Read before anything else: bob had not given up on ghost when the download ended.
    let given_up = closed.load(Ordering::SeqCst);
    assert!(fine, "get failed:\n{out}\n{err}");
    assert_content(&dest.join("os.iso"), &s.data);
    let t = answer(&out);
    assert_eq!(t["state"], "done", "{t}");
    assert_eq!(
        given_up, 0,
        "bob waited for ghost's answer before the download ended: {t}"
    );
    // ghost was asked all the same, and is no source.
    poll(DEADLINE, Duration::from_millis(20), || {
        match opened.load(Ordering::SeqCst) {
            0 => Err("bob never asked ghost".to_owned()),
            _ => Ok(()),
        }
    });
    let names: Vec<String> = sources(&t).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names[0], "alice", "{t}");
    assert!(!names.iter().any(|n| n == "ghost"), "{t}");
    hole.abort();
    drop(registration);
}

/// The verified bytes bob's database holds for the running pull, if any.
fn stored_done(bob: &P2pd) -> Option<u64> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let db = rusqlite::Connection::open_with_flags(bob.state_dir.join("p2pd.db"), flags).ok()?;
    db.query_row(
        "SELECT done_bytes FROM swarm_pulls WHERE state = 'running'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .ok()
    .map(i64::cast_unsigned)
}

#[test]
fn a_restart_lists_the_bytes_already_fetched_before_any_source_answers() {
    let net = TestNet::new();
    let mut s = swarm(&net, 96 << 20);
    let dest = net.unique_dir("dest");
    let child = start_get(&net, &s.bob, &dest);
    // Stored while it runs, not only when it ends.
    let stored = poll(
        TRANSFER_DEADLINE,
        Duration::from_millis(10),
        || match stored_done(&s.bob) {
            Some(n) if n > 0 => Ok(n),
            other => Err(format!("stored: {other:?}")),
        },
    );
    sigkill(&mut s.bob);
    let (fine, out, err) = finish(child);
    assert!(
        !fine,
        "get succeeded although bob was killed:\n{out}\n{err}"
    );
    // No source is left to answer, so what is listed comes from the database.
    for seeder in &mut s.seeders {
        sigkill(seeder);
    }
    s.bob.restart();
    let t = wait_listed(&net, &s.bob, |t| t["kind"] == "pull");
    assert_eq!(t["state"], "running", "{t}");
    let listed_done = t["done_bytes"].as_u64().unwrap();
    assert!(
        listed_done >= stored,
        "listed {listed_done}, stored {stored}: {t}"
    );
    assert!(listed_done < s.data.len() as u64, "{t}");
}

#[test]
fn a_second_get_of_the_same_content_elsewhere_is_refused_naming_the_first() {
    let net = TestNet::new();
    let s = swarm(&net, 96 << 20);
    let (here, there) = (net.unique_dir("here"), net.unique_dir("there"));
    let first = start_get(&net, &s.bob, &here);
    wait_part(&here);
    let running = wait_listed(&net, &s.bob, |t| t["kind"] == "pull");
    let id = running["id"].as_str().unwrap().to_owned();
    let again = net.ctl(
        &s.bob,
        &[
            "get",
            "alice:rel/os.iso",
            there.to_str().unwrap(),
            "--from",
            "carol",
        ],
    );
    assert!(
        !again.status.success(),
        "a second get elsewhere: {}",
        again.stdout
    );
    assert!(
        again.stderr.contains(&id) && again.stderr.contains(here.to_str().unwrap()),
        "the refusal does not name the first download: {}",
        again.stderr
    );
    // The same get into the same place is the first download.
    let same = ok(
        &net,
        &s.bob,
        &[
            "--json",
            "get",
            "alice:rel/os.iso",
            here.to_str().unwrap(),
            "--no-wait",
        ],
    );
    assert_eq!(same.json()["id"], id.as_str(), "{}", same.stdout);
    let (fine, out, err) = finish(first);
    assert!(fine, "get failed:\n{out}\n{err}");
    assert_content(&here.join("os.iso"), &s.data);
    assert_eq!(std::fs::read_dir(&there).unwrap().count(), 0);
}
