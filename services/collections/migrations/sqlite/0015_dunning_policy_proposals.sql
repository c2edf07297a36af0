-- A new dunning policy version is a proposal until a second person approves it (issue #22,
-- 制度修订): the policy as proposed (an encoded credit.v1.DunningPolicy), what it changes against
-- the version it was proposed over, and the approval chain with every verdict. Approving the
-- last step publishes it as the next version, in the same transaction.
CREATE TABLE dunning_policy_proposals (
    proposal_id       TEXT PRIMARY KEY,
    policy_id         TEXT NOT NULL,
    -- PROPOSED, PUBLISHED or REJECTED: the chain's outcome, copied out for the listing's filter.
    status            TEXT NOT NULL,
    -- The latest version of the policy when proposed; 0 for a new policy.
    base_version      INTEGER NOT NULL,
    document          BLOB NOT NULL,
    changes           TEXT NOT NULL,
    approval_chain    TEXT NOT NULL,
    proposed_at       TEXT NOT NULL,
    published_version INTEGER
) STRICT;
CREATE INDEX dunning_policy_proposals_by_status ON dunning_policy_proposals (status, proposal_id);
