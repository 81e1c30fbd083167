//! The fetch scheduler of a multi-source download, as a pure state machine (design §2
//! "Shares", multi-source): it is told of sources joining and leaving, of what each holds,
//! of chunks arriving (verified good or bad), of misses and of the time, and answers with
//! the requests to send and the requests to cancel. It does no I/O and reads no clock:
//! every input carries `now`, so every rule is a unit test (`scheduler_tests.rs`, which
//! runs simulated sources with rates and latencies).
//!
//! The rules:
//! - a chunk already verified (on disk from an earlier run) is never asked for;
//! - each source gets the missing chunk it holds that the fewest sources hold (rarest
//!   first); among equals, the one nearest after its stripe start, so sources that all hold
//!   everything start on different parts of the file and rarely meet;
//! - each source has a window of requests in flight sized to its measured rate and round
//!   time (bandwidth times delay, plus slack), and the least busy source picks first;
//! - once every missing chunk is in flight (the endgame), an idle source may duplicate a
//!   chunk in flight elsewhere, at most [`Config::max_copies`] requests per chunk at once;
//!   when one copy arrives the others are cancelled;
//! - a source that sends one chunk failing verification is dropped for this download;
//! - a source that leaves, or goes [`Config::stall_after`] with requests in flight and
//!   nothing delivered, hands its requests back; a source that stalls
//!   [`Config::max_stalls`] times in a row is dropped;
//! - a source that answers "not found" for a chunk it claimed loses that chunk from its
//!   set: the lie costs one retry;
//! - the download is done when every chunk is verified, and stuck when a missing chunk is
//!   held by no usable source and none is in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A source of this download, numbered by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u32);

/// What a source holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// Every chunk.
    All,
    /// Chunk `i` when `bits[i]`; chunks past the end are not held.
    Some(Vec<bool>),
}

impl Holds {
    fn has(&self, chunk: u64) -> bool {
        match self {
            Holds::All => true,
            Holds::Some(bits) => usize::try_from(chunk)
                .ok()
                .and_then(|i| bits.get(i))
                .copied()
                .unwrap_or(false),
        }
    }

    fn clear(&mut self, chunk: u64, chunks: u64) {
        if let Holds::All = self {
            *self = Holds::Some(vec![true; chunks as usize]);
        }
        if let Holds::Some(bits) = self
            && let Some(b) = bits.get_mut(chunk as usize)
        {
            *b = false;
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask `source` for `chunk`.
    Request {
        /// The source.
        source: SourceId,
        /// The chunk.
        chunk: u64,
    },
    /// Tell `source` to stop serving `chunk` (a copy arrived from elsewhere, or it timed out).
    Cancel {
        /// The source.
        source: SourceId,
        /// The chunk.
        chunk: u64,
    },
    /// Stop using `source` for this download (close its link), for `why`.
    Drop {
        /// The source.
        source: SourceId,
        /// Why.
        why: DropReason,
    },
}

/// Why a source was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// It sent a chunk that failed verification.
    Corrupt {
        /// The chunk.
        chunk: u64,
    },
    /// It stalled [`Config::max_stalls`] times in a row.
    Stalled,
}

/// Where the download stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Chunks are still coming.
    Running,
    /// Every chunk is verified.
    Done,
    /// These missing chunks are held by no usable source and none is in flight.
    Stuck {
        /// The chunks nobody can give, in order.
        missing: Vec<u64>,
    },
}

/// The scheduler's knobs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Chunk size in bytes (every chunk but the last).
    pub chunk_len: u64,
    /// Requests in flight per source before its rate is known, and the least after.
    pub min_window: usize,
    /// Most requests in flight per source.
    pub max_window: usize,
    /// How long a source may hold requests and deliver nothing before they move elsewhere.
    pub stall_after: Duration,
    /// Stalls in a row after which a source is dropped.
    pub max_stalls: u32,
    /// Most requests for one chunk in flight at once (endgame duplicates included).
    pub max_copies: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            chunk_len: proto::transfer::CHUNK,
            min_window: 2,
            max_window: 64,
            stall_after: Duration::from_secs(20),
            max_stalls: 3,
            max_copies: 2,
        }
    }
}

/// One source as the scheduler sees it.
#[derive(Debug)]
struct Source {
    holds: Holds,
    /// Chunks asked of it and not answered, with when they were asked.
    in_flight: BTreeMap<u64, Instant>,
    /// Where its picks start, so equal sources spread over the file.
    stripe: u64,
    /// Bytes per second, smoothed; `None` before its first chunk.
    rate: Option<f64>,
    /// The shortest time seen from a request to its chunk.
    min_round: Option<Duration>,
    /// When it last delivered a chunk (or when its current run of requests began).
    last_progress: Instant,
    /// Stalls in a row.
    stalls: u32,
    /// Verified bytes it delivered.
    bytes: u64,
    /// Dropped: never asked again.
    dropped: bool,
}

impl Source {
    fn window(&self, cfg: &Config) -> usize {
        if self.stalls > 0 {
            return 1;
        }
        let (Some(rate), Some(round)) = (self.rate, self.min_round) else {
            return cfg.min_window;
        };
        let bdp = rate * round.as_secs_f64() / cfg.chunk_len as f64;
        let w = bdp.ceil() as usize + 2;
        w.clamp(cfg.min_window, cfg.max_window)
    }
}

/// Per-source figures for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStats {
    /// The source.
    pub source: SourceId,
    /// Verified bytes it delivered.
    pub bytes: u64,
    /// Its smoothed rate in bytes per second, once known.
    pub rate: Option<f64>,
    /// Requests in flight.
    pub in_flight: usize,
    /// Whether it was dropped.
    pub dropped: bool,
}

/// The scheduler of one download.
#[derive(Debug)]
pub struct Scheduler {
    cfg: Config,
    chunks: u64,
    len: u64,
    /// Chunks not yet verified.
    missing: BTreeSet<u64>,
    /// Sources asked for each missing chunk now.
    asked: BTreeMap<u64, BTreeSet<SourceId>>,
    sources: BTreeMap<SourceId, Source>,
    /// Requests sent in total, duplicates and retries included.
    requests: u64,
}

impl Scheduler {
    /// A download of `len` bytes of which the chunks `verified` are already on disk.
    pub fn new(cfg: Config, len: u64, verified: impl IntoIterator<Item = u64>) -> Scheduler {
        let chunks = len.div_ceil(cfg.chunk_len);
        let mut missing: BTreeSet<u64> = (0..chunks).collect();
        for c in verified {
            missing.remove(&c);
        }
        Scheduler {
            cfg,
            chunks,
            len,
            missing,
            asked: BTreeMap::new(),
            sources: BTreeMap::new(),
            requests: 0,
        }
    }

    /// How many chunks the content has.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// The length of chunk `chunk`.
    pub fn chunk_len(&self, chunk: u64) -> u64 {
        let start = chunk * self.cfg.chunk_len;
        self.len.saturating_sub(start).min(self.cfg.chunk_len)
    }

    /// Whether `chunk` is verified.
    pub fn is_verified(&self, chunk: u64) -> bool {
        chunk < self.chunks && !self.missing.contains(&chunk)
    }

    /// Requests sent in total, duplicates and retries included.
    pub fn requests_sent(&self) -> u64 {
        self.requests
    }

    /// Adds a source holding `holds` (or replaces what a known one holds).
    pub fn add_source(&mut self, id: SourceId, holds: Holds, now: Instant) {
        if let Some(s) = self.sources.get_mut(&id) {
            s.holds = holds;
            return;
        }
        let n = self.sources.len() as u64 + 1;
        // Stripes at 0, 1/2, 1/4, 3/4, ... of the file: the k-th source lands between
        // those before it, however many come.
        let stripe = self.chunks * bit_reverse_fraction(n - 1) / 1024;
        self.sources.insert(
            id,
            Source {
                holds,
                in_flight: BTreeMap::new(),
                stripe,
                rate: None,
                min_round: None,
                last_progress: now,
                stalls: 0,
                bytes: 0,
                dropped: false,
            },
        );
    }

    /// `id` left (its link closed): what it was asked for goes back to the others.
    pub fn remove_source(&mut self, id: SourceId) {
        if let Some(s) = self.sources.get_mut(&id) {
            s.dropped = true;
            let chunks: Vec<u64> = std::mem::take(&mut s.in_flight).into_keys().collect();
            for c in chunks {
                self.forget_ask(c, id);
            }
        }
    }

    /// `id` answered `chunk` with data that verified (`ok`) or did not.
    pub fn on_chunk(&mut self, id: SourceId, chunk: u64, ok: bool, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(s) = self.sources.get_mut(&id) else {
            return out;
        };
        let sent = s.in_flight.remove(&chunk);
        if !ok {
            out.push(Action::Drop {
                source: id,
                why: DropReason::Corrupt { chunk },
            });
            self.forget_ask(chunk, id);
            self.remove_source(id);
            return out;
        }
        if s.dropped {
            // A chunk that was on its way: still good data.
            self.forget_ask(chunk, id);
        } else {
            let len = self.len.saturating_sub(chunk * self.cfg.chunk_len);
            let len = len.min(self.cfg.chunk_len);
            let since = now.saturating_duration_since(s.last_progress);
            if let Some(sent) = sent {
                let round = now.saturating_duration_since(sent);
                s.min_round = Some(s.min_round.map_or(round, |m| m.min(round)));
                // The interval since its previous delivery measures its rate while it is
                // busy; after an idle spell the request's own round time does.
                let busy = since.min(round).max(Duration::from_micros(100));
                let sample = len as f64 / busy.as_secs_f64();
                s.rate = Some(s.rate.map_or(sample, |r| 0.7 * r + 0.3 * sample));
            }
            s.last_progress = now;
            s.stalls = 0;
            if self.missing.contains(&chunk) {
                s.bytes += len;
            }
        }
        if self.missing.remove(&chunk) {
            for other in self.asked.remove(&chunk).unwrap_or_default() {
                if other != id
                    && let Some(o) = self.sources.get_mut(&other)
                {
                    o.in_flight.remove(&chunk);
                    out.push(Action::Cancel {
                        source: other,
                        chunk,
                    });
                }
            }
        } else {
            self.forget_ask(chunk, id);
        }
        out
    }

    /// `id` said it does not hold `chunk` after all (or could not serve it now): it is no
    /// longer counted as holding it, and the chunk goes back to be asked elsewhere.
    pub fn on_miss(&mut self, id: SourceId, chunk: u64) {
        let chunks = self.chunks;
        if let Some(s) = self.sources.get_mut(&id) {
            s.in_flight.remove(&chunk);
            s.holds.clear(chunk, chunks);
        }
        self.forget_ask(chunk, id);
    }

    /// The time moved on: sources that delivered nothing for [`Config::stall_after`] while
    /// holding requests hand them back (cancelled), and are dropped after
    /// [`Config::max_stalls`] stalls in a row; then the windows are filled again.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let ids: Vec<SourceId> = self.sources.keys().copied().collect();
        for id in ids {
            let s = self.sources.get_mut(&id).expect("listed");
            if s.dropped || s.in_flight.is_empty() {
                continue;
            }
            let oldest = s.in_flight.values().min().copied().expect("not empty");
            let quiet_since = s.last_progress.max(oldest);
            if now.saturating_duration_since(quiet_since) < self.cfg.stall_after {
                continue;
            }
            s.stalls += 1;
            s.last_progress = now;
            let stalled = s.stalls >= self.cfg.max_stalls;
            let chunks: Vec<u64> = std::mem::take(&mut s.in_flight).into_keys().collect();
            for c in chunks {
                out.push(Action::Cancel {
                    source: id,
                    chunk: c,
                });
                self.forget_ask(c, id);
            }
            if stalled {
                out.push(Action::Drop {
                    source: id,
                    why: DropReason::Stalled,
                });
                self.remove_source(id);
            }
        }
        self.fill(now, &mut out);
        out
    }

    /// Where the download stands.
    pub fn progress(&self) -> Progress {
        if self.missing.is_empty() {
            return Progress::Done;
        }
        let usable: Vec<&Source> = self.sources.values().filter(|s| !s.dropped).collect();
        let missing: Vec<u64> = self
            .missing
            .iter()
            .copied()
            .filter(|c| {
                self.asked.get(c).is_none_or(|a| a.is_empty())
                    && !usable.iter().any(|s| s.holds.has(*c))
            })
            .collect();
        if missing.is_empty() {
            Progress::Running
        } else if self.asked.values().any(|a| !a.is_empty()) {
            // What is in flight may still come; other sources may yet join.
            Progress::Running
        } else {
            Progress::Stuck { missing }
        }
    }

    /// Per-source figures, in source order.
    pub fn stats(&self) -> Vec<SourceStats> {
        self.sources
            .iter()
            .map(|(id, s)| SourceStats {
                source: *id,
                bytes: s.bytes,
                rate: s.rate,
                in_flight: s.in_flight.len(),
                dropped: s.dropped,
            })
            .collect()
    }

    /// When [`Scheduler::poll`] should next run to notice a stall, if anything is in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.sources
            .values()
            .filter(|s| !s.dropped)
            .filter_map(|s| {
                let oldest = s.in_flight.values().min()?;
                Some(s.last_progress.max(*oldest) + self.cfg.stall_after)
            })
            .min()
    }

    fn forget_ask(&mut self, chunk: u64, id: SourceId) {
        if let Some(a) = self.asked.get_mut(&chunk) {
            a.remove(&id);
            if a.is_empty() {
                self.asked.remove(&chunk);
            }
        }
    }

    /// Gives sources requests until no window has room or nothing is left to ask, one at a
    /// time to the least busy source.
    fn fill(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut full: BTreeSet<SourceId> = BTreeSet::new();
        loop {
            let next = self
                .sources
                .iter()
                .filter(|(id, s)| !s.dropped && !full.contains(id))
                .filter(|(_, s)| s.in_flight.len() < s.window(&self.cfg))
                .min_by(|(ia, a), (ib, b)| {
                    let la = a.in_flight.len() as f64 / a.window(&self.cfg) as f64;
                    let lb = b.in_flight.len() as f64 / b.window(&self.cfg) as f64;
                    la.total_cmp(&lb)
                        .then(b.rate.unwrap_or(0.0).total_cmp(&a.rate.unwrap_or(0.0)))
                        .then(ia.cmp(ib))
                })
                .map(|(id, _)| *id);
            let Some(id) = next else { return };
            match self.pick(id) {
                Some(chunk) => {
                    let s = self.sources.get_mut(&id).expect("picked");
                    if s.in_flight.is_empty() {
                        s.last_progress = now;
                    }
                    s.in_flight.insert(chunk, now);
                    self.asked.entry(chunk).or_default().insert(id);
                    self.requests += 1;
                    out.push(Action::Request { source: id, chunk });
                }
                None => {
                    full.insert(id);
                }
            }
        }
    }

    /// The chunk `id` should be asked for next: the rarest missing chunk it holds that no
    /// one is asked for (nearest after its stripe start among equals); in the endgame, a
    /// chunk in flight elsewhere with room for another copy, the one asked longest ago.
    fn pick(&self, id: SourceId) -> Option<u64> {
        let s = &self.sources[&id];
        let usable: Vec<&Source> = self.sources.values().filter(|s| !s.dropped).collect();
        let all_hold = usable.iter().all(|s| s.holds == Holds::All);
        let mut best: Option<(usize, u64, u64)> = None; // (holders, distance, chunk)
        let fresh = self
            .missing
            .range(s.stripe..)
            .chain(self.missing.range(..s.stripe));
        for &c in fresh {
            if self.asked.contains_key(&c) || !s.holds.has(c) {
                continue;
            }
            if all_hold {
                return Some(c);
            }
            let holders = usable.iter().filter(|o| o.holds.has(c)).count();
            let dist = (c + self.chunks - s.stripe) % self.chunks.max(1);
            if best.is_none_or(|(h, d, _)| (holders, dist) < (h, d)) {
                best = Some((holders, dist, c));
                if holders == 1 {
                    break;
                }
            }
        }
        if let Some((_, _, c)) = best {
            return Some(c);
        }
        // Endgame: every missing chunk this source holds is in flight somewhere.
        self.asked
            .iter()
            .filter(|(c, who)| {
                !who.contains(&id) && who.len() < self.cfg.max_copies && s.holds.has(**c)
            })
            .min_by_key(|(c, who)| {
                let first = who
                    .iter()
                    .filter_map(|w| self.sources.get(w)?.in_flight.get(c).copied())
                    .min();
                (first, **c)
            })
            .map(|(c, _)| *c)
    }
}

/// `n`'s bits reversed as a fraction of 1024: 0, 512, 256, 768, 128, ... so each new
/// source starts halfway between two earlier starts.
fn bit_reverse_fraction(n: u64) -> u64 {
    (n as u16 & 0x3ff).reverse_bits() as u64 >> 6
}
