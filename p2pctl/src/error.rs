//! The one error type of p2pctl, and how each error maps to an exit code (design §3).

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use proto::peer_ref::ResolveError;
use proto::rpc::{RpcError, code};

/// Exit code: the operation failed.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit code: the daemon is not reachable.
pub(crate) const EXIT_UNREACHABLE: u8 = 3;

/// Everything that can make a p2pctl command fail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Connecting to the control socket failed: no daemon, wrong path, not our socket.
    #[error("cannot reach p2pd at {}: {source}", path.display())]
    Unreachable {
        /// The socket path tried.
        path: PathBuf,
        /// Why the connection failed.
        #[source]
        source: io::Error,
    },
    /// The socket's directory is not ours, or others can write it: nothing was sent.
    #[error(transparent)]
    SocketDir(#[from] proto::paths::SocketDirError),
    /// The process listening on the socket runs as another user: nothing was sent.
    #[error("the control socket {} is served by {}, not you (uid {me}); nothing was sent", path.display(), served_by(*.uid))]
    ForeignServer {
        /// The socket path.
        path: PathBuf,
        /// The listener's effective uid, if the system said.
        uid: Option<u32>,
        /// Our effective uid.
        me: u32,
    },
    /// The daemon answered a request with a JSON-RPC error.
    #[error("{}", rpc_message(.0))]
    Rpc(RpcError),
    /// A PEER argument names no single peer (found before asking p2pd to act; p2pd says the
    /// same words when it finds it).
    #[error("{}", proto::text::neutralize(&.0.to_string()))]
    Peer(#[from] ResolveError),
    /// The daemon closed the connection while p2pctl still expected data.
    #[error("p2pd closed the connection")]
    Closed,
    /// The daemon did not answer in time.
    #[error("p2pd did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// Reading from or writing to the control socket failed.
    #[error("connection to p2pd failed: {0}")]
    Io(#[source] io::Error),
    /// The daemon sent something that is not valid JSON-RPC or not the expected result.
    #[error("p2pd sent an unexpected reply: {0}")]
    Protocol(String),
    /// Writing to stdout failed.
    #[error("cannot write output: {0}")]
    Output(#[source] io::Error),
    /// Reading standard input failed.
    #[error("cannot read standard input: {0}")]
    Input(#[source] io::Error),
    /// The operation did not succeed (a message was refused, a peer is unknown). The text is
    /// already neutralised.
    #[error("{0}")]
    Failed(String),
    /// The operation failed and the command has already said how (the `chat` summary).
    #[error("the operation failed")]
    Reported,
}

/// The daemon's message, with a hint for codes that usually mean a version mismatch.
fn rpc_message(e: &RpcError) -> String {
    let text = proto::text::neutralize(&e.message);
    if e.code == code::METHOD_NOT_FOUND {
        format!("{text} (is p2pd older than p2pctl?)")
    } else {
        text
    }
}

/// Who serves a socket, for [`Error::ForeignServer`].
fn served_by(uid: Option<u32>) -> String {
    uid.map_or_else(|| "an unknown user".to_owned(), |uid| format!("uid {uid}"))
}

impl Error {
    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            // Output to a closed pipe (`p2pctl watch | head -1`): the reader is done, so are we.
            Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            // p2pctl could not talk to its daemon, as when none listens: the refusals keep it
            // from talking to someone else instead.
            Error::Unreachable { .. } | Error::SocketDir(_) | Error::ForeignServer { .. } => {
                ExitCode::from(EXIT_UNREACHABLE)
            }
            Error::Rpc(_)
            | Error::Peer(_)
            | Error::Closed
            | Error::Timeout(_)
            | Error::Io(_)
            | Error::Protocol(_)
            | Error::Output(_)
            | Error::Input(_)
            | Error::Failed(_)
            | Error::Reported => ExitCode::from(EXIT_FAILED),
        }
    }

    /// True when nothing should be printed: the reader of our output went away, or the
    /// command already reported the failure.
    pub(crate) fn is_silent(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
            || matches!(self, Error::Reported)
    }

    /// A second line telling the user what to do about it, if there is one.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Unreachable { source, .. }
                if source.kind() == io::ErrorKind::PermissionDenied =>
            {
                Some(
                    "the socket belongs to another user; each user runs their own p2pd. \
                 Use --socket or P2PD_SOCKET to name yours",
                )
            }
            Error::Unreachable { .. } => Some(
                "start the daemon with 'p2pd --name NAME --tracker HOST:PORT', or \
                 'systemctl --user start p2pd'; use --socket or P2PD_SOCKET if it listens elsewhere",
            ),
            Error::SocketDir(_) => Some(
                "another user could put their own socket there and read what you send; \
                 p2pd refuses such a directory too",
            ),
            Error::ForeignServer { .. } => Some(
                "another user's program listens where your p2pd should; start your own p2pd \
                 with --socket in a directory of your own and pass the same --socket here",
            ),
            Error::Peer(_) => Some(PEERS_HINT),
            Error::Rpc(e) if e.code == code::UNKNOWN_PEER || e.code == code::AMBIGUOUS_PEER => {
                Some(PEERS_HINT)
            }
            _ => None,
        }
    }
}

/// The hint after a PEER argument that names no single peer.
const PEERS_HINT: &str = "'p2pctl peers' lists the peers you know, by name and id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_message_and_hint() {
        let err = Error::Unreachable {
            path: PathBuf::from("/run/user/0/p2pd/p2pd.sock"),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(
            err.to_string()
                .starts_with("cannot reach p2pd at /run/user/0/p2pd/p2pd.sock: "),
            "{err}"
        );
        assert!(
            err.hint()
                .is_some_and(|h| h.starts_with("start the daemon with 'p2pd --name NAME"))
        );
        assert_eq!(err.exit_code(), ExitCode::from(3));
    }

    #[test]
    fn rpc_errors_fail_with_one_and_are_neutralised() {
        let err = Error::Rpc(RpcError::new(code::UNKNOWN_PEER, "no peer \u{1b}[31mbob"));
        assert_eq!(err.to_string(), "no peer \\e[31mbob");
        assert_eq!(err.hint(), Some(PEERS_HINT));
        assert_eq!(err.exit_code(), ExitCode::from(1));
        let old = Error::Rpc(RpcError::new(
            code::METHOD_NOT_FOUND,
            "unknown method \"x\"",
        ));
        assert!(old.to_string().ends_with("(is p2pd older than p2pctl?)"));
    }

    #[test]
    fn broken_pipe_is_quiet_success() {
        let err = Error::Output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(err.is_silent());
        assert_eq!(err.exit_code(), ExitCode::SUCCESS);
        assert!(!Error::Closed.is_silent());
        assert_eq!(Error::Closed.exit_code(), ExitCode::from(1));
    }

    #[test]
    fn failures_exit_one_and_reported_ones_are_quiet() {
        let refused = Error::Failed("bob refused the message".into());
        assert_eq!(refused.to_string(), "bob refused the message");
        assert!(!refused.is_silent());
        assert_eq!(refused.exit_code(), ExitCode::from(1));
        assert!(Error::Reported.is_silent());
        assert_eq!(Error::Reported.exit_code(), ExitCode::from(1));
    }
}
