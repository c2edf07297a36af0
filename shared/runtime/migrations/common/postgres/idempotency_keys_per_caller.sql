-- Idempotency keys belong to the caller that sent them: another principal that happens to send
-- the same request_id does its own work instead of being handed someone else's answer. Keys
-- are kept for a retention period (CREDIT_IDEMPOTENCY_RETENTION_HOURS) and swept after it, so
-- the table holds a day of requests instead of all of history. Rows written before keys were
-- scoped keep an empty caller: they can no longer be replayed and age out.
ALTER TABLE idempotency_keys ADD COLUMN caller TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (caller, request_id);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
