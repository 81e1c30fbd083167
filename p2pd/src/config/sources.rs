//! The discovery sources' settings: trackers (`--tracker`, `trackers = [...]`, `HOST:PORT=KEY`),
//! the LAN (`--lan`, `--lan-interface`) and the DHT (`--dht`, `--dht-bootstrap`).

use proto::PeerId;

use super::{Args, ConfigError};

/// The DHT source's settings (`--dht`, `--dht-bootstrap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtConfig {
    /// The nodes to bootstrap from, HOST:PORT as given (resolved when the DHT starts); empty
    /// means the Mainline DHT's public bootstrap nodes.
    pub bootstrap: Vec<String>,
}

/// LAN discovery: `--lan`/`--no-lan` (`lan = true` by default) and `--lan-interface`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanConfig {
    /// Announce this peer and browse for others by mDNS.
    pub enabled: bool,
    /// The network interfaces to use; empty means every one.
    pub interfaces: Vec<String>,
}

impl LanConfig {
    /// The flags over the file's `lan` and `lan-interfaces`; flags win, and interface names
    /// are checked (1 to 15 bytes, no `/`, whitespace or control character).
    pub(super) fn resolve(
        args: &Args,
        lan: Option<bool>,
        interfaces: Option<Vec<String>>,
    ) -> Result<LanConfig, ConfigError> {
        let enabled = if args.no_lan {
            false
        } else {
            args.lan || lan.unwrap_or(true)
        };
        let interfaces = if args.lan_interfaces.is_empty() {
            interfaces.unwrap_or_default()
        } else {
            args.lan_interfaces.clone()
        };
        for name in &interfaces {
            let ok = (1..=15).contains(&name.len())
                && !name
                    .chars()
                    .any(|c| c == '/' || c.is_whitespace() || c.is_control());
            if !ok {
                return Err(ConfigError::Invalid {
                    what: "lan-interface",
                    detail: format!("{name:?} is not a network interface name"),
                });
            }
        }
        Ok(LanConfig {
            enabled,
            interfaces,
        })
    }
}

/// One configured tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConf {
    /// Its address as given, HOST:PORT (resolved at each connection).
    pub addr: String,
    /// The key to insist on, if given; else the first key seen is pinned for this address.
    pub key: Option<PeerId>,
}

impl TrackerConf {
    /// Parses `HOST:PORT` or `HOST:PORT=ID`.
    pub fn parse(text: &str) -> Result<TrackerConf, ConfigError> {
        let (addr, key) = match text.split_once('=') {
            Some((addr, key)) => (addr.trim(), Some(parse_key(key.trim())?)),
            None => (text.trim(), None),
        };
        match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(TrackerConf {
                    addr: addr.to_owned(),
                    key,
                })
            }
            _ => Err(ConfigError::Invalid {
                what: "tracker",
                detail: format!("{addr:?} is not HOST:PORT"),
            }),
        }
    }
}

fn parse_key(text: &str) -> Result<PeerId, ConfigError> {
    text.parse()
        .map_err(|e: proto::identity::IdentityError| ConfigError::Invalid {
            what: "tracker-key",
            detail: e.to_string(),
        })
}

/// The trackers: the flags' if any, else the file's `tracker` then its `trackers` (merged,
/// duplicates dropped). `tracker_key` (flag over file) is the key of the one tracker and is
/// refused with several.
pub(super) fn trackers(
    flags: &[String],
    file_one: Option<String>,
    file_many: Option<Vec<String>>,
    tracker_key: Option<String>,
) -> Result<Vec<TrackerConf>, ConfigError> {
    let texts: Vec<String> = if flags.is_empty() {
        file_one
            .into_iter()
            .chain(file_many.unwrap_or_default())
            .collect()
    } else {
        flags.to_vec()
    };
    let mut out: Vec<TrackerConf> = Vec::with_capacity(texts.len());
    for t in &texts {
        let conf = TrackerConf::parse(t)?;
        match out.iter().find(|c| c.addr == conf.addr) {
            Some(c) if c.key.is_some() && conf.key.is_some() && c.key != conf.key => {
                return Err(ConfigError::Invalid {
                    what: "tracker",
                    detail: format!("{} is given twice with different keys", conf.addr),
                });
            }
            Some(_) => {}
            None => out.push(conf),
        }
    }
    if let Some(key) = tracker_key {
        let key = parse_key(&key)?;
        match out.as_mut_slice() {
            [one] if one.key.is_none_or(|k| k == key) => one.key = Some(key),
            [_] => {
                return Err(ConfigError::Invalid {
                    what: "tracker-key",
                    detail: "it differs from the key given as HOST:PORT=ID".into(),
                });
            }
            _ => {
                return Err(ConfigError::Invalid {
                    what: "tracker-key",
                    detail: format!(
                        "it names the key of a single tracker, and {} are given: write each \
                         tracker's key as HOST:PORT=ID",
                        out.len()
                    ),
                });
            }
        }
    }
    Ok(out)
}
