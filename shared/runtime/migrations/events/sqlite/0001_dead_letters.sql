-- Events a consumer could not apply; see the PostgreSQL migration.
CREATE TABLE dead_letters (
    dead_letter_id    TEXT PRIMARY KEY,
    consumer          TEXT NOT NULL,
    producer          TEXT NOT NULL,
    dedupe_key        TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    payload           BLOB NOT NULL,
    source            TEXT NOT NULL,
    error             TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    status            TEXT NOT NULL,
    dead_lettered_at  TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (consumer, dedupe_key)
) STRICT;
CREATE INDEX dead_letters_by_status ON dead_letters (status, consumer, dead_lettered_at);

CREATE TABLE dead_letter_actions (
    dead_letter_id TEXT NOT NULL REFERENCES dead_letters (dead_letter_id),
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    action         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    detail         TEXT NOT NULL,
    at             TEXT NOT NULL
) STRICT;
CREATE INDEX dead_letter_actions_by_letter ON dead_letter_actions (dead_letter_id, seq);

-- The embedded bus loses nothing it was handed, so nothing is published again; the table is
-- kept so both backends have the same schema.
CREATE TABLE outbox_watermarks (
    store            TEXT NOT NULL,
    producer         TEXT NOT NULL,
    published_micros INTEGER NOT NULL,
    position         INTEGER NOT NULL,
    generation       INTEGER NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (store, producer)
) STRICT;
