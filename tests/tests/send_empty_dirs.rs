//! Empty directories travel with `send` (`p2p-bulk/3`), between real daemons: a directory
//! with an empty subdirectory and an empty sub-subdirectory arrives with them, also when it
//! lands as `dir (1)`; `send --json` answers with the symlinks it left out; a hand-made
//! sender's offer whose directory entry is hostile (`../x`, absolute) is refused whole with
//! the reason; a receiver that serves only `p2p-bulk/2` (an older p2pd, played by a hand-made
//! TLS listener) gets the files without the directories, and the sender's activity log says
//! they were left out.

use p2p_tests::raw_peer::RawPeer;
use p2p_tests::transfer::{
    BulkSender, ShadowEntry, TRANSFER_DEADLINE, entries, listening_raw_peer, random_id,
    register_raw, shadow_offer, start_send, write_pattern,
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

#[tokio::test]
async fn hostile_directory_entries_are_refused_with_the_reason() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let key = raw::random_key();
    let _registration = register_raw(&p.tracker, &key, "mallory").await;
    p.bob.wait_peer("mallory", true, DEADLINE);
    let corner = p.bob.download_dir().parent().expect("a parent").to_owned();
    let before = entries(&corner);
    let data = b"fine";
    let file = ShadowEntry {
        path: "fine.txt".into(),
        size: data.len() as u64,
        hash: *blake3::hash(data).as_bytes(),
    };
    for (dir, want) in [
        ("../x", r#"directory "../x": component 0 is "..""#),
        ("/etc/x", r#"directory "/etc/x": the path is absolute"#),
        (
            "ok/../../x",
            r#"directory "ok/../../x": component 1 is "..""#,
        ),
    ] {
        let id = random_id();
        let mut payload = shadow_offer(id, std::slice::from_ref(&file));
        payload.extend(postcard::to_stdvec(&vec![dir]).expect("encode the directories"));
        let mut s = BulkSender::connect(p.bob.listen, &key, "mallory")
            .await
            .expect("a bulk link to bob");
        s.send_payload(&payload).await.expect("send the offer");
        match s.recv(DEADLINE).await {
            Ok(Some(TransferFrame::Failed { id: got, reason })) => {
                assert_eq!(got, id, "{dir}");
                assert!(reason.contains(want), "{dir}: {reason}");
            }
            other => panic!("{dir}: expected Failed from bob, got {other:?}"),
        }
    }
    assert_eq!(entries(&corner), before, "bob made something");
    assert!(p.bob.proc.is_running());
}

// Olga's listener runs on a worker while the test thread waits on alice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_receiver_gets_the_files_without_the_directories() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let (olga, listener, _registration) = listening_raw_peer(&p.tracker, &p.alice, "olga").await;

    let src = net.unique_dir("src");
    let photos = src.join("photos");
    write_pattern(&photos.join("a.jpg"), 3000, 7);
    std::fs::create_dir_all(photos.join("empty")).expect("mkdir");
    let _ = start_send(&p.alice, "olga", &photos);

    // Olga serves the chat and p2p-bulk/2 only: alice offers both bulk versions, gets /2.
    let (peer, alpn) =
        RawPeer::accept_hello_alpn(&listener, &olga, "olga", &[ALPN_CHAT, ALPN_BULK_V2])
            .await
            .expect("alice dials olga");
    assert_eq!(alpn, ALPN_BULK_V2);
    let mut link = BulkSender { peer };
    // The offer decodes as p2p-bulk/2 does, strictly: no directory list after the files.
    let offer = link.recv(TRANSFER_DEADLINE).await;
    let Ok(Some(TransferFrame::Offer(m))) = offer else {
        panic!("expected an offer, got {offer:?}");
    };
    let files: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(files, ["photos/a.jpg"]);
    assert!(m.dirs.is_empty(), "{m:?}");
    p.alice
        .wait_activity("saying the directories were left out", 1, DEADLINE, |l| {
            l.contains(r#""op":"dirs-left-out""#) && l.contains("olga")
        });
}
