PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS peers (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    pinned_at INTEGER NOT NULL,
    trusted INTEGER NOT NULL DEFAULT 0,
    auto_accept INTEGER NOT NULL DEFAULT 0,
    blocked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    n INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    peer BLOB NOT NULL,
    peer_name TEXT NOT NULL,
    direction INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    state INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    detail TEXT,
    UNIQUE (peer, direction, id)
);
CREATE INDEX IF NOT EXISTS messages_by_peer ON messages (peer, n);
-- The next seq of a conversation is one index lookup, however long it is.
CREATE INDEX IF NOT EXISTS messages_seq ON messages (peer, direction, seq);
CREATE TABLE IF NOT EXISTS transfers (
    id BLOB PRIMARY KEY,
    peer BLOB NOT NULL,
    peer_name TEXT NOT NULL,
    direction INTEGER NOT NULL,
    state TEXT NOT NULL,
    manifest TEXT NOT NULL,
    local_path TEXT,
    error TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transfer_files (
    id BLOB NOT NULL,
    file INTEGER NOT NULL,
    verified_chunks INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (id, file)
);
CREATE INDEX IF NOT EXISTS outbox ON messages (peer, seq) WHERE direction = 0 AND state = 0;
