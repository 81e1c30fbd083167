//! Lines p2pctl reads from the daemon: responses and `event` notifications, then the typed
//! results and events inside them.
//!
//! Checks: a parsed line re-serialises to a line that parses back the same; every result
//! type and event that decodes round-trips through JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::json::{check_json_round_trip, float_free};
use proto::api::{
    EVENT_NOTIFICATION, Event, MessageInfo, PeerInfo, Status, Subscribed, TransferInfo,
};
use proto::rpc::{Outcome, ServerLine, parse_server_line};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let Ok(parsed) = parse_server_line(&line) else {
        return;
    };
    match parsed {
        ServerLine::Response(r) => {
            if float_free(&serde_json::to_value(&r).expect("serialises")) {
                let text = serde_json::to_string(&r).expect("serialises");
                match parse_server_line(&text) {
                    Ok(ServerLine::Response(back)) => assert_eq!(back, r),
                    other => panic!("a response read back as {other:?}"),
                }
            }
            if let Outcome::Result(v) = &r.outcome {
                check_typed::<Status>(v);
                check_typed::<Subscribed>(v);
                check_typed::<PeerInfo>(v);
                check_typed::<Vec<PeerInfo>>(v);
                check_typed::<MessageInfo>(v);
                check_typed::<Vec<MessageInfo>>(v);
                check_typed::<TransferInfo>(v);
                check_typed::<Vec<TransferInfo>>(v);
            }
        }
        ServerLine::Notification(n) => {
            if float_free(&n.params) {
                let text = serde_json::to_string(&n).expect("serialises");
                match parse_server_line(&text) {
                    Ok(ServerLine::Notification(back)) => assert_eq!(back, n),
                    other => panic!("a notification read back as {other:?}"),
                }
            }
            if n.method == EVENT_NOTIFICATION {
                check_typed::<Event>(&n.params);
            }
        }
    }
});

/// If `v` decodes as `T`, the typed value round-trips through JSON (when no float is
/// involved: `Status` holds an `f32`, and one too large for it would come back as `null`).
fn check_typed<T>(v: &Value)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(typed) = serde_json::from_value::<T>(v.clone())
        && float_free(v)
    {
        check_json_round_trip(&typed);
    }
}
