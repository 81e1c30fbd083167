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
    /// Its admin socket, which answers `stats`.
    admin: std::path::PathBuf,
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
        // A directory trackerd makes itself (0700), as it requires.
        let admin = dir.path().join("run").join("admin.sock");
        let admin_str = admin.to_str().context("admin socket path is not UTF-8")?;
        let text = format!(
            "state-dir = {}\nadmin-socket = {}\nlease-secs = 600\n\n[limits]\nmax-connections = 100000\n\
             max-connections-per-ip = 100000\nregistrations-per-ip-per-sec = 1000000.0\n\
             registration-burst = 1000000\n",
            serde_json::to_string(state_str)?,
            serde_json::to_string(admin_str)?
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
            admin,
            _dir: dir,
        })
    }

    /// Event frames the tracker has queued to links since it started, from its admin
    /// socket's `stats` answer.
    pub fn events_sent(&self) -> anyhow::Result<u64> {
        use std::io::{BufRead, BufReader, Write};
        let mut sock = std::os::unix::net::UnixStream::connect(&self.admin)
            .with_context(|| format!("cannot reach {}", self.admin.display()))?;
        sock.write_all(b"stats\n")?;
        let mut line = String::new();
        BufReader::new(sock).read_line(&mut line)?;
        line.split_whitespace()
            .find_map(|f| f.strip_prefix("events="))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("unexpected stats answer {line:?}"))
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
