-- Overrides and grade approvals walk the approval matrix (issue #22): the chain, with every
-- step's verdict, is kept with the override. NULL for an override proposed before chains, or
-- without a limits service to choose one: one checker then decides, as its required role says.
ALTER TABLE rating_overrides ADD COLUMN approval_chain JSONB;
