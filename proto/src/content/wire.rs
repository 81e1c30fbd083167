//! The wire form of a chunk list: [`ChunkCvs`], a run of consecutive chunk values, as a frame
//! payload. A file of more than [`MAX_CVS_PER_FRAME`] chunks (16 GiB) sends its list in
//! several runs.

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::{CHUNK, ChunkCv, chunk_count};
use crate::frame::{self, FrameError};

/// Most chunk values in one [`ChunkCvs`]: 16,384 (512 KiB of values, 16 GiB of file).
pub const MAX_CVS_PER_FRAME: usize = 16 * 1024;

/// Largest encoded [`ChunkCvs`]: `first` (a varint of at most 10 bytes), the count (a varint
/// of at most 3 bytes) and the values.
pub const MAX_CHUNK_CVS_PAYLOAD: usize = 10 + 3 + 32 * MAX_CVS_PER_FRAME;

/// Most chunks a file can have: `chunk_count(u64::MAX)`, 2^44.
const MAX_CHUNKS: u64 = u64::MAX / CHUNK + 1;

/// The values of chunks `first .. first + cvs.len()` of one file, in order.
///
/// Postcard encoding (the payload of a frame): `first` as a varint, then the count as a
/// varint, then 32 bytes per value. JSON: `{"first":0,"cvs":["<64 hex>",...]}`.
/// Decoding refuses more than [`MAX_CVS_PER_FRAME`] values before reserving space for them,
/// and indices past the last chunk a file can have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ChunkCvsWire")]
pub struct ChunkCvs {
    /// Index of the chunk the first value belongs to.
    pub first: u64,
    /// One value per chunk, at most [`MAX_CVS_PER_FRAME`]; `first + cvs.len()` is at most
    /// `chunk_count(u64::MAX)`.
    pub cvs: Vec<ChunkCv>,
}

/// A [`ChunkCvs`] as decoded, before the range check.
#[derive(Deserialize)]
struct ChunkCvsWire {
    first: u64,
    #[serde(deserialize_with = "capped_cvs")]
    cvs: Vec<ChunkCv>,
}

/// A run that ends past the last chunk any file can have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chunk values {first}.. (+{count}) run past the last chunk a file can have")]
struct BadRange {
    first: u64,
    count: usize,
}

impl TryFrom<ChunkCvsWire> for ChunkCvs {
    type Error = BadRange;
    fn try_from(w: ChunkCvsWire) -> Result<Self, BadRange> {
        let run = ChunkCvs {
            first: w.first,
            cvs: w.cvs,
        };
        if run.end().is_none() {
            return Err(BadRange {
                first: run.first,
                count: run.cvs.len(),
            });
        }
        Ok(run)
    }
}

/// The list of values, refused as soon as its announced length passes the cap.
fn capped_cvs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ChunkCv>, D::Error> {
    struct Capped;

    impl<'de> Visitor<'de> for Capped {
        type Value = Vec<ChunkCv>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "at most {MAX_CVS_PER_FRAME} chunk values")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let hint = seq.size_hint().unwrap_or(0);
            if hint > MAX_CVS_PER_FRAME {
                return Err(serde::de::Error::invalid_length(hint, &self));
            }
            let mut out = Vec::with_capacity(hint);
            while let Some(cv) = seq.next_element::<ChunkCv>()? {
                if out.len() == MAX_CVS_PER_FRAME {
                    return Err(serde::de::Error::invalid_length(out.len() + 1, &self));
                }
                out.push(cv);
            }
            Ok(out)
        }
    }

    d.deserialize_seq(Capped)
}

impl ChunkCvs {
    /// One past the index of the last chunk covered, if that is within a file's reach.
    pub fn end(&self) -> Option<u64> {
        self.first
            .checked_add(self.cvs.len() as u64)
            .filter(|end| *end <= MAX_CHUNKS)
    }

    /// `cvs` (a whole file's list) cut into runs of at most [`MAX_CVS_PER_FRAME`], in order.
    /// An empty list gives no run.
    pub fn runs(cvs: &[ChunkCv]) -> impl Iterator<Item = ChunkCvs> + '_ {
        cvs.chunks(MAX_CVS_PER_FRAME)
            .zip((0u64..).step_by(MAX_CVS_PER_FRAME))
            .map(|(run, first)| ChunkCvs {
                first,
                cvs: run.to_vec(),
            })
    }

    /// The postcard payload.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let out = postcard::to_stdvec(self)?;
        if out.len() > MAX_CHUNK_CVS_PAYLOAD {
            return Err(FrameError::TooLarge {
                len: out.len(),
                max: MAX_CHUNK_CVS_PAYLOAD,
            });
        }
        Ok(out)
    }

    /// Decodes a whole payload (no trailing bytes). Never panics, whatever `payload` holds.
    pub fn decode(payload: &[u8]) -> Result<Self, FrameError> {
        if payload.len() > MAX_CHUNK_CVS_PAYLOAD {
            return Err(FrameError::TooLarge {
                len: payload.len(),
                max: MAX_CHUNK_CVS_PAYLOAD,
            });
        }
        frame::decode_payload(payload)
    }

    /// Whether this run can belong to a file of `len` bytes: it ends within its chunks.
    pub fn fits(&self, len: u64) -> bool {
        self.end().is_some_and(|end| end <= chunk_count(len))
    }
}
