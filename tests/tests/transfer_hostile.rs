//! A sender that lies, played by a hand-made bulk link (TLS with ALPN `p2p-bulk/2`, a key
//! registered at the tracker as "mallory"): offers whose paths climb out, are absolute or
//! are not portable, or whose paths clash, are refused whole with a `Failed` frame that names
//! the path and the rule it breaks, with nothing recorded or written; after an accepted
//! offer, a chunk that fails its chunk value, more or fewer bytes than announced, chunk
//! values that do not add up to the announced content id (refused before any chunk), values
//! past the file's end, a chunk before its values and an unknown file each fail the transfer,
//! with no final file and no part file left. Names that deceive (two Unicode spellings of
//! one name, fullwidth `．．／`, bidi overrides, zero-width characters) are refused the same
//! way, and a name bob already holds in another spelling is not written beside it. Through
//! it all bob keeps serving: an honest transfer (by hand, and from a real daemon) arrives
//! intact afterwards.

use std::path::Path;
use std::time::Duration;

use p2p_tests::chat::{self, Pair};
use p2p_tests::raw;
use p2p_tests::transfer::{
    self as xfer, BulkSender, ShadowEntry, TRANSFER_DEADLINE, accept, assert_content, entries,
    id_of, pattern, random_id, register_raw, send_files, shadow_offer, wait_no_parts, wait_state,
    wait_transfer, write_pattern,
};
use p2p_tests::{DEADLINE, P2pd, TestNet};
use proto::SecretKey;
use proto::transfer::{CHUNK, TransferFrame, TransferId};

/// A link that sent something bad must be closed well within this.
const FAST_CLOSE: Duration = Duration::from_secs(5);

/// Entries under bob's own directory (its download directory's parent), leaving out the
/// state and socket directories and its logs, which change on their own.
fn bobs_corner(bob: &P2pd) -> Vec<String> {
    let dir = bob.download_dir().parent().expect("a parent");
    entries(dir)
        .into_iter()
        .filter(|e| !e.starts_with("state/") && !e.starts_with("run/") && !e.starts_with("stderr"))
        .collect()
}

/// alice sends a fresh file to bob, bob accepts, it arrives intact.
fn alice_still_gets_through(net: &TestNet, p: &Pair, seed: u64) {
    let name = format!("proof-{seed}.bin");
    alice_sends(net, p, &name, &name, seed);
}

/// alice sends a fresh file named `name` on her disk; bob accepts, and it arrives intact
/// as `lands_as`.
fn alice_sends(net: &TestNet, p: &Pair, name: &str, lands_as: &str, seed: u64) {
    let file = net.unique_dir("src").join(name);
    let data = write_pattern(&file, 2 * CHUNK as usize + 99, seed);
    let id = id_of(&send_files(&p.alice, "bob", &file));
    wait_transfer(&p.bob, &id, "offered", DEADLINE, |t| {
        t["state"] == "offered"
    });
    accept(&p.bob, &id, None);
    wait_state(&p.bob, &id, "done", TRANSFER_DEADLINE);
    wait_state(&p.alice, &id, "done", DEADLINE);
    assert_content(&p.bob.download_dir().join(lands_as), &data);
}

async fn mallory(p: &Pair) -> (SecretKey, raw::Client) {
    let key = raw::random_key();
    let registration = register_raw(&p.tracker, &key, "mallory").await;
    p.bob.wait_peer("mallory", true, DEADLINE);
    (key, registration)
}

/// Offers `payload` (an `Offer` frame's bytes for transfer `id`) on a new bulk link and
/// returns bob's reason: he must answer `Failed` for that id, then close the link.
async fn refusal(p: &Pair, key: &SecretKey, id: TransferId, payload: &[u8], what: &str) -> String {
    let mut s = BulkSender::connect(p.bob.listen, key, "mallory")
        .await
        .unwrap_or_else(|e| panic!("{what}: bulk link to bob: {e}"));
    s.send_payload(payload).await.expect("send the offer");
    let reason = match s.recv(DEADLINE).await {
        Ok(Some(TransferFrame::Failed { id: got, reason })) => {
            assert_eq!(got, id, "{what}");
            reason
        }
        other => panic!("{what}: expected Failed from bob, got {other:?}"),
    };
    s.wait_closed(FAST_CLOSE)
        .await
        .unwrap_or_else(|e| panic!("{what}: bob kept the link open: {e}"));
    reason
}

/// An entry of `size` bytes of `content` at `path`, whatever the path is.
fn entry(path: &str, content: &[u8]) -> ShadowEntry {
    ShadowEntry {
        path: path.to_owned(),
        size: content.len() as u64,
        hash: *blake3::hash(content).as_bytes(),
    }
}

#[tokio::test]
async fn offers_with_hostile_paths_are_refused_whole_with_the_reason_and_nothing_is_written() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let (key, _registration) = mallory(&p).await;
    let dl = p.bob.download_dir().to_owned();
    let corner = bobs_corner(&p.bob);
    let etc_x = Path::new("/etc/x").exists();

    let long = "x".repeat(256);
    // Each hostile path beside a fine one, and what bob's refusal must say.
    let hostile = [
        ("../evil", r#"path "../evil": component 0 is "..""#),
        (
            "a/../../evil",
            r#"path "a/../../evil": component 1 is "..""#,
        ),
        ("/etc/x", r#"path "/etc/x": the path is absolute"#),
        ("a\\b", "holds a backslash"),
        ("C:evil", "holds ':', a drive letter"),
        (
            "con.txt",
            r#"component 0 ("con.txt") is a reserved device name on Windows"#,
        ),
        (
            "dir/LPT1",
            r#"component 1 ("LPT1") is a reserved device name on Windows"#,
        ),
        ("a\0b", r"holds the control character '\0'"),
        ("bell\u{7}", r"holds the control character '\u{7}'"),
        ("new\nline", r"holds the control character '\n'"),
        (&long, "is 256 bytes long; at most 255 are allowed"),
        ("trailing.", "ends with a dot or a space"),
        ("a//b", "component 1 is empty"),
        (".", r#"component 0 is ".""#),
        ("", r#"path "": the path is empty"#),
    ];
    let mut reasons = Vec::new();
    for (path, why) in hostile {
        let id = random_id();
        let files = [entry("fine.txt", b"fine\n"), entry(path, b"evil\n")];
        let reason = refusal(&p, &key, id, &shadow_offer(id, &files), path).await;
        assert!(
            reason.starts_with("offer refused: ") && reason.contains(why),
            "{path:?}: bob said {reason:?}, not {why:?}"
        );
        assert!(!reason.chars().any(char::is_control), "{reason:?}");
        reasons.push(reason);
    }
    // Paths each fine alone, but not together; and a path that is not UTF-8 (the bytes of
    // "bad\u{e9}" with the \u{e9} replaced by two bytes that are never UTF-8).
    let together = [
        (["fine.txt", "fine.txt"], "the offer lists fine.txt twice"),
        (
            ["fine.txt", "FINE.txt"],
            "the offer lists fine.txt and FINE.txt, which differ only in case",
        ),
        (
            ["fine.txt", "fine.txt/x"],
            "the offer lists fine.txt as a file and also fine.txt/x inside it",
        ),
    ];
    for ([one, two], why) in together {
        let id = random_id();
        let files = [entry(one, b"1"), entry(two, b"2")];
        let reason = refusal(&p, &key, id, &shadow_offer(id, &files), two).await;
        assert_eq!(reason, format!("offer refused: {why}"));
        reasons.push(reason);
    }
    let id = random_id();
    let mut payload = shadow_offer(id, &[entry("fine.txt", b"1"), entry("bad\u{e9}", b"2")]);
    let at = payload
        .windows(2)
        .position(|w| w == [0xc3, 0xa9])
        .expect("the encoded path");
    payload[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
    let reason = refusal(&p, &key, id, &payload, "not UTF-8").await;
    assert_eq!(reason, "offer refused: the path of file 1 is not UTF-8");
    reasons.push(reason);
    for r in &reasons {
        eprintln!("{r}");
    }
    p.bob
        .wait_activity("recording the refusals", reasons.len(), DEADLINE, |l| {
            l.contains("offer-refused") && l.contains("mallory")
        });

    // A sender that does not wait for the answer: data for both files follows the offer at
    // once. The link is closed as fast.
    for path in ["../evil", "/etc/x"] {
        let mut s = BulkSender::connect(p.bob.listen, &key, "mallory")
            .await
            .expect("bulk link to bob");
        let id = random_id();
        let files = [entry("fine.txt", b"fine\n"), entry(path, b"evil\n")];
        s.send_payload(&shadow_offer(id, &files))
            .await
            .expect("send the offer");
        let _ = s.send_data(id, 0, b"fine\n").await;
        let _ = s.send_data(id, 1, b"evil\n").await;
        let took = s
            .wait_closed(FAST_CLOSE)
            .await
            .unwrap_or_else(|e| panic!("{path:?}: bob kept the link open: {e}"));
        eprintln!("{path:?} with data after it: closed after {took:?}");
    }

    assert_eq!(
        xfer::list(&p.bob),
        Vec::<serde_json::Value>::new(),
        "an offer was recorded"
    );
    assert_eq!(
        entries(&dl),
        Vec::<String>::new(),
        "written in the downloads"
    );
    assert_eq!(bobs_corner(&p.bob), corner, "written next to the downloads");
    assert_eq!(Path::new("/etc/x").exists(), etc_x, "/etc/x appeared");
    assert!(p.bob.proc.is_running());
    alice_still_gets_through(&net, &p, 100);
}

#[tokio::test]
async fn deceptive_unicode_names_are_refused_and_spellings_of_one_name_collide() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let (key, _registration) = mallory(&p).await;
    let dl = p.bob.download_dir().to_owned();
    let (composed, decomposed) = ("caf\u{e9}.txt", "cafe\u{301}.txt");

    // Refused whole, each with its reason; the reason never carries a raw bidi control or
    // invisible character (look-alikes are visible, and shown).
    let cases: [(&[&str], &str); 5] = [
        (
            &[composed, decomposed],
            "offer refused: the offer lists caf\u{e9}.txt twice",
        ),
        (
            &["fine.txt", "\u{ff0e}\u{ff0e}\u{ff0f}x"],
            "holds U+FF0E FULLWIDTH FULL STOP, which reads as \".\"",
        ),
        (
            &["fine.txt", "dir\u{2215}x"],
            "holds U+2215 DIVISION SLASH, which reads as \"/\"",
        ),
        (
            &["fine.txt", "invoice\u{202e}fdp.exe"],
            "holds U+202E RIGHT-TO-LEFT OVERRIDE, a bidi control",
        ),
        (
            &["fine.txt", "pay\u{200b}pal.pdf"],
            "holds U+200B ZERO WIDTH SPACE, an invisible character",
        ),
    ];
    for (paths, why) in cases {
        let id = random_id();
        let files: Vec<ShadowEntry> = paths.iter().map(|n| entry(n, b"x")).collect();
        let reason = refusal(&p, &key, id, &shadow_offer(id, &files), why).await;
        assert!(
            reason.starts_with("offer refused: ") && reason.contains(why),
            "{paths:?}: bob said {reason:?}, not {why:?}"
        );
        assert!(
            !reason.contains(['\u{202e}', '\u{200b}', '\u{301}']),
            "{reason:?}"
        );
        eprintln!("{reason}");
    }
    assert_eq!(xfer::list(&p.bob), Vec::<serde_json::Value>::new());
    assert_eq!(entries(&dl), Vec::<String>::new());

    // Bob already holds café.txt (NFC); mallory sends the decomposed spelling, honestly.
    std::fs::write(dl.join(composed), b"mine").expect("write bob's file");
    let data = pattern(3000, 7);
    honest_delivery(&p, &key, decomposed, &data).await;
    let copy = "caf\u{e9} (1).txt";
    let mut want = vec![composed.to_owned(), copy.to_owned()];
    want.sort();
    assert_eq!(entries(&dl), want, "not one byte form beside the other");
    assert_content(&dl.join(copy), &data);
    assert_content(&dl.join(composed), b"mine");

    // A real sender whose file is named decomposed on its disk: offered in NFC, still read.
    alice_sends(&net, &p, "cre\u{300}me.bin", "cr\u{e8}me.bin", 8);
    assert!(!dl.join("cre\u{300}me.bin").exists());
    assert!(p.bob.proc.is_running());
}

/// Mallory's offer of one file `name`, announced as `size` bytes hashing to `hash`, accepted
/// at bob into his download directory; returns the link (after bob's `Accept`) and the id.
async fn accepted_offer(
    p: &Pair,
    key: &SecretKey,
    name: &str,
    size: u64,
    hash: [u8; 32],
) -> (BulkSender, TransferId) {
    let mut s = BulkSender::connect(p.bob.listen, key, "mallory")
        .await
        .expect("bulk link to bob");
    let id = random_id();
    // The name goes out as given, not normalised: bob must do that himself.
    let files = [ShadowEntry {
        path: name.to_owned(),
        size,
        hash,
    }];
    s.send_payload(&shadow_offer(id, &files))
        .await
        .expect("send the offer");
    let ids = id.to_string();
    let t = wait_transfer(&p.bob, &ids, "mallory's offer", DEADLINE, |t| {
        t["state"] == "offered"
    });
    assert_eq!(
        (&t["peer_name"], &t["total_bytes"]),
        (&"mallory".into(), &size.into()),
        "{t:#}"
    );
    accept(&p.bob, &ids, None);
    match s.recv(DEADLINE).await.expect("bob's answer") {
        Some(TransferFrame::Accept { id: got, resume }) => {
            assert_eq!(got, id);
            assert!(
                resume.iter().all(|r| r.verified_chunks == 0),
                "nothing held yet: {resume:?}"
            );
        }
        other => panic!("expected Accept, got {other:?}"),
    }
    (s, id)
}

/// Mallory offers `data` as one file `name`, bob accepts, mallory sends it honestly and bob
/// answers `Done`.
async fn honest_delivery(p: &Pair, key: &SecretKey, name: &str, data: &[u8]) {
    let hash = *blake3::hash(data).as_bytes();
    let (mut s, id) = accepted_offer(p, key, name, data.len() as u64, hash).await;
    s.send_data(id, 0, data).await.expect("send");
    s.send(&TransferFrame::FileDone { id, file: 0 })
        .await
        .expect("send");
    s.send(&TransferFrame::Done { id }).await.expect("send");
    match s.recv(DEADLINE).await.expect("bob's answer") {
        Some(TransferFrame::Done { id: got }) => assert_eq!(got, id),
        other => panic!("expected Done, got {other:?}"),
    }
    wait_state(&p.bob, &id.to_string(), "done", DEADLINE);
}

/// After mallory misbehaved on transfer `id` of `name`: bob tells mallory it failed, lists
/// it failed, and keeps neither a final file nor a part file. Returns bob's reason.
///
/// The lie must be the last frame mallory sent: bob then has nothing unread when it closes
/// the link (a close with unread data resets the connection, which may discard bob's
/// `Failed` before mallory reads it).
async fn assert_failed_cleanly(p: &Pair, s: &mut BulkSender, id: TransferId, name: &str) -> String {
    let told = loop {
        match s.recv(DEADLINE).await {
            Ok(Some(TransferFrame::Failed { id: got, reason })) => {
                assert_eq!(got, id);
                break reason;
            }
            // Anything else bob may still send first is skipped.
            Ok(Some(_)) => {}
            other => panic!("{name}: expected Failed from bob, got {other:?}"),
        }
    };
    let t = wait_state(&p.bob, &id.to_string(), "failed", DEADLINE);
    assert_eq!(t["error"], told.as_str(), "{t:#}");
    let dl = p.bob.download_dir();
    wait_no_parts(dl, DEADLINE);
    assert_eq!(
        entries(dl),
        Vec::<String>::new(),
        "{name}: left in the downloads"
    );
    told
}

#[tokio::test]
async fn lying_senders_fail_the_transfer_and_leave_no_file() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let (key, _registration) = mallory(&p).await;
    let dl = p.bob.download_dir().to_owned();
    let hash = |d: &[u8]| *blake3::hash(d).as_bytes();

    // Control: the hand-made sender, honest, gets a file through (so every failure below
    // is the lie's doing).
    let data = pattern(2 * CHUNK as usize + 5, 1);
    honest_delivery(&p, &key, "honest.bin", &data).await;
    assert_content(&dl.join("honest.bin"), &data);
    std::fs::remove_file(dl.join("honest.bin")).expect("remove");

    let small = pattern(3000, 2);
    let mut reasons = Vec::new();

    // (a) A chunk whose bytes do not match its value, in a file of one chunk (its value is
    // the content id) and in a file of three.
    let (mut s, id) = accepted_offer(&p, &key, "a.bin", 3000, hash(&small)).await;
    let mut bad = small.clone();
    bad[1234] ^= 1;
    s.send_values(id, 0, &small).await.expect("send");
    s.send(&TransferFrame::Chunk {
        id,
        file: 0,
        index: 0,
        data: bad.into(),
    })
    .await
    .expect("send");
    reasons.push((
        "bad chunk",
        assert_failed_cleanly(&p, &mut s, id, "a.bin").await,
    ));
    let three = pattern(2 * CHUNK as usize + 10, 3);
    let (mut s, id) = accepted_offer(&p, &key, "a3.bin", three.len() as u64, hash(&three)).await;
    let mut bad = three[CHUNK as usize..2 * CHUNK as usize].to_vec();
    bad[77] ^= 1;
    s.send_values(id, 0, &three).await.expect("send");
    s.send_chunk(id, 0, 0, &three[..CHUNK as usize])
        .await
        .expect("send");
    s.send_chunk(id, 0, 1, &bad).await.expect("send");
    reasons.push((
        "bad middle chunk",
        assert_failed_cleanly(&p, &mut s, id, "a3.bin").await,
    ));

    // (b1) More bytes than announced: a whole extra chunk after the last.
    let (mut s, id) = accepted_offer(&p, &key, "b1.bin", 3000, hash(&small)).await;
    s.send_data(id, 0, &small).await.expect("send");
    s.send_chunk(id, 0, 1, b"one chunk too many")
        .await
        .expect("send");
    reasons.push((
        "extra chunk",
        assert_failed_cleanly(&p, &mut s, id, "b1.bin").await,
    ));

    // (b2) More bytes than announced: the only chunk is one byte longer than the file.
    let (mut s, id) = accepted_offer(&p, &key, "b2.bin", 3000, hash(&small)).await;
    let mut long = small.clone();
    long.push(0);
    s.send_chunk(id, 0, 0, &long).await.expect("send");
    reasons.push((
        "long chunk",
        assert_failed_cleanly(&p, &mut s, id, "b2.bin").await,
    ));

    // (b3) More bytes than announced, in a multi-chunk file: a full chunk where the last,
    // shorter one belongs.
    let (mut s, id) = accepted_offer(&p, &key, "b3.bin", three.len() as u64, hash(&three)).await;
    s.send_values(id, 0, &three).await.expect("send");
    s.send_chunks(id, 0, &three, 0..2).await.expect("send");
    s.send_chunk(id, 0, 2, &pattern(CHUNK as usize, 4))
        .await
        .expect("send");
    reasons.push((
        "full last chunk",
        assert_failed_cleanly(&p, &mut s, id, "b3.bin").await,
    ));

    // (c1) Fewer bytes: FileDone after two chunks of three.
    let (mut s, id) = accepted_offer(&p, &key, "c1.bin", three.len() as u64, hash(&three)).await;
    s.send_values(id, 0, &three).await.expect("send");
    s.send_chunks(id, 0, &three, 0..2).await.expect("send");
    s.send(&TransferFrame::FileDone { id, file: 0 })
        .await
        .expect("send");
    reasons.push((
        "early FileDone",
        assert_failed_cleanly(&p, &mut s, id, "c1.bin").await,
    ));

    // (c2) Fewer bytes: Done with no FileDone and a chunk missing.
    let (mut s, id) = accepted_offer(&p, &key, "c2.bin", three.len() as u64, hash(&three)).await;
    s.send_values(id, 0, &three).await.expect("send");
    s.send_chunk(id, 0, 0, &three[..CHUNK as usize])
        .await
        .expect("send");
    s.send(&TransferFrame::Done { id }).await.expect("send");
    reasons.push((
        "early Done",
        assert_failed_cleanly(&p, &mut s, id, "c2.bin").await,
    ));

    // (d) Chunk values consistent with the chunks that would follow, but of another file
    // than the one announced: they do not add up to its content id, and are refused before
    // any chunk (the same for a one-chunk file, whose value is its id).
    let other = pattern(three.len(), 5);
    let (mut s, id) = accepted_offer(&p, &key, "d.bin", three.len() as u64, hash(&three)).await;
    s.send_values(id, 0, &other).await.expect("send");
    reasons.push((
        "wrong file",
        assert_failed_cleanly(&p, &mut s, id, "d.bin").await,
    ));
    let (mut s, id) = accepted_offer(&p, &key, "d1.bin", 3000, hash(&small)).await;
    s.send_values(id, 0, &pattern(3000, 6)).await.expect("send");
    reasons.push((
        "wrong one-chunk file",
        assert_failed_cleanly(&p, &mut s, id, "d1.bin").await,
    ));

    // (e) Chunk values past the end of the file, and a chunk sent before its file's values.
    let (mut s, id) = accepted_offer(&p, &key, "e.bin", 3000, hash(&small)).await;
    s.send_values(id, 0, &three).await.expect("send");
    reasons.push((
        "values past the end",
        assert_failed_cleanly(&p, &mut s, id, "e.bin").await,
    ));
    let (mut s, id) = accepted_offer(&p, &key, "e2.bin", 3000, hash(&small)).await;
    s.send_chunk(id, 0, 0, &small).await.expect("send");
    reasons.push((
        "chunk without values",
        assert_failed_cleanly(&p, &mut s, id, "e2.bin").await,
    ));

    // (f) A chunk for a file the offer does not hold.
    let (mut s, id) = accepted_offer(&p, &key, "f.bin", 3000, hash(&small)).await;
    s.send_chunk(id, 7, 0, &small).await.expect("send");
    reasons.push((
        "file 7",
        assert_failed_cleanly(&p, &mut s, id, "f.bin").await,
    ));

    for (what, reason) in &reasons {
        eprintln!("{what}: {reason}");
    }
    assert!(p.bob.proc.is_running());
    alice_still_gets_through(&net, &p, 200);
}
