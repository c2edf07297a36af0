-- Idempotency keys belong to the caller that sent them, and are swept after a retention period
-- (see the PostgreSQL migration). SQLite cannot change a primary key in place: the table is
-- rebuilt.
CREATE TABLE idempotency_keys_per_caller (
    caller      TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL,
    operation   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (caller, request_id)
) STRICT;
INSERT INTO idempotency_keys_per_caller
    (caller, request_id, operation, fingerprint, resource_id, created_at)
SELECT '', request_id, operation, fingerprint, resource_id, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_per_caller RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
