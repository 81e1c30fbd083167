//! The trees the benchmark shares, made in its own temporary directory: one directory of many
//! empty files (for listing), and many small files in a few hundred directories (for
//! indexing).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Files per directory of the indexing tree.
pub const PER_DIR: usize = 300;

/// Makes `n` empty files `f000000`… in the new directory `dir`; returns how long it took.
pub fn flat(dir: &Path, n: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    std::fs::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for i in 0..n {
        File::create_new(dir.join(format!("f{i:06}")))?;
    }
    Ok(started.elapsed())
}

/// Makes `n` files of 1 to 4 KiB (sizes spread evenly, bytes varied per file) in
/// directories of [`PER_DIR`] files (`d0000/…`) under the new directory `dir`; returns the
/// bytes written and how long it took.
pub fn small_files(dir: &Path, n: usize) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    std::fs::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut block = vec![0u8; 4096];
    for (i, b) in block.iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    let mut bytes = 0u64;
    for i in 0..n {
        let sub = dir.join(format!("d{:04}", i / PER_DIR));
        if i % PER_DIR == 0 {
            std::fs::create_dir(&sub)?;
        }
        let size = size_of_file(i);
        // Each file's first bytes are its number, so no two files are alike.
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let mut f = File::create_new(sub.join(format!("s{i:06}.dat")))?;
        f.write_all(&block[..size])?;
        bytes += size as u64;
    }
    Ok((bytes, started.elapsed()))
}

/// The size of file `i` of the indexing tree: 1 KiB to 4 KiB.
fn size_of_file(i: usize) -> usize {
    1024 + (i * 7919) % 3073
}

/// Directories [`small_files`] makes for `n` files.
pub fn dirs_for(n: usize) -> usize {
    n.div_ceil(PER_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_have_the_files_asked_for() {
        let d = tempfile::tempdir().unwrap();
        flat(&d.path().join("flat"), 12).unwrap();
        assert_eq!(
            std::fs::read_dir(d.path().join("flat")).unwrap().count(),
            12
        );
        let (bytes, _) = small_files(&d.path().join("small"), 650).unwrap();
        let dirs: Vec<_> = std::fs::read_dir(d.path().join("small")).unwrap().collect();
        assert_eq!(dirs.len(), dirs_for(650));
        assert_eq!(dirs_for(650), 3);
        let mut total = 0;
        let mut files = 0;
        for dir in dirs {
            for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let len = f.unwrap().metadata().unwrap().len();
                assert!((1024..=4096).contains(&len), "{len}");
                total += len;
                files += 1;
            }
        }
        assert_eq!((files, total), (650, bytes));
    }
}
