//! Multi-source downloads (design §2 "Shares", multi-source): one content fetched from
//! every peer that holds it. `scheduler.rs` decides which chunk to ask of which source,
//! pure and time passed in; `link.rs` carries its requests on each source's share link;
//! `fetch.rs` drives both, checks each chunk and writes it.

pub mod fetch;
pub mod link;
pub mod scheduler;

#[cfg(test)]
mod scheduler_tests;
