//! Both peers' event streams, read on one thread each and time-stamped as each line is read
//! (before it is parsed), merged into one channel, and what the benchmark needs from them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::WAIT;
use proto::api::{Call, EVENT_NOTIFICATION};
use proto::rpc::{Request, ServerLine, parse_server_line};
use serde_json::Value;

/// Which daemon an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The sender.
    Alice,
    /// The receiver.
    Bob,
}

/// One event, with the time its line was read.
struct Ev {
    who: Who,
    at: Instant,
    event: Value,
}

/// Subscribes on `socket`, waits for the answer, then reads events on a thread until the
/// stream ends. Returns a handle to shut the stream down.
fn subscribe(socket: &Path, who: Who, tx: Sender<Ev>) -> anyhow::Result<UnixStream> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to {}", socket.display()))?;
    let mut line = serde_json::to_string(&Request::new(1, Call::Subscribe {}))?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    stream.set_read_timeout(Some(WAIT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    match parse_server_line(answer.trim_end())? {
        ServerLine::Response(r) if r.id == 1 => {}
        other => bail!("unexpected answer to subscribe: {other:?}"),
    }
    stream.set_read_timeout(None)?;
    std::thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let at = Instant::now();
            if let Ok(ServerLine::Notification(n)) = parse_server_line(line.trim_end())
                && n.method == EVENT_NOTIFICATION
                && tx
                    .send(Ev {
                        who,
                        at,
                        event: n.params,
                    })
                    .is_err()
            {
                return;
            }
        }
    });
    Ok(stream)
}

/// A time-stamped transfer milestone, by transfer id.
pub type Marks = HashMap<String, Instant>;

/// What the event streams have shown so far.
#[derive(Default)]
pub struct Seen {
    /// bob: `message_received`, by text.
    pub received: HashMap<String, Instant>,
    /// bob: `transfer_offered` (incoming).
    pub offered_in: Marks,
    /// alice: `transfer_updated` to `running`.
    pub running_out: Marks,
    /// bob: `transfer_updated` to `running`.
    pub running_in: Marks,
    /// alice: the last `transfer_progress` (the sender publishes one after its last frame).
    pub last_progress_out: Marks,
    /// bob: `transfer_updated` to `done`.
    pub done_in: Marks,
    /// alice: `transfer_updated` to `done`.
    pub done_out: Marks,
    /// bob: `transfer_progress` as (time, id, verified bytes).
    pub progress_in: Vec<(Instant, String, u64)>,
    /// Events dropped by a daemon because a stream fell behind (`lagged`).
    pub lagged: u64,
}

/// Both event streams.
pub struct Events {
    rx: Receiver<Ev>,
    streams: Vec<UnixStream>,
    /// What they showed.
    pub seen: Seen,
}

impl Events {
    /// Subscribes to alice's and bob's events.
    pub fn start(alice: &Path, bob: &Path) -> anyhow::Result<Events> {
        let (tx, rx) = channel();
        let streams = vec![
            subscribe(alice, Who::Alice, tx.clone())?,
            subscribe(bob, Who::Bob, tx)?,
        ];
        Ok(Events {
            rx,
            streams,
            seen: Seen::default(),
        })
    }

    /// Records one event; a transfer that fails, is declined or cancelled is an error.
    fn note(&mut self, ev: Ev) -> anyhow::Result<()> {
        let Ev { who, at, event } = ev;
        let s = &mut self.seen;
        let kind = event["type"].as_str().unwrap_or("");
        let t = &event["transfer"];
        let id = t["id"].as_str().unwrap_or("").to_string();
        let state = t["state"].as_str().unwrap_or("");
        match (who, kind) {
            (Who::Bob, "message_received") => {
                let text = event["message"]["text"].as_str().unwrap_or("").to_string();
                s.received.insert(text, at);
            }
            (Who::Bob, "transfer_offered") => {
                s.offered_in.insert(id, at);
            }
            // Progress while `scanning` counts bytes hashed, not sent.
            (Who::Alice, "transfer_progress") if state != "scanning" => {
                s.last_progress_out.insert(id, at);
            }
            (Who::Bob, "transfer_progress") => {
                let done = t["done_bytes"].as_u64().unwrap_or(0);
                s.progress_in.push((at, id, done));
            }
            (_, "transfer_updated") => {
                let map = match (who, state) {
                    (Who::Alice, "running") => &mut s.running_out,
                    (Who::Bob, "running") => &mut s.running_in,
                    (Who::Alice, "done") => &mut s.done_out,
                    (Who::Bob, "done") => &mut s.done_in,
                    (_, "failed" | "declined" | "cancelled") => bail!(
                        "{who:?}: transfer {id} {state}: {}",
                        t["error"].as_str().unwrap_or("")
                    ),
                    _ => return Ok(()),
                };
                map.insert(id, at);
            }
            (_, "lagged") => s.lagged += event["missed"].as_u64().unwrap_or(0),
            _ => {}
        }
        Ok(())
    }

    /// Records every event already waiting.
    pub fn drain(&mut self) -> anyhow::Result<()> {
        while let Ok(ev) = self.rx.try_recv() {
            self.note(ev)?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for one event, then records every event waiting. A timeout is
    /// not an error.
    pub fn poll(&mut self, timeout: Duration) -> anyhow::Result<()> {
        match self.rx.recv_timeout(timeout) {
            Ok(ev) => self.note(ev)?,
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => bail!("an event stream ended"),
        }
        self.drain()
    }

    /// Records events until `done(&seen)` holds; fails after `timeout` (`what` says what was
    /// awaited).
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Seen) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain()?;
            if done(&self.seen) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(ev) => self.note(ev)?,
                Err(RecvTimeoutError::Timeout) => bail!("no {what} within {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("an event stream ended while waiting for {what}")
                }
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        for s in &self.streams {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}
