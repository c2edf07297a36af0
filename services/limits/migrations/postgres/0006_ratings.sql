-- The customer's rating in force, from rating's RatingChanged events: the grade picks the
-- policy defaults (terms, overdue tolerance), the review date decides RATING_STALE.
ALTER TABLE customer_profiles ADD COLUMN rating_id TEXT;
ALTER TABLE customer_profiles ADD COLUMN grade TEXT;
ALTER TABLE customer_profiles ADD COLUMN next_review_date TEXT;            -- YYYY-MM-DD
ALTER TABLE customer_profiles ADD COLUMN rating_changed_at TIMESTAMPTZ NOT NULL DEFAULT '1970-01-01T00:00:00Z';
