//! The control socket refuses bad input with the right JSON-RPC error and stays usable:
//! malformed JSON, unknown methods, bad params, wrong versions, over-long lines and deeply
//! nested JSON. Only its owner may use it: the file is 0600, and another local user who
//! can reach it anyway is refused by the uid check (and their p2pctl refuses a directory
//! that is not theirs). `local_trust.rs` tests the other side: p2pctl and p2pd refusing a
//! socket another user could serve.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use p2p_tests::nobody::{NOBODY, Nobody, set_mode};
use p2p_tests::{DEADLINE, P2pd, RpcClient, TestNet, run_with_timeout};
use serde_json::{Value, json};

/// The error code of an error response, checking the envelope.
#[track_caller]
fn error_code(resp: &Value, id: Value) -> i64 {
    assert_eq!(resp["jsonrpc"], "2.0", "{resp}");
    assert_eq!(resp["id"], id, "{resp}");
    assert!(resp.get("result").is_none(), "{resp}");
    assert!(resp["error"]["message"].is_string(), "{resp}");
    resp["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error response: {resp}"))
}

/// Sends `line` and returns the error code answered, with the expected `id`.
#[track_caller]
fn error_for(rpc: &mut RpcClient, line: &str, id: Value) -> i64 {
    rpc.send_line(line).expect("send");
    let resp = rpc.read_json(DEADLINE);
    error_code(&resp, id)
}

/// A status call on `rpc` works.
#[track_caller]
fn still_serves(rpc: &mut RpcClient, daemon: &P2pd) {
    let status = rpc.call("status", json!({}));
    assert_eq!(status["name"], daemon.name.as_str(), "{status}");
}

#[test]
fn bad_requests_get_json_rpc_errors_and_the_connection_stays_usable() {
    let net = TestNet::new();
    let daemon = net.spawn_p2pd("alice", "127.0.0.1:9", &[]);
    let mut rpc = daemon.rpc();

    assert_eq!(error_for(&mut rpc, "{", Value::Null), -32700);
    assert_eq!(error_for(&mut rpc, "not json at all", Value::Null), -32700);
    assert_eq!(error_for(&mut rpc, "[1,2]", Value::Null), -32600);
    assert_eq!(error_for(&mut rpc, "42", Value::Null), -32600);
    assert_eq!(
        error_for(
            &mut rpc,
            r#"{"jsonrpc":"2.0","id":1,"method":"no_such_method"}"#,
            json!(1)
        ),
        -32601
    );
    assert_eq!(
        error_for(
            &mut rpc,
            r#"{"jsonrpc":"2.0","id":2,"method":"status","params":{"x":1}}"#,
            json!(2)
        ),
        -32602
    );
    assert_eq!(
        error_for(
            &mut rpc,
            r#"{"jsonrpc":"2.0","id":3,"method":"peers","params":5}"#,
            json!(3)
        ),
        -32602
    );
    assert_eq!(
        error_for(
            &mut rpc,
            r#"{"jsonrpc":"1.0","id":4,"method":"status"}"#,
            json!(4)
        ),
        -32600
    );
    assert_eq!(
        error_for(
            &mut rpc,
            r#"{"id":"five","method":"status"}"#,
            json!("five")
        ),
        -32600
    );
    assert_eq!(
        error_for(&mut rpc, r#"{"jsonrpc":"2.0","id":6,"method":7}"#, json!(6)),
        -32600
    );
    // Bytes that are not UTF-8.
    rpc.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"st\xff\xfeus\"}\n")
        .expect("send");
    assert_eq!(error_code(&rpc.read_json(DEADLINE), Value::Null), -32700);

    // A notification (no id) is carried out but not answered: the next line answers the
    // request after it.
    rpc.send_line(r#"{"jsonrpc":"2.0","method":"status"}"#)
        .expect("send");
    rpc.send_line(r#"{"jsonrpc":"2.0","id":"after","method":"peers"}"#)
        .expect("send");
    let resp = rpc.read_json(DEADLINE);
    assert_eq!(resp["id"], "after", "{resp}");
    assert_eq!(resp["result"], json!([]), "{resp}");

    // Every error above left the connection usable.
    still_serves(&mut rpc, &daemon);
}

#[test]
fn an_over_long_line_is_refused_and_the_connection_goes_on() {
    let net = TestNet::new();
    let daemon = net.spawn_p2pd("alice", "127.0.0.1:9", &[]);
    let mut rpc = daemon.rpc();
    // 2 MiB of a JSON string, then a valid request on the same connection, sent in one go.
    let mut bytes = Vec::with_capacity(2 << 20);
    bytes.extend_from_slice(br#"{"jsonrpc":"2.0","id":1,"method":"status","params":{"pad":""#);
    bytes.resize(2 << 20, b'a');
    bytes.extend_from_slice(b"\"}}\n");
    bytes.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"status\"}\n");
    rpc.send_raw(&bytes).expect("send 2 MiB");
    let resp = rpc.read_json(DEADLINE);
    assert_eq!(error_code(&resp, Value::Null), -32600);
    let resp = rpc.read_json(DEADLINE);
    assert_eq!(
        resp["id"], 2,
        "the request after the long line is answered: {resp}"
    );
    assert_eq!(resp["result"]["name"], "alice", "{resp}");

    // A line of exactly the cap is read (and parsed: here, it is not JSON).
    let mut line = vec![b'x'; proto::rpc::MAX_LINE];
    line.push(b'\n');
    rpc.send_raw(&line).expect("send 1 MiB");
    assert_eq!(error_code(&rpc.read_json(DEADLINE), Value::Null), -32700);
    still_serves(&mut rpc, &daemon);
}

#[test]
fn deeply_nested_json_is_a_parse_error_and_the_daemon_survives() {
    let net = TestNet::new();
    let mut daemon = net.spawn_p2pd("alice", "127.0.0.1:9", &[]);
    let mut rpc = daemon.rpc();
    let mut deep = "[".repeat(10_000);
    deep.push_str(&"]".repeat(10_000));
    assert_eq!(error_for(&mut rpc, &deep, Value::Null), -32700);
    let deep_object = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"status","params":{}1{}}}"#,
        r#"{"a":"#.repeat(5_000),
        "}".repeat(5_000)
    );
    assert_eq!(error_for(&mut rpc, &deep_object, Value::Null), -32700);
    // Unterminated nesting, then the connection closes.
    rpc.send_raw("[".repeat(100_000).as_bytes()).expect("send");
    drop(rpc);
    still_serves(&mut daemon.rpc(), &daemon);
    assert!(daemon.proc.is_running());
}

#[test]
fn the_socket_is_private_to_its_owner() {
    let net = TestNet::new();
    let daemon = net.spawn_p2pd("alice", "127.0.0.1:9", &[]);
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&daemon.socket), 0o600, "socket mode");
    // p2pd made the socket's directory itself: 0700.
    assert_eq!(
        mode(daemon.socket.parent().expect("dir")),
        0o700,
        "socket directory mode"
    );
}

#[test]
fn another_local_user_is_refused_by_the_uid_check() {
    let net = TestNet::new();
    let Some(nobody) = Nobody::new(&net) else {
        return;
    };
    // Open every door the file system could close, so that only SO_PEERCRED is left: the
    // socket's directory 0755, the socket 0666.
    let run = net.unique_dir("shared-run");
    set_mode(&run, 0o755);
    let socket = run.join("p2pd.sock");
    let mut daemon = net.p2pd("alice").socket(&socket).spawn();
    set_mode(&socket, 0o666);
    let socket_arg = socket.to_str().expect("UTF-8 path");

    // A client that checks nothing gets through the file system to the daemon, which cuts it
    // off before answering anything.
    let probe = nobody.runnable(Path::new(env!("CARGO_BIN_EXE_sock-probe")));
    let mut cmd = nobody.command(&probe);
    cmd.args([
        "send",
        socket_arg,
        r#"{"jsonrpc":"2.0","id":1,"method":"status"}"#,
    ]);
    let out = run_with_timeout(cmd, DEADLINE);
    out.assert_success();
    assert!(
        out.stdout.lines().any(|l| l == "read 0 bytes"),
        "another user got an answer:\n{out}"
    );
    // And the daemon says why.
    daemon.proc.wait_stderr_line("another user", DEADLINE);

    // p2pctl run by that user does not even connect: the directory is not theirs.
    let p2pctl = nobody.runnable(&net.bin("p2pctl"));
    let mut cmd = nobody.command(&p2pctl);
    cmd.args(["--socket", socket_arg, "--json", "status"]);
    let out = run_with_timeout(cmd, DEADLINE);
    assert_eq!(out.code(), Some(3), "{out}");
    // With --json the error is the one document on stdout.
    assert!(out.stderr.is_empty(), "{out}");
    let error = out.json()["error"].clone();
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!(
                "control socket directory {} is owned by uid 0, not you (uid {NOBODY})",
                run.display()
            )),
        "{out}"
    );

    // The owner is still served.
    still_serves(&mut daemon.rpc(), &daemon);
    net.ctl(&daemon, &["status"]).assert_success();
}
