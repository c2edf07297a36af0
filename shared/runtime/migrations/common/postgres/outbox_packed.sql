-- A row may pack several events written by one commit (limits' group commit writes the
-- ReferralCreated events of a whole batch as one row): its payload is then the events'
-- length-delimited encodings one after another. The relay unpacks it and publishes each event
-- on its own, so consumers see one stream entry per event either way.
ALTER TABLE outbox ADD COLUMN packed BOOLEAN NOT NULL DEFAULT false;
