//! Multi-source downloads (design §2 "Shares", multi-source): one content fetched from
//! every peer that holds it. `scheduler.rs` decides which chunk to ask of which source,
//! pure and time passed in.

pub mod scheduler;

#[cfg(test)]
mod scheduler_tests;
