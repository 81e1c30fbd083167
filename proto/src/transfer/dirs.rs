//! The empty directories of an offer on the wire: in `p2p-bulk/3` a non-empty list of them
//! may follow the files of an `Offer` frame ([`super::Manifest::dirs`]); `p2p-bulk/2` has no
//! such list, and an offer without directories is the same bytes in both.
//!
//! The list is a postcard sequence (varint count, then each path as a string). Its count is
//! checked against [`MAX_DIRS`] before anything is allocated for it.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::MAX_DIRS;
use crate::frame::FrameError;
use crate::share::wire;

/// A list of at most [`MAX_DIRS`] items, refused on its announced count alone when longer.
#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Capped<T>(#[serde(deserialize_with = "wire::seq::<_, _, MAX_DIRS>")] Vec<T>);

/// The directory list that may follow an offer's files: none when `rest` is empty, else the
/// list, which must use up `rest` exactly.
pub(super) fn trailing<T: DeserializeOwned>(rest: &[u8]) -> Result<Vec<T>, FrameError> {
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let (Capped(dirs), extra) = postcard::take_from_bytes::<Capped<T>>(rest)?;
    if !extra.is_empty() {
        return Err(FrameError::Trailing { extra: extra.len() });
    }
    Ok(dirs)
}
