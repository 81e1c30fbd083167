//! The scheduler against simulated sources: each serves its requests one after another at
//! its rate, with a one-way latency on every request, chunk and cancel (events on a virtual
//! clock, no runtime). Some misbehave: a staller takes requests and sends nothing, a liar
//! claims chunks it lacks, a corrupter sends bad bytes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use super::scheduler::*;

const MIB: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Good,
    Stall,
    Corrupt,
    /// Claims everything, holds only the even chunks.
    LiesOdd,
}

#[derive(Clone, Debug)]
struct Sim {
    /// Bytes per second.
    rate: f64,
    latency: Duration,
    kind: Kind,
    holds: Holds,
    /// Leaves (its link closes) at this time.
    leaves_at: Option<Duration>,
    /// Joins at this time rather than at the start.
    joins_at: Option<Duration>,
}

fn good(mb_s: f64) -> Sim {
    Sim {
        rate: mb_s * 1e6,
        latency: Duration::from_millis(20),
        kind: Kind::Good,
        holds: Holds::All,
        leaves_at: None,
        joins_at: None,
    }
}

fn kind(mut s: Sim, k: Kind) -> Sim {
    s.kind = k;
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Arrive(u32, u64),
    Served(u32, u64),
    Delivered(u32, u64),
    Missed(u32, u64),
    CancelArrives(u32, u64),
    Leave(u32),
    Join(u32),
    Tick,
}

struct Server {
    queue: VecDeque<u64>,
    busy: bool,
    gone: bool,
}

/// What a run did.
#[derive(Debug)]
struct Outcome {
    end: Progress,
    time: Duration,
    requests: u64,
    /// Requests sent to a source after it was dropped.
    after_drop: u64,
    dropped: Vec<(SourceId, DropReason)>,
    stats: Vec<SourceStats>,
}

fn run(len: u64, verified: &[u64], sims: &[Sim]) -> Outcome {
    run_with(Config::default(), len, verified, sims)
}

fn run_with(cfg: Config, len: u64, verified: &[u64], sims: &[Sim]) -> Outcome {
    let t0 = Instant::now();
    let mut sch = Scheduler::new(cfg, len, verified.iter().copied());
    let mut servers: Vec<Server> = sims
        .iter()
        .map(|_| Server {
            queue: VecDeque::new(),
            busy: false,
            gone: false,
        })
        .collect();
    let mut heap: BinaryHeap<Reverse<(Duration, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<_>, at: Duration, ev: Ev| {
        seq += 1;
        heap.push(Reverse((at, seq, ev)));
    };
    for (i, s) in sims.iter().enumerate() {
        match s.joins_at {
            Some(at) => push(&mut heap, at, Ev::Join(i as u32)),
            None => sch.add_source(SourceId(i as u32), s.holds.clone(), t0),
        }
        if let Some(at) = s.leaves_at {
            push(&mut heap, at, Ev::Leave(i as u32));
        }
    }
    push(&mut heap, Duration::ZERO, Ev::Tick);
    let mut to_join = sims.iter().filter(|s| s.joins_at.is_some()).count();
    let mut dropped = Vec::new();
    let mut after_drop = 0;
    let mut now = Duration::ZERO;
    let limit = Duration::from_secs(3600);
    loop {
        let actions = sch.poll(t0 + now);
        for a in actions {
            match a {
                Action::Request { source, chunk } => {
                    let i = source.0;
                    if dropped.iter().any(|(s, _)| *s == source) {
                        after_drop += 1;
                    }
                    let sim = &sims[i as usize];
                    if sim.kind != Kind::Stall && !servers[i as usize].gone {
                        push(&mut heap, now + sim.latency, Ev::Arrive(i, chunk));
                    }
                }
                Action::Cancel { source, chunk } => {
                    let sim = &sims[source.0 as usize];
                    push(
                        &mut heap,
                        now + sim.latency,
                        Ev::CancelArrives(source.0, chunk),
                    );
                }
                Action::Drop { source, why } => {
                    dropped.push((source, why));
                    servers[source.0 as usize].gone = true;
                }
            }
        }
        match sch.progress() {
            Progress::Running => {}
            // As the driver does: stuck is final only once no source can join any more.
            Progress::Stuck { .. } if to_join > 0 => {}
            end => {
                return Outcome {
                    end,
                    time: now,
                    requests: sch.requests_sent(),
                    after_drop,
                    dropped,
                    stats: sch.stats(),
                };
            }
        }
        let Some(Reverse((at, _, ev))) = heap.pop() else {
            panic!("simulation ran dry while running");
        };
        now = at;
        assert!(now < limit, "no end within an hour of simulated time");
        match ev {
            Ev::Tick => push(&mut heap, now + Duration::from_millis(50), Ev::Tick),
            Ev::Join(i) => {
                to_join -= 1;
                sch.add_source(SourceId(i), sims[i as usize].holds.clone(), t0 + now);
            }
            Ev::Leave(i) => {
                servers[i as usize].gone = true;
                sch.remove_source(SourceId(i));
            }
            Ev::Arrive(i, c) => {
                let srv = &mut servers[i as usize];
                if srv.gone {
                    continue;
                }
                srv.queue.push_back(c);
                if !srv.busy {
                    start_next(
                        &mut servers,
                        &sims[i as usize],
                        i,
                        now,
                        &sch,
                        &mut heap,
                        &mut push,
                    );
                }
            }
            Ev::Served(i, c) => {
                let sim = &sims[i as usize];
                if servers[i as usize].gone {
                    continue;
                }
                let lie = sim.kind == Kind::LiesOdd && c % 2 == 1;
                let ev = if lie {
                    Ev::Missed(i, c)
                } else {
                    Ev::Delivered(i, c)
                };
                push(&mut heap, now + sim.latency, ev);
                servers[i as usize].busy = false;
                start_next(&mut servers, sim, i, now, &sch, &mut heap, &mut push);
            }
            Ev::Delivered(i, c) => {
                if servers[i as usize].gone {
                    continue;
                }
                let ok = sims[i as usize].kind != Kind::Corrupt;
                let acts = sch.on_chunk(SourceId(i), c, ok, t0 + now);
                for a in acts {
                    match a {
                        Action::Cancel { source, chunk } => {
                            let lat = sims[source.0 as usize].latency;
                            push(&mut heap, now + lat, Ev::CancelArrives(source.0, chunk));
                        }
                        Action::Drop { source, why } => {
                            dropped.push((source, why));
                            servers[source.0 as usize].gone = true;
                        }
                        Action::Request { .. } => unreachable!("requests come from poll"),
                    }
                }
            }
            Ev::Missed(i, c) => sch.on_miss(SourceId(i), c),
            Ev::CancelArrives(i, c) => servers[i as usize].queue.retain(|q| *q != c),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn start_next(
    servers: &mut [Server],
    sim: &Sim,
    i: u32,
    now: Duration,
    sch: &Scheduler,
    heap: &mut BinaryHeap<Reverse<(Duration, u64, Ev)>>,
    push: &mut impl FnMut(&mut BinaryHeap<Reverse<(Duration, u64, Ev)>>, Duration, Ev),
) {
    let srv = &mut servers[i as usize];
    let Some(c) = srv.queue.pop_front() else {
        return;
    };
    srv.busy = true;
    let secs = sch.chunk_len(c) as f64 / sim.rate;
    push(heap, now + Duration::from_secs_f64(secs), Ev::Served(i, c));
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[test]
fn three_equal_sources_take_a_third_of_the_time_of_one() {
    let len = 256 * MIB;
    let one = run(len, &[], &[good(25.0)]);
    let three = run(len, &[], &[good(25.0), good(25.0), good(25.0)]);
    assert_eq!(one.end, Progress::Done);
    assert_eq!(three.end, Progress::Done);
    let ratio = secs(three.time) / secs(one.time);
    assert!(ratio < 0.36, "three sources took {ratio:.3} of one's time");
    for s in &three.stats {
        let share = s.bytes as f64 / len as f64;
        assert!(
            (0.28..0.39).contains(&share),
            "uneven split: {:?}",
            three.stats
        );
    }
    // Endgame copies are few: at most a window's worth per source.
    assert!(three.requests <= 256 + 3 * 8, "{} requests", three.requests);
}

#[test]
fn uneven_sources_come_close_to_the_sum_of_their_rates() {
    let len = 256 * MIB;
    let sims = [good(50.0), good(12.5), good(3.125)];
    let o = run(len, &[], &sims);
    assert_eq!(o.end, Progress::Done);
    let ideal = len as f64 / (65.625e6);
    let over = secs(o.time) / ideal;
    assert!(over < 1.15, "took {over:.3} of the ideal time");
}

#[test]
fn a_corrupt_source_is_dropped_after_one_chunk_and_never_asked_again() {
    let len = 64 * MIB;
    let sims = [good(25.0), kind(good(25.0), Kind::Corrupt), good(25.0)];
    let o = run(len, &[], &sims);
    assert_eq!(o.end, Progress::Done);
    assert_eq!(o.dropped.len(), 1, "{:?}", o.dropped);
    assert_eq!(o.dropped[0].0, SourceId(1));
    assert!(matches!(o.dropped[0].1, DropReason::Corrupt { .. }));
    assert_eq!(o.after_drop, 0);
    assert_eq!(o.stats[1].bytes, 0);
    // The bad chunk and what was queued behind it are asked again: a window's worth.
    assert!(o.requests <= 64 + 8 + 6, "{} requests", o.requests);
}

#[test]
fn a_stalling_sources_requests_time_out_and_move() {
    let len = 64 * MIB;
    let cfg = Config {
        stall_after: Duration::from_secs(2),
        ..Config::default()
    };
    let sims = [good(25.0), kind(good(25.0), Kind::Stall), good(25.0)];
    let o = run_with(cfg.clone(), len, &[], &sims);
    assert_eq!(o.end, Progress::Done);
    assert_eq!(o.stats[1].bytes, 0);
    // Two good sources alone need ~1.34 s; each stall can cost at most `stall_after`.
    let two = len as f64 / 50e6;
    assert!(secs(o.time) < two + 2.0 * 1.2, "took {:?}", o.time);
    // A source that only stalls is dropped in the end.
    let alone = run_with(cfg, len, &[], &[kind(good(25.0), Kind::Stall)]);
    assert_eq!(alone.dropped, vec![(SourceId(0), DropReason::Stalled)]);
    assert!(matches!(alone.end, Progress::Stuck { ref missing } if missing.len() == 64));
}

#[test]
fn a_lie_in_have_costs_a_retry_not_the_download() {
    let len = 64 * MIB;
    let sims = [kind(good(25.0), Kind::LiesOdd), good(25.0)];
    let o = run(len, &[], &sims);
    assert_eq!(o.end, Progress::Done);
    // Each odd chunk is asked of the liar at most once.
    assert!(o.requests <= 64 + 32 + 8, "{} requests", o.requests);
    assert!(
        o.stats[0].bytes > 0,
        "the liar's even chunks count: {:?}",
        o.stats
    );
}

#[test]
fn all_sources_but_one_leaving_mid_download_still_completes() {
    let len = 64 * MIB;
    let leaving = |mut s: Sim, at: u64| {
        s.leaves_at = Some(Duration::from_millis(at));
        s
    };
    let sims = [
        leaving(good(25.0), 500),
        good(25.0),
        leaving(good(25.0), 700),
    ];
    let o = run(len, &[], &sims);
    assert_eq!(o.end, Progress::Done);
    let got: u64 = o.stats.iter().map(|s| s.bytes).sum();
    assert_eq!(got, len);
    assert!(o.stats[1].bytes > o.stats[0].bytes);
}

#[test]
fn the_rarest_chunks_are_asked_first() {
    let t = Instant::now();
    let mut sch = Scheduler::new(Config::default(), 8 * MIB, []);
    let first_half = Holds::Some(vec![true, true, true, true, false, false, false, false]);
    sch.add_source(SourceId(0), Holds::All, t);
    sch.add_source(SourceId(1), first_half.clone(), t);
    sch.add_source(SourceId(2), first_half, t);
    let asked: Vec<u64> = sch
        .poll(t)
        .into_iter()
        .filter_map(|a| match a {
            Action::Request {
                source: SourceId(0),
                chunk,
            } => Some(chunk),
            _ => None,
        })
        .collect();
    assert!(!asked.is_empty());
    assert!(
        asked.iter().all(|c| *c >= 4),
        "source 0 asked for {asked:?}"
    );
}

#[test]
fn equal_sources_start_on_different_stripes() {
    let t = Instant::now();
    let mut sch = Scheduler::new(Config::default(), 100 * MIB, []);
    for i in 0..4 {
        sch.add_source(SourceId(i), Holds::All, t);
    }
    let mut first = [None; 4];
    for a in sch.poll(t) {
        if let Action::Request { source, chunk } = a {
            first[source.0 as usize].get_or_insert(chunk);
        }
    }
    assert_eq!(first, [Some(0), Some(50), Some(25), Some(75)]);
}

#[test]
fn chunks_held_by_nobody_make_it_stuck_naming_them() {
    let len = 6 * MIB;
    let mut part = good(25.0);
    part.holds = Holds::Some(vec![true, true, true, false, true, false]);
    let o = run(len, &[], &[part.clone(), part]);
    assert_eq!(
        o.end,
        Progress::Stuck {
            missing: vec![3, 5]
        }
    );
}

#[test]
fn verified_chunks_are_never_asked_for() {
    let t = Instant::now();
    let mut sch = Scheduler::new(Config::default(), 4 * MIB + 10, [0, 1, 3]);
    sch.add_source(SourceId(0), Holds::All, t);
    let asked: Vec<Action> = sch.poll(t);
    let want = vec![
        Action::Request {
            source: SourceId(0),
            chunk: 2,
        },
        Action::Request {
            source: SourceId(0),
            chunk: 4,
        },
    ];
    assert_eq!(asked, want);
    assert_eq!(sch.chunk_len(4), 10);
    sch.on_chunk(SourceId(0), 4, true, t + Duration::from_millis(5));
    sch.on_chunk(SourceId(0), 2, true, t + Duration::from_millis(50));
    assert_eq!(sch.progress(), Progress::Done);
    assert!(sch.poll(t + Duration::from_millis(60)).is_empty());
}

#[test]
fn an_endgame_copy_is_cancelled_when_the_first_arrives() {
    let t = Instant::now();
    let mut sch = Scheduler::new(Config::default(), MIB, []);
    sch.add_source(SourceId(0), Holds::All, t);
    let a = sch.poll(t);
    assert_eq!(a.len(), 1);
    sch.add_source(SourceId(1), Holds::All, t);
    sch.add_source(SourceId(2), Holds::All, t);
    let copies = sch.poll(t + Duration::from_millis(10));
    // One more copy at most: two requests for the chunk in flight.
    assert_eq!(
        copies,
        vec![Action::Request {
            source: SourceId(1),
            chunk: 0
        }]
    );
    let done = sch.on_chunk(SourceId(1), 0, true, t + Duration::from_millis(30));
    assert_eq!(
        done,
        vec![Action::Cancel {
            source: SourceId(0),
            chunk: 0
        }]
    );
    assert_eq!(sch.progress(), Progress::Done);
}

#[test]
fn the_endgame_starts_once_every_missing_chunk_is_in_flight() {
    let now = Instant::now();
    let cfg = Config::default();
    // Four chunks, one source with a window of two.
    let mut sch = Scheduler::new(cfg.clone(), 4 * cfg.chunk_len, []);
    assert!(!sch.in_endgame(), "nothing asked yet");
    sch.add_source(SourceId(0), Holds::All, now);
    let asked = |actions: Vec<Action>| -> Vec<u64> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Request { chunk, .. } => Some(chunk),
                _ => None,
            })
            .collect()
    };
    let first = asked(sch.poll(now));
    assert_eq!(first.len(), cfg.min_window, "{first:?}");
    assert!(!sch.in_endgame(), "two of four chunks are not asked");
    let mut in_flight = first;
    let mut entered = None;
    for step in 0..4u64 {
        let c = in_flight.remove(0);
        in_flight.extend(asked(sch.on_chunk(SourceId(0), c, true, now)));
        in_flight.extend(asked(sch.poll(now)));
        let missing = 3 - step;
        let all_asked = missing > 0 && in_flight.len() as u64 == missing;
        assert_eq!(
            sch.in_endgame(),
            all_asked,
            "after chunk {c}: {in_flight:?}"
        );
        if all_asked && entered.is_none() {
            entered = Some(step);
        }
    }
    assert_eq!(
        entered,
        Some(1),
        "the last two chunks were in flight together"
    );
    assert_eq!(sch.progress(), Progress::Done);
    assert!(!sch.in_endgame(), "nothing is missing");
}

#[test]
fn a_source_joining_mid_download_takes_its_share_of_what_is_left() {
    let len = 128 * MIB;
    let alone = run(len, &[], &[good(25.0)]);
    let mut late = good(25.0);
    late.joins_at = Some(Duration::from_secs(1));
    let o = run(len, &[], &[good(25.0), late]);
    assert_eq!(o.end, Progress::Done);
    let got: u64 = o.stats.iter().map(|s| s.bytes).sum();
    assert_eq!(got, len);
    // It joined after a fifth of the time alone and then took about half of the rest.
    assert!(o.stats[1].bytes > len / 3, "{:?}", o.stats);
    assert!(
        secs(o.time) < secs(alone.time) * 0.7,
        "{o:?} against {alone:?}"
    );
}

#[test]
fn a_source_joining_with_the_chunks_nobody_held_ends_a_stuck_download() {
    let len = 16 * MIB;
    let chunks = len.div_ceil(proto::content::CHUNK);
    let first_half = Holds::Some((0..chunks).map(|c| c < chunks / 2).collect());
    let mut half = good(25.0);
    half.holds = first_half;
    let mut late = good(25.0);
    late.joins_at = Some(Duration::from_secs(2));
    let o = run(len, &[], &[half, late]);
    assert_eq!(o.end, Progress::Done);
    assert!(o.stats[1].bytes >= len / 2, "{:?}", o.stats);
}
