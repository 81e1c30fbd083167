//! Where a received directory lands: a top-level directory of an offer that already exists
//! in the destination is not merged into but lands beside it as `dir (1)`, `dir (2)`, ...
//!
//! The receiver claims each top-level directory's name once, when it accepts
//! ([`Dest::claim_dir`]): the first candidate free of any entry (compared without regard to
//! case or Unicode normalisation) is created there and then, so two transfers never claim one
//! name. The names claimed are stored with the transfer and handed back on every session
//! ([`Dest::with_landing`]), so a resume writes into the directory it started in.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::PathBuf;

use proto::transfer::collision_key;

use super::names::{check_names, cut};
use super::{Dest, FilesError, MAX_COPIES, MAX_NAME, Op};

/// Offered top-level directory name → the name it lands under.
pub type Landing = BTreeMap<String, String>;

/// The `n`th candidate for a directory: `name` for 0, else `name (n)`, cut to fit
/// [`MAX_NAME`]. A directory has no extension: `v1.2` becomes `v1.2 (1)`.
fn dir_copy_name(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    let suffix = format!(" ({n})");
    format!("{}{suffix}", cut(name, MAX_NAME - suffix.len()))
}

impl Dest {
    /// This handle, landing paths whose first component is a key of `landing` under its
    /// value instead (see [`Dest::claim_dir`]). Files at the top level are not affected.
    pub fn with_landing(mut self, landing: Landing) -> Dest {
        self.landing = landing;
        self
    }

    /// `components` with a top-level directory replaced by where it lands.
    pub(super) fn landed<'a>(&'a self, components: &[&'a str]) -> Vec<&'a str> {
        let mut out = components.to_vec();
        if out.len() > 1
            && let Some(to) = self.landing.get(out[0])
        {
            out[0] = to.as_str();
        }
        out
    }

    /// Creates the offered empty directory `components` and whatever of it is missing, one
    /// component at a time, no symlink followed (an existing one anywhere on the way is
    /// refused with [`FilesError::Symlink`]); its first component lands where
    /// [`Dest::with_landing`] says. An existing directory is kept as it is.
    pub fn make_dir(&self, components: &[&str]) -> Result<(), FilesError> {
        let mut components = components.to_vec();
        if let Some(to) = components.first().and_then(|top| self.landing.get(*top)) {
            components[0] = to.as_str();
        }
        check_names("dir", &components)?;
        self.walk(&components, true).map(|_| ())
    }

    /// Creates a new directory for the offered top-level directory `name`: `name` itself if
    /// nothing in the destination has that name (in any case or Unicode spelling), else the
    /// first free `name (1)`, `name (2)`, ... Returns the name created.
    pub fn claim_dir(&self, name: &str) -> Result<String, FilesError> {
        check_names("claim", &[name])?;
        let mut taken = HashSet::new();
        for entry in self
            .root
            .entries()
            .map_err(|e| FilesError::io(Op::ReadDir, PathBuf::from("."), e))?
        {
            let entry = entry.map_err(|e| FilesError::io(Op::ReadDir, PathBuf::from("."), e))?;
            taken.insert(collision_key(&entry.file_name().to_string_lossy()));
        }
        for n in 0..MAX_COPIES {
            let candidate = dir_copy_name(name, n);
            if !taken.insert(collision_key(&candidate)) {
                continue;
            }
            match self.root.create_dir(&candidate) {
                Ok(()) => return Ok(candidate),
                // Made meanwhile by someone else: try the next.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(FilesError::io(Op::CreateDir, PathBuf::from(candidate), e)),
            }
        }
        Err(FilesError::NoFreeName {
            path: PathBuf::from(name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_directory_name_gets_the_next_copy_number() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = Dest::open(tmp.path()).unwrap();
        assert_eq!(dest.claim_dir("photos").unwrap(), "photos");
        assert_eq!(dest.claim_dir("photos").unwrap(), "photos (1)");
        // Another case is the same name; a file takes the name as well.
        assert_eq!(dest.claim_dir("PHOTOS").unwrap(), "PHOTOS (2)");
        std::fs::write(tmp.path().join("v1.2"), b"x").unwrap();
        assert_eq!(dest.claim_dir("v1.2").unwrap(), "v1.2 (1)");
        assert!(tmp.path().join("photos (1)").is_dir());
    }

    #[test]
    fn only_top_level_directories_are_renamed() {
        let tmp = tempfile::tempdir().unwrap();
        let landing = Landing::from([("d".to_owned(), "d (1)".to_owned())]);
        let dest = Dest::open(tmp.path()).unwrap().with_landing(landing);
        assert_eq!(dest.landed(&["d", "a.txt"]), ["d (1)", "a.txt"]);
        assert_eq!(dest.landed(&["d"]), ["d"]);
        assert_eq!(dest.landed(&["e", "d", "x"]), ["e", "d", "x"]);
    }

    #[test]
    fn a_bad_name_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = Dest::open(tmp.path()).unwrap();
        for bad in ["", "..", "a/b"] {
            assert!(
                matches!(dest.claim_dir(bad), Err(FilesError::BadName { .. })),
                "{bad:?}"
            );
        }
    }
}
