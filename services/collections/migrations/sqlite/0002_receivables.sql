-- SQLite twin of the PostgreSQL migration; see there for what each table means.
-- Receivables: invoices, the movements that reduce them (payment allocations, credit notes,
-- write-offs), payments and credit notes. Amounts are decimal strings (exact on both
-- backends); the open amount of an invoice on any date is computed from its movements.

-- One row per customer with receivables: every write to a customer's account updates it
-- first, so writes of one customer queue (two payments never allocate the same open amount),
-- and its counter orders the customer's ledger.
CREATE TABLE customer_accounts (
    customer_id TEXT PRIMARY KEY,
    postings    INTEGER NOT NULL
) STRICT;

CREATE TABLE invoices (
    invoice_id     TEXT PRIMARY KEY,
    customer_id    TEXT NOT NULL,
    invoice_number TEXT NOT NULL,
    currency       TEXT NOT NULL,
    amount         TEXT NOT NULL,
    issue_date     TEXT NOT NULL,
    due_date       TEXT NOT NULL,
    order_id       TEXT NOT NULL,
    hold_id        TEXT NOT NULL,
    -- Payment terms the due date came from; NULL when the due date was given.
    net_days       INTEGER,
    discount_percent TEXT NOT NULL,
    discount_days  INTEGER NOT NULL,
    -- Date the open amount reached zero; NULL while open.
    closed_date    TEXT,
    -- Digest of the posting request: the same number with other content is refused.
    fingerprint    TEXT NOT NULL,
    ledger_seq     INTEGER NOT NULL,
    posted_at      TEXT NOT NULL,
    posted_by      TEXT NOT NULL,
    UNIQUE (customer_id, invoice_number)
) STRICT;
CREATE INDEX invoices_open ON invoices (customer_id, due_date) WHERE closed_date IS NULL;
CREATE INDEX invoices_by_customer ON invoices (customer_id, due_date, invoice_number);

-- What reduced an invoice: PAYMENT (an allocation, or unapplied credit applied),
-- CREDIT_NOTE, WRITE_OFF; effective on its date (value, issue or approval date).
CREATE TABLE receivable_movements (
    movement_id    TEXT PRIMARY KEY,
    customer_id    TEXT NOT NULL,
    invoice_id     TEXT NOT NULL REFERENCES invoices (invoice_id),
    kind           TEXT NOT NULL,
    amount         TEXT NOT NULL,
    effective_date TEXT NOT NULL,
    -- The payment, credit note or write-off.
    document_id    TEXT NOT NULL,
    recorded_at    TEXT NOT NULL
) STRICT;
CREATE INDEX receivable_movements_by_invoice ON receivable_movements (invoice_id);
CREATE INDEX receivable_movements_by_document ON receivable_movements (document_id);

CREATE TABLE payments (
    payment_id   TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    reference    TEXT NOT NULL,
    currency     TEXT NOT NULL,
    amount       TEXT NOT NULL,
    value_date   TEXT NOT NULL,
    -- Left unapplied when recorded.
    unapplied_at_recording TEXT NOT NULL,
    -- Unapplied credit still available for later invoices.
    unapplied    TEXT NOT NULL,
    has_unapplied INTEGER NOT NULL,
    fingerprint  TEXT NOT NULL,
    ledger_seq   INTEGER NOT NULL,
    recorded_at  TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,
    UNIQUE (customer_id, reference)
) STRICT;
CREATE INDEX payments_with_credit ON payments (customer_id, value_date) WHERE has_unapplied;

CREATE TABLE credit_notes (
    credit_note_id     TEXT PRIMARY KEY,
    customer_id        TEXT NOT NULL,
    credit_note_number TEXT NOT NULL,
    invoice_id         TEXT NOT NULL REFERENCES invoices (invoice_id),
    currency           TEXT NOT NULL,
    amount             TEXT NOT NULL,
    issue_date         TEXT NOT NULL,
    reason             TEXT NOT NULL,
    dispute_id         TEXT NOT NULL,
    fingerprint        TEXT NOT NULL,
    ledger_seq         INTEGER NOT NULL,
    posted_at          TEXT NOT NULL,
    posted_by          TEXT NOT NULL,
    UNIQUE (customer_id, credit_note_number)
) STRICT;

-- Each customer's oldest overdue days as last announced (InvoiceOverdue), so overdue
-- detection announces changes only.
CREATE TABLE overdue_positions (
    customer_id         TEXT PRIMARY KEY,
    oldest_overdue_days INTEGER NOT NULL,
    as_of_date          TEXT NOT NULL
) STRICT;
