//! Multi-source `get --from` and what is already on this machine or on its way: chunks on
//! disk are not fetched again, and a download in progress serves its verified chunks.
//!
//! - bob has the file already (received before into the destination, or in one of his
//!   shares under another name): `get` fetches zero bytes from the sources, and the file
//!   is right. `get --from` of a directory is refused, saying so.
//! - bob downloads into his share `inbox` (which grants dave read) from mallory, a source
//!   built here that serves the first half of the file and holds the rest until the test
//!   lets it go. Mid-download, frank (no read on `inbox`) gets from bob exactly the answer
//!   for content bob does not hold; once granted read, bob's `Have` names his verified
//!   chunks (every one mallory gave), and bob serves them. dave's `get alice:rel/os.iso
//!   --from carol,bob` draws chunks from bob too, and is right; then mallory lets go and
//!   bob's own download ends right.
//! - bob cancels such a download: its part file goes, and a peer that may read `inbox` gets
//!   the answer for content bob does not hold.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use p2p_tests::raw::random_key;
use p2p_tests::share_raw::{ShareLink, ShareServer};
use p2p_tests::swarm::{finish, finish_ok, listed, sources, start_get, wait_listed};
use p2p_tests::transfer::{TRANSFER_DEADLINE, assert_content, register_raw_at, write_pattern};
use p2p_tests::{CmdOutput, DEADLINE, P2pd, TestNet, Tracker, poll};
use proto::content::ChunkList;
use proto::share::{
    CHUNK, ContentId, Entry, EntryKind, EntryName, ErrorKind, HaveQuery, MAX_CVS_PER_PAGE,
    ManifestPage, Request, RequestFrame, RequestId, Response, ResponseFrame, rules,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

#[track_caller]
fn ok(net: &TestNet, who: &P2pd, args: &[&str]) -> CmdOutput {
    let out = net.ctl(who, args);
    out.assert_success();
    out
}

/// `p2pctl --json get TARGET DEST --from FROM` at `who`, to its end: the transfer it printed.
fn get(net: &TestNet, who: &P2pd, target: &str, dest: &Path, from: &str) -> Value {
    finish_ok(start_get(net, who, target, dest, from))
}

/// The bytes `who`'s `transfers --json` says transfer `t` drew from its sources.
fn fetched(net: &TestNet, who: &P2pd, t: &Value) -> u64 {
    let listed = listed(net, who, t);
    assert_eq!(listed["state"], "done", "{listed}");
    sources(&listed).iter().map(|(_, b, _)| b).sum()
}

/// Waits until `who` sees the content id of `peer:share/name` (as `ls -l` shows it).
fn wait_hashed(net: &TestNet, who: &P2pd, peer: &str, share: &str) {
    let target = format!("{peer}:{share}");
    poll(TRANSFER_DEADLINE, Duration::from_millis(50), || {
        let l = ok(net, who, &["--json", "ls", &target, "-l"]).json();
        match l["entries"][0]["id"].as_str() {
            Some(_) => Ok(()),
            None => Err(format!("{target} not hashed yet: {l}")),
        }
    });
}

/// Starts `name`, linked to each of `others` both ways.
fn spawn_linked(net: &TestNet, tracker: &Tracker, name: &str, others: &[&P2pd]) -> P2pd {
    let p = net.spawn_p2pd(name, &tracker.addr_string(), &[]);
    for o in others {
        o.wait_peer(name, true, DEADLINE);
        p.wait_peer(&o.name, true, DEADLINE);
    }
    p
}

/// `seeder` shares a copy of `len` bytes (pattern 7) as `rel/os.iso`, readable by `readers`.
fn seed(net: &TestNet, seeder: &P2pd, len: usize, readers: &[&str]) -> Vec<u8> {
    let dir = net.unique_dir(&format!("rel-{}", seeder.name));
    let data = write_pattern(&dir.join("os.iso"), len, 7);
    ok(net, seeder, &["share", "add", "rel", dir.to_str().unwrap()]);
    for r in readers {
        ok(net, seeder, &["grant", "rel", r, "read"]);
    }
    data
}

#[test]
fn chunks_already_on_disk_are_not_fetched_again() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let alice = spawn_linked(&net, &tracker, "alice", &[]);
    let carol = spawn_linked(&net, &tracker, "carol", &[&alice]);
    let bob = spawn_linked(&net, &tracker, "bob", &[&alice, &carol]);
    let len = 12 << 20;
    let data = seed(&net, &alice, len, &["bob"]);
    seed(&net, &carol, len, &["bob"]);
    wait_hashed(&net, &bob, "alice", "rel");
    wait_hashed(&net, &bob, "carol", "rel");

    // A directory with --from is refused, saying so.
    let dest = net.unique_dir("dest");
    let d = dest.to_str().unwrap();
    let out = net.ctl(&bob, &["get", "alice:rel", d, "--from", "carol"]);
    out.assert_code(1);
    let why = "rel is a directory: get --from fetches one file (get the directory without --from)";
    assert!(out.stderr.contains(why), "{out}");

    // The first time, every byte comes from the sources.
    let t = get(&net, &bob, "alice:rel/os.iso", &dest, "carol");
    assert_content(&dest.join("os.iso"), &data);
    assert_eq!(fetched(&net, &bob, &t), len as u64, "{t}");

    // Again into the same directory: the file received before gives every chunk.
    let t = get(&net, &bob, "alice:rel/os.iso", &dest, "carol");
    assert_content(&dest.join("os (1).iso"), &data);
    assert_eq!(t["landed"][0], "os (1).iso", "{t}");
    assert_eq!(fetched(&net, &bob, &t), 0, "{t}");

    // A copy under another name in one of bob's shares gives every chunk too.
    let mine = net.unique_dir("mine");
    write_pattern(&mine.join("copy.iso"), len, 7);
    ok(
        &net,
        &bob,
        &["share", "add", "mine", mine.to_str().unwrap()],
    );
    ok(&net, &bob, &["grant", "mine", "carol", "read"]);
    wait_hashed(&net, &carol, "bob", "mine");
    let other = net.unique_dir("other");
    let t = get(&net, &bob, "alice:rel/os.iso", &other, "carol");
    assert_content(&other.join("os.iso"), &data);
    assert_eq!(fetched(&net, &bob, &t), 0, "{t}");
    let left: Vec<_> = std::fs::read_dir(&other).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// One length-prefixed share frame read from `r`; `None` at the end of the stream.
async fn read_request(r: &mut (impl AsyncReadExt + Unpin)) -> Option<RequestFrame> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header).await.ok()?;
    let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
    r.read_exact(&mut payload).await.ok()?;
    proto::frame::decode_payload(&payload).ok()
}

/// Writes `response` to request `id` on `w`.
async fn write_answer(
    w: &mut (impl AsyncWriteExt + Unpin),
    id: RequestId,
    response: Response,
) -> std::io::Result<()> {
    let payload = postcard::to_stdvec(&ResponseFrame { id, response }).expect("encode");
    w.write_all(&(payload.len() as u32).to_be_bytes()).await?;
    w.write_all(&payload).await?;
    w.flush().await
}

/// Mallory's answer to `GetChunk` of chunk `index` of `data`.
fn chunk_of(data: &[u8], id: ContentId, index: u64) -> Response {
    let start = (index * CHUNK) as usize;
    let end = (start + CHUNK as usize).min(data.len());
    let data = bytes::Bytes::copy_from_slice(&data[start..end]);
    Response::Chunk { id, index, data }
}

/// Mallory: serves `data` as `rel/os.iso` on every share link a p2pd opens to `listener`,
/// chunks below `free` at once, the others once `gate` turns true (but one after each
/// `Cancel`, so the downloader, which hands requests back when a source stalls, keeps it as
/// a source until then).
async fn gated_source(
    listener: tokio::net::TcpListener,
    key: proto::SecretKey,
    data: Arc<Vec<u8>>,
    free: u64,
    gate: watch::Receiver<bool>,
) {
    while let Ok(link) = ShareServer::accept(&listener, &key, "mallory").await {
        tokio::spawn(serve_gated(link, data.clone(), free, gate.clone()));
    }
}

async fn serve_gated(
    link: ShareServer,
    data: Arc<Vec<u8>>,
    free: u64,
    mut gate: watch::Receiver<bool>,
) {
    let list = ChunkList::of(&data);
    let id = list.id();
    let (mut r, mut w) = tokio::io::split(link.peer.tls);
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(f) = read_request(&mut r).await {
            if tx.send(f).is_err() {
                return;
            }
        }
    });
    let mut held: Vec<(RequestId, u64)> = Vec::new();
    let mut release_one = false;
    loop {
        tokio::select! {
            f = rx.recv() => {
                let Some(f) = f else { return };
                let answer = match f.request {
                    Request::Stat { .. } => Response::Stat(Entry {
                        name: EntryName::new("os.iso").unwrap(),
                        kind: EntryKind::File,
                        size: data.len() as u64,
                        mtime: 0,
                        id: Some(id),
                    }),
                    Request::GetManifest { first, .. } => {
                        let start = first as usize;
                        let end = list.cvs().len().min(start + MAX_CVS_PER_PAGE);
                        Response::Manifest(ManifestPage {
                            id,
                            len: list.len(),
                            first,
                            cvs: list.cvs()[start..end].to_vec(),
                        })
                    }
                    Request::Have(HaveQuery::Chunks { count, .. }) => Response::Have(
                        proto::share::Bitfield::from_bools(&vec![true; count as usize]).unwrap(),
                    ),
                    Request::GetChunk { index, .. } => {
                        if index >= free && !*gate.borrow() {
                            if !release_one {
                                held.push((f.id, index));
                                continue;
                            }
                            release_one = false;
                        }
                        chunk_of(&data, id, index)
                    }
                    Request::Cancel { .. } => {
                        release_one = true;
                        Response::Done
                    }
                    _ => Response::error(ErrorKind::Invalid, "no"),
                };
                if write_answer(&mut w, f.id, answer).await.is_err() {
                    return;
                }
            }
            Ok(()) = gate.changed() => {
                for (rid, index) in held.drain(..) {
                    if write_answer(&mut w, rid, chunk_of(&data, id, index)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The running pull of `who` whose file is `name`, once it has verified at least `min`
/// bytes: its `done_bytes`.
fn wait_running(net: &TestNet, who: &P2pd, name: &str, min: u64) -> u64 {
    let t = wait_listed(net, who, |t| {
        t["kind"] == "pull"
            && t["state"] == "running"
            && t["sample"][0] == name
            && t["done_bytes"].as_u64().is_some_and(|d| d >= min)
    });
    t["done_bytes"].as_u64().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_in_progress_serves_its_verified_chunks_to_readers_only() {
    let net = TestNet::new();
    let chunks = 16u64;
    let free = 8u64;
    let len = (chunks * CHUNK) as usize;
    let (tracker, alice, carol, bob, dave) = tokio::task::block_in_place(|| {
        let tracker = net.spawn_tracker(None);
        let alice = spawn_linked(&net, &tracker, "alice", &[]);
        let carol = spawn_linked(&net, &tracker, "carol", &[&alice]);
        let bob = spawn_linked(&net, &tracker, "bob", &[&alice, &carol]);
        let dave = spawn_linked(&net, &tracker, "dave", &[&alice, &carol, &bob]);
        (tracker, alice, carol, bob, dave)
    });
    let data = Arc::new(tokio::task::block_in_place(|| {
        let data = seed(&net, &alice, len, &["dave"]);
        seed(&net, &carol, len, &["dave"]);
        wait_hashed(&net, &dave, "alice", "rel");
        wait_hashed(&net, &dave, "carol", "rel");
        data
    }));
    let id = ContentId::of(&data);

    // bob downloads from mallory into his share inbox, readable by dave.
    let inbox = downloading_into_inbox(&net, &tracker, &bob, data.clone(), free, &["dave"]).await;
    let (frank, done) = (&inbox.frank, inbox.done);

    // frank, who may not read inbox, gets what he would for content bob does not hold.
    let mut link = ShareLink::open(bob.listen, frank, "frank").await;
    let count = chunks as u32;
    for cid in [id, ContentId([7; 32])] {
        for req in [
            Request::Have(HaveQuery::Chunks {
                id: cid,
                first: 0,
                count,
            }),
            Request::GetChunk { id: cid, index: 0 },
            Request::GetManifest { id: cid, first: 0 },
        ] {
            let got = link.ask(req.clone()).await;
            assert_eq!(
                got,
                Response::Error(rules::content_not_found(&cid)),
                "{req:?}"
            );
        }
    }

    // Granted read, he learns exactly the chunks bob has verified, and gets them.
    tokio::task::block_in_place(|| ok(&net, &bob, &["grant", "inbox", "frank", "read"]));
    let have = Request::Have(HaveQuery::Chunks {
        id,
        first: 0,
        count,
    });
    let bits = match link.ask(have).await {
        Response::Have(bits) => bits,
        other => panic!("have: {other:?}"),
    };
    let held: Vec<u64> = (0..chunks).filter(|i| bits.get(*i as u32)).collect();
    assert!(
        held.len() as u64 * CHUNK >= done,
        "{held:?} for {done} bytes"
    );
    assert!((0..free).all(|i| held.contains(&i)), "{held:?}");
    let missing = (0..chunks)
        .find(|i| !held.contains(i))
        .expect("bob is not done");
    let list = ChunkList::of(&data);
    match link.ask(Request::GetManifest { id, first: 0 }).await {
        Response::Manifest(m) => assert_eq!(m.cvs, list.cvs()),
        other => panic!("manifest: {other:?}"),
    }
    match link.ask(Request::GetChunk { id, index: 1 }).await {
        Response::Chunk { index: 1, data, .. } => list.verify_chunk(1, &data).unwrap(),
        other => panic!("chunk 1: {other:?}"),
    }
    match link.ask(Request::GetChunk { id, index: missing }).await {
        Response::Error(e) => assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}"),
        other => panic!("chunk {missing}: {other:?}"),
    }

    // dave draws from bob's verified chunks beside alice and carol.
    let dest = net.unique_dir("dave-dest");
    let t = tokio::task::block_in_place(|| {
        finish_ok(start_get(
            &net,
            &dave,
            "alice:rel/os.iso",
            &dest,
            "carol,bob",
        ))
    });
    assert_content(&dest.join("os.iso"), &data);
    let got = sources(&t);
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["alice", "carol", "bob"], "{t}");
    let from_bob = &got[2];
    assert!(from_bob.1 > 0, "bob served nothing: {t}");
    assert!(from_bob.1 < len as u64, "{t}");
    assert_eq!(from_bob.2, None, "{t}");
    assert_eq!(got.iter().map(|g| g.1).sum::<u64>(), len as u64, "{t}");

    // mallory lets go: bob's own download ends right.
    inbox.open.send(true).unwrap();
    let t = tokio::task::block_in_place(|| finish_ok(inbox.get));
    assert_eq!(t["state"], "done", "{t}");
    assert_content(&inbox.dir.join("os.iso"), &data);
    inbox.server.abort();
}

/// bob's download from mallory into his share `inbox`, under way.
struct Inbox {
    /// bob's `get`, running.
    get: std::process::Child,
    /// The bytes bob had verified when it was seen running: at least the free chunks.
    done: u64,
    /// The share's directory.
    dir: PathBuf,
    /// Lets mallory send the chunks she holds back.
    open: watch::Sender<bool>,
    /// mallory's server.
    server: tokio::task::JoinHandle<()>,
    /// frank: a peer known to bob, with no grant.
    frank: proto::SecretKey,
    _registered: [p2p_tests::raw::Client; 2],
}

/// Registers mallory (serving `data`, the chunks from `free` on held until let go) and
/// frank; bob shares `inbox`, readable by `readers`, and gets `mallory:rel/os.iso` into it
/// `--from mallory`; returns once bob has verified the `free` chunks.
async fn downloading_into_inbox(
    net: &TestNet,
    tracker: &Tracker,
    bob: &P2pd,
    data: Arc<Vec<u8>>,
    free: u64,
    readers: &[&str],
) -> Inbox {
    let mallory = random_key();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let mallory_reg = register_raw_at(tracker, &mallory, "mallory", at).await;
    let (open, gate) = watch::channel(false);
    let server = tokio::spawn(gated_source(listener, mallory, data, free, gate));
    let frank = random_key();
    let frank_reg = register_raw_at(tracker, &frank, "frank", "127.0.0.1:9".parse().unwrap()).await;
    let dir = net.unique_dir("inbox");
    let (get, done) = tokio::task::block_in_place(|| {
        bob.wait_peer("mallory", true, DEADLINE);
        bob.wait_peer("frank", true, DEADLINE);
        ok(net, bob, &["share", "add", "inbox", dir.to_str().unwrap()]);
        for r in readers {
            ok(net, bob, &["grant", "inbox", r, "read"]);
        }
        let child = start_get(net, bob, "mallory:rel/os.iso", &dir, "mallory");
        (child, wait_running(net, bob, "os.iso", free * CHUNK))
    });
    Inbox {
        get,
        done,
        dir,
        open,
        server,
        frank,
        _registered: [mallory_reg, frank_reg],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_download_in_progress_is_served_no_more_and_its_part_goes() {
    let net = TestNet::new();
    let (chunks, free) = (8u64, 4u64);
    let (tracker, bob) = tokio::task::block_in_place(|| {
        let tracker = net.spawn_tracker(None);
        let bob = net.spawn_p2pd("bob", &tracker.addr_string(), &[]);
        (tracker, bob)
    });
    let src = net.unique_dir("src").join("os.iso");
    let data = Arc::new(write_pattern(&src, (chunks * CHUNK) as usize, 7));
    let id = ContentId::of(&data);
    let inbox = downloading_into_inbox(&net, &tracker, &bob, data, free, &["frank"]).await;

    // frank may read inbox: bob serves the chunks he has verified.
    let mut link = ShareLink::open(bob.listen, &inbox.frank, "frank").await;
    let have = Request::Have(HaveQuery::Chunks {
        id,
        first: 0,
        count: chunks as u32,
    });
    match link.ask(have.clone()).await {
        Response::Have(bits) => assert!((0..free as u32).all(|i| bits.get(i)), "{bits:?}"),
        other => panic!("have: {other:?}"),
    }

    // bob cancels: the part file goes, and nothing of it is served any more.
    let id_shown = tokio::task::block_in_place(|| {
        let t = wait_listed(&net, &bob, |t| t["kind"] == "pull");
        let shown = t["id"].as_str().unwrap().to_owned();
        ok(&net, &bob, &["cancel", &shown]);
        let (fine, out, err) = finish(inbox.get);
        assert!(!fine, "get succeeded although cancelled:\n{out}\n{err}");
        poll(DEADLINE, Duration::from_millis(20), || {
            let parts: Vec<String> = std::fs::read_dir(&inbox.dir)
                .map_err(|e| e.to_string())?
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".part"))
                .collect();
            match parts.is_empty() {
                true => Ok(()),
                false => Err(format!("left in inbox: {parts:?}")),
            }
        });
        shown
    });
    for req in [have, Request::GetChunk { id, index: 0 }] {
        let got = link.ask(req.clone()).await;
        assert_eq!(
            got,
            Response::Error(rules::content_not_found(&id)),
            "{req:?} after cancelling {id_shown}"
        );
    }
    inbox.server.abort();
}
