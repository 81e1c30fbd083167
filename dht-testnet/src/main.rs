//! `dht-testnet --nodes N [--bind ADDR]`: runs N BitTorrent Mainline DHT nodes on ADDR
//! (default 127.0.0.1) with routing tables seeded with each other, prints one
//! `bootstrap HOST:PORT` line per node on stdout, then runs until SIGTERM or SIGINT. Tests,
//! demos and benchmarks give these lines to `p2pd --dht-bootstrap`, so nothing reaches the
//! public DHT.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use mainline::Testnet;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "dht-testnet",
    version,
    about = "A local Mainline DHT for tests"
)]
struct Args {
    /// How many DHT nodes to run (1-1000).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1000))]
    nodes: u16,
    /// The IPv4 address every node binds (the Mainline DHT is IPv4 only).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    bind: Ipv4Addr,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dht-testnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    // Installed first, so a signal that comes while the nodes start is kept for the wait.
    let mut stop = runtime
        .block_on(async { svc::signals::Stop::install() })
        .context("cannot install the signal handlers")?;
    // The nodes are threads of their own; building them blocks until every routing table is
    // seeded, which is why it happens outside the runtime.
    let testnet = Testnet::builder(usize::from(args.nodes))
        .bind_address(args.bind)
        .build()
        .with_context(|| format!("cannot bind {} DHT nodes on {}", args.nodes, args.bind))?;
    let mut out = std::io::stdout().lock();
    for addr in &testnet.bootstrap {
        writeln!(out, "bootstrap {addr}").context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")?;
    drop(out);
    runtime.block_on(stop.wait());
    // Dropping the handles ends every node's thread.
    drop(testnet);
    Ok(())
}
