-- People (or systems) behind tokens. A person may hold several tokens (a rotated one, one per
-- device or role set); four-eyes checks compare people, never tokens. A name belongs to one
-- person: issuing a token under a known name adds a token to that person.
CREATE TABLE people (
    person_id  TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

-- Tokens issued before people were kept: one person per name, named after its first token.
INSERT INTO people (person_id, name, created_at)
SELECT 'psn_' || substr(min(id), 5), name, min(created_at) FROM api_tokens GROUP BY name;

ALTER TABLE api_tokens ADD COLUMN person_id TEXT REFERENCES people (person_id);
UPDATE api_tokens SET person_id = (SELECT person_id FROM people WHERE people.name = api_tokens.name);
ALTER TABLE api_tokens ALTER COLUMN person_id SET NOT NULL;
CREATE INDEX api_tokens_by_person ON api_tokens (person_id);

-- A token stops working at expires_at; tokens issued before expiry was kept have none.
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMPTZ;
-- When the token last opened a session with a process (kept to the minute, not per call).
ALTER TABLE api_tokens ADD COLUMN last_used_at TIMESTAMPTZ;

-- The authority is read and written as exact decimal text on both backends, so that one
-- store implementation serves both.
ALTER TABLE api_tokens ALTER COLUMN authority_amount TYPE TEXT USING authority_amount::text;
