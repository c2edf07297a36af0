-- Loss: write-offs (maker-checker) and recoveries on them. The write-off's effect on the
-- invoice is a WRITE_OFF row in receivable_movements, written when it is approved; this table
-- keeps the request, the decision and what was recovered since.

CREATE TABLE write_offs (
    write_off_id    TEXT PRIMARY KEY,
    invoice_id      TEXT NOT NULL REFERENCES invoices (invoice_id),
    customer_id     TEXT NOT NULL,
    currency        TEXT NOT NULL,
    amount          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    -- PENDING, APPROVED or REJECTED.
    status          TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    -- Principal id of the maker: the checker must be another principal.
    requested_by_id TEXT NOT NULL,
    requested_at    TIMESTAMPTZ NOT NULL,
    decided_by      TEXT NOT NULL,
    decided_at      TIMESTAMPTZ,
    -- The approval date: the WRITE_OFF movement's effective date.
    decision_date   DATE,
    decision_reason TEXT NOT NULL,
    -- Sum of recoveries, a decimal string.
    recovered       TEXT NOT NULL,
    -- Position in the customer's ledger (customer_accounts.postings) when approved; 0 before.
    ledger_seq      BIGINT NOT NULL
);
CREATE INDEX write_offs_by_status ON write_offs (status, requested_at);
CREATE INDEX write_offs_by_customer ON write_offs (customer_id, requested_at);

CREATE TABLE recoveries (
    recovery_id  TEXT PRIMARY KEY,
    write_off_id TEXT NOT NULL REFERENCES write_offs (write_off_id),
    invoice_id   TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    currency     TEXT NOT NULL,
    amount       TEXT NOT NULL,
    value_date   DATE NOT NULL,
    reference    TEXT NOT NULL,
    ledger_seq   BIGINT NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    recorded_by  TEXT NOT NULL
);
CREATE INDEX recoveries_by_customer ON recoveries (customer_id, ledger_seq);

-- Idempotency keys of requests that carry a request_id (RequestWriteOff, DecideWriteOff,
-- RecordRecovery, and other collections operations). IF NOT EXISTS: other collections
-- migrations may create the same table with the same columns.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    request_id  TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
