-- The probability of default of the customer's grade (RatingChanged.pd, a fraction as text),
-- for the price of credit and the loss figures (issue #24). NULL until the next rating.
ALTER TABLE customer_profiles ADD COLUMN pd TEXT;
