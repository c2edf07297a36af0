-- The freshness of each customer's current rating (rating's RatingRecorded, issue #23): a
-- credit policy with freshness.block_approval approves no limit while the inputs were stale
-- at rating, or have gone stale since (`inputs_stale_on` has come).
CREATE TABLE customer_freshness (
    customer_id     TEXT PRIMARY KEY,
    rating_id       TEXT NOT NULL,
    stale_inputs    TEXT NOT NULL,                -- "CODE input, …" as rated; empty when fresh
    inputs_stale_on TEXT,
    recorded_at     TEXT NOT NULL
);
