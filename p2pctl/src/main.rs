//! `p2pctl`: the command-line client of p2pd. It speaks JSON-RPC over p2pd's local control
//! socket; see `docs/rpc.md`.
//!
//! Exit codes (design §3): 0 success, 1 the operation failed, 2 usage error (from clap),
//! 3 p2pd is not reachable.

mod cli;
mod client;
mod cmd;
mod error;
mod lines;
mod output;
mod socket;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return error::report_usage(&err, json_asked()),
    };
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let err = error::Error::Failed(format!("cannot start the async runtime: {e}"));
            return error::report(&err, json);
        }
    };
    let result = runtime.block_on(cmd::run(cli));
    // A read of stdin (`chat`) cannot be cancelled; don't wait for it before exiting.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => error::report(&err, json),
    }
}

/// Whether `--json` is on a command line clap refused: any argument before a `--`.
fn json_asked() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}
