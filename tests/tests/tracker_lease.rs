//! The tracker's lease against a real trackerd: a registered peer that says nothing for a
//! whole lease is closed and its entry dropped, while one that keeps talking stays served.

use std::time::Duration;

use p2p_tests::TestNet;
use p2p_tests::raw::{Client, random_key, signed};
use proto::tracker::{LookupBy, PROTOCOL_VERSION, PeerMsg, TrackerMsg};
use tokio::time::Instant;

const LEASE_SECS: u64 = 2;

async fn registered(addr: std::net::SocketAddr, name: &str) -> (Client, proto::PeerId) {
    let key = random_key();
    let mut c = Client::connect_version(addr, &key, PROTOCOL_VERSION)
        .await
        .expect("connect to the tracker");
    match c.register(signed(&key, name, 1)).await {
        TrackerMsg::Registered { .. } => (c, key.peer_id()),
        other => panic!("{name} not registered: {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_peer_is_closed_after_its_lease_and_a_talking_one_stays() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(Some(&format!("lease-secs = {LEASE_SECS}\n")));
    let lease = Duration::from_secs(LEASE_SECS);
    // Before its Register: the tracker last hears from it after this.
    let since = Instant::now();
    let (mut silent, silent_key) = registered(tracker.addr, "silent").await;
    let (mut talker, _) = registered(tracker.addr, "talker").await;
    let talker_since = Instant::now();
    assert_eq!(u64::from(talker.lease_secs), LEASE_SECS);

    // The talker pings every 400 ms (its traffic, not a wait) until the silent one is closed.
    let closed = silent.wait_closed(Duration::from_secs(30));
    tokio::pin!(closed);
    let mut tick = tokio::time::interval(Duration::from_millis(400));
    let mut nonce = 0;
    let result = loop {
        tokio::select! {
            r = &mut closed => break r,
            _ = tick.tick() => {
                nonce += 1;
                talker.ping(nonce).await;
            }
        }
    };
    result.expect("the silent peer is closed");
    let waited = since.elapsed();
    // The tracker's clock counts whole milliseconds.
    assert!(
        waited >= lease - Duration::from_millis(50),
        "closed after {waited:?}, before its {LEASE_SECS} s lease"
    );
    // The talker goes on talking until it has been connected for two leases: still served.
    while talker_since.elapsed() < 2 * lease {
        tick.tick().await;
        nonce += 1;
        talker.ping(nonce).await;
    }
    talker
        .send(&PeerMsg::Lookup {
            req: 1,
            by: LookupBy::Key(silent_key),
        })
        .await;
    match talker.recv().await {
        TrackerMsg::Found { req: 1, entry } => assert!(entry.is_none(), "{entry:?}"),
        other => panic!("expected Found, got {other:?}"),
    }
}
