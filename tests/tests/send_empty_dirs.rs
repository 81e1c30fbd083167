//! Empty directories travel with `send` (`p2p-bulk/3`), between real daemons: a directory
//! with an empty subdirectory and an empty sub-subdirectory arrives with them, also when it
//! lands as `dir (1)`; `send --json` answers with the symlinks it left out; a hand-made
//! sender's offer whose directory entry is hostile (`../x`, absolute) is refused whole with
//! the reason; a receiver that serves only `p2p-bulk/2` (an older p2pd, played by a hand-made
//! TLS listener) gets the files without the directories, and `p2pctl send` (its notes, its
//! `--json` states, `transfers`) and the sender's activity log say they were left out.
//!
//! A tree of directories alone (no file anywhere in it) is a transfer too: `a/b/c` arrives
//! as those directories (as `a (1)` when `a` is taken), an empty `a` as `a/`, also when the
//! send waited for an offline peer across the sender's restart; a hand-made sender's offer
//! of no file with a hostile directory, or of nothing at all, is refused with the reason;
//! a receiver of `p2p-bulk/2` gets no offer and the send fails saying why.

use std::path::Path;

use p2p_tests::raw::Client;
use p2p_tests::raw_peer::RawPeer;
use p2p_tests::transfer::{
    BulkSender, ShadowEntry, TRANSFER_DEADLINE, entries, get, id_of, listening_raw_peer, random_id,
    register_raw, send_files, shadow_offer, start_send, trust_auto_accept, wait_state,
    write_pattern,
};
use p2p_tests::{DEADLINE, TestNet, chat, raw};
use proto::peer::{ALPN_BULK_V2, ALPN_CHAT};
use proto::transfer::TransferFrame;
use serde_json::Value;

#[test]
fn a_directory_arrives_with_its_empty_subdirectories() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    net.ctl(&p.bob, &["trust", "alice", "--auto-accept"])
        .assert_success();
    let src = net.unique_dir("src");
    let photos = src.join("photos");
    write_pattern(&photos.join("a.jpg"), 5000, 1);
    std::fs::create_dir_all(photos.join("empty")).expect("mkdir");
    std::fs::create_dir_all(photos.join("deep/er")).expect("mkdir");
    std::os::unix::fs::symlink("/etc/passwd", photos.join("link")).expect("symlink");
    let arg = photos.to_str().expect("test paths are UTF-8");

    let out = net.ctl(&p.alice, &["--json", "send", arg, "bob"]);
    out.assert_success();
    let first: Value = serde_json::from_str(out.stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the first line is the answer ({e}): {out}"));
    assert_eq!(
        first["skipped"],
        serde_json::json!([{"path": "photos/link", "reason": "symlink (not followed)"}]),
        "{out}"
    );
    let last: Value = serde_json::from_str(out.stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the last line is the transfer ({e}): {out}"));
    assert_eq!(last["state"], "done", "{out}");
    let dl = p.bob.download_dir();
    let want = [
        "photos/",
        "photos/a.jpg",
        "photos/deep/",
        "photos/deep/er/",
        "photos/empty/",
    ];
    let mut got = entries(dl);
    got.sort();
    assert_eq!(got, want);

    // Sent again, it lands beside as `photos (1)`, its empty directories inside it.
    net.ctl(&p.alice, &["send", arg, "bob"]).assert_success();
    let mut got = entries(&dl.join("photos (1)"));
    got.sort();
    assert_eq!(got, ["a.jpg", "deep/", "deep/er/", "empty/"]);
    assert_eq!(
        entries(&dl.join("photos")).len(),
        4,
        "nothing merged into the first"
    );
}

/// Mallory, a hand-made sender, offers bob `files` followed by each case's directory list
/// (no list for `None`), each on a bulk link of its own: bob answers each with `Failed` whose
/// reason holds the case's text, and makes nothing.
async fn mallory_is_refused(files: &[ShadowEntry], cases: &[(Option<&[&str]>, &str)]) {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let key = raw::random_key();
    let _registration = register_raw(&p.tracker, &key, "mallory").await;
    p.bob.wait_peer("mallory", true, DEADLINE);
    let corner = p.bob.download_dir().parent().expect("a parent").to_owned();
    let before = entries(&corner);
    for &(dirs, want) in cases {
        let id = random_id();
        let mut payload = shadow_offer(id, files);
        if let Some(dirs) = dirs {
            payload.extend(postcard::to_stdvec(&dirs.to_vec()).expect("encode the directories"));
        }
        let mut s = BulkSender::connect(p.bob.listen, &key, "mallory")
            .await
            .expect("a bulk link to bob");
        s.send_payload(&payload).await.expect("send the offer");
        match s.recv(DEADLINE).await {
            Ok(Some(TransferFrame::Failed { id: got, reason })) => {
                assert_eq!(got, id, "{dirs:?}");
                assert!(reason.contains(want), "{dirs:?}: {reason}");
            }
            other => panic!("{dirs:?}: expected Failed from bob, got {other:?}"),
        }
    }
    assert_eq!(entries(&corner), before, "bob made something");
    assert!(p.bob.proc.is_running());
}

#[tokio::test]
async fn hostile_directory_entries_are_refused_with_the_reason() {
    let data = b"fine";
    let file = ShadowEntry {
        path: "fine.txt".into(),
        size: data.len() as u64,
        hash: *blake3::hash(data).as_bytes(),
    };
    let cases: [(Option<&[&str]>, &str); 3] = [
        (Some(&["../x"]), r#"directory "../x": component 0 is "..""#),
        (
            Some(&["/etc/x"]),
            r#"directory "/etc/x": the path is absolute"#,
        ),
        (
            Some(&["ok/../../x"]),
            r#"directory "ok/../../x": component 1 is "..""#,
        ),
    ];
    mallory_is_refused(std::slice::from_ref(&file), &cases).await;
}

/// alice sends `path` to olga, a hand-made peer that serves the chat and `p2p-bulk/2` only
/// (an older p2pd): alice offers both bulk versions and gets /2. Returns the transfer id,
/// olga's end of the bulk link and her tracker link (which keeps her registered).
async fn send_to_olga(p: &chat::Pair, path: &Path) -> (String, BulkSender, Client) {
    let (olga, listener, registration) = listening_raw_peer(&p.tracker, &p.alice, "olga").await;
    let id = id_of(&start_send(&p.alice, "olga", path));
    let (peer, alpn) =
        RawPeer::accept_hello_alpn(&listener, &olga, "olga", &[ALPN_CHAT, ALPN_BULK_V2])
            .await
            .expect("alice dials olga");
    assert_eq!(alpn, ALPN_BULK_V2);
    (id, BulkSender { peer }, registration)
}

// Olga's end runs on a worker while the test thread waits on alice's `p2pctl send`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_receiver_gets_the_files_without_the_directories() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let photos = net.unique_dir("src").join("photos");
    write_pattern(&photos.join("a.jpg"), 3000, 7);
    std::fs::create_dir_all(photos.join("empty")).expect("mkdir");
    // `deep` holds `er` only: the empty directories are `empty` and `deep/er`.
    std::fs::create_dir_all(photos.join("deep/er")).expect("mkdir");
    let (olga, listener, _registration) = listening_raw_peer(&p.tracker, &p.alice, "olga").await;
    // Olga, an older p2pd: she serves the chat and p2p-bulk/2 only, accepts the offer and
    // says `Done` once alice has sent everything.
    let olga_end = tokio::spawn(async move {
        let (peer, alpn) =
            RawPeer::accept_hello_alpn(&listener, &olga, "olga", &[ALPN_CHAT, ALPN_BULK_V2])
                .await
                .expect("alice dials olga");
        assert_eq!(alpn, ALPN_BULK_V2);
        let mut link = BulkSender { peer };
        let offer = link.recv(TRANSFER_DEADLINE).await;
        let Ok(Some(TransferFrame::Offer(m))) = offer else {
            panic!("expected an offer, got {offer:?}");
        };
        let id = m.id;
        link.send(&TransferFrame::Accept {
            id,
            resume: Vec::new(),
        })
        .await
        .expect("accept");
        loop {
            match link.recv(TRANSFER_DEADLINE).await {
                Ok(Some(TransferFrame::Done { .. })) => break,
                Ok(Some(_)) => {}
                r => panic!("expected the file then Done, got {r:?}"),
            }
        }
        link.send(&TransferFrame::Done { id }).await.expect("Done");
        (m, link)
    });
    let arg = photos.to_str().expect("test paths are UTF-8");
    let out = net.ctl(&p.alice, &["--json", "send", arg, "olga"]);
    let (m, _link) = olga_end.await.expect("olga's end");
    // The offer decodes as p2p-bulk/2 does, strictly: no directory list after the files.
    let files: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(files, ["photos/a.jpg"]);
    assert!(m.dirs.is_empty(), "{m:?}");

    // The files arrived: success, and p2pctl says what did not.
    out.assert_success();
    assert_eq!(
        out.stderr
            .matches(
                "left out 2 empty directories: olga's p2pd speaks p2p-bulk/2, which carries \
                 files only\n"
            )
            .count(),
        1,
        "{out}"
    );
    let last: Value = serde_json::from_str(out.stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the last line is the transfer ({e}): {out}"));
    assert_eq!(
        (&last["state"], &last["dirs_left_out"]),
        (&"done".into(), &2.into()),
        "{out}"
    );
    let listed = get(&p.alice, &id_of(&last)).expect("listed");
    assert_eq!(listed["dirs_left_out"], 2, "{listed:#}");
    p.alice
        .wait_activity("saying the directories were left out", 1, DEADLINE, |l| {
            l.contains(r#""op":"dirs-left-out""#) && l.contains("olga")
        });
}

#[test]
fn directories_alone_arrive_as_directories() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    trust_auto_accept(&p.bob, "alice");
    let src = net.unique_dir("src");
    let a = src.join("a");
    std::fs::create_dir_all(a.join("b/c")).expect("mkdir");
    let arg = a.to_str().expect("test paths are UTF-8");
    let dl = p.bob.download_dir();

    let out = net.ctl(&p.alice, &["send", arg, "bob"]);
    out.assert_success();
    assert_eq!(
        out.stdout, "bob has the directories (they hold no file)\n",
        "{out}"
    );
    assert_eq!(entries(dl), ["a/", "a/b/", "a/b/c/"]);

    // Sent again, it lands beside as `a (1)`.
    let out = net.ctl(&p.alice, &["--json", "send", arg, "bob"]);
    out.assert_success();
    let last: Value = serde_json::from_str(out.stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the last line is the transfer ({e}): {out}"));
    assert_eq!(
        (&last["state"], &last["files"]),
        (&"done".into(), &0.into()),
        "{out}"
    );
    assert_eq!(entries(&dl.join("a (1)")), ["b/", "b/c/"]);
    assert_eq!(
        entries(&dl.join("a")),
        ["b/", "b/c/"],
        "nothing merged into the first"
    );

    // An empty directory alone arrives as itself; an empty file still arrives as a file.
    let e = src.join("e");
    std::fs::create_dir(&e).expect("mkdir");
    let zero = src.join("zero.bin");
    std::fs::write(&zero, b"").expect("write");
    for path in [&e, &zero] {
        let arg = path.to_str().expect("test paths are UTF-8");
        net.ctl(&p.alice, &["send", arg, "bob"]).assert_success();
    }
    assert!(dl.join("e").is_dir() && entries(&dl.join("e")).is_empty());
    assert_eq!(
        std::fs::read(dl.join("zero.bin")).expect("zero.bin arrived"),
        b""
    );
}

#[test]
fn a_queued_send_of_directories_alone_survives_the_senders_restart() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    trust_auto_accept(&p.bob, "alice");
    p.bob.stop();
    p.alice.wait_peer("bob", false, DEADLINE);
    let tree = net.unique_dir("src").join("tree");
    std::fs::create_dir_all(tree.join("x/y")).expect("mkdir");
    std::fs::create_dir_all(tree.join("z")).expect("mkdir");

    let t = send_files(&p.alice, "bob", &tree);
    assert_eq!(t["state"], "queued", "{t:#}");
    let id = id_of(&t);
    p.alice.restart();
    let t = get(&p.alice, &id).expect("alice still lists the transfer");
    assert_eq!(
        (&t["state"], &t["files"]),
        (&"queued".into(), &0.into()),
        "{t:#}"
    );
    p.bob.restart();
    for node in [&p.bob, &p.alice] {
        wait_state(node, &id, "done", TRANSFER_DEADLINE);
    }
    assert_eq!(
        entries(p.bob.download_dir()),
        ["tree/", "tree/x/", "tree/x/y/", "tree/z/"]
    );
}

#[tokio::test]
async fn an_offer_of_no_file_is_checked_like_any_other() {
    let nothing = "the offer holds neither files nor directories";
    let cases: [(Option<&[&str]>, &str); 4] = [
        (Some(&["../x"]), r#"directory "../x": component 0 is "..""#),
        (
            Some(&["ok", "/etc/x"]),
            r#"directory "/etc/x": the path is absolute"#,
        ),
        (None, nothing),
        (Some(&[]), nothing),
    ];
    mallory_is_refused(&[], &cases).await;
}

// Olga's listener runs on a worker while the test thread waits on alice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_alone_to_an_older_receiver_fail_saying_why() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let tree = net.unique_dir("src").join("tree");
    std::fs::create_dir_all(tree.join("x")).expect("mkdir");
    let (id, mut link, _registration) = send_to_olga(&p, &tree).await;
    // No offer of nothing: alice closes the link.
    let first = link.recv(TRANSFER_DEADLINE).await;
    assert!(matches!(first, Ok(None) | Err(_)), "{first:?}");
    let t = wait_state(&p.alice, &id, "failed", TRANSFER_DEADLINE);
    let error = t["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("p2p-bulk/2") && error.contains("directories without files"),
        "{t:#}"
    );
}
