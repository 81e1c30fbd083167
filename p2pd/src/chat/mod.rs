//! Chat over peer links: the outbox (messages stored first, then delivered in seq order with
//! retries and backoff), the links themselves (one per peer pair, made on demand, closed when
//! idle), and what arrives on them (stored before it is acknowledged, duplicates dropped).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use proto::api::{Event, MessageInfo, MessageState};
use proto::peer::{ALPN_CHAT, Inbound, MAX_TEXT, PeerFrame, Refusal};
use proto::{PeerId, PeerName};
use svc::unix_millis;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

mod ingress;
pub mod store;

pub use ingress::MessageLimits;

use crate::backoff::{Backoff, random_unit};
use crate::link::{LinkConn, LinkError};
use crate::node::Node;
use crate::peers::ResolveError;
use crate::router::{Dialer, PeerLink, Protocol};
use crate::store::StoreError;
use ingress::{Held, Ingress, Verdict};
use store::ChatStore;

/// Frames queued per link before senders wait.
const LINK_QUEUE: usize = 1024;
/// A link with no message traffic for this long is closed.
const IDLE: Duration = Duration::from_secs(120);
/// Keepalive interval on a link; a link silent for three of these is dead.
const PING_EVERY: Duration = Duration::from_secs(15);
/// How often the outbox looks for peers to retry.
const RETRY_TICK: Duration = Duration::from_secs(1);

/// Errors the chat service reports to callers.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The peer reference did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The text is too long.
    #[error("message is {len} bytes; the limit is {MAX_TEXT}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The text is empty.
    #[error("message is empty")]
    Empty,
    /// The peer is blocked.
    #[error("{0} is blocked; unblock it first")]
    Blocked(PeerName),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Slot {
    /// Distinguishes successive links to one peer.
    serial: u64,
    /// Who dialed: of two simultaneous links, the one dialed by the smaller key is kept.
    dialer: PeerId,
    tx: mpsc::Sender<PeerFrame>,
    cancel: CancellationToken,
    /// Highest seq written on this link (unacknowledged ones are resent on the next link).
    sent_upto: u64,
    /// The peer deferred a message: nothing more is written before this time.
    hold_until: Option<Instant>,
    /// The peer deferred a message: the next write starts after this seq. Kept apart from
    /// `sent_upto` because a deferral can arrive while a write of later seqs is under way.
    rewind: Option<u64>,
}

#[derive(Default)]
struct Retry {
    backoff: Option<Backoff>,
    next_at: Option<Instant>,
    dialing: bool,
}

#[derive(Default)]
struct Links {
    slots: HashMap<PeerId, Slot>,
    retry: HashMap<PeerId, Retry>,
    serial: u64,
}

/// The chat service. Cheap to share: `Arc<Chat>`.
pub struct Chat {
    node: Arc<Node>,
    store: ChatStore,
    dialer: Arc<Dialer>,
    links: Mutex<Links>,
    /// The message rate and quotas; checked on the database thread, between reading the
    /// bytes a peer holds and storing its message.
    ingress: Arc<Mutex<Ingress>>,
    kick: mpsc::UnboundedSender<PeerId>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Chat {
    /// Starts the outbox worker. Links and their tasks are tracked by `tasks`.
    pub fn start(
        node: Arc<Node>,
        store: ChatStore,
        dialer: Arc<Dialer>,
        limits: MessageLimits,
        tasks: TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Chat> {
        let (kick, kicks) = mpsc::unbounded_channel();
        let chat = Arc::new(Chat {
            node,
            store,
            dialer,
            links: Mutex::default(),
            ingress: Arc::new(Mutex::new(Ingress::new(limits))),
            kick,
            tasks: tasks.clone(),
            cancel: cancel.clone(),
        });
        tasks.spawn(chat.clone().outbox_worker(kicks));
        chat
    }

    fn links(&self) -> MutexGuard<'_, Links> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a message to `peer` (queued) and starts delivering it.
    pub async fn send(&self, peer: PeerId, text: &str) -> Result<MessageInfo, ChatError> {
        let info = self
            .node
            .peer(peer)
            .ok_or_else(|| ResolveError::unknown(&peer.to_string()))?;
        if text.is_empty() {
            return Err(ChatError::Empty);
        }
        if text.len() > MAX_TEXT {
            return Err(ChatError::TooLong { len: text.len() });
        }
        if info.blocked {
            return Err(ChatError::Blocked(info.name));
        }
        self.node.deal_with(info.id).await?;
        let msg = self
            .store
            .insert_outgoing(info.id, &info.name, text, unix_millis())
            .await?;
        info!(target: svc::logging::ACTIVITY, op = "message-queued", peer = %info.name, id = %msg.id, bytes = text.len(), "message stored");
        if !self.write_next(&msg) {
            let _ = self.kick.send(info.id);
        }
        Ok(msg)
    }

    /// Writes a message just stored straight to its peer's link when it is the next one the
    /// link is due (nothing queued before it is unwritten, no deferral pending): no trip to
    /// the outbox worker nor to the database. False when the outbox must do it.
    fn write_next(&self, msg: &MessageInfo) -> bool {
        let mut g = self.links();
        let Some(slot) = g.slots.get_mut(&msg.peer) else {
            return false;
        };
        if slot.rewind.is_some()
            || slot.hold_until.is_some_and(|t| t > Instant::now())
            || slot.sent_upto + 1 != msg.seq
        {
            return false;
        }
        let frame = PeerFrame::Message(proto::peer::ChatMessage {
            id: msg.id,
            seq: msg.seq,
            sent_at: msg.sent_at,
            text: msg.text.clone(),
        });
        if slot.tx.try_send(frame).is_err() {
            return false;
        }
        slot.sent_upto = msg.seq;
        true
    }

    /// The last `limit` messages of a conversation, oldest first: those with `peer` and
    /// those under `name` with any key (a name no peer holds now still finds its past
    /// conversation: pass no key).
    pub async fn history(
        &self,
        peer: Option<PeerId>,
        name: &PeerName,
        limit: u32,
    ) -> Result<Vec<MessageInfo>, ChatError> {
        Ok(self.store.history(peer, name, limit).await?)
    }

    /// Looks again at `peer`'s outbox soon (it came online, or the user unblocked it).
    pub fn nudge(&self, peer: PeerId) {
        if let Some(r) = self.links().retry.get_mut(&peer) {
            r.next_at = None;
        }
        let _ = self.kick.send(peer);
    }

    async fn outbox_worker(self: Arc<Self>, mut kicks: mpsc::UnboundedReceiver<PeerId>) {
        let mut events = self.node.subscribe();
        let mut tick = tokio::time::interval(RETRY_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return,
                Some(peer) = kicks.recv() => self.pump(peer).await,
                ev = events.recv() => match ev {
                    Ok(Event::PeerJoined { peer } | Event::PeerUpdated { peer }) => self.nudge(peer.id),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    let pending = self.store.peers_with_outbox().await;
                    match pending {
                        Ok(peers) => for peer in peers { self.pump(peer).await },
                        Err(e) => warn!("cannot read the outbox: {e}"),
                    }
                }
            }
        }
    }

    /// Writes `peer`'s unsent queued messages to its link, or starts dialing it.
    async fn pump(self: &Arc<Self>, peer: PeerId) {
        let link = {
            let mut g = self.links();
            g.slots.get_mut(&peer).map(|s| {
                if s.hold_until.is_none_or(|t| t <= Instant::now())
                    && let Some(r) = s.rewind.take()
                {
                    s.sent_upto = s.sent_upto.min(r);
                }
                (s.serial, s.tx.clone(), s.sent_upto, s.hold_until)
            })
        };
        // Only what this link has not had yet: the rest waits for its Ack.
        let after = link.as_ref().map_or(0, |l| l.2);
        let outbox = match self.store.outbox_after(peer, after).await {
            Ok(o) => o,
            Err(e) => return warn!("cannot read the outbox: {e}"),
        };
        let Some((serial, tx, _, hold_until)) = link else {
            // Links are made on demand: only when there is something to send.
            if !outbox.is_empty() {
                self.maybe_dial(peer);
            }
            return;
        };
        if hold_until.is_some_and(|t| t > Instant::now()) {
            // The peer deferred a message; the retry tick comes back after the wait.
            return;
        }
        for m in outbox {
            let Ok(permit) = tx.reserve().await else {
                break;
            };
            // Checked and written under the lock: `write_next` may have written it meanwhile.
            let mut g = self.links();
            let Some(slot) = g.slots.get_mut(&peer).filter(|s| s.serial == serial) else {
                break;
            };
            if m.seq <= slot.sent_upto {
                continue;
            }
            slot.sent_upto = m.seq;
            permit.send(PeerFrame::Message(m));
        }
    }

    fn maybe_dial(self: &Arc<Self>, peer: PeerId) {
        // Online, or pinned with an address from the book, or pinned with none when the DHT
        // can look it up (its lookups are rate-limited per peer, and so are these dials).
        let Some(info) = self.node.dial_target(peer, self.dialer.looks_up()) else {
            return;
        };
        if matches!(
            proto::reach::Reach::of(&info),
            proto::reach::Reach::Blocked | proto::reach::Reach::KeyChanged
        ) {
            return;
        }
        {
            let mut g = self.links();
            let r = g.retry.entry(peer).or_default();
            if r.dialing || r.next_at.is_some_and(|t| t > Instant::now()) {
                return;
            }
            r.dialing = true;
        }
        let chat = self.clone();
        self.tasks.spawn(async move {
            let result = tokio::select! {
                () = chat.cancel.cancelled() => return,
                r = chat.dialer.dial(ALPN_CHAT, &info) => r,
            };
            match result {
                Ok(conn) => {
                    debug!(peer = %info.name, "link dialed");
                    chat.clone()
                        .adopt(conn, peer, info.name, chat.node.identity.id);
                }
                Err(e) => chat.link_failed(peer, &e).await,
            }
            // Every dial pushes the next one back, even one that connected: a peer that takes
            // the link and then refuses it (blocked, key mismatch) must not be redialled in a
            // loop. An `Ack` on a link resets the backoff.
            let mut g = chat.links();
            let r = g.retry.entry(peer).or_default();
            r.dialing = false;
            let b = r.backoff.get_or_insert_with(|| {
                Backoff::new(Duration::from_millis(500), Duration::from_secs(60))
            });
            r.next_at = Some(Instant::now() + b.next_delay(random_unit()));
        });
    }

    async fn link_failed(&self, peer: PeerId, e: &LinkError) {
        let serious = matches!(
            e,
            LinkError::WrongKey { .. } | LinkError::Refused { .. } | LinkError::NameMismatch { .. }
        );
        if !serious {
            warn!(peer = %peer.short(), "peer link: {e}");
        } else if self.node.link_error(peer, e.to_string()) {
            warn!(peer = %peer.short(), "peer link: {e}");
        }
        if let LinkError::Refused {
            reason: Refusal::Blocked,
            detail,
        } = e
        {
            self.refuse_outbox(peer, detail).await;
        }
    }

    /// Marks every queued message to `peer` refused (it blocked us).
    async fn refuse_outbox(&self, peer: PeerId, detail: &str) {
        let queued = self.store.outbox(peer).await.unwrap_or_default();
        for m in queued {
            self.settle(peer, m.id, MessageState::Refused, Some(detail))
                .await;
        }
    }

    async fn settle(
        &self,
        peer: PeerId,
        id: proto::peer::MessageId,
        state: MessageState,
        detail: Option<&str>,
    ) {
        match self.store.settle(peer, id, state, detail).await {
            Ok(Some(message)) => self.node.publish([Event::MessageUpdated { message }]),
            Ok(None) => {}
            Err(e) => warn!("cannot record delivery of {id}: {e}"),
        }
    }

    /// Registers an established link and runs it.
    fn adopt(self: Arc<Self>, conn: LinkConn, peer: PeerId, name: PeerName, dialer: PeerId) {
        let (tx, rx) = mpsc::channel(LINK_QUEUE);
        let cancel = self.cancel.child_token();
        let serial = {
            let mut g = self.links();
            g.serial += 1;
            let serial = g.serial;
            let me = self.node.identity.id;
            let winner = me.min(peer);
            if let Some(old) = g.slots.get(&peer) {
                if old.dialer == winner && dialer != winner {
                    // Keep the existing link; drop this one.
                    debug!(peer = %name, "dropping a duplicate link");
                    return;
                }
                old.cancel.cancel();
            }
            g.slots.insert(
                peer,
                Slot {
                    serial,
                    dialer,
                    tx: tx.clone(),
                    cancel: cancel.clone(),
                    sent_upto: 0,
                    hold_until: None,
                    rewind: None,
                },
            );
            serial
        };
        info!(target: svc::logging::ACTIVITY, op = "link-up", peer = %name, id = %peer.short(), "peer link established");
        self.node.link_up(peer);
        let (reader, writer) = conn.split();
        let chat = self.clone();
        let wcancel = cancel.clone();
        self.tasks
            .spawn(async move { write_loop(writer, rx, wcancel).await });
        self.tasks.spawn(async move {
            chat.read_loop(reader, peer, &name, tx, cancel.clone())
                .await;
            cancel.cancel();
            chat.closed(peer, serial, &name);
        });
        let _ = self.kick.send(peer);
    }

    fn closed(&self, peer: PeerId, serial: u64, name: &PeerName) {
        let mut g = self.links();
        if g.slots.get(&peer).is_some_and(|s| s.serial == serial) {
            g.slots.remove(&peer);
            info!(target: svc::logging::ACTIVITY, op = "link-down", peer = %name, id = %peer.short(), "peer link closed");
            drop(g);
            self.node.link_down(peer);
        } else {
            drop(g);
        }
        let _ = self.kick.send(peer);
    }

    async fn read_loop<R>(
        &self,
        mut conn: transport::FramedConn<R>,
        peer: PeerId,
        name: &PeerName,
        tx: mpsc::Sender<PeerFrame>,
        cancel: CancellationToken,
    ) where
        R: tokio::io::AsyncRead + Unpin,
    {
        let mut idle_until = Instant::now() + IDLE;
        let mut dead_at = Instant::now() + PING_EVERY * 3;
        loop {
            let frame = tokio::select! {
                () = cancel.cancelled() => return,
                () = sleep_until(idle_until) => return debug!(peer = %name, "closing an idle link"),
                () = sleep_until(dead_at) => return warn!(peer = %name, "peer link silent; closing it"),
                f = conn.read_payload() => f,
            };
            let payload = match frame {
                Ok(Some(p)) => p,
                Ok(None) => return,
                Err(e) => return warn!(peer = %name, "peer link error: {e}"),
            };
            let frame = match PeerFrame::decode(&payload) {
                Ok(Inbound::Frame(f)) => f,
                Ok(Inbound::Unknown { tag }) => {
                    // A newer peer's frame: say so and keep the link.
                    debug!(peer = %name, tag, "unknown frame refused");
                    dead_at = Instant::now() + PING_EVERY * 3;
                    if tx.send(unknown_frame(tag)).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(e) => return warn!(peer = %name, "peer link error: {e}"),
            };
            dead_at = Instant::now() + PING_EVERY * 3;
            if !matches!(frame, PeerFrame::Ping { .. } | PeerFrame::Pong { .. }) {
                idle_until = Instant::now() + IDLE;
            }
            let reply = match frame {
                PeerFrame::Message(m) => Some(self.on_message(peer, name, m).await),
                PeerFrame::Ack { id } => {
                    self.settle(peer, id, MessageState::Delivered, None).await;
                    if let Some(r) = self.links().retry.get_mut(&peer) {
                        r.backoff = None;
                    }
                    None
                }
                PeerFrame::Refused {
                    id: Some(id),
                    reason: Refusal::Deferred,
                    detail,
                } => {
                    self.deferred(peer, id, &detail).await;
                    None
                }
                PeerFrame::Refused {
                    id: Some(id),
                    reason,
                    detail,
                } => {
                    if reason != Refusal::Unavailable {
                        self.settle(
                            peer,
                            id,
                            MessageState::Refused,
                            Some(&refusal_text(reason, &detail)),
                        )
                        .await;
                    }
                    None
                }
                PeerFrame::Refused {
                    id: None,
                    reason: Refusal::BadMessage,
                    detail,
                } => {
                    warn!(peer = %name, "the peer did not understand a frame: {detail}");
                    None
                }
                PeerFrame::Refused {
                    id: None,
                    reason,
                    detail,
                } => {
                    self.link_failed(peer, &LinkError::Refused { reason, detail })
                        .await;
                    return;
                }
                PeerFrame::Ping { nonce } => Some(PeerFrame::Pong { nonce }),
                PeerFrame::Pong { .. } => None,
                PeerFrame::Hello { .. } => {
                    return warn!(peer = %name, "unexpected Hello; closing the link");
                }
            };
            if let Some(reply) = reply
                && tx.send(reply).await.is_err()
            {
                return;
            }
        }
    }

    /// Stores an incoming message (once) and answers with the frame to send back.
    async fn on_message(
        &self,
        peer: PeerId,
        name: &PeerName,
        m: proto::peer::ChatMessage,
    ) -> PeerFrame {
        if self.node.peer(peer).is_some_and(|p| p.blocked) {
            return PeerFrame::Refused {
                id: Some(m.id),
                reason: Refusal::Blocked,
                detail: String::new(),
            };
        }
        if m.text.len() > MAX_TEXT || m.text.is_empty() {
            return PeerFrame::Refused {
                id: Some(m.id),
                reason: Refusal::BadMessage,
                detail: format!("{} bytes", m.text.len()),
            };
        }
        // The rate and the quotas, then the insert, in one trip to the database.
        let trusted = self.node.peer(peer).is_some_and(|p| p.trusted);
        let (ingress, seq, len) = (self.ingress.clone(), m.seq, m.text.len() as u64);
        let admit = move |held: Option<(u64, Option<u64>)>| {
            let (peer_bytes, strangers) = held.unwrap_or_default();
            let held = Held {
                peer: peer_bytes,
                strangers,
            };
            let now = std::time::Instant::now();
            match ingress
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .check(peer, seq, len, trusted, held, now)
            {
                Verdict::Accept => Ok(()),
                refused => Err(refused),
            }
        };
        let stored = self
            .store
            .insert_incoming(peer, name, &m, !trusted, admit)
            .await;
        let stored = match stored {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(verdict)) => return self.refusal(peer, name, &m, verdict),
            Err(e) => Err(e),
        };
        match stored {
            Ok(Some(message)) => {
                if let Err(e) = self.node.deal_with(peer).await {
                    warn!("cannot pin {name}: {e}");
                }
                self.node.publish([Event::MessageReceived { message }]);
            }
            Ok(None) => debug!(id = %m.id, "duplicate message dropped"),
            Err(e) => {
                warn!("cannot store a message from {name}: {e}");
                return PeerFrame::Refused {
                    id: Some(m.id),
                    reason: Refusal::Unavailable,
                    detail: String::new(),
                };
            }
        }
        PeerFrame::Ack { id: m.id }
    }
}

impl Chat {
    /// The answer to an incoming message the rate or a quota keeps out.
    fn refusal(
        &self,
        peer: PeerId,
        name: &PeerName,
        m: &proto::peer::ChatMessage,
        verdict: Verdict,
    ) -> PeerFrame {
        match verdict {
            // Not a refusal; never passed here. Answered as a store failure: sent again.
            Verdict::Accept => PeerFrame::Refused {
                id: Some(m.id),
                reason: Refusal::Unavailable,
                detail: String::new(),
            },
            Verdict::Defer { wait } => {
                debug!(peer = %name, seq = m.seq, "message deferred for {wait:?}");
                PeerFrame::Refused {
                    id: Some(m.id),
                    reason: Refusal::Deferred,
                    detail: ingress::wait_detail(wait),
                }
            }
            Verdict::OverQuota {
                would_hold,
                quota,
                total,
            } => {
                let whose = if total {
                    "peers it does not know"
                } else {
                    "you"
                };
                let detail = format!(
                    "it holds {quota} bytes of messages from {whose}, the most it keeps \
                     (this one would make {would_hold}); ask it to trust you"
                );
                if self
                    .node
                    .link_error(peer, format!("{name}: message refused: {detail}"))
                {
                    warn!(peer = %name, "message over the quota refused: {detail}");
                }
                PeerFrame::Refused {
                    id: Some(m.id),
                    reason: Refusal::OverQuota,
                    detail,
                }
            }
        }
    }

    /// The peer deferred our message `id`: mark it, and write nothing more to it before the
    /// wait it gave; the outbox then sends it again, with those after it.
    async fn deferred(&self, peer: PeerId, id: proto::peer::MessageId, detail: &str) {
        let wait = ingress::wait_from_detail(detail);
        let shown = format!(
            "{}; sending again in {:.1} s",
            Refusal::Deferred.describe(),
            wait.as_secs_f64()
        );
        let seq = match self
            .store
            .settle(peer, id, MessageState::Deferred, Some(&shown))
            .await
        {
            Ok(Some(message)) => {
                let seq = message.seq;
                self.node.publish([Event::MessageUpdated { message }]);
                seq
            }
            Ok(None) => return,
            Err(e) => return warn!("cannot record the deferral of {id}: {e}"),
        };
        if let Some(slot) = self.links().slots.get_mut(&peer) {
            let from = seq.saturating_sub(1);
            slot.rewind = Some(slot.rewind.map_or(from, |r| r.min(from)));
            slot.hold_until = Some(Instant::now() + wait);
        }
    }
}

impl Protocol for Chat {
    fn handle(self: Arc<Self>, link: PeerLink) {
        self.adopt(link.conn, link.key, link.name, link.key);
    }
}

/// The answer to a frame this version does not know (a newer peer's): `Refused` without a
/// message id, with `BadMessage`, which never ends the link.
fn unknown_frame(tag: u32) -> PeerFrame {
    PeerFrame::Refused {
        id: None,
        reason: Refusal::BadMessage,
        detail: format!("unknown frame tag {tag}"),
    }
}

async fn write_loop<W>(
    mut conn: transport::FramedConn<W>,
    mut rx: mpsc::Receiver<PeerFrame>,
    cancel: CancellationToken,
) where
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut nonce = 0u64;
    loop {
        let frame = tokio::select! {
            () = cancel.cancelled() => break,
            f = rx.recv() => match f { Some(f) => f, None => break },
            _ = ping.tick() => { nonce += 1; PeerFrame::Ping { nonce } }
        };
        if let Err(e) = conn.send(&frame).await {
            debug!("peer link write failed: {e}");
            cancel.cancel();
            break;
        }
    }
    let _ = conn.shutdown().await;
}

/// A refusal as shown to the user: the reason, and the peer's detail when it gave one.
fn refusal_text(reason: Refusal, detail: &str) -> String {
    if detail.is_empty() {
        reason.describe().to_owned()
    } else {
        format!("{}: {detail}", reason.describe())
    }
}
