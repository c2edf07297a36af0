-- People behind tokens, expiry and last use; see the PostgreSQL migration.
CREATE TABLE people (
    person_id  TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
) STRICT;

INSERT INTO people (person_id, name, created_at)
SELECT 'psn_' || substr(min(id), 5), name, min(created_at) FROM api_tokens GROUP BY name;

-- SQLite cannot add a NOT NULL column to a filled table; the store always writes it.
ALTER TABLE api_tokens ADD COLUMN person_id TEXT REFERENCES people (person_id);
UPDATE api_tokens SET person_id = (SELECT person_id FROM people WHERE people.name = api_tokens.name);
CREATE INDEX api_tokens_by_person ON api_tokens (person_id);

ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;
