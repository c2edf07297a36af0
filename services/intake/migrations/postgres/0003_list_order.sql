-- Lists come newest first (intake.proto): statements by period end, then version; bureau
-- reports by report date. Both dates are kept as "YYYY-MM-DD" text, the form the documents
-- hold them in, so that text order is date order and a page token can carry them as text.
ALTER TABLE financial_statements ADD COLUMN period_end TEXT NOT NULL DEFAULT '';
UPDATE financial_statements SET period_end = document->'period'->>'period_end';
DROP INDEX financial_statements_customer;
CREATE INDEX financial_statements_customer
    ON financial_statements (customer_id, period_end DESC, version DESC, id DESC);

ALTER TABLE bureau_reports ADD COLUMN report_date TEXT NOT NULL DEFAULT '';
UPDATE bureau_reports SET report_date = document->>'report_date';
DROP INDEX bureau_reports_customer;
CREATE INDEX bureau_reports_customer ON bureau_reports (customer_id, report_date DESC, id DESC);

-- Trade references keep (customer_id, id): ids are uuid v7, so id order is creation order
-- and the list reads that index backwards.
