//! LAN discovery, a discovery source: this daemon announces itself by mDNS/DNS-SD (service
//! [`SERVICE_TYPE`], one instance named by its key, the peer port, a TXT record carrying the
//! name it claims and its signed address record) and browses the same service type. Each
//! instance's resolve events are merged ([`announce::Instances`]); an announcement's record is
//! decoded, checked and handed to the peer table as the [`Source::Lan`] source sees it; an
//! instance that says goodbye or expires is withdrawn. The announcement is made again whenever
//! the daemon's own record changes.
//!
//! The mDNS responder (`mdns-sd`) runs its own thread; this task drives it and stops it
//! (a goodbye first) when cancelled.

pub mod announce;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdns_sd::{IfKind, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};
use proto::PeerId;
use proto::api::{PeerSource, SourceState, SourceStatus};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::backoff::{Backoff, random_unit};
use crate::config::LanConfig;
use crate::node::Node;
use crate::peers::Source;
use announce::{Announcement, Instances, SERVICE_TYPE, Throttle};
use proto::addr_record::SignedAddrRecord;

/// Shortest and longest waits before starting a failed responder again.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// Seconds between two activity-log lines about one ignored instance.
const REPORT_EVERY: u64 = 60;
/// Time the responder gets to say goodbye and stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the LAN source cannot run, or an announcement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LanError {
    /// The mDNS responder failed (its sockets, or a command to it).
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
    /// The responder stopped on its own.
    #[error("the mDNS responder stopped")]
    Stopped,
}

/// What `status` shows of the LAN source.
#[derive(Debug, Clone)]
struct State {
    enabled: bool,
    interfaces: Vec<String>,
    state: SourceState,
    detail: Option<String>,
    since: u64,
    /// The key each instance heard now announces (to withdraw it when the instance goes).
    peers: HashMap<String, PeerId>,
}

/// A handle on the LAN source's state, for `status`.
#[derive(Debug, Clone)]
pub struct LanStatus(Arc<Mutex<State>>);

impl LanStatus {
    fn new(config: &LanConfig) -> Self {
        LanStatus(Arc::new(Mutex::new(State {
            enabled: config.enabled,
            interfaces: config.interfaces.clone(),
            state: if config.enabled {
                SourceState::Connecting
            } else {
                SourceState::Off
            },
            detail: None,
            since: svc::unix_now(),
            peers: HashMap::new(),
        })))
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
    }

    fn set(&self, state: SourceState, detail: Option<String>) {
        self.update(|s| {
            if s.state != state {
                s.since = svc::unix_now();
            }
            s.state = state;
            s.detail = detail;
        });
    }

    /// The `lan` entry of `status`: off, or up on all interfaces or the ones named, with the
    /// `peers` the peer table says it sees now and its last error.
    pub fn status(&self, peers: usize) -> SourceStatus {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let addr = g.enabled.then(|| {
            if g.interfaces.is_empty() {
                "all interfaces".to_owned()
            } else {
                g.interfaces.join(",")
            }
        });
        SourceStatus {
            kind: PeerSource::Lan,
            addr,
            key: None,
            state: g.state,
            detail: g.detail.clone(),
            since: Some(g.since),
            peers,
        }
    }
}

/// The LAN source: announce, browse, report.
pub struct Lan {
    node: Arc<Node>,
    config: LanConfig,
    status: LanStatus,
}

impl Lan {
    /// Starts the source as a tracked task (unless `config` turns it off) and returns the
    /// handle `status` reads.
    pub fn start(
        node: Arc<Node>,
        config: &LanConfig,
        tasks: &TaskTracker,
        cancel: CancellationToken,
    ) -> LanStatus {
        let status = LanStatus::new(config);
        if config.enabled {
            let lan = Lan {
                node,
                config: config.clone(),
                status: status.clone(),
            };
            tasks.spawn(lan.run(cancel));
        }
        status
    }

    /// Runs the responder until cancelled; when it cannot start or fails, the LAN source is
    /// `down` (the error in `status`) and tries again after a backoff.
    async fn run(self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
        loop {
            let outcome = match self.responder() {
                Ok(mdns) => {
                    let served = self.serve(&mdns, &cancel, &mut backoff).await;
                    self.status.update(|s| s.peers.clear());
                    self.node.source_gone(Source::Lan);
                    stop(&mdns, &self.instance_fullname()).await;
                    served
                }
                Err(e) => Err(e),
            };
            let Err(e) = outcome else { return };
            let delay = backoff.next_delay(random_unit());
            warn!("LAN discovery: {e}; trying again in {delay:?}");
            self.status.set(SourceState::Down, Some(e.to_string()));
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// The responder, on the configured interfaces.
    fn responder(&self) -> Result<ServiceDaemon, LanError> {
        let mdns = ServiceDaemon::new()?;
        if !self.config.interfaces.is_empty() {
            mdns.disable_interface(IfKind::All)?;
            mdns.enable_interface(self.if_kinds())?;
        }
        Ok(mdns)
    }

    /// The configured interfaces, as `mdns-sd` names them.
    fn if_kinds(&self) -> Vec<IfKind> {
        self.config
            .interfaces
            .iter()
            .map(|n| IfKind::Name(n.clone()))
            .collect()
    }

    /// This daemon's instance name: its key.
    fn instance(&self) -> String {
        self.node.identity.id.to_string()
    }

    fn instance_fullname(&self) -> String {
        format!("{}.{SERVICE_TYPE}", self.instance())
    }

    /// Announces and browses until cancelled (`Ok`) or the responder fails.
    async fn serve(
        &self,
        mdns: &ServiceDaemon,
        cancel: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), LanError> {
        let browse = mdns.browse(SERVICE_TYPE)?;
        let mut records = self.node.watch_addr_record();
        let first = records.borrow_and_update().clone();
        self.register(mdns, &first)?;
        self.status.set(SourceState::Up, None);
        backoff.reset();
        info!(interfaces = ?self.config.interfaces, "LAN discovery on");
        let mut instances = Instances::new();
        let mut reports = Throttle::new(REPORT_EVERY);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                changed = records.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let record = records.borrow_and_update().clone();
                    if let Err(e) = self.register(mdns, &record) {
                        warn!("cannot announce on the LAN: {e}");
                        self.status.set(SourceState::Up, Some(e.to_string()));
                    }
                }
                event = browse.recv_async() => {
                    let Ok(event) = event else { return Err(LanError::Stopped) };
                    self.on_event(event, &mut instances, &mut reports);
                }
            }
        }
    }

    /// Announces `record` (registering again replaces the earlier announcement).
    fn register(&self, mdns: &ServiceDaemon, record: &SignedAddrRecord) -> Result<(), LanError> {
        let me = &self.node.identity;
        let id = me.id.to_string();
        let host = format!("p2pd-{}.local.", &id[..id.len().min(16)]);
        let txt: Vec<mdns_sd::TxtProperty> = announce::txt(&me.name, &record.encode())
            .into_iter()
            .map(Into::into)
            .collect();
        let mut info = ServiceInfo::new(SERVICE_TYPE, &id, &host, (), me.listen.port(), txt)?
            .enable_addr_auto();
        // The instance name is this key: nobody else can hold it, so no probing for it.
        info.set_requires_probe(false);
        if !self.config.interfaces.is_empty() {
            info.set_interfaces(self.if_kinds());
        }
        mdns.register(info)?;
        Ok(())
    }

    fn on_event(&self, event: ServiceEvent, instances: &mut Instances, reports: &mut Throttle) {
        match event {
            ServiceEvent::ServiceResolved(service) => {
                let Some((fullname, txt, addrs)) = self.read(&service) else {
                    return;
                };
                let Some(a) = instances.resolved(&fullname, txt, addrs) else {
                    return;
                };
                if let Err(reason) = self.heard(a) {
                    if reports.allow(&fullname, svc::unix_now()) {
                        warn!(target: svc::logging::ACTIVITY, op = "lan", instance = %neutral(&fullname), outcome = "ignored", "LAN announcement ignored: {reason}");
                    }
                    // An instance never accepted holds no place: forged ones cannot fill
                    // the table of instances.
                    if !self.accepted(&fullname) {
                        instances.removed(&fullname);
                    }
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) if instances.removed(&fullname).is_some() => {
                self.gone(&fullname);
            }
            _ => {}
        }
    }

    /// An instance's name, TXT record and addresses, unless it is ours or its TXT record is
    /// not an announcement.
    fn read(&self, s: &ResolvedService) -> Option<(String, announce::Txt, Vec<SocketAddr>)> {
        if s.fullname == self.instance_fullname() {
            return None;
        }
        let txt = announce::read_txt(s.txt_properties.iter().map(|p| (p.key(), p.val())));
        let txt = match txt {
            Ok(t) => t,
            Err(e) => {
                debug!(instance = %s.fullname, "LAN announcement ignored: {e}");
                return None;
            }
        };
        let addrs = s
            .addresses
            .iter()
            .filter_map(|ip| socket_addr(ip, s.port))
            .collect();
        Some((s.fullname.clone(), txt, addrs))
    }

    /// An instance announces a record: decoded, checked against the key the instance is
    /// named for, and handed to the peer table from the address it was heard at (an IPv4
    /// one first); a record that fails is ignored, and `Err` says why.
    fn heard(&self, a: Announcement) -> Result<(), String> {
        let instance = a.instance.strip_suffix(&format!(".{SERVICE_TYPE}"));
        let key = instance.and_then(|i| i.parse::<PeerId>().ok());
        let record = SignedAddrRecord::decode(&a.txt.record);
        let checked = match (key, record) {
            (None, _) => Err("the instance is not named for a key".to_owned()),
            (_, Err(e)) => Err(e.to_string()),
            (Some(key), Ok(r)) => r
                .check(&key, svc::unix_now())
                .map(|()| (key, r))
                .map_err(|e| e.to_string()),
        };
        let (key, record) = checked?;
        let from = a
            .addrs
            .iter()
            .map(SocketAddr::ip)
            .find(IpAddr::is_ipv4)
            .or_else(|| {
                a.addrs
                    .iter()
                    .map(SocketAddr::ip)
                    .find(|ip| matches!(ip, IpAddr::V6(v6) if !v6.is_unicast_link_local()))
            });
        self.status.update(|s| {
            s.peers.insert(a.instance.clone(), key);
        });
        debug!(key = %key, ?from, "heard on the LAN");
        self.node
            .heard(Source::Lan, &record, from, a.txt.name.as_ref());
        Ok(())
    }

    /// Whether a record of `fullname` was accepted and not withdrawn since.
    fn accepted(&self, fullname: &str) -> bool {
        let mut yes = false;
        self.status.update(|s| yes = s.peers.contains_key(fullname));
        yes
    }

    /// An instance went away: the LAN no longer sees its key.
    fn gone(&self, fullname: &str) {
        let mut key = None;
        self.status.update(|s| key = s.peers.remove(fullname));
        if let Some(key) = key {
            self.node.lost(key, Source::Lan);
        }
    }
}

/// An instance name as the log may show it: control characters out, at most 80 characters.
fn neutral(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// An address mDNS resolved, with the instance's port; an IPv6 link-local address keeps the
/// interface it was found on as its scope.
fn socket_addr(ip: &ScopedIp, port: u16) -> Option<SocketAddr> {
    match ip {
        ScopedIp::V4(v4) => Some(SocketAddr::new(IpAddr::V4(*v4.addr()), port)),
        ScopedIp::V6(v6) => {
            let addr = *v6.addr();
            let scope = if addr.is_unicast_link_local() {
                v6.scope_id().index
            } else {
                0
            };
            Some(SocketAddr::V6(SocketAddrV6::new(addr, port, 0, scope)))
        }
        _ => None,
    }
}

/// Says goodbye for our instance and stops the responder, each within [`STOP_TIMEOUT`].
async fn stop(mdns: &ServiceDaemon, fullname: &str) {
    if let Ok(rx) = mdns.unregister(fullname) {
        let _ = tokio::time::timeout(STOP_TIMEOUT, rx.recv_async()).await;
    }
    match mdns.shutdown() {
        Ok(rx) => {
            if tokio::time::timeout(STOP_TIMEOUT, rx.recv_async())
                .await
                .is_err()
            {
                warn!("the mDNS responder did not stop within {STOP_TIMEOUT:?}");
            }
        }
        Err(e) => debug!("mDNS shutdown: {e}"),
    }
}
