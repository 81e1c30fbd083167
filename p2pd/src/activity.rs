//! Reading the activity log for `log`: the daily files svc writes in the state directory
//! (one JSON object a line), filtered by peer and time, and the records written since, from
//! svc's feed (exact and in order, with no polling of the file or rotation to follow).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;

use proto::PeerId;
use proto::api::LogRecord;
use proto::timefmt;
use tokio::sync::broadcast;

/// The activity files' prefix: `<state_dir>/activity.log.YYYY-MM-DD`.
pub const FILE_PREFIX: &str = "activity.log";

/// Errors reading the activity log.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    /// A file could not be read.
    #[error("cannot read the activity log in {dir}: {source}")]
    Read {
        /// The state directory.
        dir: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Which records to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this peer's: (name, key).
    pub peer: Option<(String, PeerId)>,
    /// Only at or after this time (Unix ms); records with no time are left out then.
    pub since_ms: Option<u64>,
}

impl Filter {
    /// Whether `r` passes. A record naming a key (`peer_id`) is matched by key, others by
    /// the name they were written with.
    pub fn matches(&self, r: &LogRecord) -> bool {
        if let Some(since) = self.since_ms {
            let at = r.time.as_deref().and_then(timefmt::parse_ms);
            if at.is_none_or(|at| at < since) {
                return false;
            }
        }
        match &self.peer {
            None => true,
            Some((name, id)) => match r.fields.get("peer_id").and_then(|v| v.as_str()) {
                Some(key) => key == id.to_string(),
                None => r.peer.as_deref() == Some(name.as_str()),
            },
        }
    }
}

/// One line of the file as a record; a line that is not a JSON object is kept whole as
/// `raw`, with its leading RFC 3339 time (older versions wrote text lines) as `time`.
pub fn parse_line(line: &str) -> LogRecord {
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(line) else {
        let first = line.split_whitespace().next().unwrap_or("");
        return LogRecord {
            time: timefmt::parse_ms(first).map(|_| first.to_owned()),
            raw: Some(line.to_owned()),
            ..LogRecord::default()
        };
    };
    let mut take = |key: &str| match map.remove(key) {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
        None => None,
    };
    LogRecord {
        time: take("time"),
        level: take("level"),
        op: take("op"),
        peer: take("peer"),
        message: take("message"),
        raw: None,
        fields: map,
    }
}

/// The activity log of one daemon.
#[derive(Debug, Clone)]
pub struct ActivityLog {
    dir: PathBuf,
}

impl ActivityLog {
    /// The log in state directory `dir`.
    pub fn new(dir: PathBuf) -> ActivityLog {
        ActivityLog { dir }
    }

    /// The last `limit` records that pass `filter`, oldest first (files by date, lines in
    /// order).
    pub async fn read(
        &self,
        filter: Filter,
        limit: usize,
    ) -> Result<Vec<LogRecord>, ActivityError> {
        let log = self.clone();
        let joined = tokio::task::spawn_blocking(move || log.read_blocking(&filter, limit)).await;
        match joined {
            Ok(r) => r.map_err(|source| ActivityError::Read {
                dir: self.dir.display().to_string(),
                source,
            }),
            Err(e) => Err(ActivityError::Read {
                dir: self.dir.display().to_string(),
                source: io::Error::other(e),
            }),
        }
    }

    fn read_blocking(&self, filter: &Filter, limit: usize) -> io::Result<Vec<LogRecord>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(date) = name
                .strip_prefix(FILE_PREFIX)
                .and_then(|r| r.strip_prefix('.'))
            else {
                continue;
            };
            // A whole day before `since` holds nothing to show.
            let day_end = timefmt::parse_ms(&format!("{date}T23:59:59.999Z"));
            if let (Some(since), Some(end)) = (filter.since_ms, day_end)
                && end < since
            {
                continue;
            }
            if day_end.is_some() && entry.file_type()?.is_file() {
                files.push((name, entry.path()));
            }
        }
        files.sort();
        let mut kept = VecDeque::new();
        for (_, path) in files {
            let file = match File::open(&path) {
                Ok(f) => f,
                // Removed by rotation meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for line in BufReader::new(file).split(b'\n') {
                let line = line?;
                let line = String::from_utf8_lossy(&line);
                if line.trim().is_empty() {
                    continue;
                }
                let record = parse_line(&line);
                if filter.matches(&record) {
                    if kept.len() == limit {
                        kept.pop_front();
                    }
                    if limit > 0 {
                        kept.push_back(record);
                    }
                }
            }
        }
        Ok(kept.into())
    }
}

/// The records written after a `log` call read the files, for `--follow`.
#[derive(Debug)]
pub struct Follower {
    feed: broadcast::Receiver<String>,
    filter: Filter,
    /// The newest time read from the files, and the lines read with it: the feed was joined
    /// before the files were read, so it repeats what was written in between.
    seen_time: Option<String>,
    seen: Vec<LogRecord>,
}

impl Follower {
    /// Joins the feed; call before reading the files, then [`Follower::skip_read`].
    pub fn join(filter: Filter) -> Follower {
        Follower {
            feed: svc::logging::follow(),
            filter,
            seen_time: None,
            seen: Vec::new(),
        }
    }

    /// Notes the records already answered, not to repeat them.
    pub fn skip_read(&mut self, read: &[LogRecord]) {
        self.seen_time = read.iter().filter_map(|r| r.time.clone()).max();
        self.seen = read
            .iter()
            .filter(|r| r.time.is_some() && r.time == self.seen_time)
            .cloned()
            .collect();
    }

    /// The next new record that passes the filter; a record saying how many were missed if
    /// this fell behind; `None` once the feed is closed.
    pub async fn next(&mut self) -> Option<LogRecord> {
        loop {
            let line = match self.feed.recv().await {
                Ok(line) => line,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Some(LogRecord {
                        op: Some("lagged".into()),
                        message: Some(format!("missed {missed} records (fell behind)")),
                        ..LogRecord::default()
                    });
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            let record = parse_line(&line);
            if let Some(seen) = &self.seen_time {
                match record.time.as_ref() {
                    Some(t) if t < seen => continue,
                    Some(t) if t == seen && self.seen.contains(&record) => continue,
                    _ => {}
                }
            }
            if self.filter.matches(&record) {
                return Some(record);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_keeps_other_lines_whole() {
        let r = parse_line(
            r#"{"time":"2026-12-05T22:10:03.120Z","level":"INFO","op":"file-received","id":"ab","file":"report.pdf","bytes":1258291,"message":"file verified"}"#,
        );
        assert_eq!(r.time.as_deref(), Some("2026-12-05T22:10:03.120Z"));
        assert_eq!(r.op.as_deref(), Some("file-received"));
        assert_eq!(r.peer, None);
        assert_eq!(r.message.as_deref(), Some("file verified"));
        assert_eq!(r.fields.get("bytes"), Some(&serde_json::json!(1_258_291)));
        assert_eq!(r.fields.len(), 3, "{:?}", r.fields);
        let old = "2026-12-01T10:00:00.000001Z  INFO message received op=\"message-in\" peer=bob";
        let r = parse_line(old);
        assert_eq!(r.raw.as_deref(), Some(old));
        assert_eq!(r.time.as_deref(), Some("2026-12-01T10:00:00.000001Z"));
        let junk = parse_line("\u{1b}[2J garbage {");
        assert_eq!((junk.time, junk.raw.is_some()), (None, true));
    }

    #[test]
    fn filters_by_time_then_key_or_name() {
        let bob = proto::SecretKey::from_seed([2; 32]).peer_id();
        let rec = |time: &str, peer: &str, key: Option<String>| {
            let mut r = LogRecord {
                time: Some(time.into()),
                peer: Some(peer.into()),
                ..LogRecord::default()
            };
            if let Some(k) = key {
                r.fields.insert("peer_id".into(), k.into());
            }
            r
        };
        let f = Filter {
            peer: Some(("bob".into(), bob)),
            since_ms: timefmt::parse_ms("2026-12-05T10:00:00Z"),
        };
        assert!(f.matches(&rec("2026-12-05T10:00:00.000Z", "bob", None)));
        assert!(!f.matches(&rec("2026-12-05T09:59:59.999Z", "bob", None)));
        assert!(!f.matches(&rec("2026-12-05T11:00:00.000Z", "carol", None)));
        // The key decides where there is one: an old name on bob's key, another key as bob.
        assert!(f.matches(&rec("2026-12-05T11:00:00Z", "bobby", Some(bob.to_string()))));
        assert!(!f.matches(&rec("2026-12-05T11:00:00Z", "bob", Some("x".into()))));
        let untimed = LogRecord {
            raw: Some("text".into()),
            ..LogRecord::default()
        };
        assert!(!f.matches(&untimed));
        assert!(Filter::default().matches(&untimed));
    }

    #[tokio::test]
    async fn reads_the_newest_records_across_days() {
        let dir = tempfile::tempdir().expect("tempdir");
        let line = |t: &str, op: &str| format!(r#"{{"time":"{t}","op":"{op}"}}"#);
        std::fs::write(
            dir.path().join("activity.log.2026-12-04"),
            format!("{}\nold text line\n", line("2026-12-04T23:00:00.000Z", "a")),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("activity.log.2026-12-05"),
            format!(
                "{}\n{}\n",
                line("2026-12-05T01:00:00.000Z", "b"),
                line("2026-12-05T02:00:00.000Z", "c")
            ),
        )
        .expect("write");
        std::fs::write(dir.path().join("activity.log.notes"), "x\n").expect("write");
        let log = ActivityLog::new(dir.path().to_owned());
        let ops = |rs: Vec<LogRecord>| -> Vec<String> {
            rs.into_iter()
                .map(|r| r.op.or(r.raw).unwrap_or_default())
                .collect()
        };
        let all = log.read(Filter::default(), 10).await.expect("read");
        assert_eq!(ops(all), ["a", "old text line", "b", "c"]);
        let last = log.read(Filter::default(), 2).await.expect("read");
        assert_eq!(ops(last), ["b", "c"]);
        let since = Filter {
            since_ms: timefmt::parse_ms("2026-12-05T01:30:00Z"),
            ..Filter::default()
        };
        assert_eq!(ops(log.read(since, 10).await.expect("read")), ["c"]);
    }
}
