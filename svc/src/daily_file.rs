//! The activity log's file: one file a day (UTC), `<dir>/<prefix>.YYYY-MM-DD`, appended to,
//! created with mode 0600 whatever the umask, the oldest removed beyond a count. Files left
//! with a wider mode (by an older version, or by hand) are narrowed to 0600 when opened.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::private::{self, OwnerOnly as _};

/// A daily-rotated append-only file; `Write` goes to today's file.
#[derive(Debug)]
pub struct DailyFile {
    dir: PathBuf,
    prefix: String,
    keep: usize,
    /// The day (since the Unix epoch) of the open file, and the file.
    current: Option<(i64, File)>,
}

impl DailyFile {
    /// Opens today's file in `dir`, narrows the mode of the files already there, and keeps at
    /// most `keep` of them (at least one: today's).
    pub fn open(dir: &Path, prefix: &str, keep: usize) -> io::Result<DailyFile> {
        let mut file = DailyFile {
            dir: dir.to_owned(),
            prefix: prefix.to_owned(),
            keep: keep.max(1),
            current: None,
        };
        file.roll(today())?;
        Ok(file)
    }

    /// The path of the file for `day`.
    fn path(&self, day: i64) -> PathBuf {
        let (y, m, d) = civil_from_days(day);
        self.dir
            .join(format!("{}.{y:04}-{m:02}-{d:02}", self.prefix))
    }

    /// Switches to the file of `day`: removes the oldest files beyond the count, narrows the
    /// others, then opens (or creates) the day's file.
    fn roll(&mut self, day: i64) -> io::Result<()> {
        let mut old = self.existing()?;
        old.sort();
        let today = self.path(day);
        old.retain(|p| *p != today);
        let drop = old.len().saturating_sub(self.keep - 1);
        for path in &old[..drop] {
            // Best effort: a file that cannot be removed is tried again at the next roll.
            let _ = fs::remove_file(path);
        }
        for path in &old[drop..] {
            narrow(path)?;
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .owner_only()
            .open(&today)?;
        private::restrict_file(&file)?;
        if let Some((_, mut previous)) = self.current.replace((day, file)) {
            previous.flush()?;
        }
        Ok(())
    }

    /// The files of this log in the directory (`<prefix>.` followed by a date).
    fn existing(&self) -> io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let is_ours = name
                .to_str()
                .and_then(|n| n.strip_prefix(self.prefix.as_str()))
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(is_date);
            if is_ours && entry.file_type()?.is_file() {
                files.push(entry.path());
            }
        }
        Ok(files)
    }

    /// Writes to the file of `day`, switching to it first if needed.
    fn write_on(&mut self, day: i64, buf: &[u8]) -> io::Result<usize> {
        match &mut self.current {
            Some((open, file)) if *open == day => file.write(buf),
            _ => {
                self.roll(day)?;
                self.write_on(day, buf)
            }
        }
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_on(today(), buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Narrows `path` to mode 0600 if group or others have any access.
fn narrow(path: &Path) -> io::Result<()> {
    let mode = private::mode_bits(&fs::symlink_metadata(path)?);
    if mode & 0o077 != 0 {
        private::restrict(path)?;
    }
    Ok(())
}

/// `YYYY-MM-DD`, digits in place.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Days since 1970-01-01, UTC.
fn today() -> i64 {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(0)
}

pub use proto::timefmt::civil_from_days;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> BTreeSet<String> {
        let entries = fs::read_dir(dir).unwrap();
        entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert!(is_date("2026-12-05"));
        assert!(!is_date("2026-12-5"));
        assert!(!is_date("2026x12-05"));
    }

    #[test]
    fn new_and_rotated_files_are_private_and_old_ones_are_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("activity.log.2000-01-01");
        fs::write(&old, "old\n").unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).unwrap();
        let other = dir.path().join("activity.log.notes");
        fs::write(&other, "").unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o644)).unwrap();

        let mut log = DailyFile::open(dir.path(), "activity.log", 14).unwrap();
        assert_eq!(mode(&old), 0o600, "an existing file is narrowed");
        assert_eq!(mode(&other), 0o644, "a file not of the log is left alone");
        let day = 20_454;
        log.write_on(day, b"one\n").unwrap();
        log.write_on(day + 1, b"two\n").unwrap();
        log.flush().unwrap();
        let first = dir.path().join("activity.log.2026-01-01");
        let second = dir.path().join("activity.log.2026-01-02");
        assert_eq!(fs::read_to_string(&first).unwrap(), "one\n");
        assert_eq!(fs::read_to_string(&second).unwrap(), "two\n");
        assert_eq!((mode(&first), mode(&second)), (0o600, 0o600));
    }

    #[test]
    fn only_the_newest_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DailyFile::open(dir.path(), "a", 2).unwrap();
        // Days after today's, so today's file is the oldest.
        let first = today() + 1000;
        for day in first..first + 4 {
            log.write_on(day, b"x\n").unwrap();
        }
        let expected: BTreeSet<String> = [first + 2, first + 3]
            .iter()
            .map(|d| {
                log.path(*d)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(names(dir.path()), expected);
    }
}
