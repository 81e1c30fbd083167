//! Child processes: long-running ones ([`Proc`]) whose output is read line by line as it
//! comes, and one-shot commands ([`run_with_timeout`]) whose output is captured whole.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::DEADLINE;

/// A running child process. Its stdout and stderr are read by background threads: stdout
/// lines are queued for [`Proc::wait_line`], stderr lines are appended to a file (shown by
/// [`Proc::dump`]) and queued for [`Proc::wait_stderr_line`].
///
/// Dropping it sends SIGTERM and, if the process has not exited after a grace period,
/// SIGKILL. When the test is failing, the drop prints [`Proc::dump`].
#[derive(Debug)]
pub struct Proc {
    label: String,
    cmdline: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    stdout_seen: Vec<String>,
    stderr_path: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd` (stdin closed, stdout and stderr piped); stderr also goes to
    /// `stderr_path`. Panics if the process cannot be started.
    pub fn spawn(label: &str, cmd: Command, stderr_path: &Path) -> Proc {
        Self::start(label, cmd, stderr_path, false)
    }

    /// Like [`Proc::spawn`], but with stdin piped: write to it with [`Proc::write_stdin`],
    /// end it with [`Proc::close_stdin`].
    pub fn spawn_with_stdin(label: &str, cmd: Command, stderr_path: &Path) -> Proc {
        Self::start(label, cmd, stderr_path, true)
    }

    fn start(label: &str, mut cmd: Command, stderr_path: &Path, piped_stdin: bool) -> Proc {
        let cmdline = describe(&cmd);
        cmd.stdin(if piped_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let file = File::create(stderr_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
        Proc {
            label: label.to_owned(),
            cmdline,
            child,
            stdin,
            stdout: read_stdout(stdout),
            stderr: read_stderr(stderr, file),
            stdout_seen: Vec::new(),
            stderr_path: stderr_path.to_owned(),
            status: None,
        }
    }

    /// Writes `bytes` to the process's stdin and flushes. Panics if stdin is not piped or
    /// already closed, or the write fails.
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{}: stdin is not open", self.label));
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: cannot write to stdin: {e}", self.label));
    }

    /// Closes the process's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The label given at spawn time.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The next stdout line, or `None` at end of output or when `timeout` passes first.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        match self.stdout.recv_timeout(timeout) {
            Ok(line) => {
                self.stdout_seen.push(line.clone());
                Some(line)
            }
            Err(_) => None,
        }
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it. Earlier
    /// lines are skipped (kept for the dump). Panics at end of output or after `timeout`.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    self.stdout_seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: no stdout line starting with {prefix:?} within {timeout:?}",
                    self.label
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(2));
                    panic!(
                        "{}: stdout ended ({status}) before a line starting with {prefix:?}",
                        self.label
                    )
                }
            }
        }
    }

    /// Waits for a stderr line containing `needle` and returns it. Panics at end of output or
    /// after `timeout`.
    pub fn wait_stderr_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: no stderr line containing {needle:?} within {timeout:?}",
                    self.label
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(2));
                    panic!(
                        "{}: stderr ended ({status}) before a line containing {needle:?}",
                        self.label
                    )
                }
            }
        }
    }

    /// Sends `signal` (`TERM`, `KILL`, `STOP` or `CONT`), unless the process has already
    /// been reaped.
    pub fn signal(&mut self, signal: &str) {
        if self.try_status().is_some() {
            return;
        }
        let sig = match signal {
            "TERM" => Signal::TERM,
            "KILL" => Signal::KILL,
            "STOP" => Signal::STOP,
            "CONT" => Signal::CONT,
            other => panic!("unknown signal name {other}"),
        };
        let result = send_signal(self.pid(), sig);
        // It may have exited between the check and the signal; that is not an error.
        if let Err(e) = result
            && self.try_status().is_none()
        {
            panic!("kill -{signal} {} failed: {e}", self.pid());
        }
    }

    /// The exit status if the process has exited (reaping it), else `None`.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits up to `timeout` for the process to exit by itself. Panics if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.try_wait_exit(timeout).unwrap_or_else(|| {
            panic!(
                "{}: still running {timeout:?} after it should have exited",
                self.label
            )
        })
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    ///
    /// Waits first for its stdout to close (the process exiting closes it), then for the
    /// exit status, checked every few milliseconds: no event announces a reaped child.
    pub fn try_wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while self.status.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => self.stdout_seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, then waits up to [`DEADLINE`] for the exit status. Panics (after SIGKILL) if
    /// the process ignores it.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        match self.try_wait_exit(DEADLINE) {
            Some(status) => status,
            None => {
                self.kill();
                panic!(
                    "{}: did not exit within {DEADLINE:?} of SIGTERM",
                    self.label
                )
            }
        }
    }

    /// SIGKILL, then waits for the process to be reaped.
    pub fn kill(&mut self) -> ExitStatus {
        if self.try_status().is_none() {
            // Fails only if it has already exited.
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("wait for a killed child");
        self.status = Some(status);
        status
    }

    /// Every stdout line read so far and everything written to stderr, for failure reports.
    pub fn dump(&self) -> String {
        let mut text = String::new();
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let status = self
            .status
            .map_or_else(|| "running".to_owned(), |s| s.to_string());
        text.push_str(&format!(
            "===== {} (pid {}, {status}): {}\n",
            self.label,
            self.child.id(),
            self.cmdline
        ));
        text.push_str("----- stdout\n");
        for line in &self.stdout_seen {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!("----- stderr ({})\n", self.stderr_path.display()));
        text.push_str(&tail(&stderr, 300));
        text.push_str("===== end\n");
        text
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.is_running() {
            self.signal("TERM");
            if self.try_wait_exit(Duration::from_secs(5)).is_none() {
                self.kill();
            }
        }
        if std::thread::panicking() {
            // Give the stderr thread a moment to write the last lines it read.
            let _ = self.stderr.recv_timeout(Duration::from_millis(100));
            eprintln!("{}", self.dump());
        }
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[... {skip} earlier lines]\n"));
    }
    for line in &lines[skip..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn read_stdout(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for_each_line(stdout, |line| tx.send(line).is_ok());
    });
    rx
}

fn read_stderr(stderr: ChildStderr, mut file: File) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for_each_line(stderr, |line| {
            let _ = writeln!(file, "{line}");
            // Keep copying to the file even when nobody reads the channel any more.
            let _ = tx.send(line);
            true
        });
    });
    rx
}

/// Calls `f` with each line of `r` (lossy UTF-8, newline removed) until EOF or `f` says stop.
fn for_each_line(r: impl Read, mut f: impl FnMut(String) -> bool) {
    let mut reader = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if !f(String::from_utf8_lossy(&buf).into_owned()) {
                    return;
                }
            }
        }
    }
}

/// `program arg arg ...`, for messages.
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The captured result of a command run to completion.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub cmdline: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything it wrote to stderr (lossy UTF-8).
    pub stderr: String,
}

impl CmdOutput {
    /// The exit code, `None` if it was killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics, showing everything, unless the command exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "command failed:\n{self}");
        self
    }

    /// Panics, showing everything, unless the command exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit code {code}:\n{self}"
        );
        self
    }

    /// Stdout parsed as one JSON document. Panics, showing everything, if it is not one.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self}"))
    }
}

impl fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.cmdline)?;
        writeln!(f, "exit: {}", self.status)?;
        writeln!(f, "----- stdout\n{}", self.stdout)?;
        write!(f, "----- stderr\n{}", self.stderr)
    }
}

/// Runs `cmd` to completion with stdin closed, capturing its output. Panics (after SIGKILL)
/// if it runs longer than `timeout`.
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> CmdOutput {
    run_with_input(cmd, None, timeout)
}

/// Runs `cmd` to completion with `input` on its stdin (then end of input; `None` closes stdin
/// at once), capturing its output. Panics (after SIGKILL) if it runs longer than `timeout`.
pub fn run_with_input(mut cmd: Command, input: Option<Vec<u8>>, timeout: Duration) -> CmdOutput {
    let cmdline = describe(&cmd);
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
    let pid = child.id();
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        // A separate writer, so a child that writes a lot before reading cannot deadlock us.
        // It may exit without reading everything: a broken pipe is not our error.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => CmdOutput {
            cmdline,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Ok(Err(e)) => panic!("waiting for {cmdline}: {e}"),
        Err(_) => {
            // The child is not reaped yet (the thread still waits on it): the pid is its own.
            let _ = send_signal(pid, Signal::KILL);
            let partial = rx
                .recv_timeout(Duration::from_secs(5))
                .ok()
                .and_then(Result::ok)
                .map(|out| {
                    format!(
                        "----- stdout\n{}\n----- stderr\n{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    )
                })
                .unwrap_or_default();
            panic!("{cmdline} ran longer than {timeout:?}; killed it\n{partial}")
        }
    }
}

/// Sends `sig` to the process `pid` (`kill(2)`).
pub(crate) fn send_signal(pid: u32, sig: Signal) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    rustix::process::kill_process(pid, sig).map_err(std::io::Error::from)
}
