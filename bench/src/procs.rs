//! Child daemons (`trackerd`, `p2pd`): starting one with its stderr in a file, reading the
//! two lines it prints on stdout once it is ready, and stopping it with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::WAIT;

/// Time a stopping daemon gets after SIGTERM before it is killed (their own grace period is
/// 5 s).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The first line a daemon prints once it is listening, before its address.
pub const LISTENING: &str = "listening on ";

/// A child daemon; killed on drop if still running.
pub struct Daemon {
    name: &'static str,
    child: Child,
    stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `cmd` (which runs `bin`, named `name` in messages) with stdin closed, stdout
    /// piped and stderr to `{name}.stderr` in `dir`. Returns it with the first two lines it
    /// prints on stdout, waiting up to [`WAIT`] for them; the rest of stdout is drained.
    pub fn start(
        name: &'static str,
        bin: &Path,
        cmd: &mut Command,
        dir: &Path,
    ) -> anyhow::Result<(Daemon, String, String)> {
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path)?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        // Read the two startup lines on a thread (with a timeout), then drain the pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let second = lines.next();
            let _ = tx.send((first, second));
            for _ in lines {}
        });
        let daemon = Daemon {
            name,
            child,
            stderr_path,
        };
        match rx.recv_timeout(WAIT) {
            Ok((Some(Ok(a)), Some(Ok(b)))) => Ok((daemon, a, b)),
            _ => bail!(
                "{name} did not print its startup lines; stderr:\n{}",
                daemon.stderr_tail()
            ),
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the daemon wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Sends SIGTERM (`kill(2)`, through rustix: the workspace denies unsafe code) and waits
    /// for the exit, killing the daemon after [`STOP_TIMEOUT`]. Returns how long it took to
    /// stop. A daemon that has already exited is only reaped; any exit but success is
    /// noted on stderr.
    pub fn stop(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        if let Some(status) = self.child.try_wait()? {
            self.note_exit(status);
            return Ok(started.elapsed());
        }
        let pid = i32::try_from(self.pid())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .with_context(|| format!("no such pid {}", self.pid()))?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .with_context(|| format!("kill -TERM {} ({})", self.pid(), self.name))?;
        while started.elapsed() < STOP_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                self.note_exit(status);
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!(
            "{} did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed it",
            self.name
        )
    }

    /// Sends SIGKILL and reaps the daemon: it stops at once, with no shutdown of its own.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child
            .kill()
            .with_context(|| format!("kill -KILL {} ({})", self.pid(), self.name))?;
        self.child.wait()?;
        Ok(())
    }

    fn note_exit(&self, status: std::process::ExitStatus) {
        if !status.success() {
            eprintln!("note: {} exited with {status}", self.name);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The rest of startup line `line` (the `which` line, e.g. `"first"`, of daemon `name`)
/// after `prefix`, or an error quoting the line.
pub fn after_prefix<'a>(
    line: &'a str,
    prefix: &str,
    which: &str,
    name: &str,
) -> anyhow::Result<&'a str> {
    line.strip_prefix(prefix)
        .with_context(|| format!("unexpected {which} line from {name}: {line:?}"))
}

/// The address and key, as printed, from `trackerd`'s two startup lines
/// (`listening on ADDR`, `tracker key KEY`).
pub fn tracker_lines<'a>(first: &'a str, second: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    let addr = after_prefix(first, LISTENING, "first", "trackerd")?;
    let key = after_prefix(second, "tracker key ", "second", "trackerd")?;
    Ok((addr, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_lines_are_split() {
        let (addr, key) = tracker_lines("listening on 127.0.0.1:7", "tracker key abc").unwrap();
        assert_eq!((addr, key), ("127.0.0.1:7", "abc"));
        let err = tracker_lines("hello", "tracker key abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected first line from trackerd: \"hello\""
        );
        assert!(tracker_lines("listening on x", "key").is_err());
    }
}
