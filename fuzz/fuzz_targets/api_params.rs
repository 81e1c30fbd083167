//! The params of each control API method: the first byte picks the method, the rest is the
//! params as JSON, so the fuzzer spends its time inside the typed `Call` decoder.
//!
//! Checks: a known method is never reported unknown; bad params get `INVALID_PARAMS` and
//! nothing else; accepted params give a call of that method, and the call round-trips
//! through JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::json::check_json_round_trip;
use proto::api::Call;
use proto::rpc::{Outcome, code, parse_request};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let method = Call::METHODS[usize::from(pick) % Call::METHODS.len()];
    let Ok(params) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    let line = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string();
    match parse_request(&line) {
        Ok(incoming) => {
            assert_eq!(incoming.call.method(), method);
            assert_eq!(incoming.id, Some(Value::from(7)));
            check_json_round_trip(&incoming.call);
        }
        Err(response) => {
            let Outcome::Error(err) = &response.outcome else {
                panic!("a refused request got a result");
            };
            assert_eq!(err.code, code::INVALID_PARAMS, "{}", err.message);
            assert_eq!(response.id, Value::from(7));
        }
    }
});
