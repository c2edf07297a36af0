//! Credit notes waiting for a second person: their rows, reads, and the part of a commit that
//! writes a request or a decision.

use chrono::{DateTime, NaiveDate, Utc};
use credit_runtime::on_database;

use super::SqlReceivableStore;
use crate::domain::CreditNoteApproval;
use crate::store::{CreditNoteApprovalRecord, StoreError, StoreResult, currency, decimal};

/// The columns every read returns, in [`ApprovalRow`]'s order.
macro_rules! approval_columns {
    () => {
        "credit_note_id, customer_id, credit_note_number, invoice_id, currency, amount, \
         issue_date, reason, dispute_id, fingerprint, status, requested_by, requested_by_id, \
         requested_by_person, requested_at, decided_by, decided_at, decision_reason"
    };
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct ApprovalRow {
    credit_note_id: String,
    customer_id: String,
    credit_note_number: String,
    invoice_id: String,
    currency: String,
    amount: String,
    issue_date: NaiveDate,
    reason: String,
    dispute_id: String,
    fingerprint: String,
    status: String,
    requested_by: String,
    requested_by_id: String,
    requested_by_person: String,
    requested_at: DateTime<Utc>,
    decided_by: String,
    decided_at: Option<DateTime<Utc>>,
    decision_reason: String,
}

impl ApprovalRow {
    fn into_record(self) -> StoreResult<CreditNoteApprovalRecord> {
        let place = format!("credit note approval {}", self.credit_note_id);
        let status = CreditNoteApproval::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("{place}: status '{}'", self.status)))?;
        Ok(CreditNoteApprovalRecord {
            currency: currency(&place, &self.currency)?,
            amount: decimal(&place, &self.amount)?,
            status,
            requested_by: credit_core::Actor {
                principal_id: self.requested_by_id,
                person_id: self.requested_by_person,
                ..credit_core::Actor::named(self.requested_by)
            },
            credit_note_id: self.credit_note_id,
            customer_id: self.customer_id,
            credit_note_number: self.credit_note_number,
            invoice_id: self.invoice_id,
            issue_date: self.issue_date,
            reason: self.reason,
            dispute_id: self.dispute_id,
            fingerprint: self.fingerprint,
            requested_at: self.requested_at,
            decided_by: self.decided_by,
            decided_at: self.decided_at,
            decision_reason: self.decision_reason,
        })
    }
}

/// Writes a commit's credit note request or decision inside its transaction: a request is
/// inserted PENDING (a second pending one for the same dispute is refused); a decision applies
/// only to a note still pending, so two checkers deciding at once decide it once.
macro_rules! write_credit_note_approval {
    ($tx:ident, $sql:ident, $customer_id:expr, $changes:expr, $now:expr) => {
        async {
            let changes: &$crate::store::Changes = $changes;
            let now: chrono::DateTime<chrono::Utc> = $now;
            if let Some(request) = &changes.credit_note_request {
                let inserted = sqlx::query(&$sql(
                    "INSERT INTO credit_note_approvals (credit_note_id, customer_id, credit_note_number, \
                     invoice_id, currency, amount, issue_date, reason, dispute_id, fingerprint, status, \
                     requested_by, requested_by_id, requested_by_person, requested_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'PENDING', $11, $12, $13, $14)",
                ))
                .bind(&request.credit_note_id)
                .bind($customer_id)
                .bind(&request.credit_note_number)
                .bind(&request.invoice_id)
                .bind(request.currency.code())
                .bind(request.amount.to_string())
                .bind(request.issue_date)
                .bind(&request.reason)
                .bind(&request.dispute_id)
                .bind(&changes.fingerprint)
                .bind(&request.requested_by.name)
                .bind(&request.requested_by.principal_id)
                .bind(&request.requested_by.person_id)
                .bind(now)
                .execute(&mut *$tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(error) if credit_runtime::sql::is_unique_violation(&error) => {
                        return Err($crate::store::StoreError::refused(
                            credit_core::ServiceError::failed_precondition(
                                "CREDIT_NOTE_PENDING",
                                "a credit note for this dispute already waits for a decision",
                            ),
                        ));
                    }
                    Err(error) => return Err(error.into()),
                }
                let entry = serde_json::json!({
                    "credit_note_id": &request.credit_note_id,
                    "credit_note_number": &request.credit_note_number,
                    "invoice_id": &request.invoice_id,
                    "amount": request.amount.to_string(),
                    "currency": request.currency.code(),
                    "dispute_id": &request.dispute_id,
                    "reason": &request.reason,
                    "requested_by": &request.requested_by.name,
                    "requested_by_person": &request.requested_by.person_id,
                });
                credit_runtime::append_audit!(
                    $tx,
                    $sql,
                    &credit_runtime::audit::AuditRecord {
                        kind: "credit_note.requested",
                        record_id: &request.credit_note_id,
                        actor: &request.requested_by.name,
                        entry: entry.to_string(),
                    }
                )
                .await?;
            }
            if let Some(decision) = &changes.credit_note_decision {
                let decided = sqlx::query(&$sql(
                    "UPDATE credit_note_approvals SET status = $2, decided_by = $3, decided_at = $4, \
                     decision_reason = $5 WHERE credit_note_id = $1 AND status = 'PENDING'",
                ))
                .bind(&decision.credit_note_id)
                .bind(decision.status.name())
                .bind(&decision.decided_by)
                .bind(now)
                .bind(&decision.decision_reason)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if decided != 1 {
                    return Err($crate::store::StoreError::refused(
                        credit_core::ServiceError::failed_precondition(
                            "CREDIT_NOTE_NOT_PENDING",
                            "the credit note is not waiting for a decision",
                        ),
                    ));
                }
                let entry = serde_json::json!({
                    "credit_note_id": &decision.credit_note_id,
                    "status": decision.status.name(),
                    "decided_by": &decision.decided_by,
                    "decision_reason": &decision.decision_reason,
                });
                credit_runtime::append_audit!(
                    $tx,
                    $sql,
                    &credit_runtime::audit::AuditRecord {
                        kind: "credit_note.decided",
                        record_id: &decision.credit_note_id,
                        actor: &decision.decided_by,
                        entry: entry.to_string(),
                    }
                )
                .await?;
            }
            Ok::<(), $crate::store::StoreError>(())
        }
    };
}
pub(super) use write_credit_note_approval;

impl SqlReceivableStore {
    pub(super) async fn read_credit_note_approval(
        &self,
        credit_note_id: &str,
    ) -> StoreResult<Option<CreditNoteApprovalRecord>> {
        let row = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, ApprovalRow>(&sql(concat!(
                "SELECT ",
                approval_columns!(),
                " FROM credit_note_approvals WHERE credit_note_id = $1"
            )))
            .bind(credit_note_id)
            .fetch_optional(pool)
            .await?
        });
        row.map(ApprovalRow::into_record).transpose()
    }

    pub(super) async fn read_credit_note_approvals(
        &self,
        status: Option<CreditNoteApproval>,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<CreditNoteApprovalRecord>> {
        let status = status.map_or("", CreditNoteApproval::name);
        let after = after.unwrap_or("");
        let rows = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, ApprovalRow>(&sql(concat!(
                "SELECT ",
                approval_columns!(),
                " FROM credit_note_approvals WHERE ($1 = '' OR status = $1) \
                 AND ($2 = '' OR credit_note_id < $2) ORDER BY credit_note_id DESC LIMIT $3"
            )))
            .bind(status)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(ApprovalRow::into_record).collect()
    }
}
