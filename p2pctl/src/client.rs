//! The connection to p2pd's control socket: JSON-RPC 2.0, one JSON object per line.
//!
//! [`Client`] is generic over the byte stream so tests drive it through `tokio::io::duplex`;
//! [`connect`] opens the real local socket.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use proto::api::Call;
use proto::rpc::{self, MAX_LINE, Outcome, Request, ServerLine};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

use crate::error::Error;
use crate::lines::{LineError, LineReader, Tail};

/// How long to wait for the answer to a request before giving up.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Most notifications kept while waiting for a response (they only arrive early from a
/// misbehaving daemon, so this just bounds memory).
const MAX_QUEUED: usize = 10_000;

/// Connects to the control socket at `path`. On Unix, a socket whose directory another user
/// could write to, or that is served by another user, is refused before anything is sent.
pub(crate) async fn connect(path: &Path) -> Result<Client<LocalSocketStream>, Error> {
    #[cfg(unix)]
    let me = crate::socket::check_dir(path)?;
    let unreachable = |source| Error::Unreachable {
        path: path.to_path_buf(),
        source,
    };
    let name = path.to_fs_name::<GenericFilePath>().map_err(unreachable)?;
    let stream = LocalSocketStream::connect(name)
        .await
        .map_err(unreachable)?;
    #[cfg(unix)]
    crate::socket::check_server(path, stream.peer_creds().map(|c| c.euid()), me)?;
    Ok(Client::new(stream))
}

/// A successful result: typed, plus the JSON text exactly as the daemon sent it.
#[derive(Debug)]
pub(crate) struct Reply<T> {
    /// The result, checked against the expected type.
    pub(crate) value: T,
    /// The result's JSON text as received.
    pub(crate) raw: String,
}

/// A notification from the daemon.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Notice {
    /// Its name, such as `event`.
    pub(crate) method: String,
    /// Its payload, parsed.
    pub(crate) params: Value,
    /// Its payload's JSON text as received.
    pub(crate) raw_params: String,
}

/// The payload fields of a server line, borrowed verbatim from the line.
#[derive(Deserialize)]
struct RawPayload<'a> {
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// One connection to p2pd.
pub(crate) struct Client<S> {
    reader: LineReader<BufReader<ReadHalf<S>>>,
    writer: WriteHalf<S>,
    next_id: u64,
    /// Notifications that arrived while a response was awaited, oldest first.
    queued: VecDeque<Notice>,
}

impl<S: AsyncRead + AsyncWrite> Client<S> {
    /// Wraps an open stream.
    pub(crate) fn new(stream: S) -> Self {
        let (read, writer) = tokio::io::split(stream);
        Self {
            reader: LineReader::new(BufReader::new(read), MAX_LINE, Tail::Drop),
            writer,
            next_id: 1,
            queued: VecDeque::new(),
        }
    }

    /// Sends `call` and waits (at most [`REPLY_TIMEOUT`]) for its result, which must parse
    /// as `T`. A JSON-RPC error from the daemon becomes [`Error::Rpc`].
    pub(crate) async fn call<T: DeserializeOwned>(
        &mut self,
        call: Call,
    ) -> Result<Reply<T>, Error> {
        self.call_within(call, REPLY_TIMEOUT).await
    }

    /// [`Client::call`], waiting at most `timeout` (for a call that runs as long as its
    /// work, such as `put`).
    pub(crate) async fn call_within<T: DeserializeOwned>(
        &mut self,
        call: Call,
        timeout: Duration,
    ) -> Result<Reply<T>, Error> {
        let method = call.method();
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_string(&Request::new(id, call))
            .map_err(|e| Error::Protocol(format!("cannot encode the request: {e}")))?;
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(Error::Io)?;
        self.writer.flush().await.map_err(Error::Io)?;

        let raw = tokio::time::timeout(timeout, self.response(id))
            .await
            .map_err(|_| Error::Timeout(timeout))??;
        let value = serde_json::from_str(&raw)
            .map_err(|e| Error::Protocol(format!("bad result for {method}: {e}")))?;
        Ok(Reply { value, raw })
    }

    /// Reads until the response with `id` arrives; returns its result's JSON text.
    async fn response(&mut self, id: u64) -> Result<String, Error> {
        loop {
            let Some(line) = self.reader.next_line().await.map_err(from_line)? else {
                return Err(Error::Closed);
            };
            match parse(&line)? {
                None => {}
                Some(Parsed::Notice(notice)) => {
                    if self.queued.len() >= MAX_QUEUED {
                        return Err(Error::Protocol(
                            "too many notifications before the response".into(),
                        ));
                    }
                    self.queued.push_back(notice);
                }
                Some(Parsed::Response {
                    id: got,
                    outcome,
                    raw_result,
                }) => {
                    let ours = got == id;
                    match outcome {
                        // An error with a null id: the daemon could not read our request.
                        Outcome::Error(e) if ours || got.is_null() => return Err(Error::Rpc(e)),
                        Outcome::Result(_) if ours => {
                            return raw_result.ok_or_else(|| {
                                Error::Protocol("response without a result".into())
                            });
                        }
                        _ => {
                            return Err(Error::Protocol(format!(
                                "response for unknown request id {got}"
                            )));
                        }
                    }
                }
            }
        }
    }

    /// The next notification; `None` when the daemon closed the connection.
    pub(crate) async fn next_notice(&mut self) -> Result<Option<Notice>, Error> {
        if let Some(notice) = self.queued.pop_front() {
            return Ok(Some(notice));
        }
        loop {
            let Some(line) = self.reader.next_line().await.map_err(from_line)? else {
                return Ok(None);
            };
            match parse(&line)? {
                None => {}
                Some(Parsed::Notice(notice)) => return Ok(Some(notice)),
                Some(Parsed::Response { id, .. }) => {
                    return Err(Error::Protocol(format!(
                        "response for unknown request id {id}"
                    )));
                }
            }
        }
    }
}

/// A failure to read a line from the daemon.
fn from_line(e: LineError) -> Error {
    match e {
        LineError::Io(e) => Error::Io(e),
        other => Error::Protocol(other.to_string()),
    }
}

/// A server line, classified.
enum Parsed {
    Notice(Notice),
    Response {
        id: Value,
        outcome: Outcome,
        raw_result: Option<String>,
    },
}

/// Parses one line from the daemon; `None` for a blank line.
fn parse(line: &str) -> Result<Option<Parsed>, Error> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let bad = |e: serde_json::Error| Error::Protocol(format!("{e}"));
    let raw: RawPayload<'_> = serde_json::from_str(line).map_err(bad)?;
    Ok(Some(match rpc::parse_server_line(line).map_err(bad)? {
        ServerLine::Response(r) => Parsed::Response {
            id: r.id,
            outcome: r.outcome,
            raw_result: raw.result.map(|v| v.get().to_owned()),
        },
        ServerLine::Notification(n) => Parsed::Notice(Notice {
            method: n.method,
            params: n.params,
            raw_params: raw
                .params
                .map_or_else(|| "null".to_owned(), |v| v.get().to_owned()),
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::Subscribed;
    use proto::rpc::code;
    use tokio::io::{AsyncBufReadExt, DuplexStream};

    /// The daemon's end of a duplex pipe: reads request lines, writes whatever the test says.
    struct FakeDaemon {
        lines: tokio::io::Lines<BufReader<ReadHalf<DuplexStream>>>,
        write: WriteHalf<DuplexStream>,
    }

    impl FakeDaemon {
        async fn request(&mut self) -> String {
            self.lines
                .next_line()
                .await
                .expect("read")
                .expect("a request line")
        }
        async fn send(&mut self, line: &str) {
            self.write.write_all(line.as_bytes()).await.expect("write");
            self.write.write_all(b"\n").await.expect("write");
        }
    }

    fn pair() -> (Client<DuplexStream>, FakeDaemon) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (read, write) = tokio::io::split(b);
        (
            Client::new(a),
            FakeDaemon {
                lines: BufReader::new(read).lines(),
                write,
            },
        )
    }

    #[tokio::test]
    async fn sends_one_line_per_request_and_reads_the_result() {
        let (mut client, mut daemon) = pair();
        let server = async {
            assert_eq!(
                daemon.request().await,
                r#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{}}"#
            );
            daemon
                .send(r#"{"jsonrpc":"2.0","id":1,"result":{"subscribed":true}}"#)
                .await;
            assert_eq!(
                daemon.request().await,
                r#"{"jsonrpc":"2.0","id":2,"method":"peers","params":{}}"#
            );
            daemon.send(r#"{"jsonrpc":"2.0","id":2,"result":[]}"#).await;
        };
        let client_side = async {
            let r: Reply<Subscribed> = client.call(Call::Subscribe {}).await.expect("subscribe");
            assert!(r.value.subscribed);
            assert_eq!(r.raw, r#"{"subscribed":true}"#);
            let r: Reply<Vec<Value>> = client.call(Call::Peers {}).await.expect("peers");
            assert_eq!(r.raw, "[]");
        };
        tokio::join!(server, client_side);
    }

    #[tokio::test]
    async fn rpc_error_is_returned_as_such() {
        let (mut client, mut daemon) = pair();
        let server = async {
            daemon.request().await;
            daemon
                .send(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1001,"message":"unknown peer"}}"#)
                .await;
        };
        let (_, res) = tokio::join!(server, client.call::<Value>(Call::Status {}));
        match res {
            Err(Error::Rpc(e)) => assert_eq!(
                (e.code, e.message.as_str()),
                (code::UNKNOWN_PEER, "unknown peer")
            ),
            other => panic!("expected an RPC error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn null_id_error_answers_the_pending_request() {
        let (mut client, mut daemon) = pair();
        let server = async {
            daemon.request().await;
            daemon.send(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request: line exceeds the 1 MiB limit"}}"#).await;
        };
        let (_, res) = tokio::join!(server, client.call::<Value>(Call::Status {}));
        assert!(matches!(res, Err(Error::Rpc(e)) if e.code == code::INVALID_REQUEST));
    }

    #[tokio::test]
    async fn early_notifications_are_kept_in_order_and_payload_is_verbatim() {
        let (mut client, mut daemon) = pair();
        let server = async {
            daemon.request().await;
            daemon
                .send(r#"{"jsonrpc":"2.0","method":"event","params":{"type":"lagged","missed":1}}"#)
                .await;
            daemon.send("").await;
            daemon
                .send(r#"{"jsonrpc":"2.0","id":1,"result":{"subscribed":true}}"#)
                .await;
            daemon
                .send(
                    r#"{"jsonrpc":"2.0","method":"event","params":{"type":"lagged", "missed":2}}"#,
                )
                .await;
            drop(daemon);
        };
        let client_side = async {
            client
                .call::<Subscribed>(Call::Subscribe {})
                .await
                .expect("subscribe");
            let first = client.next_notice().await.expect("ok").expect("a notice");
            assert_eq!(first.raw_params, r#"{"type":"lagged","missed":1}"#);
            let second = client.next_notice().await.expect("ok").expect("a notice");
            // Spacing is kept exactly as the daemon sent it.
            assert_eq!(second.raw_params, r#"{"type":"lagged", "missed":2}"#);
            assert_eq!(second.params["missed"], 2);
            assert!(client.next_notice().await.expect("ok").is_none());
        };
        tokio::join!(server, client_side);
    }

    #[tokio::test]
    async fn closed_connection_and_garbage_are_errors() {
        let (mut client, daemon) = pair();
        drop(daemon);
        assert!(matches!(
            client.call::<Value>(Call::Status {}).await,
            Err(Error::Closed | Error::Io(_))
        ));

        let (mut client, mut daemon) = pair();
        let server = async {
            daemon.request().await;
            daemon.send("not json").await;
        };
        let (_, res) = tokio::join!(server, client.call::<Value>(Call::Status {}));
        assert!(matches!(res, Err(Error::Protocol(_))), "{res:?}");
    }

    #[tokio::test]
    async fn result_of_the_wrong_shape_is_a_protocol_error() {
        let (mut client, mut daemon) = pair();
        let server = async {
            daemon.request().await;
            daemon
                .send(r#"{"jsonrpc":"2.0","id":1,"result":{"subscribed":"yes"}}"#)
                .await;
        };
        let (_, res) = tokio::join!(server, client.call::<Subscribed>(Call::Subscribe {}));
        assert!(
            matches!(res, Err(Error::Protocol(m)) if m.starts_with("bad result for subscribe"))
        );
    }

    #[tokio::test]
    async fn connecting_to_a_missing_socket_is_unreachable() {
        // In a directory that does not exist: nothing to check, nothing to connect to.
        let path = std::env::temp_dir()
            .join(format!("p2pctl-test-missing-{}", std::process::id()))
            .join("p2pd.sock");
        match connect(&path).await {
            Err(e @ Error::Unreachable { .. }) => {
                assert_eq!(e.exit_code(), std::process::ExitCode::from(3))
            }
            Err(other) => panic!("expected Unreachable, got {other:?}"),
            Ok(_) => panic!("connected to a socket that does not exist"),
        }
    }
}
