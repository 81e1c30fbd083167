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
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("p2pctl: cannot start the async runtime: {e}");
            return ExitCode::from(error::EXIT_FAILED);
        }
    };
    let result = runtime.block_on(cmd::run(cli));
    // A read of stdin (`chat`) cannot be cancelled; don't wait for it before exiting.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !err.is_silent() {
                eprintln!("p2pctl: {err}");
                if let Some(hint) = err.hint() {
                    eprintln!("hint: {hint}");
                }
            }
            err.exit_code()
        }
    }
}
