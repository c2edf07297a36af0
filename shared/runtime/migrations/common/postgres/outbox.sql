-- Transactional outbox: an event is inserted in the same transaction as the change it
-- announces, and a relay publishes it to Redis Streams afterwards (at least once; consumers
-- deduplicate by event_id in processed_events).
CREATE TABLE outbox (
    position     BIGSERIAL PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    -- An encoded credit.v1.Event.
    payload      BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;

-- Events of other services this service has already applied, so a redelivery is a no-op.
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
