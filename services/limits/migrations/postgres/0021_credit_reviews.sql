-- Reviews after a grade change (issue #22): one per rating event that moved a customer's
-- grade, walked through the CREDIT_REVIEW chain of the approval matrix.
CREATE TABLE credit_reviews (
    review_id   TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,               -- the RatingChanged that opened it
    customer_id TEXT NOT NULL,
    document    JSONB NOT NULL,                     -- the review with its chain
    opened_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX credit_reviews_by_customer ON credit_reviews (customer_id, opened_at);
