//! Helpers shared by the benchmark programs in `src/bin/`: child daemons ([`procs`]), a
//! tracker with p2pd registered at it ([`net`]),
//! `/proc` readings and the machine description ([`sys`]), percentiles ([`stats`]), the
//! JSON-RPC line client for a p2pd control socket ([`rpc`]), and time stamps for reports.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

pub mod net;
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
