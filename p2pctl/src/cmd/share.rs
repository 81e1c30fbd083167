//! `p2pctl share add|rm|ls`, `grant` and `revoke`: this daemon's shares and who may use them.

use std::path::Path;

use proto::api::{Granted, LocalShare, Revoked};

use crate::error::Error;
use crate::output::{Table, clean, files, human_bytes};

/// `DIR` of `share add` as an absolute path (p2pd checks that it is a directory and
/// resolves it again); relative to our working directory, not p2pd's.
pub(crate) fn absolute_dir(arg: &Path) -> Result<String, Error> {
    let path = std::path::absolute(arg).map_err(|e| {
        Error::Failed(format!(
            "cannot share {}: {e}",
            clean(&arg.display().to_string())
        ))
    })?;
    super::send::utf8(&path)
}

/// `share add` and `share rm`: one line about the share.
pub(crate) fn added(s: &LocalShare) -> String {
    format!(
        "sharing {} as {} (keeping {} versions per path); grant peers access with 'p2pctl grant {} PEER read'\n",
        clean(&s.path),
        s.name,
        s.keep_versions,
        s.name
    )
}

/// `share rm`.
pub(crate) fn removed(s: &LocalShare) -> String {
    format!(
        "{} is no longer shared ({} left as it is); its grants are gone\n",
        s.name,
        clean(&s.path)
    )
}

/// `share ls`: a table, grants in the last column.
pub(crate) fn table(list: Vec<LocalShare>) -> String {
    if list.is_empty() {
        return "no shares; add one with 'p2pctl share add NAME DIR'\n".into();
    }
    let mut t = Table::new(&[
        "NAME", "PATH", "FILES", "SIZE", "VERSIONS", "QUOTA", "GRANTS",
    ]);
    for s in &list {
        let grants: Vec<String> = s
            .grants
            .iter()
            .map(|g| format!("{} {}", clean(&g.peer), g.right.as_str()))
            .collect();
        let counted = match (&s.error, s.ready) {
            (Some(e), _) => format!("unavailable: {}", clean(e)),
            (None, true) => files(u32::try_from(s.files).unwrap_or(u32::MAX)),
            (None, false) => format!("{} so far", s.files),
        };
        t.row(vec![
            s.name.to_string(),
            clean(&s.path),
            counted,
            human_bytes(s.bytes),
            retention(s),
            s.quota.map_or_else(|| "-".into(), human_bytes),
            if grants.is_empty() {
                "-".into()
            } else {
                grants.join(", ")
            },
        ]);
    }
    t.render()
}

/// What a share keeps of replaced files: `5`, `5, 1.0 GiB, 30 d`.
fn retention(s: &LocalShare) -> String {
    let mut parts = vec![s.keep_versions.to_string()];
    if let Some(b) = s.max_version_bytes {
        parts.push(human_bytes(b));
    }
    if let Some(age) = s.max_version_age {
        parts.push(crate::output::human_duration(age));
    }
    parts.join(", ")
}

/// `grant`.
pub(crate) fn granted(g: &Granted) -> String {
    format!("{} may now {} {}\n", clean(&g.peer), verb(g.right), g.share)
}

/// `revoke`.
pub(crate) fn revoked(r: &Revoked) -> String {
    if r.revoked {
        format!("{} no longer has access to {}\n", clean(&r.peer), r.share)
    } else {
        format!(
            "{} had no access to {}; nothing changed\n",
            clean(&r.peer),
            r.share
        )
    }
}

fn verb(right: proto::share::Access) -> &'static str {
    match right {
        proto::share::Access::Read => "read",
        proto::share::Access::Write => "read and write",
    }
}
