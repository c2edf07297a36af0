-- Lists come newest first (SQLite twin of the PostgreSQL migration): statements by period
-- end, then version; bureau reports by report date, both as "YYYY-MM-DD" text.
ALTER TABLE financial_statements ADD COLUMN period_end TEXT NOT NULL DEFAULT '';
UPDATE financial_statements SET period_end = json_extract(document, '$.period.period_end');
DROP INDEX financial_statements_customer;
CREATE INDEX financial_statements_customer
    ON financial_statements (customer_id, period_end DESC, version DESC, id DESC);

ALTER TABLE bureau_reports ADD COLUMN report_date TEXT NOT NULL DEFAULT '';
UPDATE bureau_reports SET report_date = json_extract(document, '$.report_date');
DROP INDEX bureau_reports_customer;
CREATE INDEX bureau_reports_customer ON bureau_reports (customer_id, report_date DESC, id DESC);
