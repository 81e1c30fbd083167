//! Threads that do a transfer's disk and hashing work, at the background priority
//! ([`crate::background`]).

use std::thread::JoinHandle;

use super::error::EngineError;

/// Starts a named thread at the background priority.
pub(super) fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, EngineError> {
    crate::background::spawn(name, f).map_err(|source| EngineError::Spawn {
        name: name.into(),
        source,
    })
}
