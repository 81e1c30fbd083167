//! p2pd's entry point: parse config, start, notify systemd, wait for a signal, shut down.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use p2pd::{Args, Config, Daemon, StateLock};

fn main() -> ExitCode {
    cap_malloc_arenas();
    let args = Args::parse();
    if let Some(code) = args.docs.run::<Args>() {
        return code;
    }
    let (config, file) = match Config::load_naming_file(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("p2pd: {e}");
            return ExitCode::from(svc::EXIT_CONFIG);
        }
    };
    if args.check_config {
        return check_config(&config, file.as_deref());
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p2pd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Arenas glibc's malloc may use. By default it makes one per thread that allocates, up
/// to 8 per core, and memory freed in one arena serves only allocations made from it: chunk
/// buffers allocated on the runtime's threads and freed on the writer threads left several
/// arenas each holding megabytes of free space. Eight transfers at once peaked 4-9 MiB
/// lower at the receiver with two (docs/benchmark-methods.md), at no measured cost in CPU.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`]; called first, before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn cap_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter (it returns 0 if it refuses, and
    // then nothing changed); no other thread exists yet to allocate meanwhile.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

/// Nothing to cap outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn cap_malloc_arenas() {}

#[tokio::main]
async fn run(config: Config) -> anyhow::Result<()> {
    svc::create_private_dir(&config.state_dir).with_context(|| {
        format!(
            "cannot create state directory {}",
            config.state_dir.display()
        )
    })?;
    // Before anything else touches the state: one daemon per state directory.
    let lock = StateLock::acquire(&config.state_dir)?;
    let _log = svc::logging::init(&config.state_dir, p2pd::activity::FILE_PREFIX)?;
    svc::raise_fd_limit();
    let mut stop = svc::signals::Stop::install()?;
    let mut daemon = Daemon::start_locked(config.clone(), lock).await?;
    announce(&daemon)?;
    svc::notify::ready();
    loop {
        tokio::select! {
            () = stop.wait() => break,
            () = daemon.restart_requested() => {}
        }
        // A new identity key is on disk: start again with it, on the same peer port, keeping
        // the state directory's lock across.
        svc::notify::reloading();
        let mut again = config.clone();
        again.listen = daemon.listen_addr();
        let lock = daemon.stop().await;
        daemon = Daemon::start_locked(again, lock).await?;
        announce(&daemon)?;
        svc::notify::ready();
    }
    svc::notify::stopping();
    daemon.shutdown().await;
    Ok(())
}

/// `--check-config`: the resolved configuration as TOML, after comments saying which file
/// was read.
fn check_config(config: &Config, file: Option<&std::path::Path>) -> ExitCode {
    let text = match config.to_toml() {
        Ok(text) => text,
        Err(e) => {
            eprintln!("p2pd: {e}");
            return ExitCode::from(svc::EXIT_CONFIG);
        }
    };
    match file {
        Some(path) => println!("# read {}, flags applied over it", path.display()),
        None => println!("# no config file read: defaults and flags"),
    }
    if config.trackers.is_empty() {
        println!("# no tracker configured: peers are found by the other sources only");
    }
    print!("{text}");
    ExitCode::SUCCESS
}

/// Prints where the daemon listens, once it does.
fn announce(daemon: &Daemon) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", daemon.listen_addr())?;
    writeln!(out, "control socket {}", daemon.socket().display())?;
    out.flush()
}
