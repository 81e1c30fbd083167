//! Starting `trackerd` and two `p2pd` (alice and bob) in a temporary directory with
//! [`bench::net`], as chat-latency does (no pinning here), each with its own state, socket
//! and download directory.

use std::path::{Path, PathBuf};

use bench::net::{Net, Peer};

/// trackerd with alice and bob registered at it.
pub struct Cluster {
    /// The tracker, and what it takes to start a peer again.
    net: Net,
    /// The sender.
    pub alice: Peer,
    /// The receiver.
    pub bob: Peer,
    /// Where their files (and stderr logs) are.
    dir: PathBuf,
}

/// Starts `trackerd` and the two peers (binaries `trackerd` and `p2pd` in `bin_dir`) with
/// their files under `dir`.
pub fn start(bin_dir: &Path, dir: &Path) -> anyhow::Result<Cluster> {
    let net = Net::start(bin_dir, dir, false)?;
    let alice = net.start_peer("alice")?;
    let bob = net.start_peer("bob")?;
    Ok(Cluster {
        net,
        alice,
        bob,
        dir: dir.to_owned(),
    })
}

impl Cluster {
    /// The last stderr lines of both peers but the chat's activity lines (this benchmark
    /// sends hundreds of messages), for error messages.
    pub fn stderr_tails(&self) -> String {
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.dir.join(format!("{name}.stderr")))
                .unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| !l.contains("op=\"message-"))
                .collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        format!(
            "alice stderr (chat lines left out):\n{}\nbob stderr (chat lines left out):\n{}",
            tail("alice"),
            tail("bob")
        )
    }

    /// Stops the three daemons (SIGTERM, then a wait).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.alice.daemon.stop()?;
        self.bob.daemon.stop()?;
        self.net.tracker.stop()?;
        Ok(())
    }

    /// SIGKILLs bob (no shutdown: what he had not recorded is lost, as in a crash of the
    /// daemon) and starts him again on the same state, socket and download directory.
    pub fn kill_and_restart_bob(&mut self) -> anyhow::Result<()> {
        self.bob.daemon.kill()?;
        self.bob = self.net.start_peer("bob")?;
        Ok(())
    }
}
