-- A PublishDunningPolicy request_id belongs to the principal that sent it, as every
-- idempotency key does: another principal's publication with the same id is its own.
ALTER TABLE dunning_policies DROP CONSTRAINT dunning_policies_request_id_key;
ALTER TABLE dunning_policies
    ADD CONSTRAINT dunning_policies_request_per_publisher UNIQUE (published_by, request_id);
