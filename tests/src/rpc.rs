//! A blocking JSON-RPC client for p2pd's control socket, for tests that must see the exact
//! lines on the wire (errors, over-long lines) or must not depend on p2pctl.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One connection to a control socket. Responses are matched to requests by id;
/// notifications read meanwhile are queued for [`RpcClient::next_event`].
#[derive(Debug)]
pub struct RpcClient {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    /// Bytes of a line whose end has not arrived yet (a read timed out mid-line).
    partial: Vec<u8>,
    next_id: u64,
    queued: VecDeque<Value>,
}

impl RpcClient {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> io::Result<RpcClient> {
        let stream = UnixStream::connect(path)?;
        stream.set_write_timeout(Some(crate::DEADLINE))?;
        Ok(RpcClient {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            partial: Vec::new(),
            next_id: 1,
            queued: VecDeque::new(),
        })
    }

    /// Writes `bytes` exactly as given (add the `\n` yourself).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    /// Writes `line` and a newline.
    pub fn send_line(&mut self, line: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.send_raw(&bytes)
    }

    /// The next line from the daemon, without its newline. `Ok(None)` at end of stream;
    /// an error of kind `WouldBlock` or `TimedOut` when `timeout` passes first (the part of a
    /// line read so far is kept for the next call).
    pub fn read_line(&mut self, timeout: Duration) -> io::Result<Option<String>> {
        let timeout = timeout.max(Duration::from_millis(1));
        self.reader.get_ref().set_read_timeout(Some(timeout))?;
        match self.reader.read_until(b'\n', &mut self.partial) {
            Ok(0) if self.partial.is_empty() => Ok(None),
            Ok(_) => {
                let mut line = std::mem::take(&mut self.partial);
                if line.last() == Some(&b'\n') {
                    line.pop();
                } else {
                    // End of stream in the middle of a line: return what there is.
                }
                String::from_utf8(line)
                    .map(Some)
                    .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))
            }
            Err(e) => Err(e),
        }
    }

    /// The next line parsed as JSON. Panics on end of stream, timeout or bad JSON.
    #[track_caller]
    pub fn read_json(&mut self, timeout: Duration) -> Value {
        match self.read_line(timeout) {
            Ok(Some(line)) => serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("daemon sent a line that is not JSON ({e}): {line}")),
            Ok(None) => panic!("the daemon closed the control connection"),
            Err(e) => panic!("no line from the daemon within {timeout:?}: {e}"),
        }
    }

    /// The next line that is a response (has an `id`), queueing notifications met on the
    /// way. Panics on end of stream or timeout.
    #[track_caller]
    pub fn read_response(&mut self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.read_json(deadline.saturating_duration_since(Instant::now()));
            if v.get("id").is_some() {
                return v;
            }
            self.queued.push_back(v);
        }
    }

    /// Sends a request and returns the whole response object (`result` or `error`).
    #[track_caller]
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&req.to_string())
            .unwrap_or_else(|e| panic!("cannot send {method}: {e}"));
        let resp = self.read_response(crate::DEADLINE);
        assert_eq!(resp["id"], json!(id), "response to another request: {resp}");
        assert_eq!(resp["jsonrpc"], "2.0", "{resp}");
        resp
    }

    /// Calls `method` and returns its result. Panics on an error response.
    #[track_caller]
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let resp = self.request(method, params);
        match resp.get("result") {
            Some(result) if resp.get("error").is_none() => result.clone(),
            _ => panic!("{method} failed: {resp}"),
        }
    }

    /// Calls `subscribe`; events follow as notifications.
    #[track_caller]
    pub fn subscribe(&mut self) {
        let r = self.call("subscribe", json!({}));
        assert_eq!(r, json!({"subscribed": true}));
    }

    /// The next event (the `params` of an `event` notification), or `None` after `timeout`.
    /// Panics if the daemon closes the connection.
    #[track_caller]
    pub fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(n) = self.queued.pop_front() {
                if n["method"] == "event" {
                    return Some(n["params"].clone());
                }
                continue;
            }
            match self.read_line(deadline.saturating_duration_since(Instant::now())) {
                Ok(Some(line)) => {
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("daemon sent bad JSON ({e}): {line}"));
                    assert!(v.get("id").is_none(), "unexpected response: {v}");
                    self.queued.push_back(v);
                }
                Ok(None) => panic!("the daemon closed the control connection"),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                Err(e) => panic!("reading an event: {e}"),
            }
        }
    }

    /// Waits for an event matching `pred` (skipping others). Panics after `timeout`, listing
    /// the events seen.
    #[track_caller]
    pub fn wait_event(
        &mut self,
        what: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            match self.next_event(deadline.saturating_duration_since(Instant::now())) {
                Some(ev) if pred(&ev) => return ev,
                Some(ev) => seen.push(ev),
                None => panic!("no event {what} within {timeout:?}; saw {seen:#?}"),
            }
        }
    }
}
