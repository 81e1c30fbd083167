//! Results of the share methods of the control API (`share_add`, `share_ls`, `grant`,
//! `revoke`, `ls`, `versions`, `restore`, `rm`, `mkdir`, `mv`, `put`) and the progress events
//! of a put.

use serde::{Deserialize, Serialize};

use crate::identity::PeerId;
use crate::name::PeerName;
use crate::share::{Access, EntryKind, ShareInfo, ShareName};

/// Most entries one `ls` returns; a longer recursive listing stops there and says so
/// ([`Listing::truncated`]).
pub const MAX_LISTED: usize = 100_000;

/// One peer's right on one of our shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    /// The peer's name, as the peer table holds it for the key (its short id if none).
    pub peer: String,
    /// The peer's key.
    pub id: PeerId,
    /// Its right.
    pub right: Access,
}

/// One of this daemon's shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalShare {
    /// The share's name.
    pub name: ShareName,
    /// The directory served (canonical).
    pub path: String,
    /// Versions kept per path.
    pub keep_versions: u32,
    /// Cap on the bytes of the share's kept versions, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version_bytes: Option<u64>,
    /// Versions older than this many seconds are dropped, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version_age: Option<u64>,
    /// Cap on the share's total bytes that peers' writes may reach, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<u64>,
    /// Whether the first walk of the directory is done (the counts are complete).
    pub ready: bool,
    /// Files served.
    pub files: u64,
    /// Bytes in them.
    pub bytes: u64,
    /// Files whose content id is known (hashed since they last changed); equal to `files`
    /// once the background hashing has caught up.
    #[serde(default)]
    pub hashed: u64,
    /// Why the directory cannot be served, if it cannot (gone since it was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who may use it, by name.
    pub grants: Vec<GrantInfo>,
}

/// Result of `grant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granted {
    /// The share.
    pub share: ShareName,
    /// The peer's name (its short id if the peer table holds none).
    pub peer: String,
    /// The peer's key.
    pub id: PeerId,
    /// The right it now holds.
    pub right: Access,
}

/// Result of `revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The share.
    pub share: ShareName,
    /// The peer's name (its short id if the peer table holds none).
    pub peer: String,
    /// Whether it held a right until now.
    pub revoked: bool,
}

/// One entry of a remote listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// Its path below the directory listed (`a/b.txt` in a recursive listing; for a listed
    /// file, its name).
    pub path: String,
    /// `file` or `dir`.
    pub kind: EntryKind,
    /// A file's size in bytes; 0 for a directory.
    pub size: u64,
    /// Last modification, Unix milliseconds.
    pub mtime: u64,
    /// A file's content id (64 hex digits), once the owner's index has hashed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Result of `ls`: a peer's shares we may read (no share named), or the entries of a
/// directory or file in one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The peer.
    pub peer: PeerName,
    /// The share listed, if one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareName>,
    /// The path listed in it, if one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// With no share named: the shares, with our right on each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<ShareInfo>,
    /// With a share named: the entries, in the peer's order (by name; recursive: each
    /// directory after its parent's entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<ListEntry>,
    /// Whether the listing stopped at [`MAX_LISTED`] entries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// One kept version of a path, as `versions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionEntry {
    /// Its number: counted per path from 1, never given to another version of the path.
    pub number: u64,
    /// Its size in bytes.
    pub size: u64,
    /// When it was replaced or removed, Unix milliseconds.
    pub replaced_at: u64,
    /// Its content id (64 hex digits).
    pub id: String,
    /// The peer whose request replaced it, by the name our peer table holds for it (its
    /// short id if none); absent when the share's owner did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// That peer's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_id: Option<PeerId>,
}

/// Result of `versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionList {
    /// The peer whose share it is; absent for one of ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerName>,
    /// The share.
    pub share: ShareName,
    /// The path.
    pub path: String,
    /// The kept versions, oldest first.
    pub versions: Vec<VersionEntry>,
}

/// Result of `rm`, `mkdir`, `mv` and `restore`: what was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareChanged {
    /// The peer whose share it is; absent for one of ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerName>,
    /// The share.
    pub share: ShareName,
    /// The path removed, made, moved or restored.
    pub path: String,
    /// `mv`: the new path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `restore`: the number of the version put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// Result of `put`: what the owner answered `Done` for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutDone {
    /// The peer written to.
    pub peer: PeerName,
    /// The share.
    pub share: ShareName,
    /// Where the file or directory now is in the share (`a/b.txt`; empty: the root).
    pub path: String,
    /// Files written.
    pub files: u64,
    /// Directories made.
    pub dirs: u64,
    /// Bytes in the files written.
    pub bytes: u64,
    /// Local entries left out (symlinks, special files, names the protocol cannot carry),
    /// each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// Progress of a running `put` (the `put_progress` event, a few per second at most).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutProgress {
    /// The peer written to.
    pub peer: PeerName,
    /// The share.
    pub share: ShareName,
    /// The local file or directory being put, as the call gave it.
    pub src: String,
    /// Bytes the owner has acknowledged so far.
    pub done_bytes: u64,
    /// Bytes of the whole put.
    pub total_bytes: u64,
}
