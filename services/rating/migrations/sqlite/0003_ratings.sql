-- SQLite twin of the PostgreSQL migration; see there for what each table means.
CREATE TABLE ratings (
    rating_id        TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    rated_at         TEXT NOT NULL,
    current          INTEGER NOT NULL,
    grade            TEXT NOT NULL,
    grade_rank       INTEGER NOT NULL,
    pd               TEXT NOT NULL,
    override_id      TEXT,
    next_review_date TEXT NOT NULL,
    document         BLOB NOT NULL
) STRICT;
CREATE UNIQUE INDEX ratings_one_current ON ratings (customer_id) WHERE current;
CREATE INDEX ratings_by_customer ON ratings (customer_id, rating_id);
CREATE INDEX ratings_due ON ratings (next_review_date, customer_id) WHERE current;

CREATE TABLE rating_overrides (
    override_id TEXT PRIMARY KEY,
    rating_id   TEXT NOT NULL REFERENCES ratings (rating_id),
    customer_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    document    BLOB NOT NULL
) STRICT;
CREATE UNIQUE INDEX rating_overrides_one_pending ON rating_overrides (rating_id) WHERE status = 'PENDING';
CREATE INDEX rating_overrides_by_customer ON rating_overrides (customer_id, override_id);

CREATE TABLE rated_customers (
    customer_id TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    changed_at  TEXT NOT NULL
) STRICT;

CREATE TABLE review_runs (
    request_id  TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    response    BLOB NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
