//! The link to one tracker: connect, register, subscribe, keep the lease, and reconnect with
//! jittered backoff whenever the link is lost. Each configured tracker has its own link
//! (its own task, backoff and pin), reporting as its own source ([`TrackerIdx`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::api::TrackerLinkState;
use proto::tracker::{
    ADDR_RECORD_VERSION, LookupBy, MAX_PAGE, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, MAX_WATCH_KEYS,
    MAX_WATCHED, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, PeerMsg, Record, Refusal, SignedHandover,
    TrackerMsg, WATCH_VERSION,
};
use proto::{PeerId, SecretKey};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use transport::{ConnError, FramedConn, peer_id_of};

use crate::backoff::{Backoff, random_unit};
use crate::lookup::Ask;
use crate::node::Node;
use crate::peers::{Source, TrackerIdx};
use crate::tracker_pin::TrackerPins;

/// Time allowed to connect, handshake and get the tracker's `Hello`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest and longest waits between attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Wait after a refusal, which a retry alone will not fix.
const REFUSED_RETRY: Duration = Duration::from_secs(30);
/// Request ids: the full list with every change, the first page (version 3), and the
/// answers to watches and lookups (version 3).
const SUBSCRIBE_REQ: u32 = 1;
const SIZE_REQ: u32 = 2;
const WATCH_REQ: u32 = 3;
const LOOKUP_REQ: u32 = 4;

/// What the link needs.
pub struct TrackerLink {
    /// Shared state.
    pub node: Arc<Node>,
    /// Which tracker this is: its place in the configured list.
    pub idx: TrackerIdx,
    /// The pinned tracker keys, by address.
    pub pins: Arc<TrackerPins>,
    /// Our key, for TLS and signing.
    pub key: SecretKey,
    /// Tracker address, HOST:PORT.
    pub addr: String,
    /// Key given in the configuration (`HOST:PORT=ID`, `--tracker-key`), if any.
    pub configured_key: Option<PeerId>,
    /// Where the pin (and a pending handover statement) lives.
    pub state_dir: PathBuf,
    /// The old key's statement handing our name to `key`, until the tracker accepts it: sent
    /// with each registration, then removed from the state directory.
    pub pending: Option<SignedHandover>,
    /// Version 3: take every change while the tracker lists at most this many peers (at most
    /// [`MAX_PAGE`]); beyond it, watch the contacts only and look names up.
    pub subscribe_max: u16,
}

/// How a session hears of other peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listen {
    /// Every change (`Subscribe`): versions 1 and 2, and a small network in version 3.
    Everything,
    /// Version 3, before the first page has said how large the network is.
    Sizing,
    /// Version 3, a large network: watched keys only, names looked up when asked.
    Contacts,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error(
        "tracker key {got} does not match the expected key {want}; if the tracker key changed on purpose, delete this tracker's line in {pin} or give the new key as HOST:PORT=KEY"
    )]
    KeyChanged {
        got: PeerId,
        want: PeerId,
        pin: String,
    },
    #[error("cannot read or write the tracker pin: {0}")]
    Pin(std::io::Error),
    #[error("tracker protocol error: {0}")]
    Protocol(String),
    #[error("registration refused: {detail}")]
    Refused { reason: Refusal, detail: String },
    #[error("tracker silent for {0:?}")]
    Silent(Duration),
    #[error("tracker closed the connection")]
    Closed,
    #[error(transparent)]
    Conn(#[from] ConnError),
}

impl TrackerLink {
    /// Runs until cancelled, reconnecting as needed.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        let mut seq: u64 = 0;
        let mut pending = self.pending.take();
        // Our highest version first; a tracker that refuses it (one from before address
        // records) is spoken to in version 1 from then on.
        let mut version = PROTOCOL_VERSION;
        // One TLS configuration for every reconnect: its session store keeps the tracker's
        // ticket, so a reconnect resumes the session instead of a full handshake.
        let mut tls = None;
        loop {
            let mut registered = false;
            let result = tokio::select! {
                () = cancel.cancelled() => return,
                r = self.session(version, &mut tls, &mut seq, &mut registered, &mut pending, &cancel) => r,
            };
            self.node.tracker_lost(self.idx);
            let delay = match result {
                Ok(()) => return,
                Err(SessionError::Refused {
                    reason: Refusal::BadVersion,
                    ..
                }) if !registered && version > MIN_PROTOCOL_VERSION => {
                    info!(tracker = %self.addr, "the tracker speaks version {MIN_PROTOCOL_VERSION} only: no address records through it");
                    version = MIN_PROTOCOL_VERSION;
                    BACKOFF_MIN
                }
                Err(SessionError::Refused { reason, detail }) => {
                    warn!(target: svc::logging::ACTIVITY, op = "register", tracker = %self.addr, outcome = "refused", reason = ?reason, "{detail}");
                    self.node
                        .set_tracker(self.idx, TrackerLinkState::Refused, None, Some(detail));
                    REFUSED_RETRY
                }
                Err(e) => {
                    if registered {
                        backoff.reset();
                    }
                    warn!(tracker = %self.addr, "tracker link: {e}");
                    self.node.set_tracker(
                        self.idx,
                        TrackerLinkState::Connecting,
                        None,
                        Some(e.to_string()),
                    );
                    backoff.next_delay(random_unit())
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn session(
        &self,
        version: u16,
        tls: &mut Option<Arc<ClientConfig>>,
        seq: &mut u64,
        registered: &mut bool,
        pending: &mut Option<SignedHandover>,
        cancel: &CancellationToken,
    ) -> Result<(), SessionError> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let (mut conn, tracker_key, lease, version) =
            timeout(CONNECT_TIMEOUT, self.connect(version, tls))
                .await
                .map_err(|_| SessionError::Timeout(CONNECT_TIMEOUT))??;
        // Version 2 carries our address record: the registration takes its seq.
        let carries_record = version >= ADDR_RECORD_VERSION;
        let own = carries_record.then(|| self.node.fresh_addr_record());
        *seq = match &own {
            Some(r) => r.record.seq,
            None => self.node.next_seq(),
        };
        let me = &self.node.identity;
        let record = Record {
            name: me.name.clone(),
            key: me.id,
            addrs: vec![me.listen],
            seq: *seq,
        };
        let record = record.sign(&self.key);
        let msg = match pending.clone() {
            Some(statement) => PeerMsg::RegisterHandover { record, statement },
            None => PeerMsg::Register(record),
        };
        conn.send(&msg).await?;
        match tokio::time::timeout_at(deadline, conn.read::<TrackerMsg>())
            .await
            .map_err(|_| SessionError::Timeout(CONNECT_TIMEOUT))??
        {
            Some(TrackerMsg::Registered { entry }) => {
                info!(target: svc::logging::ACTIVITY, op = "register", tracker = %self.addr, name = %me.name, outcome = "ok", addrs = ?entry.addrs(), "registered");
                if let Some(st) = pending.take() {
                    self.handover_accepted(&st);
                }
            }
            Some(TrackerMsg::Refused { reason, detail }) => {
                return Err(SessionError::Refused { reason, detail });
            }
            Some(other) => {
                return Err(SessionError::Protocol(format!(
                    "expected Registered, got {other:?}"
                )));
            }
            None => return Err(SessionError::Closed),
        }
        *registered = true;
        self.node.set_tracker(
            self.idx,
            TrackerLinkState::Registered,
            Some(tracker_key),
            None,
        );
        let mut renewed = self.node.watch_addr_record();
        renewed.mark_unchanged();
        if let Some(own) = own {
            conn.send(&PeerMsg::AddrRecord(own)).await?;
        }
        // Version 3: one page says whether the network is small enough to take every change.
        let mut listen = if version >= WATCH_VERSION && self.subscribe_max == 0 {
            self.watch_contacts(&mut conn).await?;
            Listen::Contacts
        } else if version >= WATCH_VERSION {
            let limit = self.subscribe_max.min(MAX_PAGE);
            conn.send(&PeerMsg::ListPage {
                req: SIZE_REQ,
                after: None,
                limit,
            })
            .await?;
            Listen::Sizing
        } else {
            conn.send(&PeerMsg::Subscribe { req: SUBSCRIBE_REQ })
                .await?;
            Listen::Everything
        };
        let mut asks = self.node.lookups.asks();
        let mut _watching = (listen == Listen::Contacts).then(|| self.node.lookups.watching());

        let ping_every = lease / 3;
        let mut next_ping = Instant::now() + ping_every;
        let mut silent_until = Instant::now() + lease;
        let mut nonce = 0u64;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = sleep_until(next_ping) => {
                    nonce += 1;
                    conn.send(&PeerMsg::Ping { nonce }).await?;
                    next_ping = Instant::now() + ping_every;
                }
                () = sleep_until(silent_until) => return Err(SessionError::Silent(lease)),
                Ok(()) = renewed.changed(), if carries_record => {
                    let own = renewed.borrow_and_update().clone();
                    conn.send(&PeerMsg::AddrRecord(own)).await?;
                }
                ask = asks.recv(), if listen == Listen::Contacts => match ask {
                    Ok(Ask::Name(name)) => {
                        let by = LookupBy::Name(name);
                        conn.send(&PeerMsg::Lookup { req: LOOKUP_REQ, by }).await?;
                    }
                    Ok(Ask::Watch(key)) => {
                        let keys = vec![key.key_bytes()];
                        conn.send(&PeerMsg::Watch { req: WATCH_REQ, keys }).await?;
                    }
                    Err(_) => {}
                },
                msg = conn.read::<TrackerMsg>() => {
                    let Some(msg) = msg? else { return Err(SessionError::Closed) };
                    silent_until = Instant::now() + lease;
                    let before = listen;
                    self.on_message(msg, &mut conn, &mut listen).await?;
                    if before != listen && listen == Listen::Contacts {
                        _watching = Some(self.node.lookups.watching());
                    }
                    for name in self.node.take_chain_asks() {
                        conn.send(&PeerMsg::GetHandovers { name }).await?;
                    }
                }
            }
        }
    }

    async fn on_message<S>(
        &self,
        msg: TrackerMsg,
        conn: &mut FramedConn<S>,
        listen: &mut Listen,
    ) -> Result<(), SessionError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        match msg {
            // The full list replaces what this tracker showed; a watch's answer adds to it.
            TrackerMsg::Peers {
                req: SUBSCRIBE_REQ,
                peers,
            } => self.node.tracker_snapshot(self.idx, &peers).await,
            TrackerMsg::Peers { peers, .. } => {
                for entry in &peers {
                    self.node.tracker_entry(self.idx, entry).await
                }
            }
            TrackerMsg::Joined(entry) | TrackerMsg::Updated(entry) => {
                self.node.tracker_entry(self.idx, &entry).await
            }
            TrackerMsg::Left { key } => self.node.tracker_left(self.idx, key),
            // A looked-up peer is live now, and watched from then on.
            TrackerMsg::Found { entry, .. } => {
                if let Some(entry) = entry {
                    self.node.tracker_entry(self.idx, &entry).await;
                    let keys = vec![entry.signed.record.key.key_bytes()];
                    conn.send(&PeerMsg::Watch {
                        req: WATCH_REQ,
                        keys,
                    })
                    .await?;
                }
                self.node.lookups.answered();
            }
            TrackerMsg::Page {
                req: SIZE_REQ,
                next,
                ..
            } if *listen == Listen::Sizing => {
                *listen = if next.is_none() {
                    conn.send(&PeerMsg::Subscribe { req: SUBSCRIBE_REQ })
                        .await?;
                    Listen::Everything
                } else {
                    self.watch_contacts(conn).await?;
                    Listen::Contacts
                };
            }
            TrackerMsg::Page { peers, .. } => {
                for entry in &peers {
                    self.node.tracker_entry(self.idx, entry).await
                }
            }
            TrackerMsg::Handovers { name, chain } => self.node.handovers(&name, &chain).await,
            TrackerMsg::Ping { nonce } => conn.send(&PeerMsg::Pong { nonce }).await?,
            TrackerMsg::Pong { .. } => {}
            TrackerMsg::AddrRecord { record, observed } => {
                self.node
                    .heard(Source::Tracker(self.idx), &record, Some(observed), None)
            }
            TrackerMsg::Refused { reason, detail } => {
                warn!(?reason, "tracker refused a request: {detail}")
            }
            TrackerMsg::Hello { .. } | TrackerMsg::Registered { .. } => {
                return Err(SessionError::Protocol(
                    "unexpected Hello or Registered".into(),
                ));
            }
        }
        Ok(())
    }

    /// Watches the contacts (pinned peers, open links), at most [`MAX_WATCHED`] of them.
    async fn watch_contacts<S>(&self, conn: &mut FramedConn<S>) -> Result<(), SessionError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut contacts = self.node.contacts();
        contacts.truncate(MAX_WATCHED);
        info!(tracker = %self.addr, contacts = contacts.len(), "the tracker lists more than {} peers: watching the contacts only", self.subscribe_max.min(MAX_PAGE));
        for keys in contacts.chunks(MAX_WATCH_KEYS) {
            let keys = keys.iter().map(PeerId::key_bytes).collect();
            conn.send(&PeerMsg::Watch {
                req: WATCH_REQ,
                keys,
            })
            .await?;
        }
        Ok(())
    }

    /// The tracker accepted our name's handover to this key: the statement is no longer
    /// needed.
    fn handover_accepted(&self, st: &SignedHandover) {
        info!(target: svc::logging::ACTIVITY, op = "rekey", tracker = %self.addr, name = %st.handover.name, old = %st.handover.old_key.short(), new = %st.handover.new_key.short(), outcome = "accepted", "the tracker moved the name to the new key");
        if let Err(e) = crate::rekey::clear_pending(&self.state_dir) {
            warn!("cannot remove the accepted handover statement: {e}");
        }
    }

    /// TCP, TLS with the pinned (or configured) key, and the `Hello` exchange offering
    /// `version`; returns the version the tracker chose. `tls` is made on first use and kept
    /// for the reconnects (session resumption).
    async fn connect(
        &self,
        version: u16,
        tls: &mut Option<Arc<ClientConfig>>,
    ) -> Result<
        (
            FramedConn<tokio_rustls::client::TlsStream<TcpStream>>,
            PeerId,
            Duration,
            u16,
        ),
        SessionError,
    > {
        let addr = tokio::net::lookup_host(&self.addr)
            .await
            .map_err(|e| SessionError::Resolve(self.addr.clone(), e.to_string()))?
            .next()
            .ok_or_else(|| SessionError::Resolve(self.addr.clone(), "no addresses".into()))?;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| SessionError::Connect(self.addr.clone(), e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let pinned = self.pins.load(&self.addr).map_err(SessionError::Pin)?;
        let expected = self.configured_key.or(pinned);
        // The handshake checks the tracker's signature with whatever key it shows; the key is
        // then compared with the pin before a single frame is sent, so the error can name both.
        let config = match tls {
            Some(config) => config.clone(),
            None => tls
                .insert(
                    transport::client_config(&self.key, None)
                        .map_err(|e| SessionError::Tls(e.to_string()))?,
                )
                .clone(),
        };
        let tls = TlsConnector::from(config)
            .connect(transport::tls::server_name(), tcp)
            .await
            .map_err(|e| SessionError::Tls(e.to_string()))?;
        let tracker_key = peer_id_of(tls.get_ref().1)
            .ok_or_else(|| SessionError::Tls("tracker presented no key".into()))?;
        if let Some(want) = expected
            && want != tracker_key
        {
            return Err(SessionError::KeyChanged {
                got: tracker_key,
                want,
                pin: self.pins.path().display().to_string(),
            });
        }
        if pinned.is_none() {
            self.pins
                .save(&self.addr, tracker_key)
                .map_err(SessionError::Pin)?;
            info!(target: svc::logging::ACTIVITY, op = "pin-tracker", tracker = %self.addr, key = %tracker_key, "pinned the tracker key on first use");
        }
        let mut conn = FramedConn::new(tls, MAX_RESPONSE_FRAME, MAX_REQUEST_FRAME);
        conn.send(&PeerMsg::Hello { version }).await?;
        match conn.read::<TrackerMsg>().await? {
            Some(TrackerMsg::Hello {
                version: chosen,
                lease_secs,
            }) if (MIN_PROTOCOL_VERSION..=version).contains(&chosen) => Ok((
                conn,
                tracker_key,
                Duration::from_secs(u64::from(lease_secs.max(2))),
                chosen,
            )),
            Some(TrackerMsg::Refused { reason, detail }) => {
                Err(SessionError::Refused { reason, detail })
            }
            Some(other) => Err(SessionError::Protocol(format!(
                "expected Hello, got {other:?}"
            ))),
            None => Err(SessionError::Closed),
        }
    }
}
