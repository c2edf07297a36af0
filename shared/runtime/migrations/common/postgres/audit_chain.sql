-- The service's audit trail, chained by hash: each entry's hash covers the previous entry's
-- hash and its own content, so editing or deleting an entry breaks every hash after it
-- (`credit-suite audit verify`). The head row holds the last sequence number and hash, so
-- deleting the newest entries is found too, and appends are serialized by its row lock.
CREATE TABLE audit_chain (
    seq         BIGINT PRIMARY KEY,
    -- Kept as the exact text that was hashed.
    recorded_at TEXT NOT NULL,
    kind        TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    entry       TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_chain_by_record ON audit_chain (kind, record_id);
CREATE TABLE audit_chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, '');
