//! A program on a pseudo-terminal, as a user at a terminal runs it: stdin, stdout and stderr
//! are the terminal, keys are written to it and everything the program draws is collected.
//! Waits are on that output; on failure the output (escapes made visible) is printed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustix::fs::OFlags;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{LocalModes, Winsize, tcgetattr, tcsetwinsize};

/// Columns and rows of the terminal.
const SIZE: (u16, u16) = (120, 40);

/// What the program wrote to the terminal so far, and whether it can write more.
#[derive(Debug, Default)]
struct Screen {
    bytes: Vec<u8>,
    closed: bool,
}

/// A program whose stdin, stdout and stderr are one pseudo-terminal. Dropping it kills the
/// program if it still runs.
#[derive(Debug)]
pub struct PtyProc {
    label: String,
    child: Child,
    master: File,
    screen: Arc<(Mutex<Screen>, Condvar)>,
    status: Option<ExitStatus>,
}

impl PtyProc {
    /// Starts `cmd` on a new terminal of 120x40 with `TERM=xterm`. Panics if the terminal or
    /// the program cannot be had.
    pub fn spawn(label: &str, mut cmd: Command) -> PtyProc {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let path = name.to_str().expect("pts path").to_owned();
        let size = Winsize {
            ws_col: SIZE.0,
            ws_row: SIZE.1,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(&master, size).expect("set the terminal size");
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(i32::try_from(OFlags::NOCTTY.bits()).expect("flag fits"))
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        let fd = |f: &File| -> Stdio { OwnedFd::from(f.try_clone().expect("dup")).into() };
        cmd.env("TERM", "xterm")
            .stdin(fd(&slave))
            .stdout(fd(&slave))
            .stderr(fd(&slave));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        // Only the program holds the terminal's side now: its exit ends our reads.
        drop(cmd);
        drop(slave);
        let master = File::from(master);
        let screen = Arc::new((Mutex::new(Screen::default()), Condvar::new()));
        let mut reader = master.try_clone().expect("dup the master");
        let shared = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = reader.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*shared;
                let mut s = lock.lock().unwrap_or_else(PoisonError::into_inner);
                if n == 0 {
                    s.closed = true;
                } else {
                    s.bytes.extend_from_slice(&buf[..n]);
                }
                cv.notify_all();
                if n == 0 {
                    break;
                }
            }
        });
        PtyProc {
            label: label.to_owned(),
            child,
            master,
            screen,
            status: None,
        }
    }

    /// Types `bytes` (`\r` is Enter, `\x03` ctrl-c, `\x04` ctrl-d).
    pub fn type_keys(&mut self, bytes: &[u8]) {
        self.master
            .write_all(bytes)
            .and_then(|()| self.master.flush())
            .unwrap_or_else(|e| panic!("{}: cannot type: {e}", self.label));
    }

    /// How many bytes the program has written so far.
    pub fn len(&self) -> usize {
        self.screen
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
            .len()
    }

    /// True when nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the program wrote from byte `from` on, with escape sequences removed.
    pub fn text_from(&self, from: usize) -> String {
        let s = self.screen.0.lock().unwrap_or_else(PoisonError::into_inner);
        plain(&s.bytes[from.min(s.bytes.len())..])
    }

    /// Waits until the text written from byte `from` on (escape sequences removed) contains
    /// `needle`; returns the number of bytes written at that moment. Panics after `timeout`.
    #[track_caller]
    pub fn wait_text(&self, from: usize, needle: &str, timeout: Duration) -> usize {
        self.wait_until(from, &format!("{needle:?}"), timeout, |text| {
            text.contains(needle)
        })
    }

    /// Waits until `check` accepts the text written from byte `from` on (escape sequences
    /// removed), re-checked on each new output; returns the number of bytes written at that
    /// moment. Panics after `timeout`, naming `what`.
    #[track_caller]
    pub fn wait_until(
        &self,
        from: usize,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&str) -> bool,
    ) -> usize {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.screen;
        let mut s = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let from = from.min(s.bytes.len());
            if check(&plain(&s.bytes[from..])) {
                return s.bytes.len();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && !s.closed,
                "{}: {what} not shown{} within {timeout:?}; the terminal shows:\n{}",
                self.label,
                if s.closed { " (terminal closed)" } else { "" },
                visible(&s.bytes)
            );
            s = cv
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for the program to exit, at most `timeout`: first for the terminal to close
    /// (the program's exit closes it), then for the exit status.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        {
            let (lock, cv) = &*self.screen;
            let mut s = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !s.closed {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "{} still runs after {timeout:?}; the terminal shows:\n{}",
                    self.label,
                    visible(&s.bytes)
                );
                s = cv
                    .wait_timeout(s, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        let status = self.child.wait().expect("wait");
        self.status = Some(status);
        status
    }

    /// Everything written so far as it was written (escapes, carriage returns), as text.
    pub fn output(&self) -> String {
        let s = self.screen.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&s.bytes).into_owned()
    }

    /// Whether the terminal is back in its usual mode (line editing and echo on).
    pub fn is_cooked(&self) -> bool {
        let t = tcgetattr(&self.master).expect("tcgetattr");
        t.local_modes
            .contains(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG)
    }

    /// Everything written so far, escapes made visible, for assertion messages.
    pub fn dump(&self) -> String {
        visible(
            &self
                .screen
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .bytes,
        )
    }
}

impl Drop for PtyProc {
    fn drop(&mut self) {
        if self.status.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- {} on a terminal ---\n{}", self.label, self.dump());
        }
    }
}

/// `bytes` as text with CSI (`ESC [ ... final`) and other `ESC x` sequences and carriage
/// returns removed.
pub fn plain(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// `bytes` with ESC shown as `\e` and carriage returns as `\r`.
fn visible(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace('\u{1b}', "\\e")
        .replace('\r', "\\r")
}
