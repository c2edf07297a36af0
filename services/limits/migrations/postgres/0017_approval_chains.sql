-- Approval chains (issue #22). The approval matrix is versioned data: every proposal is a row,
-- published by its POLICY_CHANGE chain; the shipped matrix (version 0) is never stored.
CREATE TABLE approval_matrices (
    version     INTEGER PRIMARY KEY,
    status      TEXT NOT NULL,                      -- PROPOSED, PUBLISHED, REJECTED
    document    JSONB NOT NULL,                     -- the version with its chain
    proposed_at TIMESTAMPTZ NOT NULL
);

-- Who a chain waits for, one row per audience: each role of the current step while it is
-- pending ("role:FINANCE"), its maker once returned ("person:<person id>"), and, after it is
-- approved, each role of its inform-only steps ("informed:BOARD", 备案). People's queues read
-- their audiences' rows instead of every request. Rewritten in the transaction that moves
-- the chain; a rejected chain has none.
CREATE TABLE approval_tasks (
    audience      TEXT NOT NULL,                    -- role:FINANCE, person:<id>, informed:BOARD
    kind          TEXT NOT NULL,                    -- LIMIT_REQUEST, POLICY_CHANGE, …
    record_id     TEXT NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL,
    waiting_since TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (audience, kind, record_id)
);
CREATE INDEX approval_tasks_record ON approval_tasks (kind, record_id);

-- Optimistic concurrency for a request's chain: each step's decision moves the revision on,
-- so two people deciding the same step at once cannot both win.
ALTER TABLE limit_requests ADD COLUMN chain_revision INTEGER NOT NULL DEFAULT 0;
