//! Command-line syntax (clap derive). Validation beyond syntax belongs to the commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Control a running p2pd: status, peers, messages, files, events.
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
    /// Stream events (peers, tracker link, messages, transfers) until interrupted
    Watch,
    /// Send one chat message; it is queued if the peer is offline
    Msg {
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
        /// The text; several words are joined with single spaces (at most 64 KiB)
        #[arg(
            value_name = "TEXT",
            required = true,
            num_args = 1..,
            value_parser = clap::builder::NonEmptyStringValueParser::new()
        )]
        text: Vec<String>,
    },
    /// The conversation with a peer, oldest first
    History {
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
        /// Show only the last N messages [p2pd's default: 50]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
    },
    /// Chat with a peer: lines typed are sent, incoming messages shown
    ///
    /// With stdin not a terminal, send each line read, and exit at end of input once all are
    /// delivered or queued (at most 30 s later), printing "N delivered, M queued" to stderr.
    Chat {
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
    },
    /// Offer a file or a directory to a peer, and wait until it has it
    ///
    /// Shows progress on stderr (a bar on a terminal). Exits 0 when the peer has every file,
    /// verified; 1 when it declined, or the transfer was cancelled or failed. An offer to an
    /// offline peer waits in p2pd until the peer is back; ctrl-c stops waiting (exit 0), the
    /// transfer goes on.
    Send {
        /// The file or directory to send
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
        /// Print the transfer id and return at once
        #[arg(long)]
        no_wait: bool,
    },
    /// Incoming offers, and running and finished transfers, with rate and ETA
    Transfers,
    /// Accept an incoming offer
    Accept {
        /// The transfer: its id, or at least 6 characters of it
        #[arg(value_name = "ID")]
        id: String,
        /// Save the files in DIR [default: p2pd's download directory]
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
    },
    /// Decline an incoming offer
    Decline {
        /// The transfer: its id, or at least 6 characters of it
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Cancel a transfer, incoming or outgoing
    Cancel {
        /// The transfer: its id, or at least 6 characters of it
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Mark a peer trusted
    Trust {
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
        /// Also accept its file offers without asking
        #[arg(long)]
        auto_accept: bool,
    },
    /// Remove a peer's trust (and auto-accept)
    Untrust {
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
    },
    /// Refuse links and messages from a peer
    Block {
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
    },
    /// Lift a block
    Unblock {
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
    },
    /// Accept the new key shown for a peer's name (after a real key change): the old pin
    /// goes, a block stays, the conversation stays reachable by the name
    ForgetKey {
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
        /// Forget the pinned key even though no other key is shown for the name
        #[arg(long)]
        force: bool,
    },
    /// Rotate this daemon's identity key: the name moves to a new key with a statement
    /// signed by the old one, which peers check and follow by themselves
    ///
    /// p2pd restarts with the new key at once; the statement waits in the state directory
    /// until the tracker has accepted it. The old key is kept as identity.key.old.
    Rekey,
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
    fn message_commands_parse() {
        let cli = Cli::try_parse_from(["p2pctl", "msg", "bob", "hello", "there", "--json"])
            .expect("parse");
        assert!(cli.json);
        match cli.command {
            Command::Msg { peer, text } => {
                assert_eq!(peer, "bob");
                assert_eq!(text, ["hello", "there"]);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["p2pctl", "msg", "bob", "--", "-5 degrees"]).expect("parse");
        assert!(matches!(cli.command, Command::Msg { text, .. } if text == ["-5 degrees"]));
        let cli = Cli::try_parse_from(["p2pctl", "history", "bob", "--limit", "3"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::History { limit: Some(3), .. }
        ));
        let cli = Cli::try_parse_from(["p2pctl", "trust", "bob", "--auto-accept"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Trust {
                auto_accept: true,
                ..
            }
        ));
        let cli = Cli::try_parse_from(["p2pctl", "forget-key", "bob"]).expect("parse");
        assert!(matches!(cli.command, Command::ForgetKey { peer, force: false } if peer == "bob"));
        let cli = Cli::try_parse_from(["p2pctl", "forget-key", "bob", "--force"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::ForgetKey { force: true, .. }
        ));
    }

    #[test]
    fn transfer_commands_parse() {
        let cli =
            Cli::try_parse_from(["p2pctl", "send", "photos", "bob", "--no-wait"]).expect("parse");
        match cli.command {
            Command::Send {
                path,
                peer,
                no_wait,
            } => {
                assert_eq!(path, PathBuf::from("photos"));
                assert_eq!(peer, "bob");
                assert!(no_wait);
            }
            other => panic!("{other:?}"),
        }
        let cli =
            Cli::try_parse_from(["p2pctl", "accept", "abcd12", "--to", "/tmp/in"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Accept { id, to: Some(to) } if id == "abcd12" && to == std::path::Path::new("/tmp/in")
        ));
        let cli = Cli::try_parse_from(["p2pctl", "accept", "abcd12"]).expect("parse");
        assert!(matches!(cli.command, Command::Accept { to: None, .. }));
        let cli = Cli::try_parse_from(["p2pctl", "--json", "transfers"]).expect("parse");
        assert!(cli.json && matches!(cli.command, Command::Transfers));
        let cli = Cli::try_parse_from(["p2pctl", "decline", "abcd12"]).expect("parse");
        assert!(matches!(cli.command, Command::Decline { id } if id == "abcd12"));
        let cli = Cli::try_parse_from(["p2pctl", "cancel", "abcd12"]).expect("parse");
        assert!(matches!(cli.command, Command::Cancel { id } if id == "abcd12"));
    }

    #[test]
    fn usage_errors_exit_two() {
        for args in [
            &["p2pctl"][..],
            &["p2pctl", "nope"],
            &["p2pctl", "peers", "extra"],
            &["p2pctl", "msg", "bob"],
            &["p2pctl", "msg", "bob", ""],
            &["p2pctl", "history"],
            &["p2pctl", "history", "bob", "--limit", "0"],
            &["p2pctl", "chat"],
            &["p2pctl", "chat", "bob", "carol"],
            &["p2pctl", "untrust", "bob", "--auto-accept"],
            &["p2pctl", "send", "file"],
            &["p2pctl", "send", "file", "bob", "carol"],
            &["p2pctl", "transfers", "x"],
            &["p2pctl", "accept"],
            &["p2pctl", "accept", "abcd12", "--to"],
            &["p2pctl", "decline", "abcd12", "--to", "/x"],
            &["p2pctl", "cancel"],
        ] {
            let err = Cli::try_parse_from(args).expect_err("usage error");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
