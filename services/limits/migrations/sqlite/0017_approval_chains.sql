-- SQLite twin of the PostgreSQL migration.
CREATE TABLE approval_matrices (
    version     INTEGER PRIMARY KEY,
    status      TEXT NOT NULL,
    document    TEXT NOT NULL,
    proposed_at TEXT NOT NULL
);

CREATE TABLE approval_tasks (
    audience      TEXT NOT NULL,                    -- role:FINANCE, person:<id>, informed:BOARD
    kind          TEXT NOT NULL,                    -- LIMIT_REQUEST, POLICY_CHANGE, …
    record_id     TEXT NOT NULL,
    requested_at  TEXT NOT NULL,
    waiting_since TEXT NOT NULL,
    PRIMARY KEY (audience, kind, record_id)
);
CREATE INDEX approval_tasks_record ON approval_tasks (kind, record_id);

ALTER TABLE limit_requests ADD COLUMN chain_revision INTEGER NOT NULL DEFAULT 0;
