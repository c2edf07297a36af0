-- A run's request_id belongs to the caller that sent it, as idempotency keys do (store kit,
-- "idempotency keys per caller"): another principal's run with the same id is its own run, not
-- a replay of someone else's answer. Runs recorded before have an empty caller.
ALTER TABLE review_runs ADD COLUMN caller TEXT NOT NULL DEFAULT '';
ALTER TABLE review_runs DROP CONSTRAINT review_runs_pkey;
ALTER TABLE review_runs ADD PRIMARY KEY (caller, request_id);
