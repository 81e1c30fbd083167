//! JSON-RPC request parsing: every error class gets its standard code, and no input panics.

use proptest::prelude::*;
use proto::api::Call;
use proto::rpc::{Outcome, Request, Response, code, parse_request};
use serde_json::{Value, json};

fn err_code(line: &str) -> (Value, i32) {
    match parse_request(line) {
        Ok(i) => panic!("accepted {line:?} as {i:?}"),
        Err(Response {
            id,
            outcome: Outcome::Error(e),
            ..
        }) => (id, e.code),
        Err(r) => panic!("non-error response {r:?}"),
    }
}

#[test]
fn well_formed_requests_parse() {
    let i = parse_request(r#"{"jsonrpc":"2.0","id":7,"method":"status"}"#).unwrap();
    assert_eq!((i.id, i.call), (Some(json!(7)), Call::Status {}));
    let i = parse_request(r#"{"jsonrpc":"2.0","id":"x","method":"peers","params":{}}"#).unwrap();
    assert_eq!(i.call, Call::Peers {});
    let i = parse_request(r#"{"jsonrpc":"2.0","id":1,"method":"peers","params":[]}"#).unwrap();
    assert_eq!(i.call, Call::Peers {});
    let i = parse_request(r#"{"jsonrpc":"2.0","method":"subscribe"}"#).unwrap();
    assert_eq!(i.id, None);
}

#[test]
fn each_error_class_has_its_code() {
    assert_eq!(err_code("{"), (Value::Null, code::PARSE_ERROR));
    assert_eq!(
        err_code(&"[".repeat(10_000)),
        (Value::Null, code::PARSE_ERROR)
    );
    assert_eq!(err_code("[]"), (Value::Null, code::INVALID_REQUEST));
    assert_eq!(
        err_code(r#"{"jsonrpc":"1.0","id":1,"method":"status"}"#),
        (json!(1), code::INVALID_REQUEST)
    );
    assert_eq!(
        err_code(r#"{"jsonrpc":"2.0","id":1,"method":5}"#),
        (json!(1), code::INVALID_REQUEST)
    );
    assert_eq!(
        err_code(r#"{"jsonrpc":"2.0","id":{},"method":"status"}"#).1,
        code::INVALID_REQUEST
    );
    assert_eq!(
        err_code(r#"{"jsonrpc":"2.0","id":2,"method":"nope"}"#),
        (json!(2), code::METHOD_NOT_FOUND)
    );
    assert_eq!(
        err_code(r#"{"jsonrpc":"2.0","id":3,"method":"peers","params":{"x":1}}"#),
        (json!(3), code::INVALID_PARAMS)
    );
    assert_eq!(
        err_code(r#"{"jsonrpc":"2.0","id":4,"method":"peers","params":5}"#),
        (json!(4), code::INVALID_PARAMS)
    );
}

#[test]
fn client_requests_serialise_as_the_server_expects() {
    let line = serde_json::to_string(&Request::new(9, Call::Status {})).unwrap();
    assert_eq!(
        line,
        r#"{"jsonrpc":"2.0","id":9,"method":"status","params":{}}"#
    );
    assert_eq!(parse_request(&line).unwrap().call, Call::Status {});
}

proptest! {
    #[test]
    fn arbitrary_lines_never_panic(s in ".{0,300}") {
        let _ = parse_request(&s);
        let _ = proto::rpc::parse_server_line(&s);
    }

    #[test]
    fn json_shaped_lines_never_panic(method in "[a-z_]{0,12}", params in prop_oneof![Just("{}"), Just("[]"), Just("null"), Just("1"), Just("{\"a\":[1,2]}")]) {
        let line = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
        let _ = parse_request(&line);
    }
}
