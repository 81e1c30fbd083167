//! A local Mainline DHT for the tests: the `dht-testnet` binary, started and read the way a
//! user would (its `bootstrap HOST:PORT` lines), so no test ever reaches the public DHT.

use crate::{DEADLINE, Proc, TestNet};

/// A running `dht-testnet` and the bootstrap addresses it printed.
#[derive(Debug)]
pub struct DhtTestnet {
    /// The process (SIGTERM on drop).
    pub proc: Proc,
    /// One `HOST:PORT` per node.
    pub bootstrap: Vec<String>,
}

impl DhtTestnet {
    /// Starts `dht-testnet --nodes nodes` on 127.0.0.1 and waits for its `nodes` lines.
    pub fn start(net: &TestNet, nodes: usize) -> DhtTestnet {
        let mut proc = net.spawn(
            "dht-testnet",
            "dht-testnet",
            &["--nodes", &nodes.to_string()],
        );
        let bootstrap = (0..nodes)
            .map(|_| proc.wait_line("bootstrap ", DEADLINE))
            .collect();
        DhtTestnet { proc, bootstrap }
    }

    /// The p2pd flags that use this DHT: `--dht` and a `--dht-bootstrap` for a few nodes.
    pub fn p2pd_args(&self) -> Vec<String> {
        let mut args = vec!["--dht".to_owned()];
        for addr in self.bootstrap.iter().take(3) {
            args.extend(["--dht-bootstrap".to_owned(), addr.clone()]);
        }
        args
    }
}
