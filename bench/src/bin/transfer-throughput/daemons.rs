//! Starting `trackerd` and two `p2pd` (alice and bob) in a temporary directory, as
//! chat-latency does (no pinning here), each with its own state, socket and download
//! directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use bench::procs::{Daemon, LISTENING, after_prefix, tracker_lines};

/// One running p2pd.
pub struct Peer {
    /// The process.
    pub daemon: Daemon,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its download directory (where auto-accepted offers land).
    pub downloads: PathBuf,
}

/// trackerd with alice and bob registered at it.
pub struct Cluster {
    /// The tracker.
    pub tracker: Daemon,
    /// The sender.
    pub alice: Peer,
    /// The receiver.
    pub bob: Peer,
    /// Where their files (and stderr logs) are.
    dir: PathBuf,
}

/// Starts daemon `name`: `bin args`, with nothing from the caller's environment (no config
/// file, socket or log settings) and its files in `dir`.
fn start_daemon(
    name: &'static str,
    bin: &Path,
    args: &[&OsStr],
    dir: &Path,
) -> anyhow::Result<(Daemon, String, String)> {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env_remove(proto::paths::SOCKET_ENV)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM");
    Daemon::start(name, bin, &mut cmd, dir)
}

/// Starts `trackerd` and the two peers (binaries `trackerd` and `p2pd` in `bin_dir`) with
/// their files under `dir`.
pub fn start(bin_dir: &Path, dir: &Path) -> anyhow::Result<Cluster> {
    let trackerd = bin_dir.join("trackerd");
    let p2pd = bin_dir.join("p2pd");
    eprintln!("starting trackerd");
    let tracker_state = dir.join("tracker");
    let (tracker, first, second) = start_daemon(
        "trackerd",
        &trackerd,
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--state-dir".as_ref(),
            tracker_state.as_os_str(),
        ],
        dir,
    )?;
    let (tracker_addr, tracker_key) = tracker_lines(&first, &second)?;
    let start_peer = |name: &'static str| -> anyhow::Result<Peer> {
        eprintln!("starting p2pd {name}");
        let base = dir.join(name);
        let state = base.join("state");
        let socket = base.join("run").join("p2pd.sock");
        let downloads = base.join("downloads");
        let (daemon, first, second) = start_daemon(
            name,
            &p2pd,
            &[
                "--name".as_ref(),
                name.as_ref(),
                "--tracker".as_ref(),
                tracker_addr.as_ref(),
                "--tracker-key".as_ref(),
                tracker_key.as_ref(),
                "--listen".as_ref(),
                "127.0.0.1:0".as_ref(),
                "--state-dir".as_ref(),
                state.as_os_str(),
                "--socket".as_ref(),
                socket.as_os_str(),
                "--download-dir".as_ref(),
                downloads.as_os_str(),
            ],
            dir,
        )?;
        after_prefix(&first, LISTENING, "first", name)?;
        let path = after_prefix(&second, "control socket ", "second", name)?;
        Ok(Peer {
            daemon,
            socket: PathBuf::from(path),
            downloads,
        })
    };
    let alice = start_peer("alice")?;
    let bob = start_peer("bob")?;
    Ok(Cluster {
        tracker,
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
        self.tracker.stop()?;
        Ok(())
    }
}
