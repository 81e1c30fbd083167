//! Listing one directory of many files: bob's `ls` of alice's share through his control
//! socket (what `p2pctl ls alice:SHARE` does: a new share link, `Stat`, then every `List`
//! page, answered as one JSON result), the pages alone over a raw share link made with bob's
//! key, and a local `readdir` of the same directory with every entry's metadata.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use bench::rpc::Rpc;
use bench::stats::Summary;
use proto::PeerId;
use proto::api::Call;
use proto::share::ShareName;
use serde_json::{Value, json};

use crate::wire::ShareLink;

/// The listing figures.
pub struct Listing {
    /// Entries in the directory.
    pub entries: usize,
    /// Local `read_dir` plus `metadata` of every entry, each repetition.
    pub readdir: Summary,
    /// bob's `ls` RPC of the whole directory, each repetition (written → answer read).
    pub rpc_whole: Summary,
    /// One first page (up to 1,024 entries) over the raw link, each request.
    pub first_page: Summary,
    /// Entries in the first page.
    pub page_entries: usize,
    /// Every page over the raw link, each repetition.
    pub raw_whole: Summary,
}

impl Listing {
    /// The figures as JSON (microseconds).
    pub fn json(&self) -> Value {
        json!({
            "entries": self.entries,
            "readdir": self.readdir.json(),
            "rpc_whole": self.rpc_whole.json(),
            "first_page": self.first_page.json(),
            "page_entries": self.page_entries,
            "raw_whole": self.raw_whole.json(),
        })
    }
}

/// `read_dir` of `dir` with the metadata of every entry (as `ls -l` needs); returns the
/// entries counted.
fn readdir(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        std::hint::black_box(e.metadata()?);
        n += 1;
    }
    Ok(n)
}

/// Where bob's `peers` says alice is, and her key.
fn alice_at(bob: &mut Rpc) -> anyhow::Result<(PeerId, SocketAddr)> {
    let peers = bob.call(Call::Peers {})?;
    let alice = peers
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "alice"))
        .with_context(|| format!("bob does not list alice: {peers}"))?;
    let id: PeerId = serde_json::from_value(alice["id"].clone())?;
    let addr: SocketAddr = alice["addrs"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .with_context(|| format!("no address for alice: {alice}"))?;
    Ok((id, addr))
}

/// Measures the listing of share `share` (alice's, bob granted read), whose root is `dir`
/// holding `n` entries: `whole` repetitions of each whole listing (after one untimed) and
/// `pages` first-page requests. `bob_key` is bob's identity key file.
pub fn measure(
    bob: &mut Rpc,
    share: &str,
    dir: &Path,
    n: usize,
    bob_key: &Path,
    whole: usize,
    pages: usize,
) -> anyhow::Result<Listing> {
    let mut local = Vec::with_capacity(whole);
    readdir(dir)?;
    for _ in 0..whole {
        let t = Instant::now();
        let got = readdir(dir)?;
        local.push(t.elapsed());
        anyhow::ensure!(got == n, "readdir found {got} entries, not {n}");
    }

    let ls = Call::Ls {
        peer: "alice".into(),
        share: Some(share.into()),
        path: None,
        long: false,
        recursive: false,
    };
    let mut rpc = Vec::with_capacity(whole);
    for i in 0..=whole {
        let timed = bob.timed_call(ls.clone())?;
        let listing = timed
            .result
            .context("a notification on a plain connection")?;
        let got = listing["entries"].as_array().map_or(0, Vec::len);
        if got != n {
            bail!("bob's ls lists {got} entries, not {n}");
        }
        if i > 0 {
            rpc.push(timed.read - timed.sent);
        }
    }

    let (alice, addr) = alice_at(bob)?;
    let share = ShareName::new(share)?;
    let mut link = ShareLink::open(bob_key, "bob", alice, addr)?;
    link.page(&share, None)?;
    let mut first = Vec::with_capacity(pages);
    let mut page_entries = 0;
    for _ in 0..pages {
        let p = link.page(&share, None)?;
        page_entries = p.entries;
        first.push(p.took);
    }
    let mut raw = Vec::with_capacity(whole);
    for _ in 0..whole {
        let (took, got) = link.whole(&share)?;
        anyhow::ensure!(got == n, "the raw listing has {got} entries, not {n}");
        raw.push(took);
    }
    link.close();
    Ok(Listing {
        entries: n,
        readdir: Summary::of(&local),
        rpc_whole: Summary::of(&rpc),
        first_page: Summary::of(&first),
        page_entries,
        raw_whole: Summary::of(&raw),
    })
}
