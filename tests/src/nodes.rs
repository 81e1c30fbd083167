//! The daemons as tests see them: a [`Tracker`], a [`P2pd`] (configured with a
//! [`P2pdSpec`]), and a running `p2pctl watch` ([`Watch`]). Each can be stopped and started
//! again with the same state, address and socket.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::proc::Proc;
use crate::rpc::RpcClient;
use crate::{DEADLINE, Shared};

/// A running (or stopped) trackerd.
#[derive(Debug)]
pub struct Tracker {
    /// The process.
    pub proc: Proc,
    /// The bound address (fixed across restarts).
    pub addr: SocketAddr,
    /// The tracker key it printed (fixed across restarts: it lives in the state directory).
    pub key: String,
    /// Its state directory.
    pub state_dir: PathBuf,
    config: Option<PathBuf>,
    /// Command words put before the binary (see [`P2pdSpec::prefix`]).
    prefix: Vec<OsString>,
    shared: Arc<Shared>,
    starts: usize,
}

impl Tracker {
    pub(crate) fn start(
        shared: Arc<Shared>,
        state_dir: PathBuf,
        config: Option<PathBuf>,
        listen: SocketAddr,
        prefix: Vec<OsString>,
    ) -> Tracker {
        let (proc, addr, key) =
            Self::launch(&shared, &state_dir, config.as_deref(), listen, &prefix, 0);
        Tracker {
            proc,
            addr,
            key,
            state_dir,
            config,
            prefix,
            shared,
            starts: 1,
        }
    }

    fn launch(
        shared: &Shared,
        state_dir: &Path,
        config: Option<&Path>,
        listen: SocketAddr,
        prefix: &[OsString],
        n: usize,
    ) -> (Proc, SocketAddr, String) {
        let mut cmd = shared.command_via(prefix, "trackerd");
        cmd.arg("--listen")
            .arg(listen.to_string())
            .arg("--state-dir")
            .arg(state_dir);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        let label = if n == 0 {
            "trackerd".to_owned()
        } else {
            format!("trackerd (start {})", n + 1)
        };
        let mut proc = Proc::spawn(&label, cmd, &state_dir.join(format!("stderr.{n}")));
        let addr: SocketAddr = proc
            .wait_line("listening on ", DEADLINE)
            .parse()
            .expect("trackerd printed a socket address");
        let key = proc.wait_line("tracker key ", DEADLINE);
        (proc, addr, key)
    }

    /// `HOST:PORT`, as p2pd's `--tracker` takes it.
    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// SIGTERM and wait for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.proc.terminate()
    }

    /// Stops the tracker if it runs, then starts it again on the same address with the same
    /// state directory and config. Panics unless it comes back with the same key.
    pub fn restart(&mut self) {
        if self.proc.is_running() {
            self.stop();
        }
        let (proc, addr, key) = Self::launch(
            &self.shared,
            &self.state_dir,
            self.config.as_deref(),
            self.addr,
            &self.prefix,
            self.starts,
        );
        self.starts += 1;
        // Replace (and drop) the old, exited process only now, so its dump stays
        // available if the new one failed to start.
        self.proc = proc;
        assert_eq!(addr, self.addr, "the tracker came back on another address");
        assert_eq!(key, self.key, "the tracker came back with another key");
    }
}

/// How to start a p2pd; defaults come from [`crate::TestNet::p2pd`].
#[derive(Debug, Clone)]
pub struct P2pdSpec {
    shared: Arc<Shared>,
    name: String,
    /// This daemon's own directory (stderr files go there).
    dir: PathBuf,
    /// `--tracker`; `127.0.0.1:9` (nothing listens) unless set.
    pub tracker: String,
    /// `--state-dir`.
    pub state_dir: PathBuf,
    /// `--socket`.
    pub socket: PathBuf,
    /// `--download-dir`.
    pub download_dir: PathBuf,
    /// Extra arguments appended to the command line.
    pub extra: Vec<OsString>,
    /// False to leave `--name` out (the name comes from a config file).
    pub pass_name: bool,
    /// `--listen`; `127.0.0.1:0` unless set.
    pub listen: String,
    /// Command words put before the binary, such as `ip netns exec NAME` to run it in a
    /// network namespace; empty unless set.
    pub prefix: Vec<OsString>,
}

impl P2pdSpec {
    pub(crate) fn new(shared: Arc<Shared>, name: &str, dir: &Path) -> P2pdSpec {
        P2pdSpec {
            shared,
            name: name.to_owned(),
            dir: dir.to_owned(),
            tracker: "127.0.0.1:9".into(),
            state_dir: dir.join("state"),
            socket: dir.join("run").join("p2pd.sock"),
            download_dir: dir.join("downloads"),
            extra: Vec::new(),
            pass_name: true,
            listen: "127.0.0.1:0".into(),
            prefix: Vec::new(),
        }
    }

    /// Leaves `--name` off the command line, so the name must come from a config file.
    pub fn name_from_config(mut self) -> Self {
        self.pass_name = false;
        self
    }

    /// Sets `--tracker`.
    pub fn tracker(mut self, addr: &str) -> Self {
        addr.clone_into(&mut self.tracker);
        self
    }

    /// Leaves `--tracker` off the command line: the daemon runs with no tracker.
    pub fn no_tracker(mut self) -> Self {
        self.tracker.clear();
        self
    }

    /// Sets `--listen`.
    pub fn listen(mut self, addr: &str) -> Self {
        addr.clone_into(&mut self.listen);
        self
    }

    /// Runs the daemon as `PREFIX... p2pd ARGS...` (for example inside a network namespace
    /// with `ip netns exec NAME`); the process keeps the pid of the prefix's first program,
    /// which must exec the daemon rather than fork it.
    pub fn prefix<S: Into<OsString>>(mut self, words: impl IntoIterator<Item = S>) -> Self {
        self.prefix = words.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `--state-dir` (for example another daemon's, to run with its identity).
    pub fn state_dir(mut self, dir: &Path) -> Self {
        dir.clone_into(&mut self.state_dir);
        self
    }

    /// Sets `--socket`.
    pub fn socket(mut self, path: &Path) -> Self {
        path.clone_into(&mut self.socket);
        self
    }

    /// Appends arguments.
    pub fn args<S: Into<OsString>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.extra.extend(args.into_iter().map(Into::into));
        self
    }

    /// The full argument list.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = Vec::new();
        if self.pass_name {
            argv.extend(["--name".into(), self.name.clone().into()]);
        }
        if !self.tracker.is_empty() {
            argv.extend(["--tracker".into(), self.tracker.clone().into()]);
        }
        argv.extend::<[OsString; 8]>([
            "--listen".into(),
            self.listen.clone().into(),
            "--state-dir".into(),
            self.state_dir.clone().into(),
            "--socket".into(),
            self.socket.clone().into(),
            "--download-dir".into(),
            self.download_dir.clone().into(),
        ]);
        argv.extend(self.extra.iter().cloned());
        argv
    }

    /// Starts p2pd and waits for its `listening on` and `control socket` lines.
    pub fn spawn(self) -> P2pd {
        std::fs::create_dir_all(&self.download_dir).expect("create the download directory");
        let (proc, listen) = launch_p2pd(&self, 0);
        P2pd {
            proc,
            name: self.name.clone(),
            socket: self.socket.clone(),
            state_dir: self.state_dir.clone(),
            listen,
            spec: self,
            starts: 1,
        }
    }

    /// Starts p2pd with these settings and expects it to exit by itself (a start-up error);
    /// returns its exit status and stderr.
    pub fn run_to_exit(&self) -> crate::CmdOutput {
        let mut cmd = self.shared.command_via(&self.prefix, "p2pd");
        cmd.args(self.argv());
        crate::run_with_timeout(cmd, DEADLINE)
    }
}

fn launch_p2pd(spec: &P2pdSpec, n: usize) -> (Proc, SocketAddr) {
    let mut cmd = spec.shared.command_via(&spec.prefix, "p2pd");
    cmd.args(spec.argv());
    let label = if n == 0 {
        format!("p2pd {}", spec.name)
    } else {
        format!("p2pd {} (start {})", spec.name, n + 1)
    };
    let logs = spec.dir.join(format!("stderr.{n}"));
    let mut proc = Proc::spawn(&label, cmd, &logs);
    let listen: SocketAddr = proc
        .wait_line("listening on ", DEADLINE)
        .parse()
        .expect("p2pd printed a socket address");
    let socket = proc.wait_line("control socket ", DEADLINE);
    assert_eq!(
        Path::new(&socket),
        spec.socket,
        "p2pd printed another socket"
    );
    (proc, listen)
}

/// A running (or stopped) p2pd.
#[derive(Debug)]
pub struct P2pd {
    /// The process.
    pub proc: Proc,
    /// Its `--name`.
    pub name: String,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its state directory (identity, pins, activity log).
    pub state_dir: PathBuf,
    /// The peer-link address it printed at its latest start.
    pub listen: SocketAddr,
    spec: P2pdSpec,
    starts: usize,
}

impl P2pd {
    /// A new control connection. Panics if the daemon does not accept it.
    #[track_caller]
    pub fn rpc(&self) -> RpcClient {
        RpcClient::connect(&self.socket)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.socket.display()))
    }

    /// The `status` result.
    pub fn status(&self) -> Value {
        self.rpc().call("status", json!({}))
    }

    /// Its peer id.
    pub fn id(&self) -> String {
        self.status()["id"]
            .as_str()
            .expect("status has an id")
            .to_owned()
    }

    /// Its `--download-dir` (where accepted files land unless `accept` names another).
    pub fn download_dir(&self) -> &Path {
        &self.spec.download_dir
    }

    /// Every line of its activity log so far (the `activity.log.*` files in its state
    /// directory, oldest first).
    pub fn activity_log(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.state_dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("activity.log."))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Waits until its activity log holds `n` lines that `pred` accepts; returns them. The log
    /// is written by a background thread and announces nothing, so this re-reads the files
    /// (every 20 ms) until `timeout`, then panics with the log.
    #[track_caller]
    pub fn wait_activity(
        &self,
        what: &str,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        crate::poll(timeout, Duration::from_millis(20), || {
            let log = self.activity_log();
            let hits: Vec<String> = log.iter().filter(|l| pred(l)).cloned().collect();
            if hits.len() >= n {
                return Ok(hits);
            }
            Err(format!(
                "{}: not {n} activity lines {what}; the log:\n{}",
                self.name,
                log.join("\n")
            ))
        })
    }

    /// The `peers` result.
    pub fn peers(&self) -> Vec<Value> {
        match self.rpc().call("peers", json!({})) {
            Value::Array(peers) => peers,
            other => panic!("peers is not an array: {other}"),
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.proc.terminate()
    }

    /// SIGKILL and wait until reaped.
    pub fn kill(&mut self) -> ExitStatus {
        self.proc.kill()
    }

    /// Stops it if it runs, then starts it again with the same arguments (same identity,
    /// socket and directories; a new peer port).
    pub fn restart(&mut self) {
        if self.proc.is_running() {
            self.stop();
        }
        let (proc, listen) = launch_p2pd(&self.spec, self.starts);
        self.starts += 1;
        self.proc = proc;
        self.listen = listen;
    }

    /// Waits until `check` returns `Some`, re-checking whenever the daemon publishes an event
    /// (every change of state comes with one). Subscribes before the first check, so a
    /// change between the check and the wait is not missed.
    #[track_caller]
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&mut RpcClient) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut rpc = self.rpc();
        rpc.subscribe();
        loop {
            if let Some(v) = check(&mut rpc) {
                return v;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let status = rpc.call("status", json!({}));
                let peers = rpc.call("peers", json!({}));
                panic!(
                    "{}: not {what} within {timeout:?}\nstatus: {status:#}\npeers: {peers:#}",
                    self.name
                );
            }
            rpc.next_event(left);
        }
    }

    /// Waits until the tracker link is in `state`, and returns the `tracker` part of the
    /// status.
    #[track_caller]
    pub fn wait_tracker_state(&self, state: &str, timeout: Duration) -> Value {
        self.wait_until(&format!("tracker {state}"), timeout, |rpc| {
            let s = rpc.call("status", json!({}));
            (s["tracker"]["state"] == state).then(|| s["tracker"].clone())
        })
    }

    /// Waits until the peer named `name` is listed with `online`, and returns its entry.
    #[track_caller]
    pub fn wait_peer(&self, name: &str, online: bool, timeout: Duration) -> Value {
        let what = format!("{name} {}", if online { "online" } else { "offline" });
        self.wait_until(&what, timeout, |rpc| {
            let peers = rpc.call("peers", json!({}));
            peers
                .as_array()?
                .iter()
                .find(|p| p["name"] == name && p["online"] == online)
                .cloned()
        })
    }
}

/// `p2pctl --json watch` running against a daemon, with every event it printed.
#[derive(Debug)]
pub struct Watch {
    /// The p2pctl process.
    pub proc: Proc,
    events: Vec<Value>,
    mark: usize,
}

impl Watch {
    pub(crate) fn start(shared: &Shared, socket: &Path, stderr: &Path) -> Watch {
        let mut cmd = shared.command("p2pctl");
        cmd.arg("--socket").arg(socket).args(["--json", "watch"]);
        let mut proc = Proc::spawn("p2pctl watch", cmd, stderr);
        // Printed once the subscription is confirmed: every later event will be shown.
        proc.wait_stderr_line("watching p2pd at", DEADLINE);
        Watch {
            proc,
            events: Vec::new(),
            mark: 0,
        }
    }

    /// From now on, [`Watch::wait_for`] only looks at events printed after this call.
    pub fn mark(&mut self) {
        self.drain();
        self.mark = self.events.len();
    }

    fn drain(&mut self) {
        while let Some(line) = self.proc.next_line(Duration::ZERO) {
            self.push(&line);
        }
    }

    fn push(&mut self, line: &str) {
        let ev: Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!("p2pctl watch printed a line that is not JSON ({e}): {line}")
        });
        self.events.push(ev);
    }

    /// Every event printed so far.
    pub fn events(&mut self) -> &[Value] {
        self.drain();
        &self.events
    }

    /// The first event since the last [`Watch::mark`] that matches `pred`, waiting for it up
    /// to `timeout`. Panics with the events seen if none comes.
    #[track_caller]
    pub fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut checked = self.mark;
        loop {
            if let Some(ev) = self.events[checked..].iter().find(|e| pred(e)) {
                return ev.clone();
            }
            checked = self.events.len();
            let left = deadline.saturating_duration_since(Instant::now());
            match self.proc.next_line(left) {
                Some(line) => self.push(&line),
                None => {
                    let status = self.proc.try_status();
                    panic!(
                        "p2pctl watch: no event {what} within {timeout:?} (p2pctl {}); events since the mark: {:#?}",
                        status.map_or_else(|| "running".to_owned(), |s| s.to_string()),
                        &self.events[self.mark..]
                    );
                }
            }
        }
    }

    /// Every event printed during the next `window` (an observation period, for checking
    /// how often something happens; not a way to wait for something).
    pub fn collect_for(&mut self, window: Duration) -> Vec<Value> {
        self.drain();
        let start = self.events.len();
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.proc.next_line(left) {
                Some(line) => self.push(&line),
                None => break,
            }
        }
        self.events[start..].to_vec()
    }

    /// Stops p2pctl with SIGTERM and returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.proc.terminate()
    }
}
