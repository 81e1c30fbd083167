//! The operator's admin socket: a Unix socket (0600, in a 0700 directory) on which a running
//! tracker takes one-line commands from its own user and root only (checked with
//! `SO_PEERCRED`), and the client side that `trackerd release NAME` uses.
//!
//! The protocol is one request line and one answer line, both capped at [`MAX_LINE`] bytes:
//! `release NAME` is answered by `released NAME KEY`, `not-bound NAME` or `error TEXT`. Both
//! ends are this binary, so the format lives here rather than in `proto`.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::PeerName;
use svc::logging::ACTIVITY;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::state::Hub;

/// Longest request or answer line, newline included.
pub const MAX_LINE: usize = 1024;
/// Time a client gets to send its request, and the client waits for the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors binding the admin socket or talking to it.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Another tracker answers on the path.
    #[error("another trackerd is already running with admin socket {}", path.display())]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not a socket sits at the path.
    #[error("{} exists and is not a socket; remove it or choose another --admin-socket", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The socket's directory is open to other users.
    #[error(
        "admin socket directory {} has mode {mode:o}; it must be reachable by its owner only (0700)",
        path.display()
    )]
    OpenDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A system call failed.
    #[error("admin socket {}: {source}", path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The tracker answered something this binary does not understand.
    #[error("unexpected answer from the tracker: {0:?}")]
    BadAnswer(String),
}

/// A command to the running tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Free a name; drop its holder's registration if connected.
    Release(PeerName),
    /// Counters, for benchmarks and operators.
    Stats,
}

/// The tracker's counters, answering [`Request::Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live registered peers.
    pub live: u64,
    /// Event frames queued to links since start (one frame to one link counts once).
    pub events: u64,
    /// Links with an event queue (subscribing or watching).
    pub links: u64,
    /// Keys watched by at least one link.
    pub watched: u64,
}

/// The tracker's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name was bound to `key` and is free now.
    Released {
        /// The name.
        name: String,
        /// The key that held it.
        key: String,
    },
    /// Nothing held the name.
    NotBound {
        /// The name.
        name: String,
    },
    /// The request failed.
    Error(String),
    /// The counters.
    Stats(Stats),
}

impl Request {
    /// Parses one request line (without its newline).
    pub fn parse(line: &str) -> Result<Request, String> {
        match line.split_once(' ') {
            Some(("release", name)) => PeerName::new(name)
                .map(Request::Release)
                .map_err(|e| format!("invalid name: {e}")),
            None if line == "stats" => Ok(Request::Stats),
            _ => Err("unknown command; expected: release NAME, or stats".into()),
        }
    }

    fn line(&self) -> String {
        match self {
            Request::Release(name) => format!("release {}\n", name.as_str()),
            Request::Stats => "stats\n".into(),
        }
    }
}

impl Answer {
    fn line(&self) -> String {
        let text = match self {
            Answer::Released { name, key } => format!("released {name} {key}"),
            Answer::NotBound { name } => format!("not-bound {name}"),
            Answer::Error(e) => format!("error {}", e.replace('\n', " ")),
            Answer::Stats(s) => format!(
                "stats live={} events={} links={} watched={}",
                s.live, s.events, s.links, s.watched
            ),
        };
        text + "\n"
    }

    /// Parses one answer line (without its newline).
    pub fn parse(line: &str) -> Option<Answer> {
        let (word, rest) = line.split_once(' ')?;
        Some(match word {
            "released" => {
                let (name, key) = rest.split_once(' ')?;
                Answer::Released {
                    name: name.into(),
                    key: key.into(),
                }
            }
            "not-bound" => Answer::NotBound { name: rest.into() },
            "error" => Answer::Error(rest.into()),
            "stats" => {
                let mut s = Stats::default();
                for field in rest.split(' ') {
                    let (k, v) = field.split_once('=')?;
                    let v: u64 = v.parse().ok()?;
                    match k {
                        "live" => s.live = v,
                        "events" => s.events = v,
                        "links" => s.links = v,
                        "watched" => s.watched = v,
                        _ => {}
                    }
                }
                Answer::Stats(s)
            }
            _ => return None,
        })
    }
}

/// Binds the admin socket at `path` with mode 0600. A missing parent directory is made with
/// mode 0700; an existing one must not be open to group or others. A stale socket left by a
/// killed tracker is replaced; a live one is an error.
pub async fn bind(path: &Path) -> Result<UnixListener, AdminError> {
    let io_err = |source| AdminError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if dir.exists() {
        let mode = std::fs::metadata(dir).map_err(io_err)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AdminError::OpenDirectory {
                path: dir.to_owned(),
                mode,
            });
        }
    } else {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(AdminError::InUse {
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(io_err)?;
        }
        Ok(_) => {
            return Err(AdminError::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    Ok(listener)
}

/// Accepts admin connections until `cancel`, one tracked task each.
pub async fn serve(
    listener: UnixListener,
    hub: Hub,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    let own_uid = svc::current_uid();
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!("admin socket accept failed: {e}");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        let (hub, cancel) = (hub.clone(), cancel.clone());
        tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                r = handle(stream, &hub, own_uid) => if let Err(e) = r {
                    debug!("admin connection ended: {e}");
                },
            }
        });
    }
}

async fn handle(mut stream: UnixStream, hub: &Hub, own_uid: u32) -> io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    if uid != 0 && uid != own_uid {
        warn!(
            uid,
            "admin socket: refused a caller that is neither root nor the service user"
        );
        let refusal = Answer::Error(format!("uid {uid} may not use the admin socket"));
        return stream.write_all(refusal.line().as_bytes()).await;
    }
    let (read, mut write) = stream.split();
    let mut line = String::new();
    let mut capped = BufReader::new(read.take(MAX_LINE as u64));
    tokio::time::timeout(IO_TIMEOUT, capped.read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request in time"))??;
    let answer = match line.strip_suffix('\n').map(Request::parse) {
        None => Answer::Error(format!("a request is one line of at most {MAX_LINE} bytes")),
        Some(Err(e)) => Answer::Error(e),
        Some(Ok(Request::Release(name))) => release(hub, &name, uid),
        Some(Ok(Request::Stats)) => {
            let (events, links, watched) = hub.event_counts();
            Answer::Stats(Stats {
                live: hub.live_count() as u64,
                events,
                links: links as u64,
                watched: watched as u64,
            })
        }
    };
    write.write_all(answer.line().as_bytes()).await
}

fn release(hub: &Hub, name: &PeerName, uid: u32) -> Answer {
    match hub.release(name) {
        Ok(Some(key)) => {
            info!(target: ACTIVITY, op = "release", name = %name, key = %key, uid, "name released by the operator");
            Answer::Released {
                name: name.as_str().into(),
                key: key.to_string(),
            }
        }
        Ok(None) => Answer::NotBound {
            name: name.as_str().into(),
        },
        Err(e) => Answer::Error(format!("cannot store the release: {e}")),
    }
}

/// Asks the tracker listening on `socket` to release `name`.
pub async fn request_release(socket: &Path, name: PeerName) -> Result<Answer, AdminError> {
    let io_err = |source| AdminError::Io {
        path: socket.to_owned(),
        source,
    };
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await?;
        stream
            .write_all(Request::Release(name).line().as_bytes())
            .await?;
        let mut line = String::new();
        BufReader::new((&mut stream).take(MAX_LINE as u64))
            .read_line(&mut line)
            .await?;
        Ok::<_, io::Error>(line)
    };
    let line = tokio::time::timeout(IO_TIMEOUT, exchange)
        .await
        .map_err(|_| io_err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time")))?
        .map_err(io_err)?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Answer::parse(line).ok_or_else(|| AdminError::BadAnswer(line.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_garbage_is_refused() {
        let name = PeerName::new("alice").unwrap();
        let req = Request::Release(name.clone());
        assert_eq!(req.line(), "release alice\n");
        assert_eq!(Request::parse("release alice"), Ok(req));
        assert_eq!(Request::parse("stats"), Ok(Request::Stats));
        assert_eq!(Request::Stats.line(), "stats\n");
        for bad in [
            "",
            "release",
            "release ",
            "free alice",
            "release a b",
            "release \u{0}",
        ] {
            assert!(Request::parse(bad).is_err(), "{bad:?}");
        }
        for a in [
            Answer::Released {
                name: "alice".into(),
                key: "k".into(),
            },
            Answer::NotBound {
                name: "alice".into(),
            },
            Answer::Error("no such thing".into()),
            Answer::Stats(Stats {
                live: 1,
                events: 2,
                links: 3,
                watched: 4,
            }),
        ] {
            let line = a.line();
            assert_eq!(Answer::parse(line.strip_suffix('\n').unwrap()), Some(a));
        }
        assert_eq!(Answer::parse("what"), None);
    }

    #[tokio::test]
    async fn the_socket_is_private_and_a_live_one_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/admin.sock");
        let l = bind(&path).await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert!(matches!(bind(&path).await, Err(AdminError::InUse { .. })));
        drop(l);
        // Stale now: replaced.
        bind(&path).await.unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let open = dir.path().join("admin.sock");
        assert!(matches!(
            bind(&open).await,
            Err(AdminError::OpenDirectory { .. })
        ));
    }
}
