-- Governed documents (issue #22): the approval matrix and the credit policy change through
-- proposals that walk the POLICY_CHANGE chain. Every version of every governed document is a
-- row here; `effective_from` is set when the version is published, so the version in force is
-- one indexed read. The matrices filed before move in; the credit_policy row stays as the
-- policy in force until the first governed version is published.
CREATE TABLE governed_versions (
    subject        TEXT NOT NULL,                   -- approval_matrix, credit_policy
    version        INTEGER NOT NULL,
    status         TEXT NOT NULL,                   -- PROPOSED, PUBLISHED, REJECTED
    document       JSONB NOT NULL,                  -- the version with its chain
    proposed_at    TIMESTAMPTZ NOT NULL,
    effective_from TIMESTAMPTZ,                     -- set when published
    PRIMARY KEY (subject, version)
);
CREATE INDEX governed_versions_in_force ON governed_versions (subject, status, effective_from);

INSERT INTO governed_versions (subject, version, status, document, proposed_at, effective_from)
SELECT 'approval_matrix', version, status, document, proposed_at,
       CASE WHEN status = 'PUBLISHED' THEN (document->>'effective_from')::timestamptz END
FROM approval_matrices;

DROP TABLE approval_matrices;
