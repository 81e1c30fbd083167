//! p2pd: the per-user peer daemon. It owns the identity, the registration with the tracker,
//! the peer table and the local control socket.
//!
//! Layering, top to bottom: [`daemon`] (start, shutdown) → [`rpc`] (control socket) and
//! [`router`] (peer links by protocol) → services ([`chat`], [`transfer`], [`share`],
//! [`tracker_client`], [`lan`], [`dht`], [`rekey`]) → [`node`] (shared state and events) → leaves ([`link`],
//! [`store`], [`files`], [`peers`], [`backoff`], [`background`], [`tracker_pin`],
//! [`resources`], [`config`]). Nothing below imports anything above, except pure parts of a
//! service: `config` reads the transfer limits' keys and `node` checks handover chains with
//! `rekey::chain`.

pub mod activity;
pub mod background;
pub mod backoff;
pub mod chat;
pub mod config;
pub mod daemon;
pub mod dht;
pub mod files;
mod fsx;
pub mod lan;
pub mod link;
pub mod lookup;
pub mod node;
pub mod own_record;
pub mod peers;
pub mod rekey;
pub mod resources;
pub mod router;
pub mod rpc;
pub mod share;
pub mod state_lock;
pub mod store;
pub mod swarm;
pub mod tracker_client;
pub mod tracker_pin;
pub mod transfer;

pub use config::{Args, Config, ConfigError};
pub use daemon::{Daemon, StartError};
pub use state_lock::{LockError, StateLock};
