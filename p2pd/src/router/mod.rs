//! The router: one listener for every peer protocol. Each inbound connection gets TLS (the
//! ALPN names offered are those of the registered handlers), the `Hello` exchange and
//! admission, then goes to the handler registered for its ALPN as a [`PeerLink`] that carries
//! the proven key and the name the peer table holds for it. Outbound links are made by the
//! [`Dialer`], which every service shares. A new protocol is a module and one
//! [`Router::accept`] line in `daemon.rs`; services never hold each other to route links.

use std::sync::Arc;
use std::time::Duration;

use proto::api::PeerInfo;
use proto::peer::PeerFrame;
use proto::{PeerId, PeerName, SecretKey};
use svc::conn_limit::{ConnLimiter, ConnSlot};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

mod admit;
mod registry;

pub use registry::Registry;

use crate::config::Limits;
use crate::dht::DhtSource;
use crate::link::{self, LinkConn, LinkError};
use crate::node::Node;

/// An authenticated, admitted peer link, as a protocol handler receives it.
pub struct PeerLink {
    /// The framed link, past `Hello`.
    pub conn: LinkConn,
    /// The peer's key, proved in the TLS handshake.
    pub key: PeerId,
    /// The name the peer table holds for `key` (never one read off the wire).
    pub name: PeerName,
}

/// A peer protocol: the handler of the links that negotiated its ALPN name.
pub trait Protocol: Send + Sync + 'static {
    /// Takes one inbound link and runs it (on its own tracked tasks) until it ends.
    fn handle(self: Arc<Self>, link: PeerLink);
}

/// Builds the accept side: handlers by ALPN name, then [`Router::spawn`].
pub struct Router {
    node: Arc<Node>,
    handlers: Registry<Arc<dyn Protocol>>,
}

impl Router {
    /// A router with no protocols yet.
    pub fn new(node: Arc<Node>) -> Router {
        Router {
            node,
            handlers: Registry::default(),
        }
    }

    /// Hands the links that negotiate `alpn` to `handler`.
    #[must_use]
    pub fn accept<P: Protocol>(mut self, alpn: &'static [u8], handler: Arc<P>) -> Router {
        self.handlers.add(alpn, handler);
        self
    }

    /// Starts accepting on `listener` with TLS presenting `key`, under the caps of `limits`
    /// on handshakes in flight (a connection over a cap is closed at once).
    pub fn spawn(
        self,
        key: &SecretKey,
        listener: TcpListener,
        limits: Limits,
        tasks: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<(), transport::TlsError> {
        let mut server = (*transport::server_config(key)?).clone();
        server.alpn_protocols = self.handlers.alpns();
        let inner = Arc::new(Inner {
            node: self.node,
            handlers: self.handlers,
            acceptor: TlsAcceptor::from(Arc::new(server)),
            deadline: limits.handshake_timeout,
            tasks: tasks.clone(),
            cancel: cancel.clone(),
        });
        tasks.spawn(inner.accept_loop(listener, limits));
        Ok(())
    }
}

struct Inner {
    node: Arc<Node>,
    handlers: Registry<Arc<dyn Protocol>>,
    acceptor: TlsAcceptor,
    deadline: Duration,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Inner {
    async fn accept_loop(self: Arc<Self>, listener: TcpListener, limits: Limits) {
        let pending = ConnLimiter::new(limits.max_pending_links, limits.max_pending_links_per_ip);
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((tcp, addr)) => match pending.try_acquire(addr.ip()) {
                        Ok(slot) => {
                            debug!(%addr, "peer connection");
                            let router = self.clone();
                            self.tasks.spawn(async move { router.serve(tcp, slot).await });
                        }
                        Err(over) => {
                            debug!(%addr, ?over, "peer connection refused: too many handshakes in flight");
                            drop(tcp);
                        }
                    },
                    Err(e) => {
                        warn!("peer accept failed: {e}");
                        tokio::select! {
                            () = self.cancel.cancelled() => break,
                            () = tokio::time::sleep(Duration::from_millis(50)) => {}
                        }
                    }
                },
            }
        }
    }

    /// One inbound connection: handshake within the deadline (`slot`, its place under the
    /// cap on handshakes in flight, is freed when that ends), admission, then its handler.
    async fn serve(&self, tcp: TcpStream, slot: ConnSlot) {
        let me = self.node.identity.name.clone();
        let accepted = tokio::select! {
            () = self.cancel.cancelled() => return,
            r = link::accept(&self.acceptor, tcp, &me, self.deadline) => r,
        };
        drop(slot);
        let (mut conn, key, said) = match accepted {
            Ok(x) => x,
            Err(e) => return debug!("inbound peer link failed: {e}"),
        };
        let Some(handler) = self.handlers.route(link::alpn(&conn)) else {
            // TLS offers only registered names, so only a link without ALPN gets here.
            debug!(id = %key.short(), "no handler for the link's protocol; closing it");
            let _ = conn.shutdown().await;
            return;
        };
        let name = match admit::admit(&self.node, key, &said) {
            Ok(name) => name,
            Err((reason, detail)) => {
                debug!(peer = %said, id = %key.short(), "refusing a peer link: {detail}");
                let _ = conn
                    .send(&PeerFrame::Refused {
                        id: None,
                        reason,
                        detail,
                    })
                    .await;
                let _ = conn.shutdown().await;
                return;
            }
        };
        handler.clone().handle(PeerLink { conn, key, name });
    }
}

/// Makes outbound peer links, for every service.
pub struct Dialer {
    me: PeerName,
    tls: Arc<ClientConfig>,
    /// The last resort when the addresses the other sources give fail.
    dht: Option<Arc<DhtSource>>,
}

impl Dialer {
    /// A dialer presenting `key` and giving `me` in `Hello`, looking peers up in `dht` (when
    /// on) once their known addresses fail.
    pub fn new(
        key: &SecretKey,
        me: PeerName,
        dht: Option<Arc<DhtSource>>,
    ) -> Result<Arc<Dialer>, transport::TlsError> {
        Ok(Arc::new(Dialer {
            me,
            tls: transport::client_config(key, None)?,
            dht,
        }))
    }

    /// Whether a dial looks the peer up in the DHT when its known addresses fail (or there
    /// are none): a pinned peer with no address is then still worth dialling.
    pub fn looks_up(&self) -> bool {
        self.dht.is_some()
    }

    /// Links to `peer` for protocol `alpn`: TCP to each of its addresses in turn, TLS that
    /// accepts only its key, and `Hello`, whose name must be the one the peer table holds
    /// (`peer.name`), so a dialled peer never speaks under a name it chose. When no address
    /// answers (or none is known) and the DHT is on, the peer's record is looked up there
    /// and its new addresses dialled.
    pub async fn dial(&self, alpn: &'static [u8], peer: &PeerInfo) -> Result<LinkConn, LinkError> {
        self.dial_any(&[alpn], peer).await
    }

    /// As [`Dialer::dial`], offering each of `alpns` (the newest version of a protocol
    /// first): the peer picks the first it serves, which [`link::alpn`] tells.
    pub async fn dial_any(
        &self,
        alpns: &[&'static [u8]],
        peer: &PeerInfo,
    ) -> Result<LinkConn, LinkError> {
        let mut cfg = (*self.tls).clone();
        cfg.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
        let connector = TlsConnector::from(Arc::new(cfg));
        let failed = match link::dial(&connector, &self.me, peer.id, &peer.name, &peer.addrs).await
        {
            Ok(conn) => return Ok(conn),
            // The peer answered and refused, or is someone else: no other address helps.
            Err(
                e @ (LinkError::WrongKey { .. }
                | LinkError::NameMismatch { .. }
                | LinkError::Refused { .. }),
            ) => return Err(e),
            Err(e) => e,
        };
        let Some(dht) = &self.dht else {
            return Err(failed);
        };
        let Some(found) = dht.find(peer.id).await else {
            return Err(failed);
        };
        let fresh: Vec<_> = found
            .into_iter()
            .filter(|a| !peer.addrs.contains(a))
            .collect();
        if fresh.is_empty() {
            return Err(failed);
        }
        debug!(peer = %peer.name, addrs = ?fresh, "dialling addresses found in the DHT");
        link::dial(&connector, &self.me, peer.id, &peer.name, &fresh).await
    }
}
