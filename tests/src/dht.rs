//! A local Mainline DHT for the tests: the `dht-testnet` binary, started and read the way a
//! user would (its `bootstrap HOST:PORT` lines), so no test ever reaches the public DHT.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::Path;

use mainline::{Dht, MutableItem, SigningKey};
use proto::SecretKey;
use proto::addr_record::SignedAddrRecord;

use crate::{DEADLINE, Proc, TestNet};

/// The salt p2pd stores address records under (BEP 44).
pub const SALT: &[u8] = b"p2pd/addr/v1";

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
        let proc = net.spawn(
            "dht-testnet",
            "dht-testnet",
            &["--nodes", &nodes.to_string()],
        );
        Self::read_bootstrap(proc, nodes)
    }

    /// Starts `dht-testnet --nodes nodes --bind bind` in a network namespace host (run as
    /// `PREFIX... dht-testnet`, see [`crate::netns::Host::prefix`]) and waits for its lines.
    pub fn start_via(
        net: &TestNet,
        nodes: usize,
        prefix: &[OsString],
        bind: Ipv4Addr,
    ) -> DhtTestnet {
        let (program, words) = prefix.split_first().expect("a prefix names a program");
        let mut cmd = net.isolated_command(program);
        cmd.args(words).arg(net.bin("dht-testnet")).args([
            "--nodes",
            &nodes.to_string(),
            "--bind",
            &bind.to_string(),
        ]);
        let logs = net.unique_dir("logs");
        let proc = Proc::spawn("dht-testnet", cmd, &logs.join("dht-testnet.stderr"));
        Self::read_bootstrap(proc, nodes)
    }

    fn read_bootstrap(mut proc: Proc, nodes: usize) -> DhtTestnet {
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

    /// A mainline client of this DHT, for a test to put items of its own.
    pub fn client(&self) -> Dht {
        Dht::builder()
            .bootstrap(&self.bootstrap)
            .bind_address(Ipv4Addr::LOCALHOST)
            .build()
            .expect("a DHT client")
    }

    /// Puts `record` into the DHT as the item of `signer`'s key at `seq`, as p2pd would
    /// (whatever the record says: a test forges with it).
    pub fn put_raw(&self, signer: &SecretKey, record: &SignedAddrRecord, seq: i64) {
        let item = MutableItem::new(
            SigningKey::from_bytes(&signer.seed()),
            &record.encode(),
            seq,
            Some(SALT),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let client = self.client().as_async();
        runtime
            .block_on(client.put_mutable(item, None))
            .expect("the testnet stores the item");
    }
}

/// The identity key of the p2pd whose state directory is `state_dir`.
pub fn identity_key(state_dir: &Path) -> SecretKey {
    let path = state_dir.join("identity.key");
    assert!(path.is_file(), "no key at {}", path.display());
    svc::keyfile::load_or_create(&path)
        .expect("read the identity key")
        .0
}
