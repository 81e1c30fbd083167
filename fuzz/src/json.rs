//! JSON round trips, for the control API and the human-readable forms of wire types.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Serialises `v` to one line of JSON and parses it back: equal, and no newline inside (the
/// control socket is line-delimited). Returns the line.
pub fn check_json_round_trip<T>(v: &T) -> String
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let line = serde_json::to_string(v).expect("a decoded value serialises");
    assert!(!line.contains('\n'), "newline in a JSON line: {line:?}");
    let back: T = serde_json::from_str(&line).expect("serialised JSON parses back");
    assert_eq!(&back, v, "JSON round trip changed the value");
    line
}

/// True when `v` holds no floating-point number anywhere. serde_json (without its
/// `float_roundtrip` feature) may move a float by one ulp through text, so exact
/// comparisons skip values that hold one.
pub fn float_free(v: &Value) -> bool {
    match v {
        Value::Number(n) => !n.is_f64(),
        Value::Array(a) => a.iter().all(float_free),
        Value::Object(o) => o.values().all(float_free),
        Value::Null | Value::Bool(_) | Value::String(_) => true,
    }
}
