-- FX rates: one row per pair and effective time; the newest rate effective at or before an
-- instant converts orders at it. Setting a pair again at the same effective time corrects it.
CREATE TABLE fx_rates (
    base_currency  TEXT NOT NULL,
    quote_currency TEXT NOT NULL,
    effective_at   TIMESTAMPTZ NOT NULL,
    document       JSONB NOT NULL,
    PRIMARY KEY (base_currency, quote_currency, effective_at)
);

-- A customer's own credit terms (payment terms, per-order cap); what is absent comes from
-- the credit policy's defaults for the customer's grade.
CREATE TABLE credit_terms (
    customer_id TEXT PRIMARY KEY,
    document    JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- The credit policy: one row, replaced as a whole under its etag.
CREATE TABLE credit_policy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    etag       TEXT NOT NULL,
    document   JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
