-- SQLite twin of the PostgreSQL migration.
ALTER TABLE customer_profiles ADD COLUMN oldest_overdue_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customer_profiles ADD COLUMN overdue_changed_at TEXT NOT NULL DEFAULT '1970-01-01T00:00:00+00:00';
