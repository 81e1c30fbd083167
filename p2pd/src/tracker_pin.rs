//! The pinned tracker keys (trust on first use), one per tracker address, kept in
//! `<state>/tracker-pins`: one `HOST:PORT KEY` line each.
//!
//! Daemons from before several trackers kept one key in `<state>/tracker.pin`; when the new
//! file does not exist yet, that key becomes the pin of the first configured tracker (the one
//! such a configuration named) and is written to the new file. The old file is left as it was.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use proto::PeerId;

/// File name of the pins inside the state directory.
pub const PINS_FILE: &str = "tracker-pins";
/// File name of the single pin kept before several trackers.
pub const LEGACY_PIN_FILE: &str = "tracker.pin";

/// The pins of one state directory, shared by every tracker link (writes are serialised).
#[derive(Debug)]
pub struct TrackerPins {
    dir: PathBuf,
    write: Mutex<()>,
}

impl TrackerPins {
    /// The pins of `state_dir`, the legacy single pin moved to `first_addr` if the pins file
    /// is not there yet.
    pub fn open(state_dir: &Path, first_addr: Option<&str>) -> io::Result<TrackerPins> {
        let pins = TrackerPins {
            dir: state_dir.to_owned(),
            write: Mutex::new(()),
        };
        if !pins.path().exists()
            && let Some(addr) = first_addr
            && let Some(key) = load_legacy(state_dir)?
        {
            pins.save(addr, key)?;
        }
        Ok(pins)
    }

    /// The pins file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(PINS_FILE)
    }

    /// The key pinned for tracker `addr`, if any. A corrupt file is an error, never silently
    /// replaced.
    pub fn load(&self, addr: &str) -> io::Result<Option<PeerId>> {
        Ok(self
            .read()?
            .into_iter()
            .find(|(a, _)| a == addr)
            .map(|(_, k)| k))
    }

    /// Pins `key` for tracker `addr` (replacing any pin of that address).
    pub fn save(&self, addr: &str, key: PeerId) -> io::Result<()> {
        let _one_writer = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let mut pins = self.read()?;
        pins.retain(|(a, _)| a != addr);
        pins.push((addr.to_owned(), key));
        let text: String = pins.iter().map(|(a, k)| format!("{a} {k}\n")).collect();
        write_whole(&self.dir, PINS_FILE, &text)
    }

    fn read(&self) -> io::Result<Vec<(String, PeerId)>> {
        let text = match std::fs::read_to_string(self.path()) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let bad = |detail: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {detail}", self.path().display()),
            )
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let (addr, key) = line
                    .split_once(' ')
                    .ok_or_else(|| bad(format!("not \"HOST:PORT KEY\": {line:?}")))?;
                let key = key.trim().parse().map_err(|e| bad(format!("{e}")))?;
                Ok((addr.to_owned(), key))
            })
            .collect()
    }
}

/// Reads the single pin of a daemon from before several trackers, if any.
fn load_legacy(state_dir: &Path) -> io::Result<Option<PeerId>> {
    let path = state_dir.join(LEGACY_PIN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `name` in `dir` whole: a temporary file (mode 0600, like every file p2pd makes in
/// its state directory), synced, then renamed into place.
fn write_whole(dir: &Path, name: &str, text: &str) -> io::Result<()> {
    use std::io::Write as _;
    use svc::private::OwnerOnly as _;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .owner_only()
        .open(&tmp)?;
    svc::private::restrict_file(&file)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_per_address_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let pins = TrackerPins::open(dir.path(), Some("a:1")).unwrap();
        assert_eq!(pins.load("a:1").unwrap(), None);
        let (k1, k2) = (
            proto::SecretKey::from_seed([1; 32]).peer_id(),
            proto::SecretKey::from_seed([2; 32]).peer_id(),
        );
        pins.save("a:1", k1).unwrap();
        pins.save("b:2", k2).unwrap();
        assert_eq!(pins.load("a:1").unwrap(), Some(k1));
        assert_eq!(pins.load("b:2").unwrap(), Some(k2));
        pins.save("a:1", k2).unwrap();
        assert_eq!(pins.load("a:1").unwrap(), Some(k2));
        std::fs::write(pins.path(), "garbage").unwrap();
        assert!(pins.load("a:1").is_err());
    }

    #[test]
    fn the_single_pin_of_older_daemons_goes_to_the_first_tracker() {
        let dir = tempfile::tempdir().unwrap();
        let k = proto::SecretKey::from_seed([1; 32]).peer_id();
        std::fs::write(dir.path().join(LEGACY_PIN_FILE), format!("{k}\n")).unwrap();
        let pins = TrackerPins::open(dir.path(), Some("t:7070")).unwrap();
        assert_eq!(pins.load("t:7070").unwrap(), Some(k));
        assert_eq!(pins.load("u:7070").unwrap(), None);
        // Once the pins file exists, the old file is not read again.
        pins.save("t:7070", proto::SecretKey::from_seed([2; 32]).peer_id())
            .unwrap();
        let again = TrackerPins::open(dir.path(), Some("t:7070")).unwrap();
        assert_ne!(again.load("t:7070").unwrap(), Some(k));
    }
}
