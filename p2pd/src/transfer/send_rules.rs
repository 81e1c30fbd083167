//! The sender's sequencing, pure: where each file starts given what the receiver says it
//! holds, and whether each answer of the receiver ends the transfer, ends only the link, or
//! lets the data flow. `send.rs` does the I/O.

use proto::api::TransferState;
use proto::transfer::{
    BULK_LINKS_BUSY, CHUNK, FileEntry, FileResume, OFFER_EXPIRED, TransferFrame,
};

use proto::frame::FrameError;
use transport::ConnError;

use super::error::EngineError;
use crate::link::LinkError;

/// Why a transfer to a peer whose p2pd predates `p2p-bulk/2` fails.
pub(super) fn too_old(peer: &str) -> String {
    format!(
        "p2pd on {peer} is too old for this transfer: it speaks p2p-bulk/1, this daemon p2p-bulk/2; upgrade it"
    )
}

/// Why a transfer of directories alone (no file) to a peer that speaks only `p2p-bulk/2`
/// fails: that protocol carries no directories, so its offer would hold nothing.
pub(super) fn dirs_need_v3(peer: &str) -> String {
    format!(
        "p2pd on {peer} speaks p2p-bulk/2, which cannot carry directories without files; upgrade it"
    )
}

/// Whether dialling a bulk link failed because the peer serves no `p2p-bulk/2`: its TLS
/// refused the one ALPN name offered (`no_application_protocol`), which a p2pd that speaks
/// only `p2p-bulk/1` does.
pub(super) fn is_too_old(e: &LinkError) -> bool {
    use tokio_rustls::rustls::{AlertDescription, Error};
    let LinkError::Tls(io) = e else { return false };
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                Error::AlertReceived(AlertDescription::NoApplicationProtocol)
            )
        })
}

/// What failing to send the offer means: a frame too large for the limit fails the
/// transfer (every link would refuse it the same way), anything else ends only the link.
pub(super) fn on_offer_unsent(e: ConnError) -> Result<End, EngineError> {
    match e {
        ConnError::Frame(FrameError::TooLarge { len, max }) => Ok(End::Failed(format!(
            "the offer takes {len} bytes, more than the {max} one transfer can carry: too many files or directories, or names too long; send them in several transfers"
        ))),
        e => Err(EngineError::Link(e)),
    }
}

/// How a session ended, when it ended the transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    /// Every file arrived.
    Done,
    /// The receiver declined, with its reason.
    Declined(String),
    /// Either side cancelled, with the reason.
    Cancelled(String),
    /// Either side failed it, with the reason.
    Failed(String),
    /// The offer expired undecided at the receiver.
    Expired,
}

impl End {
    /// The transfer's final state and the reason stored with it.
    pub(super) fn outcome(self) -> (TransferState, Option<String>) {
        match self {
            End::Done => (TransferState::Done, None),
            End::Declined(r) => (TransferState::Declined, Some(r)),
            End::Cancelled(r) => (TransferState::Cancelled, Some(r)),
            End::Failed(r) => (TransferState::Failed, Some(r)),
            End::Expired => (TransferState::Expired, Some(OFFER_EXPIRED.to_owned())),
        }
    }
}

/// What the receiver's answer to the offer means.
#[derive(Debug)]
pub(super) enum OfferReply {
    /// Accepted: send from these positions.
    Stream(Vec<FileResume>),
    /// The transfer is over.
    End(End),
    /// Only this link is over: offer again later.
    Retry(EngineError),
}

/// Reads the receiver's answer to an offer (`None`: it closed the link).
pub(super) fn on_offer_reply(reply: Option<TransferFrame>) -> OfferReply {
    let end = |e| OfferReply::End(e);
    match reply {
        Some(TransferFrame::Accept { resume, .. }) => OfferReply::Stream(resume),
        Some(TransferFrame::Decline { reason, .. }) if reason == OFFER_EXPIRED => end(End::Expired),
        Some(TransferFrame::Decline { reason, .. }) => end(End::Declined(reason)),
        Some(TransferFrame::Cancel { reason, .. }) => end(End::Cancelled(reason)),
        // The receiver holds too many of our links now: not an end, offer again later.
        Some(TransferFrame::Failed { reason, .. }) if reason == BULK_LINKS_BUSY => {
            OfferReply::Retry(EngineError::Busy(reason))
        }
        Some(TransferFrame::Failed { reason, .. }) => end(End::Failed(reason)),
        Some(TransferFrame::Done { .. }) => end(End::Done),
        Some(other) => OfferReply::Retry(EngineError::Unexpected { what: kind(&other) }),
        None => OfferReply::Retry(EngineError::Closed { peer: "receiver" }),
    }
}

/// A frame from the receiver while the data flows: the end it brings, if any (anything
/// else is ignored).
pub(super) fn on_verdict(frame: TransferFrame) -> Option<End> {
    match frame {
        TransferFrame::Done { .. } => Some(End::Done),
        TransferFrame::Cancel { reason, .. } => Some(End::Cancelled(reason)),
        TransferFrame::Failed { reason, .. } => Some(End::Failed(reason)),
        TransferFrame::Decline { reason, .. } => Some(End::Declined(reason)),
        _ => None,
    }
}

/// The first chunk to send of each file, from the receiver's `Accept` (a file it does not
/// list starts at 0; a count past the file's end means nothing of it is sent), and the bytes
/// the receiver already holds.
pub(super) fn starts(files: &[FileEntry], resume: &[FileResume]) -> (Vec<u64>, u64) {
    let mut held = 0u64;
    let starts = (0u32..)
        .zip(files)
        .map(|(i, f)| {
            let start = resume
                .iter()
                .find(|r| r.file == i)
                .map_or(0, |r| r.verified_chunks.min(f.chunk_count()));
            held = held.saturating_add(start.saturating_mul(CHUNK).min(f.size));
            start
        })
        .collect();
    (starts, held)
}

/// A frame's kind, for messages.
fn kind(frame: &TransferFrame) -> &'static str {
    match frame {
        TransferFrame::Offer(_) => "Offer",
        TransferFrame::Accept { .. } => "Accept",
        TransferFrame::Decline { .. } => "Decline",
        TransferFrame::Cancel { .. } => "Cancel",
        TransferFrame::Chunk { .. } => "Chunk",
        TransferFrame::ChunkCvs { .. } => "ChunkCvs",
        TransferFrame::FileDone { .. } => "FileDone",
        TransferFrame::Done { .. } => "Done",
        TransferFrame::Failed { .. } => "Failed",
    }
}

#[cfg(test)]
mod tests {
    use proto::transfer::{RelPath, TransferId};

    use super::*;

    const ID: TransferId = TransferId([3; 16]);

    fn resume(file: u32, verified_chunks: u64) -> FileResume {
        FileResume {
            file,
            verified_chunks,
        }
    }

    #[test]
    fn starts_follow_the_receiver_and_stay_inside_each_file() {
        let entry = |size| FileEntry {
            path: RelPath::new("f").expect("path"),
            size,
            hash: [0; 32],
        };
        let files = [entry(3 * CHUNK + 1), entry(10), entry(CHUNK)];
        assert_eq!(starts(&files, &[]), (vec![0, 0, 0], 0));
        // File 1 whole, file 0 at chunk 2, an index the manifest lacks ignored, the first
        // entry of a file used.
        let r = [resume(0, 2), resume(1, 1), resume(9, 5), resume(0, 3)];
        assert_eq!(starts(&files, &r), (vec![2, 1, 0], 2 * CHUNK + 10));
        // A receiver claiming more than a file has: nothing of it is sent, no overflow.
        let r = [resume(0, u64::MAX), resume(2, u64::MAX)];
        assert_eq!(starts(&files, &r), (vec![4, 0, 1], 4 * CHUNK + 1));
    }

    #[test]
    fn each_answer_to_the_offer_ends_the_transfer_or_only_the_link() {
        let reason = |s: &str| s.to_owned();
        let ends = [
            (
                TransferFrame::Decline {
                    id: ID,
                    reason: reason(OFFER_EXPIRED),
                },
                End::Expired,
            ),
            (
                TransferFrame::Decline {
                    id: ID,
                    reason: reason("no"),
                },
                End::Declined(reason("no")),
            ),
            (
                TransferFrame::Cancel {
                    id: ID,
                    reason: reason("bye"),
                },
                End::Cancelled(reason("bye")),
            ),
            (
                TransferFrame::Failed {
                    id: ID,
                    reason: reason("disk"),
                },
                End::Failed(reason("disk")),
            ),
            (TransferFrame::Done { id: ID }, End::Done),
        ];
        for (frame, want) in ends {
            match on_offer_reply(Some(frame)) {
                OfferReply::End(got) => assert_eq!(got, want),
                other => panic!("{want:?}: {other:?}"),
            }
        }
        let r = vec![resume(0, 1)];
        assert!(matches!(
            on_offer_reply(Some(TransferFrame::Accept { id: ID, resume: r.clone() })),
            OfferReply::Stream(got) if got == r
        ));
        for (reply, link_only) in [
            (
                Some(TransferFrame::Failed {
                    id: ID,
                    reason: reason(BULK_LINKS_BUSY),
                }),
                "busy",
            ),
            (
                Some(TransferFrame::FileDone { id: ID, file: 0 }),
                "unexpected FileDone",
            ),
            (None, "closed"),
        ] {
            match on_offer_reply(reply) {
                OfferReply::Retry(e) => assert!(e.link_only(), "{link_only}: {e}"),
                other => panic!("{link_only}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_offer_too_large_for_a_frame_fails_the_transfer_and_a_broken_link_does_not() {
        use proto::transfer::{MAX_CHUNK_FRAME, MAX_DIRS, Manifest};
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut conn = transport::FramedConn::new(a, MAX_CHUNK_FRAME, MAX_CHUNK_FRAME);
        let long = |n: usize| {
            RelPath::new(&format!("{n:05}/{}/{}", "d".repeat(250), "e".repeat(250))).unwrap()
        };
        let offer = Manifest {
            id: ID,
            files: vec![FileEntry {
                path: RelPath::new("f").unwrap(),
                size: 1,
                hash: [0; 32],
            }],
            dirs: (0..MAX_DIRS / 2).map(long).collect(),
        };
        assert_eq!(offer.validate(), Ok(()));
        let e = conn.send(&TransferFrame::Offer(offer)).await.unwrap_err();
        match on_offer_unsent(e) {
            Ok(End::Failed(reason)) => assert!(reason.contains("several transfers"), "{reason}"),
            other => panic!("{other:?}"),
        }
        drop(b);
        let e = conn
            .send(&TransferFrame::Done { id: ID })
            .await
            .unwrap_err();
        assert!(on_offer_unsent(e).is_err_and(|e| e.link_only()));
    }

    #[test]
    fn a_peer_refusing_the_bulk_protocol_is_too_old_and_other_failures_are_not() {
        use tokio_rustls::rustls::{AlertDescription, Error};
        let tls =
            |e: Error| LinkError::Tls(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        assert!(is_too_old(&tls(Error::AlertReceived(
            AlertDescription::NoApplicationProtocol
        ))));
        assert!(!is_too_old(&tls(Error::AlertReceived(
            AlertDescription::HandshakeFailure
        ))));
        assert!(!is_too_old(&LinkError::Tls(
            std::io::ErrorKind::ConnectionReset.into()
        )));
        assert!(!is_too_old(&LinkError::NoAddress));
        assert_eq!(
            too_old("bob"),
            "p2pd on bob is too old for this transfer: it speaks p2p-bulk/1, this daemon p2p-bulk/2; upgrade it"
        );
    }

    #[test]
    fn while_data_flows_only_an_ending_frame_ends_the_session() {
        assert_eq!(on_verdict(TransferFrame::Done { id: ID }), Some(End::Done));
        assert_eq!(
            on_verdict(TransferFrame::Failed {
                id: ID,
                reason: "full".into()
            }),
            Some(End::Failed("full".into()))
        );
        assert_eq!(
            on_verdict(TransferFrame::Accept {
                id: ID,
                resume: Vec::new()
            }),
            None
        );
        assert_eq!(End::Expired.outcome().0, TransferState::Expired);
    }
}
