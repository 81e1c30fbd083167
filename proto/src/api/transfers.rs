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
    /// When it was stored on this side (RFC 3339, UTC). Absent from an older p2pd's answer.
    #[serde(default)]
    pub created_at: Option<String>,
    /// When it ended (RFC 3339, UTC), once it has; `None` before, and for a transfer an older
    /// p2pd ended.
    #[serde(default)]
    pub ended_at: Option<String>,
    /// Receiver: the paths the first files (up to 5, the manifest's order, as in `sample`)
    /// landed under, for those in place so far: `big (1).bin` when `big.bin` was taken.
    /// Files land in order, so entry `i` is file `i`'s. Empty for the sender.
    #[serde(default)]
    pub landed: Vec<String>,
    /// A multi-source pull (`get --from`): each peer it drew from, in the order named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<PullSource>,
    /// Sender: how many empty directories the offer went without, because the receiving
    /// p2pd speaks only `p2p-bulk/2` (its files arrive, the directories do not). 0 (and
    /// absent from JSON) when none were left out, and for an older p2pd's answer.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dirs_left_out: u32,
}

/// Whether a count is 0, so that it is left out of JSON.
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The answer to `send_files`: the transfer, and what of the paths stays here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// The transfer, as [`TransferInfo`] (its fields at the top level).
    #[serde(flatten)]
    pub transfer: TransferInfo,
    /// Entries under the paths that are not sent (symlinks are not followed; sockets, pipes
    /// and devices are not files), in the order the daemon walked them. Absent from an older
    /// p2pd's answer.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

/// An entry left out of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Where it would have landed at the peer (`photos/link`).
    pub path: String,
    /// Why it was left out: `symlink (not followed)` or `special file`.
    pub reason: String,
}

impl TransferInfo {
    /// Its listing group: 0 for an incoming offer waiting for the user's answer, 1 for the
    /// other unfinished ones, 2 for finished ones.
    pub fn group(&self) -> u8 {
        if self.direction == Direction::In && self.state == TransferState::Offered {
            0
        } else if self.state.is_final() {
            2
        } else {
            1
        }
    }

    /// The time a listing shows and sorts it by, in ms since the Unix epoch: when it ended
    /// for a finished one (when it was stored if that is unknown), else when it was stored;
    /// 0 when unknown.
    pub fn shown_at_ms(&self) -> u64 {
        let ended = self.ended_at.as_deref().filter(|_| self.state.is_final());
        ended
            .or(self.created_at.as_deref())
            .and_then(crate::timefmt::parse_ms)
            .unwrap_or(0)
    }

    /// The first file's name as it landed (or as offered, until it has), with `+N more` for
    /// the others; `None` while the files are not known yet.
    pub fn first_name(&self) -> Option<String> {
        let first = self.landed.first().or(self.sample.first())?;
        Some(match self.files {
            0 | 1 => first.clone(),
            n => format!("{first} +{} more", n - 1),
        })
    }
}

/// Finished transfers that ended longer ago than this are left out of a listing unless all
/// are asked for.
pub const FINISHED_KEPT_MS: u64 = 7 * 86_400_000;

/// Puts `list` in listing order: incoming offers waiting for an answer, then the other
/// unfinished transfers, then finished ones; newest first within each group (by
/// [`TransferInfo::shown_at_ms`]), ties kept in their order.
pub fn sort_for_listing(list: &mut [TransferInfo]) {
    list.sort_by_cached_key(|t| (t.group(), std::cmp::Reverse(t.shown_at_ms())));
}

/// Whether a listing made at `now_ms` shows `t` when not all are asked for: every
/// unfinished transfer, and finished ones that ended within [`FINISHED_KEPT_MS`] (one whose
/// time is unknown is shown).
pub fn listed_at(t: &TransferInfo, now_ms: u64) -> bool {
    if !t.state.is_final() {
        return true;
    }
    match t.shown_at_ms() {
        0 => true,
        at => now_ms.saturating_sub(at) <= FINISHED_KEPT_MS,
    }
}

/// The result of `transfers_clear`: how many finished transfers were forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransfersCleared {
    /// Finished transfers forgotten (their records and chunk records removed).
    pub cleared: u64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;
    use crate::timefmt::format_ms;
    use crate::transfer::TransferId;

    const DAY: u64 = 86_400_000;

    fn at(n: u8, direction: Direction, state: TransferState, created: u64) -> TransferInfo {
        TransferInfo {
            id: TransferId([n; 16]),
            peer: SecretKey::from_seed([1; 32]).peer_id(),
            peer_name: PeerName::new("bob").unwrap(),
            direction,
            state,
            files: 1,
            sample: vec!["a.txt".into()],
            total_bytes: 1,
            done_bytes: 0,
            rate: 0,
            eta_secs: None,
            local_path: None,
            error: None,
            kind: TransferKind::Send,
            created_at: Some(format_ms(created)),
            ended_at: state.is_final().then(|| format_ms(created + 1000)),
            landed: Vec::new(),
            sources: Vec::new(),
            dirs_left_out: 0,
        }
    }

    #[test]
    fn listing_order_is_by_group_then_newest_first() {
        use Direction::{In, Out};
        use TransferState::{Done, Failed, Offered, Queued, Running};
        let mut list = vec![
            at(1, Out, Done, 10 * DAY),
            at(2, In, Offered, DAY),
            at(3, Out, Running, 2 * DAY),
            at(4, Out, Failed, 12 * DAY),
            at(5, Out, Offered, 5 * DAY),
            at(6, In, Offered, 3 * DAY),
            at(7, In, Queued, 4 * DAY),
        ];
        // One ended long after it started: it sorts by its end.
        list[0].ended_at = Some(format_ms(20 * DAY));
        // An older p2pd's answer: no times, sorts last in its group.
        let mut old = at(8, In, Running, 0);
        old.created_at = None;
        list.push(old);
        sort_for_listing(&mut list);
        let order: Vec<u8> = list.iter().map(|t| t.id.0[0]).collect();
        assert_eq!(order, [6, 2, 5, 7, 3, 8, 1, 4]);
    }

    #[test]
    fn finished_transfers_older_than_a_week_are_left_out() {
        let now = 100 * DAY;
        let done = |ended: u64| {
            let mut t = at(1, Direction::Out, TransferState::Done, 0);
            t.ended_at = Some(format_ms(ended));
            t
        };
        assert!(listed_at(&done(now - DAY), now));
        assert!(listed_at(&done(now - 7 * DAY), now));
        assert!(!listed_at(&done(now - 7 * DAY - 1), now));
        // Ended in the future (a clock moved back): shown.
        assert!(listed_at(&done(now + DAY), now));
        // Unfinished: shown however old.
        let old = at(2, Direction::In, TransferState::Running, 0);
        assert!(listed_at(&old, now));
        // Finished with no end time: its start decides; with no time at all, shown.
        let mut t = done(0);
        t.ended_at = None;
        t.created_at = Some(format_ms(now - 8 * DAY));
        assert!(!listed_at(&t, now));
        t.created_at = None;
        assert!(listed_at(&t, now));
    }

    #[test]
    fn first_name_prefers_the_landed_one() {
        let mut t = at(1, Direction::In, TransferState::Done, 0);
        assert_eq!(t.first_name().as_deref(), Some("a.txt"));
        t.landed = vec!["a (1).txt".into()];
        t.files = 3;
        assert_eq!(t.first_name().as_deref(), Some("a (1).txt +2 more"));
        t.landed.clear();
        t.sample.clear();
        assert_eq!(t.first_name(), None);
    }
}
