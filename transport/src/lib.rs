//! TLS 1.3 with Ed25519 raw public keys (RFC 7250) and a framed connection over any stream.
//!
//! Both trackerd and p2pd speak through this crate: [`tls`] builds rustls configurations in
//! which a peer's identity *is* its key, and [`FramedConn`] reads and writes capped
//! length-prefixed frames (see [`proto::frame`]).

pub mod conn;
pub mod lean;
pub mod tls;

pub use conn::{ConnError, FramedConn};
pub use lean::LeanServerStream;
pub use tls::{TlsError, client_config, lean_server_config, peer_id_of, server_config};
