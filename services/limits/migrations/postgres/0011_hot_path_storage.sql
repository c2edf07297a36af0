-- Storage of the rows every Authorize writes, chosen for what PostgreSQL spends on each of them
-- (measured on the group-commit writer's backend in the scenario-B benchmark; BENCHMARKS.md).

-- Identifiers compare byte by byte. Under the database's default collation every B-tree step
-- on a text key went through strcoll (6 % of the writer's CPU); ids, keys and codes are ASCII
-- and have no linguistic order to keep, and byte order is also the order keyset pagination
-- relies on. Only the indexed columns change.
ALTER TABLE authorizations
    ALTER COLUMN customer_id TYPE TEXT COLLATE "C",
    ALTER COLUMN idempotency_key TYPE TEXT COLLATE "C";
ALTER TABLE referrals
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN customer_id TYPE TEXT COLLATE "C",
    ALTER COLUMN status TYPE TEXT COLLATE "C";
ALTER TABLE holds
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN customer_id TYPE TEXT COLLATE "C",
    ALTER COLUMN group_id TYPE TEXT COLLATE "C",
    ALTER COLUMN order_id TYPE TEXT COLLATE "C";
ALTER TABLE exposure_epochs ALTER COLUMN scope_key TYPE TEXT COLLATE "C";
ALTER TABLE outbox ALTER COLUMN event_id TYPE TEXT COLLATE "C";
ALTER TABLE processed_events
    ALTER COLUMN consumer TYPE TEXT COLLATE "C",
    ALTER COLUMN event_id TYPE TEXT COLLATE "C";

-- Holds and referrals are documents the service writes and reads back whole; nothing queries
-- inside them. JSONB rebuilt each one into its binary form on the way in (parsing, sorting the
-- keys: 15 % of the writer's CPU); JSON keeps the text as written, still validated, and still
-- answers ->> for an ad-hoc query.
ALTER TABLE holds ALTER COLUMN document TYPE JSON USING document::json;
ALTER TABLE referrals ALTER COLUMN document TYPE JSON USING document::json;

-- A packed outbox row holds a whole batch's events, a few kilobytes: compressed with pglz it
-- cost the writer 6 % of its CPU; LZ4 compresses it several times faster. A server built
-- without LZ4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no LZ4; outbox payloads stay compressed with pglz';
END $$;
