//! Threads that do a transfer's disk and hashing work. They run at a lower CPU priority than
//! the runtime, so on a busy machine the links and the control socket (chat, events) stay
//! responsive while a transfer uses what CPU is left.

use std::thread::JoinHandle;

use super::error::EngineError;

/// Niceness of a transfer's worker threads (the runtime's threads keep 0).
const NICE: i32 = 10;

/// Starts a named thread at the transfer priority.
pub(super) fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, EngineError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // Linux applies a thread id's priority to that thread only. Failing to lower it
            // changes nothing else.
            let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE);
            f();
        })
        .map_err(|source| EngineError::Spawn {
            name: name.into(),
            source,
        })
}
