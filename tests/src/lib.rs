//! Black-box test harness: runs the real `trackerd`, `p2pd` and `p2pctl` binaries on
//! ephemeral ports inside one temporary directory per test, and talks to them the way users
//! and peers do (stdout lines, the control socket, `p2pctl`, the tracker protocol).
//!
//! The binaries are found in `$P2P_BIN_DIR`, else next to the test executable
//! (`target/debug`), where the first test of each test process has cargo build them (or
//! find them up to date) with the test's own profile: `cargo test` works on a fresh clone.
//!
//! Synchronisation is always on something observable (a stdout or stderr line, an event, a
//! socket closing) with a deadline; nothing sleeps to let things happen. On failure every
//! process prints what it wrote to stdout and stderr, and the temporary directory is kept.
//!
//! ```no_run
//! use p2p_tests::{TestNet, DEADLINE, events};
//! let net = TestNet::new();
//! let tracker = net.spawn_tracker(None);
//! let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
//! alice.wait_tracker_state("registered", DEADLINE);
//! let mut watch = net.watch(&alice);
//! let _bob = net.spawn_p2pd("bob", &tracker.addr_string(), &[]);
//! watch.wait_for("bob joined", events::peer_joined("bob"), DEADLINE);
//! net.ctl(&alice, &["--json", "peers"]).assert_success();
//! ```

mod bins;
pub mod chat;
pub mod crash;
pub mod dht;
pub mod events;
pub mod flood;
pub mod netns;
pub mod nobody;
mod nodes;
mod proc;
pub mod pty;
pub mod raw;
pub mod raw_peer;
mod rpc;
pub mod share_raw;
pub mod swarm;
pub mod sys;
pub mod transfer;

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub use nodes::{P2pd, P2pdSpec, Tracker, Watch};
pub use proc::{CmdOutput, Proc, run_with_input, run_with_timeout};
pub use rpc::RpcClient;

/// The usual deadline for something that should happen "soon" (a registration, an event).
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Re-reads state that no event announces (a directory, `/proc`, a log file) every `every`
/// until `check` returns `Ok`; once `timeout` has passed, panics with the last `Err`.
#[track_caller]
pub fn poll<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(why) => assert!(Instant::now() < deadline, "{why} (after {timeout:?})"),
        }
        std::thread::sleep(every);
    }
}

/// What every spawned process needs: where the binaries are and the environment to give them.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Directory holding `trackerd`, `p2pd` and `p2pctl`.
    pub(crate) bins: PathBuf,
    /// Root of the test's temporary directory.
    pub(crate) root: PathBuf,
    /// Fake home; the XDG variables point inside it.
    pub(crate) home: PathBuf,
    /// A command every binary runs under (such as `ip netns exec NAME`); empty for none.
    pub(crate) prefix: Vec<OsString>,
}

impl Shared {
    /// A command for binary `bin` with an environment that keeps it inside the test directory.
    pub(crate) fn command(&self, bin: &str) -> Command {
        self.command_via(&[], bin)
    }

    /// Like [`Shared::command`], run as `PREFIX... BIN` when `prefix` is not empty (such as
    /// `ip netns exec NAME`, which execs the binary in a network namespace). The world's own
    /// prefix, if any, comes after it.
    pub(crate) fn command_via(&self, prefix: &[OsString], bin: &str) -> Command {
        let path = self.bins.join(bin);
        assert!(
            path.is_file(),
            "{} not found; build the binaries first with `cargo build --workspace --bins` \
             (or point P2P_BIN_DIR at them)",
            path.display()
        );
        let mut words = prefix.iter().chain(&self.prefix);
        let mut cmd = match words.next() {
            Some(program) => {
                let mut cmd = Command::new(program);
                cmd.args(words).arg(path);
                cmd
            }
            None => Command::new(path),
        };
        isolate_env(&mut cmd, &self.home);
        cmd
    }
}

/// Points HOME and the XDG variables at `home` and removes variables that would change where
/// the daemons log, notify or listen (so nothing touches the real home or journal).
fn isolate_env(cmd: &mut Command, home: &Path) {
    for var in [
        "P2PD_SOCKET",
        "NOTIFY_SOCKET",
        "JOURNAL_STREAM",
        "LISTEN_FDS",
        "LISTEN_PID",
        "STATE_DIRECTORY",
        "RUNTIME_DIRECTORY",
        "XDG_DOWNLOAD_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("RUST_BACKTRACE", "1")
        .env(
            "RUST_LOG",
            std::env::var("P2P_TEST_LOG")
                .unwrap_or_else(|_| "info,trackerd=debug,p2pd=debug".into()),
        );
}

/// One test's world: a temporary directory that holds every node's state, sockets and logs.
///
/// Drop the nodes before the `TestNet` (declare the `TestNet` first). When the test fails the
/// directory is kept and its path printed.
#[derive(Debug)]
pub struct TestNet {
    dir: Option<tempfile::TempDir>,
    shared: Arc<Shared>,
    next: AtomicUsize,
}

impl Default for TestNet {
    fn default() -> Self {
        Self::new()
    }
}

impl TestNet {
    /// A new, empty world in a fresh temporary directory.
    pub fn new() -> TestNet {
        Self::with_prefix(Vec::new())
    }

    /// A new world whose processes (daemons and `p2pctl`) all run inside `netns`.
    pub fn in_netns(netns: &sys::NetNs) -> TestNet {
        Self::with_prefix(netns.prefix())
    }

    /// A new world whose binaries are taken from `bins` (for programs outside `target/`'s
    /// test layout, such as a benchmark).
    pub fn with_bin_dir(bins: PathBuf) -> TestNet {
        Self::with(bins, Vec::new())
    }

    fn with_prefix(prefix: Vec<OsString>) -> TestNet {
        Self::with(bin_dir(), prefix)
    }

    fn with(bins: PathBuf, prefix: Vec<OsString>) -> TestNet {
        let dir = tempfile::Builder::new()
            .prefix("p2p-test-")
            .tempdir()
            .expect("create a temporary directory");
        let root = dir.path().to_owned();
        let home = root.join("home");
        for sub in [".config", ".local/state", ".local/share", ".cache", "run"] {
            std::fs::create_dir_all(home.join(sub)).expect("create the fake home");
        }
        TestNet {
            dir: Some(dir),
            shared: Arc::new(Shared {
                bins,
                root,
                home,
                prefix,
            }),
            next: AtomicUsize::new(0),
        }
    }

    /// The temporary directory.
    pub fn path(&self) -> &Path {
        &self.shared.root
    }

    /// The fake home directory given to every process (`$HOME`; `$XDG_CONFIG_HOME` is its
    /// `.config`).
    pub fn home(&self) -> &Path {
        &self.shared.home
    }

    /// The full path of a built binary.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.shared.bins.join(name)
    }

    /// True when binary `name` has been built.
    pub fn has_bin(&self, name: &str) -> bool {
        self.bin(name).is_file()
    }

    /// A new directory `<root>/<prefix>-<n>`, unique within this net.
    pub fn unique_dir(&self, prefix: &str) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.path().join(format!("{prefix}-{n}"));
        std::fs::create_dir_all(&dir).expect("create a test directory");
        dir
    }

    /// Writes `text` to a new file under the test directory and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let dir = self.unique_dir("file");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }

    /// A command for `bin` with the isolated environment, for one-shot runs.
    pub fn command(&self, bin: &str) -> Command {
        self.shared.command(bin)
    }

    /// A command for any program (such as `setpriv`) with the same isolated environment.
    pub fn isolated_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        isolate_env(&mut cmd, &self.shared.home);
        cmd
    }

    /// Runs `bin args` to completion (at most [`DEADLINE`]) and captures its output.
    pub fn run<S: AsRef<OsStr>>(&self, bin: &str, args: &[S]) -> CmdOutput {
        let mut cmd = self.command(bin);
        cmd.args(args);
        run_with_timeout(cmd, DEADLINE)
    }

    /// Starts a long-running process of `bin` with `args`; `label` names it in dumps.
    pub fn spawn<S: AsRef<OsStr>>(&self, label: &str, bin: &str, args: &[S]) -> Proc {
        let mut cmd = self.command(bin);
        cmd.args(args);
        let logs = self.unique_dir("logs");
        Proc::spawn(label, cmd, &logs.join(format!("{label}.stderr")))
    }

    /// Like [`TestNet::spawn`], with stdin piped (see [`Proc::write_stdin`]).
    pub fn spawn_with_stdin<S: AsRef<OsStr>>(&self, label: &str, bin: &str, args: &[S]) -> Proc {
        let mut cmd = self.command(bin);
        cmd.args(args);
        let logs = self.unique_dir("logs");
        Proc::spawn_with_stdin(label, cmd, &logs.join(format!("{label}.stderr")))
    }

    /// Starts a tracker on `127.0.0.1:0` with its own state directory and, if given, a config
    /// file with `config` as its text. Returns once it printed its address and key.
    pub fn spawn_tracker(&self, config: Option<&str>) -> Tracker {
        self.spawn_tracker_in(self.unique_dir("tracker"), config)
    }

    /// Like [`TestNet::spawn_tracker`], with `state_dir` as its state directory (which may
    /// hold a database made beforehand).
    pub fn spawn_tracker_in(&self, state_dir: PathBuf, config: Option<&str>) -> Tracker {
        let config = config.map(|text| {
            let path = state_dir.join("trackerd.toml");
            std::fs::write(&path, text).expect("write the tracker config");
            path
        });
        Tracker::start(
            self.shared.clone(),
            state_dir,
            config,
            "127.0.0.1:0".parse().expect("address"),
            Vec::new(),
        )
    }

    /// Starts a tracker listening on `listen` (port 0 for an ephemeral one), run as
    /// `PREFIX... trackerd ARGS...` (see [`P2pdSpec::prefix`]), with its own state directory
    /// and no config file. Returns once it printed its address and key.
    pub fn spawn_tracker_via<S: Into<OsString>>(
        &self,
        prefix: impl IntoIterator<Item = S>,
        listen: SocketAddr,
    ) -> Tracker {
        Tracker::start(
            self.shared.clone(),
            self.unique_dir("tracker"),
            None,
            listen,
            prefix.into_iter().map(Into::into).collect(),
        )
    }

    /// Like [`TestNet::spawn_tracker_via`], with a config file whose text is `config`.
    pub fn spawn_tracker_configured_via<S: Into<OsString>>(
        &self,
        prefix: impl IntoIterator<Item = S>,
        listen: SocketAddr,
        config: &str,
    ) -> Tracker {
        let state_dir = self.unique_dir("tracker");
        let path = state_dir.join("trackerd.toml");
        std::fs::write(&path, config).expect("write the tracker config");
        Tracker::start(
            self.shared.clone(),
            state_dir,
            Some(path),
            listen,
            prefix.into_iter().map(Into::into).collect(),
        )
    }

    /// Starts p2pd named `name`, registering at `tracker` (`HOST:PORT`), with its own state,
    /// socket and download directories, listening on `127.0.0.1:0`; `extra` is appended to
    /// the command line. Returns once it printed its address and socket.
    pub fn spawn_p2pd(&self, name: &str, tracker: &str, extra: &[&str]) -> P2pd {
        self.p2pd(name)
            .tracker(tracker)
            .args(extra.iter().copied())
            .spawn()
    }

    /// A p2pd to configure further before [`P2pdSpec::spawn`].
    pub fn p2pd(&self, name: &str) -> P2pdSpec {
        let dir = self.unique_dir(name);
        P2pdSpec::new(self.shared.clone(), name, &dir)
    }

    /// Runs `p2pctl --socket <p2pd's socket> ARGS` and captures its output.
    pub fn ctl(&self, p2pd: &P2pd, args: &[&str]) -> CmdOutput {
        self.ctl_at(&p2pd.socket, args)
    }

    /// Runs `p2pctl --socket <p2pd's socket> ARGS` with `input` on its stdin, for at most
    /// `timeout`, and captures its output.
    pub fn ctl_with_input(
        &self,
        p2pd: &P2pd,
        args: &[&str],
        input: &[u8],
        timeout: Duration,
    ) -> CmdOutput {
        let mut cmd = self.command("p2pctl");
        cmd.arg("--socket").arg(&p2pd.socket).args(args);
        run_with_input(cmd, Some(input.to_vec()), timeout)
    }

    /// Runs `p2pctl --socket SOCKET ARGS` and captures its output.
    pub fn ctl_at(&self, socket: &Path, args: &[&str]) -> CmdOutput {
        let mut cmd = self.command("p2pctl");
        cmd.arg("--socket").arg(socket).args(args);
        run_with_timeout(cmd, DEADLINE)
    }

    /// Runs `p2pctl --socket S --json watch` on `p2pd` and returns once it is subscribed.
    pub fn watch(&self, p2pd: &P2pd) -> Watch {
        let logs = self.unique_dir("logs");
        Watch::start(&self.shared, &p2pd.socket, &logs.join("watch.stderr"))
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(mut dir) = self.dir.take()
        {
            dir.disable_cleanup(true);
            eprintln!("test failed: keeping {}", dir.path().display());
        }
    }
}

/// Where the binaries are: `$P2P_BIN_DIR` as given, else the directory above the test
/// executable's (`target/debug/deps/x-HASH` → `target/debug`), brought up to date once per
/// test process ([`bins::build`]).
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("P2P_BIN_DIR") {
        return PathBuf::from(dir);
    }
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("path of the test executable");
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("the test executable lives in target/<profile>/deps")
                .to_owned();
            bins::build(&dir);
            dir
        })
        .clone()
}
