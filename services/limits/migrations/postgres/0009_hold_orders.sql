-- ListHolds by order: the order a hold reserves for, indexed. Holds written before carry the
-- order only in their document, so it is copied from there.
ALTER TABLE holds ADD COLUMN order_id TEXT NOT NULL DEFAULT '';
UPDATE holds SET order_id = COALESCE(document->>'order_id', '');
CREATE INDEX holds_order ON holds (order_id, id);
CREATE INDEX holds_customer ON holds (customer_id, id);
