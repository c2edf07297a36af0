-- A PublishDunningPolicy request_id belongs to the principal that sent it (see the PostgreSQL
-- migration). SQLite cannot drop a UNIQUE column constraint: the table is rebuilt.
CREATE TABLE dunning_policies_per_publisher (
    policy_id    TEXT NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    document     BLOB NOT NULL,
    request_id   TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    published_at TEXT NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (policy_id, version),
    UNIQUE (published_by, request_id)
) STRICT;
INSERT INTO dunning_policies_per_publisher
    (policy_id, version, document, request_id, fingerprint, published_at, published_by)
SELECT policy_id, version, document, request_id, fingerprint, published_at, published_by
FROM dunning_policies;
DROP TABLE dunning_policies;
ALTER TABLE dunning_policies_per_publisher RENAME TO dunning_policies;
