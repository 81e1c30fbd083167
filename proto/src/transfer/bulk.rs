//! The bulk path of the transfer codec: a `Chunk` decoded without copying its data out of the
//! received frame, and a `Chunk` encoded without copying its data into the frame. The bytes on
//! the wire are exactly those of [`frame::encode`] / [`frame::decode`] on a [`TransferFrame`].

use bytes::Bytes;
use serde::Deserialize;

use super::{Manifest, ManifestWire, TransferFrame, TransferId};
use crate::frame::{self, FrameError, HEADER_LEN};

/// Tag byte of [`TransferFrame::Chunk`] (its variant index, a one-byte varint).
const CHUNK_TAG: u32 = 4;

/// A `Chunk` frame's fields after the tag, with the data borrowed from the payload.
#[derive(Deserialize)]
struct ChunkWire<'a> {
    id: TransferId,
    file: u32,
    index: u64,
    #[serde(borrow)]
    data: &'a [u8],
}

/// Tag byte of [`TransferFrame::Offer`].
const OFFER_TAG: u8 = 0;

/// The frame layout of `TransferFrame` reduced to its tag 0, the manifest not yet validated.
#[derive(Deserialize)]
enum OfferWire {
    Offer(ManifestWire),
}

impl TransferFrame {
    /// Decodes one frame's payload (no length prefix), refusing trailing bytes, like
    /// [`frame::decode_payload`]. A `Chunk`'s data is a slice of `payload`, not a copy. An
    /// `Offer` may end with its empty directories (`p2p-bulk/3`, see [`super::dirs`]), which
    /// [`frame::decode_payload`] would refuse as trailing bytes.
    pub fn decode_payload(payload: Bytes) -> Result<TransferFrame, FrameError> {
        if payload.first() == Some(&OFFER_TAG) {
            // The files first, unvalidated: an offer of directories alone has none.
            let (OfferWire::Offer(w), rest) = postcard::take_from_bytes::<OfferWire>(&payload)?;
            let m = Manifest {
                id: w.id,
                files: w.files,
                dirs: super::dirs::trailing(rest)?,
            };
            // Like a manifest refused while decoding: postcard keeps no reason.
            m.validate()
                .map_err(|_| FrameError::Malformed(postcard::Error::SerdeDeCustom))?;
            return Ok(TransferFrame::Offer(m));
        }
        if payload.first().is_some_and(|t| u32::from(*t) == CHUNK_TAG) {
            let (w, rest) = postcard::take_from_bytes::<ChunkWire<'_>>(&payload[1..])?;
            if !rest.is_empty() {
                return Err(FrameError::Trailing { extra: rest.len() });
            }
            return Ok(TransferFrame::Chunk {
                id: w.id,
                file: w.file,
                index: w.index,
                data: payload.slice_ref(w.data),
            });
        }
        frame::decode_payload(&payload)
    }
}

/// The first bytes of the frame of a [`TransferFrame::Chunk`] carrying `len` bytes of data:
/// the length prefix, the tag, `id`, `file`, `index` and the data's length. Followed by the
/// data, they are exactly the frame [`frame::encode`] makes, so a sender can write the data
/// from its own buffer. Fails like [`frame::encode`] when the frame would exceed `max`.
pub fn chunk_frame_head(
    id: TransferId,
    file: u32,
    index: u64,
    len: usize,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    // postcard writes a variant index as a u32 varint and a byte string's length as a usize
    // varint, the same encoding as these integers.
    let mut head = vec![0; HEADER_LEN];
    head = postcard::to_extend(&(CHUNK_TAG, id, file, index, len as u64), head)?;
    let body = head.len() - HEADER_LEN + len;
    if body > max {
        return Err(FrameError::TooLarge { len: body, max });
    }
    let body32 = u32::try_from(body).map_err(|_| FrameError::TooLarge { len: body, max })?;
    head[..HEADER_LEN].copy_from_slice(&body32.to_be_bytes());
    Ok(head)
}
