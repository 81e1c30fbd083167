//! The share protocol `p2p-share/1`, the pure part (design §2 "Shares: the file system"):
//! the frames a peer sends to read and write another peer's shares, and the rules by which
//! the owner's daemon decides whether a request may be served ([`rules`]). Nothing here
//! touches a file or a socket.
//!
//! A share link is a peer link negotiated with the ALPN name [`ALPN`]. After the `Hello`
//! exchange the dialling side sends [`RequestFrame`]s and the serving side answers each with
//! one [`ResponseFrame`] carrying the same [`RequestId`]. Requests may be pipelined: a
//! client sends several before the first answer, and answers may come in any order.
//!
//! The server reads each payload with [`RequestFrame::decode`], which never fails once the
//! request id is read: a request of an unknown tag (from a newer client) or with a body that
//! does not decode (a hostile path, an over-long list) becomes an [`Incoming`] the server
//! answers with [`ErrorKind::Invalid`], and the link stays up.

mod names;
mod request;
mod response;
pub mod rules;
pub(crate) mod wire;

pub use names::{ContentId, EntryName, NameError, ShareName};
pub use request::{Cursor, HaveQuery, Incoming, KNOWN_REQUESTS, Request, RequestFrame};
pub use response::{
    Bitfield, Entry, EntryKind, ErrorKind, ErrorText, ManifestPage, Page, Response, ResponseFrame,
    ShareError, ShareInfo, VersionInfo,
};
pub use rules::Access;

use std::fmt;

use serde::{Deserialize, Serialize};

/// TLS ALPN name of a share link, whose frames are [`RequestFrame`]s from the dialler and
/// [`ResponseFrame`]s from the server. The protocol is versioned by this name: an
/// incompatible change gets a new one (`p2p-share/2`).
pub const ALPN: &[u8] = crate::peer::ALPN_SHARE;
/// Cap on any frame on a share link: one full [`Response::Chunk`] plus room for its header.
pub const MAX_FRAME: usize = CHUNK as usize + 4096;
/// Chunk size: 1 MiB, as in transfers. Every chunk but a file's last is this long.
pub const CHUNK: u64 = crate::transfer::CHUNK;
/// Most entries in one [`Page`] of a listing; a larger `limit` is served as this many.
pub const MAX_PAGE: usize = 1024;
/// Longest page cursor, in bytes.
pub const MAX_CURSOR: usize = 256;
/// Most chunk chaining values in one [`ManifestPage`] (512 KiB of them); a longer file's
/// manifest is read in several pages.
pub const MAX_CVS_PER_PAGE: usize = 16 * 1024;
/// Most content ids in one [`HaveQuery::Ids`].
pub const MAX_HAVE_IDS: usize = 4096;
/// Most bits in one [`Bitfield`] (and chunks in one [`HaveQuery::Chunks`]): 128 KiB of bits.
pub const MAX_HAVE_BITS: u32 = 1 << 20;
/// Most shares in one [`Response::Shares`].
pub const MAX_SHARES: usize = 1024;
/// Most versions in one [`Response::Versions`].
pub const MAX_VERSIONS: usize = 1024;
/// Longest share name, in bytes of UTF-8.
pub const MAX_SHARE_NAME: usize = 64;
/// Longest error message, in bytes of UTF-8.
pub const MAX_ERROR_TEXT: usize = 1024;

/// A request's id, chosen by the client, unique among its requests still unanswered on the
/// link; the response to the request carries it back.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}
