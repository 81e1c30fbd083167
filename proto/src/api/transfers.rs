//! What `transfers` reports of each transfer: its state, kind and figures.

use serde::{Deserialize, Serialize};

use super::Direction;
use crate::identity::PeerId;
use crate::name::PeerName;

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// Outgoing: p2pd is reading and hashing the files; `done_bytes` counts the bytes hashed
    /// so far, `total_bytes` and `files` are known once the tree has been listed.
    Scanning,
    /// Outgoing: stored, not yet handed to the peer (it is offline, or being dialed).
    Queued,
    /// Offered; waiting for the receiver's decision.
    Offered,
    /// Accepted; data is moving (or will when the link is back).
    Running,
    /// Every file is verified and under its final name at the receiver.
    Done,
    /// Declined by the receiver.
    Declined,
    /// Cancelled by either side.
    Cancelled,
    /// Failed; see `error`.
    Failed,
    /// Offered, and left undecided past the receiver's offer expiry.
    Expired,
}

impl TransferState {
    /// The state as one lower-case word, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scanning => "scanning",
            Self::Queued => "queued",
            Self::Offered => "offered",
            Self::Running => "running",
            Self::Done => "done",
            Self::Declined => "declined",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    /// True once nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Done | Self::Declined | Self::Cancelled | Self::Failed | Self::Expired
        )
    }
}

/// One transfer, as `transfers` lists it and events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferInfo {
    /// Transfer id.
    pub id: crate::transfer::TransferId,
    /// The other side.
    pub peer: PeerId,
    /// Its name.
    pub peer_name: PeerName,
    /// `out`: we send; `in`: we receive.
    pub direction: Direction,
    /// Where it stands.
    pub state: TransferState,
    /// Number of files.
    pub files: u32,
    /// Up to 5 of the file paths, for display.
    pub sample: Vec<String>,
    /// Total bytes.
    pub total_bytes: u64,
    /// Bytes verified at the receiver so far.
    pub done_bytes: u64,
    /// Recent rate, bytes per second (0 when idle).
    pub rate: u64,
    /// Seconds left at the recent rate, when running.
    pub eta_secs: Option<u64>,
    /// Sender: the path offered. Receiver: the destination directory once accepted.
    pub local_path: Option<String>,
    /// Why it failed, was declined or cancelled.
    pub error: Option<String>,
    /// What the transfer is: `send`, `receive`, or `pull` (a share entry this side asked
    /// for with `get`). Absent from an older p2pd's answer: read as `send`.
    #[serde(default)]
    pub kind: TransferKind,
    /// A multi-source pull (`get --from`): each peer it drew from, in the order named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<PullSource>,
}

/// One peer a multi-source pull drew chunks from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullSource {
    /// Its name.
    pub peer: PeerName,
    /// Verified bytes it served.
    pub bytes: u64,
    /// Its recent rate, bytes per second.
    pub rate: u64,
    /// Why it was dropped from the download, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<String>,
}

/// What a transfer is, as [`TransferInfo::kind`] says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Outgoing (a `send`, or a share entry a peer pulls from here).
    #[default]
    Send,
    /// An incoming offer.
    Receive,
    /// An incoming share entry this side asked for (`get`).
    Pull,
}
