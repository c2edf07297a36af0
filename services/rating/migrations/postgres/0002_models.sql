-- Scorecard models: every published version is a row of its own and is never changed, so a
-- rating can always be re-scored with the exact model version it names.
CREATE TABLE scorecard_models (
    model_id      TEXT NOT NULL,
    version       BIGINT NOT NULL CHECK (version >= 1),
    -- ENTERPRISE or INDIVIDUAL, copied out of the document for ListModels' filter.
    customer_kind TEXT NOT NULL,
    -- The model as published (see store/document.rs); checked again when read.
    document      JSONB NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL,
    -- {"principal": ..., "roles": [...]}: who published it, as in an Actor.
    published_by  JSONB NOT NULL,
    PRIMARY KEY (model_id, version)
);

-- One row that every publication updates first: it queues publishers one after another, so the
-- check that no two models claim the same customers sees every model published before it.
CREATE TABLE model_publication_lock (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    publications BIGINT NOT NULL
);
INSERT INTO model_publication_lock (id, publications) VALUES (1, 0);

-- request_id of every state change: a retry returns the first result.
CREATE TABLE idempotency_keys (
    request_id  TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
