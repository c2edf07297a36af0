-- SQLite twin of the PostgreSQL migration; see there for what each table means.
-- Collection cases, contacts, promises to pay, disputes, the customers' ratings as rating
-- announces them, and idempotency keys of request_id-keyed changes.

-- One open case per customer while it has overdue receivables (DetectOverdue opens and
-- closes them). Overdue amounts and days are computed when read, from the receivables.
CREATE TABLE collection_cases (
    case_id            TEXT PRIMARY KEY,
    customer_id        TEXT NOT NULL,
    -- OPEN or CLOSED.
    status             TEXT NOT NULL,
    -- Principal name of the collector; '' when unassigned.
    assigned_collector TEXT NOT NULL,
    broken_promises    INTEGER NOT NULL,
    escalation_level   INTEGER NOT NULL,
    next_contact_date  TEXT,
    last_contact_at    TEXT,
    opened_at          TEXT NOT NULL,
    closed_at          TEXT
) STRICT;
CREATE UNIQUE INDEX collection_cases_one_open ON collection_cases (customer_id) WHERE status = 'OPEN';
CREATE INDEX collection_cases_by_customer ON collection_cases (customer_id);

-- Promises to pay: OPEN, KEPT, BROKEN or CANCELLED (replaced by a later promise, or the case
-- closed before its date).
CREATE TABLE promises (
    promise_id    TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES collection_cases (case_id),
    customer_id   TEXT NOT NULL,
    currency      TEXT NOT NULL,
    amount        TEXT NOT NULL,
    made_on       TEXT NOT NULL,
    promised_date TEXT NOT NULL,
    -- Invoices covered, comma-separated; '' = the case's invoices.
    invoice_ids   TEXT NOT NULL,
    status        TEXT NOT NULL,
    paid_amount   TEXT NOT NULL,
    decided_on    TEXT,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL
) STRICT;
CREATE INDEX promises_open ON promises (customer_id) WHERE status = 'OPEN';
CREATE INDEX promises_by_case ON promises (case_id);

CREATE TABLE contacts (
    contact_id        TEXT PRIMARY KEY,
    case_id           TEXT NOT NULL REFERENCES collection_cases (case_id),
    customer_id       TEXT NOT NULL,
    channel           TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    -- Personal data: never logged.
    notes             TEXT NOT NULL,
    contact_name      TEXT NOT NULL,
    -- The promise made; '' when none.
    promise_id        TEXT NOT NULL,
    contacted_at      TEXT NOT NULL,
    logged_by         TEXT NOT NULL,
    next_contact_date TEXT NOT NULL
) STRICT;
CREATE INDEX contacts_by_case ON contacts (case_id, contact_id);
CREATE INDEX contacts_by_customer ON contacts (customer_id, contact_id);

-- Disputes: OPEN (the amount is left out of automatic allocation and dunning),
-- RESOLVED_VALID (a credit note was posted) or RESOLVED_INVALID.
CREATE TABLE disputes (
    dispute_id       TEXT PRIMARY KEY,
    invoice_id       TEXT NOT NULL REFERENCES invoices (invoice_id),
    customer_id      TEXT NOT NULL,
    currency         TEXT NOT NULL,
    amount           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL,
    opened_at        TEXT NOT NULL,
    opened_by        TEXT NOT NULL,
    resolved_at      TEXT,
    resolved_by      TEXT NOT NULL,
    resolution_notes TEXT NOT NULL,
    credit_note_id   TEXT NOT NULL
) STRICT;
CREATE INDEX disputes_by_customer ON disputes (customer_id, dispute_id);
CREATE INDEX disputes_by_invoice ON disputes (invoice_id);

-- Each customer's rating in force, from rating's RatingChanged (the worklist's PD).
CREATE TABLE customer_ratings (
    customer_id       TEXT PRIMARY KEY,
    grade             TEXT NOT NULL,
    pd                TEXT NOT NULL,
    rating_changed_at TEXT NOT NULL
) STRICT;

-- request_id of LogContact, OpenDispute and ResolveDispute: a retry answers the first result.
CREATE TABLE idempotency_keys (
    request_id  TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
