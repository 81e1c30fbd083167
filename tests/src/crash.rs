//! Helpers for crash runs: a seeded random generator whose seed is printed (so a failing
//! run can be replayed), and checks of a receiver's destination tree against the files
//! that were sent (nothing under a final name unless it is whole and its hash matches).

use std::collections::BTreeMap;
use std::path::Path;

use crate::transfer::entries;

/// A small seeded generator (SplitMix64): the same seed gives the same run.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator seeded from the environment variable `var` (decimal or `0x` hex), else
    /// from the OS. Prints the seed and how to replay it.
    pub fn from_env(var: &str) -> SeededRng {
        let seed = match std::env::var(var) {
            Ok(text) => parse_seed(&text)
                .unwrap_or_else(|| panic!("{var}={text:?} is not a number (decimal or 0x hex)")),
            Err(_) => {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).expect("OS randomness");
                u64::from_le_bytes(bytes)
            }
        };
        eprintln!("seed {seed:#018x} (replay with {var}={seed:#x})");
        SeededRng(seed)
    }

    /// A generator with this seed.
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// What a file should hold: its size and BLAKE3 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the content.
    pub hash: blake3::Hash,
}

impl Expected {
    /// The expectation for `data`.
    pub fn of(data: &[u8]) -> Expected {
        Expected {
            size: data.len() as u64,
            hash: blake3::hash(data),
        }
    }
}

/// What a destination tree holds, by kind of entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TreeState {
    /// Files under their final name, every one checked against its expectation.
    pub final_files: Vec<String>,
    /// Part files, with their sizes.
    pub parts: Vec<(String, u64)>,
    /// Bytes held on disk: final files and parts.
    pub bytes: u64,
}

/// Checks every entry under `dir` whose relative path starts with `prefix`: a file not
/// named like a part file (`.part` at the end) must be one of `expected` (relative paths
/// under `dir`) with exactly that size and hash, else this panics naming it. Part files are
/// listed with their sizes. `what` names the moment, for the message.
#[track_caller]
pub fn check_tree(
    dir: &Path,
    prefix: &str,
    expected: &BTreeMap<String, Expected>,
    what: &str,
) -> TreeState {
    let mut state = TreeState::default();
    for e in entries(dir) {
        if !e.starts_with(prefix) || e.ends_with('/') {
            continue;
        }
        assert!(
            !e.contains(" -> "),
            "{what}: a symlink in the destination: {e}"
        );
        let path = dir.join(&e);
        if e.ends_with(".part") {
            // It may be finished and renamed between the listing and this look.
            if let Ok(m) = std::fs::metadata(&path) {
                state.bytes += m.len();
                state.parts.push((e, m.len()));
            }
            continue;
        }
        let want = expected.get(&e).unwrap_or_else(|| {
            panic!(
                "{what}: {e} is under a final name but is none of the files sent \
                 (a duplicate or a stray file); the tree: {:#?}",
                entries(dir)
            )
        });
        let data = std::fs::read(&path).unwrap_or_else(|err| panic!("{what}: read {e}: {err}"));
        let got = Expected::of(&data);
        assert!(
            got == *want,
            "{what}: {e} is under its final name but is not the file sent: {} bytes with \
             hash {}, expected {} bytes with hash {}",
            got.size,
            got.hash,
            want.size,
            want.hash
        );
        state.bytes += got.size;
        state.final_files.push(e);
    }
    state
}

/// Bytes under `dir` whose relative paths start with `prefix` (final files and parts), read
/// from the directory without checking content: cheap enough to poll while data arrives.
pub fn bytes_on_disk(dir: &Path, prefix: &str) -> u64 {
    entries(dir)
        .iter()
        .filter(|e| e.starts_with(prefix) && !e.ends_with('/') && !e.contains(" -> "))
        .filter_map(|e| std::fs::metadata(dir.join(e)).ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let mut a = SeededRng::new(7);
        let mut b = SeededRng::new(7);
        let xs: Vec<u64> = (0..8).map(|_| a.below(1000)).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.below(1000)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|&x| x != xs[0]), "{xs:?}");
        assert_eq!(parse_seed("0x1f"), Some(31));
        assert_eq!(parse_seed("31"), Some(31));
        assert_eq!(parse_seed("x"), None);
    }
}
