use std::time::Duration;

use proto::SecretKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use super::*;
use crate::tls::server_name;
use crate::{FramedConn, client_config, lean_server_config, peer_id_of, server_config};

const LIMIT: Duration = Duration::from_secs(30);

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// A lean server and a tokio-rustls client over loopback TCP; the client pins `pin`.
async fn pair(
    pin: Option<proto::PeerId>,
) -> (
    io::Result<LeanServerStream<TcpStream>>,
    io::Result<tokio_rustls::client::TlsStream<TcpStream>>,
) {
    pair_with(server_config(&key(1)).unwrap(), pin).await
}

/// [`pair`] with the server's configuration `config`.
async fn pair_with(
    config: Arc<ServerConfig>,
    pin: Option<proto::PeerId>,
) -> (
    io::Result<LeanServerStream<TcpStream>>,
    io::Result<tokio_rustls::client::TlsStream<TcpStream>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = async {
        let (tcp, _) = listener.accept().await.unwrap();
        LeanServerStream::accept(config, tcp).await
    };
    let client = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        TlsConnector::from(client_config(&key(2), pin).unwrap())
            .connect(server_name(), tcp)
            .await
    };
    tokio::time::timeout(LIMIT, async { tokio::join!(server, client) })
        .await
        .expect("handshake within the limit")
}

#[tokio::test]
async fn frames_cross_both_ways_and_an_idle_stream_holds_no_buffer() {
    let (server, client) = pair(Some(key(1).peer_id())).await;
    let (server, client) = (server.unwrap(), client.unwrap());
    assert_eq!(peer_id_of(server.state()), Some(key(2).peer_id()));
    assert_eq!(peer_id_of(client.get_ref().1), Some(key(1).peer_id()));
    let mut s = FramedConn::new(server, 4 << 20, 4 << 20);
    let mut c = FramedConn::new(client, 4 << 20, 4 << 20);
    let big: Vec<u8> = (0..1_500_000u32).map(|i| i as u8).collect();
    let work = async {
        c.send(&String::from("hello")).await.unwrap();
        assert_eq!(s.read::<String>().await.unwrap().as_deref(), Some("hello"));
        // Larger than a write chunk and than a TLS record, both ways at once.
        let (sent, got) = tokio::join!(s.send(&big), c.read::<Vec<u8>>());
        sent.unwrap();
        assert_eq!(got.unwrap().as_ref(), Some(&big));
        let (sent, got) = tokio::join!(c.send(&big), s.read::<Vec<u8>>());
        sent.unwrap();
        assert_eq!(got.unwrap().as_ref(), Some(&big));
        let lean = s.get_ref();
        assert_eq!(
            (
                lean.incoming.capacity(),
                lean.plain.capacity(),
                lean.outgoing.capacity()
            ),
            (0, 0, 0),
            "an idle stream keeps no buffer"
        );
        // A clean close by the client is the end of the stream between frames.
        c.shutdown().await.unwrap();
        assert!(s.read::<String>().await.unwrap().is_none());
        s.send(&String::from("bye")).await.unwrap();
        assert_eq!(c.read::<String>().await.unwrap().as_deref(), Some("bye"));
    };
    tokio::time::timeout(LIMIT, work).await.expect("in time");
}

#[tokio::test]
async fn a_client_pinning_another_key_fails_the_handshake_on_both_sides() {
    let (server, client) = pair(Some(key(3).peer_id())).await;
    assert!(client.is_err());
    assert!(server.is_err());
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let accepted = tokio::time::timeout(
        LIMIT,
        LeanServerStream::accept(server_config(&key(1)).unwrap(), server),
    )
    .await
    .expect("in time");
    assert_eq!(accepted.unwrap_err().kind(), io::ErrorKind::InvalidData);
    // The server's alert, then its close.
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest).await;
    assert_eq!(rest.first(), Some(&21), "a TLS alert record");
}

#[tokio::test]
async fn the_lean_configuration_settles_on_aes_128_with_sha_256_whatever_the_client_prefers() {
    let (server, client) = pair_with(lean_server_config(&key(1)).unwrap(), None).await;
    let want = Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let suite = |s: &CommonState| s.negotiated_cipher_suite().map(|c| c.suite());
    assert_eq!(suite(server.unwrap().state()), want);
    assert_eq!(suite(client.unwrap().get_ref().1), want);
    // The client's own order, which the default server follows, puts AES-256 first.
    let (server, _) = pair(None).await;
    assert_eq!(
        suite(server.unwrap().state()),
        Some(rustls::CipherSuite::TLS13_AES_256_GCM_SHA384)
    );
}
