-- One row every approval of a customer limit updates first, inside its transaction: the
-- approvals queue on it, so each checks the portfolio cap against the limits the ones before
-- it granted (two approvals at once can never both pass a cap with room for one).
CREATE TABLE portfolio_cap_lock (
    id        INTEGER PRIMARY KEY,
    approvals BIGINT NOT NULL
);
INSERT INTO portfolio_cap_lock (id, approvals) VALUES (1, 0);
