-- The customer's latest financial statement, from intake's FinancialStatementSubmitted events:
-- ProposeLimit takes a share of its equity and a multiple of its average monthly revenue.
-- One row per customer. A newer version of the same period (fiscal year and quarter) replaces
-- the row; another period replaces it only when it ends later (on the same end date, the
-- longer period wins: a year's revenue averages out a season). Amounts stay decimal strings
-- so they are exact; the period end is YYYY-MM-DD text, which sorts as dates do.
CREATE TABLE customer_statements (
    customer_id     TEXT PRIMARY KEY,
    statement_id    TEXT NOT NULL,
    fiscal_year     INTEGER NOT NULL,
    fiscal_quarter  INTEGER NOT NULL,                  -- 0 for an annual statement
    version         INTEGER NOT NULL,
    period_end_date TEXT NOT NULL,                     -- YYYY-MM-DD
    period_months   INTEGER NOT NULL,                  -- 12 annual, 3 quarterly
    currency        TEXT NOT NULL,
    equity          TEXT NOT NULL,
    revenue         TEXT NOT NULL,
    submitted_at    TIMESTAMPTZ NOT NULL
);
