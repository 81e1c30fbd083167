//! What a stranger (a freshly registered key, "mallory", driving bulk links by hand) can make
//! a daemon hold for transfers, and the deadlines on what it holds: offers past the per-peer
//! caps are refused on the wire with the reason and never stored, while the daemon's memory
//! stays bounded and a real offer still gets through; an undecided offer expires at both
//! ends; a link waiting for a decision is closed at the decision deadline, and links past the
//! per-peer cap are refused; a sender gone silent mid-transfer loses its link at the progress
//! deadline and the transfer resumes when it is back.
//!
//! The limits are set low in alice's config file so that each shows within seconds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use p2p_tests::chat::{self, Pair};
use p2p_tests::transfer::{
    BulkSender, TRANSFER_DEADLINE, accept, assert_content, id_of, list, offer, random_id,
    register_raw, send_files, wait_state, wait_transfer, write_pattern,
};
use p2p_tests::{DEADLINE, P2pd, TestNet, raw};
use proto::SecretKey;
use proto::transfer::{
    BULK_LINKS_BUSY, CHUNK, FileEntry, Manifest, OFFER_EXPIRED, RelPath, TransferFrame, TransferId,
};

/// The test's directory and a [`Pair`] whose alice has `limits` as the `[limits]` of her
/// config file.
struct Net {
    net: TestNet,
    p: Pair,
}

fn start(limits: &str) -> Net {
    let net = TestNet::new();
    let config = net.write_file("alice.toml", &format!("[limits]\n{limits}\n"));
    let config = config.display().to_string();
    let p = chat::pair_with(&net, &["--config", &config]);
    Net { net, p }
}

/// Registers a fresh key as "mallory" and waits until alice lists it.
async fn mallory(n: &Net) -> (SecretKey, raw::Client) {
    let key = raw::random_key();
    let registration = register_raw(&n.p.tracker, &key, "mallory").await;
    n.p.alice.wait_peer("mallory", true, DEADLINE);
    (key, registration)
}

async fn link(n: &Net, key: &SecretKey) -> BulkSender {
    BulkSender::connect(n.p.alice.listen, key, "mallory")
        .await
        .expect("bulk link to alice")
}

/// An offer of `files` files of one byte each, with paths of 30 bytes or so.
fn big_offer(id: TransferId, files: usize) -> (TransferFrame, u64) {
    let files: Vec<FileEntry> = (0..files)
        .map(|i| FileEntry {
            path: RelPath::new(&format!("flood-{:03}/file-{i:06}.bin", i / 100))
                .expect("a valid path"),
            size: 1,
            hash: [7; 32],
        })
        .collect();
    // What alice counts it for: per file its path, size and hash, plus the id.
    let bytes = 16
        + files
            .iter()
            .map(|f| f.path.as_str().len() as u64 + 40)
            .sum::<u64>();
    (
        TransferFrame::Offer(Manifest {
            id,
            files,
            dirs: Vec::new(),
        }),
        bytes,
    )
}

/// VmRSS and VmHWM of process `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the fd directory")
        .count()
}

/// bob sends a fresh file to alice, alice accepts, it arrives intact.
fn bob_still_gets_through(n: &Net, seed: u64) -> String {
    let name = format!("real-{seed}.bin");
    let file: PathBuf = n.net.unique_dir("src").join(&name);
    let data = write_pattern(&file, 2 * CHUNK as usize + 5, seed);
    let id = id_of(&send_files(&n.p.bob, "alice", &file));
    wait_transfer(&n.p.alice, &id, "offered", DEADLINE, |t| {
        t["state"] == "offered"
    });
    accept(&n.p.alice, &id, None);
    wait_state(&n.p.alice, &id, "done", TRANSFER_DEADLINE);
    wait_state(&n.p.bob, &id, "done", DEADLINE);
    assert_content(&n.p.alice.download_dir().join(&name), &data);
    id
}

/// `p2pctl send FILE alice` at bob waits for the end, then exits 1 saying `why`.
fn bob_send_fails(n: &Net, file: &Path, why: &str) {
    let file = file.display().to_string();
    let sent = n.net.ctl(&n.p.bob, &["send", &file, "alice"]);
    assert_eq!(sent.status.code(), Some(1), "{sent:?}");
    assert!(sent.stderr.contains(why), "{}", sent.stderr);
}

/// Undecided offers stored at `p` from `peer`.
fn offers_from(p: &P2pd, peer: &str) -> usize {
    list(p)
        .iter()
        .filter(|t| t["peer_name"] == peer && t["state"] == "offered")
        .count()
}

/// RSS growth allowed for the whole flood: the admitted manifests (4 MiB of them) plus the
/// transient parse of each refused one, with room for allocator slack. Without the caps the
/// same flood kept over 50 MB for good.
const FLOOD_RSS_BOUND_KIB: u64 = 20 * 1024;

#[tokio::test]
async fn an_offer_flood_is_refused_past_the_per_peer_caps_and_alice_stays_usable_and_small() {
    let per_peer = 4u64 << 20;
    let n = start(&format!(
        "max-pending-offers-per-peer = 1000\nmax-pending-offer-bytes-per-peer = {per_peer}"
    ));
    let (key, _registration) = mallory(&n).await;
    let pid = n.p.alice.proc.pid();
    let (rss0, hwm0) = memory_kib(pid);
    let fds0 = fd_count(pid);

    let (mut admitted, mut refused) = (Vec::new(), 0);
    let mut held = 0u64;
    for _ in 0..40 {
        let id = random_id();
        let (frame, bytes) = big_offer(id, 10_000);
        let mut s = link(&n, &key).await;
        s.send(&frame).await.expect("send the offer");
        if held + bytes <= per_peer {
            // Within the caps: alice lists it; the link then goes (the offer stays).
            held += bytes;
            let ids = id.to_string();
            wait_transfer(&n.p.alice, &ids, "offered", DEADLINE, |t| {
                t["state"] == "offered" && t["files"] == 10_000
            });
            s.shutdown().await.expect("close the link");
            admitted.push(ids);
        } else {
            match s.recv(DEADLINE).await {
                Ok(Some(TransferFrame::Failed { id: got, reason })) => {
                    assert_eq!(got, id);
                    assert!(
                        reason.starts_with("offer refused: your undecided offers would list"),
                        "{reason}"
                    );
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
            s.wait_closed(DEADLINE)
                .await
                .expect("alice closes a refused link");
            refused += 1;
        }
    }
    assert!(
        admitted.len() >= 2 && refused >= 30,
        "{} admitted",
        admitted.len()
    );
    // Only the admitted offers are stored, and the list still answers at once.
    let t0 = Instant::now();
    assert_eq!(offers_from(&n.p.alice, "mallory"), admitted.len());
    let listed = t0.elapsed();
    assert!(listed < Duration::from_secs(5), "transfers took {listed:?}");

    // A real offer from bob still arrives and completes.
    bob_still_gets_through(&n, 1);

    let (rss1, hwm1) = memory_kib(pid);
    let fds1 = fd_count(pid);
    println!(
        "alice after 40 offers of 10,000 files ({} admitted, {refused} refused): \
         VmRSS {rss0} -> {rss1} KiB, VmHWM {hwm0} -> {hwm1} KiB, fds {fds0} -> {fds1}; \
         transfers listed in {listed:?}",
        admitted.len()
    );
    assert!(
        rss1 <= rss0 + FLOOD_RSS_BOUND_KIB,
        "VmRSS grew from {rss0} to {rss1} KiB"
    );
    assert!(fds1 <= fds0 + 8, "fds grew from {fds0} to {fds1}");

    // After a restart the stored offers count again, and their manifests are not all loaded.
    let mut alice = n.p.alice;
    alice.restart();
    let pid = alice.proc.pid();
    alice.wait_peer("mallory", true, DEADLINE);
    assert_eq!(offers_from(&alice, "mallory"), admitted.len());
    let (rss2, hwm2) = memory_kib(pid);
    println!("alice after a restart: VmRSS {rss2} KiB, VmHWM {hwm2} KiB");
    let mut s = BulkSender::connect(alice.listen, &key, "mallory")
        .await
        .expect("bulk link to alice");
    let (frame, _) = big_offer(random_id(), 10_000);
    s.send(&frame).await.expect("send the offer");
    assert!(
        matches!(
            s.recv(DEADLINE).await,
            Ok(Some(TransferFrame::Failed { .. }))
        ),
        "the caps hold after a restart"
    );
    assert!(
        rss2 <= rss0 + FLOOD_RSS_BOUND_KIB,
        "VmRSS after a restart: {rss2} KiB"
    );
}

#[tokio::test]
async fn an_undecided_offer_expires_at_both_ends_whether_the_sender_is_linked_or_away() {
    let mut n = start("offer-expiry-secs = 3");
    let src = n.net.unique_dir("src");

    // The sender's link is up when the offer expires: it is told at once, and `send`, which
    // waits for the end, says so and exits 1.
    let file = src.join("linked.bin");
    write_pattern(&file, 1000, 1);
    bob_send_fails(&n, &file, "expired: alice did not decide in time");
    let t = list(&n.p.bob).pop().expect("bob lists the transfer");
    let id = id_of(&t);
    assert_eq!(
        (&t["state"], &t["error"]),
        (&"expired".into(), &OFFER_EXPIRED.into())
    );
    let t = wait_state(&n.p.alice, &id, "expired", DEADLINE);
    assert_eq!(t["error"], OFFER_EXPIRED);
    let shown = n.net.ctl(&n.p.alice, &["transfers"]);
    shown.assert_success();
    assert!(shown.stdout.contains("expired"), "{}", shown.stdout);
    let shown = n.net.ctl(&n.p.bob, &["--json", "transfers"]);
    assert!(
        shown.stdout.contains(r#""state":"expired""#),
        "{}",
        shown.stdout
    );

    // The sender is away when it expires: it is told when it offers again.
    let file = src.join("away.bin");
    write_pattern(&file, 1000, 2);
    let id = id_of(&send_files(&n.p.bob, "alice", &file));
    wait_transfer(&n.p.alice, &id, "offered", DEADLINE, |t| {
        t["state"] == "offered"
    });
    n.p.bob.stop();
    wait_state(&n.p.alice, &id, "expired", DEADLINE);
    n.p.bob.restart();
    let t = wait_state(&n.p.bob, &id, "expired", DEADLINE);
    assert_eq!(t["error"], OFFER_EXPIRED);
    // An expired offer cannot be accepted.
    let answer = n.net.ctl(&n.p.alice, &["accept", &id[..12]]);
    assert!(!answer.status.success(), "{}", answer.stdout);
}

#[tokio::test]
async fn a_held_bulk_link_is_closed_at_the_decision_deadline_and_extra_links_are_refused() {
    let n = start("decision-timeout-secs = 2\nmax-bulk-links-per-peer = 3");
    let (key, _registration) = mallory(&n).await;
    let pid = n.p.alice.proc.pid();

    // One offer, its link held: closed at the deadline, the offer kept.
    let id = random_id();
    let frame = offer(id, "held.bin", 10, *blake3::hash(b"0123456789").as_bytes());
    let mut s = link(&n, &key).await;
    let opened = Instant::now();
    s.send(&frame).await.expect("send the offer");
    let ids = id.to_string();
    wait_transfer(&n.p.alice, &ids, "offered", DEADLINE, |t| {
        t["state"] == "offered"
    });
    s.wait_closed(DEADLINE + Duration::from_secs(2))
        .await
        .expect("alice closes the held link");
    let held = opened.elapsed();
    assert!(held >= Duration::from_millis(1900), "closed after {held:?}");
    // Offered again on a new link: the same offer, still undecided, not a second one.
    let mut s = link(&n, &key).await;
    s.send(&frame).await.expect("offer again");
    let t = wait_transfer(&n.p.alice, &ids, "offered", DEADLINE, |t| {
        t["state"] == "offered"
    });
    assert_eq!(offers_from(&n.p.alice, "mallory"), 1, "{t}");
    s.wait_closed(DEADLINE + Duration::from_secs(2))
        .await
        .expect("alice closes it again at the deadline");

    // Links past the per-peer cap are refused with the reason, the others stay.
    let fds0 = fd_count(pid);
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(link(&n, &key).await);
    }
    let mut extra = link(&n, &key).await;
    let other = random_id();
    extra
        .send(&offer(other, "extra.bin", 1, [0; 32]))
        .await
        .expect("send an offer on the extra link");
    match extra.recv(DEADLINE).await {
        Ok(Some(TransferFrame::Failed { id: got, reason })) => {
            assert_eq!(got, other);
            assert_eq!(reason, BULK_LINKS_BUSY);
        }
        r => panic!("expected the extra link refused, got {r:?}"),
    }
    extra
        .wait_closed(DEADLINE)
        .await
        .expect("the extra link is closed");
    println!(
        "alice's fds: {fds0} before the links, {} with 3 held",
        fd_count(pid)
    );
    assert!(
        list(&n.p.alice)
            .iter()
            .all(|t| t["id"] != other.to_string())
    );
    drop(idle);

    // A real sender's offer outlives a closed link: accepted after it, it completes.
    let file = n.net.unique_dir("src").join("patient.bin");
    let data = write_pattern(&file, CHUNK as usize + 3, 9);
    let id = id_of(&send_files(&n.p.bob, "alice", &file));
    wait_transfer(&n.p.alice, &id, "offered", DEADLINE, |t| {
        t["state"] == "offered"
    });
    let mut alice = n.p.alice;
    // Its own line (mallory's links were closed the same way before).
    alice
        .proc
        .wait_stderr_line(&format!("it stays offered id={id}"), DEADLINE);
    accept(&alice, &id, None);
    wait_state(&alice, &id, "done", TRANSFER_DEADLINE);
    assert_content(&alice.download_dir().join("patient.bin"), &data);
    let from_bob: Vec<_> = list(&alice)
        .into_iter()
        .filter(|t| t["peer_name"] == "bob")
        .collect();
    assert_eq!(from_bob.len(), 1, "{from_bob:#?}");
}

#[tokio::test]
async fn a_silent_sender_loses_its_link_at_the_progress_deadline_and_the_transfer_resumes() {
    let n = start("transfer-progress-timeout-secs = 2");
    let (key, _registration) = mallory(&n).await;
    let data = p2p_tests::transfer::pattern(3 * CHUNK as usize, 5);
    let id = random_id();
    let ids = id.to_string();
    let frame = offer(
        id,
        "slow.bin",
        data.len() as u64,
        *blake3::hash(&data).as_bytes(),
    );

    let mut s = link(&n, &key).await;
    s.send(&frame).await.expect("send the offer");
    wait_transfer(&n.p.alice, &ids, "offered", DEADLINE, |t| {
        t["state"] == "offered"
    });
    accept(&n.p.alice, &ids, None);
    match s.recv(DEADLINE).await {
        Ok(Some(TransferFrame::Accept { .. })) => {}
        r => panic!("expected Accept, got {r:?}"),
    }
    let chunk = CHUNK as usize;
    s.send_values(id, 0, &data).await.expect("values");
    s.send_chunk(id, 0, 0, &data[..chunk])
        .await
        .expect("chunk 0");
    // Then nothing: alice ends the link at the deadline, the transfer stays resumable.
    let silent = Instant::now();
    s.wait_closed(DEADLINE)
        .await
        .expect("alice ends the silent link");
    let waited = silent.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "closed after {waited:?}"
    );
    let t = wait_state(&n.p.alice, &ids, "running", DEADLINE);
    assert_eq!(t["state"], "running");

    // The sender is back: alice resumes after the chunk she holds, and it completes.
    let mut s = link(&n, &key).await;
    s.send(&frame).await.expect("offer again");
    let resume = match s.recv(DEADLINE).await {
        Ok(Some(TransferFrame::Accept { resume, .. })) => resume,
        r => panic!("expected Accept, got {r:?}"),
    };
    // What was verified but not yet synced (alice syncs every 16 chunks) is asked again.
    let from = resume
        .iter()
        .find(|r| r.file == 0)
        .map_or(0, |r| r.verified_chunks);
    assert!(from <= 1, "{resume:?}");
    s.send_values(id, 0, &data).await.expect("values");
    for index in from..3u64 {
        let at = index as usize * chunk;
        s.send_chunk(id, 0, index, &data[at..at + chunk])
            .await
            .expect("chunk");
    }
    s.send(&TransferFrame::FileDone { id, file: 0 })
        .await
        .expect("FileDone");
    s.send(&TransferFrame::Done { id }).await.expect("Done");
    match s.recv(TRANSFER_DEADLINE).await {
        Ok(Some(TransferFrame::Done { .. })) => {}
        r => panic!("expected Done, got {r:?}"),
    }
    wait_state(&n.p.alice, &ids, "done", DEADLINE);
    assert_content(&n.p.alice.download_dir().join("slow.bin"), &data);
}

#[tokio::test]
async fn a_real_sender_over_the_cap_sees_the_refusal_and_send_exits_one() {
    let n = start("max-pending-offers-per-peer = 1");
    let src = n.net.unique_dir("src");
    let first = src.join("first.bin");
    write_pattern(&first, 100, 1);
    let id = id_of(&send_files(&n.p.bob, "alice", &first));
    wait_transfer(&n.p.alice, &id, "offered", DEADLINE, |t| {
        t["state"] == "offered"
    });

    let second = src.join("second.bin");
    write_pattern(&second, 100, 2);
    bob_send_fails(
        &n,
        &second,
        "offer refused: too many undecided offers from you (1 at most)",
    );
    assert_eq!(offers_from(&n.p.alice, "bob"), 1);

    // Once alice decides, there is room again.
    p2p_tests::transfer::decline(&n.p.alice, &id);
    let again = id_of(&send_files(&n.p.bob, "alice", &second));
    wait_transfer(&n.p.alice, &again, "offered", DEADLINE, |t| {
        t["state"] == "offered"
    });
}
