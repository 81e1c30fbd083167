//! Logging: diagnostics to stderr (or journald under systemd), and the activity log, a
//! daily-rotated file in the state directory, mode 0600, that records operations (target
//! `activity`).

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::prelude::*;

use crate::daily_file::DailyFile;

/// The tracing target of activity-log records.
pub const ACTIVITY: &str = "activity";
/// Rotated activity files kept.
const KEEP_FILES: usize = 14;

/// Errors setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The activity log file could not be opened.
    #[error("cannot open the activity log in {dir}: {detail}")]
    Activity {
        /// The state directory.
        dir: String,
        /// The cause.
        detail: String,
    },
}

/// Keeps the activity log's writer thread alive; drop it last to flush.
#[must_use = "dropping the guard stops the activity log"]
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// Installs the global subscriber. `file_prefix` names the activity files
/// (`<state_dir>/<file_prefix>.YYYY-MM-DD`, UTC, mode 0600). Filter with `RUST_LOG` (default
/// `info`).
pub fn init(state_dir: &Path, file_prefix: &str) -> Result<LogGuard, LogError> {
    let appender =
        DailyFile::open(state_dir, file_prefix, KEEP_FILES).map_err(|e| LogError::Activity {
            dir: state_dir.display().to_string(),
            detail: e.to_string(),
        })?;
    // A modest queue: the default preallocates megabytes for a log that sees a few lines a
    // second. When it is full, records are dropped rather than blocking the daemon.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(4096)
        .lossy(true)
        .finish(appender);
    let activity = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
        .with_filter(Targets::new().with_target(ACTIVITY, tracing::Level::INFO));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let journald = if under_journald {
        tracing_journald::layer().ok()
    } else {
        None
    };
    let stderr = if journald.is_none() {
        Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(filter.clone()),
        )
    } else {
        None
    };
    let journald = journald.map(|j| j.with_filter(filter));
    // A second init (tests that start several daemons in one process) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(activity)
        .with(stderr)
        .with(journald)
        .try_init();
    Ok(LogGuard(guard))
}
