//! The peer protocol: frames exchanged on a direct, mutually authenticated link between two
//! p2pd. Each side's first frame is a `Hello`. The enum variant index is the frame tag:
//! append new variants at the end and never reorder.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::frame::{self, FrameError};
use crate::name::PeerName;

/// Version carried in both `Hello` frames.
pub const PROTOCOL_VERSION: u16 = 1;
/// Cap on any frame on a peer link.
pub const MAX_FRAME: usize = 128 * 1024;
/// Longest chat message text, in bytes of UTF-8.
pub const MAX_TEXT: usize = 64 * 1024;

/// TLS ALPN name of a chat link, whose frames are [`PeerFrame`]s. A peer that offers no ALPN
/// speaks this protocol.
pub const ALPN_CHAT: &[u8] = b"p2p-chat/1";
/// TLS ALPN name of a bulk link, which carries one file transfer
/// ([`TransferFrame`](crate::transfer::TransferFrame)s after the `Hello` exchange), its
/// chunks verified by their chunk values ([`crate::content`]), its offer carrying the empty
/// directories ([`Manifest::dirs`](crate::transfer::Manifest::dirs)) when it has any.
pub const ALPN_BULK: &[u8] = b"p2p-bulk/3";
/// The bulk protocol before empty directories: the same frames, an offer never followed by
/// directories. A daemon offers [`ALPN_BULK`] and this one, and a receiver that speaks only
/// this one gets the offer without its empty directories.
pub const ALPN_BULK_V2: &[u8] = b"p2p-bulk/2";
/// The bulk protocol of earlier daemons, whose chunks came with plain hashes. This daemon
/// answers its offers only with a `Failed` saying to upgrade.
pub const ALPN_BULK_V1: &[u8] = b"p2p-bulk/1";
/// TLS ALPN name of a share link, which carries requests on another peer's shares
/// ([`share`](crate::share) frames after the `Hello` exchange).
pub const ALPN_SHARE: &[u8] = b"p2p-share/1";
/// Number of [`PeerFrame`] tags this version knows (0 to `KNOWN_TAGS - 1`). A frame with a
/// higher tag comes from a newer peer: it decodes as [`Inbound::Unknown`].
pub const KNOWN_TAGS: u32 = 6;

/// A message's unique id: 16 random bytes, shown as 32 hex characters (JSON carries the
/// hex string, the wire the 16 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 16]);

impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        } else {
            <[u8; 16]>::deserialize(d).map(MessageId)
        }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

/// A message id that is not 32 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a message id (32 hex characters)")]
pub struct BadMessageId;

impl FromStr for MessageId {
    type Err = BadMessageId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Hex digits only: `from_str_radix` alone would take a leading '+'.
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadMessageId);
        }
        let mut out = [0u8; 16];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| BadMessageId)?;
        }
        Ok(Self(out))
    }
}

/// Why a peer would not take a message or a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The `Hello` carried a version this peer does not speak.
    BadVersion,
    /// The sender is blocked by the receiver.
    Blocked,
    /// The name in `Hello` is pinned to another key.
    KeyMismatch,
    /// The message is malformed or too long.
    BadMessage,
    /// The receiver could not store the message; try again later.
    Unavailable,
    /// The sender is over the receiver's message rate: send it again later (the detail gives
    /// the wait in milliseconds, as `retry after N ms`). Messages after it on the link are
    /// put off too, so order is kept.
    Deferred,
    /// The receiver holds as many bytes from the sender as it accepts from a peer it does not
    /// trust; the message is refused for good.
    OverQuota,
}

impl Refusal {
    /// A short human explanation.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::BadVersion => "unsupported protocol version",
            Refusal::Blocked => "the peer has blocked you",
            Refusal::KeyMismatch => "your key does not match the key the peer pinned for your name",
            Refusal::BadMessage => "malformed or over-long message",
            Refusal::Unavailable => "the peer could not store the message",
            Refusal::Deferred => "the peer is receiving too fast from you; it will be sent again",
            Refusal::OverQuota => "the peer holds as much from you as it accepts",
        }
    }
}

/// A chat message as it crosses the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Unique id, chosen by the sender.
    pub id: MessageId,
    /// The sender's sequence number in this conversation, from 1.
    pub seq: u64,
    /// When the sender stored it, Unix milliseconds.
    pub sent_at: u64,
    /// The text, at most [`MAX_TEXT`] bytes.
    pub text: String,
}

/// Frames on a peer link. Variant index = tag byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerFrame {
    /// Tag 0: first frame of each side.
    Hello {
        /// Must be [`PROTOCOL_VERSION`].
        version: u16,
        /// The sender's registered name.
        name: PeerName,
    },
    /// Tag 1: a chat message.
    Message(ChatMessage),
    /// Tag 2: the message is stored on the receiver (sent at most once per arrival).
    Ack {
        /// The message.
        id: MessageId,
    },
    /// Tag 3: the link or a message was refused.
    Refused {
        /// The message, when one message was refused; `None` refuses the link.
        id: Option<MessageId>,
        /// Why.
        reason: Refusal,
        /// Human detail.
        detail: String,
    },
    /// Tag 4: keepalive; answer with `Pong`.
    Ping {
        /// Echoed.
        nonce: u64,
    },
    /// Tag 5: answer to `Ping`.
    Pong {
        /// Echoed.
        nonce: u64,
    },
}

/// One payload read off a peer link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A frame this version knows.
    Frame(PeerFrame),
    /// A frame whose tag is past the known ones (a newer peer's); its body is not read.
    /// A chat link answers it with `Refused { id: None, reason: BadMessage }` and stays up.
    Unknown {
        /// The frame's tag.
        tag: u32,
    },
}

impl PeerFrame {
    /// Decodes one whole payload (no length prefix). A payload whose tag is a valid varint
    /// past [`KNOWN_TAGS`] is [`Inbound::Unknown`]; anything else that does not decode as a
    /// [`PeerFrame`], trailing bytes included, is an error. Never panics.
    pub fn decode(payload: &[u8]) -> Result<Inbound, FrameError> {
        let (tag, _) = postcard::take_from_bytes::<u32>(payload)?;
        if tag >= KNOWN_TAGS {
            return Ok(Inbound::Unknown { tag });
        }
        frame::decode_payload(payload).map(Inbound::Frame)
    }

    /// The frame's tag (its variant index, the first byte on the wire).
    pub fn tag(&self) -> u32 {
        match self {
            PeerFrame::Hello { .. } => 0,
            PeerFrame::Message(_) => 1,
            PeerFrame::Ack { .. } => 2,
            PeerFrame::Refused { .. } => 3,
            PeerFrame::Ping { .. } => 4,
            PeerFrame::Pong { .. } => 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(f: &PeerFrame) -> Vec<u8> {
        postcard::to_allocvec(f).unwrap()
    }

    #[test]
    fn frames_have_pinned_bytes() {
        let id = MessageId([0xab; 16]);
        let cases: [(PeerFrame, Vec<u8>); 8] = [
            (
                PeerFrame::Hello {
                    version: 1,
                    name: PeerName::new("bob").unwrap(),
                },
                vec![0, 1, 3, b'b', b'o', b'b'],
            ),
            (
                PeerFrame::Message(ChatMessage {
                    id,
                    seq: 300,
                    sent_at: 5,
                    text: "hi".into(),
                }),
                [&[1u8][..], &[0xab; 16], &[0xac, 0x02, 5, 2, b'h', b'i']].concat(),
            ),
            (PeerFrame::Ack { id }, [&[2u8][..], &[0xab; 16]].concat()),
            (
                PeerFrame::Refused {
                    id: None,
                    reason: Refusal::BadMessage,
                    detail: "x".into(),
                },
                vec![3, 0, 3, 1, b'x'],
            ),
            (
                PeerFrame::Refused {
                    id: Some(id),
                    reason: Refusal::OverQuota,
                    detail: String::new(),
                },
                [&[3u8, 1][..], &[0xab; 16], &[6, 0]].concat(),
            ),
            (
                PeerFrame::Refused {
                    id: Some(id),
                    reason: Refusal::Deferred,
                    detail: "retry after 9 ms".into(),
                },
                [&[3u8, 1][..], &[0xab; 16], &[5, 16], b"retry after 9 ms"].concat(),
            ),
            (PeerFrame::Ping { nonce: 7 }, vec![4, 7]),
            (PeerFrame::Pong { nonce: 128 }, vec![5, 0x80, 0x01]),
        ];
        for (frame, bytes) in cases {
            assert_eq!(payload(&frame), bytes, "{frame:?}");
            assert_eq!(bytes[0] as u32, frame.tag(), "{frame:?}");
            assert_eq!(PeerFrame::decode(&bytes).unwrap(), Inbound::Frame(frame));
        }
    }

    #[test]
    fn tags_past_the_known_ones_are_unknown_not_garbage() {
        // The highest known tag is the last one, and the next one is unknown.
        assert_eq!(PeerFrame::Pong { nonce: 0 }.tag(), KNOWN_TAGS - 1);
        for (bytes, tag) in [
            (vec![6u8], 6),
            (vec![6, 1, 2, 3], 6),
            (vec![0x7f], 127),
            (vec![0xc8, 0x01, 0xff], 200),
            (vec![0xff, 0xff, 0xff, 0xff, 0x0f], u32::MAX),
        ] {
            assert_eq!(
                PeerFrame::decode(&bytes).unwrap(),
                Inbound::Unknown { tag },
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for bytes in [
            &[][..],
            // A tag that is not a varint of a u32.
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0x80],
            // Known tags with bodies that do not decode.
            &[1, 0xab],
            &[3, 0, 9, 0],
            &[4],
            // Trailing bytes after a whole frame.
            &[4, 7, 0],
        ] {
            assert!(PeerFrame::decode(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn message_ids_print_and_parse() {
        let id = MessageId([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_eq!(id.to_string().parse::<MessageId>().unwrap(), id);
        assert!("zz".repeat(16).parse::<MessageId>().is_err());
        assert!("ab".parse::<MessageId>().is_err());
        assert!("é".repeat(16).parse::<MessageId>().is_err());
        assert!("+f".repeat(16).parse::<MessageId>().is_err());
    }
}
