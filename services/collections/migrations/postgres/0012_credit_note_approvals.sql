-- Credit notes a second person must decide (four eyes): beyond the poster's approval
-- authority, above the four-eyes threshold, or in another currency than the base one. A row
-- changes nothing on the ledger until approved; approval posts the credit note (same id and
-- number) into credit_notes.
CREATE TABLE credit_note_approvals (
    credit_note_id      TEXT PRIMARY KEY,
    customer_id         TEXT NOT NULL,
    credit_note_number  TEXT NOT NULL,
    invoice_id          TEXT NOT NULL REFERENCES invoices (invoice_id),
    currency            TEXT NOT NULL,
    amount              TEXT NOT NULL,
    issue_date          DATE NOT NULL,
    reason              TEXT NOT NULL,
    -- The dispute whose VALID resolution it carries; '' for none.
    dispute_id          TEXT NOT NULL,
    fingerprint         TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
    -- The maker, as the four-eyes check compares people: name, token id and person id.
    requested_by        TEXT NOT NULL,
    requested_by_id     TEXT NOT NULL,
    requested_by_person TEXT NOT NULL,
    requested_at        TIMESTAMPTZ NOT NULL,
    decided_by          TEXT NOT NULL DEFAULT '',
    decided_at          TIMESTAMPTZ,
    decision_reason     TEXT NOT NULL DEFAULT '',
    UNIQUE (customer_id, credit_note_number)
);
-- One credit note waiting per dispute: a second resolution waits for the first decision.
CREATE UNIQUE INDEX credit_note_approvals_one_pending_per_dispute
    ON credit_note_approvals (dispute_id) WHERE status = 'PENDING' AND dispute_id <> '';
