-- Data points: company-defined attributes of a customer (intake.proto, DefineDataPoint).
-- A definition is kept whole as a JSON document, its code the key; changing it replaces the
-- row and raises its version.
CREATE TABLE data_point_definitions (
    code       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    document   JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Every value a customer's data point has had (a cleared value is a record without one):
-- read newest first per customer and code. Ids are dpv_<uuid v7>, so id order is time order.
CREATE TABLE data_point_history (
    id          TEXT PRIMARY KEY,
    change_id   TEXT NOT NULL,                        -- the SetDataPoints (or import row) that wrote it
    customer_id TEXT NOT NULL,
    code        TEXT NOT NULL,
    document    JSONB NOT NULL,
    set_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX data_point_history_customer ON data_point_history (customer_id, code, id DESC);
CREATE INDEX data_point_history_change ON data_point_history (change_id);

-- The current value of each data point a customer has: what ratings read, one row per
-- (customer, code) whatever the history holds. `valid_until` is kept beside the document so
-- that values about to go stale are found through an index.
CREATE TABLE data_point_values (
    customer_id TEXT NOT NULL,
    code        TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    document    JSONB NOT NULL,
    valid_until TIMESTAMPTZ,
    PRIMARY KEY (customer_id, code)
);
CREATE INDEX data_point_values_valid_until ON data_point_values (valid_until)
    WHERE valid_until IS NOT NULL;
