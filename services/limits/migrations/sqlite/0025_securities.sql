-- The security register (issue #24): deposits, guarantees, letters of credit, pledges,
-- mortgages and credit insurance, each the whole item as a document with its changes and
-- their chains; the columns are what the register is searched by.
CREATE TABLE securities (
    security_id           TEXT PRIMARY KEY,
    customer_id           TEXT NOT NULL,
    guarantor_customer_id TEXT,                     -- a third-party guarantee's guarantor
    status                TEXT NOT NULL,            -- PENDING, ACTIVE, REJECTED, RELEASED, EXPIRED
    valid_until           TEXT,                     -- last day it counts; NULL: until released
    revision              INTEGER NOT NULL,
    document              TEXT NOT NULL,
    registered_at         TEXT NOT NULL
);
CREATE INDEX securities_by_customer ON securities (customer_id, registered_at);
CREATE INDEX securities_by_guarantor ON securities (guarantor_customer_id)
    WHERE guarantor_customer_id IS NOT NULL;
CREATE INDEX securities_by_expiry ON securities (valid_until) WHERE status = 'ACTIVE';
