//! Crash runs: transfers of directory trees from alice to bob while the test SIGKILLs the
//! sender or the receiver at random points, many times over, and starts it again each time.
//!
//! Each round sends a new tree of a few files (some tiny, some of several chunks, some past
//! the 16 chunks at which the receiver records verified progress), so kills land before
//! the first byte, inside files and between them. A kill point is one of: right after the
//! offer reaches bob, right after bob accepts, or a byte count drawn at random between what
//! bob holds and the whole tree. Progress events come at most every 250 ms, longer than a
//! debug build takes for most of a tree, so the byte count is read from bob's destination
//! (final files and part files) while waiting on his events; when it is reached the victim
//! is stopped with SIGSTOP (so the state looked at is the state it dies in), the tree is
//! checked, and only then SIGKILL lands.
//!
//! After every kill and every restart: no file is under its final name unless it is one of
//! the files sent, whole, with its hash (a duplicate `name (1)` or a partial file fails the
//! run). At the end of each round both sides list the transfer done and no part is left;
//! at the end of the run every file of every round is present and matches.
//!
//! The seed is printed (replay with `P2P_CRASH_SEED=0x...`), and so is every kill point.
//! `P2P_CRASH_KILLS` sets how many kills (default 40, about 20 s in a debug build).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use p2p_tests::chat::{self, Pair};
use p2p_tests::crash::{Expected, SeededRng, bytes_on_disk, check_tree};
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, accept, ended, get, id_of, is_final, send_files, wait_list, wait_no_parts,
    wait_state, write_pattern,
};
use p2p_tests::{DEADLINE, P2pd, TestNet};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// Kills in one run unless `P2P_CRASH_KILLS` says otherwise.
const DEFAULT_KILLS: u64 = 40;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Victim {
    Sender,
    Receiver,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Point {
    /// As soon as bob lists the offer, before any answer.
    Offered,
    /// Right after bob accepts.
    Accepted,
    /// When bob holds this many bytes of the tree (final files and parts).
    Bytes(u64),
}

/// One run: the daemons, the random source, and every file sent so far.
struct Run {
    alice: P2pd,
    bob: P2pd,
    rng: SeededRng,
    /// Every file sent, by its path under bob's download directory.
    expected: BTreeMap<String, Expected>,
    kills: u64,
    /// Kills that landed before bob had the whole round.
    mid_transfer: u64,
}

impl Run {
    fn dl(&self) -> PathBuf {
        self.bob.download_dir().to_owned()
    }

    fn daemon(&mut self, v: Victim) -> &mut P2pd {
        match v {
            Victim::Sender => &mut self.alice,
            Victim::Receiver => &mut self.bob,
        }
    }

    /// Writes the tree of round `round` under `src` (3 to 6 files, one level of
    /// subdirectory) and records what each file must hold at bob. Returns its path and size.
    fn make_tree(&mut self, src: &Path, round: u64) -> (PathBuf, u64) {
        let name = format!("tree-{round}");
        let dir = src.join(&name);
        let mut total = 0;
        for i in 0..self.rng.between(3, 6) {
            let size = match self.rng.below(10) {
                0..=2 => self.rng.below(64 * KIB + 1),
                3..=7 => self.rng.between(256 * KIB, 3 * MIB),
                _ => self.rng.between(17 * MIB, 22 * MIB),
            };
            let rel = if self.rng.percent(30) {
                format!("sub/f{i}.bin")
            } else {
                format!("f{i}.bin")
            };
            let seed = self.rng.next_u64();
            let data = write_pattern(&dir.join(&rel), size as usize, seed);
            self.expected
                .insert(format!("{name}/{rel}"), Expected::of(&data));
            total += size;
        }
        (dir, total)
    }

    /// Checks bob's destination for this round's tree; see [`check_tree`].
    fn check(&self, prefix: &str, what: &str) -> p2p_tests::crash::TreeState {
        check_tree(&self.dl(), prefix, &self.expected, what)
    }

    /// Waits until bob lists transfer `id` and has accepted it (accepting it if it is
    /// offered). Returns false if it is already done.
    fn ensure_accepted(&self, id: &str) -> bool {
        let state = wait_list(
            &self.bob,
            "the transfer listed",
            TRANSFER_DEADLINE,
            |list| {
                let t = list.iter().find(|t| t["id"] == id)?;
                assert!(
                    !is_final(t) || t["state"] == "done",
                    "transfer {id} ended {} at bob: {t:#}",
                    t["state"]
                );
                t["state"].as_str().map(str::to_owned)
            },
        );
        match state.as_str() {
            "offered" => {
                accept(&self.bob, id, None);
                true
            }
            "done" => false,
            _ => true,
        }
    }

    /// Waits until bob holds at least `target` bytes of the tree under `prefix`, re-reading
    /// the directory every few milliseconds and on each event. `None` if the transfer ends
    /// at bob first.
    fn wait_bytes(&self, id: &str, prefix: &str, target: u64) -> Option<u64> {
        let dl = self.dl();
        let mut events = self.bob.rpc();
        events.subscribe();
        // Subscribed first: an end after this look comes as an event.
        if get(&self.bob, id).is_some_and(|t| is_final(&t)) {
            return None;
        }
        let deadline = Instant::now() + TRANSFER_DEADLINE;
        loop {
            let held = bytes_on_disk(&dl, prefix);
            if held >= target {
                return Some(held);
            }
            assert!(
                Instant::now() < deadline,
                "bob holds {held} bytes, not {target}, after {TRANSFER_DEADLINE:?}"
            );
            // A short wait on bob's events: data lands in the files far more often than
            // events come, so the directory is read again at least every 2 ms.
            if events
                .next_event(Duration::from_millis(2))
                .is_some_and(|ev| ended(id)(&ev))
            {
                return None;
            }
        }
    }

    /// SIGSTOPs `victim`, checks the tree as it dies, SIGKILLs it, checks again, starts it
    /// again and checks once more. Prints the kill point.
    fn crash(&mut self, victim: Victim, point: Point, prefix: &str, total: u64, round: u64) {
        self.kills += 1;
        let n = self.kills;
        self.daemon(victim).proc.signal("STOP");
        let at = self.check(prefix, &format!("kill {n}, {victim:?} stopped"));
        let status = self.daemon(victim).kill();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status}"
        );
        if at.final_files.len() < self.round_files(prefix) {
            self.mid_transfer += 1;
        }
        eprintln!(
            "kill {n}: round {round}, {victim:?} at {point:?}: bob held {}/{total} bytes; \
             final: {:?}; parts: {:?}",
            at.bytes, at.final_files, at.parts
        );
        self.check(prefix, &format!("kill {n}, after SIGKILL"));
        self.daemon(victim).restart();
        self.check(prefix, &format!("kill {n}, after the restart"));
    }

    fn round_files(&self, prefix: &str) -> usize {
        self.expected
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count()
    }

    /// One round: a new tree, `kills` kills at random points, then the transfer must end
    /// done on both sides with every file in place.
    fn round(&mut self, net: &TestNet, round: u64, kills: u64) {
        let src = net.unique_dir("src");
        let (tree, total) = self.make_tree(&src, round);
        let prefix = format!("tree-{round}/");
        let id = id_of(&send_files(&self.alice, "bob", &tree));
        for step in 0..kills {
            let victim = if self.rng.percent(50) {
                Victim::Sender
            } else {
                Victim::Receiver
            };
            let point = match (step, self.rng.below(10)) {
                (0, 0..=1) => Point::Offered,
                (0, 2..=3) => Point::Accepted,
                _ => Point::Bytes(0),
            };
            let point = match point {
                Point::Offered => {
                    wait_state(&self.bob, &id, "offered", TRANSFER_DEADLINE);
                    point
                }
                Point::Accepted => {
                    wait_state(&self.bob, &id, "offered", TRANSFER_DEADLINE);
                    accept(&self.bob, &id, None);
                    point
                }
                Point::Bytes(_) => {
                    if !self.ensure_accepted(&id) {
                        break;
                    }
                    let held = bytes_on_disk(&self.dl(), &prefix);
                    let target = held + self.rng.below(total.saturating_sub(held) + 1);
                    match self.wait_bytes(&id, &prefix, target) {
                        Some(_) => Point::Bytes(target),
                        None => {
                            eprintln!(
                                "round {round}: the transfer ended before bob held {target} bytes"
                            );
                            break;
                        }
                    }
                }
            };
            self.crash(victim, point, &prefix, total, round);
        }
        self.ensure_accepted(&id);
        let b = wait_state(&self.bob, &id, "done", TRANSFER_DEADLINE);
        let a = wait_state(&self.alice, &id, "done", TRANSFER_DEADLINE);
        assert_eq!(b["done_bytes"], total, "{b:#}");
        assert_eq!(a["done_bytes"], total, "{a:#}");
        let dl = self.dl();
        wait_no_parts(&dl.join(&prefix), DEADLINE);
        let end = self.check(&prefix, &format!("round {round} done"));
        assert_eq!(
            end.final_files.len(),
            self.round_files(&prefix),
            "round {round}: files missing at bob: {:?}",
            end.final_files
        );
        // Keep the run's disk use small: the hashes are all that later checks need.
        std::fs::remove_dir_all(&src).expect("remove the sent tree");
    }
}

#[test]
fn sigkill_of_either_side_at_random_points_never_leaves_a_bad_file_and_every_file_arrives() {
    let wanted: u64 = std::env::var("P2P_CRASH_KILLS").map_or(DEFAULT_KILLS, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("P2P_CRASH_KILLS={v:?} is not a number"))
    });
    let rng = SeededRng::from_env("P2P_CRASH_SEED");
    let net = TestNet::new();
    let Pair {
        alice,
        bob,
        tracker: _tracker,
    } = chat::pair(&net);
    let mut run = Run {
        alice,
        bob,
        rng,
        expected: BTreeMap::new(),
        kills: 0,
        mid_transfer: 0,
    };
    let started = Instant::now();
    let mut round = 0;
    while run.kills < wanted {
        round += 1;
        let kills = run.rng.between(1, 3).min(wanted - run.kills);
        run.round(&net, round, kills);
    }
    let end = run.check("", "the end of the run");
    assert!(end.parts.is_empty(), "part files left: {:?}", end.parts);
    let want: Vec<&String> = run.expected.keys().collect();
    assert_eq!(
        end.final_files.iter().collect::<Vec<_>>(),
        want,
        "every file of every round at bob"
    );
    eprintln!(
        "{} kills ({} before the round's last file was in place) over {round} rounds, \
         {} files, {} bytes, all intact, in {:?}",
        run.kills,
        run.mid_transfer,
        run.expected.len(),
        run.expected.values().map(|e| e.size).sum::<u64>(),
        started.elapsed()
    );
}
