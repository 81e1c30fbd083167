//! A JSON-RPC 2.0 client for a p2pd control socket: one object per line, with the pieces
//! of a call (write, read, parse) apart so that a round trip can be timed without the
//! serialising and parsing.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use proto::api::Call;
use proto::rpc::{Outcome, Request, ServerLine, parse_server_line};
use serde_json::Value;

use crate::WAIT;

/// A JSON-RPC 2.0 connection to a control socket.
pub struct Rpc {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    line: String,
}

/// One request written and the next line read, with the time around the two.
pub struct Timed {
    /// Just before the request line was written.
    pub sent: Instant,
    /// Just after the next line was read.
    pub read: Instant,
    /// That line's result if it was the response, `None` if it was a notification.
    pub result: Option<Value>,
}

impl Rpc {
    /// Connects to the control socket at `path`; reads time out after [`WAIT`].
    pub fn connect(path: &Path) -> anyhow::Result<Rpc> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("cannot connect to {}", path.display()))?;
        stream.set_read_timeout(Some(WAIT))?;
        Ok(Rpc {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
            line: String::new(),
        })
    }

    /// Serialises a request for `call` with the next id, newline included.
    fn request(&mut self, call: Call) -> anyhow::Result<(u64, String)> {
        let id = self.next_id;
        self.next_id += 1;
        let mut text = serde_json::to_string(&Request::new(id, call))?;
        text.push('\n');
        Ok((id, text))
    }

    /// Writes one prepared line.
    fn write(&mut self, text: &str) -> anyhow::Result<()> {
        self.writer.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Reads the next line (EOF and timeouts are errors) and returns it, newline included.
    pub fn read_line(&mut self) -> anyhow::Result<&str> {
        self.line.clear();
        let n = self.reader.read_line(&mut self.line)?;
        if n == 0 {
            bail!("the daemon closed the control connection");
        }
        Ok(&self.line)
    }

    /// Reads lines until the response to `id`; returns its result. Notifications are skipped.
    fn response(&mut self, id: u64) -> anyhow::Result<Value> {
        loop {
            self.read_line()?;
            if let Some(v) = self.parse_response(id)? {
                return Ok(v);
            }
        }
    }

    /// Interprets the last line read: `Some(result)` if it is the response to `id`, `None`
    /// if it is a notification.
    fn parse_response(&self, id: u64) -> anyhow::Result<Option<Value>> {
        match parse_server_line(self.line.trim_end())
            .with_context(|| format!("bad line from the daemon: {:?}", self.line))?
        {
            ServerLine::Notification(_) => Ok(None),
            ServerLine::Response(r) if r.id != id => {
                bail!("response to {} while waiting for {id}", r.id)
            }
            ServerLine::Response(r) => match r.outcome {
                Outcome::Result(v) => Ok(Some(v)),
                Outcome::Error(e) => bail!("error {}: {}", e.code, e.message),
            },
        }
    }

    /// One call, answered.
    pub fn call(&mut self, call: Call) -> anyhow::Result<Value> {
        let (id, text) = self.request(call)?;
        self.write(&text)?;
        self.response(id)
    }

    /// One call timed: the request is serialised first, then the clock runs from the write
    /// to the next line read (which is parsed after the second time stamp).
    pub fn timed_call(&mut self, call: Call) -> anyhow::Result<Timed> {
        let (id, text) = self.request(call)?;
        let sent = Instant::now();
        self.write(&text)?;
        self.read_line()?;
        let read = Instant::now();
        let result = self.parse_response(id)?;
        Ok(Timed { sent, read, result })
    }

    /// Sends `calls` with up to `window` unanswered at a time and waits for every answer, in
    /// any order (the daemon runs a connection's calls concurrently). Notifications are
    /// skipped; an error answer fails the run. Returns the results, in the order answered.
    pub fn pipelined(
        &mut self,
        calls: impl IntoIterator<Item = Call>,
        window: usize,
    ) -> anyhow::Result<Vec<Value>> {
        let mut calls = calls.into_iter();
        let (mut open, mut answered) = (0usize, Vec::new());
        loop {
            while open < window.max(1) {
                let Some(call) = calls.next() else { break };
                let (_, text) = self.request(call)?;
                self.write(&text)?;
                open += 1;
            }
            if open == 0 {
                return Ok(answered);
            }
            self.read_line()?;
            match parse_server_line(self.line.trim_end())
                .with_context(|| format!("bad line from the daemon: {:?}", self.line))?
            {
                ServerLine::Notification(_) => {}
                ServerLine::Response(r) => match r.outcome {
                    Outcome::Result(v) => {
                        open -= 1;
                        answered.push(v);
                    }
                    Outcome::Error(e) => bail!("call {}: error {}: {}", r.id, e.code, e.message),
                },
            }
        }
    }

    /// Reads this subscribed connection's events until `done` says yes to one; returns how
    /// many events came before it.
    pub fn wait_event(&mut self, mut done: impl FnMut(&Value) -> bool) -> anyhow::Result<usize> {
        let mut before = 0;
        loop {
            self.read_line()?;
            if let ServerLine::Notification(n) = parse_server_line(self.line.trim_end())
                .with_context(|| format!("bad line from the daemon: {:?}", self.line))?
            {
                if done(&n.params) {
                    return Ok(before);
                }
                before += 1;
            }
        }
    }

    /// Polls `peers` until a peer named `name` is online, for up to [`WAIT`]; `who` names
    /// this connection's daemon in the error. Returns how long it took.
    pub fn wait_online(&mut self, who: &str, name: &str) -> anyhow::Result<Duration> {
        self.wait_listed(who, name, true, Duration::from_millis(20))
    }

    /// Polls `peers` every `every` until a peer named `name` is listed with `online`, for up
    /// to [`WAIT`]; `who` names this connection's daemon in the error. Returns how long it
    /// took.
    pub fn wait_listed(
        &mut self,
        who: &str,
        name: &str,
        online: bool,
        every: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let peers = self.call(Call::Peers {})?;
            let found = peers.as_array().is_some_and(|a| {
                a.iter()
                    .any(|p| p["name"] == name && p["online"] == Value::Bool(online))
            });
            if found {
                return Ok(started.elapsed());
            }
            if started.elapsed() > WAIT {
                bail!("{who} does not list {name} with online={online} after {WAIT:?}: {peers}");
            }
            std::thread::sleep(every);
        }
    }
}
