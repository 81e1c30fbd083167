//! Multi-source `get --from` between real daemons: alice, carol and dave each share `rel`
//! holding the same file, and grant bob read. bob's `get alice:rel/os.iso --from
//! carol,dave` lands the right bytes and every source contributes (`transfers` lists it as
//! a pull with each source's bytes); a source killed in the
//! middle leaves the rest to the others; bob killed in the middle keeps the chunks already
//! written, and the same `get` after his restart fetches only what is missing. mallory, a
//! hostile source built here, claims every chunk and sends wrong bytes: bob drops it after
//! its first chunk, names it in his activity log, and the file is right; as a staller
//! (claims every chunk, sends none) what it was asked comes from alice instead.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use p2p_tests::raw::random_key;
use p2p_tests::share_raw::hostile_source;
use p2p_tests::swarm::{answer, finish, listed, sources};
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, assert_content, register_raw_at, sigkill, write_pattern,
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

#[test]
fn bob_killed_mid_download_fetches_only_what_is_missing_after_a_restart() {
    let net = TestNet::new();
    let mut s = swarm(&net, 96 << 20);
    let dest = net.unique_dir("dest");
    let child = start_get(&net, &s.bob, &dest);
    // Several chunks written, not all.
    let part = wait_part(&dest);
    poll(TRANSFER_DEADLINE, Duration::from_millis(5), || {
        let len = std::fs::metadata(&part).map_err(|e| e.to_string())?.len();
        if len >= 8 << 20 {
            Ok(())
        } else {
            Err(format!("part holds {len} bytes"))
        }
    });
    sigkill(&mut s.bob);
    let (ok, out, err) = finish(child);
    assert!(!ok, "get succeeded although bob was killed:\n{out}\n{err}");
    assert!(!dest.join("os.iso").exists());
    s.bob.restart();
    for seeder in &s.seeders {
        s.bob.wait_peer(&seeder.name, true, DEADLINE);
    }
    let (ok, out, err) = finish(start_get(&net, &s.bob, &dest));
    assert!(ok, "get after the restart failed:\n{out}\n{err}");
    assert_content(&dest.join("os.iso"), &s.data);
    let t = answer(&out);
    let fetched: u64 = sources(&t).iter().map(|(_, b, _)| b).sum();
    assert!(
        fetched < s.data.len() as u64,
        "all {fetched} bytes fetched again: {t}"
    );
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
