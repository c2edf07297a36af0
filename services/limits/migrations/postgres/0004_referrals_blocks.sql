-- The review queue lists a customer's referrals; decided ones keep their row.
CREATE INDEX referrals_customer ON referrals (customer_id, id);

-- Credit blocks in force, at most one per customer and kind, with who set it, when and why.
-- Clearing deletes the row; the CreditBlockChanged events in the outbox are the change log.
CREATE TABLE credit_blocks (
    customer_id TEXT NOT NULL,
    block_type  TEXT NOT NULL,                       -- MANUAL, OVERDUE, CUSTOMER_STATUS
    document    JSONB NOT NULL,
    set_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (customer_id, block_type)
);
