//! Bulk protocol versions: this daemon speaks `p2p-bulk/2` (chunks verified by their chunk
//! values). A sender of the older `p2p-bulk/1`, played by a hand-made link, is answered
//! `Failed` saying to upgrade it, and nothing is recorded; a transfer to a peer whose p2pd
//! serves only the older protocol (a hand-made TLS listener offering `p2p-chat/1` and
//! `p2p-bulk/1`, as such a daemon does) fails saying that peer must upgrade.

use std::sync::Arc;

use p2p_tests::transfer::{
    BulkSender, TRANSFER_DEADLINE, id_of, list, listening_raw_peer, offer, random_id, register_raw,
    send_files, wait_state, write_pattern,
};
use p2p_tests::{DEADLINE, TestNet, chat, raw};
use proto::peer::{ALPN_BULK_V1, ALPN_CHAT};
use proto::transfer::TransferFrame;
use tokio_rustls::TlsAcceptor;

#[tokio::test]
async fn an_older_sender_is_told_to_upgrade_and_nothing_is_recorded() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let key = raw::random_key();
    let _registration = register_raw(&p.tracker, &key, "oldie").await;
    p.bob.wait_peer("oldie", true, DEADLINE);

    let mut s = BulkSender::connect_v1(p.bob.listen, &key, "oldie")
        .await
        .expect("a p2p-bulk/1 link to bob");
    let id = random_id();
    let data = b"made by an older p2pd";
    let hash = *blake3::hash(data).as_bytes();
    s.send(&offer(id, "old.txt", data.len() as u64, hash))
        .await
        .expect("send the offer");
    match s.recv(DEADLINE).await {
        Ok(Some(TransferFrame::Failed { id: got, reason })) => {
            assert_eq!(got, id);
            assert!(
                reason.contains("p2p-bulk/2") && reason.contains("upgrade"),
                "{reason}"
            );
        }
        other => panic!("expected Failed from bob, got {other:?}"),
    }
    s.wait_closed(DEADLINE)
        .await
        .expect("bob closes the old link");
    let ids = id.to_string();
    assert!(
        list(&p.bob).iter().all(|t| t["id"] != ids.as_str()),
        "bob recorded the old offer"
    );
    assert!(p.bob.proc.is_running());
}

// Olga's listener runs on a worker while the test thread waits on alice's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_an_older_receiver_fails_saying_to_upgrade_it() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    // "olga" runs an older p2pd: her TLS offers the chat and the old bulk protocol only.
    let (olga, listener, _registration) = listening_raw_peer(&p.tracker, &p.alice, "olga").await;
    let mut config = (*transport::server_config(&olga).expect("olga's TLS")).clone();
    config.alpn_protocols = vec![ALPN_CHAT.to_vec(), ALPN_BULK_V1.to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (tx, mut handshakes) = tokio::sync::mpsc::unbounded_channel();
    let serve = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let outcome = acceptor.accept(tcp).await.map(|_| ());
            if tx.send(outcome.map_err(|e| e.to_string())).is_err() {
                return;
            }
        }
    });

    let file = net.unique_dir("src").join("new.bin");
    write_pattern(&file, 3000, 51);
    let id = id_of(&send_files(&p.alice, "olga", &file));
    let end = wait_state(&p.alice, &id, "failed", TRANSFER_DEADLINE);
    assert_eq!(
        end["error"],
        "p2pd on olga is too old for this transfer: it speaks p2p-bulk/1, this daemon p2p-bulk/2; upgrade it",
        "{end:#}"
    );
    // Olga's side saw alice ask for a protocol it does not serve.
    let seen = tokio::time::timeout(DEADLINE, handshakes.recv())
        .await
        .expect("alice dialled olga")
        .expect("a handshake");
    assert!(seen.is_err(), "olga's handshake: {seen:?}");
    serve.abort();
}
