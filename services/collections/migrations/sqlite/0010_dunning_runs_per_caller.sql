-- A run's request_id belongs to the caller that sent it (see the PostgreSQL migration). SQLite
-- cannot change a primary key in place: the table is rebuilt.
CREATE TABLE dunning_runs_per_caller (
    caller      TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response    BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (caller, request_id)
) STRICT;
INSERT INTO dunning_runs_per_caller (caller, request_id, fingerprint, response, created_at)
SELECT '', request_id, fingerprint, response, created_at FROM dunning_runs;
DROP TABLE dunning_runs;
ALTER TABLE dunning_runs_per_caller RENAME TO dunning_runs;
