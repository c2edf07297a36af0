-- The latest completed credit investigation of each customer (intake's InvestigationCompleted,
-- issue #23): a credit policy with investigation_required_for_first_limit approves no first
-- limit without one.
CREATE TABLE customer_investigations (
    customer_id      TEXT PRIMARY KEY,
    investigation_id TEXT NOT NULL,
    completed_at     TIMESTAMPTZ NOT NULL
);
