//! dht-lookup: how long finding a peer's address record in the Mainline DHT takes, in local
//! testnets of 20 and 100 nodes (a program, not a test; nothing leaves 127.0.0.1).
//!
//! For each network size it starts a testnet (mainline's `Testnet`, routing tables seeded,
//! as `dht-testnet` runs it), publishes `--records` signed address records as p2pd does
//! (BEP 44 item under the record's key, salt `p2pd/addr/v1`, value the encoded record), then
//! looks each one up from a fresh client, once per key (so no lookup joins another's query):
//!
//! - first: from the lookup's start to the first item whose record passes
//!   `SignedAddrRecord::check` for the key looked up (what p2pd's dial waits for, plus a
//!   300 ms grace for a more recent one);
//! - complete: from the start to the end of mainline's query.
//!
//! Both are measured with mainline's default request timeout (2 s, what p2pd uses) and with
//! 250 ms, since a complete query ends only when its last requests time out.
//!
//! ```text
//! cargo build --release -p bench
//! target/release/dht-lookup              # 20 and 100 nodes, 20 records each
//! target/release/dht-lookup --json
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;
use bench::stats::{Summary, verdict};
use bench::sys::{cpu_model, cpus_online, loadavg};
use bench::utc_now;
use clap::Parser;
use futures_lite::StreamExt as _;
use mainline::async_dht::AsyncDht;
use mainline::{Dht, MutableItem, SigningKey, Testnet};
use proto::SecretKey;
use proto::addr_record::{AddrRecord, SignedAddrRecord};
use serde_json::json;

/// The salt p2pd stores address records under.
const SALT: &[u8] = b"p2pd/addr/v1";
/// Goals: a first valid answer and a complete lookup, in ms (p90).
const GOAL_FIRST_MS: f64 = 100.0;
const GOAL_COMPLETE_MS: f64 = 500.0;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "dht-lookup",
    about = "Lookup time of address records in local DHT testnets"
)]
struct Args {
    /// Network sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "20,100")]
    nodes: Vec<usize>,
    /// Records published and looked up per network and timeout.
    #[arg(long, default_value_t = 20)]
    records: usize,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
}

/// One measured configuration.
struct Row {
    nodes: usize,
    timeout: Duration,
    first: Summary,
    complete: Summary,
    missed: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("a runtime")?;
    let mut rows = Vec::new();
    for &nodes in &args.nodes {
        // Testnet nodes are threads of their own: built outside the runtime.
        let net = Testnet::builder(nodes)
            .build()
            .with_context(|| format!("a testnet of {nodes} nodes"))?;
        for timeout in [
            mainline::DEFAULT_REQUEST_TIMEOUT,
            Duration::from_millis(250),
        ] {
            rows.push(runtime.block_on(measure(&net, nodes, timeout, args.records))?);
        }
    }
    if args.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "nodes": r.nodes, "request_timeout_ms": r.timeout.as_millis() as u64,
                    "first_us": r.first.json(), "complete_us": r.complete.json(), "missed": r.missed,
                })
            })
            .collect();
        let doc = json!({ "time": utc_now(), "cpu": cpu_model(), "cpus": cpus_online(),
            "loadavg": loadavg(), "rows": rows });
        println!("{doc}");
        return Ok(());
    }
    println!(
        "dht-lookup, {} ({} CPUs, load {}), {}",
        cpu_model(),
        cpus_online(),
        loadavg(),
        utc_now()
    );
    println!(
        "nodes  timeout  first p50/p90 ms  complete p50/p90 ms  missed  goals (first<100, complete<500)"
    );
    for r in &rows {
        let ok = r.first.p90 <= GOAL_FIRST_MS * 1e3 && r.complete.p90 <= GOAL_COMPLETE_MS * 1e3;
        println!(
            "{:>5}  {:>5}ms  {:>7.1} / {:>6.1}  {:>9.1} / {:>7.1}  {:>6}  {}",
            r.nodes,
            r.timeout.as_millis(),
            r.first.p50 / 1e3,
            r.first.p90 / 1e3,
            r.complete.p50 / 1e3,
            r.complete.p90 / 1e3,
            r.missed,
            verdict(ok && r.missed == 0),
        );
    }
    Ok(())
}

/// A client of `net` with `timeout` per request.
fn client(net: &Testnet, timeout: Duration) -> anyhow::Result<AsyncDht> {
    Ok(Dht::builder()
        .bootstrap(&net.bootstrap)
        .bind_address(Ipv4Addr::LOCALHOST)
        .request_timeout(timeout)
        .build()
        .context("a DHT client")?
        .as_async())
}

/// Publishes `records` records, then looks each up from a fresh client.
async fn measure(
    net: &Testnet,
    nodes: usize,
    timeout: Duration,
    records: usize,
) -> anyhow::Result<Row> {
    let publisher = client(net, timeout)?;
    let mut keys = Vec::with_capacity(records);
    for i in 0..records {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).context("random seed")?;
        let key = SecretKey::from_seed(seed);
        let record = AddrRecord {
            key: key.peer_id(),
            seq: 1,
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 4000 + i as u16))],
            expiry: svc::unix_now() + 3600,
        }
        .sign(&key);
        let item = MutableItem::new(
            SigningKey::from_bytes(&key.seed()),
            &record.encode(),
            1,
            Some(SALT),
        );
        publisher
            .put_mutable(item, None)
            .await
            .with_context(|| format!("publish record {i}"))?;
        keys.push(key);
    }
    let (mut first, mut complete, mut missed) = (Vec::new(), Vec::new(), 0);
    for key in &keys {
        let looker = client(net, timeout)?;
        looker.bootstrapped().await;
        let want = key.peer_id();
        let start = Instant::now();
        let mut stream = looker.get_mutable(want.as_bytes(), Some(SALT), None);
        let mut found = None;
        while let Some(item) = stream.next().await {
            let valid = SignedAddrRecord::decode(item.value())
                .is_ok_and(|r| r.check(&want, svc::unix_now()).is_ok());
            if valid && found.is_none() {
                found = Some(start.elapsed());
            }
        }
        complete.push(start.elapsed());
        match found {
            Some(t) => first.push(t),
            None => missed += 1,
        }
    }
    Ok(Row {
        nodes,
        timeout,
        first: Summary::of(&first),
        complete: Summary::of(&complete),
        missed,
    })
}
