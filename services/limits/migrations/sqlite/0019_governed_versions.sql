-- SQLite twin of the PostgreSQL migration.
CREATE TABLE governed_versions (
    subject        TEXT NOT NULL,
    version        INTEGER NOT NULL,
    status         TEXT NOT NULL,
    document       TEXT NOT NULL,
    proposed_at    TEXT NOT NULL,
    effective_from TEXT,
    PRIMARY KEY (subject, version)
);
CREATE INDEX governed_versions_in_force ON governed_versions (subject, status, effective_from);

INSERT INTO governed_versions (subject, version, status, document, proposed_at, effective_from)
SELECT 'approval_matrix', version, status, document, proposed_at,
       CASE WHEN status = 'PUBLISHED' THEN proposed_at END
FROM approval_matrices;

DROP TABLE approval_matrices;
