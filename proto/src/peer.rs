//! The peer protocol: frames exchanged on a direct, mutually authenticated link between two
//! p2pd. Each side's first frame is a `Hello`. The enum variant index is the frame tag:
//! append new variants at the end and never reorder.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::name::PeerName;

/// Version carried in both `Hello` frames.
pub const PROTOCOL_VERSION: u16 = 1;
/// Cap on any frame on a peer link.
pub const MAX_FRAME: usize = 128 * 1024;
/// Longest chat message text, in bytes of UTF-8.
pub const MAX_TEXT: usize = 64 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

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
