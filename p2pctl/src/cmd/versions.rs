//! `p2pctl versions|restore [PEER:]SHARE/PATH`, `rm|mkdir PEER:SHARE/PATH` and
//! `mv PEER:SHARE/FROM SHARE/TO`: the kept versions of a file, and changes to a share.

use proto::api::{Call, ShareChanged, VersionList};

use crate::error::Error;
use crate::output::{Table, clean, clock_in, date_in, from_unix_ms, human_bytes};

/// A path in a share, and whose share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The peer; `None`: one of our shares.
    pub(crate) peer: Option<String>,
    /// The share.
    pub(crate) share: String,
    /// The path in it, as typed (the daemon checks it).
    pub(crate) path: String,
}

/// Splits `[PEER:]SHARE/PATH`: a peer is named by a `:` before the first `/`. `verb` names
/// the command in errors; `peer_needed` refuses a target without one.
pub(crate) fn target(arg: &str, verb: &str, peer_needed: bool) -> Result<Target, Error> {
    let head = arg.split('/').next().unwrap_or_default();
    let (peer, rest) = match head.split_once(':') {
        Some((peer, _)) => (Some(peer), &arg[peer.len() + 1..]),
        None => (None, arg),
    };
    let form = if peer_needed {
        "PEER:SHARE/PATH"
    } else {
        "[PEER:]SHARE/PATH"
    };
    let bad = || {
        Error::Failed(format!(
            "cannot {verb} {}: name a share and a path in it, as {form}",
            clean(arg)
        ))
    };
    let Some((share, path)) = rest.split_once('/') else {
        return Err(bad());
    };
    if share.is_empty() || path.is_empty() || peer.is_some_and(str::is_empty) {
        return Err(bad());
    }
    if peer_needed && peer.is_none() {
        return Err(bad());
    }
    Ok(Target {
        peer: peer.map(str::to_owned),
        share: share.to_owned(),
        path: path.to_owned(),
    })
}

/// The call of `rm PEER:SHARE/PATH`.
pub(crate) fn rm_call(arg: &str) -> Result<Call, Error> {
    let t = target(arg, "rm", true)?;
    Ok(Call::Rm {
        peer: t.peer.unwrap_or_default(),
        share: t.share,
        path: t.path,
    })
}

/// The call of `mkdir PEER:SHARE/PATH`.
pub(crate) fn mkdir_call(arg: &str) -> Result<Call, Error> {
    let t = target(arg, "mkdir", true)?;
    Ok(Call::Mkdir {
        peer: t.peer.unwrap_or_default(),
        share: t.share,
        path: t.path,
    })
}

/// The call of `mv FROM TO`: TO is `SHARE/PATH` in FROM's share (`PEER:` may be repeated).
pub(crate) fn mv_call(from: &str, to: &str) -> Result<Call, Error> {
    let f = target(from, "mv", true)?;
    let t = target(to, "mv", false)?;
    if t.share != f.share || t.peer.as_ref().is_some_and(|p| Some(p) != f.peer.as_ref()) {
        return Err(Error::Failed(format!(
            "cannot mv {} to {}: mv moves within one share, as mv PEER:SHARE/FROM SHARE/TO",
            clean(from),
            clean(to)
        )));
    }
    Ok(Call::Mv {
        peer: f.peer.unwrap_or_default(),
        share: f.share,
        from: f.path,
        to: t.path,
    })
}

/// `SHARE/PATH`, with ` on PEER` for a peer's share.
fn place(peer: Option<&proto::PeerName>, share: &str, path: &str) -> String {
    let at = format!("{share}/{}", clean(path));
    match peer {
        Some(p) => format!("{at} on {p}"),
        None => at,
    }
}

/// `versions`: a table NUMBER SIZE REPLACED BY CONTENT-ID, oldest first.
pub(crate) fn table(l: &VersionList) -> String {
    let at = place(l.peer.as_ref(), l.share.as_str(), &l.path);
    if l.versions.is_empty() {
        return format!("no versions of {at} are kept\n");
    }
    let tz = jiff::tz::TimeZone::system();
    let mut t = Table::new(&["NUMBER", "SIZE", "REPLACED", "BY", "CONTENT-ID"]);
    for v in &l.versions {
        let when = from_unix_ms(v.replaced_at);
        t.row(vec![
            v.number.to_string(),
            human_bytes(v.size),
            format!("{} {}", date_in(when, &tz), clock_in(when, &tz)),
            v.by.as_deref().map_or_else(|| "owner".into(), clean),
            v.id.clone(),
        ]);
    }
    t.render()
}

/// One line about a change made.
pub(crate) fn changed(verb: &str, c: &ShareChanged) -> String {
    let at = place(c.peer.as_ref(), c.share.as_str(), &c.path);
    match (verb, &c.to, c.version) {
        ("restore", _, Some(n)) => {
            format!("restored version {n} of {at}; what was there is kept as a version\n")
        }
        ("mv", Some(to), _) => format!("moved {at} to {}/{}\n", c.share, clean(to)),
        ("mkdir", _, _) => format!("made directory {at}\n"),
        _ => format!("removed {at} (a file is kept there as a version)\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(peer: Option<&str>, share: &str, path: &str) -> Target {
        Target {
            peer: peer.map(Into::into),
            share: share.into(),
            path: path.into(),
        }
    }

    #[test]
    fn targets_name_a_peer_only_before_the_first_slash() {
        let ok = |arg, peer| target(arg, "rm", peer).unwrap();
        assert_eq!(
            ok("alice:docs/a.txt", true),
            t(Some("alice"), "docs", "a.txt")
        );
        assert_eq!(ok("docs/sub/a:b", false), t(None, "docs", "sub/a:b"));
        assert_eq!(
            ok("alice:docs/sub/a:b", false),
            t(Some("alice"), "docs", "sub/a:b")
        );
        // What the daemon refuses is passed on as typed, for it to say why.
        assert_eq!(
            ok("alice:docs/../x", true),
            t(Some("alice"), "docs", "../x")
        );
        for (arg, peer) in [
            ("docs/a", true),
            ("alice:docs", true),
            ("alice:docs/", true),
            (":docs/a", false),
            ("alice:/a", false),
            ("docs", false),
        ] {
            assert!(target(arg, "rm", peer).is_err(), "{arg}");
        }
    }

    #[test]
    fn mv_stays_in_one_share() {
        let call = mv_call("alice:docs/a", "docs/sub/b").unwrap();
        assert!(matches!(
            call,
            Call::Mv { peer, share, from, to }
                if peer == "alice" && share == "docs" && from == "a" && to == "sub/b"
        ));
        assert!(mv_call("alice:docs/a", "alice:docs/b").is_ok());
        assert!(mv_call("alice:docs/a", "music/b").is_err());
        assert!(mv_call("alice:docs/a", "bob:docs/b").is_err());
        assert!(mv_call("docs/a", "docs/b").is_err(), "a peer is needed");
    }
}
