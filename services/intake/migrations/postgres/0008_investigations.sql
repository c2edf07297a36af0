-- Documents of a customer's credit file and credit investigations (intake.proto,
-- RecordDocument, PublishChecklist, OpenInvestigation). Each record is kept whole as a JSON
-- document; the columns beside it are what lists filter and sort on.

-- Listed newest first per customer (by issue date, then id); `issued_on` is "YYYY-MM-DD" text,
-- so text order is date order and a page token can carry it.
CREATE TABLE credit_documents (
    id            TEXT PRIMARY KEY,               -- doc_<uuid v7>
    customer_id   TEXT NOT NULL,
    issued_on     TEXT NOT NULL,
    document      JSONB NOT NULL,
    recorded_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX credit_documents_customer ON credit_documents (customer_id, issued_on DESC, id DESC);

-- Every version of every checklist; an investigation keeps the version it was opened with.
CREATE TABLE investigation_checklists (
    checklist_id TEXT NOT NULL,
    version      INTEGER NOT NULL,
    document     JSONB NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (checklist_id, version)
);

-- One investigation per row, its items and visit reports inside the document. At most one
-- open investigation per customer: the unique partial index is the backstop of the check.
CREATE TABLE investigations (
    id          TEXT PRIMARY KEY,                 -- inv_<uuid v7>: sorts by opening
    customer_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    version     BIGINT NOT NULL,
    document    JSONB NOT NULL,
    opened_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX investigations_customer ON investigations (customer_id, id DESC);
CREATE UNIQUE INDEX investigations_one_open ON investigations (customer_id) WHERE status = 'OPEN';
