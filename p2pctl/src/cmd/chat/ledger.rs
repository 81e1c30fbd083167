//! The bookkeeping behind `chat` with stdin not a terminal: where each message sent in this
//! session stands, and when p2pctl may stop waiting at end of input. Pure: events go in,
//! answers come out; the caller owns the clock (its deadline ends the wait regardless).

use std::collections::HashMap;
use std::fmt;

use proto::api::MessageState;
use proto::peer::MessageId;

/// Messages sent in this session and whether their peer can take them now.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    /// p2pd sends to the peer now (online, not blocked, no changed key): queued messages may
    /// still go out soon, so they are worth waiting for.
    reachable: bool,
    /// Each sent message's state: queued, delivered or refused.
    sent: HashMap<MessageId, MessageState>,
    /// Lines that never became messages (too long, not UTF-8, refused by the daemon).
    not_sent: usize,
}

/// How the session's messages ended up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Stored by the peer.
    pub(crate) delivered: usize,
    /// Still in the outbox; p2pd delivers them later.
    pub(crate) queued: usize,
    /// Refused by the peer.
    pub(crate) refused: usize,
    /// Never sent.
    pub(crate) not_sent: usize,
}

impl Summary {
    /// True when nothing failed (queued is not a failure).
    pub(crate) fn ok(&self) -> bool {
        self.refused == 0 && self.not_sent == 0
    }
}

impl fmt::Display for Summary {
    /// `N delivered, M queued`, then `, K refused` and `, J not sent` when not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} delivered, {} queued", self.delivered, self.queued)?;
        if self.refused > 0 {
            write!(f, ", {} refused", self.refused)?;
        }
        if self.not_sent > 0 {
            write!(f, ", {} not sent", self.not_sent)?;
        }
        Ok(())
    }
}

impl Ledger {
    /// An empty ledger; `reachable` says whether p2pd sends to the peer when the session
    /// starts.
    pub(crate) fn new(reachable: bool) -> Self {
        Self {
            reachable,
            sent: HashMap::new(),
            not_sent: 0,
        }
    }

    /// p2pd stored a message of ours as `id`, in `state` (normally queued).
    pub(crate) fn sent(&mut self, id: MessageId, state: MessageState) {
        let state = match state {
            MessageState::Delivered | MessageState::Refused => state,
            MessageState::Queued | MessageState::Received | MessageState::Deferred => {
                MessageState::Queued
            }
        };
        self.sent.insert(id, state);
        if state == MessageState::Delivered {
            self.reachable = true;
        }
    }

    /// A line could not be sent.
    pub(crate) fn not_sent(&mut self) {
        self.not_sent += 1;
    }

    /// A message changed state. Returns true when it is one of ours and this settles it
    /// (queued to delivered or refused); repeats and other messages change nothing.
    pub(crate) fn updated(&mut self, id: MessageId, state: MessageState) -> bool {
        if !matches!(state, MessageState::Delivered | MessageState::Refused) {
            return false;
        }
        let Some(current) = self.sent.get_mut(&id) else {
            return false;
        };
        if *current != MessageState::Queued {
            return false;
        }
        *current = state;
        if state == MessageState::Delivered {
            // A delivery proves the link works: the rest of the queue follows it.
            self.reachable = true;
        }
        true
    }

    /// p2pd sends to the peer again (it joined, or its key conflict or block was cleared).
    pub(crate) fn peer_up(&mut self) {
        self.reachable = true;
    }

    /// p2pd stopped sending to the peer (it left, or shows a changed key): whatever is queued
    /// now waits for its return.
    pub(crate) fn peer_down(&mut self) {
        self.reachable = false;
    }

    /// Whether the peer is thought reachable.
    #[cfg(test)]
    pub(crate) fn reachable(&self) -> bool {
        self.reachable
    }

    /// How many messages were sent in this session.
    pub(crate) fn len(&self) -> usize {
        self.sent.len()
    }

    /// True when waiting is over: every message is delivered or refused, or the peer is
    /// unreachable, so what is still queued counts as queued.
    pub(crate) fn settled(&self) -> bool {
        !self.reachable || self.sent.values().all(|s| *s != MessageState::Queued)
    }

    /// The counts so far.
    pub(crate) fn summary(&self) -> Summary {
        let mut s = Summary {
            not_sent: self.not_sent,
            ..Summary::default()
        };
        for state in self.sent.values() {
            match state {
                MessageState::Delivered => s.delivered += 1,
                MessageState::Refused => s.refused += 1,
                MessageState::Queued | MessageState::Received | MessageState::Deferred => {
                    s.queued += 1;
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId([n; 16])
    }

    #[test]
    fn nothing_sent_is_settled_at_once() {
        for online in [true, false] {
            let ledger = Ledger::new(online);
            assert!(ledger.settled());
            assert_eq!(ledger.summary().to_string(), "0 delivered, 0 queued");
            assert!(ledger.summary().ok());
        }
    }

    #[test]
    fn online_peer_settles_when_every_message_is_delivered_or_refused() {
        let mut ledger = Ledger::new(true);
        ledger.sent(id(1), MessageState::Queued);
        ledger.sent(id(2), MessageState::Queued);
        assert!(!ledger.settled());
        assert!(ledger.updated(id(1), MessageState::Delivered));
        assert!(!ledger.settled());
        // Unknown ids, non-final states and repeats change nothing.
        assert!(!ledger.updated(id(9), MessageState::Delivered));
        assert!(!ledger.updated(id(2), MessageState::Queued));
        assert!(!ledger.updated(id(1), MessageState::Refused));
        assert!(!ledger.settled());
        assert!(ledger.updated(id(2), MessageState::Refused));
        assert!(ledger.settled());
        let s = ledger.summary();
        assert_eq!(
            s,
            Summary {
                delivered: 1,
                queued: 0,
                refused: 1,
                not_sent: 0
            }
        );
        assert_eq!(s.to_string(), "1 delivered, 0 queued, 1 refused");
        assert!(!s.ok());
    }

    #[test]
    fn offline_peer_counts_queued_as_done() {
        let mut ledger = Ledger::new(false);
        ledger.sent(id(1), MessageState::Queued);
        ledger.sent(id(2), MessageState::Queued);
        assert!(ledger.settled());
        assert_eq!(ledger.summary().to_string(), "0 delivered, 2 queued");
        assert!(ledger.summary().ok());
    }

    #[test]
    fn peer_coming_back_means_waiting_again_and_leaving_ends_it() {
        let mut ledger = Ledger::new(false);
        ledger.sent(id(1), MessageState::Queued);
        assert!(ledger.settled());
        ledger.peer_up();
        assert!(!ledger.settled());
        ledger.peer_down();
        assert!(ledger.settled());
        ledger.peer_up();
        assert!(ledger.updated(id(1), MessageState::Delivered));
        assert!(ledger.settled());
        assert_eq!(ledger.summary().to_string(), "1 delivered, 0 queued");
    }

    #[test]
    fn a_delivery_marks_the_peer_reachable() {
        let mut ledger = Ledger::new(true);
        ledger.sent(id(1), MessageState::Queued);
        ledger.sent(id(2), MessageState::Queued);
        // The peer looked offline (its `peer_left` was processed first) ...
        ledger.peer_down();
        assert!(ledger.settled());
        // ... but a delivery shows it is there after all: wait for the other one too.
        assert!(ledger.updated(id(1), MessageState::Delivered));
        assert!(ledger.reachable());
        assert!(!ledger.settled());
    }

    #[test]
    fn lines_not_sent_are_failures() {
        let mut ledger = Ledger::new(true);
        ledger.not_sent();
        ledger.sent(id(1), MessageState::Delivered);
        assert!(ledger.settled());
        assert_eq!(ledger.len(), 1);
        let s = ledger.summary();
        assert_eq!(s.to_string(), "1 delivered, 0 queued, 1 not sent");
        assert!(!s.ok());
    }
}
