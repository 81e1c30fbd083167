//! Downloads in progress as sources for others: each multi-source download registers its
//! manifest, its destination directory and a handle on its part file, and marks each chunk
//! once verified and written. The share server answers `Have` of chunks, `GetManifest` and
//! `GetChunk` for such content from here, but only to a peer that may read a share the
//! destination lies in (`share/content.rs`): a hash is never a capability. A chunk is read
//! back from the part file and verified again before it is served.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use bytes::Bytes;
use proto::content::{ChunkList, chunk_range};
use proto::share::{Bitfield, ContentId};

use crate::files::{FilesError, PartFile};
use crate::fsx::FileAt;

/// The part-file tag of a download of `id` (the part is `.<name>.<tag>.part`): the same on
/// every run, so a later run keeps what an earlier one wrote; the share index never lists
/// such a file ([`crate::share::index::is_staging`]).
pub fn part_tag(id: &ContentId) -> String {
    format!("swarm-{}", &id.to_string()[..16])
}

/// One download in progress.
#[derive(Debug)]
pub struct Partial {
    list: Arc<ChunkList>,
    dir: PathBuf,
    name: String,
    file: File,
    verified: Mutex<Vec<bool>>,
}

impl Partial {
    /// The download of `list` as `name` into the directory `dir` (canonical), its part file
    /// read through `file`, chunks `verified` already there.
    pub fn new(
        list: Arc<ChunkList>,
        dir: PathBuf,
        name: String,
        file: File,
        verified: &[u64],
    ) -> Partial {
        let mut bits = vec![false; list.cvs().len()];
        for c in verified {
            if let Some(b) = usize::try_from(*c).ok().and_then(|i| bits.get_mut(i)) {
                *b = true;
            }
        }
        Partial {
            list,
            dir,
            name,
            file,
            verified: Mutex::new(bits),
        }
    }

    /// The download of `list` into `part`, landing as `name` in the directory `dir`, chunks
    /// `verified` already there (`dir` made canonical, as share roots are, to tell which share
    /// it lies in).
    pub fn of_part(
        list: Arc<ChunkList>,
        dir: &Path,
        name: &str,
        part: &PartFile,
        verified: &[u64],
    ) -> Result<Partial, FilesError> {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        Ok(Partial::new(
            list,
            dir,
            name.to_owned(),
            part.reader()?,
            verified,
        ))
    }

    fn bits(&self) -> MutexGuard<'_, Vec<bool>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The content.
    pub fn id(&self) -> ContentId {
        self.list.id()
    }

    /// Its chunk values, checked against the content id.
    pub fn list(&self) -> &ChunkList {
        &self.list
    }

    /// The directory the file lands in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name the file lands as in [`Partial::dir`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Chunk `index` is verified and written.
    pub fn mark(&self, index: u64) {
        let mut bits = self.bits();
        if let Some(b) = usize::try_from(index).ok().and_then(|i| bits.get_mut(i)) {
            *b = true;
        }
    }

    /// Which of chunks `first .. first + count` are verified; `count` is at most
    /// `MAX_HAVE_BITS` (checked by the rules).
    pub fn have(&self, first: u64, count: u32) -> Bitfield {
        let bits = self.bits();
        let mut out = Bitfield::new(count).unwrap_or_default();
        for i in 0..count {
            let held = first
                .checked_add(u64::from(i))
                .and_then(|c| usize::try_from(c).ok())
                .and_then(|c| bits.get(c))
                .copied()
                .unwrap_or(false);
            if held {
                out.set(i);
            }
        }
        out
    }

    /// Chunk `index` if it is verified, read back from the part file and verified again
    /// (blocking: run it off the runtime's workers).
    pub fn read_chunk(&self, index: u64) -> Option<Bytes> {
        let held = usize::try_from(index)
            .ok()
            .and_then(|i| self.bits().get(i).copied())
            .unwrap_or(false);
        if !held {
            return None;
        }
        let (start, len) = chunk_range(self.list.len(), index)?;
        let mut buf = vec![0u8; usize::try_from(len).ok()?];
        self.file.read_exact_at(&mut buf, start).ok()?;
        self.list.verify_chunk(index, &buf).ok()?;
        Some(Bytes::from(buf))
    }
}

/// The downloads in progress, by content.
#[derive(Debug, Default)]
pub struct Partials(Mutex<Vec<Arc<Partial>>>);

impl Partials {
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Partial>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists `partial` until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, partial: Arc<Partial>) -> Registered {
        self.lock().push(partial.clone());
        Registered {
            partials: Arc::downgrade(self),
            partial,
        }
    }

    /// The downloads of content `id` in progress.
    pub fn of(&self, id: &ContentId) -> Vec<Arc<Partial>> {
        self.lock()
            .iter()
            .filter(|p| p.id() == *id)
            .cloned()
            .collect()
    }
}

/// A download listed in [`Partials`]; dropping it takes it out.
#[derive(Debug)]
pub struct Registered {
    partials: Weak<Partials>,
    partial: Arc<Partial>,
}

impl Registered {
    /// The download.
    pub fn partial(&self) -> &Partial {
        &self.partial
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(p) = self.partials.upgrade() {
            p.lock().retain(|q| !Arc::ptr_eq(q, &self.partial));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::Dest;
    use proto::content::CHUNK;

    #[test]
    fn only_verified_chunks_are_held_and_served() {
        let data: Vec<u8> = (0..2 * CHUNK + 7).map(|i| (i % 253) as u8).collect();
        let list = Arc::new(ChunkList::of(&data));
        let dir = tempfile::tempdir().unwrap();
        let dest = Dest::open(dir.path()).unwrap();
        let part = dest.create_part("t", &["f"], data.len() as u64).unwrap();
        part.write_at(CHUNK, &data[CHUNK as usize..2 * CHUNK as usize])
            .unwrap();
        // Chunk 2 written but wrong.
        part.write_at(2 * CHUNK, &[0u8; 7]).unwrap();
        let file = part.reader().unwrap();
        let partials = Arc::new(Partials::default());
        let p = Arc::new(Partial::new(
            list.clone(),
            dir.path().into(),
            "f".into(),
            file,
            &[],
        ));
        let reg = partials.register(p.clone());
        assert_eq!(partials.of(&list.id()).len(), 1);
        assert!(partials.of(&ContentId([3; 32])).is_empty());
        assert_eq!(p.have(0, 3).count_ones(), 0);
        assert!(p.read_chunk(1).is_none(), "not marked yet");
        p.mark(1);
        p.mark(2);
        p.mark(99);
        let bits = p.have(0, 5);
        let got: Vec<bool> = (0..5).map(|i| bits.get(i)).collect();
        assert_eq!(got, [false, true, true, false, false]);
        assert_eq!(p.have(u64::MAX, 3).count_ones(), 0);
        assert_eq!(
            p.read_chunk(1).unwrap(),
            &data[CHUNK as usize..2 * CHUNK as usize]
        );
        assert!(p.read_chunk(2).is_none(), "fails verification");
        assert!(p.read_chunk(99).is_none());
        drop(reg);
        assert!(partials.of(&list.id()).is_empty());
    }

    #[test]
    fn part_files_are_never_indexed() {
        use crate::share::index::is_staging;
        use std::ffi::OsStr;
        let dir = tempfile::tempdir().unwrap();
        let dest = Dest::open(dir.path()).unwrap();
        let tag = part_tag(&ContentId([0xab; 32]));
        let long = "n".repeat(250);
        for name in ["os.iso", long.as_str()] {
            let part = dest.create_part(&tag, &[name], 1).unwrap();
            let file = part.part_path();
            assert!(is_staging(file.as_os_str()), "{}", file.display());
        }
        for other in [
            "os.iso",
            ".os.iso.part",
            ".os.swarm-abababababababab",
            ".os.swarm-ABABABABABABABAB.part",
            ".os.swarm-abababababababa.part",
            "os.swarm-abababababababab.part",
        ] {
            assert!(!is_staging(OsStr::new(other)), "{other}");
        }
    }
}
