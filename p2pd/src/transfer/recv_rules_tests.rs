//! The receiver's rules, one hostile sender at a time (docs/hostile-inputs.md).

use bytes::Bytes;
use proto::api::TransferState;
use proto::content::{ChunkCv, ChunkCvs, ChunkList, ContentId};
use proto::transfer::{CHUNK, FileEntry, FileResume, RelPath, TransferFrame, TransferId};

use super::{Receiver, Step, Violation};
use crate::transfer::sink::Job;

const ID: TransferId = TransferId([7; 16]);

/// The bytes of a file of `size` bytes named by `seed`.
fn data(seed: u8, size: u64) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn entry(path: &str, seed: u8, size: u64) -> FileEntry {
    FileEntry {
        path: RelPath::new(path).expect("path"),
        size,
        hash: ContentId::of(&data(seed, size)).0,
    }
}

/// `a.bin` of two and a half chunks, `b.bin` of 3,000 bytes, an empty `c.bin`.
fn files() -> Vec<FileEntry> {
    vec![
        entry("a.bin", 1, 2 * CHUNK + CHUNK / 2),
        entry("b.bin", 2, 3000),
        entry("c.bin", 3, 0),
    ]
}

/// The chunk values of file `file` of [`files`].
fn list(file: u32) -> Vec<ChunkCv> {
    let f = &files()[file as usize];
    ChunkList::of(&data(file as u8 + 1, f.size)).cvs().to_vec()
}

fn cvs(file: u32, first: u64, cvs: Vec<ChunkCv>) -> TransferFrame {
    TransferFrame::ChunkCvs {
        id: ID,
        file,
        run: ChunkCvs { first, cvs },
    }
}

/// File `file`'s whole list of values, in one run.
fn all_cvs(file: u32) -> TransferFrame {
    cvs(file, 0, list(file))
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

/// Sends file `file` whole (its values, chunk, ..., `FileDone`) and checks each step.
fn send_whole(r: &mut Receiver<'_>, files: &[FileEntry], file: u32) {
    let f = &files[file as usize];
    let values = list(file);
    if f.size > 0 {
        assert!(matches!(r.step(all_cvs(file)), Ok(Step::Ignore)));
    }
    for index in 0..f.chunk_count() {
        let (offset, len) = f.chunk_range(index).expect("range");
        match r.step(chunk(file, index, len)) {
            Ok(Step::Queue(Job::Chunk {
                file: got,
                index: i,
                offset: o,
                data,
                want,
                only,
            })) => {
                assert_eq!(
                    (got, i, o, data.len() as u64, want, only),
                    (
                        file,
                        index,
                        offset,
                        len,
                        values[index as usize],
                        values.len() == 1
                    )
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

    // The next chunk of a.bin is 1: once its values are whole, the chunk held is checked
    // against them (once), and chunk 0 again is refused.
    let mut r = r;
    assert!(matches!(
        r.step(all_cvs(0)),
        Ok(Step::Queue(Job::Recheck { file: 0, chunks: 1, list: l })) if l.cvs() == list(0).as_slice()
    ));
    assert!(matches!(r.step(all_cvs(0)), Ok(Step::Ignore)));
    assert_eq!(
        r.step(chunk(0, 0, CHUNK)).unwrap_err(),
        Violation::OutOfOrder {
            path: "a.bin".into(),
            index: 0,
            expected: 1
        }
    );
    // Resumed mid-file: the whole list still comes first, and the rest of the chunks are
    // each given their own value.
    let mut r = Receiver::new(ID, &files, &[(1, false), (9, false), (0, true)]);
    assert!(matches!(
        r.step(all_cvs(0)),
        Ok(Step::Queue(Job::Recheck { .. }))
    ));
    for index in 1..3 {
        let len = files[0].chunk_range(index).expect("range").1;
        assert!(matches!(
            r.step(chunk(0, index, len)),
            Ok(Step::Queue(Job::Chunk { index: i, offset, want, only: false, .. }))
                if i == index && offset == index * CHUNK && want == list(0)[index as usize]
        ));
    }
    assert!(matches!(
        r.step(file_done(0)),
        Ok(Step::Queue(Job::FileDone { file: 0 }))
    ));
    // b.bin is whole on disk but not finished: only its FileDone is missing.
    assert!(matches!(
        r.step(file_done(1)),
        Ok(Step::Queue(Job::FileDone { file: 1 }))
    ));
}

#[test]
fn a_resumed_file_without_its_values_is_refused() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[(1, false)]);
    // Only the values of the chunks still to come: the list cannot be checked.
    assert!(matches!(
        r.step(cvs(0, 1, list(0)[1..].to_vec())),
        Err(Violation::ValuesOutOfOrder {
            first: 1,
            expected: 0,
            ..
        })
    ));
}

#[test]
fn values_that_do_not_add_up_to_the_content_id_are_refused_before_any_chunk() {
    let files = files();
    let want = Violation::ValuesMismatch {
        path: "a.bin".into(),
        id: files[0].content_id(),
    };
    // One value changed.
    let mut bad = list(0);
    bad[1].0[0] ^= 1;
    let mut r = Receiver::new(ID, &files, &[]);
    assert_eq!(r.step(cvs(0, 0, bad)).unwrap_err(), want);
    // Another file's values, of the right count.
    let mut r = Receiver::new(ID, &files, &[]);
    let other = ChunkList::of(&data(9, files[0].size)).cvs().to_vec();
    assert_eq!(r.step(cvs(0, 0, other)).unwrap_err(), want);
    // Right values, split in two runs: taken; a run that skips or repeats: refused.
    let mut r = Receiver::new(ID, &files, &[]);
    assert!(matches!(
        r.step(cvs(0, 0, list(0)[..1].to_vec())),
        Ok(Step::Ignore)
    ));
    assert!(matches!(
        r.step(cvs(0, 2, list(0)[2..].to_vec())),
        Err(Violation::ValuesOutOfOrder {
            first: 2,
            expected: 1,
            ..
        })
    ));
    let mut r = Receiver::new(ID, &files, &[]);
    assert!(matches!(
        r.step(cvs(0, 0, list(0)[..1].to_vec())),
        Ok(Step::Ignore)
    ));
    assert!(matches!(
        r.step(cvs(0, 1, list(0)[1..].to_vec())),
        Ok(Step::Ignore)
    ));
    assert!(matches!(r.step(chunk(0, 0, CHUNK)), Ok(Step::Queue(_))));
    // A one-chunk file: its one value is its content id.
    let mut r = Receiver::new(ID, &files, &[]);
    assert_eq!(list(1), vec![ChunkCv(files[1].hash)]);
    assert_eq!(
        r.step(cvs(1, 0, vec![ChunkCv([5; 32])])).unwrap_err(),
        Violation::ValuesMismatch {
            path: "b.bin".into(),
            id: files[1].content_id()
        }
    );
    // An empty file whose id is not that of nothing.
    let mut lie = files.clone();
    lie[2].hash = [4; 32];
    let mut r = Receiver::new(ID, &lie, &[]);
    assert_eq!(
        r.step(file_done(2)).unwrap_err(),
        Violation::ValuesMismatch {
            path: "c.bin".into(),
            id: lie[2].content_id()
        }
    );
}

#[test]
fn values_past_the_end_of_the_file_are_refused() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    assert_eq!(
        r.step(cvs(1, 0, vec![ChunkCv([0; 32]); 2])).unwrap_err(),
        Violation::ValuesPastEnd {
            path: "b.bin".into()
        }
    );
    let mut r = Receiver::new(ID, &files, &[]);
    assert_eq!(
        r.step(cvs(0, u64::MAX >> 21, vec![ChunkCv([0; 32])]))
            .unwrap_err(),
        Violation::ValuesPastEnd {
            path: "a.bin".into()
        }
    );
    let mut r = Receiver::new(ID, &files, &[]);
    assert_eq!(
        r.step(cvs(2, 0, vec![ChunkCv([0; 32])])).unwrap_err(),
        Violation::ValuesPastEnd {
            path: "c.bin".into()
        }
    );
}

#[test]
fn an_extra_chunk_after_the_last_fails() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    send_whole(&mut r, &files, 1);
    assert!(matches!(r.step(all_cvs(1)), Ok(Step::Ignore)));
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
    assert!(matches!(
        r.step(all_cvs(1)),
        Ok(Step::Queue(Job::Recheck {
            file: 1,
            chunks: 1,
            ..
        }))
    ));
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
        assert!(matches!(r.step(all_cvs(file)), Ok(Step::Ignore)));
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
    assert!(matches!(
        r.step(all_cvs(0)),
        Ok(Step::Queue(Job::Recheck {
            file: 0,
            chunks: 2,
            ..
        }))
    ));
    assert!(matches!(
        r.step(chunk(0, 2, CHUNK)),
        Err(Violation::WrongLength { announced, .. }) if announced == CHUNK / 2
    ));
}

#[test]
fn an_early_file_done_or_done_fails() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    assert!(matches!(r.step(all_cvs(0)), Ok(Step::Ignore)));
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
        r.step(cvs(u32::MAX, 0, Vec::new())).unwrap_err(),
        Violation::UnknownFile { file: u32::MAX }
    );
}

#[test]
fn a_chunk_needs_its_files_checked_values_first() {
    let files = files();
    let mut r = Receiver::new(ID, &files, &[]);
    let missing = Violation::NoHash {
        path: "b.bin".into(),
        index: 0,
    };
    assert_eq!(r.step(chunk(1, 0, 3000)).unwrap_err(), missing);
    // The values of another file are not its values.
    let mut r = Receiver::new(ID, &files, &[]);
    assert!(matches!(r.step(all_cvs(0)), Ok(Step::Ignore)));
    assert_eq!(r.step(chunk(1, 0, 3000)).unwrap_err(), missing);
    // Part of a list does not cover a chunk, even one it lists.
    let mut r = Receiver::new(ID, &files, &[]);
    assert!(matches!(
        r.step(cvs(0, 0, list(0)[..2].to_vec())),
        Ok(Step::Ignore)
    ));
    assert_eq!(
        r.step(chunk(0, 0, CHUNK)).unwrap_err(),
        Violation::NoHash {
            path: "a.bin".into(),
            index: 0
        }
    );
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
