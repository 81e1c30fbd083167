//! The shared protocol crate: identities, names, content ids, wire messages, the frame codec
//! and the JSON-RPC types spoken between `p2pd` and `p2pctl`.
//!
//! Everything here is pure: no sockets, no files, no runtime. Decoders cap sizes before they
//! allocate and return errors (never panic) on any input.

pub mod addr_record;
pub mod api;
pub mod content;
pub mod frame;
pub mod identity;
pub mod lines;
pub mod name;
pub mod paths;
pub mod peer;
pub mod peer_ref;
pub mod reach;
pub mod rpc;
pub mod share;
pub mod text;
pub mod timefmt;
pub mod tracker;
pub mod transfer;

pub use identity::{KeyBytes, PeerId, SecretKey, Signature};
pub use name::PeerName;
