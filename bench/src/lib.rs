//! Helpers shared by the benchmark programs in `src/bin/`: child daemons ([`procs`]), a
//! tracker with p2pd registered at it ([`net`]),
//! `/proc` readings and the machine description ([`sys`]), percentiles ([`stats`]), the
//! JSON-RPC line client for a p2pd control socket ([`rpc`]), payload files ([`payload`]), the
//! fsync'd TCP pipe baseline ([`pipe`]), and time stamps for reports.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

pub mod net;
pub mod payload;
pub mod pipe;
pub mod procs;
pub mod rpc;
pub mod stats;
pub mod sys;

/// How long to wait for a daemon's startup lines, for a line on a control socket, or for
/// peers to come online.
pub const WAIT: Duration = Duration::from_secs(30);

/// The directory of this program, where the daemons it drives are looked for by default.
pub fn exe_dir() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()?
        .parent()
        .context("this program has no directory")?
        .to_path_buf())
}

/// The directory holding `trackerd` and `p2pd`: `given`, else this program's; an error
/// saying how to build them if either is missing.
pub fn daemon_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => exe_dir()?,
    };
    for bin in ["trackerd", "p2pd"] {
        let p = dir.join(bin);
        if !p.is_file() {
            bail!(
                "no {} (build: cargo build --release -p p2pd -p trackerd, or pass --bin-dir DIR)",
                p.display()
            );
        }
    }
    Ok(dir)
}

/// A new temporary directory named `{prefix}…` in `parent`, else in the system's.
pub fn temp_dir(prefix: &str, parent: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    match parent {
        Some(d) => builder.tempdir_in(d),
        None => builder.tempdir(),
    }
    .context("cannot make a temporary directory")
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) =
        svc::daily_file::civil_from_days(i64::try_from(days).unwrap_or(i64::MAX));
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}
