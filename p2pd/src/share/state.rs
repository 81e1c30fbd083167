//! The shares served now and the rights peers hold on them, in memory, pure: what the share
//! protocol's rules ([`proto::share::rules`]) are checked against on every request.

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::PeerId;
use proto::share::rules::ShareState;
use proto::share::{Access, ContentId, ShareName};

use super::index::ShareIndex;
use super::store::ShareRow;

/// One share as served: its row and its index, or why it has none.
pub(super) struct Served {
    /// The stored share.
    pub row: ShareRow,
    /// Its index, or why it could not be opened.
    pub index: Result<Arc<ShareIndex>, String>,
}

/// The shares and grants as they are now.
#[derive(Default)]
pub(super) struct Live {
    shares: BTreeMap<ShareName, Served>,
    grants: BTreeMap<ShareName, BTreeMap<PeerId, Access>>,
}

impl Live {
    /// Adds (or replaces) a share.
    pub fn add(&mut self, row: ShareRow, index: Result<Arc<ShareIndex>, String>) {
        self.shares.insert(row.name.clone(), Served { row, index });
    }

    /// Removes a share and its grants; its index, if it had one.
    pub fn remove(&mut self, name: &ShareName) -> Option<Result<Arc<ShareIndex>, String>> {
        self.grants.remove(name);
        self.shares.remove(name).map(|s| s.index)
    }

    /// The share named `name`.
    pub fn get(&self, name: &ShareName) -> Option<&Served> {
        self.shares.get(name)
    }

    /// Every share's name, sorted.
    pub fn names(&self) -> Vec<ShareName> {
        self.shares.keys().cloned().collect()
    }

    /// Gives `peer` `right` on `share`, replacing what it held. A grant on a share not
    /// served (a leftover row) is kept but gives nothing: [`ShareState::access`] needs both.
    pub fn grant(&mut self, share: &ShareName, peer: PeerId, right: Access) {
        self.grants
            .entry(share.clone())
            .or_default()
            .insert(peer, right);
    }

    /// Takes `peer`'s right on `share` away.
    pub fn revoke(&mut self, share: &ShareName, peer: PeerId) {
        if let Some(g) = self.grants.get_mut(share) {
            g.remove(&peer);
        }
    }

    /// The rights held on `share`, by key.
    pub fn grants_of(&self, share: &ShareName) -> impl Iterator<Item = (PeerId, Access)> + '_ {
        self.grants
            .get(share)
            .into_iter()
            .flat_map(|g| g.iter().map(|(p, a)| (*p, *a)))
    }

    /// Takes every index out, to stop them.
    pub fn take_all(&mut self) -> Vec<Arc<ShareIndex>> {
        std::mem::take(&mut self.shares)
            .into_values()
            .filter_map(|s| s.index.ok())
            .collect()
    }
}

impl ShareState for Live {
    fn shares(&self) -> Vec<ShareName> {
        self.names()
    }

    fn access(&self, share: &ShareName, peer: &PeerId) -> Option<Access> {
        self.shares.get(share)?;
        self.grants.get(share)?.get(peer).copied()
    }

    fn shares_holding(&self, id: &ContentId) -> Vec<ShareName> {
        self.shares
            .iter()
            .filter(|(_, s)| {
                s.index
                    .as_ref()
                    .is_ok_and(|ix| ix.find(id.as_bytes()).is_some())
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proto::share::rules::{self, list_shares};
    use proto::share::{ErrorKind, Request};

    use super::*;
    use crate::store::testing::id;

    fn name(s: &str) -> ShareName {
        ShareName::new(s).unwrap()
    }

    fn row(s: &str) -> ShareRow {
        ShareRow {
            name: name(s),
            path: format!("/srv/{s}"),
            keep_versions: 5,
            max_version_bytes: None,
            max_version_age: None,
            write_quota: None,
            created: 1,
        }
    }

    fn list(share: &str) -> Request {
        Request::List {
            share: name(share),
            path: None,
            cursor: None,
            limit: 0,
        }
    }

    #[test]
    fn a_peer_sees_and_lists_only_what_it_was_granted_until_revoked() {
        let mut live = Live::default();
        live.add(row("docs"), Err("gone".into()));
        live.add(row("music"), Err("gone".into()));
        let (bob, carol) = (id(1), id(2));
        assert!(list_shares(&live, &bob).is_empty());
        live.grant(&name("docs"), bob, Access::Read);
        let seen = list_shares(&live, &bob);
        assert_eq!(seen.len(), 1);
        assert_eq!(
            (seen[0].name.as_str(), seen[0].access),
            ("docs", Access::Read)
        );
        assert!(rules::check(&live, &bob, &list("docs"), None).is_ok());
        assert!(list_shares(&live, &carol).is_empty());

        // A missing share and a denied one read alike.
        let denied = rules::check(&live, &bob, &list("music"), None).unwrap_err();
        let missing = rules::check(&live, &bob, &list("nope"), None).unwrap_err();
        assert_eq!(denied.kind, ErrorKind::Denied);
        assert_eq!(missing.kind, ErrorKind::Denied);
        assert_eq!(
            denied.message.as_str().replace("music", "X"),
            missing.message.as_str().replace("nope", "X")
        );

        live.grant(&name("docs"), bob, Access::Write);
        assert_eq!(
            live.grants_of(&name("docs")).collect::<Vec<_>>(),
            [(bob, Access::Write)]
        );
        live.revoke(&name("docs"), bob);
        assert!(rules::check(&live, &bob, &list("docs"), None).is_err());
        assert!(list_shares(&live, &bob).is_empty());
    }

    #[test]
    fn removing_a_share_drops_its_grants() {
        let mut live = Live::default();
        live.add(row("docs"), Err("gone".into()));
        live.grant(&name("docs"), id(1), Access::Read);
        assert!(live.remove(&name("docs")).is_some());
        assert_eq!(live.grants_of(&name("docs")).count(), 0);
        // Added again, it starts with no grant.
        live.add(row("docs"), Err("gone".into()));
        assert_eq!(live.access(&name("docs"), &id(1)), None);
        assert!(live.remove(&name("nope")).is_none());
    }
}
