//! `p2pctl accept ID [--to DIR]`, `decline ID`, `cancel ID`: the answers to a transfer. They
//! share one shape (an id in, the updated [`TransferInfo`] out), so they share this module.
//! p2pd resolves the id (the whole id, or a unique prefix of at least 6 hex characters).

use std::io::{self, Write};
use std::path::Path;

use proto::api::{Call, TransferInfo, TransferState};
use tokio::io::{AsyncRead, AsyncWrite};

use super::send::utf8;
use crate::client::Client;
use crate::error::Error;
use crate::output::{Out, clean, files, reason, short_transfer, to_from, transfer_state};

/// Which answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Accept, into `to` (absolute) or p2pd's download directory.
    Accept {
        /// The destination directory, already absolute.
        to: Option<String>,
        /// Make `to` if it does not exist.
        mkdir: bool,
    },
    /// Decline an incoming offer.
    Decline,
    /// Cancel a transfer, either way.
    Cancel,
}

impl Answer {
    /// The request for transfer `id`.
    fn call(self, id: String) -> Call {
        match self {
            Answer::Accept { to, mkdir } => Call::Accept { id, to, mkdir },
            Answer::Decline => Call::Decline { id },
            Answer::Cancel => Call::Cancel { id },
        }
    }
}

/// The absolute form of `--to DIR`: canonical when it exists, else made absolute against the
/// current directory (p2pd says whether it will create it).
pub(crate) fn absolute_dir(arg: &Path) -> Result<String, Error> {
    let path = match std::fs::canonicalize(arg) {
        Ok(p) => p,
        Err(_) => std::path::absolute(arg).map_err(|e: io::Error| {
            Error::Failed(format!(
                "cannot use {} as the destination: {e}",
                clean(&arg.display().to_string())
            ))
        })?,
    };
    utf8(&path)
}

/// Gives the answer and prints a one-line confirmation (or the [`TransferInfo`] with
/// `--json`).
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
    answer: Answer,
    id: String,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    let accepting = matches!(answer, Answer::Accept { .. });
    let reply = client.call::<TransferInfo>(answer.clone().call(id)).await?;
    if json {
        out.line(&reply.raw)?;
    }
    let t = &reply.value;
    // An accepted transfer that is already over without success (say, no room for it).
    if accepting
        && matches!(
            t.state,
            TransferState::Failed
                | TransferState::Cancelled
                | TransferState::Declined
                | TransferState::Expired
        )
    {
        return Err(Error::Failed(format!(
            "transfer {} from {} {}{}",
            short_transfer(&t.id),
            clean(t.peer_name.as_str()),
            transfer_state(t.state),
            reason(t)
        )));
    }
    if json {
        Ok(())
    } else {
        out.line(&confirmation(&answer, t))
    }
}

/// The confirmation line.
fn confirmation(answer: &Answer, t: &TransferInfo) -> String {
    let id = short_transfer(&t.id);
    let name = clean(t.peer_name.as_str());
    match answer {
        Answer::Accept { to, .. } => {
            // p2pd answers before it applies the decision, so the directory asked for is the
            // best account of where the files go.
            let into = match to.as_deref().or(t.local_path.as_deref()) {
                Some(dir) => clean(dir),
                None => "the download directory".into(),
            };
            format!("accepted {id} from {name}: {} into {into}", files(t.files))
        }
        Answer::Decline => format!("declined {id} from {name}"),
        Answer::Cancel => format!("cancelled {id} {} {name}", to_from(t.direction)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::fake::{self, transfer};
    use proto::api::Direction;

    #[test]
    fn confirmations() {
        let mut t = transfer(Direction::In, TransferState::Running);
        assert_eq!(
            confirmation(
                &Answer::Accept {
                    to: None,
                    mkdir: false,
                },
                &t
            ),
            "accepted abcd1234 from bob: 3 files into the download directory"
        );
        t.local_path = Some("/home/alice/Downloads\u{1b}[1m".into());
        assert_eq!(
            confirmation(
                &Answer::Accept {
                    to: None,
                    mkdir: false,
                },
                &t
            ),
            "accepted abcd1234 from bob: 3 files into /home/alice/Downloads\\e[1m"
        );
        let to = Some("/mnt/usb".to_owned());
        assert_eq!(
            confirmation(&Answer::Accept { to, mkdir: false }, &t),
            "accepted abcd1234 from bob: 3 files into /mnt/usb"
        );
        let t = transfer(Direction::In, TransferState::Declined);
        assert_eq!(
            confirmation(&Answer::Decline, &t),
            "declined abcd1234 from bob"
        );
        let t = transfer(Direction::In, TransferState::Cancelled);
        assert_eq!(
            confirmation(&Answer::Cancel, &t),
            "cancelled abcd1234 from bob"
        );
        let t = transfer(Direction::Out, TransferState::Cancelled);
        assert_eq!(
            confirmation(&Answer::Cancel, &t),
            "cancelled abcd1234 to bob"
        );
    }

    #[tokio::test]
    async fn sends_the_right_request_and_prints_json_verbatim() {
        let info =
            serde_json::to_string(&transfer(Direction::In, TransferState::Running)).expect("json");
        let cases = [
            (
                Answer::Accept {
                    to: Some("/tmp/in".into()),
                    mkdir: false,
                },
                r#"{"jsonrpc":"2.0","id":1,"method":"accept","params":{"id":"abcd12","to":"/tmp/in"}}"#,
            ),
            (
                Answer::Accept {
                    to: Some("/tmp/new".into()),
                    mkdir: true,
                },
                r#"{"jsonrpc":"2.0","id":1,"method":"accept","params":{"id":"abcd12","to":"/tmp/new","mkdir":true}}"#,
            ),
            (
                Answer::Accept {
                    to: None,
                    mkdir: false,
                },
                r#"{"jsonrpc":"2.0","id":1,"method":"accept","params":{"id":"abcd12","to":null}}"#,
            ),
            (
                Answer::Decline,
                r#"{"jsonrpc":"2.0","id":1,"method":"decline","params":{"id":"abcd12"}}"#,
            ),
            (
                Answer::Cancel,
                r#"{"jsonrpc":"2.0","id":1,"method":"cancel","params":{"id":"abcd12"}}"#,
            ),
        ];
        for (answer, request) in cases {
            let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, &info)]], vec![]);
            let mut out = Out::new(Vec::new());
            let (requests, res) = tokio::join!(
                daemon,
                run(&mut client, &mut out, true, answer, "abcd12".into())
            );
            res.expect("ok");
            assert_eq!(requests, [request]);
            assert_eq!(
                String::from_utf8(out.into_inner()).expect("utf8"),
                format!("{info}\n")
            );
        }
    }

    #[tokio::test]
    async fn human_line_and_daemon_errors() {
        // As p2pd answers: the decision is not applied yet.
        let t = transfer(Direction::In, TransferState::Offered);
        let info = serde_json::to_string(&t).expect("json");
        let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, &info)]], vec![]);
        let mut out = Out::new(Vec::new());
        let answer = Answer::Accept {
            to: Some("/tmp/in".into()),
            mkdir: false,
        };
        let (_, res) = tokio::join!(
            daemon,
            run(&mut client, &mut out, false, answer, "abcd12".into())
        );
        res.expect("accepted");
        assert_eq!(
            out.into_inner(),
            b"accepted abcd1234 from bob: 3 files into /tmp/in\n"
        );

        let error = r#"{"jsonrpc":"2.0","id":1,"error":{"code":1003,"message":"no transfer matches \"abcd12\""}}"#;
        let (mut client, daemon) = fake::daemon(vec![vec![error.into()]], vec![]);
        let mut out = Out::new(Vec::new());
        let (_, res) = tokio::join!(
            daemon,
            run(
                &mut client,
                &mut out,
                false,
                Answer::Decline,
                "abcd12".into()
            )
        );
        let err = res.expect_err("unknown id");
        assert_eq!(err.to_string(), "no transfer matches \"abcd12\"");
        assert_eq!(err.exit_code(), std::process::ExitCode::from(1));
        assert!(out.into_inner().is_empty());
    }

    #[tokio::test]
    async fn an_accept_that_ends_in_failure_fails() {
        let mut t = transfer(Direction::In, TransferState::Failed);
        t.error = Some("not enough free space".into());
        let info = serde_json::to_string(&t).expect("json");
        let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, &info)]], vec![]);
        let mut out = Out::new(Vec::new());
        let (_, res) = tokio::join!(
            daemon,
            run(
                &mut client,
                &mut out,
                false,
                Answer::Accept {
                    to: None,
                    mkdir: false,
                },
                "abcd12".into()
            )
        );
        let err = res.expect_err("failed");
        assert_eq!(
            err.to_string(),
            "transfer abcd1234 from bob failed: not enough free space"
        );
    }

    #[test]
    fn destination_is_made_absolute() {
        let dir = std::env::temp_dir();
        let canonical = std::fs::canonicalize(&dir).expect("temp dir");
        assert_eq!(
            absolute_dir(&dir).expect("abs"),
            canonical.to_str().expect("utf8")
        );
        let missing = absolute_dir(Path::new("no-such-dir-p2pctl/x")).expect("abs");
        assert!(Path::new(&missing).is_absolute(), "{missing}");
        assert!(missing.ends_with("no-such-dir-p2pctl/x"), "{missing}");
    }
}
