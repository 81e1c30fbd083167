//! The plans SQLite makes for chat's hot queries, on a database with rows: each must reach its
//! rows through an index, never by walking the conversation.

use super::*;
use crate::store::testing::{id, name};

/// Messages in the test conversation: enough that a walk would show in a plan's choice.
const ROWS: i64 = 2_000;

/// A database holding a long conversation with bob (both directions, a few queued) and a
/// short one with carol.
async fn with_rows() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await.unwrap();
    db.call(|c| {
        let tx = c.transaction()?;
        for (peer, who, rows) in [(id(1), "bob", ROWS), (id(2), "carol", 20)] {
            for i in 0..rows {
                // Even: ours (delivered, but for the last three, still queued); odd: theirs.
                let dir = i % 2;
                let state = match (dir, i >= rows - 6) {
                    (0, true) => 0,
                    (0, false) => 1,
                    _ => 3,
                };
                let mid = [i.to_le_bytes(), peer.as_bytes()[..8].try_into().unwrap()].concat();
                tx.execute(
                    "INSERT INTO messages (id, peer, peer_name, direction, seq, text, state, sent_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'hello', ?6, ?5)",
                    params![mid, peer.as_bytes().as_slice(), who, dir, i / 2 + 1, state],
                )?;
            }
        }
        tx.commit()
    })
    .await
    .unwrap();
    (dir, db)
}

/// The lines of `EXPLAIN QUERY PLAN sql`, parameters unbound.
async fn plan(db: &Db, sql: &'static str) -> Vec<String> {
    db.call(move |c| {
        let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(r.get::<_, String>(3)?);
        }
        Ok(out)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn hot_queries_use_their_indexes() {
    let (_dir, db) = with_rows().await;
    let cases: [(&str, &'static str, &[&str]); 7] = [
        (
            "last seq",
            LAST_SEQ,
            &["USING COVERING INDEX messages_seq (peer=? AND direction=?)"],
        ),
        (
            "outbox",
            OUTBOX,
            &["USING INDEX outbox (peer=? AND direction=? AND seq>?)"],
        ),
        ("peers with an outbox", PEERS_WITH_OUTBOX, &["INDEX outbox"]),
        (
            "settle",
            SETTLE,
            &["USING INDEX sqlite_autoindex_messages_1 (peer=? AND direction=? AND id=?)"],
        ),
        (
            "settled row",
            SETTLED,
            &["USING INDEX sqlite_autoindex_messages_1 (peer=? AND direction=? AND id=?)"],
        ),
        (
            "history",
            HISTORY,
            &[
                "USING INTEGER PRIMARY KEY (rowid=?)",
                "USING COVERING INDEX messages_by_peer (peer=?)",
                "USING COVERING INDEX messages_by_name (peer_name=?)",
            ],
        ),
        (
            "bytes held",
            HELD,
            &["USING COVERING INDEX messages_seq (peer=? AND direction=?)"],
        ),
    ];
    for (what, sql, wanted) in cases {
        let lines = plan(&db, sql).await;
        for w in wanted {
            assert!(
                lines.iter().any(|l| l.contains(w)),
                "{what}: no {w:?} in {lines:#?}"
            );
        }
        // A bare SCAN of messages reads every row; TEMP B-TREE sorts what it read.
        for l in &lines {
            assert!(l != "SCAN messages", "{what} walks the table: {lines:#?}");
        }
        if sql != HISTORY {
            assert!(
                !lines.iter().any(|l| l.contains("TEMP B-TREE")),
                "{what} sorts: {lines:#?}"
            );
        }
    }
}

#[tokio::test]
async fn the_earlier_outbox_index_lost_to_messages_seq() {
    // The index as migration 2 made it: the plan takes messages_seq, which walks every
    // outgoing message of the conversation. This is what the test above guards against.
    let (_dir, db) = with_rows().await;
    db.call(|c| {
        c.execute_batch(
            "DROP INDEX outbox;
             CREATE INDEX outbox ON messages (peer, seq) WHERE direction = 0 AND state IN (0, 4);",
        )
    })
    .await
    .unwrap();
    let lines = plan(&db, OUTBOX).await;
    assert!(
        lines.iter().any(|l| l.contains("messages_seq")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn the_queries_answer_from_a_long_conversation() {
    let (_dir, db) = with_rows().await;
    let s = ChatStore::new(db);
    let queued = s.outbox(id(1)).await.unwrap();
    assert_eq!(queued.len(), 3, "{queued:?}");
    let after = s.outbox_after(id(1), queued[0].seq).await.unwrap();
    assert_eq!(after, queued[1..]);
    let mut peers = s.peers_with_outbox().await.unwrap();
    peers.sort();
    let mut both = vec![id(1), id(2)];
    both.sort();
    assert_eq!(peers, both);
    let h = s.history(Some(id(1)), &name("bob"), 5).await.unwrap();
    let seqs: Vec<_> = h.iter().map(|m| (m.direction, m.seq)).collect();
    let last = (ROWS / 2).cast_unsigned();
    assert_eq!(
        seqs,
        [
            (Direction::In, last - 2),
            (Direction::Out, last - 1),
            (Direction::In, last - 1),
            (Direction::Out, last),
            (Direction::In, last)
        ]
    );
    let m = s
        .insert_outgoing(id(1), &name("bob"), "next", 1)
        .await
        .unwrap();
    assert_eq!(m.seq, last + 1);
}
