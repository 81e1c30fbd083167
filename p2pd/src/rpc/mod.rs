//! The local control socket: JSON-RPC 2.0, one object per line (see `docs/rpc.md`).
//!
//! [`server`] owns the socket and the per-connection loop; [`dispatch`] maps each
//! [`proto::api::Call`] onto the services. Services never see JSON-RPC.

pub mod dispatch;
pub mod lines;
#[cfg(windows)]
mod pipe;
pub mod server;
