-- Dunning policies: every published version is a row of its own (actions name the version
-- they were created under). The document is the policy as published (an encoded
-- credit.v1.DunningPolicy), checked again when read.
CREATE TABLE dunning_policies (
    policy_id    TEXT NOT NULL,
    version      BIGINT NOT NULL CHECK (version >= 1),
    document     BYTEA NOT NULL,
    -- The PublishDunningPolicy call that made it, for retries.
    request_id   TEXT NOT NULL UNIQUE,
    fingerprint  TEXT NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (policy_id, version)
);

-- One row every publication updates first, so the check that no two policies claim a grade
-- sees every policy published before.
CREATE TABLE dunning_policy_lock (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    publications BIGINT NOT NULL
);
INSERT INTO dunning_policy_lock (id, publications) VALUES (1, 0);

-- Dunning actions: one level of one invoice at most once, whatever runs at the same time.
CREATE TABLE dunning_actions (
    action_id   TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    invoice_id  TEXT NOT NULL,
    level       INTEGER NOT NULL,
    as_of_date  DATE NOT NULL,
    -- An encoded credit.v1.DunningAction.
    document    BYTEA NOT NULL,
    UNIQUE (invoice_id, level)
);
CREATE INDEX dunning_actions_by_customer ON dunning_actions (customer_id, action_id);

-- RunDunning calls, so a retry with the same request_id answers what the first did.
CREATE TABLE dunning_runs (
    request_id  TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    response    BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
