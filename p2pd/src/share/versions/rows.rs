//! The version store's tables: `versions` (one row per kept version) and `version_numbers`
//! (the last number given per path, so none is given twice), and retention over them.

use proto::PeerId;
use proto::share::{ContentId, VersionInfo};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::Retention;
use crate::store::peer_id;

/// Where a version belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The share's name.
    pub share: String,
    /// The path in the share.
    pub path: String,
}

/// A version about to be recorded.
pub(super) struct NewVersion {
    pub id: ContentId,
    pub size: u64,
    pub replaced_at: u64,
    pub by: Option<PeerId>,
}

fn content(bytes: Vec<u8>) -> rusqlite::Result<ContentId> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(ContentId)
        .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(3, 0))
}

fn info(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionInfo> {
    Ok(VersionInfo {
        number: r.get::<_, i64>(0)?.cast_unsigned(),
        size: r.get::<_, i64>(1)?.cast_unsigned(),
        replaced_at: r.get::<_, i64>(2)?.cast_unsigned(),
        id: content(r.get(3)?)?,
        by: r.get::<_, Option<Vec<u8>>>(4)?.map(peer_id).transpose()?,
    })
}

/// Records `v` under the next number for `key`, then applies `keep` to the share, in one
/// transaction. Returns the version as recorded (retention may have dropped it already, if
/// it alone is over the byte cap) and the content ids no row references any more.
pub(super) fn record(
    c: &mut Connection,
    key: &Key,
    v: &NewVersion,
    keep: &Retention,
) -> rusqlite::Result<(VersionInfo, Vec<ContentId>)> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let number: i64 = tx.query_row(
        "INSERT INTO version_numbers (share, path, last) VALUES (?1, ?2, 1)
         ON CONFLICT (share, path) DO UPDATE SET last = last + 1 RETURNING last",
        params![key.share, key.path],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO versions (share, path, number, content, size, replaced_at, by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            key.share,
            key.path,
            number,
            v.id.0.as_slice(),
            v.size.cast_signed(),
            v.replaced_at.cast_signed(),
            v.by.map(|p| p.as_bytes().to_vec())
        ],
    )?;
    let mut dropped: Vec<Vec<u8>> = Vec::new();
    // Keep N per path: the numbers of a path only grow, so the N kept are among the last N.
    let below = number - i64::from(keep.keep);
    collect(
        &tx,
        "DELETE FROM versions WHERE share = ?1 AND path = ?2 AND number <= ?3 RETURNING content",
        params![key.share, key.path, below],
        &mut dropped,
    )?;
    if let Some(age) = keep.max_age_ms {
        let before = v.replaced_at.saturating_sub(age).cast_signed();
        collect(
            &tx,
            "DELETE FROM versions WHERE share = ?1 AND replaced_at < ?2 RETURNING content",
            params![key.share, before],
            &mut dropped,
        )?;
    }
    if let Some(cap) = keep.max_bytes {
        over_cap(&tx, &key.share, cap, &mut dropped)?;
    }
    let orphans = unreferenced(&tx, dropped)?;
    tx.commit()?;
    let recorded = VersionInfo {
        number: number.cast_unsigned(),
        size: v.size,
        replaced_at: v.replaced_at,
        id: v.id,
        by: v.by,
    };
    Ok((recorded, orphans))
}

fn collect(
    c: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    into: &mut Vec<Vec<u8>>,
) -> rusqlite::Result<()> {
    let mut q = c.prepare(sql)?;
    let ids = q.query_map(args, |r| r.get::<_, Vec<u8>>(0))?;
    for id in ids {
        into.push(id?);
    }
    Ok(())
}

/// Which of `dropped` no row references any more.
fn unreferenced(c: &Connection, mut dropped: Vec<Vec<u8>>) -> rusqlite::Result<Vec<ContentId>> {
    dropped.sort();
    dropped.dedup();
    let mut orphans = Vec::new();
    for id in dropped {
        let used: bool = c.query_row(
            "SELECT EXISTS (SELECT 1 FROM versions WHERE content = ?1)",
            [id.as_slice()],
            |r| r.get(0),
        )?;
        if !used {
            orphans.push(content(id)?);
        }
    }
    Ok(orphans)
}

/// Drops the share's oldest versions until their bytes are at most `cap`.
fn over_cap(
    c: &Connection,
    share: &str,
    cap: u64,
    dropped: &mut Vec<Vec<u8>>,
) -> rusqlite::Result<()> {
    let total: i64 = c.query_row(
        "SELECT COALESCE(SUM(size), 0) FROM versions WHERE share = ?1",
        [share],
        |r| r.get(0),
    )?;
    let mut total = total.cast_unsigned();
    if total <= cap {
        return Ok(());
    }
    let mut q = c.prepare(
        "SELECT path, number, size, content FROM versions WHERE share = ?1
         ORDER BY replaced_at, rowid",
    )?;
    let oldest = q.query_map([share], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Vec<u8>>(3)?,
        ))
    })?;
    let mut gone = Vec::new();
    for row in oldest {
        if total <= cap {
            break;
        }
        let (path, number, size, id) = row?;
        total = total.saturating_sub(size.cast_unsigned());
        gone.push((path, number));
        dropped.push(id);
    }
    for (path, number) in gone {
        c.execute(
            "DELETE FROM versions WHERE share = ?1 AND path = ?2 AND number = ?3",
            params![share, path, number],
        )?;
    }
    Ok(())
}

/// The kept versions of `key`, oldest first; at most `limit`, the newest ones.
pub(super) fn list(c: &Connection, key: &Key, limit: usize) -> rusqlite::Result<Vec<VersionInfo>> {
    let mut q = c.prepare(
        "SELECT number, size, replaced_at, content, by FROM versions
         WHERE share = ?1 AND path = ?2 ORDER BY number DESC LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut out = q
        .query_map(params![key.share, key.path, limit], info)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}

/// Version `number` of `key`, if kept.
pub(super) fn get(c: &Connection, key: &Key, number: u64) -> rusqlite::Result<Option<VersionInfo>> {
    c.query_row(
        "SELECT number, size, replaced_at, content, by FROM versions
         WHERE share = ?1 AND path = ?2 AND number = ?3",
        params![key.share, key.path, number.cast_signed()],
        info,
    )
    .optional()
}

/// Drops every version of `share` (the share is gone); returns the content ids no row
/// references any more.
pub(super) fn forget_share(c: &mut Connection, share: &str) -> rusqlite::Result<Vec<ContentId>> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut dropped = Vec::new();
    collect(
        &tx,
        "DELETE FROM versions WHERE share = ?1 RETURNING content",
        [share],
        &mut dropped,
    )?;
    tx.execute("DELETE FROM version_numbers WHERE share = ?1", [share])?;
    let orphans = unreferenced(&tx, dropped)?;
    tx.commit()?;
    Ok(orphans)
}
