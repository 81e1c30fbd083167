//! Multi-source downloads (design §2 "Shares", multi-source): one content fetched from
//! every peer that holds it. `scheduler.rs` decides which chunk to ask of which source,
//! pure and time passed in; `link.rs` carries its requests on each source's share link;
//! `fetch.rs` drives both, checks each chunk and writes it. `local.rs` takes the chunks
//! already on this machine first; `partial.rs` lists the downloads in progress so the share
//! server can serve their verified chunks.

pub mod fetch;
pub mod link;
pub mod local;
pub mod partial;
pub mod scheduler;

#[cfg(test)]
mod scheduler_tests;
