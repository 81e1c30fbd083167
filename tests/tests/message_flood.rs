//! What peers can make a daemon store in messages: an honest peer over alice's message rate is
//! put off (`deferred`), not refused, and loses nothing; strangers flooding alice with large
//! messages meet the rate and then the quota, while alice's memory, database and descriptors
//! stay bounded and bob's messages still arrive. The flood test prints its figures (the rate
//! it reached, alice's memory, database and descriptors, bob's `msg` round trips idle and
//! during the flood); `P2P_FLOOD_SECS` sets its length (default 30).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use p2p_tests::chat::{self, history, texts, wait_delivered};
use p2p_tests::flood::{fd_count, wait_fds_at_most};
use p2p_tests::raw;
use p2p_tests::raw_peer::{RawPeer, read_frame, write_frame};
use p2p_tests::transfer::register_raw;
use p2p_tests::{DEADLINE, P2pd, TestNet, Tracker};
use proto::peer::{ChatMessage, MAX_TEXT, MessageId, PeerFrame, Refusal};

/// Long enough for a rate of a few messages a second to let many through.
const SLOW: Duration = Duration::from_secs(60);

fn start(net: &TestNet, limits: &str) -> (Tracker, P2pd, P2pd) {
    let tracker = net.spawn_tracker(None);
    let config = net.write_file("alice.toml", &format!("[limits]\n{limits}"));
    let alice = net
        .p2pd("alice")
        .tracker(&tracker.addr_string())
        .args(["--config".as_ref(), config.as_os_str()])
        .spawn();
    let bob = net.spawn_p2pd("bob", &tracker.addr_string(), &[]);
    alice.wait_peer("bob", true, DEADLINE);
    bob.wait_peer("alice", true, DEADLINE);
    (tracker, alice, bob)
}

#[test]
fn an_honest_peer_over_the_rate_is_deferred_and_loses_nothing() {
    let net = TestNet::new();
    let (_tracker, alice, bob) = start(&net, "message-rate = 2\nmessage-burst = 5\n");
    let mut watch = net.watch(&bob);
    let sent: Vec<String> = (1..=15).map(|n| format!("line {n}")).collect();
    for text in &sent {
        chat::send(&bob, "alice", text);
    }
    // Some are put off; all arrive, once, in order.
    watch.wait_for(
        "a message deferred",
        |ev| ev["type"] == "message_updated" && ev["message"]["state"] == "deferred",
        DEADLINE,
    );
    wait_delivered(&bob, "alice", 15, SLOW);
    let got = history(&alice, "bob");
    assert_eq!(texts(&got, "in"), sent, "{got:#?}");
    chat::assert_unique_ids(&got);

    // The bucket is empty again after a burst: `msg` says the message was put off, exit 0.
    for n in 0..5 {
        chat::send(&bob, "alice", &format!("burst {n}"));
    }
    let out = net.ctl(&bob, &["msg", "alice", "one more"]);
    out.assert_success();
    assert!(out.stdout.starts_with("deferred by alice"), "{out}");
    wait_delivered(&bob, "alice", 21, SLOW);
    let h = net.ctl(&bob, &["history", "alice"]);
    assert_eq!(h.stdout.matches("[delivered]").count(), 21, "{h}");

    // A trusted peer is exempt.
    net.ctl(&alice, &["trust", "bob"]).assert_success();
    let before = watch.events().len();
    for n in 0..20 {
        chat::send(&bob, "alice", &format!("trusted {n}"));
    }
    wait_delivered(&bob, "alice", 41, DEADLINE);
    let since = &watch.events()[before..];
    assert!(
        !since
            .iter()
            .any(|e| e["type"] == "message_updated" && e["message"]["state"] == "deferred"),
        "a trusted peer was deferred: {since:#?}"
    );
}

/// One stranger's tally.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    acked: AtomicU64,
    deferred: AtomicU64,
    over_quota: AtomicU64,
}

/// Registers a fresh key as `name`, links to alice and sends `MAX_TEXT`-byte messages as fast
/// as the link takes them until `until`, counting alice's answers.
async fn stranger(tracker: &Tracker, alice: &P2pd, name: &str, until: Instant, t: Arc<Tally>) {
    let key = raw::random_key();
    let reg = register_raw(tracker, &key, name).await;
    alice.wait_peer(name, true, DEADLINE);
    let (link, _) = RawPeer::hello(alice.listen, &key, name)
        .await
        .expect("alice takes the link");
    let (mut rd, mut wr) = tokio::io::split(link.tls);
    let reader = {
        let t = t.clone();
        tokio::spawn(async move {
            while let Ok(Some(frame)) = read_frame(&mut rd).await {
                let n = match frame {
                    PeerFrame::Ack { .. } => &t.acked,
                    PeerFrame::Refused {
                        reason: Refusal::Deferred,
                        ..
                    } => &t.deferred,
                    PeerFrame::Refused {
                        reason: Refusal::OverQuota,
                        ..
                    } => &t.over_quota,
                    _ => continue,
                };
                n.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Every message carries seq 1: a flooder that ignores deferrals and never lets a later
    // seq wait behind an earlier one gets as much through as the rate allows, no more.
    let text = "x".repeat(MAX_TEXT);
    let seq = 1;
    while Instant::now() < until {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).expect("random id");
        let m = ChatMessage {
            id: MessageId(id),
            seq,
            sent_at: 1_700_000_000_000,
            text: text.clone(),
        };
        if write_frame(&mut wr, &PeerFrame::Message(m)).await.is_err() {
            break;
        }
        t.sent.fetch_add(1, Ordering::Relaxed);
    }
    drop(wr);
    reader.abort();
    drop(reg);
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn db_bytes(state: &Path) -> u64 {
    ["p2pd.db", "p2pd.db-wal", "p2pd.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(state.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// `msg` round trips from bob to alice, in milliseconds, sorted.
fn round_trips(net: &TestNet, bob: &P2pd, label: &str, n: usize) -> Vec<f64> {
    let mut ms: Vec<f64> = (0..n)
        .map(|i| {
            let t = Instant::now();
            let out = net.ctl(bob, &["msg", "alice", &format!("{label} {i}")]);
            out.assert_success();
            assert_eq!(out.stdout, "delivered to alice\n", "{out}");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_flooding_messages_cost_little() {
    const MIB: u64 = 1024 * 1024;
    let per_peer = 3 * MIB;
    let total = 6 * MIB;
    let secs: u64 = std::env::var("P2P_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let net = TestNet::new();
    let (tracker, alice, bob) = start(
        &net,
        &format!(
            "message-bytes-rate = {}\nmessage-bytes-burst = {}\n\
             untrusted-bytes-per-peer = {per_peer}\nuntrusted-bytes-total = {total}\n",
            512 * 1024,
            MIB
        ),
    );
    let pid = alice.proc.pid();
    // Alice has written to bob: he is no stranger, and the strangers' quota is not his.
    net.ctl(&alice, &["msg", "bob", "hi bob"]).assert_success();
    let idle = tokio::task::block_in_place(|| round_trips(&net, &bob, "idle", 20));
    let (rss0, fds0, db0) = (
        status_kib(pid, "VmRSS:"),
        fd_count(pid),
        db_bytes(&alice.state_dir),
    );

    let tallies: Vec<Arc<Tally>> = (0..3).map(|_| Arc::default()).collect();
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(secs);
    let floods = futures_join(&tracker, &alice, until, &tallies);
    let during = {
        let (net, bob, tallies) = (&net, &bob, &tallies);
        async move {
            // Measure once every stranger is flooding (no event says so: poll the tallies).
            while tallies.iter().any(|t| t.sent.load(Ordering::Relaxed) < 10) {
                assert!(Instant::now() < until, "the strangers never got going");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::task::block_in_place(|| round_trips(net, bob, "during", 20))
        }
    };
    let ((), during) = tokio::join!(floods, during);
    let elapsed = t0.elapsed().as_secs_f64();
    let hwm = status_kib(pid, "VmHWM:");
    let db1 = db_bytes(&alice.state_dir);
    let file_kib =
        |f: &str| std::fs::metadata(alice.state_dir.join(f)).map_or(0, |m| m.len()) / 1024;
    let (main_kib, wal_kib) = (file_kib("p2pd.db"), file_kib("p2pd.db-wal"));

    // Once the strangers are gone, alice holds no more descriptors than before.
    let fds1 = wait_fds_at_most(pid, fds0 + 2, DEADLINE, "alice after the flood");
    let sum = |f: fn(&Tally) -> &AtomicU64| -> u64 {
        tallies.iter().map(|t| f(t).load(Ordering::Relaxed)).sum()
    };
    let (sent, acked, deferred, over) = (
        sum(|t| &t.sent),
        sum(|t| &t.acked),
        sum(|t| &t.deferred),
        sum(|t| &t.over_quota),
    );
    println!(
        "flood: 3 strangers, {elapsed:.1} s, {sent} messages of 64 KiB sent ({:.0}/s, {:.1} MB/s): \
         {acked} stored, {deferred} deferred, {over} over the quota",
        sent as f64 / elapsed,
        (sent * MAX_TEXT as u64) as f64 / elapsed / 1e6
    );
    println!(
        "alice: RSS {} KiB before, peak {hwm} KiB (+{} KiB); database with its WAL {} KiB -> {} KiB \
         (+{} KiB: p2pd.db {main_kib} KiB, WAL {wal_kib} KiB; text stored {} KiB, quota {} KiB); \
         fds {fds0} before, {fds1} after",
        rss0,
        hwm.saturating_sub(rss0),
        db0 / 1024,
        db1 / 1024,
        db1.saturating_sub(db0) / 1024,
        acked * MAX_TEXT as u64 / 1024,
        total / 1024
    );
    println!(
        "bob -> alice `msg` round trip, ms: idle p50 {:.1} p99 {:.1}; during the flood p50 {:.1} p99 {:.1}",
        pct(&idle, 0.5),
        pct(&idle, 0.99),
        pct(&during, 0.5),
        pct(&during, 0.99)
    );

    assert!(deferred > 0, "the rate never held a stranger back");
    assert!(over > 0, "no stranger reached the quota");
    assert!(
        acked * MAX_TEXT as u64 <= total,
        "{acked} messages stored, more than the quota of all strangers"
    );
    assert!(
        hwm < rss0 + 32 * 1024,
        "alice's memory grew by {} KiB",
        hwm - rss0
    );
    assert!(
        db1.saturating_sub(db0) < total + 12 * MIB,
        "alice's database grew by {} KiB",
        (db1 - db0) / 1024
    );
    // Still usable; bob's messages all arrived.
    net.ctl(&alice, &["transfers"]).assert_success();
    let got = texts(&history(&alice, "bob"), "in");
    assert_eq!(got.len(), 40, "{got:?}");
}

async fn futures_join(tracker: &Tracker, alice: &P2pd, until: Instant, tallies: &[Arc<Tally>]) {
    let [a, b, c] = tallies else {
        unreachable!("three strangers")
    };
    tokio::join!(
        stranger(tracker, alice, "stranger1", until, a.clone()),
        stranger(tracker, alice, "stranger2", until, b.clone()),
        stranger(tracker, alice, "stranger3", until, c.clone()),
    );
}
