-- SQLite twin of the PostgreSQL migration; see there for what each table means.
-- Running balances, so that posting, allocating and reading one page of aging cost the same
-- however many open items a customer carries (issue #19). Both tables are updated in the same
-- transaction as each invoice, credit note, payment and write-off, after the customer's
-- account row is locked (customer_accounts), so they never disagree with the rows they sum.

-- Per customer and currency: what is open on invoices and what is held as unapplied credit.
-- Amounts are decimal strings like every other amount here (exact on both backends).
CREATE TABLE customer_balances (
    customer_id      TEXT NOT NULL,
    currency         TEXT NOT NULL,
    open_receivables TEXT NOT NULL,
    unapplied_credit TEXT NOT NULL,
    PRIMARY KEY (customer_id, currency)
) STRICT;

-- Per customer, currency and due date: the open amount and the number of open invoices due
-- that day. Aging buckets are ranges of due dates, so the totals of an aging as of today are
-- sums over these rows: their number grows with the distinct due dates, not with the invoices.
CREATE TABLE customer_due_balances (
    customer_id   TEXT NOT NULL,
    currency      TEXT NOT NULL,
    due_date      TEXT NOT NULL,
    open_amount   TEXT NOT NULL,
    open_invoices INTEGER NOT NULL,
    PRIMARY KEY (customer_id, currency, due_date)
) STRICT;

-- Customers whose balances were there before this migration: the service computes their rows
-- from the invoices, movements and payments at start-up (exact decimal arithmetic is done in
-- Rust, SQLite has none) and removes them from this list.
CREATE TABLE balance_backfill (
    customer_id TEXT PRIMARY KEY
) STRICT;
INSERT INTO balance_backfill (customer_id) SELECT customer_id FROM customer_accounts;

-- Oldest-first allocation and keyset pages of aging walk a customer's open invoices in these
-- orders and stop after what they need.
CREATE INDEX invoices_open_allocation_order
    ON invoices (customer_id, currency, due_date, issue_date, invoice_number, invoice_id)
    WHERE closed_date IS NULL;
CREATE INDEX invoices_open_aging_order
    ON invoices (customer_id, due_date, invoice_number, invoice_id)
    WHERE closed_date IS NULL;
-- A payment's credit applied to a new invoice reads only the payments holding credit in
-- the invoice's currency.
CREATE INDEX payments_with_credit_by_currency
    ON payments (customer_id, currency, value_date, ledger_seq) WHERE has_unapplied;
