-- A run's request_id belongs to the caller that sent it (see the PostgreSQL migration). SQLite
-- cannot change a primary key in place: the table is rebuilt.
CREATE TABLE review_runs_per_caller (
    caller      TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response    BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (caller, request_id)
) STRICT;
INSERT INTO review_runs_per_caller (caller, request_id, fingerprint, response, created_at)
SELECT '', request_id, fingerprint, response, created_at FROM review_runs;
DROP TABLE review_runs;
ALTER TABLE review_runs_per_caller RENAME TO review_runs;
