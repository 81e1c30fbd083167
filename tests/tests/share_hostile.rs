//! Shares under attack, between real daemons. On a share link made by hand (mallory, a key
//! registered at the tracker): content by hash is served only from a share the asker may
//! read, and content in a share it may not read answers exactly like content nobody holds;
//! what is served verifies against its chunk values and id; a file changed or swapped for a
//! symlink after it was hashed is never served; oversized and malformed requests and paths
//! with `..` or a leading `/` are refused, and the daemon serves the next link as before.
//! Through `p2pctl get`: a revoke mid-pull ends the pull at the owner and the receiver keeps
//! nothing; a file swapped for a symlink to a file outside the share, or rewritten, while it
//! is pulled never arrives as the outside file or as a mix of two versions.

use std::path::Path;
use std::time::{Duration, Instant};

use p2p_tests::chat::{self, Pair};
use p2p_tests::share_raw::ShareLink;
use p2p_tests::sys::NetNs;
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, ended, entries, get, progress, wait_no_parts, write_pattern,
};
use p2p_tests::{CmdOutput, DEADLINE, TestNet};
use proto::content::{CHUNK, ChunkList, ContentId};
use proto::share::{
    ErrorKind, HaveQuery, MAX_FRAME, MAX_HAVE_BITS, MAX_HAVE_IDS, Request, Response,
};

/// Runs `p2pctl ARGS` against `who`'s daemon and asserts it succeeded.
#[track_caller]
fn ok(net: &TestNet, who: &p2p_tests::P2pd, args: &[&str]) -> CmdOutput {
    let out = net.ctl(who, args);
    out.assert_success();
    out
}

/// alice serves `dir` as `name`.
fn share(net: &TestNet, p: &Pair, name: &str, dir: &Path) {
    ok(
        net,
        &p.alice,
        &["share", "add", name, dir.to_str().unwrap()],
    );
}

/// The error of `r`, or a panic naming `what`.
#[track_caller]
fn error(what: &str, r: &Response) -> (ErrorKind, String) {
    match r {
        Response::Error(e) => (e.kind, e.message.to_string()),
        other => panic!("{what}: expected an error, got {other:?}"),
    }
}

/// The bits of a `Have` answer.
#[track_caller]
fn bits(r: &Response) -> Vec<bool> {
    match r {
        Response::Have(b) => (0..b.len()).map(|i| b.get(i)).collect(),
        other => panic!("expected Have, got {other:?}"),
    }
}

fn have_ids(ids: &[ContentId]) -> Request {
    Request::Have(HaveQuery::Ids(ids.to_vec()))
}

/// The answer to content not found: the same for content held in a share the asker may
/// not read as for content nobody holds.
fn not_found(id: &ContentId) -> (ErrorKind, String) {
    let text = format!("content {} not found in any share you may read", id.short());
    (ErrorKind::NotFound, text)
}

/// Asks `Have(id)` until alice reports it held (her index hashes in the background).
async fn wait_held(link: &mut ShareLink, id: ContentId) {
    let deadline = Instant::now() + TRANSFER_DEADLINE;
    loop {
        if bits(&link.ask(have_ids(&[id])).await) == [true] {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never reported held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A request written by hand: `id`, then `tag`, then `body` (already postcard-encoded
/// fields), so names and paths are not checked as they are encoded.
fn shadow<B: serde::Serialize>(id: u64, tag: u32, body: B) -> Vec<u8> {
    postcard::to_stdvec(&(id, tag, body)).expect("encode")
}

#[tokio::test]
async fn content_by_hash_is_served_only_from_shares_the_asker_may_read() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let docs = net.unique_dir("docs");
    let data = write_pattern(&docs.join("big.bin"), 3 * CHUNK as usize + 5, 1);
    let private = net.unique_dir("private");
    let secret = write_pattern(&private.join("secret.bin"), 2 * CHUNK as usize + 7, 2);
    share(&net, &p, "docs", &docs);
    share(&net, &p, "private", &private);
    let key = p2p_tests::raw::random_key();
    let _registration = p2p_tests::transfer::register_raw(&p.tracker, &key, "mallory").await;
    p.alice.wait_peer("mallory", true, DEADLINE);
    ok(&net, &p.alice, &["grant", "docs", "mallory", "read"]);
    ok(&net, &p.alice, &["grant", "docs", "bob", "read"]);
    let mut link = ShareLink::open(p.alice.listen, &key, "mallory").await;

    let id = ContentId::of(&data);
    let hidden = ContentId::of(&secret);
    let unknown = ContentId([7; 32]);
    wait_held(&mut link, id).await;
    // The private file is hashed too (seen while mallory could read it), then not readable.
    ok(&net, &p.alice, &["grant", "private", "mallory", "read"]);
    wait_held(&mut link, hidden).await;
    ok(&net, &p.alice, &["revoke", "private", "mallory"]);

    // Readable: the manifest checks against the id, each chunk against its value.
    let cvs = match link.ask(Request::GetManifest { id, first: 0 }).await {
        Response::Manifest(m) => {
            assert!(m.fits(), "{m:?}");
            assert_eq!((m.id, m.len, m.first), (id, data.len() as u64, 0));
            m.cvs
        }
        other => panic!("manifest: {other:?}"),
    };
    let list = ChunkList::new(id, data.len() as u64, cvs).expect("values that add up to the id");
    let mut got = Vec::new();
    for index in 0..4 {
        match link.ask(Request::GetChunk { id, index }).await {
            Response::Chunk {
                id: cid,
                index: i,
                data: bytes,
            } => {
                assert_eq!((cid, i), (id, index));
                list.verify_chunk(index, &bytes)
                    .expect("a chunk of the content");
                got.extend_from_slice(&bytes);
            }
            other => panic!("chunk {index}: {other:?}"),
        }
    }
    assert!(got == data, "the chunks make up the file");
    let chunks = Request::Have(HaveQuery::Chunks {
        id,
        first: 2,
        count: 4,
    });
    assert_eq!(bits(&link.ask(chunks).await), [true, true, false, false]);
    let held = link.ask(have_ids(&[id, hidden, unknown])).await;
    assert_eq!(bits(&held), [true, false, false]);

    // Not readable reads exactly as not held.
    for asked in [hidden, unknown] {
        let requests = [
            Request::GetManifest {
                id: asked,
                first: 0,
            },
            Request::GetChunk {
                id: asked,
                index: 0,
            },
            Request::Have(HaveQuery::Chunks {
                id: asked,
                first: 0,
                count: 1,
            }),
        ];
        for r in requests {
            let what = format!("{r:?}");
            assert_eq!(error(&what, &link.ask(r).await), not_found(&asked));
        }
    }

    // Out of range: refused, the link kept.
    let past = link.ask(Request::GetChunk { id, index: 4 }).await;
    assert_eq!(error("past the end", &past).0, ErrorKind::Invalid);
    let past = link.ask(Request::GetManifest { id, first: 4 }).await;
    assert_eq!(error("manifest past the end", &past).0, ErrorKind::Invalid);
    let wide = Request::Have(HaveQuery::Chunks {
        id,
        first: 0,
        count: MAX_HAVE_BITS + 1,
    });
    let (kind, message) = error("too many bits", &link.ask(wide).await);
    assert_eq!(kind, ErrorKind::Invalid, "{message}");
    assert!(message.contains("at most"), "{message}");
    let many = have_ids(&vec![id; MAX_HAVE_IDS + 1]);
    let (kind, message) = error("too many ids", &link.ask(many).await);
    assert_eq!(kind, ErrorKind::Invalid, "{message}");
    assert!(message.starts_with("malformed request 5"), "{message}");

    // `..` and absolute paths in Stat, List and Pull never reach the share.
    for path in ["../x", "/etc/passwd", "a/../../b", ".."] {
        let hostile = [
            (2, shadow(100, 2, ("docs", Some(path)))),
            (1, shadow(101, 1, ("docs", Some(path), None::<()>, 0u32))),
            (14, shadow(102, 14, ("docs", Some(path)))),
        ];
        for (n, (tag, payload)) in hostile.into_iter().enumerate() {
            let (kind, message) = error(path, &link.ask_payload(100 + n as u64, &payload).await);
            assert_eq!(kind, ErrorKind::Invalid, "{path}: {message}");
            assert!(
                message.starts_with(&format!("malformed request {tag}")),
                "{path}: {message}"
            );
        }
    }

    // Rewritten in place (same size) after it was hashed: never served.
    write_pattern(&docs.join("big.bin"), data.len(), 3);
    for index in [1, 3] {
        let answer = link.ask(Request::GetChunk { id, index }).await;
        assert_changed(&format!("chunk {index} of a rewritten file"), &answer);
    }
    // Swapped for a symlink to a file outside the share: never followed.
    let outside = net.unique_dir("outside").join("target.bin");
    std::fs::write(&outside, &data).unwrap();
    std::fs::remove_file(docs.join("big.bin")).unwrap();
    std::os::unix::fs::symlink(&outside, docs.join("big.bin")).unwrap();
    for index in [0, 2] {
        let answer = link.ask(Request::GetChunk { id, index }).await;
        assert_changed(&format!("chunk {index} through a symlink"), &answer);
    }
    let manifest = link.ask(Request::GetManifest { id, first: 0 }).await;
    if let Response::Manifest(m) = &manifest {
        // Values cached from before are the content's own; no byte comes with them.
        ChunkList::new(id, m.len, m.cvs.clone()).expect("the content's own values");
    }

    // A frame over the cap ends the link; the daemon serves the next one.
    let too_big = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes();
    link.peer.send_raw(&too_big).await.expect("send a header");
    let closed = link.next_answer().await;
    assert!(
        matches!(closed, Ok(None) | Err(_)),
        "an oversized frame was answered: {closed:?}"
    );
    let mut again = ShareLink::open(p.alice.listen, &key, "mallory").await;
    match again.ask(Request::ListShares).await {
        Response::Shares(s) => assert_eq!(s.len(), 1, "{s:?}"),
        other => panic!("{other:?}"),
    }
    let listed = ok(&net, &p.bob, &["ls", "alice:docs"]);
    assert!(listed.stdout.contains("big.bin"), "{listed}");
}

/// A chunk of a file changed since it was hashed is refused (`Busy`, or `NotFound` once the
/// index has noticed), never served.
#[track_caller]
fn assert_changed(what: &str, answer: &Response) {
    let (kind, message) = error(what, answer);
    match kind {
        ErrorKind::Busy => assert!(
            message.contains("changed while served"),
            "{what}: {message}"
        ),
        ErrorKind::NotFound => {}
        other => panic!("{what}: {other:?} {message}"),
    }
}

/// Two daemons in `ns`, and the directory alice will share as `docs`.
fn capped_pair(ns: &NetNs) -> (TestNet, Pair, std::path::PathBuf) {
    let net = TestNet::in_netns(ns);
    let p = chat::pair(&net);
    let docs = net.unique_dir("docs");
    (net, p, docs)
}

/// Starts `get alice:docs/NAME DEST` at bob; waits for its first progress; returns its id.
fn start_pull(net: &TestNet, p: &Pair, name: &str, dest: &Path) -> (String, p2p_tests::RpcClient) {
    let mut events = p.bob.rpc();
    events.subscribe();
    let target = format!("alice:docs/{name}");
    let asked = ok(
        net,
        &p.bob,
        &[
            "--json",
            "get",
            &target,
            dest.to_str().unwrap(),
            "--no-wait",
        ],
    )
    .json();
    let id = asked["id"].as_str().expect("id").to_owned();
    events.wait_event(
        "the pull's first progress",
        progress(&id, 0),
        TRANSFER_DEADLINE,
    );
    (id, events)
}

#[test]
fn a_revoke_mid_pull_ends_it_at_the_owner_and_bob_keeps_nothing() {
    let ns = NetNs::rate_limited(64);
    let (net, p, docs) = capped_pair(&ns);
    write_pattern(&docs.join("disk.img"), 48 << 20, 5);
    share(&net, &p, "docs", &docs);
    ok(&net, &p.alice, &["grant", "docs", "bob", "read"]);
    let dest = net.unique_dir("dest");

    let (id, mut events) = start_pull(&net, &p, "disk.img", &dest);
    ok(&net, &p.alice, &["revoke", "docs", "bob"]);
    let end = events.wait_event("the pull's end", ended(&id), TRANSFER_DEADLINE);
    let t = &end["transfer"];
    assert_eq!(t["state"], "cancelled", "{end}");
    assert_eq!(t["error"], "access revoked", "{end}");
    let at_alice = get(&p.alice, &id).expect("the transfer at alice");
    assert_eq!(at_alice["state"], "cancelled", "{at_alice}");
    assert_eq!(at_alice["error"], "access revoked", "{at_alice}");
    wait_no_parts(&dest, DEADLINE);
    assert!(entries(&dest).is_empty(), "{:?}", entries(&dest));
}

#[test]
fn a_file_swapped_or_rewritten_while_pulled_never_arrives_mixed() {
    let ns = NetNs::rate_limited(64);
    let (net, p, docs) = capped_pair(&ns);
    let size = 48 << 20;
    let swapped = write_pattern(&docs.join("swap.img"), size, 6);
    let first = write_pattern(&docs.join("change.img"), size, 7);
    share(&net, &p, "docs", &docs);
    ok(&net, &p.alice, &["grant", "docs", "bob", "read"]);
    let marker = b"OUTSIDE-THE-SHARE-";
    let outside = net.unique_dir("outside").join("target.img");
    std::fs::write(&outside, marker.repeat(size / marker.len() + 1)).unwrap();

    // Swapped for a symlink to a file outside the share mid-pull.
    let dest = net.unique_dir("dest-swap");
    let (id, mut events) = start_pull(&net, &p, "swap.img", &dest);
    std::fs::remove_file(docs.join("swap.img")).unwrap();
    std::os::unix::fs::symlink(&outside, docs.join("swap.img")).unwrap();
    let end = events.wait_event("the swapped pull's end", ended(&id), TRANSFER_DEADLINE);
    for rel in entries(&dest) {
        let got = std::fs::read(dest.join(&rel)).unwrap_or_default();
        let found = got.windows(marker.len()).any(|w| w == marker);
        assert!(!found, "{rel} holds bytes of the outside file: {end}");
    }
    if end["transfer"]["state"] == "done" {
        assert!(
            std::fs::read(dest.join("swap.img")).unwrap() == swapped,
            "{end}"
        );
    }

    // Rewritten with other bytes mid-pull.
    let dest = net.unique_dir("dest-change");
    let (id, mut events) = start_pull(&net, &p, "change.img", &dest);
    let second = write_pattern(&docs.join("change.img"), size, 8);
    let end = events.wait_event("the rewritten pull's end", ended(&id), TRANSFER_DEADLINE);
    match std::fs::read(dest.join("change.img")) {
        Ok(got) => assert!(got == first || got == second, "a mix arrived: {end}"),
        Err(_) => assert_ne!(end["transfer"]["state"], "done", "{end}"),
    }
}
