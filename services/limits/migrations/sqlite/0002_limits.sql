-- SQLite twin of the PostgreSQL migration.
-- What limits knows of each customer, projected from intake's events (it never reads
-- intake's tables): lifecycle status and corporate group, with the time of the change that
-- set each, so a late, older event cannot overwrite a newer state.
CREATE TABLE customer_profiles (
    customer_id       TEXT PRIMARY KEY,
    status            TEXT NOT NULL,
    status_changed_at TEXT NOT NULL,
    group_id          TEXT,
    group_changed_at  TEXT NOT NULL
);
CREATE INDEX customer_profiles_group ON customer_profiles (group_id) WHERE group_id IS NOT NULL;

-- Limit requests (maker) and their decisions (checker).
CREATE TABLE limit_requests (
    id           TEXT PRIMARY KEY,                    -- lrq_<uuid v7>: sorts by time
    scope_key    TEXT NOT NULL,                       -- customer:<id>, group:<id>, portfolio
    status       TEXT NOT NULL,
    document     TEXT NOT NULL,
    requested_at TEXT NOT NULL
);
CREATE INDEX limit_requests_scope ON limit_requests (scope_key, id);
CREATE INDEX limit_requests_status ON limit_requests (status, id);

-- Granted limits. ACTIVE rows may be scheduled, in force or expired by their dates.
CREATE TABLE credit_limits (
    id         TEXT PRIMARY KEY,
    scope_key  TEXT NOT NULL,
    status     TEXT NOT NULL,                         -- ACTIVE or SUPERSEDED
    temporary  INTEGER NOT NULL,
    document   TEXT NOT NULL,
    granted_at TEXT NOT NULL
);
CREATE INDEX credit_limits_scope ON credit_limits (scope_key, status);

-- The limit change log: old and new amount, who requested, who approved, when, why.
CREATE TABLE limit_history (
    id         TEXT PRIMARY KEY,
    scope_key  TEXT NOT NULL,
    document   TEXT NOT NULL,
    changed_at TEXT NOT NULL
);
CREATE INDEX limit_history_scope ON limit_history (scope_key, id);

-- request_id of every state change: a retry returns the first result.
CREATE TABLE idempotency_keys (
    request_id  TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
