//! Threads for background disk and hashing work (a transfer's reader, verifier, writer and
//! syncer; a share index's walker and hasher). They run at a lower CPU priority than the
//! runtime, so on a busy machine the links and the control socket (chat, events) stay
//! responsive while such work uses what CPU is left.

use std::io;
use std::thread::JoinHandle;

/// Niceness of background threads (the runtime's threads keep 0).
#[cfg(unix)]
const NICE: i32 = 10;

/// Lowers the calling thread's priority. Linux applies a thread id's priority to that thread
/// only. Failing to lower it changes nothing else.
#[cfg(unix)]
fn lower_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE);
}

/// Background threads keep the normal priority off Unix.
#[cfg(not(unix))]
fn lower_priority() {}

/// Starts a named thread at the background priority.
pub fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            lower_priority();
            f();
        })
}
