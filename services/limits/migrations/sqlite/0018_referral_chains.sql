-- Step 7.2 (issue #22): a referral walks an approval chain kept in its document; each verdict
-- moves the revision on, so two people deciding the same step at once cannot both win.
ALTER TABLE authorizations ADD COLUMN referral_revision INTEGER NOT NULL DEFAULT 0;
