//! The resolved configuration written back as a config file, for `--check-config`: every key
//! with the value in force, so the output can be read as a config file itself.

use super::{Config, ConfigError, RawConfig, RawLimits};

impl Config {
    /// The configuration as TOML, in the config file's keys: every key with the value in force
    /// (defaults included); the trackers as one `trackers` list of `HOST:PORT[=KEY]`.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(&RawConfig::from(self)).map_err(|e| ConfigError::Invalid {
            what: "configuration",
            detail: format!("cannot be written as TOML: {e}"),
        })
    }
}

impl From<&Config> for RawConfig {
    fn from(c: &Config) -> RawConfig {
        let trackers = c
            .trackers
            .iter()
            .map(|t| match &t.key {
                Some(key) => format!("{}={key}", t.addr),
                None => t.addr.clone(),
            })
            .collect();
        let (m, t) = (&c.limits.messages, &c.transfer_limits);
        RawConfig {
            name: Some(c.name.as_str().to_owned()),
            tracker: None,
            trackers: Some(trackers),
            tracker_key: None,
            listen: Some(c.listen),
            state_dir: Some(c.state_dir.clone()),
            socket: Some(c.socket.clone()),
            download_dir: Some(c.download_dir.clone()),
            dht: Some(c.dht.is_some()),
            dht_bootstrap: Some(
                c.dht
                    .as_ref()
                    .map(|d| d.bootstrap.clone())
                    .unwrap_or_default(),
            ),
            lan: Some(c.lan.enabled),
            lan_interfaces: Some(c.lan.interfaces.clone()),
            limits: RawLimits {
                handshake_timeout_ms: Some(
                    u64::try_from(c.limits.handshake_timeout.as_millis()).unwrap_or(u64::MAX),
                ),
                max_pending_links: Some(c.limits.max_pending_links),
                max_pending_links_per_ip: Some(c.limits.max_pending_links_per_ip),
                tracker_subscribe_max: Some(c.limits.tracker_subscribe_max),
                message_rate: Some(m.rate),
                message_burst: Some(m.burst),
                message_bytes_rate: Some(m.bytes_rate),
                message_bytes_burst: Some(m.bytes_burst),
                untrusted_bytes_per_peer: Some(m.quota_per_peer),
                untrusted_bytes_total: Some(m.quota_total),
                max_pending_offers_per_peer: Some(t.max_offers_per_peer),
                max_pending_offer_bytes_per_peer: Some(t.max_offer_bytes_per_peer),
                max_pending_offers: Some(t.max_offers),
                max_pending_offer_bytes: Some(t.max_offer_bytes),
                offer_expiry_secs: Some(t.offer_expiry.as_secs()),
                decision_timeout_secs: Some(t.decision_timeout.as_secs()),
                max_bulk_links_per_peer: Some(t.max_bulk_links_per_peer),
                transfer_progress_timeout_secs: Some(t.progress_timeout.as_secs()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::super::{Args, Env};
    use super::*;

    fn env() -> Env {
        Env {
            home: Some("/home/alice".into()),
            uid: 1000,
            ..Env::default()
        }
    }

    #[test]
    fn the_resolved_config_reads_back_as_itself() {
        let args = Args::parse_from(["p2pd", "--dht", "--dht-bootstrap", "127.0.0.1:6881"]);
        let file: RawConfig = toml::from_str(
            "name = \"alice\"\n\
             trackers = [\"a.example:7070\", \"b.example:7070\"]\n\
             lan-interfaces = [\"eth0\"]\n\
             [limits]\n\
             message-rate = 7\n\
             offer-expiry-secs = 3600\n",
        )
        .expect("parse");
        let config = file.validate(&args, &env()).expect("valid");
        let text = config.to_toml().expect("toml");
        assert!(text.contains("name = \"alice\""), "{text}");
        assert!(text.contains("message-rate = 7"), "{text}");
        assert!(text.contains("handshake-timeout-ms = 10000"), "{text}");
        let again: RawConfig = toml::from_str(&text).expect("the output is a config file");
        let plain = Args::parse_from(["p2pd"]);
        assert_eq!(again.validate(&plain, &env()).expect("valid"), config);
    }
}
