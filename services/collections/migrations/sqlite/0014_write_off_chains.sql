-- Write-offs walk the approval matrix's WRITE_OFF chain (issue #22): the chain, with every
-- step's verdict, is kept with the write-off. NULL for a write-off requested before chains
-- (or without a limits service to choose one): it keeps the one-step four-eyes decision.
ALTER TABLE write_offs ADD COLUMN approval_chain TEXT;
