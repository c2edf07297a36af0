-- The exposure ledger: every hold, every receivable movement, every decision. Exposure can
-- always be recomputed from here; Redis only caches it.

-- Holds: credit reserved for approved orders. open_minor is what still counts in exposure
-- (the amount while OPEN, 0 once captured, released or expired), in minor units of the
-- limit's currency.
CREATE TABLE holds (
    id           TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    group_id     TEXT,
    status       TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    open_minor   BIGINT NOT NULL,
    -- The cache incarnation the reservation was made in (see exposure_epochs).
    epoch        BIGINT NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    document     JSONB NOT NULL
);
CREATE INDEX holds_open_customer ON holds (customer_id) WHERE status = 'OPEN';
CREATE INDEX holds_open_group ON holds (group_id) WHERE status = 'OPEN';
CREATE INDEX holds_expiry ON holds (expires_at) WHERE status = 'OPEN';

-- Receivable exposure: + when a hold is captured or an invoice arrives without one,
-- - when paid, credited or written off.
CREATE TABLE receivable_movements (
    id           TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    group_id     TEXT,
    amount_minor BIGINT NOT NULL,
    source       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX receivable_movements_customer ON receivable_movements (customer_id);

-- Every Authorize answer, by (customer, idempotency key): a retry gets the first answer.
CREATE TABLE authorizations (
    customer_id     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    decision_id     TEXT NOT NULL,
    decision        TEXT NOT NULL,
    response        BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (customer_id, idempotency_key)
);

-- The fence between cache rebuilds and durable writes. A rebuild bumps the scope's epoch
-- under a row lock and then reads the ledger; a hold's durable write takes a share lock on
-- the same row and commits only if the epoch is still the one its reservation was made in.
-- So a reservation is either in the rebuilt exposure or refused, never lost.
CREATE TABLE exposure_epochs (
    scope_key TEXT PRIMARY KEY,                       -- customer:<id> or group:<id>
    epoch     BIGINT NOT NULL
);

-- Orders the rules did not approve outright, waiting for a person with authority.
CREATE TABLE referrals (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    document    JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX referrals_status ON referrals (status, id);
