//! trackerd's entry point: parse config, start, notify systemd, wait for a signal, shut down.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use trackerd::admin::{self, Answer};
use trackerd::{Args, Command, Config, Tracker};

/// Exit status when the running tracker cannot be reached.
const EXIT_UNREACHABLE: u8 = 3;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(code) = args.docs.run::<Args>() {
        return code;
    }
    if let Some(Command::Release { name }) = &args.command {
        return release(&args, name);
    }
    let config = match Config::load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("trackerd: {e}");
            return ExitCode::from(svc::EXIT_CONFIG);
        }
    };
    if args.check_config {
        println!("{config:#?}");
        return ExitCode::SUCCESS;
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trackerd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `trackerd release NAME`: 0 released, 1 not bound or refused, 2 bad name, 3 unreachable,
/// 78 bad config.
fn release(args: &Args, name: &str) -> ExitCode {
    let socket = match Config::admin_socket_of_running(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("trackerd: {e}");
            return ExitCode::from(svc::EXIT_CONFIG);
        }
    };
    let name = match proto::PeerName::new(name) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("trackerd: invalid name {name:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("trackerd: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(admin::request_release(&socket, name)) {
        Ok(Answer::Released { name, key }) => {
            println!("released {name} (was key {key})");
            ExitCode::SUCCESS
        }
        Ok(Answer::NotBound { name }) => {
            println!("{name} is not bound");
            ExitCode::FAILURE
        }
        Ok(Answer::Error(e)) => {
            eprintln!("trackerd: the tracker refused: {e}");
            ExitCode::FAILURE
        }
        Ok(Answer::Stats(_)) => {
            eprintln!("trackerd: the tracker answered a release with its counters");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!(
                "trackerd: cannot reach the running tracker: {e:#}\n\
                 hint: run as root or the service user; pass --admin-socket PATH if it listens elsewhere"
            );
            ExitCode::from(EXIT_UNREACHABLE)
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
    let mut stop = svc::signals::Stop::install()?;
    let tracker = Tracker::start(config).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", tracker.local_addr())?;
    writeln!(out, "tracker key {}", tracker.id())?;
    out.flush()?;
    drop(out);
    svc::notify::ready();
    stop.wait().await;
    svc::notify::stopping();
    tracker.shutdown().await;
    Ok(())
}
