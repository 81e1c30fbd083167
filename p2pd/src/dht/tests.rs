//! Publishing and looking up items in a local testnet (no public node is ever reached).

use std::net::Ipv4Addr;

use mainline::Testnet;

use super::*;

/// Waits until `dht`'s query for `peer`'s record ends: a lookup returns at its first valid
/// answer (and a short grace), and mainline serves a new lookup of the same target from
/// the query still running, which predates a put made since.
async fn settle(dht: &AsyncDht, peer: PeerId) {
    let _ = dht
        .get_mutable_most_recent(peer.as_bytes(), Some(item::SALT))
        .await;
}

async fn testnet(n: usize) -> Testnet {
    tokio::task::spawn_blocking(move || Testnet::builder(n).build().expect("testnet"))
        .await
        .expect("testnet thread")
}

fn client_of(net: &Testnet) -> AsyncDht {
    Dht::builder()
        .bootstrap(&net.bootstrap)
        .bind_address(Ipv4Addr::LOCALHOST)
        .request_timeout(Duration::from_millis(500))
        .build()
        .expect("client")
        .as_async()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_value_is_found_and_the_most_recent_wins() {
    let net = testnet(10).await;
    let (alice, bob) = (client_of(&net), client_of(&net));
    let key = SecretKey::from_seed([7; 32]);
    let peer = key.peer_id();
    assert!(alice.bootstrapped().await && bob.bootstrapped().await);
    let any = |v: &[u8], _: i64| Ok::<_, item::ItemError>(v.to_vec());
    assert_eq!(
        lookup(&bob, peer, any).await,
        None,
        "nothing is published yet"
    );

    let first = item::make(&key, b"first", 1).unwrap();
    alice.put_mutable(first, None).await.expect("publish");
    assert_eq!(
        lookup(&bob, peer, any).await.as_deref(),
        Some(&b"first"[..])
    );

    // An update names the seq it replaces (CAS).
    settle(&bob, peer).await;
    let second = item::make(&key, b"second", 2).unwrap();
    alice.put_mutable(second, Some(1)).await.expect("update");
    assert_eq!(
        lookup(&bob, peer, any).await.as_deref(),
        Some(&b"second"[..])
    );

    // What the check refuses is not taken.
    let refuse = |_: &[u8], _: i64| Err::<Vec<u8>, _>(item::ItemError::WrongSalt);
    assert_eq!(lookup(&bob, peer, refuse).await, None);
    // Another key's records are elsewhere.
    let other = SecretKey::from_seed([8; 32]).peer_id();
    assert_eq!(lookup(&bob, other, any).await, None);
}
