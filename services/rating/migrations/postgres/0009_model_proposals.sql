-- A new model version is a proposal until a second person approves it (issue #22, 制度修订):
-- the model as proposed, what it changes against the version it was proposed over, and the
-- approval chain with every verdict. Approving the last step publishes it as the next version.
CREATE TABLE model_proposals (
    proposal_id       TEXT PRIMARY KEY,
    model_id          TEXT NOT NULL,
    -- PROPOSED, PUBLISHED or REJECTED: the chain's outcome, copied out for the listing's filter.
    status            TEXT NOT NULL,
    -- The latest version of the model when proposed; 0 for a new model.
    base_version      BIGINT NOT NULL,
    -- The model as proposed (see store/document.rs), checked again when read.
    document          JSONB NOT NULL,
    changes           JSONB NOT NULL,
    approval_chain    JSONB NOT NULL,
    proposed_at       TIMESTAMPTZ NOT NULL,
    -- The version its approval published.
    published_version BIGINT
);
CREATE INDEX model_proposals_by_status ON model_proposals (status, proposal_id);
