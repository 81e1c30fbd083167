//! The bookkeeping behind `send` while it waits: which updates concern our transfer and its
//! peer, which one-off notes to print, and when to stop with which exit code. Pure: transfer
//! states and peer states go in, [`Step`]s come out; printing and the clock belong to the
//! caller.
//!
//! p2pd reports an outgoing transfer as `queued` until it has handed the offer to the peer,
//! whether the peer is online or not, so "the peer is offline" is read from the peer's state
//! (the `peers` list, then `peer_*` events), not from `queued` alone.

use proto::PeerId;
use proto::api::{Direction, PeerInfo, TransferInfo, TransferState};
use proto::reach::Reach;
use proto::transfer::TransferId;

use crate::error::EXIT_FAILED;
use crate::output::{clean, files, human_bytes, reason, short_transfer};

/// The peer cannot take anything now: no source sees it (p2pd may be trying its last known
/// address), or it is blocked.
pub(crate) fn away(reach: Reach) -> bool {
    matches!(reach, Reach::Offline | Reach::Book | Reach::Blocked)
}

/// Waiting for one outgoing transfer to end.
#[derive(Debug, Clone)]
pub(crate) struct Wait {
    /// The transfer waited for.
    id: TransferId,
    /// Its peer.
    peer: PeerId,
    /// Whether the peer is reachable, as last heard.
    reach: Reach,
    /// The transfer's state, as last heard.
    state: TransferState,
    /// Notes already given, so each is given once ([`Note::Paused`] excepted).
    told: Vec<Note>,
}

/// What to do after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// The update is about another transfer or peer: nothing.
    Unrelated,
    /// Still under way: show the progress, and `note` if there is one.
    Waiting(Option<Note>),
    /// Over: exit with `code` (0 or [`EXIT_FAILED`]); `text` is the success line for stdout,
    /// or the reason of the failure.
    Finished {
        /// The exit code.
        code: u8,
        /// What to say.
        text: String,
    },
}

/// A one-off line for stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Note {
    /// p2pd is reading and hashing the files.
    Hashing,
    /// Not offered yet, and the peer is offline: the offer waits in p2pd.
    Offline,
    /// Not offered yet, and the peer shows another key: p2pd sends it nothing.
    KeyChanged,
    /// Offered; the peer has to accept.
    Offered,
    /// Accepted; data is moving.
    Accepted,
    /// The peer went offline while data was moving (said each time).
    Paused,
    /// A pull asked for: the owner is hashing the entry or offering it.
    Pulling,
    /// The offer went without its empty directories: the peer's p2pd speaks only
    /// `p2p-bulk/2`.
    DirsLeftOut,
}

impl Note {
    /// The line for `t`, whose text from the peer is neutralised here.
    pub(crate) fn text(self, t: &TransferInfo) -> String {
        let name = clean(t.peer_name.as_str());
        match self {
            Note::Hashing => format!(
                "hashing {} ...",
                clean(t.local_path.as_deref().unwrap_or("the files"))
            ),
            Note::Offline => format!(
                "{name} is offline; the offer waits in p2pd until {name} is back \
                 (ctrl-c stops waiting; the offer stays)"
            ),
            Note::KeyChanged => format!(
                "not offered: the tracker shows another key for {name}, so p2pd sends it \
                 nothing (see 'p2pctl peers'; 'p2pctl forget-key {name}' if the new key is \
                 really theirs); the offer waits (ctrl-c stops waiting; the offer stays)"
            ),
            Note::Offered => format!(
                "offered {} ({}) to {name} (id {}); waiting for {name} to accept \
                 (ctrl-c stops waiting; the offer stays)",
                files(t.files),
                human_bytes(t.total_bytes),
                short_transfer(&t.id)
            ),
            Note::Accepted if t.direction == Direction::In => format!(
                "receiving {} ({}) from {name}",
                files(t.files),
                human_bytes(t.total_bytes)
            ),
            Note::Accepted => format!(
                "{name} accepted; sending {} ({})",
                files(t.files),
                human_bytes(t.total_bytes)
            ),
            Note::Pulling => format!(
                "asked {name} for it (id {}); waiting while {name} hashes it \
                 (ctrl-c stops waiting; the pull goes on)",
                short_transfer(&t.id)
            ),
            Note::Paused => {
                format!("{name} went offline; the transfer goes on when {name} is back")
            }
            Note::DirsLeftOut => format!(
                "left out {}: {name}'s p2pd speaks p2p-bulk/2, which carries files only",
                match t.dirs_left_out {
                    1 => "1 empty directory".to_owned(),
                    n => format!("{n} empty directories"),
                }
            ),
        }
    }
}

impl Wait {
    /// Waits for the transfer `t` (as `send_files` returned it; feed it to
    /// [`update`](Self::update) too) to a peer whose reach is `reach`.
    pub(crate) fn new(t: &TransferInfo, reach: Reach) -> Self {
        Self {
            id: t.id,
            peer: t.peer,
            reach,
            state: t.state,
            told: Vec::new(),
        }
    }

    /// Whether the peer is reachable, as last heard.
    pub(crate) fn reach(&self) -> Reach {
        self.reach
    }

    /// Takes in the latest known state of a transfer.
    pub(crate) fn update(&mut self, t: &TransferInfo) -> Step {
        if t.id != self.id {
            return Step::Unrelated;
        }
        self.state = t.state;
        match t.state {
            TransferState::Done => Step::Finished {
                code: 0,
                text: done_line(t),
            },
            TransferState::Declined
            | TransferState::Cancelled
            | TransferState::Failed
            | TransferState::Expired => Step::Finished {
                code: EXIT_FAILED,
                text: failure(t),
            },
            TransferState::Scanning => self.once(Some(Note::Hashing)),
            TransferState::Queued | TransferState::Offered if t.direction == Direction::In => {
                self.once(Some(Note::Pulling))
            }
            TransferState::Queued => self.once(self.unreachable()),
            TransferState::Offered => self.once(Some(Note::Offered)),
            TransferState::Running => self.once(Some(Note::Accepted)),
        }
    }

    /// The note that the offer to the peer went without its empty directories, the first
    /// time `t` (our transfer's latest state) says so.
    pub(crate) fn dirs_left_out(&mut self, t: &TransferInfo) -> Option<Note> {
        if t.id != self.id || t.dirs_left_out == 0 || self.told.contains(&Note::DirsLeftOut) {
            return None;
        }
        self.told.push(Note::DirsLeftOut);
        Some(Note::DirsLeftOut)
    }

    /// Takes in the latest known state of a peer.
    pub(crate) fn peer(&mut self, p: &PeerInfo) -> Step {
        if p.id != self.peer {
            return Step::Unrelated;
        }
        let before = self.reach;
        self.reach = Reach::of(p);
        match self.state {
            TransferState::Queued => self.once(self.unreachable()),
            TransferState::Running if away(self.reach) && !away(before) => {
                Step::Waiting(Some(Note::Paused))
            }
            _ => Step::Waiting(None),
        }
    }

    /// The note for an offer not yet handed over: why it waits, if the peer cannot take it.
    fn unreachable(&self) -> Option<Note> {
        match self.reach {
            Reach::Online => None,
            Reach::Offline | Reach::Book | Reach::Blocked => Some(Note::Offline),
            Reach::KeyChanged => Some(Note::KeyChanged),
        }
    }

    /// Waiting, with `note` unless it was given before.
    fn once(&mut self, note: Option<Note>) -> Step {
        match note {
            Some(n) if !self.told.contains(&n) => {
                self.told.push(n);
                Step::Waiting(Some(n))
            }
            _ => Step::Waiting(None),
        }
    }
}

/// `bob has all 3 files (12.3 MiB) verified`, or `bob has the directories` of a transfer of
/// directories alone.
fn done_line(t: &TransferInfo) -> String {
    let name = clean(t.peer_name.as_str());
    let size = human_bytes(t.total_bytes);
    if t.direction == Direction::In {
        let dest = clean(t.local_path.as_deref().unwrap_or("the destination"));
        if t.files == 0 {
            return format!("got directories (they hold no file) from {name}, in {dest}");
        }
        return format!(
            "got {} ({size}) from {name}, verified, in {dest}",
            files(t.files)
        );
    }
    if t.files == 0 {
        format!("{name} has the directories (they hold no file)")
    } else if t.files == 1 {
        format!("{name} has the file ({size}) verified")
    } else {
        format!("{name} has all {} ({size}) verified", files(t.files))
    }
}

/// Why the transfer did not succeed.
fn failure(t: &TransferInfo) -> String {
    let name = clean(t.peer_name.as_str());
    let id = short_transfer(&t.id);
    let why = reason(t);
    match t.state {
        TransferState::Declined => format!("{name} declined the offer{why}"),
        TransferState::Cancelled if t.direction == Direction::In => {
            format!("transfer {id} from {name} was cancelled{why}")
        }
        TransferState::Cancelled => format!("transfer {id} to {name} was cancelled{why}"),
        TransferState::Expired => {
            format!("transfer {id} to {name} expired: {name} did not decide in time")
        }
        _ if t.direction == Direction::In => format!("transfer {id} from {name} failed{why}"),
        _ => format!("transfer {id} to {name} failed{why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::fake::transfer;
    use proto::api::Direction;
    use proto::{PeerName, SecretKey};

    fn at(state: TransferState) -> TransferInfo {
        transfer(Direction::Out, state)
    }

    fn bob(online: bool) -> PeerInfo {
        PeerInfo {
            name: PeerName::new("bob").expect("name"),
            id: at(TransferState::Queued).peer,
            addrs: vec![],
            online,
            since: 1,
            trusted: false,
            auto_accept: false,
            blocked: false,
            key_conflict: None,
            same_name: Vec::new(),
            trackers: Vec::new(),
            sources: Vec::new(),
            verified: true,
        }
    }

    fn waiting(reach: Reach) -> Wait {
        Wait::new(&at(TransferState::Queued), reach)
    }

    #[test]
    fn directories_alone_are_said_as_directories() {
        let out = TransferInfo {
            files: 0,
            total_bytes: 0,
            ..at(TransferState::Done)
        };
        assert_eq!(
            done_line(&out),
            "bob has the directories (they hold no file)"
        );
        let into = TransferInfo {
            direction: Direction::In,
            local_path: Some("/tmp/in".into()),
            ..out
        };
        assert_eq!(
            done_line(&into),
            "got directories (they hold no file) from bob, in /tmp/in"
        );
    }

    #[test]
    fn offline_peer_then_offered_then_running_then_done() {
        let mut wait = waiting(Reach::Offline);
        assert_eq!(
            wait.update(&at(TransferState::Queued)),
            Step::Waiting(Some(Note::Offline))
        );
        // Each note once, however often the state is reported.
        assert_eq!(wait.update(&at(TransferState::Queued)), Step::Waiting(None));
        assert_eq!(wait.peer(&bob(true)), Step::Waiting(None));
        assert_eq!(wait.reach(), Reach::Online);
        assert_eq!(
            wait.update(&at(TransferState::Offered)),
            Step::Waiting(Some(Note::Offered))
        );
        assert_eq!(
            wait.update(&at(TransferState::Running)),
            Step::Waiting(Some(Note::Accepted))
        );
        assert_eq!(
            wait.update(&at(TransferState::Running)),
            Step::Waiting(None)
        );
        assert_eq!(
            wait.update(&at(TransferState::Done)),
            Step::Finished {
                code: 0,
                text: "bob has all 3 files (12.3 MiB) verified".into()
            }
        );
    }

    #[test]
    fn queued_to_an_online_peer_says_nothing_until_it_leaves() {
        let mut wait = waiting(Reach::Online);
        assert_eq!(wait.update(&at(TransferState::Queued)), Step::Waiting(None));
        assert_eq!(wait.peer(&bob(false)), Step::Waiting(Some(Note::Offline)));
        assert_eq!(wait.peer(&bob(true)), Step::Waiting(None));
        assert_eq!(wait.peer(&bob(false)), Step::Waiting(None));
    }

    #[test]
    fn a_changed_key_is_said() {
        let mut conflicted = bob(true);
        conflicted.key_conflict = Some(SecretKey::from_seed([5; 32]).peer_id());
        assert_eq!(Reach::of(&conflicted), Reach::KeyChanged);
        assert_eq!(Reach::of(&bob(true)), Reach::Online);
        assert_eq!(Reach::of(&bob(false)), Reach::Offline);
        assert_eq!(Reach::of_known(None), Reach::Offline);
        let mut wait = waiting(Reach::Online);
        wait.update(&at(TransferState::Queued));
        assert_eq!(
            wait.peer(&conflicted),
            Step::Waiting(Some(Note::KeyChanged))
        );
    }

    #[test]
    fn the_peer_leaving_mid_transfer_is_said_each_time() {
        let mut wait = waiting(Reach::Online);
        wait.update(&at(TransferState::Running));
        assert_eq!(wait.peer(&bob(false)), Step::Waiting(Some(Note::Paused)));
        assert_eq!(wait.peer(&bob(false)), Step::Waiting(None));
        assert_eq!(wait.peer(&bob(true)), Step::Waiting(None));
        assert_eq!(wait.peer(&bob(false)), Step::Waiting(Some(Note::Paused)));
    }

    #[test]
    fn other_transfers_and_peers_are_ignored() {
        let mut wait = waiting(Reach::Online);
        let other = TransferInfo {
            id: TransferId([9; 16]),
            ..at(TransferState::Done)
        };
        assert_eq!(wait.update(&other), Step::Unrelated);
        let carol = PeerInfo {
            id: SecretKey::from_seed([2; 32]).peer_id(),
            ..bob(false)
        };
        assert_eq!(wait.peer(&carol), Step::Unrelated);
        assert_eq!(wait.reach(), Reach::Online);
    }

    #[test]
    fn refusals_and_failures_exit_one_with_the_reason() {
        let cases = [
            (TransferState::Declined, None, "bob declined the offer"),
            (
                TransferState::Declined,
                Some("declined by the receiver"),
                "bob declined the offer: declined by the receiver",
            ),
            (
                TransferState::Cancelled,
                Some("cancelled by bob"),
                "transfer abcd1234 to bob was cancelled: cancelled by bob",
            ),
            (
                TransferState::Failed,
                Some("disk full\u{1b}[2J"),
                "transfer abcd1234 to bob failed: disk full\\e[2J",
            ),
            (
                TransferState::Failed,
                Some(""),
                "transfer abcd1234 to bob failed",
            ),
        ];
        for (state, error, text) in cases {
            let mut t = at(state);
            t.error = error.map(Into::into);
            assert_eq!(
                waiting(Reach::Online).update(&t),
                Step::Finished {
                    code: EXIT_FAILED,
                    text: text.into()
                },
                "{state:?}"
            );
        }
    }

    #[test]
    fn a_single_file_is_named_so() {
        let mut t = at(TransferState::Done);
        t.files = 1;
        t.total_bytes = 512;
        assert_eq!(
            waiting(Reach::Online).update(&t),
            Step::Finished {
                code: 0,
                text: "bob has the file (512 B) verified".into()
            }
        );
    }

    #[test]
    fn notes() {
        let t = at(TransferState::Queued);
        assert_eq!(
            Note::Offline.text(&t),
            "bob is offline; the offer waits in p2pd until bob is back (ctrl-c stops waiting; \
             the offer stays)"
        );
        assert_eq!(
            Note::KeyChanged.text(&t),
            "not offered: the tracker shows another key for bob, so p2pd sends it nothing \
             (see 'p2pctl peers'; 'p2pctl forget-key bob' if the new key is really theirs); \
             the offer waits (ctrl-c stops waiting; the offer stays)"
        );
        assert_eq!(
            Note::Offered.text(&t),
            "offered 3 files (12.3 MiB) to bob (id abcd1234); waiting for bob to accept \
             (ctrl-c stops waiting; the offer stays)"
        );
        assert_eq!(
            Note::Accepted.text(&t),
            "bob accepted; sending 3 files (12.3 MiB)"
        );
        assert_eq!(
            Note::Paused.text(&t),
            "bob went offline; the transfer goes on when bob is back"
        );
    }
}
