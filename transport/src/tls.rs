//! rustls configurations for mutual Ed25519 authentication with raw public keys.
//!
//! No certificates and no CAs: each side sends its SubjectPublicKeyInfo, the handshake
//! signature is checked against it, and the caller decides which keys it accepts.

use std::sync::Arc;

use proto::{PeerId, SecretKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key,
};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer,
    UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, CommonState, DigitallySignedStruct, DistinguishedName, SignatureScheme,
};

/// Errors building a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the key or the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn certified_key(
    key: &SecretKey,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_pkcs8_der()));
    let signing = provider.key_provider.load_private_key(der)?;
    let spki = CertificateDer::from(key.peer_id().to_spki_der());
    Ok(Arc::new(CertifiedKey::new(vec![spki], signing)))
}

/// Checks that the presented raw key is Ed25519 and, if `expected` is set, that it is that key.
#[derive(Debug)]
struct KeyVerifier {
    expected: Option<PeerId>,
    algs: WebPkiSupportedAlgorithms,
}

impl KeyVerifier {
    fn new(expected: Option<PeerId>, provider: &CryptoProvider) -> Self {
        Self {
            expected,
            algs: provider.signature_verification_algorithms,
        }
    }

    fn check_key(&self, der: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let id = PeerId::from_spki_der(der.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        match self.expected {
            Some(want) if want != id => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            _ => Ok(()),
        }
    }

    fn verify13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = SubjectPublicKeyInfoDer::from(cert.as_ref());
        verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algs)
    }

    fn schemes() -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ServerCertVerifier for KeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            ));
        }
        self.check_key(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Self::schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for KeyVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            ));
        }
        self.check_key(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Self::schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// A server configuration that presents `key` and requires every client to present an
/// Ed25519 raw public key (any key: the caller reads it with [`peer_id_of`] and decides).
pub fn server_config(key: &SecretKey) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    Ok(Arc::new(server_config_with(key, provider(), false)?))
}

/// [`server_config`] for links made often that carry little (the tracker's): the server's
/// order of cipher suites wins, and it puts `TLS13_AES_128_GCM_SHA256` first, whose key
/// schedule hashes with SHA-256 (SHA-NI) instead of the SHA-384 of the default
/// `TLS13_AES_256_GCM_SHA384`: a cheaper handshake for the server.
///
/// It also sends one stateless session ticket (encrypted under a key of this process's,
/// rotated by aws-lc-rs' `Ticketer`) after each handshake, so a client that keeps its
/// `ClientConfig` resumes when it reconnects: no certificate signature from the server and
/// no client key check, and the resumed session still names the client's key
/// ([`peer_id_of`]): it comes from the ticket, which only this process can decrypt, and the
/// PSK binder proves the client holds that session's secret. For long-lived links only: a
/// client that closes before reading the ticket makes the kernel reset the connection.
pub fn lean_server_config(key: &SecretKey) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let mut cfg = server_config_with(key, Arc::new(provider), true)?;
    cfg.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
    cfg.send_tls13_tickets = 1;
    Ok(Arc::new(cfg))
}

fn server_config_with(
    key: &SecretKey,
    provider: Arc<CryptoProvider>,
    ignore_client_order: bool,
) -> Result<rustls::ServerConfig, TlsError> {
    let ck = certified_key(key, &provider)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(KeyVerifier::new(None, &provider)))
        .with_cert_resolver(Arc::new(
            rustls::server::AlwaysResolvesServerRawPublicKeys::new(ck),
        ));
    // No session tickets unless the caller wants resumption: unread tickets make the kernel
    // reset a connection that a client closes early.
    cfg.send_tls13_tickets = 0;
    cfg.ignore_client_order = ignore_client_order;
    Ok(cfg)
}

/// A client configuration that presents `key` and accepts only the server key `expected`,
/// or any Ed25519 key when `expected` is `None` (trust on first use: the caller pins the key
/// it reads with [`peer_id_of`]).
pub fn client_config(
    key: &SecretKey,
    expected: Option<PeerId>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = provider();
    let ck = certified_key(key, &provider)?;
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(KeyVerifier::new(expected, &provider)))
        .with_client_cert_resolver(Arc::new(
            rustls::client::AlwaysResolvesClientRawPublicKeys::new(ck),
        ));
    Ok(Arc::new(cfg))
}

/// The server name sent in the ClientHello. Identity comes from keys, so it is a constant.
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("p2p.invalid")
        .unwrap_or_else(|_| ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
}

/// The key the other side presented in a completed handshake.
pub fn peer_id_of(state: &CommonState) -> Option<PeerId> {
    let certs = state.peer_certificates()?;
    PeerId::from_spki_der(certs.first()?.as_ref()).ok()
}
