//! Control calls run concurrently: a call held up (here a write waiting for the database,
//! whose write lock another process holds) does not hold up the other calls of its
//! connection, which are answered first, each response carrying its request's id.

use p2p_tests::{DEADLINE, chat};
use serde_json::{Value, json};

/// The next response (a line with an `id`) on `rpc`, skipping notifications.
#[track_caller]
fn next_response(rpc: &mut p2p_tests::RpcClient) -> Value {
    loop {
        let line = rpc.read_json(DEADLINE);
        if line.get("id").is_some() {
            return line;
        }
    }
}

#[test]
fn a_call_waiting_on_the_database_does_not_hold_up_the_connection() {
    let net = p2p_tests::TestNet::new();
    let p = chat::pair(&net);
    let mut rpc = p.alice.rpc();
    rpc.subscribe();

    // Another process takes the database's write lock: alice's writes wait for it.
    let db = rusqlite::Connection::open(p.alice.state_dir.join("p2pd.db")).expect("open db");
    db.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");

    let trust = json!({"jsonrpc": "2.0", "id": 10, "method": "trust", "params": {"peer": "bob"}});
    let status = json!({"jsonrpc": "2.0", "id": 11, "method": "status", "params": {}});
    rpc.send_line(&trust.to_string()).expect("send trust");
    rpc.send_line(&status.to_string()).expect("send status");

    // The trust call cannot finish while the lock is held, so status is answered first.
    let first = next_response(&mut rpc);
    assert_eq!(first["id"], 11, "status answered first: {first}");
    assert_eq!(first["result"]["name"], "alice", "{first}");

    db.execute_batch("COMMIT").expect("release the write lock");
    let second = next_response(&mut rpc);
    assert_eq!(second["id"], 10, "{second}");
    assert_eq!(
        second["result"]["trusted"], true,
        "trust stored once the lock is free: {second}"
    );
    let peers = p.alice.rpc().call("peers", json!({}));
    let bob = peers
        .as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == "bob"))
        .unwrap_or_else(|| panic!("bob in peers: {peers}"));
    assert_eq!(bob["trusted"], true, "{bob}");
}
