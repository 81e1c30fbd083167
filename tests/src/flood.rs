//! Connection floods: many TCP connections that open and stay idle, and slow clients that
//! send one byte a second, held by a runtime of their own on a background thread while the
//! test drives the daemons. Each connection reports when the server closes it (end of
//! stream or reset) on a channel, with how long it was held; and a daemon's open file
//! descriptors are read from `/proc` to see what it holds and that it lets go.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// How a flood connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The server closed it: end of stream, a reset, or a failed write.
    ByServer,
    /// The flood was stopped first.
    Stopped,
}

/// A set of held connections to one server.
pub struct Flood {
    rt: Option<Runtime>,
    stop: watch::Sender<bool>,
    ended: Receiver<(Ended, Duration)>,
    /// Connections that opened.
    pub opened: usize,
    /// Connections that could not be made at all.
    pub failed: usize,
    closed: usize,
    held: Vec<Duration>,
}

impl std::fmt::Debug for Flood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flood")
            .field("opened", &self.opened)
            .field("failed", &self.failed)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// `n` loopback source addresses starting at `127.a.b.c` (`first`), so a flood looks like
/// it comes from `n` hosts (Linux routes all of 127.0.0.0/8 to loopback).
pub fn loopback_sources(first: Ipv4Addr, n: u32) -> Vec<IpAddr> {
    let base = u32::from(first);
    (0..n)
        .map(|i| IpAddr::V4(Ipv4Addr::from(base + i)))
        .collect()
}

impl Flood {
    /// Opens `n` connections to `target`, spread over `sources`, and returns once every
    /// connect has finished. Each then reads until the server closes it; a slow client
    /// (`trickle` not empty) also writes the next byte of `trickle` every second, cycling.
    pub fn start(target: SocketAddr, n: usize, sources: &[IpAddr], trickle: &[u8]) -> Flood {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the flood");
        let (stop, stopped) = watch::channel(false);
        let (tx, ended) = mpsc::channel();
        let conns = rt.block_on(connect_all(target, n, sources));
        let failed = conns.iter().filter(|c| c.is_err()).count();
        let mut opened = 0;
        for conn in conns.into_iter().flatten() {
            opened += 1;
            let (tx, stopped) = (tx.clone(), stopped.clone());
            rt.spawn(hold(conn, trickle.to_vec(), tx, stopped));
        }
        Flood {
            rt: Some(rt),
            stop,
            ended,
            opened,
            failed,
            closed: 0,
            held: Vec::new(),
        }
    }

    /// Connections the server has closed so far.
    pub fn closed_by_server(&mut self) -> usize {
        while let Ok(e) = self.ended.try_recv() {
            self.record(e);
        }
        self.closed
    }

    fn record(&mut self, (how, held): (Ended, Duration)) {
        if how == Ended::ByServer {
            self.closed += 1;
            self.held.push(held);
        }
    }

    /// Waits until the server has closed `n` of the connections; panics after `timeout`.
    /// Returns the shortest and longest time a closed connection was held.
    #[track_caller]
    pub fn wait_closed(&mut self, n: usize, timeout: Duration) -> (Duration, Duration) {
        let deadline = Instant::now() + timeout;
        while self.closed_by_server() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ended.recv_timeout(left) {
                Ok(e) => self.record(e),
                Err(_) => panic!(
                    "the server closed {} of {} flood connections ({n} expected) within {timeout:?}",
                    self.closed, self.opened
                ),
            }
        }
        let min = self.held.iter().min().copied().unwrap_or_default();
        let max = self.held.iter().max().copied().unwrap_or_default();
        (min, max)
    }

    /// Closes every connection still open (our side), and stops the runtime.
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connects `n` times, at most 256 connects in flight.
async fn connect_all(
    target: SocketAddr,
    n: usize,
    sources: &[IpAddr],
) -> Vec<io::Result<TcpStream>> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let batch: Vec<_> = (i..n.min(i + 256))
            .map(|k| tokio::spawn(connect_from(sources[k % sources.len()], target)))
            .collect();
        for h in batch {
            out.push(h.await.unwrap_or_else(|e| Err(io::Error::other(e))));
        }
        i += 256;
    }
    out
}

async fn connect_from(from: IpAddr, target: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(target).await
}

/// Holds one connection until the server closes it or the flood stops.
async fn hold(
    mut conn: TcpStream,
    trickle: Vec<u8>,
    tx: Sender<(Ended, Duration)>,
    mut stopped: watch::Receiver<bool>,
) {
    let start = Instant::now();
    let (mut rd, mut wr) = conn.split();
    let read_end = async {
        let mut buf = [0u8; 512];
        // Whatever the server says (an alert, a refusal), the connection ends only when it
        // closes or resets it.
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let trickle_out = async {
        if trickle.is_empty() {
            return std::future::pending::<()>().await;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for byte in trickle.iter().cycle() {
            tick.tick().await;
            if wr.write_all(&[*byte]).await.is_err() {
                return;
            }
        }
    };
    let how = tokio::select! {
        () = read_end => Ended::ByServer,
        () = trickle_out => Ended::ByServer,
        _ = stopped.wait_for(|s| *s) => Ended::Stopped,
    };
    let _ = tx.send((how, start.elapsed()));
}

/// The start of a real TLS handshake (a ClientHello as the daemons' peers send it), for a
/// slow client to trickle: the server must wait for the rest, until its deadline.
pub fn client_hello() -> Vec<u8> {
    let key = crate::raw::random_key();
    let config = transport::client_config(&key, None).expect("a client TLS config");
    let mut conn =
        tokio_rustls::rustls::ClientConnection::new(config, transport::tls::server_name())
            .expect("a TLS client");
    let mut out = Vec::new();
    conn.write_tls(&mut out).expect("the ClientHello");
    out
}

/// Open file descriptors of process `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("fd"))
        .map(|d| d.count())
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/fd: {e}"))
}

/// Waits until process `pid` holds at most `max` file descriptors, re-reading `/proc`
/// every 50 ms (no event announces a closed descriptor); panics after `timeout`. Returns
/// the count.
#[track_caller]
pub fn wait_fds_at_most(pid: u32, max: usize, timeout: Duration, what: &str) -> usize {
    wait_fds(pid, timeout, |n| {
        (n <= max).then_some(n).ok_or_else(|| {
            format!("{what} (pid {pid}) still holds {n} file descriptors, not at most {max}")
        })
    })
}

/// Waits until process `pid` holds at least `min` file descriptors (every 50 ms); panics
/// after `timeout`. Returns the count.
#[track_caller]
pub fn wait_fds_at_least(pid: u32, min: usize, timeout: Duration, what: &str) -> usize {
    wait_fds(pid, timeout, |n| {
        (n >= min).then_some(n).ok_or_else(|| {
            format!("{what} (pid {pid}) holds {n} file descriptors, not at least {min}")
        })
    })
}

#[track_caller]
fn wait_fds(pid: u32, timeout: Duration, ok: impl Fn(usize) -> Result<usize, String>) -> usize {
    crate::poll(timeout, Duration::from_millis(50), || ok(fd_count(pid)))
}
