//! The control API of p2pd: methods ([`Call`]), their results, and the events streamed to
//! subscribers. `docs/rpc.md` documents each one.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::identity::PeerId;
use crate::name::PeerName;
use crate::share::Access;

mod log;
mod share;
mod status;
mod transfers;

pub use log::{LOG_NOTIFICATION, LogRecord};
pub use share::{
    GrantInfo, Granted, ListEntry, Listing, LocalShare, MAX_LISTED, PutDone, PutProgress, Revoked,
    ShareChanged, VersionEntry, VersionList,
};
pub use status::{Resources, SourceState, SourceStatus, Status, TrackerLinkState, TrackerStatus};
pub use transfers::{
    FINISHED_KEPT_MS, PullSource, Sent, Skipped, TransferInfo, TransferKind, TransferState,
    TransfersCleared, listed_at, sort_for_listing,
};

/// A method and its params. Serialised as `"method"` / `"params"` (see [`crate::rpc`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "method",
    content = "params",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Call {
    /// Identity, tracker link, each discovery source, listen address, counts, resource use.
    /// Result: [`Status`].
    Status {},
    /// Every known peer. Result: `Vec<`[`PeerInfo`]`>`.
    Peers {},
    /// Start streaming [`Event`]s as `event` notifications on this connection.
    /// Result: [`Subscribed`].
    Subscribe {},
    /// Send one chat message; stored before the answer. Result: [`MessageInfo`] (state
    /// `queued`; a `message_updated` event follows on delivery).
    SendMessage {
        /// Name or id prefix (at least 8 characters).
        peer: String,
        /// The text, at most 64 KiB of UTF-8.
        text: String,
    },
    /// The conversation with a peer, oldest first. Result: `Vec<`[`MessageInfo`]`>`.
    History {
        /// Name or id prefix.
        peer: String,
        /// Only the last `limit` messages (default 50).
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Mark a peer trusted. Result: [`PeerInfo`].
    Trust {
        /// Name or id prefix.
        peer: String,
        /// Accept its file offers without asking.
        #[serde(default)]
        auto_accept: bool,
    },
    /// Remove trust (and auto-accept). Result: [`PeerInfo`].
    Untrust {
        /// Name or id prefix.
        peer: String,
    },
    /// Refuse links and messages from a peer. Result: [`PeerInfo`].
    Block {
        /// Name or id prefix.
        peer: String,
    },
    /// Lift a block. Result: [`PeerInfo`].
    Unblock {
        /// Name or id prefix.
        peer: String,
    },
    /// Forget the key pinned for a peer's name, so the next key seen is pinned anew.
    /// Result: [`PeerInfo`].
    ForgetKey {
        /// Name or id prefix.
        peer: String,
        /// Forget the pin even though no other key is shown for the name.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Offer files or directories (absolute paths, read by the daemon) to a peer, as one
    /// transfer. The offer waits in the daemon while the peer is offline. The paths are
    /// listed before the answer (a metadata walk; hashing goes on after it).
    /// Result: [`Sent`]: the [`TransferInfo`] and what is `skipped`.
    SendFiles {
        /// Name or id prefix.
        peer: String,
        /// Absolute path of a file or directory: the one path offered. Empty (left out)
        /// when `paths` names them.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        path: String,
        /// Absolute paths of files or directories offered together (after `path`, if
        /// given). A daemon older than this field refuses it (invalid params), so clients
        /// send one path as `path`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        paths: Vec<String>,
    },
    /// Transfers both ways: offers waiting for a decision, running, finished (those that
    /// ended over a week ago only with `all`). Result: `Vec<`[`TransferInfo`]`>`.
    Transfers {
        /// Also the finished transfers that ended more than a week ago.
        #[serde(default)]
        all: bool,
    },
    /// Forget every finished transfer (its record and chunk records); unfinished ones stay.
    /// Result: [`TransfersCleared`].
    TransfersClear {},
    /// Accept an incoming offer. Result: [`TransferInfo`].
    Accept {
        /// Transfer id (32 hex characters, or a unique prefix of at least 6).
        id: String,
        /// Absolute destination directory (default: the download directory). It must exist
        /// unless `mkdir` is set.
        #[serde(default)]
        to: Option<String>,
        /// Create `to` (and its missing parents) if it does not exist.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        mkdir: bool,
    },
    /// Decline an incoming offer. Result: [`TransferInfo`].
    Decline {
        /// Transfer id or unique prefix.
        id: String,
    },
    /// Cancel a transfer, either side. Result: [`TransferInfo`].
    Cancel {
        /// Transfer id or unique prefix.
        id: String,
    },
    /// Rotate this daemon's identity key: a new key, a statement signed by the old one
    /// handing the name to it (kept until the tracker accepts it), and a restart of the
    /// daemon with the new key once the answer is sent. Refused while an earlier statement is
    /// still pending. Result: [`Rekeyed`].
    Rekey {},
    /// Serve a directory (absolute path, canonicalised by the daemon) as a share named
    /// `name` (one path component). Result: [`LocalShare`].
    ShareAdd {
        /// The share's name.
        name: String,
        /// Absolute path of an existing directory.
        path: String,
        /// Versions kept per path (default 5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep_versions: Option<u32>,
        /// Cap on the bytes of the share's kept versions (default: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_version_bytes: Option<u64>,
        /// Versions older than this many seconds are dropped (default: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_version_age: Option<u64>,
        /// Cap on the share's total bytes that peers' writes may reach (default: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quota: Option<u64>,
    },
    /// Stop serving a share and drop its grants (the directory is left alone). Result:
    /// [`LocalShare`], as it was.
    ShareRm {
        /// The share's name.
        name: String,
    },
    /// This daemon's shares with their counts and grants. Result: `Vec<`[`LocalShare`]`>`.
    ShareLs {},
    /// Give a peer a right on a share (replacing any earlier one). Result: [`Granted`].
    Grant {
        /// The share's name.
        share: String,
        /// Name or id prefix.
        peer: String,
        /// `read` or `write`.
        right: Access,
    },
    /// Take a peer's right on a share away; its next request is refused. Result:
    /// [`Revoked`].
    Revoke {
        /// The share's name.
        share: String,
        /// Name or id prefix.
        peer: String,
    },
    /// List a peer's shares (no `share`), or a directory or file of one of them, over a
    /// share link. Result: [`Listing`].
    Ls {
        /// Name or id prefix.
        peer: String,
        /// The share; none lists the shares the peer lets us read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        share: Option<String>,
        /// A path in the share; none is its root.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// Also ask for content ids (files not hashed yet are listed without).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        long: bool,
        /// Walk subdirectories too (at most [`MAX_LISTED`] entries).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        recursive: bool,
    },
    /// The activity log, oldest first. Result: `Vec<`[`LogRecord`]`>`; with `follow`, the
    /// connection then streams each new record as a [`LOG_NOTIFICATION`].
    Log {
        /// Only this peer's records: name or id prefix.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// Only records at or after this RFC 3339 time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        /// Only the last `limit` records (default 1000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        /// Then stream new records until the connection closes.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        follow: bool,
    },
    /// Pull a file or directory from a peer's share into `dest` (an existing directory
    /// receives it inside; default: the download directory). Result: [`TransferInfo`] of
    /// the incoming transfer (kind `pull`), accepted on its own when the peer offers it.
    Get {
        /// Name or id prefix.
        peer: String,
        /// The share.
        share: String,
        /// A path in the share; none is its root.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// Where to put it (absolute).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dest: Option<String>,
        /// More peers (names or id prefixes) holding the same content: the file is fetched
        /// from all of them and the named peer at once.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        from: Vec<String>,
    },
    /// Write a local file or directory (absolute path, read by the daemon) into a peer's
    /// share (needs `write`), as `cp -r` places it: an existing directory at `path`
    /// receives it inside, else `path` names it. Each file replaces only what was there
    /// when it was looked at (compare and swap); with `force`, whatever is there then.
    /// Progress comes as `put_progress` events. Result: [`PutDone`].
    Put {
        /// Name or id prefix.
        peer: String,
        /// The share.
        share: String,
        /// A path in the share; none is its root.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// The local file or directory (absolute).
        src: String,
        /// Replace what is there even if it changed since it was looked at.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// The kept versions of a path, oldest first: of a peer's share over a share link, or
    /// (no `peer`) of one of ours. Result: [`VersionList`].
    Versions {
        /// Name or id prefix; none: our own share.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// The share.
        share: String,
        /// The path in it.
        path: String,
    },
    /// Put a kept version back (what is there now becomes a version in turn): in a peer's
    /// share (needs `write`) or (no `peer`) in one of ours. Result: [`ShareChanged`].
    Restore {
        /// Name or id prefix; none: our own share.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// The share.
        share: String,
        /// The path in it.
        path: String,
        /// The version's number.
        version: u64,
    },
    /// Remove a file (kept as a version) or an empty directory of a peer's share (needs
    /// `write`). Result: [`ShareChanged`].
    Rm {
        /// Name or id prefix.
        peer: String,
        /// The share.
        share: String,
        /// The path in it.
        path: String,
    },
    /// Make a directory in a peer's share (its parent must exist; needs `write`). Result:
    /// [`ShareChanged`].
    Mkdir {
        /// Name or id prefix.
        peer: String,
        /// The share.
        share: String,
        /// The new directory's path.
        path: String,
    },
    /// Move an entry within a peer's share, never over an existing one (needs `write`).
    /// Result: [`ShareChanged`].
    Mv {
        /// Name or id prefix.
        peer: String,
        /// The share.
        share: String,
        /// The entry's path.
        from: String,
        /// Its new path.
        to: String,
    },
}

impl Call {
    /// Every method name, for telling "unknown method" from "bad params".
    pub const METHODS: &'static [&'static str] = &[
        "status",
        "peers",
        "subscribe",
        "send_message",
        "history",
        "trust",
        "untrust",
        "block",
        "unblock",
        "forget_key",
        "send_files",
        "transfers",
        "transfers_clear",
        "accept",
        "decline",
        "cancel",
        "rekey",
        "share_add",
        "share_rm",
        "share_ls",
        "grant",
        "revoke",
        "ls",
        "log",
        "get",
        "put",
        "versions",
        "restore",
        "rm",
        "mkdir",
        "mv",
    ];

    /// This call's method name.
    pub fn method(&self) -> &'static str {
        match self {
            Call::Status {} => "status",
            Call::Peers {} => "peers",
            Call::Subscribe {} => "subscribe",
            Call::SendMessage { .. } => "send_message",
            Call::History { .. } => "history",
            Call::Trust { .. } => "trust",
            Call::Untrust { .. } => "untrust",
            Call::Block { .. } => "block",
            Call::Unblock { .. } => "unblock",
            Call::ForgetKey { .. } => "forget_key",
            Call::SendFiles { .. } => "send_files",
            Call::Transfers { .. } => "transfers",
            Call::TransfersClear {} => "transfers_clear",
            Call::Accept { .. } => "accept",
            Call::Decline { .. } => "decline",
            Call::Cancel { .. } => "cancel",
            Call::Rekey {} => "rekey",
            Call::ShareAdd { .. } => "share_add",
            Call::ShareRm { .. } => "share_rm",
            Call::ShareLs {} => "share_ls",
            Call::Grant { .. } => "grant",
            Call::Revoke { .. } => "revoke",
            Call::Ls { .. } => "ls",
            Call::Log { .. } => "log",
            Call::Get { .. } => "get",
            Call::Put { .. } => "put",
            Call::Versions { .. } => "versions",
            Call::Restore { .. } => "restore",
            Call::Rm { .. } => "rm",
            Call::Mkdir { .. } => "mkdir",
            Call::Mv { .. } => "mv",
        }
    }
}

/// Result of `rekey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rekeyed {
    /// The identity until now.
    pub old_key: PeerId,
    /// The identity the daemon restarts with.
    pub new_key: PeerId,
}

/// One known peer, as `peers` lists it and events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Its registered name.
    pub name: PeerName,
    /// Its identity.
    pub id: PeerId,
    /// Where it accepts links (as resolved by the tracker).
    pub addrs: Vec<SocketAddr>,
    /// Some discovery source (the tracker, an open link) sees it right now.
    pub online: bool,
    /// Unix seconds when it last came online or went offline.
    pub since: u64,
    /// Marked trusted by the user.
    #[serde(default)]
    pub trusted: bool,
    /// Its file offers are accepted without asking.
    #[serde(default)]
    pub auto_accept: bool,
    /// Blocked by the user: no links, no messages.
    #[serde(default)]
    pub blocked: bool,
    /// The tracker now shows another key for the pinned name (see `forget_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_conflict: Option<PeerId>,
    /// Other keys that trackers bind this peer's name to: the name is ambiguous, and p2pd
    /// acts on none of them by name until the user names one by key prefix or pins one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same_name: Vec<PeerId>,
    /// The trackers (their configured addresses) that list it now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trackers: Vec<String>,
    /// What sees it or knows its address now; `book` alone is not presence.
    #[serde(default)]
    pub sources: Vec<PeerSource>,
    /// Its name comes from a tracker binding or the user's pin, not only from its own claim.
    #[serde(default)]
    pub verified: bool,
}

/// Something that sees a peer, or (the address book) knows where to dial it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerSource {
    /// A tracker lists it.
    Tracker,
    /// Announced on the local network.
    Lan,
    /// Found in the DHT.
    Dht,
    /// The address book keeps its last verified address record (not presence).
    Book,
    /// An open peer link to it.
    Link,
}

impl PeerSource {
    /// The word `peers` shows and JSON carries.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerSource::Tracker => "tracker",
            PeerSource::Lan => "lan",
            PeerSource::Dht => "dht",
            PeerSource::Book => "book",
            PeerSource::Link => "link",
        }
    }
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We sent it.
    Out,
    /// We received it.
    In,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Stored here, not yet acknowledged by the peer (offline, or in flight).
    Queued,
    /// The peer stored it.
    Delivered,
    /// The peer refused it (see `detail`); it will not be retried.
    Refused,
    /// A message we received.
    Received,
    /// The peer put it off (it is receiving faster than it takes from us, see `detail`);
    /// still in the outbox, sent again later. Not final.
    Deferred,
}

/// One chat message, as `history` lists it and events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageInfo {
    /// Unique id.
    pub id: crate::peer::MessageId,
    /// The other side of the conversation.
    pub peer: PeerId,
    /// Its name.
    pub peer_name: PeerName,
    /// Which way it went.
    pub direction: Direction,
    /// The sender's sequence number in this conversation.
    pub seq: u64,
    /// The text, exactly as sent (neutralise it before showing it on a terminal).
    pub text: String,
    /// Where it stands.
    pub state: MessageState,
    /// When the sender stored it, Unix milliseconds.
    pub sent_at: u64,
    /// Why it was refused, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Result of `subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    /// Always true; events follow as `event` notifications.
    pub subscribed: bool,
}

/// Name of the notification that carries an [`Event`].
pub const EVENT_NOTIFICATION: &str = "event";

/// Something that happened, streamed to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A peer came online.
    PeerJoined {
        /// The peer.
        peer: PeerInfo,
    },
    /// A peer went offline.
    PeerLeft {
        /// The peer.
        peer: PeerInfo,
    },
    /// An online peer changed its addresses.
    PeerUpdated {
        /// The peer.
        peer: PeerInfo,
    },
    /// The tracker link changed state.
    Tracker {
        /// The new link state.
        tracker: TrackerStatus,
    },
    /// A message arrived.
    MessageReceived {
        /// The message.
        message: MessageInfo,
    },
    /// One of our messages changed state (delivered or refused).
    MessageUpdated {
        /// The message.
        message: MessageInfo,
    },
    /// An offer arrived, or one of ours was sent.
    TransferOffered {
        /// The transfer.
        transfer: TransferInfo,
    },
    /// Progress of a running transfer (at most a few per second).
    TransferProgress {
        /// The transfer.
        transfer: TransferInfo,
    },
    /// A transfer changed state (accepted, done, declined, cancelled, failed).
    TransferUpdated {
        /// The transfer.
        transfer: TransferInfo,
    },
    /// Progress of a `put` (at most a few per second).
    PutProgress {
        /// The put.
        put: PutProgress,
    },
    /// A peer link failed in a way the user should know about (for example a key mismatch).
    LinkError {
        /// The peer, if known.
        peer: Option<PeerId>,
        /// What went wrong.
        detail: String,
    },
    /// Events were dropped because this subscriber fell behind.
    Lagged {
        /// How many.
        missed: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracker_that_failed_is_down() {
        let mut t = TrackerStatus {
            addr: "127.0.0.1:7000".into(),
            key: None,
            state: TrackerLinkState::Connecting,
            detail: None,
            since: 5,
        };
        assert_eq!(SourceStatus::tracker(&t, 0).state, SourceState::Connecting);
        t.detail = Some("tracker closed the connection".into());
        let s = SourceStatus::tracker(&t, 0);
        assert_eq!(s.state, SourceState::Down);
        assert_eq!(
            serde_json::to_string(&s).expect("json"),
            r#"{"kind":"tracker","addr":"127.0.0.1:7000","state":"down","detail":"tracker closed the connection","since":5,"peers":0}"#
        );
        assert_eq!(
            serde_json::to_string(&SourceStatus::up(PeerSource::Link, 1)).expect("json"),
            r#"{"kind":"link","state":"up","peers":1}"#
        );
    }

    #[test]
    fn every_method_is_listed() {
        let p = || String::from("bob");
        let calls = [
            Call::Status {},
            Call::Peers {},
            Call::Subscribe {},
            Call::SendMessage {
                peer: p(),
                text: p(),
            },
            Call::History {
                peer: p(),
                limit: None,
            },
            Call::Trust {
                peer: p(),
                auto_accept: false,
            },
            Call::Untrust { peer: p() },
            Call::Block { peer: p() },
            Call::Unblock { peer: p() },
            Call::ForgetKey {
                peer: p(),
                force: true,
            },
            Call::SendFiles {
                peer: p(),
                path: p(),
                paths: Vec::new(),
            },
            Call::Transfers { all: false },
            Call::TransfersClear {},
            Call::Accept {
                id: p(),
                to: None,
                mkdir: true,
            },
            Call::Decline { id: p() },
            Call::Cancel { id: p() },
            Call::Rekey {},
            Call::ShareAdd {
                name: p(),
                path: p(),
                keep_versions: None,
                max_version_bytes: None,
                max_version_age: None,
                quota: None,
            },
            Call::ShareRm { name: p() },
            Call::ShareLs {},
            Call::Grant {
                share: p(),
                peer: p(),
                right: Access::Read,
            },
            Call::Revoke {
                share: p(),
                peer: p(),
            },
            Call::Ls {
                peer: p(),
                share: None,
                path: None,
                long: false,
                recursive: false,
            },
            Call::Log {
                peer: None,
                since: None,
                limit: None,
                follow: false,
            },
            Call::Get {
                peer: p(),
                share: p(),
                path: None,
                dest: None,
                from: Vec::new(),
            },
            Call::Put {
                peer: p(),
                share: p(),
                path: None,
                src: p(),
                force: false,
            },
            Call::Versions {
                peer: None,
                share: p(),
                path: p(),
            },
            Call::Restore {
                peer: Some(p()),
                share: p(),
                path: p(),
                version: 1,
            },
            Call::Rm {
                peer: p(),
                share: p(),
                path: p(),
            },
            Call::Mkdir {
                peer: p(),
                share: p(),
                path: p(),
            },
            Call::Mv {
                peer: p(),
                share: p(),
                from: p(),
                to: p(),
            },
        ];
        for call in &calls {
            assert!(Call::METHODS.contains(&call.method()));
        }
        assert_eq!(Call::METHODS.len(), calls.len());
    }

    #[test]
    fn send_files_takes_one_path_as_before_or_several() {
        let one = r#"{"method":"send_files","params":{"peer":"bob","path":"/a"}}"#;
        let call: Call = serde_json::from_str(one).expect("one path");
        assert_eq!(
            call,
            Call::SendFiles {
                peer: "bob".into(),
                path: "/a".into(),
                paths: Vec::new(),
            }
        );
        assert_eq!(serde_json::to_string(&call).expect("json"), one);
        let several = Call::SendFiles {
            peer: "bob".into(),
            path: String::new(),
            paths: vec!["/a".into(), "/b".into()],
        };
        let text = r#"{"method":"send_files","params":{"peer":"bob","paths":["/a","/b"]}}"#;
        assert_eq!(serde_json::to_string(&several).expect("json"), text);
        assert_eq!(
            serde_json::from_str::<Call>(text).expect("several"),
            several
        );
        // Another field is still refused.
        let odd = r#"{"method":"send_files","params":{"peer":"bob","path":"/a","pathz":[]}}"#;
        assert!(serde_json::from_str::<Call>(odd).is_err());
    }
}
