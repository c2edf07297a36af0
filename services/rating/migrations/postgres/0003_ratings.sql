-- Ratings: one row per rating, never deleted. The document is the rating as scored (an
-- encoded credit.v1.Rating: model grade, breakdown, reasons, input snapshot); the columns are
-- what changes afterwards (the effective grade when an override is approved, whether it is
-- still the customer's current rating) and what the lists filter and sort by.
CREATE TABLE ratings (
    rating_id        TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    rated_at         TIMESTAMPTZ NOT NULL,
    current          BOOLEAN NOT NULL,
    -- Effective grade, its rank and PD: the approved override's, else the model's.
    grade            TEXT NOT NULL,
    grade_rank       INTEGER NOT NULL,
    pd               TEXT NOT NULL,
    override_id      TEXT,
    next_review_date DATE NOT NULL,
    document         BYTEA NOT NULL
);
-- A customer has at most one current rating: two raters at once cannot both win.
CREATE UNIQUE INDEX ratings_one_current ON ratings (customer_id) WHERE current;
-- History, newest first (rating ids are time-ordered).
CREATE INDEX ratings_by_customer ON ratings (customer_id, rating_id);
CREATE INDEX ratings_due ON ratings (next_review_date, customer_id) WHERE current;

-- Overrides of a rating's grade, proposed by one person and decided by another.
CREATE TABLE rating_overrides (
    override_id TEXT PRIMARY KEY,
    rating_id   TEXT NOT NULL REFERENCES ratings (rating_id),
    customer_id TEXT NOT NULL,
    -- PENDING, APPROVED or REJECTED.
    status      TEXT NOT NULL,
    -- An encoded credit.v1.RatingOverride in its latest state.
    document    BYTEA NOT NULL
);
-- One proposal at a time waits for a checker per rating.
CREATE UNIQUE INDEX rating_overrides_one_pending ON rating_overrides (rating_id) WHERE status = 'PENDING';
CREATE INDEX rating_overrides_by_customer ON rating_overrides (customer_id, override_id);

-- What rating knows of intake's customers from their events: closed customers are not due
-- for review.
CREATE TABLE rated_customers (
    customer_id TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL
);

-- RunScheduledReviews calls, so a retry with the same request_id answers what the first call
-- did (the customers it re-rated are no longer due, so running again would answer nothing).
CREATE TABLE review_runs (
    request_id  TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    -- An encoded credit.v1.RunScheduledReviewsResponse.
    response    BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
