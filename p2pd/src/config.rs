//! p2pd configuration: command-line flags over a strict TOML file, validated in one place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use proto::PeerName;
use serde::{Deserialize, Serialize};

pub use crate::transfer::limits::TransferLimits;

mod resolved;
mod sources;

use sources::trackers;
pub use sources::{DhtConfig, LanConfig, TrackerConf};

/// Command-line flags. Name and tracker come from here or from the config file.
#[derive(Debug, Parser)]
#[command(
    name = "p2pd",
    version,
    about = "Per-user peer daemon: identity, tracker registration, peer links"
)]
pub struct Args {
    /// This peer's name (1-32 of a-z 0-9 - _).
    #[arg(long)]
    pub name: Option<String>,
    /// A tracker, HOST:PORT, optionally with its key (HOST:PORT=ID); repeatable: p2pd
    /// registers with each. Given here, these replace the config file's trackers.
    #[arg(long, value_name = "HOST:PORT[=ID]")]
    pub tracker: Vec<String>,
    /// The key (PeerId) of the one tracker given; without it the first key seen is pinned.
    /// With several trackers, give each key as HOST:PORT=ID.
    #[arg(long, value_name = "ID")]
    pub tracker_key: Option<String>,
    /// Address for peer links (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// State directory (identity, pins, logs).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Control socket path.
    #[arg(long, value_name = "PATH", env = proto::paths::SOCKET_ENV)]
    pub socket: Option<PathBuf>,
    /// Where accepted files land.
    #[arg(long, value_name = "DIR")]
    pub download_dir: Option<PathBuf>,
    /// Strict TOML configuration file (default: $XDG_CONFIG_HOME/p2pd/config.toml if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check the configuration, print it, and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Find peers and announce this one on the local network by mDNS (the default).
    #[arg(long, overrides_with = "no_lan")]
    pub lan: bool,
    /// Neither announce this peer nor look for peers on the local network.
    #[arg(long, overrides_with = "lan")]
    pub no_lan: bool,
    /// Use only this network interface for LAN discovery (repeatable; default: all).
    #[arg(long = "lan-interface", value_name = "NAME")]
    pub lan_interfaces: Vec<String>,
    /// Publish this daemon's signed address record in the BitTorrent Mainline DHT and look
    /// peers up there when no other source reaches them (off by default: it publishes the
    /// key beside the addresses).
    #[arg(long)]
    pub dht: bool,
    /// A DHT node to bootstrap from, HOST:PORT (repeatable). Without any, `--dht` uses the
    /// public Mainline bootstrap nodes.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// `--generate-completions SHELL`, `--generate-manpage`.
    #[command(flatten)]
    pub docs: svc::docs::DocFlags,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawConfig {
    name: Option<String>,
    tracker: Option<String>,
    trackers: Option<Vec<String>>,
    tracker_key: Option<String>,
    listen: Option<SocketAddr>,
    state_dir: Option<PathBuf>,
    socket: Option<PathBuf>,
    download_dir: Option<PathBuf>,
    dht: Option<bool>,
    dht_bootstrap: Option<Vec<String>>,
    lan: Option<bool>,
    lan_interfaces: Option<Vec<String>>,
    // Last: in TOML a table follows the plain keys.
    #[serde(default)]
    limits: RawLimits,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawLimits {
    handshake_timeout_ms: Option<u64>,
    max_pending_links: Option<usize>,
    max_pending_links_per_ip: Option<usize>,
    tracker_subscribe_max: Option<u16>,
    message_rate: Option<u32>,
    message_burst: Option<u32>,
    message_bytes_rate: Option<u64>,
    message_bytes_burst: Option<u64>,
    untrusted_bytes_per_peer: Option<u64>,
    untrusted_bytes_total: Option<u64>,
    max_pending_offers_per_peer: Option<usize>,
    max_pending_offer_bytes_per_peer: Option<u64>,
    max_pending_offers: Option<usize>,
    max_pending_offer_bytes: Option<u64>,
    offer_expiry_secs: Option<u64>,
    decision_timeout_secs: Option<u64>,
    max_bulk_links_per_peer: Option<usize>,
    transfer_progress_timeout_secs: Option<u64>,
}

/// Limits on inbound peer connections that have not finished their handshake (TCP accepted,
/// TLS and `Hello` not yet done): what a flood or a slow client can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time an inbound link gets for TLS and `Hello` from its accept.
    pub handshake_timeout: Duration,
    /// Inbound connections in their handshake at once; more are closed on accept.
    pub max_pending_links: usize,
    /// The same, from one IP address.
    pub max_pending_links_per_ip: usize,
    /// Tracker protocol version 3: take every change while a tracker lists at most this many
    /// peers; beyond it, watch the contacts only and look other peers up when named.
    pub tracker_subscribe_max: u16,
    /// What peers may make this daemon store in messages.
    pub messages: MessageLimits,
}

/// The limits, from `[limits]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// Messages per second a peer may send, on average.
    pub rate: u32,
    /// Messages a peer may send at once.
    pub burst: u32,
    /// Text bytes per second a peer may send, on average.
    pub bytes_rate: u64,
    /// Text bytes a peer may send at once.
    pub bytes_burst: u64,
    /// Text bytes stored from one untrusted peer, in all.
    pub quota_per_peer: u64,
    /// Text bytes stored from all untrusted peers together.
    pub quota_total: u64,
}

impl Default for MessageLimits {
    fn default() -> Self {
        MessageLimits {
            rate: 20,
            burst: 1000,
            bytes_rate: 256 * 1024,
            bytes_burst: 4 * 1024 * 1024,
            quota_per_peer: 32 * 1024 * 1024,
            quota_total: 256 * 1024 * 1024,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            max_pending_links: 1024,
            max_pending_links_per_ip: 16,
            tracker_subscribe_max: proto::tracker::MAX_PAGE,
            messages: MessageLimits::default(),
        }
    }
}

/// A `[limits]` count that must be at least 1.
fn at_least_one<T: PartialOrd + From<u8>>(
    key: &'static str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        Some(v) if v < T::from(1) => Err(ConfigError::Invalid {
            what: "limits",
            detail: format!("{key} must be at least 1"),
        }),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// A `[limits]` duration in whole seconds, at least 1.
fn secs(key: &'static str, value: Option<u64>, default: Duration) -> Result<Duration, ConfigError> {
    value.map_or(Ok(default), |v| {
        at_least_one(key, Some(v), 1).map(Duration::from_secs)
    })
}

impl RawLimits {
    /// The transfer keys of `[limits]`.
    fn transfers(&self) -> Result<TransferLimits, ConfigError> {
        let d = TransferLimits::default();
        Ok(TransferLimits {
            max_offers_per_peer: at_least_one(
                "max-pending-offers-per-peer",
                self.max_pending_offers_per_peer,
                d.max_offers_per_peer,
            )?,
            max_offer_bytes_per_peer: at_least_one(
                "max-pending-offer-bytes-per-peer",
                self.max_pending_offer_bytes_per_peer,
                d.max_offer_bytes_per_peer,
            )?,
            max_offers: at_least_one("max-pending-offers", self.max_pending_offers, d.max_offers)?,
            max_offer_bytes: at_least_one(
                "max-pending-offer-bytes",
                self.max_pending_offer_bytes,
                d.max_offer_bytes,
            )?,
            offer_expiry: secs("offer-expiry-secs", self.offer_expiry_secs, d.offer_expiry)?,
            decision_timeout: secs(
                "decision-timeout-secs",
                self.decision_timeout_secs,
                d.decision_timeout,
            )?,
            max_bulk_links_per_peer: at_least_one(
                "max-bulk-links-per-peer",
                self.max_bulk_links_per_peer,
                d.max_bulk_links_per_peer,
            )?,
            progress_timeout: secs(
                "transfer-progress-timeout-secs",
                self.transfer_progress_timeout_secs,
                d.progress_timeout,
            )?,
        })
    }

    fn validate(self) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let limits = Limits {
            handshake_timeout: self
                .handshake_timeout_ms
                .map_or(d.handshake_timeout, Duration::from_millis),
            max_pending_links: self.max_pending_links.unwrap_or(d.max_pending_links),
            max_pending_links_per_ip: self
                .max_pending_links_per_ip
                .unwrap_or(d.max_pending_links_per_ip),
            tracker_subscribe_max: self
                .tracker_subscribe_max
                .unwrap_or(d.tracker_subscribe_max),
            messages: MessageLimits {
                rate: self.message_rate.unwrap_or(d.messages.rate),
                burst: self.message_burst.unwrap_or(d.messages.burst),
                bytes_rate: self.message_bytes_rate.unwrap_or(d.messages.bytes_rate),
                bytes_burst: self.message_bytes_burst.unwrap_or(d.messages.bytes_burst),
                quota_per_peer: self
                    .untrusted_bytes_per_peer
                    .unwrap_or(d.messages.quota_per_peer),
                quota_total: self.untrusted_bytes_total.unwrap_or(d.messages.quota_total),
            },
        };
        let m = limits.messages;
        if m.rate == 0 || m.burst == 0 || m.bytes_rate == 0 {
            return Err(ConfigError::Invalid {
                what: "limits",
                detail: "message-rate, message-burst and message-bytes-rate must be at least 1"
                    .into(),
            });
        }
        if m.bytes_burst < proto::peer::MAX_TEXT as u64 {
            return Err(ConfigError::Invalid {
                what: "limits",
                detail: format!(
                    "message-bytes-burst must be at least {} (one message of the largest size)",
                    proto::peer::MAX_TEXT
                ),
            });
        }
        if limits.max_pending_links == 0 || limits.max_pending_links_per_ip == 0 {
            return Err(ConfigError::Invalid {
                what: "limits",
                detail: "max-pending-links and max-pending-links-per-ip must be at least 1".into(),
            });
        }
        if limits.handshake_timeout < Duration::from_millis(100) {
            return Err(ConfigError::Invalid {
                what: "limits",
                detail: "handshake-timeout-ms must be at least 100".into(),
            });
        }
        Ok(limits)
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This peer's name.
    pub name: PeerName,
    /// The trackers to register with, in order, none repeated (none at all is a valid
    /// setup: other sources find the peers).
    pub trackers: Vec<TrackerConf>,
    /// Peer-link listen address.
    pub listen: SocketAddr,
    /// State directory.
    pub state_dir: PathBuf,
    /// Control socket path.
    pub socket: PathBuf,
    /// Download directory.
    pub download_dir: PathBuf,
    /// Limits on inbound peer connections.
    pub limits: Limits,
    /// Limits on what peers can make the transfer service hold.
    pub transfer_limits: TransferLimits,
    /// LAN discovery (mDNS).
    pub lan: LanConfig,
    /// The Mainline DHT source; `None` when it is off (the default).
    pub dht: Option<DhtConfig>,
}

/// A configuration problem; `main` exits 78 on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    File(#[from] svc::config_file::ConfigFileError),
    /// A required setting is missing.
    #[error("no {0} given: pass --{0} or set it in the config file")]
    Missing(&'static str),
    /// A value is invalid.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// Which setting.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// No home or XDG directories to derive defaults from.
    #[error("cannot find the home directory: pass --state-dir, --socket and --download-dir")]
    NoHome,
}

/// Default peer-link listen address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:0";

impl Config {
    /// Reads the config file (the one named, or the default one if it exists), then applies
    /// the flags over it.
    pub fn load(args: &Args) -> Result<Config, ConfigError> {
        Config::load_naming_file(args).map(|(config, _)| config)
    }

    /// [`Config::load`], also naming the file read (`None` when none was).
    pub fn load_naming_file(args: &Args) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let file = match &args.config {
            Some(path) => Some(path.clone()),
            None => default_config_file().filter(|path| path.exists()),
        };
        let raw = match &file {
            Some(path) => parse_file(path)?,
            None => RawConfig::default(),
        };
        Ok((raw.validate(args, &Env::from_process())?, file))
    }
}

fn parse_file(path: &Path) -> Result<RawConfig, ConfigError> {
    Ok(svc::config_file::read_toml(path)?)
}

fn default_config_file() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.config_dir().join("p2pd").join("config.toml"))
}

/// The environment defaults are derived from.
#[derive(Debug, Clone, Default)]
struct Env {
    state_home: Option<PathBuf>,
    #[cfg_attr(not(unix), allow(dead_code))] // the socket's directory: Unix only
    runtime_dir: Option<PathBuf>,
    download_dir: Option<PathBuf>,
    home: Option<PathBuf>,
    #[cfg_attr(not(unix), allow(dead_code))] // the socket's directory: Unix only
    uid: u32,
}

impl Env {
    fn from_process() -> Env {
        let base = directories::BaseDirs::new();
        Env {
            state_home: base
                .as_ref()
                .and_then(|b| b.state_dir().map(Path::to_owned)),
            runtime_dir: std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
            download_dir: directories::UserDirs::new()
                .and_then(|u| u.download_dir().map(Path::to_owned)),
            home: base.as_ref().map(|b| b.home_dir().to_owned()),
            #[cfg(unix)]
            uid: svc::current_uid(),
            #[cfg(not(unix))]
            uid: 0,
        }
    }
}

impl Env {
    /// The control socket when none is configured: under the runtime directory on Unix, the
    /// user's named pipe on Windows.
    #[cfg(unix)]
    fn default_socket(&self) -> PathBuf {
        proto::paths::default_socket(self.runtime_dir.as_deref(), self.uid)
    }

    /// The control socket when none is configured: under the runtime directory on Unix, the
    /// user's named pipe on Windows.
    #[cfg(windows)]
    fn default_socket(&self) -> PathBuf {
        proto::paths::default_pipe(&std::env::var("USERNAME").unwrap_or_default())
    }
}

impl RawConfig {
    fn validate(self, args: &Args, env: &Env) -> Result<Config, ConfigError> {
        let name = args
            .name
            .clone()
            .or(self.name)
            .ok_or(ConfigError::Missing("name"))?;
        let name = PeerName::new(&name).map_err(|e| ConfigError::Invalid {
            what: "name",
            detail: e.to_string(),
        })?;
        let trackers = trackers(
            &args.tracker,
            self.tracker,
            self.trackers,
            args.tracker_key.clone().or(self.tracker_key),
        )?;
        let listen = args
            .listen
            .or(self.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("constant address"));
        let home = || env.home.clone().ok_or(ConfigError::NoHome);
        let state_dir = match args.state_dir.clone().or(self.state_dir) {
            Some(d) => d,
            None => match &env.state_home {
                Some(s) => s.join("p2pd"),
                None => home()?.join(".local/state/p2pd"),
            },
        };
        let socket = args
            .socket
            .clone()
            .or(self.socket)
            .unwrap_or_else(|| env.default_socket());
        let download_dir = match args.download_dir.clone().or(self.download_dir) {
            Some(d) => d,
            None => match &env.download_dir {
                Some(d) => d.clone(),
                None => home()?.join("Downloads"),
            },
        };
        let lan = LanConfig::resolve(args, self.lan, self.lan_interfaces)?;
        let dht_bootstrap = if args.dht_bootstrap.is_empty() {
            self.dht_bootstrap.unwrap_or_default()
        } else {
            args.dht_bootstrap.clone()
        };
        if let Some(bad) = dht_bootstrap.iter().find(|b| !b.contains(':')) {
            return Err(ConfigError::Invalid {
                what: "dht-bootstrap",
                detail: format!("{bad:?} is not HOST:PORT"),
            });
        }
        let dht = (args.dht || self.dht.unwrap_or(false)).then_some(DhtConfig {
            bootstrap: dht_bootstrap,
        });
        Ok(Config {
            lan,
            name,
            trackers,
            listen,
            state_dir,
            socket,
            download_dir,
            transfer_limits: self.limits.transfers()?,
            limits: self.limits.validate()?,
            dht,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::PeerId;

    fn args(name: Option<&str>) -> Args {
        Args {
            name: name.map(str::to_owned),
            tracker: vec!["127.0.0.1:7070".into()],
            tracker_key: None,
            listen: None,
            state_dir: None,
            socket: None,
            download_dir: None,
            config: None,
            check_config: false,
            lan: false,
            no_lan: false,
            lan_interfaces: Vec::new(),
            dht: false,
            dht_bootstrap: Vec::new(),
            docs: Default::default(),
        }
    }

    fn env() -> Env {
        Env {
            home: Some("/home/u".into()),
            uid: 1000,
            ..Env::default()
        }
    }

    #[test]
    fn defaults_follow_xdg() {
        let c = RawConfig::default()
            .validate(&args(Some("Alice")), &env())
            .unwrap();
        assert_eq!(c.name.as_str(), "alice");
        assert_eq!(c.state_dir, PathBuf::from("/home/u/.local/state/p2pd"));
        assert_eq!(c.download_dir, PathBuf::from("/home/u/Downloads"));
        assert_eq!(c.socket, PathBuf::from("/tmp/p2pd-1000/p2pd.sock"));
        let e = Env {
            runtime_dir: Some("/run/user/1000".into()),
            state_home: Some("/s".into()),
            ..env()
        };
        let c = RawConfig::default().validate(&args(Some("a")), &e).unwrap();
        assert_eq!(c.socket, PathBuf::from("/run/user/1000/p2pd/p2pd.sock"));
        assert_eq!(c.state_dir, PathBuf::from("/s/p2pd"));
    }

    #[test]
    fn file_values_and_flag_overrides() {
        let raw: RawConfig =
            toml::from_str("name = \"bob\"\ntracker = \"t:1\"\nlisten = \"127.0.0.1:5\"").unwrap();
        let mut a = args(None);
        a.tracker = vec![];
        let c = raw.validate(&a, &env()).unwrap();
        assert_eq!(
            (
                c.name.as_str(),
                c.trackers[0].addr.as_str(),
                c.listen.port()
            ),
            ("bob", "t:1", 5)
        );
    }

    #[test]
    fn several_trackers_none_and_their_keys() {
        let key = proto::SecretKey::from_seed([1; 32]).peer_id();
        let raw: RawConfig = toml::from_str(&format!(
            "name = \"bob\"\ntracker = \"a:1\"\ntrackers = [\"b:2={key}\", \"a:1\"]"
        ))
        .unwrap();
        let mut a = args(None);
        a.tracker = vec![];
        let c = raw.validate(&a, &env()).unwrap();
        let got: Vec<(&str, Option<PeerId>)> = c
            .trackers
            .iter()
            .map(|t| (t.addr.as_str(), t.key))
            .collect();
        assert_eq!(got, vec![("a:1", None), ("b:2", Some(key))]);
        // Flags replace the file's list.
        a.tracker = vec!["c:3".into(), "d:4".into()];
        let raw: RawConfig = toml::from_str("name = \"bob\"\ntracker = \"a:1\"").unwrap();
        let c = raw.validate(&a, &env()).unwrap();
        assert_eq!(c.trackers.len(), 2);
        assert_eq!(c.trackers[1].addr, "d:4");
        // --tracker-key names one tracker's key only.
        a.name = Some("bob".into());
        a.tracker_key = Some(key.to_string());
        assert!(RawConfig::default().validate(&a, &env()).is_err());
        a.tracker = vec!["c:3".into()];
        let c = RawConfig::default().validate(&a, &env()).unwrap();
        assert_eq!(c.trackers[0].key, Some(key));
        // No tracker at all is a valid setup.
        a.tracker = vec![];
        a.tracker_key = None;
        let c = RawConfig::default().validate(&a, &env()).unwrap();
        assert!(c.trackers.is_empty());
        assert!(TrackerConf::parse("h:99999").is_err());
        assert!(TrackerConf::parse("h:1=nope").is_err());
    }

    #[test]
    fn errors() {
        assert!(toml::from_str::<RawConfig>("nmae = \"x\"").is_err());
        assert!(matches!(
            RawConfig::default().validate(&args(None), &env()),
            Err(ConfigError::Missing("name"))
        ));
        assert!(
            RawConfig::default()
                .validate(&args(Some("bad name")), &env())
                .is_err()
        );
        let mut a = args(Some("a"));
        a.tracker_key = Some("nope".into());
        assert!(RawConfig::default().validate(&a, &env()).is_err());
        a.tracker_key = None;
        a.tracker = vec!["noport".into()];
        assert!(RawConfig::default().validate(&a, &env()).is_err());
    }

    #[test]
    fn the_dht_is_off_unless_asked_for() {
        let a = args(Some("a"));
        assert_eq!(RawConfig::default().validate(&a, &env()).unwrap().dht, None);
        let raw: RawConfig =
            toml::from_str("dht = true\ndht-bootstrap = [\"127.0.0.1:6881\"]").unwrap();
        let c = raw.validate(&a, &env()).unwrap();
        assert_eq!(c.dht.unwrap().bootstrap, ["127.0.0.1:6881"]);
        // Flags: given bootstrap nodes replace the file's; `--dht` alone keeps mainline's.
        let raw: RawConfig = toml::from_str("dht-bootstrap = [\"h:1\"]").unwrap();
        let mut f = args(Some("a"));
        f.dht = true;
        f.dht_bootstrap = vec!["x:2".into(), "y:3".into()];
        assert_eq!(
            raw.validate(&f, &env()).unwrap().dht.unwrap().bootstrap,
            ["x:2", "y:3"]
        );
        f.dht_bootstrap.clear();
        let c = RawConfig::default().validate(&f, &env()).unwrap();
        assert!(c.dht.unwrap().bootstrap.is_empty());
        f.dht_bootstrap = vec!["noport".into()];
        assert!(RawConfig::default().validate(&f, &env()).is_err());
    }

    #[test]
    fn limits_default_and_from_the_file() {
        let a = args(Some("a"));
        let c = RawConfig::default().validate(&a, &env()).unwrap();
        assert_eq!(c.limits, Limits::default());
        let raw: RawConfig = toml::from_str(
            "[limits]\nhandshake-timeout-ms = 2000\nmax-pending-links = 9\nmax-pending-links-per-ip = 3",
        )
        .unwrap();
        let l = raw.validate(&a, &env()).unwrap().limits;
        assert_eq!(
            (
                l.handshake_timeout,
                l.max_pending_links,
                l.max_pending_links_per_ip
            ),
            (Duration::from_secs(2), 9, 3)
        );
        for bad in [
            "[limits]\nmax-pending-links = 0",
            "[limits]\nmax-pending-links-per-ip = 0",
            "[limits]\nhandshake-timeout-ms = 5",
        ] {
            let raw: RawConfig = toml::from_str(bad).unwrap();
            assert!(raw.validate(&a, &env()).is_err(), "{bad}");
        }
        assert!(toml::from_str::<RawConfig>("[limits]\nmax-links = 1").is_err());
    }

    #[test]
    fn transfer_limits_default_and_from_the_file() {
        let a = args(Some("a"));
        let c = RawConfig::default().validate(&a, &env()).unwrap();
        assert_eq!(c.transfer_limits, TransferLimits::default());
        let raw: RawConfig = toml::from_str(
            "[limits]\nmax-pending-offers-per-peer = 3\nmax-pending-offer-bytes-per-peer = 1000\n\
             max-pending-offers = 9\nmax-pending-offer-bytes = 5000\noffer-expiry-secs = 4\n\
             decision-timeout-secs = 2\nmax-bulk-links-per-peer = 5\n\
             transfer-progress-timeout-secs = 6",
        )
        .unwrap();
        let l = raw.validate(&a, &env()).unwrap().transfer_limits;
        assert_eq!(
            l,
            TransferLimits {
                max_offers_per_peer: 3,
                max_offer_bytes_per_peer: 1000,
                max_offers: 9,
                max_offer_bytes: 5000,
                offer_expiry: Duration::from_secs(4),
                decision_timeout: Duration::from_secs(2),
                max_bulk_links_per_peer: 5,
                progress_timeout: Duration::from_secs(6),
            }
        );
        for bad in [
            "max-pending-offers-per-peer = 0",
            "max-pending-offer-bytes-per-peer = 0",
            "max-pending-offers = 0",
            "max-pending-offer-bytes = 0",
            "offer-expiry-secs = 0",
            "decision-timeout-secs = 0",
            "max-bulk-links-per-peer = 0",
            "transfer-progress-timeout-secs = 0",
        ] {
            let raw: RawConfig = toml::from_str(&format!("[limits]\n{bad}")).unwrap();
            let e = raw.validate(&a, &env()).unwrap_err().to_string();
            assert!(e.contains(bad.split(' ').next().unwrap()), "{bad}: {e}");
        }
    }

    #[test]
    fn lan_is_on_by_default_and_follows_the_flags_over_the_file() {
        let a = args(Some("a"));
        let c = RawConfig::default().validate(&a, &env()).unwrap();
        assert_eq!(
            c.lan,
            LanConfig {
                enabled: true,
                interfaces: Vec::new()
            }
        );
        let raw =
            || -> RawConfig { toml::from_str("lan = false\nlan-interfaces = [\"eth0\"]").unwrap() };
        let c = raw().validate(&a, &env()).unwrap();
        assert_eq!(
            (c.lan.enabled, c.lan.interfaces),
            (false, vec!["eth0".into()])
        );
        let mut on = args(Some("a"));
        on.lan = true;
        on.lan_interfaces = vec!["wlan0".into(), "eth1".into()];
        let c = raw().validate(&on, &env()).unwrap();
        assert_eq!(
            (c.lan.enabled, c.lan.interfaces),
            (true, vec!["wlan0".into(), "eth1".into()])
        );
        let mut off = args(Some("a"));
        off.no_lan = true;
        assert!(
            !RawConfig::default()
                .validate(&off, &env())
                .unwrap()
                .lan
                .enabled
        );
        for bad in ["", "a/b", "eth 0", "averyveryverylongname"] {
            let mut a = args(Some("a"));
            a.lan_interfaces = vec![bad.into()];
            let e = RawConfig::default().validate(&a, &env()).unwrap_err();
            assert!(e.to_string().contains("lan-interface"), "{bad:?}: {e}");
        }
    }
}
