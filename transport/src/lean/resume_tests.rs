//! Session resumption on the lean (tracker) configuration: who a resumed session names.

use std::time::Duration;

use proto::{PeerId, SecretKey};
use rustls::HandshakeKind;
use rustls::client::{ClientSessionMemoryCache, Resumption};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use super::*;
use crate::tls::server_name;
use crate::{client_config, lean_server_config, peer_id_of};

const LIMIT: Duration = Duration::from_secs(30);

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// What one connection came to on each side.
#[derive(Debug, PartialEq)]
struct Seen {
    /// The client's key as the server reads it, and the kind of handshake it saw.
    server: (Option<PeerId>, Option<HandshakeKind>),
    /// The server's key as the client reads it, and the client's kind of handshake.
    client: (Option<PeerId>, Option<HandshakeKind>),
}

/// One connection to a lean server with `server`, from a client with `client`; the server
/// writes a byte that the client reads (and with it the ticket that came first), then both
/// close.
async fn connect(server: &Arc<ServerConfig>, client: &Arc<rustls::ClientConfig>) -> Seen {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = async {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut s = LeanServerStream::accept(server.clone(), tcp).await.unwrap();
        let seen = (peer_id_of(s.state()), s.state().handshake_kind());
        s.write_all(b"x").await.unwrap();
        s.flush().await.unwrap();
        // Until the client closes: it has read the byte, and the ticket before it.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        seen
    };
    let dial = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut c = TlsConnector::from(client.clone())
            .connect(server_name(), tcp)
            .await
            .unwrap();
        let mut byte = [0u8; 1];
        c.read_exact(&mut byte).await.unwrap();
        let seen = (peer_id_of(c.get_ref().1), c.get_ref().1.handshake_kind());
        c.shutdown().await.unwrap();
        seen
    };
    let (server, client) = tokio::time::timeout(LIMIT, async { tokio::join!(serve, dial) })
        .await
        .expect("connection within the limit");
    Seen { server, client }
}

fn seen(client: &SecretKey, server: &SecretKey, kind: HandshakeKind) -> Seen {
    Seen {
        server: (Some(client.peer_id()), Some(kind)),
        client: (Some(server.peer_id()), Some(kind)),
    }
}

#[tokio::test]
async fn a_client_that_keeps_its_config_resumes_and_is_still_named_by_its_key() {
    let server = lean_server_config(&key(1)).unwrap();
    let client = client_config(&key(2), None).unwrap();
    let full = seen(&key(2), &key(1), HandshakeKind::Full);
    let resumed = seen(&key(2), &key(1), HandshakeKind::Resumed);
    assert_eq!(connect(&server, &client).await, full);
    assert_eq!(connect(&server, &client).await, resumed);
    assert_eq!(connect(&server, &client).await, resumed);
    // A new configuration (a restarted or rekeyed client) starts again.
    let fresh = client_config(&key(2), None).unwrap();
    assert_eq!(connect(&server, &fresh).await, full);
}

#[tokio::test]
async fn a_session_made_by_one_key_is_never_resumed_as_another() {
    let server = lean_server_config(&key(1)).unwrap();
    // Two identities sharing one session store: rustls offers a stored session only to the
    // configuration whose client credentials made it, so the second does a full handshake
    // and is named by its own key.
    let store = Arc::new(ClientSessionMemoryCache::new(16));
    let with_store = |k: &SecretKey| {
        let mut cfg = Arc::unwrap_or_clone(client_config(k, None).unwrap());
        cfg.resumption = Resumption::store(store.clone());
        Arc::new(cfg)
    };
    let (alice, mallory) = (with_store(&key(2)), with_store(&key(3)));
    assert_eq!(
        connect(&server, &alice).await,
        seen(&key(2), &key(1), HandshakeKind::Full)
    );
    assert_eq!(
        connect(&server, &alice).await,
        seen(&key(2), &key(1), HandshakeKind::Resumed)
    );
    // Alice's latest ticket is in the store; mallory's handshake does not use it.
    assert_eq!(
        connect(&server, &mallory).await,
        seen(&key(3), &key(1), HandshakeKind::Full)
    );
}

#[tokio::test]
async fn a_ticket_from_another_server_process_is_not_accepted() {
    let client = client_config(&key(2), None).unwrap();
    let before = lean_server_config(&key(1)).unwrap();
    connect(&before, &client).await;
    // Same key, new ticket key: the tracker restarted. A full handshake, same identities.
    let after = lean_server_config(&key(1)).unwrap();
    assert_eq!(
        connect(&after, &client).await,
        seen(&key(2), &key(1), HandshakeKind::Full)
    );
}
