-- SQLite twin of the PostgreSQL migration; see there for what each table means.
CREATE TABLE dunning_policies (
    policy_id    TEXT NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    document     BLOB NOT NULL,
    request_id   TEXT NOT NULL UNIQUE,
    fingerprint  TEXT NOT NULL,
    published_at TEXT NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (policy_id, version)
) STRICT;

CREATE TABLE dunning_policy_lock (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    publications INTEGER NOT NULL
) STRICT;
INSERT INTO dunning_policy_lock (id, publications) VALUES (1, 0);

CREATE TABLE dunning_actions (
    action_id   TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    invoice_id  TEXT NOT NULL,
    level       INTEGER NOT NULL,
    as_of_date  TEXT NOT NULL,
    document    BLOB NOT NULL,
    UNIQUE (invoice_id, level)
) STRICT;
CREATE INDEX dunning_actions_by_customer ON dunning_actions (customer_id, action_id);

CREATE TABLE dunning_runs (
    request_id  TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    response    BLOB NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
