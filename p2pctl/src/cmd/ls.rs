//! `p2pctl ls PEER[:SHARE[/PATH]]`: a peer's shares we may read, or the entries of a
//! directory in one (names; `-l` sizes, times and content ids; `-R` subdirectories too).

use proto::api::{Call, Listing};
use proto::share::EntryKind;

use crate::error::Error;
use crate::output::{Table, clean, clock_in, date_in, from_unix_ms, human_bytes};

/// What `ls` was asked for, from its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The peer.
    pub(crate) peer: String,
    /// The share, if named.
    pub(crate) share: Option<String>,
    /// The path in it, if named.
    pub(crate) path: Option<String>,
}

/// Splits `PEER[:SHARE[/PATH]]`; an empty share or path is none.
pub(crate) fn target(arg: &str) -> Target {
    let (peer, rest) = match arg.split_once(':') {
        Some((peer, rest)) => (peer, rest),
        None => (arg, ""),
    };
    let (share, path) = match rest.split_once('/') {
        Some((share, path)) => (share, path),
        None => (rest, ""),
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Target {
        peer: peer.to_owned(),
        share: some(share),
        path: some(path),
    }
}

/// Peer, share and path of `get`'s `PEER:SHARE[/PATH]`; a share must be named.
pub(crate) fn pull_target(arg: &str) -> Result<(String, String, Option<String>), Error> {
    let t = target(arg);
    match t.share {
        Some(share) if !t.peer.is_empty() => Ok((t.peer, share, t.path)),
        _ => Err(Error::Failed(format!(
            "cannot get {}: name a peer and a share, as PEER:SHARE[/PATH]",
            clean(arg)
        ))),
    }
}

/// The call for `arg` with these flags.
pub(crate) fn call(arg: &str, long: bool, recursive: bool) -> Call {
    let t = target(arg);
    Call::Ls {
        peer: t.peer,
        share: t.share,
        path: t.path,
        long,
        recursive,
    }
}

/// The listing as text: shares as a table; entries as names (directories end in `/`), or
/// with `long` a table of kind, size, time, name and content id.
pub(crate) fn render(l: &Listing, long: bool) -> String {
    let mut out = String::new();
    if l.share.is_none() {
        if l.shares.is_empty() {
            return format!("{} shares nothing with you\n", l.peer);
        }
        let mut t = Table::new(&["SHARE", "ACCESS"]);
        for s in &l.shares {
            t.row(vec![s.name.to_string(), s.access.as_str().into()]);
        }
        return t.render();
    }
    if long {
        let tz = jiff::tz::TimeZone::system();
        let mut t = Table::new(&["SIZE", "MODIFIED", "NAME", "CONTENT ID"]);
        for e in &l.entries {
            let size = match e.kind {
                EntryKind::File => human_bytes(e.size),
                EntryKind::Dir => "-".into(),
            };
            t.row(vec![
                size,
                format!(
                    "{} {}",
                    date_in(from_unix_ms(e.mtime), &tz),
                    clock_in(from_unix_ms(e.mtime), &tz)
                ),
                name(&e.path, e.kind),
                e.id.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&t.render());
    } else {
        for e in &l.entries {
            out.push_str(&name(&e.path, e.kind));
            out.push('\n');
        }
    }
    if l.truncated {
        out.push_str(&format!(
            "(stopped after {} entries; list a subdirectory to see more)\n",
            l.entries.len()
        ));
    }
    out
}

fn name(path: &str, kind: EntryKind) -> String {
    match kind {
        EntryKind::Dir => format!("{}/", clean(path)),
        EntryKind::File => clean(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(peer: &str, share: Option<&str>, path: Option<&str>) -> Target {
        Target {
            peer: peer.into(),
            share: share.map(Into::into),
            path: path.map(Into::into),
        }
    }

    #[test]
    fn targets_split_at_the_first_colon_and_slash() {
        assert_eq!(target("alice"), t("alice", None, None));
        assert_eq!(target("alice:"), t("alice", None, None));
        assert_eq!(target("alice:docs"), t("alice", Some("docs"), None));
        assert_eq!(target("alice:docs/"), t("alice", Some("docs"), None));
        assert_eq!(
            target("alice:docs/sub/a:b.txt"),
            t("alice", Some("docs"), Some("sub/a:b.txt"))
        );
        // What the daemon refuses is passed on as typed, for it to say why.
        assert_eq!(
            target("alice:docs/../x"),
            t("alice", Some("docs"), Some("../x"))
        );
    }
}
