//! Content by id on `p2p-share/1`: `GetManifest`, `GetChunk` and `Have`, served only from
//! the shares the asker may read as the request is served (a hash is not a capability), so
//! content it may not read answers exactly like content not held. Transfers offered to the
//! asker are not consulted: a transfer's receiver reads it over the bulk protocol.
//!
//! A content id is looked up in the readable shares' indexes ([`ShareIndex::find`]), with no
//! disk I/O, which is all a `Have` needs. The chunk values of a manifest are computed from
//! the file when first asked for (one read through the share's directory handle, following
//! no symlink, the file's size and modification time checked before and after, the values
//! checked to merge into the id), then kept in a small cache keyed by share, path, size and
//! modification time. Every chunk served is read again and checked against its value before
//! it is sent: a file that changed since it was hashed is answered `Busy` ("changed while
//! served"), never with bytes of another version.
//!
//! Content not yet whole here may be a download in progress
//! ([`crate::swarm::partial`]): it is served, its verified chunks only, when its destination
//! lies in a share the asker may read, and answers like content not held otherwise.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use proto::PeerId;
use proto::content::{ChunkCv, chunk_count, chunk_cv, chunk_range, content_id};
use proto::share::rules::{self, ShareState};
use proto::share::{
    Access, Bitfield, ContentId, ErrorKind, HaveQuery, MAX_CVS_PER_PAGE, ManifestPage, Request,
    Response, ShareName,
};
use proto::transfer::RelPath;

use super::Shares;
use super::index::{Kind, Located, ShareIndex};
use crate::fsx::{self, FileAt};
use crate::swarm::partial::{Partial, Partials};

/// Most files whose chunk values the cache keeps.
const CACHE_FILES: usize = 64;
/// Most chunk values the cache keeps in all: 16 MiB of them, for 512 GiB of files. A file
/// with more is served, its values not kept.
const CACHE_CVS: usize = 1 << 19;

/// Why content could not be served.
#[derive(Debug, thiserror::Error)]
pub(super) enum ContentError {
    /// The file is no longer the version the index hashed.
    #[error("content {0} changed while served; ask again")]
    Changed(String),
    /// A chunk index past the content's end.
    #[error("chunk {index} is past the end of content {id}, which has {chunks} chunks")]
    PastEnd {
        /// The content (short form).
        id: String,
        /// The index asked for.
        index: u64,
        /// The content's chunk count.
        chunks: u64,
    },
    /// The file could not be read.
    #[error("content {id} cannot be read now: {source}")]
    Read {
        /// The content (short form).
        id: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The blocking task did not finish.
    #[error("content {0} cannot be read now")]
    Stopped(String),
}

impl ContentError {
    fn response(&self) -> Response {
        let kind = match self {
            ContentError::PastEnd { .. } => ErrorKind::Invalid,
            _ => ErrorKind::Busy,
        };
        Response::error(kind, &self.to_string())
    }
}

/// Whether `request` names content by id (served here).
pub(super) fn by_content(request: &Request) -> bool {
    matches!(
        request,
        Request::GetManifest { .. } | Request::GetChunk { .. } | Request::Have(_)
    )
}

/// The shares one asker may read now, with their indexes: what content by id is served
/// from; and the download in progress of the content asked for, if one lands in one of them.
struct Readable {
    shares: Vec<(ShareName, Access, Arc<ShareIndex>)>,
    partial: Option<(ShareName, Arc<Partial>)>,
}

impl Readable {
    /// Where content `id` lies among these shares.
    fn locate(&self, id: &ContentId) -> Option<Found> {
        self.shares.iter().find_map(|(share, _, index)| {
            let at = index.find(id.as_bytes())?;
            Some(Found {
                share: share.clone(),
                index: index.clone(),
                at,
            })
        })
    }

    /// Looks for a download of `id` in progress whose destination one of these shares would
    /// list: a directory it serves, a name it does not leave out.
    fn find_partial(&mut self, partials: &Partials, id: &ContentId) {
        self.partial = partials.of(id).into_iter().find_map(|p| {
            let (share, _, _) = self
                .shares
                .iter()
                .find(|(_, _, index)| serves_file(index, p.dir(), p.name()))?;
            Some((share.clone(), p))
        });
    }

    /// The download in progress of the content asked for, readable by the asker.
    fn partial(&self) -> Option<&Arc<Partial>> {
        self.partial.as_ref().map(|(_, p)| p)
    }
}

impl ShareState for Readable {
    fn shares(&self) -> Vec<ShareName> {
        self.shares.iter().map(|(s, _, _)| s.clone()).collect()
    }

    fn access(&self, share: &ShareName, _peer: &PeerId) -> Option<Access> {
        self.shares
            .iter()
            .find(|(s, _, _)| s == share)
            .map(|(_, a, _)| *a)
    }

    fn shares_holding(&self, id: &ContentId) -> Vec<ShareName> {
        let mut out: Vec<ShareName> = self
            .shares
            .iter()
            .filter(|(_, _, index)| index.find(id.as_bytes()).is_some())
            .map(|(s, _, _)| s.clone())
            .collect();
        if let Some((share, p)) = &self.partial
            && p.id() == *id
        {
            out.push(share.clone());
        }
        out
    }
}

/// A content found in a readable share.
struct Found {
    share: ShareName,
    index: Arc<ShareIndex>,
    at: Located,
}

/// The chunk values of one file version.
struct Cached {
    share: ShareName,
    at: Located,
    id: ContentId,
    cvs: Arc<[ChunkCv]>,
}

/// The chunk values computed lately, bounded ([`CACHE_FILES`], [`CACHE_CVS`]), the most
/// recent last.
#[derive(Default)]
pub(super) struct CvCache(Mutex<VecDeque<Cached>>);

impl CvCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Cached>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, found: &Found, id: &ContentId) -> Option<Arc<[ChunkCv]>> {
        let g = self.lock();
        g.iter()
            .find(|c| c.id == *id && c.share == found.share && c.at == found.at)
            .map(|c| c.cvs.clone())
    }

    fn put(&self, found: &Found, id: ContentId, cvs: Arc<[ChunkCv]>) {
        if cvs.len() > CACHE_CVS {
            return;
        }
        let mut g = self.lock();
        g.retain(|c| !(c.share == found.share && c.at.path == found.at.path));
        g.push_back(Cached {
            share: found.share.clone(),
            at: found.at.clone(),
            id,
            cvs,
        });
        while g.len() > CACHE_FILES || g.iter().map(|c| c.cvs.len()).sum::<usize>() > CACHE_CVS {
            g.pop_front();
        }
    }

    fn forget(&self, found: &Found) {
        self.lock()
            .retain(|c| !(c.share == found.share && c.at.path == found.at.path));
    }
}

impl Shares {
    /// The shares `peer` may read now, with their indexes.
    fn readable(&self, peer: &PeerId) -> Readable {
        let live = self.lock();
        Readable {
            shares: live
                .names()
                .into_iter()
                .filter_map(|name| {
                    let access = live.access(&name, peer)?;
                    let index = live.get(&name)?.index.clone().ok()?;
                    Some((name, access, index))
                })
                .collect(),
            partial: None,
        }
    }

    /// The files of every share here whose content is `id`, as (index, path below its root
    /// on disk): where a download of `id` may take its chunks before asking any source.
    pub(super) fn local_copies(&self, id: &ContentId) -> Vec<(Arc<ShareIndex>, PathBuf)> {
        let live = self.lock();
        live.names()
            .into_iter()
            .filter_map(|name| {
                let index = live.get(&name)?.index.clone().ok()?;
                let at = index.find(id.as_bytes())?;
                Some((index, at.disk))
            })
            .collect()
    }

    /// The multi-source downloads in progress.
    pub(super) fn partials(&self) -> &Arc<Partials> {
        &self.partials
    }

    /// The answer to a request for content by id ([`by_content`]) from `peer`, with the
    /// rights as they are now.
    pub(super) async fn serve_content(&self, peer: PeerId, request: Request) -> Response {
        let mut readable = self.readable(&peer);
        if let Request::GetManifest { id, .. }
        | Request::GetChunk { id, .. }
        | Request::Have(HaveQuery::Chunks { id, .. }) = &request
            && readable.locate(id).is_none()
        {
            readable.find_partial(&self.partials, id);
        }
        if let Err(e) = rules::check(&readable, &peer, &request, None) {
            return Response::Error(e);
        }
        match request {
            Request::Have(HaveQuery::Ids(ids)) => {
                Response::Have(rules::have_ids(&readable, &peer, &ids, |_| true))
            }
            Request::Have(HaveQuery::Chunks { id, first, count }) => {
                if let Some(found) = readable.locate(&id) {
                    return Response::Have(held_chunks(found.at.size, first, count));
                }
                match readable.partial() {
                    Some(p) => Response::Have(p.have(first, count)),
                    None => Response::Error(rules::content_not_found(&id)),
                }
            }
            Request::GetManifest { id, first } => {
                let Some(found) = readable.locate(&id) else {
                    return match readable.partial() {
                        Some(p) => manifest_page(id, p.list().len(), p.list().cvs(), first)
                            .map_or_else(|e| e.response(), Response::Manifest),
                        None => Response::Error(rules::content_not_found(&id)),
                    };
                };
                match self.chunk_values(&found, id).await {
                    Ok(cvs) => manifest_page(id, found.at.size, &cvs, first)
                        .map_or_else(|e| e.response(), Response::Manifest),
                    Err(e) => e.response(),
                }
            }
            Request::GetChunk { id, index } => {
                let Some(found) = readable.locate(&id) else {
                    return match readable.partial() {
                        Some(p) => partial_chunk(p.clone(), index).await,
                        None => Response::Error(rules::content_not_found(&id)),
                    };
                };
                match self.chunk(&found, id, index).await {
                    Ok(data) => Response::Chunk { id, index, data },
                    Err(e) => e.response(),
                }
            }
            _ => Response::error(ErrorKind::Invalid, "not a request for content"),
        }
    }

    /// The chunk values of the content `id` at `found`: cached, or read from the file.
    async fn chunk_values(
        &self,
        found: &Found,
        id: ContentId,
    ) -> Result<Arc<[ChunkCv]>, ContentError> {
        if let Some(cvs) = self.content.get(found, &id) {
            return Ok(cvs);
        }
        let (index, at) = (found.index.clone(), found.at.clone());
        let cvs: Arc<[ChunkCv]> =
            tokio::task::spawn_blocking(move || compute_values(&index, &at, &id))
                .await
                .map_err(|_| ContentError::Stopped(id.short()))??
                .into();
        self.content.put(found, id, cvs.clone());
        Ok(cvs)
    }

    /// Chunk `index` of the content `id` at `found`, read and checked against its value.
    async fn chunk(&self, found: &Found, id: ContentId, index: u64) -> Result<Bytes, ContentError> {
        let chunks = chunk_count(found.at.size);
        if index >= chunks {
            return Err(ContentError::PastEnd {
                id: id.short(),
                index,
                chunks,
            });
        }
        let cvs = self.chunk_values(found, id).await?;
        let (ix, at) = (found.index.clone(), found.at.clone());
        let read = tokio::task::spawn_blocking(move || read_chunk(&ix, &at, &id, &cvs, index))
            .await
            .map_err(|_| ContentError::Stopped(id.short()))?;
        if let Err(ContentError::Changed(_)) = &read {
            self.content.forget(found);
        }
        read
    }
}

/// Whether `index` serves the directory `dir` (a canonical path, as share roots are): its
/// root, or a directory below it that the index lists (not left out by a `.p2pignore`).
fn serves_dir(index: &ShareIndex, dir: &Path) -> bool {
    let Ok(rel) = dir.strip_prefix(index.root()) else {
        return false;
    };
    if rel.as_os_str().is_empty() {
        return true;
    }
    let Some(rel) = rel.to_str().and_then(|r| RelPath::new(r).ok()) else {
        return false;
    };
    matches!(index.stat(Some(&rel)), Ok(e) if e.kind == Kind::Dir)
}

/// Whether `index` would list a file `name` in the directory `dir` (canonical): a directory
/// it serves, a name that can be served and that its `.p2pignore` files do not leave out.
fn serves_file(index: &ShareIndex, dir: &Path, name: &str) -> bool {
    serves_dir(index, dir) && RelPath::new(name).is_ok() && !index.ignores_file(dir, name)
}

/// The answer to `GetChunk` of chunk `index` of a download in progress: the chunk if it is
/// verified, read back and verified again.
async fn partial_chunk(p: Arc<Partial>, index: u64) -> Response {
    let id = p.id();
    let chunks = p.list().cvs().len() as u64;
    if index >= chunks {
        return ContentError::PastEnd {
            id: id.short(),
            index,
            chunks,
        }
        .response();
    }
    match tokio::task::spawn_blocking(move || p.read_chunk(index)).await {
        Ok(Some(data)) => Response::Chunk { id, index, data },
        Ok(None) => Response::error(
            ErrorKind::NotFound,
            &format!("chunk {index} of content {} is not here yet", id.short()),
        ),
        Err(_) => ContentError::Stopped(id.short()).response(),
    }
}

/// Which of chunks `first .. first + count` a content of `size` bytes has: all of its own.
/// `count` is at most `MAX_HAVE_BITS` (checked by the rules).
fn held_chunks(size: u64, first: u64, count: u32) -> Bitfield {
    let chunks = chunk_count(size);
    let mut bits = Bitfield::new(count).unwrap_or_default();
    let end = first.saturating_add(u64::from(count)).min(chunks);
    for i in first..end {
        // `i - first` < count, a u32.
        bits.set(u32::try_from(i - first).unwrap_or(u32::MAX));
    }
    bits
}

/// The page of the manifest of content `id` (`size` bytes, values `cvs`) from chunk `first`.
fn manifest_page(
    id: ContentId,
    size: u64,
    cvs: &[ChunkCv],
    first: u64,
) -> Result<ManifestPage, ContentError> {
    let chunks = cvs.len() as u64;
    if first > chunks || (first == chunks && chunks > 0) {
        return Err(ContentError::PastEnd {
            id: id.short(),
            index: first,
            chunks,
        });
    }
    // `first <= chunks`, the length of a slice.
    let start = usize::try_from(first).unwrap_or(cvs.len());
    let end = cvs.len().min(start.saturating_add(MAX_CVS_PER_PAGE));
    Ok(ManifestPage {
        id,
        len: size,
        first,
        cvs: cvs[start..end].to_vec(),
    })
}

/// The file's size and modification time now, which must be what the index hashed.
fn check_version(file: &std::fs::File, at: &Located, id: &ContentId) -> Result<(), ContentError> {
    let meta = file.metadata().map_err(|source| ContentError::Read {
        id: id.short(),
        source,
    })?;
    if meta.len() == at.size && meta.modified().ok() == Some(at.mtime) {
        Ok(())
    } else {
        Err(ContentError::Changed(id.short()))
    }
}

/// Opens the file at `at` below the share's root, following no symlink; a file gone or
/// replaced (by a symlink, a directory, a special file) is a change.
fn open(index: &ShareIndex, at: &Located, id: &ContentId) -> Result<std::fs::File, ContentError> {
    let file = index.open_file(&at.disk).map_err(|e| {
        let gone = e.kind() == io::ErrorKind::NotFound
            || e.kind() == io::ErrorKind::InvalidData
            || fsx::is_other_kind(&e);
        if gone {
            ContentError::Changed(id.short())
        } else {
            ContentError::Read {
                id: id.short(),
                source: e,
            }
        }
    })?;
    check_version(&file, at, id)?;
    Ok(file)
}

/// Reads `len` bytes at `offset`; a short file is a change.
fn read_at(
    file: &std::fs::File,
    buf: &mut [u8],
    offset: u64,
    id: &ContentId,
) -> Result<(), ContentError> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ContentError::Changed(id.short())
        } else {
            ContentError::Read {
                id: id.short(),
                source: e,
            }
        }
    })
}

/// The chunk values of the file at `at`, read whole; they must merge into `id` and the file
/// must not change while read.
fn compute_values(
    index: &ShareIndex,
    at: &Located,
    id: &ContentId,
) -> Result<Vec<ChunkCv>, ContentError> {
    let file = open(index, at, id)?;
    let chunks = chunk_count(at.size);
    let mut cvs = Vec::with_capacity(usize::try_from(chunks).unwrap_or(0));
    let mut buf = vec![0u8; proto::content::CHUNK as usize];
    for i in 0..chunks {
        let Some((offset, len)) = chunk_range(at.size, i) else {
            break;
        };
        // A chunk is at most CHUNK bytes.
        let bytes = &mut buf[..usize::try_from(len).unwrap_or(0)];
        read_at(&file, bytes, offset, id)?;
        cvs.push(chunk_cv(i, bytes, chunks == 1).map_err(|_| ContentError::Changed(id.short()))?);
    }
    check_version(&file, at, id)?;
    match content_id(&cvs, at.size) {
        Ok(got) if got == *id => Ok(cvs),
        _ => Err(ContentError::Changed(id.short())),
    }
}

/// Chunk `index` of the file at `at`, checked against `cvs[index]`.
fn read_chunk(
    ix: &ShareIndex,
    at: &Located,
    id: &ContentId,
    cvs: &[ChunkCv],
    index: u64,
) -> Result<Bytes, ContentError> {
    let past = || ContentError::PastEnd {
        id: id.short(),
        index,
        chunks: cvs.len() as u64,
    };
    let (offset, len) = chunk_range(at.size, index).ok_or_else(past)?;
    let listed = usize::try_from(index)
        .ok()
        .and_then(|i| cvs.get(i))
        .ok_or_else(past)?;
    let file = open(ix, at, id)?;
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    read_at(&file, &mut buf, offset, id)?;
    match chunk_cv(index, &buf, cvs.len() == 1) {
        Ok(cv) if cv == *listed => Ok(Bytes::from(buf)),
        _ => Err(ContentError::Changed(id.short())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::index::IndexOptions;
    use proto::content::{CHUNK, ChunkList};
    use proto::transfer::RelPath;
    use std::time::Duration;

    /// An index of `dir` with `name` hashed, and where its content lies.
    async fn located(dir: &std::path::Path, name: &str) -> (ShareIndex, Located, ContentId) {
        let options = IndexOptions {
            watch: false,
            hash_in_background: false,
            ..IndexOptions::default()
        };
        let index = ShareIndex::open(dir, options).unwrap();
        let wait = Duration::from_secs(60);
        tokio::time::timeout(wait, index.ready())
            .await
            .unwrap()
            .unwrap();
        let path = RelPath::new(name).unwrap();
        let hash = tokio::time::timeout(wait, index.hash(&path)).await.unwrap();
        let id = ContentId(hash.unwrap());
        let at = index.find(id.as_bytes()).unwrap();
        (index, at, id)
    }

    #[tokio::test]
    async fn chunks_are_served_from_the_version_hashed_only() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * CHUNK + 10).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &data).unwrap();
        let (index, at, id) = located(dir.path(), "big").await;
        let cvs = compute_values(&index, &at, &id).unwrap();
        let list = ChunkList::new(id, data.len() as u64, cvs.clone()).unwrap();
        for i in 0..4 {
            let chunk = read_chunk(&index, &at, &id, &cvs, i).unwrap();
            list.verify_chunk(i, &chunk).unwrap();
        }
        assert!(matches!(
            read_chunk(&index, &at, &id, &cvs, 4),
            Err(ContentError::PastEnd { .. })
        ));
        // Rewritten in place with other bytes of the same size, its time put back: the
        // chunk no longer matches its value.
        let mtime = std::fs::metadata(dir.path().join("big"))
            .unwrap()
            .modified()
            .unwrap();
        let mut other = data.clone();
        other[CHUNK as usize + 3] ^= 0xff;
        std::fs::write(dir.path().join("big"), &other).unwrap();
        let f = std::fs::File::options()
            .write(true)
            .open(dir.path().join("big"))
            .unwrap();
        f.set_modified(mtime).unwrap();
        assert!(read_chunk(&index, &at, &id, &cvs, 0).is_ok());
        assert!(matches!(
            read_chunk(&index, &at, &id, &cvs, 1),
            Err(ContentError::Changed(_))
        ));
        assert!(matches!(
            compute_values(&index, &at, &id),
            Err(ContentError::Changed(_))
        ));
        // Replaced by a symlink to a file outside the share: never opened.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), &data).unwrap();
        std::fs::remove_file(dir.path().join("big")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("big")).unwrap();
        assert!(matches!(
            read_chunk(&index, &at, &id, &cvs, 0),
            Err(ContentError::Changed(_))
        ));
    }

    #[tokio::test]
    async fn a_download_is_served_only_in_a_directory_the_share_serves() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::create_dir(root.join("hidden")).unwrap();
        std::fs::write(root.join(".p2pignore"), "hidden/\n").unwrap();
        std::fs::write(root.join("f"), b"x").unwrap();
        let (index, _, _) = located(&root, "f").await;
        assert!(serves_dir(&index, &root));
        assert!(serves_dir(&index, &root.join("sub/deeper")));
        assert!(!serves_dir(&index, &root.join("hidden")), "left out");
        assert!(!serves_dir(&index, &root.join("f")), "a file");
        assert!(!serves_dir(&index, &root.join("missing")));
        assert!(!serves_dir(&index, root.parent().unwrap()), "outside");
    }

    #[tokio::test]
    async fn a_download_is_served_only_under_a_name_the_share_lists() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("sub/keep")).unwrap();
        std::fs::write(root.join(".p2pignore"), "*.iso\nsub/*.tmp\n").unwrap();
        std::fs::write(root.join("sub/keep/.p2pignore"), "!*.iso\n").unwrap();
        std::fs::write(root.join("f"), b"x").unwrap();
        let (index, _, _) = located(&root, "f").await;
        assert!(serves_file(&index, &root, "debian.txt"));
        assert!(
            !serves_file(&index, &root, "debian.iso"),
            "ignored at the root"
        );
        assert!(
            !serves_file(&index, &root.join("sub"), "debian.iso"),
            "ignored above"
        );
        assert!(
            !serves_file(&index, &root.join("sub"), "a.tmp"),
            "a rule with a path"
        );
        assert!(serves_file(&index, &root, "a.tmp"));
        assert!(
            serves_file(&index, &root.join("sub/keep"), "debian.iso"),
            "let in deeper"
        );
        assert!(!serves_file(&index, &root, ".p2pignore"));
        assert!(!serves_file(&index, &root.join("missing"), "debian.txt"));
    }

    #[tokio::test]
    async fn the_cache_keeps_a_bounded_number_of_file_versions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let (index, at, id) = located(dir.path(), "f").await;
        let index = Arc::new(index);
        let found = |n: u64| Found {
            share: ShareName::new("s").unwrap(),
            index: index.clone(),
            at: Located {
                path: RelPath::new(&format!("f{n}")).unwrap(),
                ..at.clone()
            },
        };
        let cache = CvCache::default();
        let first = found(0);
        cache.put(&first, id, vec![ChunkCv([1; 32])].into());
        assert!(cache.get(&first, &id).is_some());
        assert!(cache.get(&first, &ContentId([9; 32])).is_none());
        for n in 1..=CACHE_FILES as u64 {
            cache.put(&found(n), id, vec![ChunkCv([1; 32])].into());
        }
        assert_eq!(cache.lock().len(), CACHE_FILES);
        assert!(cache.get(&first, &id).is_none(), "the oldest went first");
        let big = found(1000);
        cache.put(&big, id, vec![ChunkCv([2; 32]); CACHE_CVS + 1].into());
        assert!(cache.get(&big, &id).is_none(), "too many values to keep");
        cache.forget(&found(CACHE_FILES as u64));
        assert_eq!(cache.lock().len(), CACHE_FILES - 1);
    }

    #[test]
    fn have_chunks_sets_the_content_own_chunks_only() {
        let bits = held_chunks(3 * CHUNK + 1, 2, 5);
        let got: Vec<bool> = (0..5).map(|i| bits.get(i)).collect();
        assert_eq!(got, [true, true, false, false, false]);
        assert_eq!(held_chunks(0, 0, 3).count_ones(), 0);
        assert_eq!(held_chunks(CHUNK, u64::MAX - 1, 1).count_ones(), 0);
    }

    #[test]
    fn manifest_pages_stay_inside_the_content() {
        let data = vec![7u8; (2 * CHUNK + 5) as usize];
        let list = ChunkList::of(&data);
        let size = data.len() as u64;
        let page = manifest_page(list.id(), size, list.cvs(), 0).unwrap();
        assert!(page.fits());
        assert_eq!(page.cvs, list.cvs());
        let page = manifest_page(list.id(), size, list.cvs(), 2).unwrap();
        assert_eq!((page.first, page.cvs.len()), (2, 1));
        assert!(manifest_page(list.id(), size, list.cvs(), 3).is_err());
        assert!(manifest_page(list.id(), size, list.cvs(), u64::MAX).is_err());
        let empty = ChunkList::of(b"");
        assert!(manifest_page(empty.id(), 0, &[], 0).unwrap().fits());
        assert!(manifest_page(empty.id(), 0, &[], 1).is_err());
    }
}
