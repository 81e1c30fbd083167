//! Floods and slow clients (design.md §5: connection flood at the tracker; silent or slow
//! peer): 5,000 TCP connections that open and stay idle, plus slow clients that trickle a
//! real TLS ClientHello one byte a second, against trackerd and against bob's peer port at
//! once. The idle connections come from 20 loopback addresses (127.0.0.2 and up for the
//! tracker, 127.0.3.1 and up for bob), the slow clients from 20 others, and 300 more idle
//! connections to the tracker from one address, over its per-address cap. The
//! well-behaved daemons talk from 127.0.0.1.
//!
//! While the flood is held: the tracker holds every connection (it is under its caps), bob
//! holds no more than his per-address cap on handshakes in flight (16) allows and closes
//! the rest at once, a new
//! peer (carol) registers at the tracker, and alice sends bob a file through his flooded
//! port. Then every slow and idle connection is closed by the daemons' handshake deadline
//! (15 s in this test's configs), and once the flood ends both daemons hold no more file
//! descriptors than before it (read from /proc).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use p2p_tests::flood::{
    Flood, client_hello, fd_count, loopback_sources, wait_fds_at_least, wait_fds_at_most,
};
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, accept, assert_content, id_of, send_files, wait_offer, wait_state,
    write_pattern,
};
use p2p_tests::{DEADLINE, TestNet};

/// Idle connections against each daemon.
const IDLE: usize = 5_000;
/// Slow clients against each daemon.
const SLOW: usize = 20;
/// Loopback addresses the idle connections of each flood come from.
const SOURCES: u32 = 20;
/// Connections from one more address to the tracker, over its per-address cap.
const ONE_HOST: usize = 300;
/// The tracker's cap on connections from one address (its default).
const TRACKER_PER_IP: usize = 256;
/// The handshake deadline both daemons get in this test.
const HANDSHAKE_MS: u64 = 15_000;
/// Bob's cap on inbound handshakes in flight from one address (his default); his total cap
/// (1,024) is not reached.
const P2PD_MAX_PENDING_PER_IP: usize = 16;
/// Descriptors a daemon may hold beyond its baseline and its caps (a log file rotating,
/// a link being replaced).
const SLACK: usize = 8;

#[test]
fn idle_and_slow_floods_are_capped_and_timed_out_while_good_peers_register_and_transfer() {
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("raise RLIMIT_NOFILE");
    assert!(
        limit >= (2 * (IDLE + SLOW) + ONE_HOST + 200) as u64,
        "this test holds {} sockets; the open-file limit is {limit}",
        2 * (IDLE + SLOW) + ONE_HOST
    );
    let net = TestNet::new();
    let limits = format!("[limits]\nhandshake-timeout-ms = {HANDSHAKE_MS}\n");
    let tracker = net.spawn_tracker(Some(&limits));
    let p2pd_config = net.write_file("p2pd.toml", &limits);
    let spawn = |name: &str| {
        net.p2pd(name)
            .tracker(&tracker.addr_string())
            .args(["--config", p2pd_config.to_str().expect("UTF-8 path")])
            .spawn()
    };
    let alice = spawn("alice");
    let bob = spawn("bob");
    alice.wait_peer("bob", true, DEADLINE);
    bob.wait_peer("alice", true, DEADLINE);
    let file = net.unique_dir("src").join("payload.bin");
    let data = write_pattern(&file, 8 << 20, 77);
    let (t_pid, b_pid) = (tracker.proc.pid(), bob.proc.pid());
    let (t_base, b_base) = (fd_count(t_pid), fd_count(b_pid));

    let hello = client_hello();
    let started = Instant::now();
    let mut t_slow = Flood::start(
        tracker.addr,
        SLOW,
        &loopback_sources(Ipv4Addr::new(127, 0, 1, 1), SLOW as u32),
        &hello,
    );
    let mut b_slow = Flood::start(
        bob.listen,
        SLOW,
        &loopback_sources(Ipv4Addr::new(127, 0, 2, 1), SLOW as u32),
        &hello,
    );
    let mut t_idle = Flood::start(
        tracker.addr,
        IDLE,
        &loopback_sources(Ipv4Addr::new(127, 0, 0, 2), SOURCES),
        &[],
    );
    let mut b_idle = Flood::start(
        bob.listen,
        IDLE,
        &loopback_sources(Ipv4Addr::new(127, 0, 3, 1), SOURCES),
        &[],
    );
    let mut t_one = Flood::start(
        tracker.addr,
        ONE_HOST,
        &[Ipv4Addr::new(127, 0, 4, 1).into()],
        &[],
    );
    for (what, f, n) in [
        ("one host, tracker", &t_one, ONE_HOST),
        ("slow, tracker", &t_slow, SLOW),
        ("slow, bob", &b_slow, SLOW),
        ("idle, tracker", &t_idle, IDLE),
        ("idle, bob", &b_idle, IDLE),
    ] {
        assert_eq!((f.opened, f.failed), (n, 0), "{what}: {f:?}");
    }
    let opened_in = started.elapsed();

    // The tracker holds every connection of the idle flood (250 per address, under its cap
    // of 256; 16,384 in all), and closes what the one host opened over its cap at once.
    // Bob closes what is over his cap on handshakes in flight from one address.
    t_one.wait_closed(ONE_HOST - TRACKER_PER_IP, DEADLINE);
    let t_held = wait_fds_at_least(
        t_pid,
        t_base + IDLE + SLOW + TRACKER_PER_IP,
        DEADLINE,
        "trackerd",
    );
    assert!(
        t_held <= t_base + IDLE + SLOW + TRACKER_PER_IP + SLACK,
        "trackerd holds {t_held} descriptors: more than its per-address cap allows"
    );
    let b_cap = SOURCES as usize * P2PD_MAX_PENDING_PER_IP;
    let b_refused = b_idle.wait_closed(IDLE - b_cap, DEADLINE);
    let b_held = fd_count(b_pid);
    assert!(
        b_held <= b_base + b_cap + SLOW + SLACK,
        "bob holds {b_held} descriptors during the flood: more than {b_base} before it plus \
         {P2PD_MAX_PENDING_PER_IP} handshakes in flight from each of {SOURCES} addresses and \
         {SLOW} slow clients"
    );
    eprintln!(
        "flood opened in {opened_in:?}: trackerd holds {t_held} descriptors ({t_base} before), \
         bob {b_held} ({b_base} before); bob closed {} idle connections at once (held {:?} at most)",
        b_idle.closed_by_server(),
        b_refused.1
    );

    // During the flood: a new peer registers, and a transfer goes through bob's port.
    let carol = net.spawn_p2pd("carol", &tracker.addr_string(), &[]);
    carol.wait_tracker_state("registered", DEADLINE);
    let registered_at = started.elapsed();
    let id = id_of(&send_files(&alice, "bob", &file));
    let offer = wait_offer(&bob, DEADLINE);
    assert_eq!(offer["id"], id.as_str(), "{offer:#}");
    accept(&bob, &id, None);
    wait_state(&bob, &id, "done", TRANSFER_DEADLINE);
    wait_state(&alice, &id, "done", TRANSFER_DEADLINE);
    assert_content(&bob.download_dir().join("payload.bin"), &data);
    eprintln!(
        "carol registered {registered_at:?} after the flood began, the transfer was done \
         after {:?}; the tracker had closed {} of its idle connections by then, bob {}",
        started.elapsed(),
        t_idle.closed_by_server(),
        b_idle.closed_by_server()
    );

    // The handshake deadline closes every slow and idle connection left.
    let deadline = Duration::from_millis(HANDSHAKE_MS) + Duration::from_secs(45);
    for (what, f, n) in [
        ("slow clients at the tracker", &mut t_slow, SLOW),
        ("slow clients at bob", &mut b_slow, SLOW),
        ("idle connections at the tracker", &mut t_idle, IDLE),
        ("idle connections at bob", &mut b_idle, IDLE),
        ("connections of the one host", &mut t_one, ONE_HOST),
    ] {
        let (min, max) = f.wait_closed(n, deadline);
        eprintln!("{what}: all {n} closed by the daemon, held {min:?} to {max:?}");
    }
    for f in [
        &mut t_slow,
        &mut b_slow,
        &mut t_idle,
        &mut b_idle,
        &mut t_one,
    ] {
        f.stop();
    }

    // What the flood held is freed: carol's tracker link is the one descriptor more.
    let t_after = wait_fds_at_most(t_pid, t_base + 1 + SLACK, DEADLINE, "trackerd");
    let b_after = wait_fds_at_most(b_pid, b_base + SLACK, DEADLINE, "bob");
    eprintln!(
        "after the flood: trackerd holds {t_after} descriptors ({t_base} before), bob \
         {b_after} ({b_base} before); {:?} in all",
        started.elapsed()
    );
}
