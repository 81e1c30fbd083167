//! JSON-RPC 2.0 envelopes for the local control socket: one JSON object per line.
//!
//! [`parse_request`] turns a raw line into a typed [`Call`] or into the exact error response
//! the spec asks for (-32700 parse error, -32600 invalid request, -32601 unknown method,
//! -32602 invalid params).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::Call;

/// Longest line accepted on the control socket, newline excluded.
pub const MAX_LINE: usize = 1 << 20;

/// Standard and application error codes.
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// Valid JSON but not a request object (or a line over the size cap).
    pub const INVALID_REQUEST: i32 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// The params do not fit the method.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The daemon failed to carry out a valid request.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// No known peer matches the name or id prefix.
    pub const UNKNOWN_PEER: i32 = 1001;
    /// An id prefix matches more than one peer.
    pub const AMBIGUOUS_PEER: i32 = 1002;
    /// The operation failed (see the message).
    pub const OPERATION_FAILED: i32 = 1003;
}

/// The `"jsonrpc": "2.0"` marker; anything else fails to parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Version2;

impl Serialize for Version2 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("2.0")
    }
}

impl<'de> Deserialize<'de> for Version2 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "2.0" {
            Ok(Version2)
        } else {
            Err(serde::de::Error::custom(format!(
                "jsonrpc must be \"2.0\", got {s:?}"
            )))
        }
    }
}

/// A request as sent by a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Always "2.0".
    pub jsonrpc: Version2,
    /// Echoed in the response; absent for a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// The typed call (`method` and `params`).
    #[serde(flatten)]
    pub call: Call,
}

impl Request {
    /// A request with a numeric id.
    pub fn new(id: u64, call: Call) -> Self {
        Self {
            jsonrpc: Version2,
            id: Some(Value::from(id)),
            call,
        }
    }
}

/// An error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// One of [`code`].
    pub code: i32,
    /// Human explanation.
    pub message: String,
    /// Extra detail, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with no data.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// A response: exactly one of `result` or `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Always "2.0".
    pub jsonrpc: Version2,
    /// The request's id (null when it could not be read).
    pub id: Value,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Result or error, flattened into [`Response`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Success.
    Result(Value),
    /// Failure.
    Error(RpcError),
}

impl Response {
    /// A success response.
    pub fn ok(id: Value, result: Value) -> Self {
        Self {
            jsonrpc: Version2,
            id,
            outcome: Outcome::Result(result),
        }
    }
    /// An error response.
    pub fn err(id: Value, error: RpcError) -> Self {
        Self {
            jsonrpc: Version2,
            id,
            outcome: Outcome::Error(error),
        }
    }
}

/// A server-to-client notification (no id), used for event streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Always "2.0".
    pub jsonrpc: Version2,
    /// The notification's name, such as `"event"`.
    pub method: String,
    /// Its payload.
    pub params: Value,
}

/// A line a client reads: a response to one of its requests, or a notification.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerLine {
    /// Answer to a request.
    Response(Response),
    /// Unsolicited event.
    Notification(Notification),
}

/// Parses a line read from the daemon.
pub fn parse_server_line(line: &str) -> Result<ServerLine, serde_json::Error> {
    let v: Value = serde_json::from_str(line)?;
    if v.get("id").is_some() {
        serde_json::from_value(v).map(ServerLine::Response)
    } else {
        serde_json::from_value(v).map(ServerLine::Notification)
    }
}

/// A request line the daemon accepted: its id and typed call.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The id to answer with; `None` for a notification (no answer is sent).
    pub id: Option<Value>,
    /// What to do.
    pub call: Call,
}

/// Parses one request line. On failure returns the error response to send back.
/// `serde_json` refuses nesting deeper than 128 levels, so deep JSON is a parse error.
pub fn parse_request(line: &str) -> Result<Incoming, Response> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        Response::err(
            Value::Null,
            RpcError::new(code::PARSE_ERROR, format!("parse error: {e}")),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err(invalid(Value::Null, "a request is a JSON object"));
    };
    let id = obj.remove("id");
    let reply_id = id.clone().unwrap_or(Value::Null);
    if !matches!(
        id,
        None | Some(Value::Null | Value::Number(_) | Value::String(_))
    ) {
        return Err(invalid(
            Value::Null,
            "id must be a number, a string or null",
        ));
    }
    if obj.get("jsonrpc") != Some(&Value::from("2.0")) {
        return Err(invalid(reply_id, "jsonrpc must be \"2.0\""));
    }
    let Some(Value::String(method)) = obj.remove("method") else {
        return Err(invalid(reply_id, "method must be a string"));
    };
    if !Call::METHODS.contains(&method.as_str()) {
        return Err(Response::err(
            reply_id,
            RpcError::new(code::METHOD_NOT_FOUND, format!("unknown method {method:?}")),
        ));
    }
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        // Every method takes named params; an empty positional list means "none".
        Some(Value::Array(a)) if a.is_empty() => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Err(Response::err(
                reply_id,
                RpcError::new(
                    code::INVALID_PARAMS,
                    "params must be an object of named parameters",
                ),
            ));
        }
    };
    let mut tagged = serde_json::Map::new();
    tagged.insert("method".into(), Value::String(method.clone()));
    tagged.insert("params".into(), params);
    let call: Call = serde_json::from_value(Value::Object(tagged)).map_err(|e| {
        Response::err(
            reply_id.clone(),
            RpcError::new(
                code::INVALID_PARAMS,
                format!("invalid params for {method}: {e}"),
            ),
        )
    })?;
    Ok(Incoming { id, call })
}

fn invalid(id: Value, msg: &str) -> Response {
    Response::err(
        id,
        RpcError::new(code::INVALID_REQUEST, format!("invalid request: {msg}")),
    )
}

/// The error response for a line over [`MAX_LINE`].
pub fn line_too_long() -> Response {
    invalid(Value::Null, "line exceeds the 1 MiB limit")
}
