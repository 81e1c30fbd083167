//! The receiver's rules, one hostile sender at a time (docs/hostile-inputs.md).

use bytes::Bytes;
use proto::api::TransferState;
use proto::transfer::{CHUNK, FileEntry, FileResume, RelPath, TransferFrame, TransferId};

use super::{Receiver, Step, Violation};
use crate::transfer::sink::Job;

const ID: TransferId = TransferId([7; 16]);
const H: [u8; 32] = [1; 32];

fn entry(path: &str, size: u64) -> FileEntry {
    FileEntry {
        path: RelPath::new(path).expect("path"),
        size,
        hash: [0; 32],
    }
}

/// `a.bin` of two and a half chunks, `b.bin` of 3,000 bytes, an empty `c.bin`.
fn files() -> Vec<FileEntry> {
    vec![
        entry("a.bin", 2 * CHUNK + CHUNK / 2),
        entry("b.bin", 3000),
        entry("c.bin", 0),
    ]
}

fn hashes(file: u32, first: u64, n: usize) -> TransferFrame {
    TransferFrame::ChunkHashes {
        id: ID,
        file,
        first,
        hashes: vec![H; n],
    }
}

fn chunk(file: u32, index: u64, len: u64) -> TransferFrame {
    TransferFrame::Chunk {
        id: ID,
        file,
        index,
        data: Bytes::from(vec![0u8; len as usize]),
    }
}

fn file_done(file: u32) -> TransferFrame {
    TransferFrame::FileDone { id: ID, file }
}

/// Sends file `file` whole (hash, chunk, ..., `FileDone`) and checks each step.
fn send_whole(r: &mut Receiver<'_>, files: &[FileEntry], file: u32) {
    let f = &files[file as usize];
    for index in 0..f.chunk_count() {
        assert!(matches!(r.step(hashes(file, index, 1)), Ok(Step::Ignore)));
        let (offset, len) = f.chunk_range(index).expect("range");
        match r.step(chunk(file, index, len)) {
            Ok(Step::Queue(Job::Chunk {
                file: got,
                index: i,
                offset: o,
                data,
                want,
            })) => {
                assert_eq!(
                    (got, i, o, data.len() as u64, want),
                    (file, index, offset, len, H)
                );
            }
            other => panic!("chunk {index}: {other:?}"),
        }
    }
    assert!(matches!(
        r.step(file_done(file)),
        Ok(Step::Queue(Job::FileDone { file: f })) if f == file
    ));
}

#[test]
fn an_honest_sender_is_queued_in_order_and_done_ends_it() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    assert_eq!(r.done_bytes(), 0);
    for file in 0..3 {
        assert!(!r.complete());
        send_whole(&mut r, &files, file);
    }
    // A repeated FileDone changes nothing.
    assert!(matches!(r.step(file_done(1)), Ok(Step::Ignore)));
    assert!(matches!(
        r.step(TransferFrame::Done { id: ID }),
        Ok(Step::Done)
    ));
}

#[test]
fn resume_positions_come_from_what_is_held_and_are_capped_at_the_file() {
    let files = files();
    // a.bin holds 1 chunk, b.bin claims more chunks than it has, c.bin is finished.
    let r = Receiver::new(ID, &files, &[(1, false), (9, false), (0, true)]);
    let resume = r.resume();
    assert_eq!(
        resume,
        vec![
            FileResume {
                file: 0,
                verified_chunks: 1
            },
            FileResume {
                file: 1,
                verified_chunks: 1
            },
            FileResume {
                file: 2,
                verified_chunks: 0
            },
        ]
    );
    assert_eq!(r.done_bytes(), CHUNK + 3000);
    assert!(!r.complete());

    // The next chunk of a.bin is 1: chunk 0 again is refused.
    let mut r = r;
    assert!(matches!(r.step(hashes(0, 0, 2)), Ok(Step::Ignore)));
    assert_eq!(
        r.step(chunk(0, 0, CHUNK)).unwrap_err(),
        Violation::OutOfOrder {
            path: "a.bin".into(),
            index: 0,
            expected: 1
        }
    );
    let mut r = Receiver::new(ID, &files, &[(1, false), (9, false), (0, true)]);
    assert!(matches!(r.step(hashes(0, 1, 2)), Ok(Step::Ignore)));
    assert!(matches!(
        r.step(chunk(0, 1, CHUNK)),
        Ok(Step::Queue(Job::Chunk {
            index: 1,
            offset: CHUNK,
            ..
        }))
    ));
    // b.bin is whole on disk but not finished: only its FileDone is missing.
    assert!(matches!(
        r.step(file_done(1)),
        Ok(Step::Queue(Job::FileDone { file: 1 }))
    ));
}

#[test]
fn an_extra_chunk_after_the_last_fails() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    send_whole(&mut r, &files, 1);
    assert!(matches!(r.step(hashes(1, 1, 1)), Ok(Step::Ignore)));
    assert_eq!(
        r.step(chunk(1, 1, 17)).unwrap_err(),
        Violation::OutOfOrder {
            path: "b.bin".into(),
            index: 1,
            expected: 1
        }
    );
    // Before FileDone, the chunk past the end is refused as such.
    let mut r = Receiver::new(ID, &files, &[(0, false), (1, false)]);
    assert!(matches!(r.step(hashes(1, 1, 1)), Ok(Step::Ignore)));
    assert_eq!(
        r.step(chunk(1, 1, 17)).unwrap_err(),
        Violation::PastEnd {
            path: "b.bin".into()
        }
    );
}

#[test]
fn a_chunk_longer_or_shorter_than_its_place_fails() {
    let files = files();
    for (file, index, len, announced) in [
        (1, 0, 3001, 3000),
        (1, 0, 2999, 3000),
        (0, 0, CHUNK - 1, CHUNK),
    ] {
        let mut r = Receiver::new(ID, &files, &[]);
        assert!(matches!(r.step(hashes(file, index, 1)), Ok(Step::Ignore)));
        assert_eq!(
            r.step(chunk(file, index, len)).unwrap_err(),
            Violation::WrongLength {
                path: files[file as usize].path.to_string(),
                index,
                len,
                announced
            }
        );
    }
    // A full chunk where the last, shorter one belongs.
    let mut r = Receiver::new(ID, &files, &[(2, false)]);
    assert!(matches!(r.step(hashes(0, 2, 1)), Ok(Step::Ignore)));
    assert!(matches!(
        r.step(chunk(0, 2, CHUNK)),
        Err(Violation::WrongLength { announced, .. }) if announced == CHUNK / 2
    ));
}

#[test]
fn an_early_file_done_or_done_fails() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    assert!(matches!(r.step(hashes(0, 0, 1)), Ok(Step::Ignore)));
    assert!(matches!(r.step(chunk(0, 0, CHUNK)), Ok(Step::Queue(_))));
    assert_eq!(
        r.step(file_done(0)).unwrap_err(),
        Violation::EarlyFileDone {
            path: "a.bin".into()
        }
    );
    let mut r = Receiver::new(ID, &files, &[]);
    send_whole(&mut r, &files, 0);
    send_whole(&mut r, &files, 2);
    assert_eq!(
        r.step(TransferFrame::Done { id: ID }).unwrap_err(),
        Violation::EarlyDone
    );
}

#[test]
fn hash_indexes_past_u64_fail() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    assert_eq!(
        r.step(hashes(0, u64::MAX, 2)).unwrap_err(),
        Violation::HashIndexOverflow
    );
    // The last index itself is allowed (and then has no place in any file).
    let mut r = Receiver::new(ID, &files, &[]);
    assert!(matches!(r.step(hashes(0, u64::MAX, 1)), Ok(Step::Ignore)));
}

#[test]
fn unknown_files_fail() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    assert_eq!(
        r.step(chunk(7, 0, 3000)).unwrap_err(),
        Violation::UnknownChunkFile { file: 7 }
    );
    assert_eq!(
        r.step(file_done(3)).unwrap_err(),
        Violation::UnknownFile { file: 3 }
    );
    assert_eq!(
        r.step(hashes(u32::MAX, 0, 1)).unwrap_err(),
        Violation::UnknownFile { file: u32::MAX }
    );
}

#[test]
fn a_chunk_needs_its_own_hash_first() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    let missing = Violation::NoHash {
        path: "b.bin".into(),
        index: 0,
    };
    assert_eq!(r.step(chunk(1, 0, 3000)).unwrap_err(), missing);
    // A hash for the same index of another file is not its hash.
    let mut r = Receiver::new(ID, &files, &[]);
    assert!(matches!(r.step(hashes(0, 0, 1)), Ok(Step::Ignore)));
    assert_eq!(r.step(chunk(1, 0, 3000)).unwrap_err(), missing);
    // Hashes of other chunks do not cover it either.
    let mut r = Receiver::new(ID, &files, &[]);
    assert!(matches!(r.step(hashes(1, 1, 4)), Ok(Step::Ignore)));
    assert_eq!(r.step(chunk(1, 0, 3000)).unwrap_err(), missing);
}

#[test]
fn frames_of_another_transfer_or_of_the_receiver_fail() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    assert_eq!(
        r.step(TransferFrame::Done {
            id: TransferId([8; 16])
        })
        .unwrap_err(),
        Violation::OtherTransfer
    );
    for f in [
        TransferFrame::Accept {
            id: ID,
            resume: Vec::new(),
        },
        TransferFrame::Decline {
            id: ID,
            reason: "no".into(),
        },
    ] {
        assert_eq!(r.step(f).unwrap_err(), Violation::Unexpected);
    }
}

#[test]
fn the_sender_ending_the_transfer_is_reported_with_its_reason() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    assert!(matches!(
        r.step(TransferFrame::Cancel { id: ID, reason: "bye".into() }),
        Ok(Step::Ended(TransferState::Cancelled, reason)) if reason == "bye"
    ));
    assert!(matches!(
        r.step(TransferFrame::Failed { id: ID, reason: "disk".into() }),
        Ok(Step::Ended(TransferState::Failed, reason)) if reason == "disk"
    ));
}
