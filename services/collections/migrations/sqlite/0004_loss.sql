-- SQLite twin of the PostgreSQL migration; see there for what each table means.

CREATE TABLE write_offs (
    write_off_id    TEXT PRIMARY KEY,
    invoice_id      TEXT NOT NULL REFERENCES invoices (invoice_id),
    customer_id     TEXT NOT NULL,
    currency        TEXT NOT NULL,
    amount          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    status          TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    requested_by_id TEXT NOT NULL,
    requested_at    TEXT NOT NULL,
    decided_by      TEXT NOT NULL,
    decided_at      TEXT,
    decision_date   TEXT,
    decision_reason TEXT NOT NULL,
    recovered       TEXT NOT NULL,
    ledger_seq      INTEGER NOT NULL
) STRICT;
CREATE INDEX write_offs_by_status ON write_offs (status, requested_at);
CREATE INDEX write_offs_by_customer ON write_offs (customer_id, requested_at);

CREATE TABLE recoveries (
    recovery_id  TEXT PRIMARY KEY,
    write_off_id TEXT NOT NULL REFERENCES write_offs (write_off_id),
    invoice_id   TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    currency     TEXT NOT NULL,
    amount       TEXT NOT NULL,
    value_date   TEXT NOT NULL,
    reference    TEXT NOT NULL,
    ledger_seq   INTEGER NOT NULL,
    recorded_at  TEXT NOT NULL,
    recorded_by  TEXT NOT NULL
) STRICT;
CREATE INDEX recoveries_by_customer ON recoveries (customer_id, ledger_seq);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    request_id  TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
