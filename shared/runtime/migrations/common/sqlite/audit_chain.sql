-- The service's audit trail, chained by hash; see the PostgreSQL migration.
CREATE TABLE audit_chain (
    seq         INTEGER PRIMARY KEY,
    -- Kept as the exact text that was hashed.
    recorded_at TEXT NOT NULL,
    kind        TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    entry       TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
) STRICT;
CREATE INDEX audit_chain_by_record ON audit_chain (kind, record_id);
CREATE TABLE audit_chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
) STRICT;
INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, '');
