//! Payload files for the benchmarks that move files: random bytes from a fast PRNG, written in 1 MiB blocks and synced, and
//! their BLAKE3 hashes (read in 1 MiB blocks on one thread, as p2pd's scan does).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Block size for writing, reading and hashing files (p2pd's chunk size too).
pub const BLOCK: usize = 1 << 20;

/// xoshiro256++ (Blackman and Vigna): several GB/s on one core, plenty for payload bytes.
struct Xoshiro([u64; 4]);

impl Xoshiro {
    fn seeded() -> anyhow::Result<Xoshiro> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let mut s = [0u64; 4];
        for (w, c) in s.iter_mut().zip(seed.chunks_exact(8)) {
            *w = u64::from_le_bytes(c.try_into()?);
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Ok(Xoshiro(s))
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = words.into_remainder();
        let last = self.next().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// Writes `size` random bytes to a new file at `path`, syncs it, and returns the BLAKE3
/// hash of what was written (hashed as it is generated) and the time taken.
pub fn write_random(path: &Path, size: u64) -> anyhow::Result<([u8; 32], Duration)> {
    let started = Instant::now();
    let mut rng = Xoshiro::seeded()?;
    let mut file =
        File::create_new(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut buf = vec![0u8; BLOCK];
    let mut hasher = blake3::Hasher::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        rng.fill(&mut buf[..n]);
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok((*hasher.finalize().as_bytes(), started.elapsed()))
}

/// BLAKE3 of a file read in [`BLOCK`]s on one thread, and the time it took.
pub fn hash_file(path: &Path) -> anyhow::Result<([u8; 32], Duration)> {
    let started = Instant::now();
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok((*hasher.finalize().as_bytes(), started.elapsed()))
}

/// Checks that `received` has the size and BLAKE3 hash of the source.
pub fn verify(received: &Path, size: u64, hash: &[u8; 32]) -> anyhow::Result<()> {
    let len = std::fs::metadata(received)
        .with_context(|| format!("no received file {}", received.display()))?
        .len();
    anyhow::ensure!(
        len == size,
        "{} has {len} bytes, {size} sent",
        received.display()
    );
    let (got, _) = hash_file(received)?;
    anyhow::ensure!(
        &got == hash,
        "{} differs from the file sent (BLAKE3)",
        received.display()
    );
    Ok(())
}

/// Parses `1073741824`, `512M`, `1GiB` and the like (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => {
            return Err(format!(
                "bad size unit {unit:?} (use K, M, G, KiB, MiB, GiB)"
            ));
        }
    };
    n.checked_mul(1 << shift)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("bad size {s:?}"))
}

/// Flushes every file system (`sync`), so that one phase's write-back does not land in the
/// next one's timing.
pub fn sync_all_disks() {
    let _ = std::process::Command::new("sync").status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_files_hash_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r");
        let (h, _) = write_random(&p, 3 * BLOCK as u64 + 5).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 3 * BLOCK as u64 + 5);
        assert_eq!(hash_file(&p).unwrap().0, h);
        verify(&p, 3 * BLOCK as u64 + 5, &h).unwrap();
        assert!(verify(&p, 3, &h).is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("3k"), Ok(3072));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1T").is_err());
        assert!(parse_size("G").is_err());
    }
}
