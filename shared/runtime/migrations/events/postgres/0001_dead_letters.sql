-- Events a consumer could not apply: kept here until an operator replays or drops them
-- (OperationsService, `credit-suite events`). One row per consumer group and event (or, for
-- an entry that could not even be decoded, per stream entry): a redelivery of the same event
-- updates its row instead of adding another.
CREATE TABLE dead_letters (
    dead_letter_id    TEXT PRIMARY KEY,
    consumer          TEXT NOT NULL,
    producer          TEXT NOT NULL,
    -- The event id, or the entry's source when the entry could not be decoded.
    dedupe_key        TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    -- The encoded credit.v1.Event (or the raw entry), so a replay applies exactly what came.
    payload           BYTEA NOT NULL,
    source            TEXT NOT NULL,
    error             TEXT NOT NULL,
    attempts          BIGINT NOT NULL,
    -- DEAD, REPLAY_REQUESTED, REPLAYING (a consumer took the replay), REPLAYED or DROPPED.
    status            TEXT NOT NULL,
    dead_lettered_at  TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (consumer, dedupe_key)
);
-- The operator's list (newest first) and the consumers' search for requested replays.
CREATE INDEX dead_letters_by_status ON dead_letters (status, consumer, dead_lettered_at);

-- Everything that happened to a dead letter: who dead-lettered, replayed or dropped it, why.
CREATE TABLE dead_letter_actions (
    dead_letter_id TEXT NOT NULL REFERENCES dead_letters (dead_letter_id),
    seq            BIGSERIAL,
    action         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    detail         TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (dead_letter_id, seq)
);

-- How far every consumer group of a producer's stream has acknowledged what a relay
-- published, as the outbox mark of the last such event (relay round, outbox position) and the
-- stream's generation. When Redis loses the stream, its relay publishes again everything
-- from this mark on (see credit_runtime::events::OutboxRelay).
CREATE TABLE outbox_watermarks (
    store            TEXT NOT NULL,
    producer         TEXT NOT NULL,
    published_micros BIGINT NOT NULL,
    position         BIGINT NOT NULL,
    generation       BIGINT NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (store, producer)
);
