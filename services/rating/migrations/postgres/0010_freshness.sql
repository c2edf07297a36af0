-- The first day a fresh input of a rating goes stale (issue #23): ListFileReviews lists the
-- current ratings whose day comes within the policy's notice, soonest first.
ALTER TABLE ratings ADD COLUMN inputs_stale_on DATE;
CREATE INDEX ratings_inputs_stale_on ON ratings (inputs_stale_on, customer_id)
    WHERE current AND inputs_stale_on IS NOT NULL;
