-- A referral lives in the row of the answer that referred the order. Nearly every order of a
-- customer past its limit is referred, and each wrote two rows (its answer and its referral);
-- now the group commit writes one row per order (BENCHMARKS.md, twelfth run). The referral
-- keeps its own id, status and document; the indexes are partial, so an approved or declined
-- answer carries none of them.
ALTER TABLE authorizations
    ADD COLUMN referral_id     TEXT COLLATE "C",
    ADD COLUMN referral_status TEXT COLLATE "C",
    ADD COLUMN referral        JSON;

UPDATE authorizations AS answer
SET referral_id = moved.id, referral_status = moved.status, referral = moved.document
FROM referrals AS moved
WHERE answer.customer_id = moved.customer_id
  AND answer.idempotency_key = moved.document->>'idempotency_key';

-- DecideReferral and GetReferral find a referral by its id.
CREATE UNIQUE INDEX authorizations_referral ON authorizations (referral_id)
    WHERE referral_id IS NOT NULL;
-- The review queue: open referrals first, each part oldest first (ids sort by time). The
-- expression is the queue's page key, so a page is a range of this index.
CREATE INDEX authorizations_referral_queue
    ON authorizations ((CASE WHEN referral_status = 'OPEN' THEN '0' ELSE '1' END || referral_id))
    WHERE referral_id IS NOT NULL;
-- One customer's referrals.
CREATE INDEX authorizations_customer_referrals ON authorizations (customer_id, referral_id)
    WHERE referral_id IS NOT NULL;

DROP TABLE referrals;
