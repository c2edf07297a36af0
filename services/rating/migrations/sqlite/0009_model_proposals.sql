-- SQLite twin of the PostgreSQL migration.
-- A new model version is a proposal until a second person approves it (issue #22, 制度修订):
-- the model as proposed, what it changes against the version it was proposed over, and the
-- approval chain with every verdict. Approving the last step publishes it as the next version.
CREATE TABLE model_proposals (
    proposal_id       TEXT PRIMARY KEY,
    model_id          TEXT NOT NULL,
    status            TEXT NOT NULL,
    base_version      INTEGER NOT NULL,
    document          TEXT NOT NULL,
    changes           TEXT NOT NULL,
    approval_chain    TEXT NOT NULL,
    proposed_at       TEXT NOT NULL,
    published_version INTEGER
) STRICT;
CREATE INDEX model_proposals_by_status ON model_proposals (status, proposal_id);
