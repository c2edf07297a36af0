-- Receivable amounts limits could not yet convert into the currency the customer's exposure is
-- kept in (no FX rate for the pair). They are kept here, never dropped and never added in the
-- wrong currency; the customer carries an FX_RATE_MISSING credit block meanwhile, so no order
-- is approved on exposure that leaves them out. Once a rate exists they are converted into
-- receivable_movements and the block is lifted.
CREATE TABLE unconverted_receivables (
    source      TEXT PRIMARY KEY,          -- "invoice:<id>", "payment:<id>:<currency>", ...
    event_id    TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    currency    TEXT NOT NULL,
    amount      TEXT NOT NULL,             -- signed decimal: + raises exposure, - lowers it
    recorded_at TEXT        NOT NULL
);
CREATE INDEX unconverted_receivables_customer ON unconverted_receivables (customer_id);
CREATE INDEX unconverted_receivables_age ON unconverted_receivables (recorded_at, source);
