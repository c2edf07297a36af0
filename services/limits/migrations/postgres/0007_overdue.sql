-- The customer's oldest overdue days, from collections' InvoiceOverdue events: OVERDUE
-- referrals and blocks compare them with the tolerance of the customer's grade.
ALTER TABLE customer_profiles ADD COLUMN oldest_overdue_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customer_profiles ADD COLUMN overdue_changed_at TIMESTAMPTZ NOT NULL DEFAULT '1970-01-01T00:00:00Z';
