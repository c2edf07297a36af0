-- SQLite twin of the PostgreSQL migration.
ALTER TABLE holds ADD COLUMN order_id TEXT NOT NULL DEFAULT '';
UPDATE holds SET order_id = COALESCE(json_extract(document, '$.order_id'), '');
CREATE INDEX holds_order ON holds (order_id, id);
CREATE INDEX holds_customer ON holds (customer_id, id);
