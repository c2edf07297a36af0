-- Bearer tokens of people and systems that call the suite; see the PostgreSQL migration.
CREATE TABLE api_tokens (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    roles              TEXT NOT NULL,
    -- Exact decimal kept as text: SQLite has no decimal type.
    authority_amount   TEXT,
    authority_currency TEXT,
    token_hash         TEXT NOT NULL UNIQUE,
    created_at         TEXT NOT NULL,
    revoked_at         TEXT,
    CHECK ((authority_amount IS NULL) = (authority_currency IS NULL))
) STRICT;
