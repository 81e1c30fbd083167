//! trackerd: the registry service. Peers register signed records over TLS and learn about
//! each other; the tracker never carries files or messages.
//!
//! Layering, top to bottom: [`server`] (start, accept, shutdown) → [`conn`] (one peer's
//! connection, and [`link`]: its handle at the hub) → [`state`] (shared state behind one lock, with [`events`]: who hears of which change) → [`registry`] (the rules, pure),
//! [`store`] (SQLite, schema in [`migrations`]; new bindings synced in batches by [`group_sync`]), [`admin`] (the operator's socket), [`limits`] (caps and rates), [`config`].

pub mod admin;
pub mod config;
pub mod conn;
pub mod events;
pub mod group_sync;
pub mod limits;
pub mod link;
pub mod migrations;
pub mod registry;
pub mod server;
pub mod state;
pub mod store;

pub use config::{Args, Command, Config, ConfigError};
pub use server::{StartError, Tracker};
