-- A row may pack several events written by one commit; see the PostgreSQL migration.
ALTER TABLE outbox ADD COLUMN packed INTEGER NOT NULL DEFAULT 0 CHECK (packed IN (0, 1));
