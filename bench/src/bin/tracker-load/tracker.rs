//! The `trackerd` under test: a child process with raised limits in its own temporary
//! state directory.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use bench::procs::{Daemon, tracker_lines};
use proto::PeerId;

/// A `trackerd` child process in its own temporary state directory.
pub struct TrackerProc {
    /// Killed on drop if still running (before the directory goes).
    daemon: Daemon,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its key, which clients pin.
    pub id: PeerId,
    /// Removed on drop, after the child is gone.
    _dir: tempfile::TempDir,
}

impl TrackerProc {
    /// Starts `bin` with raised limits in a temporary state directory and waits for its
    /// address and key.
    pub fn start(bin: &Path) -> anyhow::Result<TrackerProc> {
        let dir = tempfile::Builder::new()
            .prefix("tracker-load-")
            .tempdir()
            .context("cannot make a temporary directory")?;
        let state = dir.path().join("state");
        let config = dir.path().join("trackerd.toml");
        let state_str = state
            .to_str()
            .context("temporary directory path is not UTF-8")?;
        // A JSON string is a valid TOML basic string.
        let text = format!(
            "state-dir = {}\nlease-secs = 600\n\n[limits]\nmax-connections = 100000\n\
             max-connections-per-ip = 100000\nregistrations-per-ip-per-sec = 1000000.0\n\
             registration-burst = 1000000\n",
            serde_json::to_string(state_str)?
        );
        std::fs::write(&config, text).context("cannot write the tracker config")?;
        let mut cmd = Command::new(bin);
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--config")
            .arg(&config);
        let (daemon, first, second) = Daemon::start("trackerd", bin, &mut cmd, dir.path())?;
        let (addr, key) = tracker_lines(&first, &second)?;
        Ok(TrackerProc {
            addr: addr.parse().context("bad address from trackerd")?,
            id: key
                .parse()
                .map_err(|e| anyhow::anyhow!("bad tracker key from trackerd: {e}"))?,
            daemon,
            _dir: dir,
        })
    }

    /// The tracker's process id.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The last lines trackerd wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.daemon.stderr_tail()
    }

    /// Sends SIGTERM and waits for the exit. Returns how long the tracker took to stop.
    pub fn stop(&mut self) -> anyhow::Result<Duration> {
        self.daemon.stop()
    }
}
