//! Logging: diagnostics to stderr (or journald under systemd), and the activity log, a
//! daily-rotated file in the state directory, mode 0600, that records operations (target
//! `activity`). Activity records are also shown as human lines on stderr or in the journal.
//!
//! Each line of the activity file is one JSON object: `time` (RFC 3339, UTC), `level`, the
//! event's fields (`op`, `peer`, `file`, `bytes`, ...) and `message`, the event's text. Each
//! record is also published to [`follow`]ers, so a reader sees new records without tailing
//! the file.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::Context;
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
    let activity = ActivityLayer { writer }
        .with_filter(Targets::new().with_target(ACTIVITY, tracing::Level::INFO));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let journald = journald();
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

/// The journal, when stderr goes to it (systemd sets `JOURNAL_STREAM`).
#[cfg(unix)]
fn journald() -> Option<tracing_journald::Layer> {
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    if under_journald {
        tracing_journald::layer().ok()
    } else {
        None
    }
}

/// No journal off Unix.
#[cfg(not(unix))]
fn journald() -> Option<tracing_subscriber::layer::Identity> {
    None
}

/// Records kept for a follower that falls behind before it misses some.
const FOLLOW_BACKLOG: usize = 1024;

/// The feed of activity records (each a JSON line without its newline).
fn feed() -> &'static broadcast::Sender<String> {
    static FEED: OnceLock<broadcast::Sender<String>> = OnceLock::new();
    FEED.get_or_init(|| broadcast::channel(FOLLOW_BACKLOG).0)
}

/// Receives every activity record written from now on, as the JSON line written to the file
/// (without the newline). In a process that runs several daemons, they share one feed, as
/// they share one file.
pub fn follow() -> broadcast::Receiver<String> {
    feed().subscribe()
}

/// Writes each activity event as one JSON line, and publishes it to followers.
struct ActivityLayer {
    writer: NonBlocking,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ActivityLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let line = record_line(event, now_ms());
        let mut writer = self.writer.clone();
        // Lossy by design: a full queue drops the record rather than block the daemon.
        let _ = writer.write_all(format!("{line}\n").as_bytes());
        let _ = feed().send(line);
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The JSON line of an event: `time`, `level`, then its fields in order.
fn record_line(event: &tracing::Event<'_>, at_ms: u64) -> String {
    let mut fields = Fields(Map::new());
    fields
        .0
        .insert("time".into(), proto::timefmt::format_ms(at_ms).into());
    fields
        .0
        .insert("level".into(), event.metadata().level().as_str().into());
    event.record(&mut fields);
    Value::Object(fields.0).to_string()
}

/// Collects an event's fields as JSON values: numbers and booleans as such, anything else
/// as its text.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Keeps the line each event would be written as.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            if let Ok(mut lines) = self.0.lock() {
                lines.push(record_line(event, 1_700_000_000_123));
            }
        }
    }

    #[test]
    fn records_are_json_lines_with_typed_fields() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let name = "bob\n\"quoted\"";
            tracing::warn!(target: ACTIVITY, op = "file-received", peer = %name, bytes = 5u64, ok = true, state = ?Some(1), "line\nbreak {}", 7);
        });
        let lines = lines.lock().expect("lock");
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'), "{}", lines[0]);
        let v: Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "time": "2023-11-14T22:13:20.123Z",
                "level": "WARN",
                "op": "file-received",
                "peer": "bob\n\"quoted\"",
                "bytes": 5,
                "ok": true,
                "state": "Some(1)",
                "message": "line\nbreak 7",
            })
        );
    }
}
