-- A referral lives in the row of the answer that referred the order; see the PostgreSQL
-- migration.
ALTER TABLE authorizations ADD COLUMN referral_id TEXT;
ALTER TABLE authorizations ADD COLUMN referral_status TEXT;
ALTER TABLE authorizations ADD COLUMN referral TEXT;

UPDATE authorizations
SET referral_id = moved.id, referral_status = moved.status, referral = moved.document
FROM referrals AS moved
WHERE authorizations.customer_id = moved.customer_id
  AND authorizations.idempotency_key = json_extract(moved.document, '$.idempotency_key');

CREATE UNIQUE INDEX authorizations_referral ON authorizations (referral_id)
    WHERE referral_id IS NOT NULL;
CREATE INDEX authorizations_referral_queue
    ON authorizations ((CASE WHEN referral_status = 'OPEN' THEN '0' ELSE '1' END || referral_id))
    WHERE referral_id IS NOT NULL;
CREATE INDEX authorizations_customer_referrals ON authorizations (customer_id, referral_id)
    WHERE referral_id IS NOT NULL;

DROP TABLE referrals;
