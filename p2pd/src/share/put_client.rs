//! Writing into another peer's share (`put`): over one share link, a `Stat` of the target
//! (as `cp -r` places things: an existing directory receives the item inside it, a path that
//! does not exist names it), then for a directory a `MakeDir` per directory missing there,
//! and for each file a `Stat` of its destination (the content id seen there, or absent),
//! the local file hashed, and `Put` with that id as `replaces` followed by its chunks,
//! pipelined a few at a time and read through a handle that follows no symlink. With
//! `force`, a `Conflict` makes it look again and put over what it sees, a few times at most.
//! Progress goes out as `put_progress` events.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::api::{Event, PutDone, PutProgress};
use proto::share::{
    Access, ContentId, Entry, EntryKind, ErrorKind, Request, RequestFrame, Response, ResponseFrame,
    ShareName,
};
use proto::transfer::{RelPath, chunk_count, chunk_range};
use proto::{PeerId, PeerName};
use tracing::info;

use super::remote::{Remote, parse_path};
use super::{Shares, SharesError, put_fs, share_name};

/// Chunks sent ahead of the owner's answers.
const WINDOW: usize = 4;

/// How long one answer may take (the last chunk's `Put` answer comes after the owner has
/// hashed the file).
const ANSWER_WAIT: Duration = Duration::from_secs(120);

/// How long a `Stat` may keep saying the owner has not hashed a file yet.
const HASH_WAIT: Duration = Duration::from_secs(120);

/// Tries of one file under `force`.
const FORCE_TRIES: u32 = 5;

/// Least time between two progress events.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What is put: the local entries below the source, in order (each directory before what
/// it holds).
#[derive(Debug, Default)]
struct Plan {
    /// Directories, relative to the source (`""`: the source itself).
    dirs: Vec<String>,
    /// Files, relative to the source (`""`: the source is a file), with their sizes.
    files: Vec<(String, u64)>,
    /// Entries left out, with why.
    skipped: Vec<String>,
}

impl Plan {
    fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, n)| n).sum()
    }
}

/// Lists `src`: a file, or a directory walked with no symlink followed.
fn plan(src: &Path) -> Result<Plan, SharesError> {
    let err = |source| SharesError::Source {
        path: src.to_owned(),
        source,
    };
    let meta = std::fs::symlink_metadata(src).map_err(err)?;
    let mut plan = Plan::default();
    if meta.is_file() {
        plan.files.push((String::new(), meta.len()));
        return Ok(plan);
    }
    if !meta.is_dir() {
        return Err(err(std::io::Error::other(
            "not a regular file or a directory",
        )));
    }
    plan.dirs.push(String::new());
    let mut todo = vec![String::new()];
    while let Some(rel) = todo.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(src.join(&rel))
            .map_err(err)?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let shown = Path::new(&rel).join(e.file_name()).display().to_string();
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                plan.skipped.push(format!("{shown}: the name is not UTF-8"));
                continue;
            };
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if let Err(e) = RelPath::new(&child) {
                plan.skipped.push(format!("{shown}: {e}"));
                continue;
            }
            match e.metadata() {
                Ok(m) if m.is_dir() => subdirs.push(child),
                Ok(m) if m.is_file() => plan.files.push((child, m.len())),
                Ok(m) if m.is_symlink() => plan
                    .skipped
                    .push(format!("{shown}: a symlink (not followed)")),
                Ok(_) => plan
                    .skipped
                    .push(format!("{shown}: not a regular file or a directory")),
                Err(e) => plan.skipped.push(format!("{shown}: {e}")),
            }
        }
        plan.dirs.extend(subdirs.iter().cloned());
        todo.extend(subdirs.into_iter().rev());
    }
    Ok(plan)
}

/// `base/rel` as a share path (`None`: the root).
fn below(base: Option<&RelPath>, rel: &str) -> Result<Option<RelPath>, SharesError> {
    let joined = match (base, rel) {
        (None, r) => r.to_owned(),
        (Some(b), "") => b.as_str().to_owned(),
        (Some(b), r) => format!("{b}/{r}"),
    };
    parse_path(Some(&joined))
}

/// Opens a local file without following a symlink; with its size now.
fn open_local(path: &Path) -> Result<(File, u64), SharesError> {
    let err = |source| SharesError::Source {
        path: path.to_owned(),
        source,
    };
    let file = crate::fsx::open_read_path(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(err(std::io::Error::other("not a regular file")));
    }
    Ok((file, meta.len()))
}

/// The bytes acknowledged so far, published as events now and then.
struct Progress {
    event: PutProgress,
    last: Option<Instant>,
}

/// One put in progress, as the writing side.
struct Writer<'a> {
    shares: &'a Shares,
    link: Remote,
    share: ShareName,
    force: bool,
    progress: Progress,
}

impl Shares {
    /// Puts the local file or directory `src` (absolute) into `share` on `peer` at `path`.
    pub async fn put(
        &self,
        peer: PeerId,
        share: &str,
        path: Option<&str>,
        src: &str,
        force: bool,
    ) -> Result<PutDone, SharesError> {
        let share = share_name(share)?;
        let target = parse_path(path)?;
        let src_path = PathBuf::from(src);
        if !src_path.is_absolute() {
            return Err(SharesError::Source {
                path: src_path,
                source: std::io::Error::other("the path must be absolute"),
            });
        }
        let p = src_path.clone();
        let plan = tokio::task::spawn_blocking(move || plan(&p))
            .await
            .map_err(|e| SharesError::Source {
                path: src_path.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
        let link = self.connect(peer).await?;
        let progress = Progress {
            event: PutProgress {
                peer: link.peer.clone(),
                share: share.clone(),
                src: src.to_owned(),
                done_bytes: 0,
                total_bytes: plan.bytes(),
            },
            last: None,
        };
        let mut w = Writer {
            shares: self,
            link,
            share: share.clone(),
            force,
            progress,
        };
        let r = w.run(&src_path, target, plan).await;
        let _ = w.link.conn.shutdown().await;
        let name = w.link.peer.clone();
        match &r {
            Ok(done) => {
                info!(target: svc::logging::ACTIVITY, op = "put-out", peer = %name, share = %share, path = %done.path, files = done.files, bytes = done.bytes, "put done");
            }
            Err(e) => {
                let shown = path.unwrap_or("");
                info!(target: svc::logging::ACTIVITY, op = "put-out-failed", peer = %name, share = %share, path = %shown, error = %e, "put failed");
            }
        }
        r
    }
}

impl Writer<'_> {
    async fn run(
        &mut self,
        src: &Path,
        target: Option<RelPath>,
        plan: Plan,
    ) -> Result<PutDone, SharesError> {
        let is_dir = !plan.dirs.is_empty();
        // Where the source lands, as `cp -r` places it.
        let base = match self.stat(target.as_ref()).await? {
            Some(e) if e.kind == EntryKind::Dir => {
                let name = src.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                    SharesError::Source {
                        path: src.to_owned(),
                        source: std::io::Error::other("the name is not UTF-8"),
                    }
                })?;
                below(target.as_ref(), name)?
            }
            Some(_) if is_dir => {
                return Err(self.remote(&format!(
                    "{} is a file; a directory cannot be put over it",
                    self.shown(target.as_ref())
                )));
            }
            _ => target,
        };
        let mut done = PutDone {
            peer: self.link.peer.clone(),
            share: self.share.clone(),
            path: base.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            files: 0,
            dirs: 0,
            bytes: 0,
            skipped: plan.skipped.clone(),
        };
        for rel in &plan.dirs {
            let dir = below(base.as_ref(), rel)?;
            if self.make_dir(dir.as_ref()).await? {
                done.dirs += 1;
            }
        }
        for (rel, _) in &plan.files {
            let dest = below(base.as_ref(), rel)?
                .ok_or_else(|| self.remote("a file cannot be put as the share's root directory"))?;
            let local = if rel.is_empty() {
                src.to_owned()
            } else {
                src.join(rel)
            };
            done.bytes += self.put_file(&local, &dest).await?;
            done.files += 1;
        }
        self.publish(true);
        Ok(done)
    }

    fn shown(&self, path: Option<&RelPath>) -> String {
        match path {
            Some(p) => format!("{}/{p}", self.share),
            None => self.share.to_string(),
        }
    }

    fn remote(&self, message: &str) -> SharesError {
        SharesError::Remote {
            peer: self.link.peer.clone(),
            message: message.to_owned(),
        }
    }

    /// The error an answer means, for `path`.
    fn refused(&self, path: Option<&RelPath>, r: Response) -> SharesError {
        match r {
            Response::Error(e) if e.kind == ErrorKind::Denied => SharesError::Denied {
                share: self.share.clone(),
                peer: self.link.peer.clone(),
                right: Access::Write,
            },
            Response::Error(e) if e.kind == ErrorKind::Conflict => SharesError::Conflict {
                path: self.shown(path),
                peer: self.link.peer.clone(),
            },
            other => self.link.refused(Some(&self.share), other),
        }
    }

    /// The entry at `path`; `None` if there is none.
    async fn stat(&mut self, path: Option<&RelPath>) -> Result<Option<Entry>, SharesError> {
        let ask = Request::Stat {
            share: self.share.clone(),
            path: path.cloned(),
        };
        match self.link.ask(ask).await? {
            Response::Stat(e) => Ok(Some(e)),
            Response::Error(e) if e.kind == ErrorKind::NotFound => Ok(None),
            other => Err(self.refused(path, other)),
        }
    }

    /// The content id at `path` now (`None`: absent), once the owner has hashed it.
    async fn seen(&mut self, path: &RelPath) -> Result<Option<ContentId>, SharesError> {
        let since = Instant::now();
        loop {
            match self.stat(Some(path)).await? {
                None => return Ok(None),
                Some(e) if e.kind == EntryKind::Dir => {
                    return Err(self.remote(&format!(
                        "{} is a directory; a file cannot be put over it",
                        self.shown(Some(path))
                    )));
                }
                Some(Entry { id: Some(id), .. }) => return Ok(Some(id)),
                Some(_) if since.elapsed() > HASH_WAIT => {
                    return Err(self.remote(&format!(
                        "{} is not hashed yet; try again shortly",
                        self.shown(Some(path))
                    )));
                }
                // The owner hashes it now that it was asked for: look again shortly.
                Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Makes the directory at `path` unless it exists; whether it made it.
    async fn make_dir(&mut self, path: Option<&RelPath>) -> Result<bool, SharesError> {
        let Some(path) = path else { return Ok(false) };
        match self.stat(Some(path)).await? {
            Some(e) if e.kind == EntryKind::Dir => return Ok(false),
            Some(_) => {
                return Err(self.remote(&format!(
                    "{} is a file; a directory cannot be put over it",
                    self.shown(Some(path))
                )));
            }
            None => {}
        }
        let ask = Request::MakeDir {
            share: self.share.clone(),
            path: path.clone(),
        };
        match self.link.ask(ask).await? {
            Response::Done => Ok(true),
            // Made meanwhile by someone else: there it is.
            Response::Error(e) if e.kind == ErrorKind::Conflict => Ok(false),
            Response::Error(e)
                if e.kind == ErrorKind::Invalid && e.message.as_str().contains("not supported") =>
            {
                Err(self.remote(&format!(
                    "cannot make the directory {}: this p2pd does not serve MakeDir yet ({})",
                    self.shown(Some(path)),
                    e.message
                )))
            }
            other => Err(self.refused(Some(path), other)),
        }
    }

    /// Puts the local file `local` at `dest`; its size.
    async fn put_file(&mut self, local: &Path, dest: &RelPath) -> Result<u64, SharesError> {
        let l = local.to_owned();
        let (file, size, id) = tokio::task::spawn_blocking(move || {
            let (file, size) = open_local(&l)?;
            let id = put_fs::content_of(&file, size).map_err(|source| SharesError::Source {
                path: l.clone(),
                source,
            })?;
            Ok::<_, SharesError>((Arc::new(file), size, id))
        })
        .await
        .map_err(|e| SharesError::Source {
            path: local.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })??;
        let start = self.progress.event.done_bytes;
        let mut tries = 0;
        loop {
            tries += 1;
            let replaces = self.seen(dest).await?;
            self.progress.event.done_bytes = start;
            match self
                .send_file((&file, local), size, id, dest, replaces)
                .await?
            {
                Response::Done => return Ok(size),
                Response::Error(e)
                    if e.kind == ErrorKind::Conflict && self.force && tries < FORCE_TRIES => {}
                other => return Err(self.refused(Some(dest), other)),
            }
        }
    }

    /// Sends `Put` and the chunks; the `Put`'s answer.
    async fn send_file(
        &mut self,
        (file, local): (&Arc<File>, &Path),
        size: u64,
        id: ContentId,
        dest: &RelPath,
        replaces: Option<ContentId>,
    ) -> Result<Response, SharesError> {
        let put = self.link.take_id();
        let request = Request::Put {
            share: self.share.clone(),
            path: dest.clone(),
            size,
            id,
            replaces,
        };
        self.send(RequestFrame { id: put, request }).await?;
        let chunks = chunk_count(size);
        let mut next = 0u64;
        let mut waiting: HashMap<u64, u64> = HashMap::new();
        let mut answer = None;
        loop {
            while answer.is_none() && next < chunks && waiting.len() < WINDOW {
                let (offset, len) = chunk_range(size, next).unwrap_or((0, 0));
                let data = read_chunk(file.clone(), offset, len)
                    .await
                    .map_err(|source| SharesError::Source {
                        path: local.to_owned(),
                        source,
                    })?;
                let chunk = self.link.take_id();
                let request = Request::PutChunk {
                    put,
                    index: next,
                    data,
                };
                self.send(RequestFrame { id: chunk, request }).await?;
                waiting.insert(chunk.0, len);
                next += 1;
            }
            if answer.is_some() && waiting.is_empty() {
                break;
            }
            let f = self.read().await?;
            if f.id == put {
                answer = Some(f.response);
            } else if let Some(len) = waiting.remove(&f.id.0)
                && f.response == Response::Done
            {
                self.progress.event.done_bytes += len;
                self.publish(false);
            }
        }
        Ok(answer.unwrap_or(Response::Done))
    }

    async fn send(&mut self, frame: RequestFrame) -> Result<(), SharesError> {
        let peer = self.link.peer.clone();
        self.link
            .conn
            .send(&frame)
            .await
            .map_err(|e| link_error(&peer, e))
    }

    async fn read(&mut self) -> Result<ResponseFrame, SharesError> {
        let peer = self.link.peer.clone();
        match tokio::time::timeout(ANSWER_WAIT, self.link.conn.read::<ResponseFrame>()).await {
            Ok(Ok(Some(f))) => Ok(f),
            Ok(Ok(None)) => Err(link_error(&peer, "the share link was closed")),
            Ok(Err(e)) => Err(link_error(&peer, e)),
            Err(_) => Err(link_error(
                &peer,
                format!("no answer within {} s", ANSWER_WAIT.as_secs()),
            )),
        }
    }

    /// Publishes the progress, at most every [`PROGRESS_EVERY`] unless `last`.
    fn publish(&mut self, last: bool) {
        let now = Instant::now();
        if !last && self.progress.last.is_some_and(|t| now - t < PROGRESS_EVERY) {
            return;
        }
        self.progress.last = Some(now);
        self.shares.node.publish([Event::PutProgress {
            put: self.progress.event.clone(),
        }]);
    }
}

fn link_error(peer: &PeerName, e: impl std::fmt::Display) -> SharesError {
    SharesError::Link {
        peer: peer.clone(),
        detail: e.to_string(),
    }
}

/// Reads `len` bytes at `offset` of `file`, off the runtime's workers.
async fn read_chunk(file: Arc<File>, offset: u64, len: u64) -> std::io::Result<bytes::Bytes> {
    tokio::task::spawn_blocking(move || {
        use crate::fsx::FileAt;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        file.read_exact_at(&mut buf, offset).map(|()| buf)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r)
    .map(bytes::Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_planned_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("top");
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("a.txt"), b"aa").unwrap();
        std::fs::write(root.join("b/c/d.txt"), b"ddd").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        let p = plan(&root).unwrap();
        assert_eq!(p.dirs, ["", "b", "b/c"]);
        assert_eq!(
            p.files,
            [("a.txt".to_owned(), 2), ("b/c/d.txt".to_owned(), 3)]
        );
        assert_eq!(p.skipped, ["link: a symlink (not followed)"]);
        assert_eq!(p.bytes(), 5);
        let one = plan(&root.join("a.txt")).unwrap();
        assert_eq!(one.files, [(String::new(), 2)]);
        assert!(one.dirs.is_empty());
    }

    #[test]
    fn paths_below_a_base() {
        let b = RelPath::new("x/y").unwrap();
        assert_eq!(below(Some(&b), "").unwrap(), Some(b.clone()));
        assert_eq!(below(Some(&b), "z").unwrap().unwrap().as_str(), "x/y/z");
        assert_eq!(below(None, "z").unwrap().unwrap().as_str(), "z");
        assert_eq!(below(None, "").unwrap(), None);
    }
}
