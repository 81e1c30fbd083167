//! The control API of p2pd: methods ([`Call`]), their results, and the events streamed to
//! subscribers. `docs/rpc.md` documents each one.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::identity::PeerId;
use crate::name::PeerName;

/// A method and its params. Serialised as `"method"` / `"params"` (see [`crate::rpc`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "method",
    content = "params",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Call {
    /// Identity, tracker link, listen address, counts, resource use. Result: [`Status`].
    Status {},
    /// Every known peer. Result: `Vec<`[`PeerInfo`]`>`.
    Peers {},
    /// Start streaming [`Event`]s as `event` notifications on this connection.
    /// Result: [`Subscribed`].
    Subscribe {},
}

impl Call {
    /// Every method name, for telling "unknown method" from "bad params".
    pub const METHODS: &'static [&'static str] = &["status", "peers", "subscribe"];

    /// This call's method name.
    pub fn method(&self) -> &'static str {
        match self {
            Call::Status {} => "status",
            Call::Peers {} => "peers",
            Call::Subscribe {} => "subscribe",
        }
    }
}

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
    /// The tracker link.
    pub tracker: TrackerStatus,
    /// Known peers that are online now.
    pub peers_online: usize,
    /// Known peers in all.
    pub peers_known: usize,
    /// Resource use.
    pub resources: Resources,
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
    /// Registered at the tracker right now.
    pub online: bool,
    /// Unix seconds when it last came online or went offline.
    pub since: u64,
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
    fn every_method_is_listed() {
        for call in [Call::Status {}, Call::Peers {}, Call::Subscribe {}] {
            assert!(Call::METHODS.contains(&call.method()));
        }
        assert_eq!(Call::METHODS.len(), 3);
    }
}
