-- The credit file. Each record is kept whole as a JSON document (the domain type); the
-- columns beside it are what lists filter, sort and deduplicate on.
CREATE TABLE customers (
    id                  TEXT PRIMARY KEY,             -- cus_<uuid v7>: sorts by creation
    kind                TEXT NOT NULL,
    status              TEXT NOT NULL,
    country             TEXT NOT NULL,
    registration_number TEXT,                         -- enterprises only
    name_key            TEXT NOT NULL,                -- lower-case display name
    industry_code       TEXT NOT NULL,
    group_id            TEXT,
    external_reference  TEXT NOT NULL,
    version             BIGINT NOT NULL,
    document            JSONB NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
-- One enterprise per registration number and country: the duplicate check's backstop.
CREATE UNIQUE INDEX customers_registration ON customers (country, registration_number)
    WHERE registration_number IS NOT NULL;
CREATE INDEX customers_group ON customers (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX customers_name ON customers (name_key text_pattern_ops);
CREATE INDEX customers_status ON customers (status, id);

CREATE TABLE customer_groups (
    id         TEXT PRIMARY KEY,
    name_key   TEXT NOT NULL,
    document   JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- request_id of every create: a retry returns the first result, another payload is refused.
CREATE TABLE idempotency_keys (
    request_id  TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE financial_statements (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    period_key  TEXT NOT NULL,                        -- 2025 or 2025Q3
    period_type TEXT NOT NULL,
    version     INTEGER NOT NULL,
    superseded  BOOLEAN NOT NULL,
    document    JSONB NOT NULL,
    submitted_at TIMESTAMPTZ NOT NULL,
    UNIQUE (customer_id, period_key, version)
);
CREATE INDEX financial_statements_customer ON financial_statements (customer_id, id);

CREATE TABLE bureau_reports (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    document    JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX bureau_reports_customer ON bureau_reports (customer_id, id);

CREATE TABLE trade_references (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    document    JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX trade_references_customer ON trade_references (customer_id, id);

-- Who changed what, when and why; append-only.
CREATE TABLE customer_audit (
    id          TEXT PRIMARY KEY,                     -- aud_<uuid v7>: sorts by time
    customer_id TEXT NOT NULL,
    document    JSONB NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX customer_audit_customer ON customer_audit (customer_id, id);
