//! The activity log as `log` returns it.

use serde::{Deserialize, Serialize};

/// Method of the notifications `log` with `follow` streams; params: a [`LogRecord`].
pub const LOG_NOTIFICATION: &str = "log";

/// One record of the activity log. A line in a format this daemon cannot read is kept as
/// `raw` (with its leading time, if any).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `INFO`, `WARN`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The operation: `message-in`, `offer-out`, `file-received`, `share-list`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// The peer's name as it was when the record was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The other fields: `file`, `bytes`, `id`, `state`, `peer_id`, ...
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The human text of the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The whole line, when it could not be read as a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}
