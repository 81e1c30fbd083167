//! What `status` reports: the daemon's identity and addresses, each discovery source with its
//! state, the peer counts and the resources the daemon uses.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::PeerSource;
use crate::identity::PeerId;
use crate::name::PeerName;

/// State of the link to the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackerLinkState {
    /// Connecting or waiting to retry.
    Connecting,
    /// Registered and subscribed.
    Registered,
    /// The tracker refused the registration (see `detail`); retrying slowly.
    Refused,
}

/// The tracker link as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerStatus {
    /// The configured tracker address.
    pub addr: String,
    /// Its pinned key, once known.
    pub key: Option<PeerId>,
    /// Link state.
    pub state: TrackerLinkState,
    /// Last error or refusal, if any.
    pub detail: Option<String>,
    /// Unix seconds when the state last changed.
    pub since: u64,
}

/// The state of one discovery source, as `status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Not connected yet: connecting for the first time.
    Connecting,
    /// Registered and subscribed (a tracker).
    Registered,
    /// The registration was refused (see `detail`); retrying slowly.
    Refused,
    /// Lost or unreachable (see `detail`); retrying.
    Down,
    /// Working (a source without a connection of its own: the links, the book).
    Up,
    /// Turned off in the configuration.
    Off,
}

impl SourceState {
    /// The state as one lower-case word, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Registered => "registered",
            Self::Refused => "refused",
            Self::Down => "down",
            Self::Up => "up",
            Self::Off => "off",
        }
    }
}

/// One discovery source as `status` reports it: one entry per tracker, one for the open peer
/// links, one for the address book (and, later, one each for the LAN and the DHT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Which kind of source.
    pub kind: PeerSource,
    /// Where it is (a tracker's configured address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Its key, once known (a tracker's pinned key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PeerId>,
    /// Its state.
    pub state: SourceState,
    /// Last error or refusal, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Unix seconds when the state last changed, for sources that change state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// Peers it accounts for now: those a tracker (the LAN, the DHT) sees, those with an open
    /// link (`link`), those whose address record is kept (`book`).
    pub peers: usize,
}

impl SourceStatus {
    /// The `tracker` entry for a tracker link that sees `peers` peers: `connecting` with an
    /// error is `down`.
    pub fn tracker(t: &TrackerStatus, peers: usize) -> SourceStatus {
        let state = match t.state {
            TrackerLinkState::Connecting if t.detail.is_some() => SourceState::Down,
            TrackerLinkState::Connecting => SourceState::Connecting,
            TrackerLinkState::Registered => SourceState::Registered,
            TrackerLinkState::Refused => SourceState::Refused,
        };
        SourceStatus {
            kind: PeerSource::Tracker,
            addr: Some(t.addr.clone()),
            key: t.key,
            state,
            detail: t.detail.clone(),
            since: Some(t.since),
            peers,
        }
    }

    /// An entry for a source that is always up (the links, the book).
    pub fn up(kind: PeerSource, peers: usize) -> SourceStatus {
        SourceStatus {
            kind,
            addr: None,
            key: None,
            state: SourceState::Up,
            detail: None,
            since: None,
            peers,
        }
    }
}

/// Process resource use, from sysinfo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Process id.
    pub pid: u32,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
    /// CPU use since the previous sample, in percent of one core.
    pub cpu_percent: f32,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
}

/// Result of `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// This daemon's name.
    pub name: PeerName,
    /// This daemon's identity.
    pub id: PeerId,
    /// p2pd version.
    pub version: String,
    /// Where peer links are accepted.
    pub listen: SocketAddr,
    /// The control socket path.
    pub socket: String,
    /// The first configured tracker's link (also the first `tracker` entry of `sources`;
    /// kept for older clients); absent when p2pd runs with no tracker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker: Option<TrackerStatus>,
    /// Each discovery source and its state: each tracker, the open peer links, the address
    /// book (later the LAN and the DHT). Absent from older daemons.
    #[serde(default)]
    pub sources: Vec<SourceStatus>,
    /// Known peers that are online now.
    pub peers_online: usize,
    /// Known peers in all.
    pub peers_known: usize,
    /// Resource use.
    pub resources: Resources,
}
