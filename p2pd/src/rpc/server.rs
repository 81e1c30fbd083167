//! The control socket: bound 0600 in a directory of our own that nobody else can write,
//! callers' uid checked, one task per connection reading capped lines. Each call runs as its
//! own task, owned by its connection (ended with it, or with the daemon), and is answered
//! when it ends: calls on one connection may be answered out of order, each response
//! carrying its request's id. `subscribe` alone is answered in place, so the client is
//! subscribed from the moment its response is sent. After a `log` call with `follow`, the
//! connection streams new activity records as `log` notifications (a later one replaces it).
//! On Windows the socket is a named pipe (`pipe.rs`), with no directory or uid to check.

use std::collections::HashMap;
use std::io;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use interprocess::local_socket::tokio::{Listener, Stream};
#[cfg(unix)]
use interprocess::local_socket::traits::StreamCommon as _;
use interprocess::local_socket::traits::tokio::Listener as _;
#[cfg(unix)]
use interprocess::local_socket::traits::tokio::Stream as _;
#[cfg(unix)]
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
#[cfg(unix)]
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use proto::api::{Call, EVENT_NOTIFICATION, Event, LOG_NOTIFICATION};
use proto::paths::SocketDirError;
#[cfg(unix)]
use proto::paths::{DirFacts, check_socket_dir};
use proto::rpc::{
    MAX_LINE, Notification, Response, RpcError, Version2, code, line_too_long, parse_request,
};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::dispatch::{Reply, Services, dispatch};
use super::lines::{Line, LineReader};
#[cfg(windows)]
pub use super::pipe::{bind, prepare_dir};
use crate::activity::Follower;

/// Calls one connection may have running at once; at this many it reads no further line
/// until one ends.
const MAX_CALLS: usize = 64;

/// Errors binding the control socket.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another daemon answers on the path.
    #[error("another p2pd is already running on {}", path.display())]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not a socket sits at the path.
    #[error("{} exists and is not a socket; remove it or choose another --socket", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The socket's directory belongs to someone else or others can write it.
    #[error(transparent)]
    Dir(#[from] SocketDirError),
    /// The socket or its directory could not be made.
    #[error("control socket {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Makes the directory of the control socket at `path` (mode 0700) if it is missing, and
/// checks that it is ours and writable by nobody else: another user who can put a socket
/// there could stand in for us.
#[cfg(unix)]
pub fn prepare_dir(path: &Path) -> Result<(), SocketError> {
    let io_err = |source| SocketError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err)?;
    }
    let meta = std::fs::metadata(dir).map_err(io_err)?;
    let facts = DirFacts {
        is_dir: meta.is_dir(),
        owner: meta.uid(),
        mode: meta.mode(),
    };
    check_socket_dir(dir, facts, svc::current_uid())?;
    Ok(())
}

/// Binds the control socket at `path`, in a directory made or checked by [`prepare_dir`]; a
/// stale socket left by a killed daemon is replaced; a live one is an error.
#[cfg(unix)]
pub async fn bind(path: &Path) -> Result<Listener, SocketError> {
    prepare_dir(path)?;
    let io_err = |source| SocketError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            let name = path.to_fs_name::<GenericFilePath>().map_err(io_err)?;
            if Stream::connect(name).await.is_ok() {
                return Err(SocketError::InUse {
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(io_err)?;
        }
        Ok(_) => {
            return Err(SocketError::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let name = path.to_fs_name::<GenericFilePath>().map_err(io_err)?;
    let listener = ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .create_tokio()
        .map_err(io_err)?;
    // Belt and braces: the mode is applied at bind time, and checked here.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    Ok(listener)
}

/// Accepts control connections until cancelled.
pub async fn serve(
    listener: Listener,
    services: Arc<Services>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    #[cfg(unix)]
    let my_uid = svc::current_uid();
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    warn!("control socket accept failed: {e}");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(std::time::Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        #[cfg(unix)]
        match stream.peer_creds().map(|c| c.euid()) {
            Ok(Some(uid)) if uid == my_uid => {}
            other => {
                warn!(?other, "refused a control connection from another user");
                drop(stream);
                continue;
            }
        }
        let (services, cancel) = (services.clone(), cancel.clone());
        tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                r = connection(stream, services) => if let Err(e) = r { debug!("control connection ended: {e}") },
            }
        });
    }
}

/// A call that ended: what to answer.
struct Answer {
    /// The request's id; `None` for a notification (nothing is sent).
    id: Option<serde_json::Value>,
    method: &'static str,
    reply: Result<Reply, RpcError>,
}

async fn connection(stream: Stream, services: Arc<Services>) -> io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = LineReader::new(read, MAX_LINE);
    let mut events: Option<broadcast::Receiver<Event>> = None;
    let mut follow: Option<Box<Follower>> = None;
    // The calls running for this connection; dropping the set (the connection ends, or the
    // daemon stops) aborts them.
    let mut calls: JoinSet<Answer> = JoinSet::new();
    // What each running call answers to, should it panic.
    let mut running: HashMap<tokio::task::Id, (Option<serde_json::Value>, &'static str)> =
        HashMap::new();
    loop {
        tokio::select! {
            ev = next_event(&mut events) => {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(missed)) => Event::Lagged { missed },
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                };
                let params = serde_json::to_value(ev).map_err(io::Error::other)?;
                let n = Notification { jsonrpc: Version2, method: EVENT_NOTIFICATION.into(), params };
                send_line(&mut write, &n).await?;
            }
            record = next_record(&mut follow) => {
                let Some(record) = record else {
                    follow = None;
                    continue;
                };
                let params = serde_json::to_value(record).map_err(io::Error::other)?;
                let n = Notification { jsonrpc: Version2, method: LOG_NOTIFICATION.into(), params };
                send_line(&mut write, &n).await?;
            }
            Some(done) = calls.join_next_with_id(), if !calls.is_empty() => {
                let answer = match done {
                    Ok((task, answer)) => {
                        running.remove(&task);
                        answer
                    }
                    Err(e) => {
                        let (id, method) = running.remove(&e.id()).unwrap_or((None, "?"));
                        warn!(method, "a control call failed: {e}");
                        let reply = Err(RpcError::new(code::INTERNAL_ERROR, format!("{method} failed: {e}")));
                        Answer { id, method, reply }
                    }
                };
                let answer = match answer.reply {
                    Ok(Reply::Follow(v, f)) => {
                        follow = Some(f);
                        Answer { reply: Ok(Reply::Value(v)), ..answer }
                    }
                    _ => answer,
                };
                send_answer(&mut write, answer, &services, &mut events).await?;
            }
            line = lines.next(), if calls.len() < MAX_CALLS => {
                let line = match line? {
                    None => return Ok(()),
                    Some(Line::Text(line)) => line,
                    Some(Line::TooLong) => {
                        send_line(&mut write, &line_too_long()).await?;
                        continue;
                    }
                    Some(Line::NotUtf8) => {
                        send_line(&mut write, &not_utf8()).await?;
                        continue;
                    }
                };
                if line.trim().is_empty() {
                    continue;
                }
                let incoming = match parse_request(&line) {
                    Ok(i) => i,
                    Err(resp) => {
                        send_line(&mut write, &resp).await?;
                        continue;
                    }
                };
                let (id, method) = (incoming.id.clone(), incoming.call.method());
                if let Call::Subscribe {} = incoming.call {
                    let reply = dispatch(&services, incoming.call).await;
                    send_answer(&mut write, Answer { id, method, reply }, &services, &mut events).await?;
                    continue;
                }
                let svc = services.clone();
                let task = calls.spawn(async move {
                    let reply = dispatch(&svc, incoming.call).await;
                    Answer { id: incoming.id, method, reply }
                });
                running.insert(task.id(), (id, method));
            }
        }
    }
}

/// Sends the response to a call that ended, subscribing the connection first if the call
/// was `subscribe`; after `rekey`, asks for the restart once the response is out.
async fn send_answer<W: AsyncWrite + Unpin>(
    write: &mut W,
    answer: Answer,
    services: &Services,
    events: &mut Option<broadcast::Receiver<Event>>,
) -> io::Result<()> {
    let Answer { id, method, reply } = answer;
    let restart = matches!(reply, Ok(Reply::Restart(_)));
    let Some(id) = id else {
        if restart {
            services.rekey.restart();
        }
        return Ok(());
    };
    let response = match reply {
        Ok(Reply::Value(v) | Reply::Restart(v) | Reply::Follow(v, _)) => Response::ok(id, v),
        Ok(Reply::Subscribe(v)) => {
            events.get_or_insert_with(|| services.node.subscribe());
            Response::ok(id, v)
        }
        Err(e) => {
            debug!(method, "request failed: {}", e.message);
            Response::err(id, e)
        }
    };
    let sent = send_line(write, &response).await;
    if restart {
        // Only once the answer is out: the restart closes this connection.
        services.rekey.restart();
    }
    sent
}

async fn next_event(
    events: &mut Option<broadcast::Receiver<Event>>,
) -> Result<Event, broadcast::error::RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_record(follow: &mut Option<Box<Follower>>) -> Option<proto::api::LogRecord> {
    match follow {
        Some(f) => f.next().await,
        None => std::future::pending().await,
    }
}

async fn send_line<W: AsyncWrite + Unpin, T: serde::Serialize>(
    w: &mut W,
    msg: &T,
) -> io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await
}

/// A named pipe leaves no file behind: nothing to remove.
#[cfg(windows)]
pub fn remove(_path: &Path) {}

/// Removes the socket file, if it is still ours.
#[cfg(unix)]
pub fn remove(path: &Path) {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_socket()
        && let Err(e) = std::fs::remove_file(path)
    {
        warn!("cannot remove {}: {e}", path.display());
    }
}

fn not_utf8() -> Response {
    Response::err(
        serde_json::Value::Null,
        RpcError::new(code::PARSE_ERROR, "parse error: line is not UTF-8"),
    )
}
