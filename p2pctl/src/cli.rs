//! Command-line syntax (clap derive). Validation beyond syntax belongs to the commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Control a running p2pd: status, peers, events.
#[derive(Debug, Parser)]
#[command(name = "p2pctl", version, about, propagate_version = true)]
#[command(
    after_help = "Exit status: 0 success, 1 the operation failed, 2 usage error, 3 p2pd not reachable."
)]
pub(crate) struct Cli {
    /// Control socket of p2pd [default: $XDG_RUNTIME_DIR/p2pd/p2pd.sock]
    #[arg(long, global = true, value_name = "PATH", env = proto::paths::SOCKET_ENV)]
    pub(crate) socket: Option<PathBuf>,

    /// Print JSON instead of text: one document, or one object per line for streams
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Identity, tracker link, listen address, counts and resource use
    Status,
    /// Known peers: name, short id, address, online or offline, since when
    Peers,
    /// Stream events (peers joining and leaving, tracker link changes) until interrupted
    Watch,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let cli = Cli::try_parse_from(["p2pctl", "--socket", "/a.sock", "status", "--json"])
            .expect("parse");
        assert!(cli.json);
        assert_eq!(cli.socket, Some(PathBuf::from("/a.sock")));
        assert!(matches!(cli.command, Command::Status));
        let cli = Cli::try_parse_from(["p2pctl", "--json", "watch", "--socket", "/b.sock"])
            .expect("parse");
        assert!(cli.json && matches!(cli.command, Command::Watch));
        assert_eq!(cli.socket, Some(PathBuf::from("/b.sock")));
    }

    #[test]
    fn usage_errors_exit_two() {
        for args in [
            &["p2pctl"][..],
            &["p2pctl", "nope"],
            &["p2pctl", "peers", "extra"],
        ] {
            let err = Cli::try_parse_from(args).expect_err("usage error");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
