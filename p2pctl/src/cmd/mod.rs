//! One module per command. Each takes the open [`Client`](crate::client::Client) and an
//! [`Out`], so tests can run it against a fake daemon and capture what it prints.

mod peers;
mod status;
mod watch;

use std::io::Write as _;

use crate::cli::{Cli, Command};
use crate::client;
use crate::error::Error;
use crate::output::{self, Out};
use crate::socket;

/// Runs the command line: works out the socket, connects, and dispatches.
pub(crate) async fn run(cli: Cli) -> Result<(), Error> {
    let path = socket::resolve(cli.socket)?;
    let mut client = client::connect(&path).await?;
    let mut out = Out::new(std::io::stdout());
    match cli.command {
        Command::Status => status::run(&mut client, &mut out, cli.json).await,
        Command::Peers => peers::run(&mut client, &mut out, cli.json).await,
        Command::Watch => {
            let subscribed = || {
                // Best effort: a closed stderr must not stop the stream.
                let line = format!("watching p2pd at {} (ctrl-c to stop)", path.display());
                let _ = writeln!(std::io::stderr(), "{}", output::clean(&line));
            };
            watch::run(
                &mut client,
                &mut out,
                cli.json,
                subscribed,
                watch::interrupted(),
            )
            .await
        }
    }
}

/// Test support: a client wired to a fake daemon that answers from a script.
#[cfg(test)]
pub(crate) mod fake {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

    use crate::client::Client;

    /// A client whose daemon reads one request line per entry of `replies` and answers it
    /// with that entry's lines, then sends `after` and closes the connection.
    /// Returns the client and a future that runs the daemon and yields the requests it read.
    pub(crate) fn daemon(
        replies: Vec<Vec<String>>,
        after: Vec<String>,
    ) -> (Client<DuplexStream>, impl Future<Output = Vec<String>>) {
        let (a, b) = tokio::io::duplex(256 * 1024);
        let server = async move {
            let (read, mut write) = tokio::io::split(b);
            let mut lines = BufReader::new(read).lines();
            let mut requests = Vec::new();
            for reply in replies {
                let Ok(Some(req)) = lines.next_line().await else {
                    break;
                };
                requests.push(req);
                for line in reply {
                    write
                        .write_all(format!("{line}\n").as_bytes())
                        .await
                        .expect("write");
                }
            }
            for line in after {
                write
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .expect("write");
            }
            requests
        };
        (Client::new(a), server)
    }

    /// A JSON-RPC success response line.
    pub(crate) fn ok(id: u64, result: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
    }
}
