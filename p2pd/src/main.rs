//! p2pd's entry point: parse config, start, notify systemd, wait for a signal, shut down.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use p2pd::{Args, Config, Daemon};
use tokio::signal::unix::{SignalKind, signal};

/// Exit status for a bad configuration (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("p2pd: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.check_config {
        println!("{config:#?}");
        return ExitCode::SUCCESS;
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p2pd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(config: Config) -> anyhow::Result<()> {
    svc::create_private_dir(&config.state_dir).with_context(|| {
        format!(
            "cannot create state directory {}",
            config.state_dir.display()
        )
    })?;
    let _log = svc::logging::init(&config.state_dir, "activity.log")?;
    svc::raise_fd_limit();
    let mut term = signal(SignalKind::terminate())?;
    p2pd::transfer::configure(config.transfer_limits);
    let daemon = Daemon::start(config).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", daemon.listen_addr())?;
    writeln!(out, "control socket {}", daemon.socket().display())?;
    out.flush()?;
    drop(out);
    svc::notify::ready();
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    svc::notify::stopping();
    daemon.shutdown().await;
    Ok(())
}
