//! The one error type of p2pctl, and how each error maps to an exit code (design §3).

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use proto::peer_ref::ResolveError;
use proto::rpc::{RpcError, code};

/// Exit code: the operation failed.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit code: the daemon is not reachable.
pub(crate) const EXIT_UNREACHABLE: u8 = 3;

/// The codes of `--json` errors that p2pctl finds itself (the daemon's errors keep their
/// JSON-RPC or application code, `proto::rpc::code`).
pub(crate) mod local_code {
    /// The command line is wrong (exit code 2).
    pub(crate) const USAGE: i32 = 2001;
    /// p2pd is not reachable, or its socket is not safe to use (exit code 3).
    pub(crate) const UNREACHABLE: i32 = 2002;
    /// The connection to p2pd broke, timed out or carried something unexpected.
    pub(crate) const CONNECTION: i32 = 2003;
    /// A local operation failed: a path, standard input or output, a refused request.
    pub(crate) const FAILED: i32 = 2004;
}

/// Exit code: usage error.
pub(crate) const EXIT_USAGE: u8 = 2;

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
    /// The process listening on the socket runs as another user: nothing was sent. (Unix
    /// only: Windows has no such check.)
    #[cfg_attr(not(unix), allow(dead_code))]
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
    /// p2pd closed the connection during an interactive `chat`: it stopped (or restarted),
    /// and nothing is known about the peer from that.
    #[error("p2pd stopped; chat ended")]
    DaemonStopped,
    /// The daemon did not answer in time.
    #[error("p2pd did not answer within {}", crate::output::human_duration_ms(u64::try_from(.0.as_millis()).unwrap_or(u64::MAX)))]
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
            Error::Unreachable { .. }
            | Error::SocketDir(_)
            | Error::ForeignServer { .. }
            | Error::DaemonStopped => ExitCode::from(EXIT_UNREACHABLE),
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

    /// The `code` of this error in a `--json` error document.
    pub(crate) fn code(&self) -> i32 {
        match self {
            Error::Rpc(e) => e.code,
            Error::Peer(e) => e.code(),
            Error::Unreachable { .. }
            | Error::SocketDir(_)
            | Error::ForeignServer { .. }
            | Error::DaemonStopped => local_code::UNREACHABLE,
            Error::Closed | Error::Timeout(_) | Error::Io(_) | Error::Protocol(_) => {
                local_code::CONNECTION
            }
            Error::Output(_) | Error::Input(_) | Error::Failed(_) | Error::Reported => {
                local_code::FAILED
            }
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
            Error::DaemonStopped => Some(
                "start p2pd again ('p2pd --name NAME --tracker HOST:PORT', or 'systemctl --user \
                 start p2pd'), then 'p2pctl chat' again; queued messages are kept",
            ),
            Error::Peer(_) => Some(PEERS_HINT),
            Error::Rpc(e) if e.code == code::UNKNOWN_PEER || e.code == code::AMBIGUOUS_PEER => {
                Some(PEERS_HINT)
            }
            _ => None,
        }
    }
}

/// Reports a failed command and gives the exit code: `p2pctl: MESSAGE` and `hint: HINT` on
/// stderr, or with `--json` one error document on stdout and nothing on stderr.
pub(crate) fn report(err: &Error, json: bool) -> ExitCode {
    // A reader gone away is told nothing, in either form; a failure already reported in text
    // still gets its document in JSON.
    let broken_pipe = matches!(err, Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe);
    if json && !broken_pipe {
        print_json(err.code(), &err.to_string(), err.hint());
    } else if !err.is_silent() {
        eprintln!("p2pctl: {err}");
        if let Some(hint) = err.hint() {
            eprintln!("hint: {hint}");
        }
    }
    err.exit_code()
}

/// Reports a command line clap refused, and gives the exit code: as clap prints it, or with
/// `--json` as one error document (`--help` and `--version` print as usual).
pub(crate) fn report_usage(err: &clap::Error, json: bool) -> ExitCode {
    if !json || err.exit_code() == 0 {
        // Best effort, as clap's own `exit` does.
        let _ = err.print();
        return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(EXIT_USAGE));
    }
    let (message, hint) = usage_text(err);
    print_json(local_code::USAGE, &message, hint.as_deref());
    ExitCode::from(EXIT_USAGE)
}

/// The message and hint of a usage error: clap's first paragraph, on one line, and the
/// paragraphs after it (the usage line, what to try).
fn usage_text(err: &clap::Error) -> (String, Option<String>) {
    if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return (
            "a command is required".to_owned(),
            Some("'p2pctl --help' lists the commands".to_owned()),
        );
    }
    let text = err.render().to_string();
    let mut paragraphs = text.split("\n\n").map(str::trim).filter(|p| !p.is_empty());
    let first = paragraphs.next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = first.split_whitespace().collect::<Vec<_>>().join(" ");
    let rest: Vec<&str> = paragraphs.collect();
    (message, (!rest.is_empty()).then(|| rest.join("\n")))
}

/// Prints `{"error": {"code": C, "message": M, "hint": H}}` on stdout, `hint` left out when
/// there is none.
fn print_json(code: i32, message: &str, hint: Option<&str>) {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(hint) = hint {
        error["hint"] = serde_json::Value::from(hint);
    }
    let doc = serde_json::json!({ "error": error });
    // Best effort: with stdout closed there is nowhere left to say it.
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{doc}").and_then(|()| stdout.flush());
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
    fn json_codes_keep_the_daemons_and_name_local_failures() {
        let rpc = Error::Rpc(RpcError::new(code::OPERATION_FAILED, "no"));
        assert_eq!(rpc.code(), code::OPERATION_FAILED);
        let unreachable = Error::Unreachable {
            path: PathBuf::from("/x.sock"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(unreachable.code(), local_code::UNREACHABLE);
        assert_eq!(Error::Closed.code(), local_code::CONNECTION);
        assert_eq!(Error::Failed("no".into()).code(), local_code::FAILED);
    }

    #[test]
    fn usage_errors_are_one_line_and_a_hint() {
        use clap::Parser as _;
        let err = crate::cli::Cli::try_parse_from(["p2pctl", "msg"]).expect_err("usage");
        let (message, hint) = usage_text(&err);
        assert_eq!(
            message,
            "the following required arguments were not provided: <PEER> <TEXT>..."
        );
        assert!(hint.is_some_and(|h| h.starts_with("Usage: p2pctl msg")));
        let err = crate::cli::Cli::try_parse_from(["p2pctl"]).expect_err("usage");
        assert_eq!(usage_text(&err).0, "a command is required");
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
