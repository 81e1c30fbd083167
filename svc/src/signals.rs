//! The signals that stop a daemon: SIGTERM (systemd, `kill`) and SIGINT (ctrl-c); on
//! Windows, ctrl-c and ctrl-break.

#[cfg(unix)]
use tokio::signal::unix::{Signal, SignalKind, signal};
#[cfg(windows)]
use tokio::signal::windows::{CtrlBreak as Signal, CtrlC};

/// Waits for SIGTERM or SIGINT. Install it before the daemon starts: a signal that comes
/// during start-up is then kept for the next [`Stop::wait`] instead of killing the process
/// half-way.
#[derive(Debug)]
pub struct Stop {
    #[cfg(unix)]
    term: Signal,
    #[cfg(unix)]
    int: Signal,
    #[cfg(windows)]
    term: Signal,
    #[cfg(windows)]
    int: CtrlC,
}

#[cfg(windows)]
impl Stop {
    /// Installs the handlers for ctrl-c and ctrl-break.
    pub fn install() -> std::io::Result<Stop> {
        Ok(Stop {
            term: tokio::signal::windows::ctrl_break()?,
            int: tokio::signal::windows::ctrl_c()?,
        })
    }

    /// Returns at the next ctrl-c or ctrl-break (or one received since the last wait).
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(unix)]
impl Stop {
    /// Installs the handlers for both signals.
    pub fn install() -> std::io::Result<Stop> {
        Ok(Stop {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Returns at the next SIGTERM or SIGINT (or one received since the last wait).
    /// Cancel-safe, so it can sit in a `select!` loop.
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::process::{Signal as Sig, getpid, kill_process};
    use std::time::Duration;

    #[tokio::test]
    async fn sigint_and_sigterm_each_end_a_wait() {
        let mut stop = Stop::install().expect("install");
        for sig in [Sig::INT, Sig::TERM] {
            kill_process(getpid(), sig).expect("signal ourselves");
            tokio::time::timeout(Duration::from_secs(60), stop.wait())
                .await
                .unwrap_or_else(|_| panic!("{sig:?} did not end the wait"));
        }
    }
}
