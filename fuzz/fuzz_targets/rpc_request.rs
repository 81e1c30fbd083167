//! Request lines on the control socket, as p2pd's JSON-RPC server parses them.
//!
//! Checks: an accepted line names a known method, and the typed call written back as a
//! request parses to the same call and id; a refused line gets one of the four JSON-RPC
//! error codes, with a null id when the id could not be read, and the error response is one
//! line that a client parses back to the same response.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::json::float_free;
use proto::api::Call;
use proto::rpc::{Outcome, Request, ServerLine, Version2, code, parse_request, parse_server_line};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    match parse_request(&line) {
        Ok(incoming) => {
            assert!(Call::METHODS.contains(&incoming.call.method()));
            assert!(matches!(
                incoming.id,
                None | Some(Value::Null | Value::Number(_) | Value::String(_))
            ));
            let again = Request {
                jsonrpc: Version2,
                id: incoming.id.clone(),
                call: incoming.call.clone(),
            };
            let text = serde_json::to_string(&again).expect("a request serialises");
            let back = parse_request(&text).expect("a written request parses");
            assert_eq!(back.call, incoming.call);
            if incoming.id.as_ref().is_none_or(float_free) {
                assert_eq!(back.id, incoming.id);
            }
        }
        Err(response) => {
            let Outcome::Error(err) = &response.outcome else {
                panic!("a refused request got a result");
            };
            let expected = [
                code::PARSE_ERROR,
                code::INVALID_REQUEST,
                code::METHOD_NOT_FOUND,
                code::INVALID_PARAMS,
            ];
            assert!(expected.contains(&err.code), "code {}", err.code);
            assert!(matches!(
                response.id,
                Value::Null | Value::Number(_) | Value::String(_)
            ));
            if err.code == code::PARSE_ERROR {
                assert_eq!(response.id, Value::Null);
            }
            let text = serde_json::to_string(&response).expect("a response serialises");
            assert!(!text.contains('\n'));
            let parsed = parse_server_line(&text).expect("a client parses the response");
            let ServerLine::Response(back) = parsed else {
                panic!("an error response read as a notification");
            };
            if float_free(&response.id) {
                assert_eq!(back, response);
            }
        }
    }
});
