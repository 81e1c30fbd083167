//! Safe creation of received files: the leaf a transfer receiver writes through.
//!
//! Everything happens through a [`Dest`], a cap-std handle on the destination directory.
//! Paths arrive as lists of components that the offer check has already validated; they are
//! re-checked here, cheaply, and are never joined onto a path string. Intermediate directories
//! are made one `create_dir` at a time inside the handle, and no symlink is followed: a symlink
//! anywhere on the way (directory, part file or final name) is refused with
//! [`FilesError::Symlink`], even one that points inside the tree.
//!
//! Life of a received file:
//!
//! 1. [`Dest::create_part`] creates — or, for a resumed transfer, reopens — the part file
//!    `.<name>.<transfer>.part` next to where the file will land (hidden, and tagged with the
//!    transfer so two transfers of the same name never share one). When `<name>` is so long
//!    that this would exceed 255 bytes, the name is cut and a BLAKE3 digest of the full name
//!    keeps it unique: `.<cut name>~<16 hex>.<transfer>.part`. Either way it is the same for
//!    the same transfer and name, which is what resume relies on.
//! 2. The receiver writes verified chunks with [`PartFile::write_at`]; writes past the
//!    announced size are refused. [`PartFile::len`] and [`PartFile::set_len`] let it resume
//!    from verified data.
//! 3. [`PartFile::link_final`] checks the length, fsyncs the file, gives it its final name
//!    without replacing anything (`name (1).ext`, `name (2).ext`, … if the name — compared
//!    without regard to case or Unicode normalisation — is taken) and fsyncs the directory;
//!    the caller records the file as done, then removes the part name ([`PartFile::remove`];
//!    [`PartFile::finish`] does both steps). The file never appears under a final name
//!    before the link.
//! 4. On cancel or failure, [`PartFile::remove`] or [`Dest::remove_part`] deletes the part.
//!
//! The no-replace rename is a hard link of the part to the candidate name (`link` fails if
//! the name exists, atomically, whatever it is — file, directory or dangling symlink) followed
//! by removing the part name. A crash between the two leaves both names on the same complete,
//! fsynced file; [`Dest::finished_part`] finds that final name again on resume, so the file
//! is recorded as done instead of received a second time. On a file system without hard links (FAT, exFAT) it falls back to a plain
//! rename after checking the name is free; only that fallback has a window in which a file
//! created at that instant by another local process could be replaced.
//!
//! All calls block: run them on a blocking thread.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, Metadata, OpenOptions};
use proto::transfer::collision_key;

/// Longest file name (one component) in bytes, as on Linux, macOS and Windows.
pub const MAX_NAME: usize = 255;

/// Longest transfer tag accepted in part-file names.
pub const MAX_TAG: usize = 64;

/// How many `name (n).ext` candidates [`PartFile::finish`] tries before giving up.
const MAX_COPIES: u32 = 10_000;

/// What was being done when an I/O error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Opening the destination directory.
    OpenDest,
    /// Looking at an existing entry.
    Stat,
    /// Creating a directory.
    CreateDir,
    /// Opening a directory.
    OpenDir,
    /// Creating or reopening a part file.
    OpenPart,
    /// Writing data.
    Write,
    /// Reading back data written earlier.
    Read,
    /// Changing a part file's length.
    SetLen,
    /// Flushing to disk.
    Sync,
    /// Listing a directory.
    ReadDir,
    /// Giving the file its final name.
    Rename,
    /// Removing a file.
    Remove,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::OpenDest => "open destination directory",
            Op::Stat => "inspect",
            Op::CreateDir => "create directory",
            Op::OpenDir => "open directory",
            Op::OpenPart => "open part file",
            Op::Write => "write",
            Op::Read => "read",
            Op::SetLen => "set length of",
            Op::Sync => "sync",
            Op::ReadDir => "list directory",
            Op::Rename => "rename into place",
            Op::Remove => "remove",
        })
    }
}

/// Errors from writing received files. Paths are relative to the destination directory,
/// except in [`Op::OpenDest`] errors, where it is the destination itself.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The disk (or the user's quota) is full.
    #[error("the disk is full: cannot {op} {}: {source}", path.display())]
    DiskFull {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: Op,
        /// The cause (ENOSPC or EDQUOT).
        #[source]
        source: io::Error,
    },
    /// A symlink sits where a directory, part file or received file would go.
    #[error("refusing to write through a symlink in the destination: {}", path.display())]
    Symlink {
        /// The symlink.
        path: PathBuf,
    },
    /// A path component exists and is not a directory.
    #[error("{} exists in the destination and is not a directory", path.display())]
    NotADirectory {
        /// The entry.
        path: PathBuf,
    },
    /// The part-file name exists and is not a regular file.
    #[error("{} exists in the destination and is not a regular file", path.display())]
    NotAFile {
        /// The entry.
        path: PathBuf,
    },
    /// A path component or transfer tag is not acceptable.
    #[error("invalid name {name:?}: {reason}")]
    BadName {
        /// The component.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A write would go past the announced size.
    #[error(
        "{}: {len} bytes at offset {offset} go past the announced size of {size} bytes",
        path.display()
    )]
    Overrun {
        /// The file being received.
        path: PathBuf,
        /// Where the write started.
        offset: u64,
        /// Its length.
        len: u64,
        /// The announced size.
        size: u64,
    },
    /// The part file does not have the announced size at [`PartFile::finish`].
    #[error("{}: {len} bytes received, {size} announced", path.display())]
    Incomplete {
        /// The file being received.
        path: PathBuf,
        /// Bytes in the part file.
        len: u64,
        /// The announced size.
        size: u64,
    },
    /// Every `name (n).ext` up to the limit is taken.
    #[error("no free name left for {} in the destination", path.display())]
    NoFreeName {
        /// The file being received.
        path: PathBuf,
    },
    /// Any other I/O failure.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: Op,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl FilesError {
    /// The disk is full: worth telling the user so, and worth keeping the part for a resume.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, FilesError::DiskFull { .. })
    }

    /// An I/O error while doing `op` on `path`: [`FilesError::DiskFull`] when the disk or
    /// quota is full, [`FilesError::Io`] otherwise.
    pub(crate) fn io(op: Op, path: PathBuf, source: io::Error) -> FilesError {
        if matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        ) {
            FilesError::DiskFull { path, op, source }
        } else {
            FilesError::Io { path, op, source }
        }
    }
}

/// The name a received file ended up with, relative to the destination directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalName {
    components: Vec<String>,
}

impl FinalName {
    /// The components, the last one being the file name.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The file name (the last component), `name (n).ext` if the offered name was taken.
    pub fn file_name(&self) -> &str {
        self.components.last().map_or("", String::as_str)
    }

    /// As a relative path.
    pub fn to_path_buf(&self) -> PathBuf {
        self.components.iter().collect()
    }
}

impl fmt::Display for FinalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.components.join("/"))
    }
}

/// A handle on a destination directory; every received file is created through it.
#[derive(Debug)]
pub struct Dest {
    root: Dir,
    path: PathBuf,
    /// Top-level directories that land under another name ([`Dest::claim_dir`]).
    landing: Landing,
}

impl Dest {
    /// Opens an existing destination directory (the user's choice, so a symlink here is
    /// followed; nothing below it will be).
    pub fn open(path: &Path) -> Result<Dest, FilesError> {
        let root = Dir::open_ambient_dir(path, ambient_authority())
            .map_err(|e| FilesError::io(Op::OpenDest, path.to_owned(), e))?;
        Ok(Dest {
            root,
            path: path.to_owned(),
            landing: Landing::new(),
        })
    }

    /// The directory this handle was opened on, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates, or reopens for a resume, the part file for `components` (directories first,
    /// file name last) in transfer `transfer` (a tag of 1 to [`MAX_TAG`] ASCII letters,
    /// digits, `-` or `_`, the same on every resume), announced as `size` bytes.
    ///
    /// Missing directories are created. A reopened part keeps its bytes (cut to `size` if
    /// longer). Refused with [`FilesError::Symlink`] if any existing component, the part
    /// name or the final name is a symlink.
    pub fn create_part(
        &self,
        transfer: &str,
        components: &[&str],
        size: u64,
    ) -> Result<PartFile, FilesError> {
        let components = &self.landed(components)[..];
        let name = check_names(transfer, components)?;
        let (parents, _) = components.split_at(components.len() - 1);
        let Some((dir, parents)) = self.walk(parents, true)? else {
            // Not reached: walking with `create` makes what is missing.
            return Err(FilesError::io(
                Op::OpenDir,
                rel_path(parents),
                io::ErrorKind::NotFound.into(),
            ));
        };
        let rel = rel_path(&parents).join(name);
        // Refuse early when the final name is a symlink: a received file is meant to land
        // there, and finish would only step around it to `name (1)`.
        match dir.symlink_metadata(name) {
            Ok(m) if m.file_type().is_symlink() => return Err(FilesError::Symlink { path: rel }),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(FilesError::io(Op::Stat, rel, e)),
        }
        let part = part_name(name, transfer);
        let part_rel = rel_path(&parents).join(&part);
        let file = match dir.open_with(
            &part,
            OpenOptions::new().read(true).write(true).create_new(true),
        ) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                open_existing_part(&dir, &part, &part_rel)?
            }
            Err(e) => return Err(FilesError::io(Op::OpenPart, part_rel, e)),
        };
        let part_file = PartFile {
            dir,
            file,
            part,
            name: name.to_owned(),
            parents,
            size,
        };
        if part_file.len()? > size {
            part_file.set_len(size)?;
        }
        Ok(part_file)
    }

    /// Removes the part file of `components` in transfer `transfer`, if there is one (for a
    /// cancel when no [`PartFile`] is open, e.g. after a restart). Creates nothing; returns
    /// whether a part was removed.
    pub fn remove_part(&self, transfer: &str, components: &[&str]) -> Result<bool, FilesError> {
        let components = &self.landed(components)[..];
        let name = check_names(transfer, components)?;
        let (parents, _) = components.split_at(components.len() - 1);
        let Some((dir, parents)) = self.walk(parents, false)? else {
            return Ok(false);
        };
        let part = part_name(name, transfer);
        let part_rel = rel_path(&parents).join(&part);
        match dir.symlink_metadata(&part) {
            Ok(m) if m.file_type().is_symlink() => Err(FilesError::Symlink { path: part_rel }),
            Ok(m) if !m.is_file() => Err(FilesError::NotAFile { path: part_rel }),
            Ok(_) => match dir.remove_file(&part) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(FilesError::io(Op::Remove, part_rel, e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(FilesError::io(Op::Stat, part_rel, e)),
        }
    }

    /// Opens the directory `parents` below the root, one component at a time, refusing
    /// symlinks; creates missing ones if `create`, else returns `None` for a missing one.
    /// A directory already there under another Unicode spelling of a name (decomposed, say)
    /// is the one used, never a second one beside it. Returns the directory and the names
    /// walked, as they are on disk.
    fn walk(
        &self,
        parents: &[&str],
        create: bool,
    ) -> Result<Option<(Dir, Vec<String>)>, FilesError> {
        let mut cur = self
            .root
            .try_clone()
            .map_err(|e| FilesError::io(Op::OpenDir, PathBuf::from("."), e))?;
        let mut walked: Vec<String> = Vec::with_capacity(parents.len());
        for offered in parents {
            let on_disk = match cur.symlink_metadata(offered) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => other_spelling(&cur, offered)
                    .map_err(|e| FilesError::io(Op::ReadDir, rel_path(&walked), e))?
                    .unwrap_or_else(|| (*offered).to_owned()),
                _ => (*offered).to_owned(),
            };
            let c = on_disk.as_str();
            let rel = rel_path(&walked).join(c);
            match cur.symlink_metadata(c) {
                Ok(m) => check_dir_entry(&m, &rel)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    match cur.create_dir(c) {
                        Ok(()) => {}
                        // Made meanwhile by someone else: checked below like any other.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(FilesError::io(Op::CreateDir, rel, e)),
                    }
                }
                Err(e) => return Err(FilesError::io(Op::Stat, rel, e)),
            }
            // cap-std's open_dir follows an in-tree symlink, so check after opening that the
            // name still is a real directory and is the one that was opened.
            let next = cur
                .open_dir(c)
                .map_err(|e| open_error(Op::OpenDir, rel.clone(), e))?;
            let now = cur
                .symlink_metadata(c)
                .map_err(|e| FilesError::io(Op::Stat, rel.clone(), e))?;
            check_dir_entry(&now, &rel)?;
            let opened = next
                .dir_metadata()
                .map_err(|e| FilesError::io(Op::Stat, rel.clone(), e))?;
            if !same_file(&now, &opened) {
                return Err(FilesError::Symlink { path: rel });
            }
            cur = next;
            walked.push(on_disk);
        }
        Ok(Some((cur, walked)))
    }
}

/// A part file being received. Dropping it leaves the part on disk for a resume.
#[derive(Debug)]
pub struct PartFile {
    /// The directory the file lands in.
    dir: Dir,
    file: File,
    /// The part file's name in `dir`.
    part: String,
    /// The offered file name.
    name: String,
    /// The directories, relative to the destination.
    parents: Vec<String>,
    size: u64,
}

impl PartFile {
    /// Writes `data` at `offset`. Refused with [`FilesError::Overrun`] if it would go past
    /// the announced size; [`FilesError::DiskFull`] when the disk is full.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), FilesError> {
        let len = data.len() as u64;
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(FilesError::Overrun {
                path: self.rel_path(),
                offset,
                len,
                size: self.size,
            });
        }
        write_all_at(&self.file, data, offset)
            .map_err(|e| FilesError::io(Op::Write, self.part_path(), e))
    }

    /// Reads into `buf` from `offset`, until `buf` is full or the file ends; returns the
    /// bytes read (to check what an earlier run wrote).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FilesError> {
        read_full_at(&self.file, buf, offset)
            .map_err(|e| FilesError::io(Op::Read, self.part_path(), e))
    }

    /// A second handle on the part file, for reading (it stays valid after the file is
    /// finished).
    pub fn reader(&self) -> Result<std::fs::File, FilesError> {
        self.file
            .try_clone()
            .map(File::into_std)
            .map_err(|e| FilesError::io(Op::Read, self.part_path(), e))
    }

    /// Bytes currently in the part file (after a resume: what an earlier run wrote).
    pub fn len(&self) -> Result<u64, FilesError> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| FilesError::io(Op::Stat, self.part_path(), e))
    }

    /// Whether the part file holds no bytes yet.
    pub fn is_empty(&self) -> Result<bool, FilesError> {
        Ok(self.len()? == 0)
    }

    /// The announced size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Cuts (or extends with zeros) the part file to `len` bytes, e.g. back to the end of
    /// verified data on resume. Refused past the announced size.
    pub fn set_len(&self, len: u64) -> Result<(), FilesError> {
        if len > self.size {
            return Err(FilesError::Overrun {
                path: self.rel_path(),
                offset: 0,
                len,
                size: self.size,
            });
        }
        self.file
            .set_len(len)
            .map_err(|e| FilesError::io(Op::SetLen, self.part_path(), e))
    }

    /// Flushes the part file to disk (so verified progress survives a crash).
    pub fn sync(&self) -> Result<(), FilesError> {
        self.file
            .sync_all()
            .map_err(|e| FilesError::io(Op::Sync, self.part_path(), e))
    }

    /// Flushes the part file's data and its size to disk, not its other metadata (times):
    /// enough for verified progress to survive a crash, and lighter than [`PartFile::sync`].
    pub fn sync_data(&self) -> Result<(), FilesError> {
        self.file
            .sync_data()
            .map_err(|e| FilesError::io(Op::Sync, self.part_path(), e))
    }

    /// Starts writing `len` bytes at `offset` back to disk, without waiting: they are written
    /// and will not change. A hint, not a sync: nothing is promised to survive a crash.
    pub fn start_write_back(&self, offset: u64, len: u64) {
        writeback::start(&self.file, offset, len);
    }

    /// Waits until `len` bytes at `offset` have been written back (see
    /// [`PartFile::start_write_back`]), so that little is dirty when the file is synced.
    pub fn wait_write_back(&self, offset: u64, len: u64) {
        writeback::wait(&self.file, offset, len);
    }

    /// The offered path, relative to the destination.
    pub fn rel_path(&self) -> PathBuf {
        self.parents.iter().chain([&self.name]).collect()
    }

    /// The part file's path, relative to the destination.
    pub fn part_path(&self) -> PathBuf {
        self.parents.iter().chain([&self.part]).collect()
    }

    /// Completes the file: [`PartFile::link_final`], then removes the part name.
    pub fn finish(self) -> Result<FinalName, FilesError> {
        let name = self.link_final()?;
        self.remove_part_name()?;
        Ok(name)
    }

    /// Checks the file holds exactly the announced size, fsyncs it, gives it its final name
    /// without replacing anything (the offered name, else `name (1).ext`, `name (2).ext`, …,
    /// skipping names that match an existing entry without regard to case or Unicode
    /// normalisation) and fsyncs the
    /// directory. The part name stays (both names on one file) until [`PartFile::remove`],
    /// so a crash before the caller has recorded the file as done leaves a link that
    /// [`Dest::finished_part`] recognises. The caller has verified the content. On error
    /// the part stays (remove it with [`PartFile::remove`] if wanted).
    pub fn link_final(&self) -> Result<FinalName, FilesError> {
        let len = self.len()?;
        if len != self.size {
            return Err(FilesError::Incomplete {
                path: self.rel_path(),
                len,
                size: self.size,
            });
        }
        self.sync()?;
        let dir_path: PathBuf = if self.parents.is_empty() {
            PathBuf::from(".")
        } else {
            self.parents.iter().collect()
        };
        let mut taken = self
            .entry_keys()
            .map_err(|e| FilesError::io(Op::ReadDir, dir_path.clone(), e))?;
        let mut chosen = None;
        for n in 0..MAX_COPIES {
            let candidate = copy_name(&self.name, n);
            if !taken.insert(collision_key(&candidate)) {
                continue;
            }
            let cand_rel: PathBuf = self.parents.iter().chain([&candidate]).collect();
            match self.dir.hard_link(&self.part, &self.dir, &candidate) {
                Ok(()) => {
                    self.check_linked(&candidate, &cand_rel)?;
                    chosen = Some(candidate);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if no_hard_links(&e) => match self.dir.symlink_metadata(&candidate) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        self.dir
                            .rename(&self.part, &self.dir, &candidate)
                            .map_err(|e| FilesError::io(Op::Rename, cand_rel.clone(), e))?;
                        self.check_linked(&candidate, &cand_rel)?;
                        chosen = Some(candidate);
                        break;
                    }
                    Ok(_) => continue,
                    Err(e) => return Err(FilesError::io(Op::Stat, cand_rel, e)),
                },
                Err(e) => return Err(FilesError::io(Op::Rename, cand_rel, e)),
            }
        }
        let Some(chosen) = chosen else {
            return Err(FilesError::NoFreeName {
                path: self.rel_path(),
            });
        };
        // The handle may be an O_PATH descriptor, which cannot be fsynced: open the
        // directory itself.
        self.dir
            .open(".")
            .and_then(|d| d.sync_all())
            .map_err(|e| FilesError::io(Op::Sync, dir_path, e))?;
        let mut components = self.parents.clone();
        components.push(chosen);
        Ok(FinalName { components })
    }

    /// Deletes the part file (cancel or failure).
    pub fn remove(self) -> Result<(), FilesError> {
        self.remove_part_name()
    }

    fn remove_part_name(&self) -> Result<(), FilesError> {
        match self.dir.remove_file(&self.part) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(FilesError::io(Op::Remove, self.part_path(), e)),
        }
    }

    /// Names in the directory as [`collision_key`]s (NFC, lower-cased): a name already there
    /// in another case or another Unicode spelling is taken.
    fn entry_keys(&self) -> io::Result<HashSet<String>> {
        let mut names = HashSet::new();
        for entry in self.dir.entries()? {
            names.insert(collision_key(&entry?.file_name().to_string_lossy()));
        }
        Ok(names)
    }

    /// After linking: the final name must be our file. If the part name was swapped for
    /// something else meanwhile, undo the link and refuse.
    fn check_linked(&self, candidate: &str, cand_rel: &Path) -> Result<(), FilesError> {
        let linked = self
            .dir
            .symlink_metadata(candidate)
            .map_err(|e| FilesError::io(Op::Stat, cand_rel.to_owned(), e))?;
        let ours = self
            .file
            .metadata()
            .map_err(|e| FilesError::io(Op::Stat, self.part_path(), e))?;
        if linked.file_type().is_symlink() || !same_file(&linked, &ours) {
            let _ = self.dir.remove_file(candidate);
            return Err(FilesError::Symlink {
                path: self.part_path(),
            });
        }
        Ok(())
    }
}

/// Reopens an existing part file for a resume, refusing a symlink or anything but a
/// regular file, and checking that what was opened is what the name shows.
fn open_existing_part(dir: &Dir, part: &str, rel: &Path) -> Result<File, FilesError> {
    let before = dir
        .symlink_metadata(part)
        .map_err(|e| FilesError::io(Op::Stat, rel.to_owned(), e))?;
    check_file_entry(&before, rel)?;
    let file = dir
        .open_with(part, OpenOptions::new().read(true).write(true))
        .map_err(|e| open_error(Op::OpenPart, rel.to_owned(), e))?;
    let now = dir
        .symlink_metadata(part)
        .map_err(|e| FilesError::io(Op::Stat, rel.to_owned(), e))?;
    check_file_entry(&now, rel)?;
    let opened = file
        .metadata()
        .map_err(|e| FilesError::io(Op::Stat, rel.to_owned(), e))?;
    if !same_file(&now, &opened) {
        return Err(FilesError::Symlink {
            path: rel.to_owned(),
        });
    }
    Ok(file)
}

fn check_dir_entry(m: &Metadata, rel: &Path) -> Result<(), FilesError> {
    if m.file_type().is_symlink() {
        Err(FilesError::Symlink {
            path: rel.to_owned(),
        })
    } else if !m.is_dir() {
        Err(FilesError::NotADirectory {
            path: rel.to_owned(),
        })
    } else {
        Ok(())
    }
}

fn check_file_entry(m: &Metadata, rel: &Path) -> Result<(), FilesError> {
    if m.file_type().is_symlink() {
        Err(FilesError::Symlink {
            path: rel.to_owned(),
        })
    } else if !m.is_file() {
        Err(FilesError::NotAFile {
            path: rel.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// An open error; cap-std reports a path that would leave the tree (a symlink swapped in
/// after the check) as permission denied.
fn open_error(op: Op, rel: PathBuf, e: io::Error) -> FilesError {
    if e.kind() == io::ErrorKind::PermissionDenied && e.raw_os_error().is_none() {
        FilesError::Symlink { path: rel }
    } else {
        FilesError::io(op, rel, e)
    }
}

/// Whether `link` failed because the file system has no hard links (EPERM or unsupported).
fn no_hard_links(e: &io::Error) -> bool {
    const EPERM: i32 = 1;
    e.kind() == io::ErrorKind::Unsupported || (cfg!(unix) && e.raw_os_error() == Some(EPERM))
}

/// Whether two metadata are of the same file (device and inode).
#[cfg(unix)]
pub(crate) fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use cap_std::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
pub(crate) fn same_file(_a: &Metadata, _b: &Metadata) -> bool {
    true
}

#[cfg(unix)]
fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    cap_std::fs::FileExt::write_all_at(file, data, offset)
}

/// Reads until `buf` is full or the file ends at `offset + n`; returns `n`.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        #[cfg(unix)]
        let n = cap_std::fs::FileExt::read_at(file, &mut buf[done..], offset + done as u64);
        #[cfg(windows)]
        let n = cap_std::fs::FileExt::seek_read(file, &mut buf[done..], offset + done as u64);
        match n {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    while !data.is_empty() {
        match cap_std::fs::FileExt::seek_write(file, data, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                data = &data[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

mod finished;
mod landing;
mod names;
mod writeback;
pub use landing::Landing;
pub(crate) use names::other_spelling;
use names::{check_names, copy_name, part_name, rel_path};

#[cfg(all(test, unix))]
mod tests;
