//! The address book: the last verified address record (the peer's signed record as the
//! tracker served it, with the address the tracker observed) of each pinned peer, so a known
//! peer can be dialled while no discovery source sees it.

use proto::PeerId;
use proto::tracker::PeerEntry;
use rusqlite::params;
use tracing::warn;

use super::{PeerStore, StoreError};

impl PeerStore {
    /// Keeps `entry` as the address record of its key, replacing the one before.
    pub async fn save_address(&self, entry: &PeerEntry, now: u64) -> Result<(), StoreError> {
        let key = entry.signed.record.key;
        let json =
            serde_json::to_string(entry).expect("a peer entry holds only types serde_json encodes");
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "INSERT INTO address_book (peer, entry, seen_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (peer) DO UPDATE SET entry = ?2, seen_at = ?3",
                )?
                .execute(params![
                    key.as_bytes().as_slice(),
                    json,
                    now.cast_signed()
                ])?;
                Ok(())
            })
            .await
    }

    /// Every stored address record whose signature still checks and whose key is its row's;
    /// any other is skipped with a warning.
    pub async fn address_book(&self) -> Result<Vec<PeerEntry>, StoreError> {
        let rows: Vec<(Vec<u8>, String)> = self
            .db
            .call(|c| {
                let mut stmt = c.prepare("SELECT peer, entry FROM address_book")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .await?;
        let mut book = Vec::new();
        for (peer, json) in rows {
            match serde_json::from_str::<PeerEntry>(&json) {
                Ok(e) if e.signed.verify() && e.signed.record.key.as_bytes() == peer.as_slice() => {
                    book.push(e);
                }
                _ => warn!("skipping an address book record that does not verify"),
            }
        }
        Ok(book)
    }

    /// Forgets the address record of `id`.
    pub async fn drop_address(&self, id: PeerId) -> Result<(), StoreError> {
        self.db
            .call(move |c| {
                c.execute(
                    "DELETE FROM address_book WHERE peer = ?1",
                    [id.as_bytes().as_slice()],
                )?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use proto::SecretKey;
    use proto::tracker::Record;

    use super::*;

    fn entry(n: u8, port: u16, seq: u64) -> PeerEntry {
        let k = SecretKey::from_seed([n; 32]);
        let rec = Record {
            name: proto::PeerName::new("bob").unwrap(),
            key: k.peer_id(),
            addrs: vec![format!("0.0.0.0:{port}").parse().unwrap()],
            seq,
        };
        PeerEntry {
            signed: rec.sign(&k),
            observed: "127.0.0.1".parse().unwrap(),
        }
    }

    async fn open(dir: &std::path::Path) -> PeerStore {
        PeerStore::new(crate::store::Db::open(dir).await.unwrap())
    }

    #[tokio::test]
    async fn keeps_the_last_record_per_key_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        s.save_address(&entry(1, 1, 1), 1).await.unwrap();
        s.save_address(&entry(1, 2, 2), 2).await.unwrap();
        drop(s);
        let s = open(dir.path()).await;
        assert_eq!(s.address_book().await.unwrap(), vec![entry(1, 2, 2)]);
        s.drop_address(entry(1, 2, 2).signed.record.key)
            .await
            .unwrap();
        assert!(s.address_book().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_record_that_does_not_verify_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        let mut forged = entry(1, 1, 1);
        forged.signed.record.seq = 9;
        s.save_address(&forged, 1).await.unwrap();
        // A record stored under another key's row.
        let json = serde_json::to_string(&entry(2, 1, 1)).unwrap();
        let row = entry(3, 1, 1).signed.record.key;
        s.db.call(move |c| {
            c.execute(
                "INSERT INTO address_book (peer, entry, seen_at) VALUES (?1, ?2, 1)",
                params![row.as_bytes().as_slice(), json],
            )
        })
        .await
        .unwrap();
        assert!(s.address_book().await.unwrap().is_empty());
    }
}
