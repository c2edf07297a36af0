-- Bearer tokens of people and systems that call the suite. Only a SHA-256 of each token is
-- kept: a token is 256 random bits, so a fast hash is enough and a stolen table yields none.
CREATE TABLE api_tokens (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    -- Role names (ORDER_ENTRY, ANALYST, CREDIT_MANAGER, COLLECTOR, ADMIN), comma-separated.
    roles              TEXT NOT NULL,
    authority_amount   NUMERIC(24, 4),
    authority_currency CHAR(3),
    token_hash         TEXT NOT NULL UNIQUE,
    created_at         TIMESTAMPTZ NOT NULL,
    revoked_at         TIMESTAMPTZ,
    CHECK ((authority_amount IS NULL) = (authority_currency IS NULL))
);
