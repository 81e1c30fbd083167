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

/// A SIZE: bytes, or a number with a binary unit `K`, `M`, `G` or `T` (`500M`, `1G`).
pub(crate) fn size_arg(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a size (such as 4096, 500M, 1G)");
    let (digits, shift) = match text.strip_suffix(['K', 'k', 'M', 'm', 'G', 'g', 'T', 't']) {
        Some(d) => {
            let unit = text.chars().last().map(|c| c.to_ascii_uppercase());
            let shift = match unit {
                Some('K') => 10,
                Some('M') => 20,
                Some('G') => 30,
                _ => 40,
            };
            (d, shift)
        }
        None => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

/// A DURATION (`45s`, `10m`, `2h`, `30d`) in whole seconds, at least one.
fn age_arg(text: &str) -> Result<u64, String> {
    match proto::timefmt::parse_duration_ms(text).map(|ms| ms / 1000) {
        Some(s) if s > 0 => Ok(s),
        _ => Err(format!("{text:?} is not a duration (such as 10m, 2h, 30d)")),
    }
}

/// Checks a `--since` TIME (a usage error otherwise); the command turns a duration into a
/// time when it runs.
fn since_arg(text: &str) -> Result<String, String> {
    crate::cmd::check_since(text).map(|()| text.to_owned())
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
    /// The activity log, oldest first, times in UTC: all of it or one peer's
    Log {
        /// Only this peer's records: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: Option<String>,
        /// Only records since TIME: a duration (45s, 10m, 2h, 3d) or an RFC 3339 time
        /// (2026-12-05T10:00:00Z)
        #[arg(long, value_name = "TIME", value_parser = since_arg)]
        since: Option<String>,
        /// Show only the last N records [p2pd's default: 1000]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
        /// Then print each new record until interrupted
        #[arg(long)]
        follow: bool,
    },
    /// Chat with a peer: lines typed are sent, incoming messages shown
    ///
    /// With stdin not a terminal, send each line read, and exit at end of input once all are
    /// delivered or queued (at most 30 s later), printing "N delivered, M queued" to stderr.
    Chat {
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
        /// On a terminal, first show the last N messages with PEER (0: none)
        #[arg(long, value_name = "N", default_value_t = 20)]
        last: u32,
    },
    /// Offer files or directories to a peer, as one transfer, and wait until it has them
    ///
    /// Shows progress on stderr (a bar on a terminal). Exits 0 when the peer has every file,
    /// verified; 1 when it declined, or the transfer was cancelled or failed. An offer to an
    /// offline peer waits in p2pd until the peer is back; ctrl-c stops waiting (exit 0), the
    /// transfer goes on. Symlinks and special files inside a directory are not sent; each is
    /// named on stderr.
    Send {
        /// The files or directories to send
        #[arg(value_name = "PATH", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
        /// Print the transfer id and return at once
        #[arg(long)]
        no_wait: bool,
    },
    /// Incoming offers, and running and finished transfers, with rate, ETA, first file and time
    #[command(args_conflicts_with_subcommands = true)]
    Transfers {
        /// Also the finished transfers that ended more than 7 days ago
        #[arg(long)]
        all: bool,
        /// `clear`: forget the finished transfers
        #[command(subcommand)]
        action: Option<TransfersAction>,
    },
    /// Accept an incoming offer
    Accept {
        /// The transfer: its id, or at least 6 characters of it
        #[arg(value_name = "ID")]
        id: String,
        /// Save the files in DIR, which must exist [default: p2pd's download directory]
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Create DIR (and its missing parents) if it does not exist
        #[arg(long, requires = "to")]
        mkdir: bool,
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
    /// This daemon's shares: directories other peers may read (and write) once granted
    Share {
        /// What to do with them.
        #[command(subcommand)]
        action: ShareAction,
    },
    /// Give a peer a right on one of our shares (write implies read)
    Grant {
        /// The share's name
        #[arg(value_name = "SHARE")]
        share: String,
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
        /// read or write
        #[arg(value_name = "RIGHT")]
        right: Right,
    },
    /// Take a peer's right on one of our shares away; its next request is refused
    Revoke {
        /// The share's name
        #[arg(value_name = "SHARE")]
        share: String,
        /// The peer: its name, or at least 8 characters of its id
        #[arg(value_name = "PEER")]
        peer: String,
    },
    /// List a peer's shares, or a directory in one: PEER, PEER:SHARE or PEER:SHARE/PATH
    Ls {
        /// PEER[:SHARE[/PATH]]
        #[arg(value_name = "PEER[:SHARE[/PATH]]")]
        target: String,
        /// Sizes, modification times and content ids (once the owner has hashed the file)
        #[arg(short = 'l', long)]
        long: bool,
        /// Subdirectories too (at most 100,000 entries)
        #[arg(short = 'R', long)]
        recursive: bool,
    },
    /// Pull a file or directory from a peer's share; waits until every file is verified
    Get {
        /// PEER:SHARE[/PATH]
        #[arg(value_name = "PEER:SHARE[/PATH]")]
        target: String,
        /// Where it goes, as with `cp -r`: an existing directory receives it inside; a new
        /// path (in an existing directory) names it [default: p2pd's download directory]
        #[arg(value_name = "DEST")]
        dest: Option<PathBuf>,
        /// More peers holding the same file: it is fetched from all of them at once
        #[arg(long, value_name = "PEER,...", value_delimiter = ',')]
        from: Vec<String>,
        /// Print the transfer id and return at once
        #[arg(long)]
        no_wait: bool,
    },
    /// Write a file or directory into a peer's share (needs write); what it replaces is kept
    ///
    /// Like cp -r: an existing directory at the target receives PATH inside it; a target that
    /// does not exist names the result. Each file replaces only what the target held when
    /// p2pctl looked at it: if it changed since, the put fails (exit 1) saying so.
    Put {
        /// The local file or directory
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// PEER:SHARE[/PATH]
        #[arg(value_name = "PEER:SHARE[/PATH]")]
        target: String,
        /// Replace whatever the target holds, even if it changed since it was looked at
        #[arg(long)]
        force: bool,
    },
    /// Past versions of a file in a share: number, size, when replaced, by whom, content id
    Versions {
        /// PEER:SHARE/PATH, or SHARE/PATH for one of our shares
        #[arg(value_name = "[PEER:]SHARE/PATH")]
        target: String,
    },
    /// Put a kept version back (what is there now is kept as a version in turn)
    #[command(disable_version_flag = true)]
    Restore {
        /// PEER:SHARE/PATH, or SHARE/PATH for one of our shares
        #[arg(value_name = "[PEER:]SHARE/PATH")]
        target: String,
        /// The version's number, as 'versions' lists it
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        version: u64,
    },
    /// Remove a file (kept there as a version) or an empty directory of a peer's share
    Rm {
        /// PEER:SHARE/PATH
        #[arg(value_name = "PEER:SHARE/PATH")]
        target: String,
    },
    /// Make a directory in a peer's share (its parent must exist)
    Mkdir {
        /// PEER:SHARE/PATH
        #[arg(value_name = "PEER:SHARE/PATH")]
        target: String,
    },
    /// Move a file or directory within a peer's share, never over an existing one
    Mv {
        /// PEER:SHARE/FROM
        #[arg(value_name = "PEER:SHARE/FROM")]
        from: String,
        /// SHARE/TO, in the same share
        #[arg(value_name = "SHARE/TO")]
        to: String,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell to complete for
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of p2pctl and all its commands
    Manpage,
}

/// `transfers` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TransfersAction {
    /// Forget every finished transfer (done, declined, cancelled, failed, expired); those
    /// under way and offers waiting stay
    Clear,
}

/// `share` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ShareAction {
    /// Serve a directory as a share named NAME (nobody may use it until granted)
    Add {
        /// The share's name: one path component
        #[arg(value_name = "NAME")]
        name: String,
        /// The directory to serve
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Versions kept per path of what peers replace or remove [default: 5]
        #[arg(long, value_name = "N")]
        keep_versions: Option<u32>,
        /// Cap on the bytes of the share's kept versions (500M, 1G) [default: none]
        #[arg(long, value_name = "SIZE", value_parser = size_arg)]
        max_version_bytes: Option<u64>,
        /// Drop versions older than this (10m, 2h, 30d) [default: never]
        #[arg(long, value_name = "DURATION", value_parser = age_arg)]
        max_version_age: Option<u64>,
        /// Cap on the share's total bytes that peers' writes may reach (500M, 1G)
        /// [default: none]
        #[arg(long, value_name = "SIZE", value_parser = size_arg)]
        quota: Option<u64>,
    },
    /// Stop serving a share (the directory is left as it is) and drop its grants
    Rm {
        /// The share's name
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Our shares, with their counts and grants
    Ls,
}

/// A right on a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Right {
    /// List and read.
    Read,
    /// Also write, remove, rename.
    Write,
}

impl From<Right> for proto::share::Access {
    fn from(r: Right) -> Self {
        match r {
            Right::Read => proto::share::Access::Read,
            Right::Write => proto::share::Access::Write,
        }
    }
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
                paths,
                peer,
                no_wait,
            } => {
                assert_eq!(paths, [PathBuf::from("photos")]);
                assert_eq!(peer, "bob");
                assert!(no_wait);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["p2pctl", "send", "a", "b/c", "bob"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Send { paths, peer, .. } if paths == [PathBuf::from("a"), PathBuf::from("b/c")] && peer == "bob"
        ));
        assert!(Cli::try_parse_from(["p2pctl", "send", "bob"]).is_err());
        let cli =
            Cli::try_parse_from(["p2pctl", "accept", "abcd12", "--to", "/tmp/in"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Accept { id, to: Some(to), mkdir: false } if id == "abcd12" && to == std::path::Path::new("/tmp/in")
        ));
        let cli = Cli::try_parse_from(["p2pctl", "accept", "abcd12", "--to", "/x", "--mkdir"])
            .expect("parse");
        assert!(matches!(cli.command, Command::Accept { mkdir: true, .. }));
        // --mkdir names no directory of its own.
        assert!(Cli::try_parse_from(["p2pctl", "accept", "abcd12", "--mkdir"]).is_err());
        let cli = Cli::try_parse_from(["p2pctl", "accept", "abcd12"]).expect("parse");
        assert!(matches!(cli.command, Command::Accept { to: None, .. }));
        let cli = Cli::try_parse_from(["p2pctl", "--json", "transfers"]).expect("parse");
        assert!(
            cli.json
                && matches!(
                    cli.command,
                    Command::Transfers {
                        all: false,
                        action: None
                    }
                )
        );
        let cli = Cli::try_parse_from(["p2pctl", "transfers", "--all"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Transfers {
                all: true,
                action: None
            }
        ));
        let cli = Cli::try_parse_from(["p2pctl", "transfers", "clear"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Transfers {
                action: Some(TransfersAction::Clear),
                ..
            }
        ));
        assert!(Cli::try_parse_from(["p2pctl", "transfers", "--all", "clear"]).is_err());
        let cli = Cli::try_parse_from(["p2pctl", "decline", "abcd12"]).expect("parse");
        assert!(matches!(cli.command, Command::Decline { id } if id == "abcd12"));
        let cli = Cli::try_parse_from(["p2pctl", "cancel", "abcd12"]).expect("parse");
        assert!(matches!(cli.command, Command::Cancel { id } if id == "abcd12"));
    }

    #[test]
    fn share_commands_parse() {
        let cli = Cli::try_parse_from([
            "p2pctl",
            "share",
            "add",
            "docs",
            "/d",
            "--keep-versions",
            "3",
        ])
        .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Share { action: ShareAction::Add { name, keep_versions: Some(3), .. } } if name == "docs"
        ));
        let cli = Cli::try_parse_from([
            "p2pctl",
            "share",
            "add",
            "docs",
            "/d",
            "--max-version-bytes",
            "500M",
            "--max-version-age",
            "30d",
            "--quota",
            "1G",
        ])
        .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Share {
                action: ShareAction::Add {
                    max_version_bytes: Some(524_288_000),
                    max_version_age: Some(2_592_000),
                    quota: Some(1_073_741_824),
                    ..
                }
            }
        ));
        let cli = Cli::try_parse_from(["p2pctl", "restore", "docs/a.txt", "--version", "2"])
            .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Restore { target, version: 2 } if target == "docs/a.txt"
        ));
        for args in [
            &["p2pctl", "restore", "docs/a.txt"][..],
            &["p2pctl", "restore", "docs/a.txt", "--version", "0"],
            &["p2pctl", "mv", "alice:docs/a"],
            &["p2pctl", "versions"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        for bad in ["", "M", "1.5G", "-1", "1Q", "99999999999T"] {
            assert!(size_arg(bad).is_err(), "{bad}");
        }
        assert_eq!(size_arg("4096"), Ok(4096));
        assert_eq!(size_arg("2k"), Ok(2048));
        assert!(age_arg("0s").is_err());
        assert!(age_arg("10").is_err());
        let cli = Cli::try_parse_from(["p2pctl", "grant", "docs", "bob", "write"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Grant {
                right: Right::Write,
                ..
            }
        ));
        let cli = Cli::try_parse_from(["p2pctl", "ls", "alice:docs", "-l", "-R"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Ls { long: true, recursive: true, target } if target == "alice:docs"
        ));
        for args in [
            &["p2pctl", "grant", "docs", "bob"][..],
            &["p2pctl", "grant", "docs", "bob", "admin"],
            &["p2pctl", "share", "add", "docs"],
            &["p2pctl", "ls"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
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
            &["p2pctl", "send", "--no-wait"],
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
