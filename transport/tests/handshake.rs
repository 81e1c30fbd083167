//! Mutual raw-public-key handshakes over an in-memory duplex.

use proto::{PeerId, SecretKey};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use transport::{FramedConn, client_config, peer_id_of, server_config};

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

async fn handshake(
    server: &SecretKey,
    client: &SecretKey,
    pin: Option<PeerId>,
) -> Result<(PeerId, PeerId), String> {
    let (a, b) = tokio::io::duplex(16 * 1024);
    let acceptor = TlsAcceptor::from(server_config(server).unwrap());
    let connector = TlsConnector::from(client_config(client, pin).unwrap());
    let srv = tokio::spawn(async move {
        let tls = acceptor.accept(a).await.map_err(|e| e.to_string())?;
        let seen = peer_id_of(tls.get_ref().1).ok_or("no client key")?;
        let mut conn = FramedConn::new(tls, 1024, 1024);
        conn.send(&String::from("hello"))
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(seen)
    });
    let cli = async move {
        let tls = connector
            .connect(transport::tls::server_name(), b)
            .await
            .map_err(|e| e.to_string())?;
        let seen = peer_id_of(tls.get_ref().1).ok_or("no server key")?;
        let mut conn = FramedConn::new(tls, 1024, 1024);
        let msg: Option<String> = conn.read().await.map_err(|e| e.to_string())?;
        assert_eq!(msg.as_deref(), Some("hello"));
        Ok::<_, String>(seen)
    };
    let client_saw = cli.await;
    let server_saw = srv.await.map_err(|e| e.to_string())?;
    Ok((server_saw?, client_saw?))
}

#[tokio::test]
async fn both_sides_learn_each_others_key() {
    let (s, c) = (key(1), key(2));
    let (server_saw, client_saw) = handshake(&s, &c, Some(s.peer_id())).await.unwrap();
    assert_eq!(server_saw, c.peer_id());
    assert_eq!(client_saw, s.peer_id());
}

#[tokio::test]
async fn unpinned_client_accepts_any_server_key() {
    let (s, c) = (key(3), key(4));
    let (_, client_saw) = handshake(&s, &c, None).await.unwrap();
    assert_eq!(client_saw, s.peer_id());
}

#[tokio::test]
async fn wrong_pin_fails_the_handshake() {
    let (s, c) = (key(5), key(6));
    let err = handshake(&s, &c, Some(key(7).peer_id())).await.unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("UnknownCA"),
        "{err}"
    );
}
