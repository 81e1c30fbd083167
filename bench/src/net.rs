//! A `trackerd` and the `p2pd` registered at it, started in a directory on loopback as the
//! chat-latency and transfer-throughput programs use them: each daemon gets nothing from
//! the caller's environment (no config file, socket or log settings), optionally runs on
//! CPU [`PIN_CPU`] (`taskset`), and each peer has its own state, socket and download
//! directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::procs::{Daemon, LISTENING, after_prefix, tracker_lines};

/// The CPU that pinned daemons run on (`taskset -c 0`).
pub const PIN_CPU: &str = "0";

/// Starts daemon `name`: `bin args` (under `taskset -c` [`PIN_CPU`] when `pin`), with
/// nothing from the caller's environment (no config file, socket or log settings) and its
/// files in `dir`.
pub fn start_daemon(
    name: &'static str,
    bin: &Path,
    args: &[&OsStr],
    pin: bool,
    dir: &Path,
) -> anyhow::Result<(Daemon, String, String)> {
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(PIN_CPU).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env_remove(proto::paths::SOCKET_ENV)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM");
    Daemon::start(name, bin, &mut cmd, dir)
}

/// Where p2pd `name` keeps its files, under a directory of its own.
pub struct PeerFiles {
    /// `--state-dir`.
    pub state: PathBuf,
    /// `--socket`.
    pub socket: PathBuf,
    /// `--download-dir`.
    pub downloads: PathBuf,
}

impl PeerFiles {
    /// The files of p2pd `name` under `dir/name`.
    pub fn under(dir: &Path, name: &str) -> PeerFiles {
        let base = dir.join(name);
        PeerFiles {
            state: base.join("state"),
            socket: base.join("run").join("p2pd.sock"),
            downloads: base.join("downloads"),
        }
    }

    /// `--state-dir`, `--socket` and `--download-dir` with them.
    pub fn args(&self) -> [&OsStr; 6] {
        [
            "--state-dir".as_ref(),
            self.state.as_os_str(),
            "--socket".as_ref(),
            self.socket.as_os_str(),
            "--download-dir".as_ref(),
            self.downloads.as_os_str(),
        ]
    }
}

/// One running p2pd.
pub struct Peer {
    /// The process.
    pub daemon: Daemon,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its download directory (where auto-accepted offers land).
    pub downloads: PathBuf,
}

/// A running trackerd, and what it takes to start p2pd registered at it.
pub struct Net {
    /// The tracker.
    pub tracker: Daemon,
    /// The tracker's address, as printed.
    pub addr: String,
    /// The tracker's key, as printed.
    pub key: String,
    /// The p2pd binary.
    p2pd: PathBuf,
    /// Where the daemons' files (and stderr logs) go.
    dir: PathBuf,
    /// Whether the daemons run on [`PIN_CPU`].
    pin: bool,
}

impl Net {
    /// Starts `trackerd` (binaries `trackerd` and, later, `p2pd` in `bin_dir`) with its
    /// files under `dir`, pinned to [`PIN_CPU`] when `pin` (as are the peers).
    pub fn start(bin_dir: &Path, dir: &Path, pin: bool) -> anyhow::Result<Net> {
        let trackerd = bin_dir.join("trackerd");
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
            pin,
            dir,
        )?;
        let (addr, key) = tracker_lines(&first, &second)?;
        Ok(Net {
            addr: addr.to_owned(),
            key: key.to_owned(),
            tracker,
            p2pd: bin_dir.join("p2pd"),
            dir: dir.to_owned(),
            pin,
        })
    }

    /// Starts p2pd `name` registered at the tracker, its files under `dir/name`.
    pub fn start_peer(&self, name: &'static str) -> anyhow::Result<Peer> {
        eprintln!("starting p2pd {name}");
        let files = PeerFiles::under(&self.dir, name);
        let mut args: Vec<&OsStr> = vec![
            "--name".as_ref(),
            name.as_ref(),
            "--tracker".as_ref(),
            self.addr.as_ref(),
            "--tracker-key".as_ref(),
            self.key.as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--no-lan".as_ref(),
        ];
        args.extend(files.args());
        let (daemon, first, second) = start_daemon(name, &self.p2pd, &args, self.pin, &self.dir)?;
        after_prefix(&first, LISTENING, "first", name)?;
        let path = after_prefix(&second, "control socket ", "second", name)?;
        Ok(Peer {
            daemon,
            socket: PathBuf::from(path),
            downloads: files.downloads,
        })
    }
}
