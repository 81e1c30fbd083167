//! The share service's tables: the shares (`shares`) and the rights peers hold on them
//! (`grants`), behind [`ShareStore`]. Nothing outside the share service touches them.

use proto::PeerId;
use proto::share::{Access, ShareName};
use rusqlite::{TransactionBehavior, params};

use crate::store::{Db, StoreError, peer_id};

/// One stored share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRow {
    /// Its name.
    pub name: ShareName,
    /// The directory, canonical when it was added.
    pub path: String,
    /// Versions kept per path.
    pub keep_versions: u32,
    /// Cap on the bytes of the share's kept versions, if any.
    pub max_version_bytes: Option<u64>,
    /// Versions older than this many seconds are dropped, if set.
    pub max_version_age: Option<u64>,
    /// Cap on the share's total bytes that peers' writes may reach, if any.
    pub write_quota: Option<u64>,
    /// When it was added, Unix seconds.
    pub created: u64,
}

/// One stored grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// The share.
    pub share: ShareName,
    /// The peer's key.
    pub peer: PeerId,
    /// Its right.
    pub right: Access,
}

/// The share service's handle on the database: its queries and nothing else.
#[derive(Clone, Debug)]
pub struct ShareStore {
    db: Db,
}

fn right_code(a: Access) -> i64 {
    match a {
        Access::Read => 0,
        Access::Write => 1,
    }
}

/// An unknown code is an error, never a guess: read as `write`, it would widen a right.
fn right_from(code: i64) -> rusqlite::Result<Access> {
    match code {
        0 => Ok(Access::Read),
        1 => Ok(Access::Write),
        _ => Err(rusqlite::Error::IntegralValueOutOfRange(0, code)),
    }
}

fn share_name(text: String) -> rusqlite::Result<ShareName> {
    ShareName::new(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl ShareStore {
    /// The share service's handle on `db`.
    pub fn new(db: Db) -> ShareStore {
        ShareStore { db }
    }

    /// The database underneath.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Every share and every grant.
    pub async fn load(&self) -> Result<(Vec<ShareRow>, Vec<GrantRow>), StoreError> {
        self.db
            .call(|c| {
                let mut q = c.prepare(
                    "SELECT name, path, keep_versions, max_version_bytes, created, max_version_age,
                     write_quota FROM shares",
                )?;
                let shares = q
                    .query_map([], |r| {
                        Ok(ShareRow {
                            name: share_name(r.get(0)?)?,
                            path: r.get(1)?,
                            keep_versions: r.get(2)?,
                            max_version_bytes: r.get::<_, Option<i64>>(3)?.map(i64::cast_unsigned),
                            created: r.get::<_, i64>(4)?.cast_unsigned(),
                            max_version_age: r.get::<_, Option<i64>>(5)?.map(i64::cast_unsigned),
                            write_quota: r.get::<_, Option<i64>>(6)?.map(i64::cast_unsigned),
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut q = c.prepare("SELECT share, peer, right FROM grants")?;
                let grants = q
                    .query_map([], |r| {
                        Ok(GrantRow {
                            share: share_name(r.get(0)?)?,
                            peer: peer_id(r.get(1)?)?,
                            right: right_from(r.get(2)?)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((shares, grants))
            })
            .await
    }

    /// Stores a new share; false if the name is taken.
    pub async fn add(&self, row: ShareRow) -> Result<bool, StoreError> {
        self.db
            .call(move |c| {
                let n = c.execute(
                    "INSERT OR IGNORE INTO shares (name, path, keep_versions, max_version_bytes, created,
                         max_version_age, write_quota)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        row.name.as_str(),
                        row.path,
                        row.keep_versions,
                        row.max_version_bytes.map(u64::cast_signed),
                        row.created.cast_signed(),
                        row.max_version_age.map(u64::cast_signed),
                        row.write_quota.map(u64::cast_signed)
                    ],
                )?;
                Ok(n == 1)
            })
            .await
    }

    /// Removes a share and its grants, in one transaction; false if there was none.
    pub async fn remove(&self, name: &ShareName) -> Result<bool, StoreError> {
        let name = name.clone();
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute("DELETE FROM grants WHERE share = ?1", [name.as_str()])?;
                let n = tx.execute("DELETE FROM shares WHERE name = ?1", [name.as_str()])?;
                tx.commit()?;
                Ok(n == 1)
            })
            .await
    }

    /// Gives `peer` `right` on `share`, replacing any right it held.
    pub async fn grant(&self, g: GrantRow) -> Result<(), StoreError> {
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO grants (share, peer, right) VALUES (?1, ?2, ?3)
                     ON CONFLICT (share, peer) DO UPDATE SET right = excluded.right",
                    params![
                        g.share.as_str(),
                        g.peer.as_bytes().as_slice(),
                        right_code(g.right)
                    ],
                )?;
                Ok(())
            })
            .await
    }

    /// Takes `peer`'s right on `share` away; false if it held none.
    pub async fn revoke(&self, share: &ShareName, peer: PeerId) -> Result<bool, StoreError> {
        let share = share.clone();
        self.db
            .call(move |c| {
                let n = c.execute(
                    "DELETE FROM grants WHERE share = ?1 AND peer = ?2",
                    params![share.as_str(), peer.as_bytes().as_slice()],
                )?;
                Ok(n == 1)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::id;

    fn row(name: &str) -> ShareRow {
        ShareRow {
            name: ShareName::new(name).unwrap(),
            path: format!("/srv/{name}"),
            keep_versions: 5,
            max_version_bytes: Some(1 << 40),
            max_version_age: (name == "docs").then_some(3600),
            write_quota: (name == "docs").then_some(1 << 30),
            created: 7,
        }
    }

    #[tokio::test]
    async fn shares_and_grants_survive_a_reopen_and_go_together() {
        let dir = tempfile::tempdir().unwrap();
        let docs = ShareName::new("docs").unwrap();
        {
            let s = ShareStore::new(Db::open(dir.path()).await.unwrap());
            assert!(s.add(row("docs")).await.unwrap());
            assert!(!s.add(row("docs")).await.unwrap(), "a name is taken once");
            assert!(s.add(row("music")).await.unwrap());
            let grant = |right| GrantRow {
                share: docs.clone(),
                peer: id(1),
                right,
            };
            s.grant(grant(Access::Read)).await.unwrap();
            s.grant(grant(Access::Write)).await.unwrap();
        }
        let s = ShareStore::new(Db::open(dir.path()).await.unwrap());
        let (mut shares, grants) = s.load().await.unwrap();
        shares.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(shares, [row("docs"), row("music")]);
        let write = GrantRow {
            share: docs.clone(),
            peer: id(1),
            right: Access::Write,
        };
        assert_eq!(grants, [write]);
        assert!(s.revoke(&docs, id(1)).await.unwrap());
        assert!(!s.revoke(&docs, id(1)).await.unwrap());
        s.grant(GrantRow {
            share: docs.clone(),
            peer: id(2),
            right: Access::Read,
        })
        .await
        .unwrap();
        assert!(s.remove(&docs).await.unwrap());
        assert!(!s.remove(&docs).await.unwrap());
        let (shares, grants) = s.load().await.unwrap();
        assert_eq!(shares, [row("music")]);
        assert!(grants.is_empty(), "a removed share's grants go with it");
    }
}
