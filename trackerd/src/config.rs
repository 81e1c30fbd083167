//! trackerd configuration: command-line flags over a strict TOML file, validated in one place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "trackerd",
    version,
    about = "Registry service: peers register and discover each other"
)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory for the key and the name database.
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Strict TOML configuration file.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Check the configuration, print it, and exit.
    #[arg(long)]
    pub check_config: bool,
    /// The admin socket of the running tracker (default: $RUNTIME_DIRECTORY/admin.sock,
    /// else <state-dir>/run/admin.sock).
    #[arg(long, value_name = "PATH", global = true)]
    pub admin_socket: Option<PathBuf>,
    /// `--generate-completions SHELL`, `--generate-manpage`.
    #[command(flatten)]
    pub docs: svc::docs::DocFlags,
    /// An operator command for the running tracker, instead of running one.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Operator commands, sent to a running tracker over its admin socket.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Free NAME: its binding is removed and a connected holder is dropped. Exits 1 if the
    /// name is not bound.
    Release {
        /// The name to free.
        name: String,
    },
}

/// Where the shipped system unit's tracker listens for admin commands
/// (`RuntimeDirectory=trackerd`); `trackerd release` uses it when nothing else says where.
pub const SYSTEM_ADMIN_SOCKET: &str = "/run/trackerd/admin.sock";

/// The file as written; every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawConfig {
    listen: Option<SocketAddr>,
    state_dir: Option<PathBuf>,
    lease_secs: Option<u64>,
    name_lapse: Option<RawDuration>,
    admin_socket: Option<PathBuf>,
    #[serde(default)]
    limits: RawLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    handshake_timeout_ms: Option<u64>,
    registrations_per_ip_per_sec: Option<f64>,
    registration_burst: Option<u32>,
}

/// Connection and rate limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Connections held at once, in all. When reached, the longest-idle registered
    /// connection is closed to make room; only without one is a new connection refused.
    pub max_connections: usize,
    /// Connections held at once from one source: an IPv4 address or an IPv6 /64.
    pub max_connections_per_ip: usize,
    /// Time allowed from accept to the peer's `Hello`, TLS included.
    pub handshake_timeout: Duration,
    /// Sustained registrations per second per source (IPv4 address or IPv6 /64).
    pub registrations_per_ip_per_sec: f64,
    /// Registrations one source may make in a burst.
    pub registration_burst: u32,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// State directory (key, database, activity log).
    pub state_dir: PathBuf,
    /// A peer silent this long is dropped.
    pub lease: Duration,
    /// A name binding unused this long (its key neither registered nor stayed connected)
    /// may be taken by another key.
    pub name_lapse: Duration,
    /// The admin socket (`trackerd release`).
    pub admin_socket: PathBuf,
    /// Limits.
    pub limits: Limits,
}

/// A configuration problem; `main` exits 78 (EX_CONFIG) on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    File(#[from] svc::config_file::ConfigFileError),
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
    /// No state directory was given and none can be derived.
    #[error("no state directory: pass --state-dir, or set STATE_DIRECTORY or HOME")]
    NoStateDir,
}

/// Default time after which an unused name binding lapses: 180 days.
pub const DEFAULT_NAME_LAPSE: Duration = Duration::from_secs(180 * 86_400);

/// A duration as written: whole seconds, or a string of a number and a unit (`"90s"`,
/// `"15m"`, `"12h"`, `"180d"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Secs(u64),
    Text(String),
}

impl RawDuration {
    fn parse(self) -> Result<Duration, ConfigError> {
        let text = match self {
            RawDuration::Secs(s) => return Ok(Duration::from_secs(s)),
            RawDuration::Text(t) => t,
        };
        let bad = || {
            ConfigError::Invalid(format!(
                "name-lapse {text:?}: expected seconds, or a number with a unit s, m, h or d (such as \"180d\")"
            ))
        };
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mult = match unit.trim() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        n.checked_mul(mult).map(Duration::from_secs).ok_or_else(bad)
    }
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7070";

impl Config {
    /// Reads the file named by `--config` (if any), then applies the flags over it.
    pub fn load(args: &Args) -> Result<Config, ConfigError> {
        let raw = match &args.config {
            Some(path) => parse_file(path)?,
            None => RawConfig::default(),
        };
        raw.validate(args)
    }

    /// The admin socket a `trackerd release` talks to: `--admin-socket`, else the file's
    /// `admin-socket`, else `$RUNTIME_DIRECTORY/admin.sock`, else `<state-dir>/run/admin.sock`
    /// when a state directory is given (flag, file or `$STATE_DIRECTORY`), else
    /// [`SYSTEM_ADMIN_SOCKET`].
    pub fn admin_socket_of_running(args: &Args) -> Result<PathBuf, ConfigError> {
        let raw = match &args.config {
            Some(path) => parse_file(path)?,
            None => RawConfig::default(),
        };
        let state_dir = args
            .state_dir
            .clone()
            .or(raw.state_dir)
            .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from));
        Ok(admin_socket(args, raw.admin_socket, state_dir.as_deref())
            .unwrap_or_else(|| SYSTEM_ADMIN_SOCKET.into()))
    }
}

/// The admin socket from the flag, the file, `$RUNTIME_DIRECTORY`, or `state_dir`.
fn admin_socket(args: &Args, file: Option<PathBuf>, state_dir: Option<&Path>) -> Option<PathBuf> {
    args.admin_socket
        .clone()
        .or(file)
        .or_else(|| {
            std::env::var_os("RUNTIME_DIRECTORY").map(|d| PathBuf::from(d).join("admin.sock"))
        })
        .or_else(|| state_dir.map(|d| d.join("run").join("admin.sock")))
}

fn parse_file(path: &Path) -> Result<RawConfig, ConfigError> {
    Ok(svc::config_file::read_toml(path)?)
}

impl RawConfig {
    fn validate(self, args: &Args) -> Result<Config, ConfigError> {
        let listen = args
            .listen
            .or(self.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("constant address"));
        let state_dir = match args.state_dir.clone().or(self.state_dir) {
            Some(dir) => dir,
            None => default_state_dir().ok_or(ConfigError::NoStateDir)?,
        };
        let lease_secs = self.lease_secs.unwrap_or(30);
        if !(2..=3600).contains(&lease_secs) {
            return Err(ConfigError::Invalid(format!(
                "lease-secs must be 2..=3600, got {lease_secs}"
            )));
        }
        let name_lapse = match self.name_lapse {
            Some(raw) => raw.parse()?,
            None => DEFAULT_NAME_LAPSE,
        };
        if name_lapse.is_zero() {
            return Err(ConfigError::Invalid("name-lapse must be above 0".into()));
        }
        let l = self.limits;
        let limits = Limits {
            max_connections: l.max_connections.unwrap_or(16_384),
            max_connections_per_ip: l.max_connections_per_ip.unwrap_or(256),
            handshake_timeout: Duration::from_millis(l.handshake_timeout_ms.unwrap_or(10_000)),
            registrations_per_ip_per_sec: l.registrations_per_ip_per_sec.unwrap_or(20.0),
            registration_burst: l.registration_burst.unwrap_or(200),
        };
        if limits.max_connections == 0 || limits.max_connections_per_ip == 0 {
            return Err(ConfigError::Invalid(
                "connection limits must be at least 1".into(),
            ));
        }
        if limits.handshake_timeout < Duration::from_millis(100) {
            return Err(ConfigError::Invalid(
                "handshake-timeout-ms must be at least 100".into(),
            ));
        }
        if limits.registrations_per_ip_per_sec.is_nan()
            || limits.registrations_per_ip_per_sec <= 0.0
            || limits.registration_burst == 0
        {
            return Err(ConfigError::Invalid(
                "registration rate and burst must be positive".into(),
            ));
        }
        let admin_socket = admin_socket(args, self.admin_socket, Some(&state_dir))
            .unwrap_or_else(|| state_dir.join("run").join("admin.sock"));
        Ok(Config {
            listen,
            state_dir,
            lease: Duration::from_secs(lease_secs),
            name_lapse,
            admin_socket,
            limits,
        })
    }
}

fn default_state_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return Some(PathBuf::from(dir).join("trackerd"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/trackerd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Args {
        Args {
            listen: None,
            state_dir: Some("/tmp/x".into()),
            config: None,
            check_config: false,
            admin_socket: None,
            docs: Default::default(),
            command: None,
        }
    }

    #[test]
    fn defaults_and_flags_win() {
        let c = RawConfig::default().validate(&args()).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(c.lease, Duration::from_secs(30));
        let raw: RawConfig =
            toml::from_str("listen = \"127.0.0.1:1\"\n[limits]\nmax-connections = 5\n").unwrap();
        let mut a = args();
        a.listen = Some("127.0.0.1:2".parse().unwrap());
        let c = raw.validate(&a).unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.limits.max_connections, 5);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(toml::from_str::<RawConfig>("lisen = \"x\"").is_err());
        assert!(toml::from_str::<RawConfig>("[limits]\nmax-conn = 1").is_err());
        let raw: RawConfig = toml::from_str("lease-secs = 1").unwrap();
        assert!(raw.validate(&args()).is_err());
    }

    #[test]
    fn name_lapse_takes_seconds_or_a_unit() {
        let lapse = |text: &str| {
            toml::from_str::<RawConfig>(text)
                .unwrap()
                .validate(&args())
                .map(|c| c.name_lapse)
        };
        assert_eq!(lapse("").unwrap(), DEFAULT_NAME_LAPSE);
        assert_eq!(lapse("name-lapse = 3").unwrap(), Duration::from_secs(3));
        assert_eq!(
            lapse("name-lapse = \"3s\"").unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(
            lapse("name-lapse = \"2m\"").unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            lapse("name-lapse = \"5h\"").unwrap(),
            Duration::from_secs(18_000)
        );
        assert_eq!(
            lapse("name-lapse = \"180d\"").unwrap(),
            Duration::from_secs(180 * 86_400)
        );
        for bad in [
            "0",
            "\"0d\"",
            "\"d\"",
            "\"3w\"",
            "\"-1s\"",
            "\"99999999999999999999d\"",
        ] {
            assert!(lapse(&format!("name-lapse = {bad}")).is_err(), "{bad}");
        }
    }
}
