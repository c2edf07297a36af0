-- SQLite twin of the PostgreSQL migration.
ALTER TABLE customer_profiles ADD COLUMN rating_id TEXT;
ALTER TABLE customer_profiles ADD COLUMN grade TEXT;
ALTER TABLE customer_profiles ADD COLUMN next_review_date TEXT;            -- YYYY-MM-DD
ALTER TABLE customer_profiles ADD COLUMN rating_changed_at TEXT NOT NULL DEFAULT '1970-01-01T00:00:00+00:00';
