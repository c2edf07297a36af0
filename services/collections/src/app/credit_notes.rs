//! Credit notes under four eyes: storing one that waits for a second person, the checker's
//! decision on it, and the list of those waiting. See `domain::credit_note` for the rule.

use chrono::Utc;
use credit_core::{Actor, Money, Principal, ServiceError, both};
use credit_proto::v1 as pb;
use credit_runtime::sql::{IdempotencyKey, Page};

use super::Collections;
use super::receivables::{NewCreditNote, credit_note_changes, open_invoice, required_text};
use crate::api::convert::{self, required_id};
use crate::domain::{
    CreditNoteApproval, CreditNoteDecisionError, decide_credit_note, may_post_alone,
};
use crate::store::{
    Account, AccountScope, Changes, CreditNoteApprovalRecord, CreditNoteDecision, DisputeRecord,
    NaturalKey,
};

impl Collections {
    /// Whether `principal` may post a credit note of `amount` without a second person.
    pub(super) fn may_post_credit_alone(&self, principal: &Principal, amount: Money) -> bool {
        may_post_alone(
            principal.may_approve(&amount),
            amount,
            self.credit_note_four_eyes_above,
        )
    }

    /// A credit note as it stands now: waiting, decided, or simply posted.
    pub(super) async fn credit_note_view(
        &self,
        credit_note_id: &str,
    ) -> Result<pb::CreditNote, ServiceError> {
        let posted = self
            .store
            .credit_note(credit_note_id)
            .await
            .map_err(ServiceError::from)?;
        let approval = self
            .store
            .credit_note_approval(credit_note_id)
            .await
            .map_err(ServiceError::from)?;
        match (approval, posted) {
            (Some(approval), posted) => {
                Ok(convert::credit_note_approval(&approval, posted.as_ref()))
            }
            (None, Some(posted)) => Ok(convert::credit_note(&posted)),
            (None, None) => Err(ServiceError::not_found("credit note", credit_note_id)),
        }
    }

    pub(crate) async fn decide_credit_note_now(
        &self,
        principal: &Principal,
        request: pb::DecideCreditNoteRequest,
    ) -> Result<pb::DecideCreditNoteResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let request_id = required_id("request_id", &request.request_id);
        let credit_note_id = required_id("credit_note_id", &request.credit_note_id);
        let approve = convert::approve_or_reject(request.decision);
        let reason = required_text("reason", &request.reason);
        let ((request_id, credit_note_id), (approve, reason)) =
            both(both(request_id, credit_note_id), both(approve, reason))?;
        let waiting = self
            .store
            .credit_note_approval(&credit_note_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("credit note", credit_note_id.as_str()))?;
        let key = IdempotencyKey::new(&principal.name, request_id, "DecideCreditNote", &request);
        let checker = Actor::of(principal);
        let covers = principal.may_approve(&Money::new(waiting.amount, waiting.currency));
        let plan = |account: &Account| -> Result<Changes, ServiceError> {
            let status = decide_credit_note(
                waiting.status,
                &waiting.requested_by,
                &checker,
                covers,
                approve,
            )
            .map_err(decision_refusal)?;
            let mut changes = if status == CreditNoteApproval::Approved {
                approved_changes(account, &waiting)?
            } else {
                Changes::default()
            };
            changes.document_id = waiting.credit_note_id.clone();
            changes.fingerprint = waiting.fingerprint.clone();
            changes.credit_note_decision = Some(CreditNoteDecision {
                credit_note_id: waiting.credit_note_id.clone(),
                status,
                decided_by: checker.name.clone(),
                decision_reason: reason.clone(),
            });
            Ok(changes)
        };
        let fingerprint = key.fingerprint.clone();
        let outcome = self
            .store
            .commit(
                &waiting.customer_id,
                &NaturalKey::Request(key),
                &fingerprint,
                &AccountScope::Invoices(vec![waiting.invoice_id.clone()]),
                &plan,
            )
            .await
            .map_err(ServiceError::from)?;
        if !outcome.is_replay() {
            tracing::info!(credit_note_id = %waiting.credit_note_id, approve, "credit note decided");
        }
        let credit_note = self.credit_note_view(&outcome.into_inner()).await?;
        let invoice = self.stored_invoice(&waiting.invoice_id).await?;
        Ok(pb::DecideCreditNoteResponse {
            credit_note: Some(credit_note),
            invoice: Some(convert::invoice(&invoice, today, &self.classification)),
        })
    }

    pub(crate) async fn list_credit_note_approvals_now(
        &self,
        request: &pb::ListCreditNoteApprovalsRequest,
    ) -> Result<pb::ListCreditNoteApprovalsResponse, ServiceError> {
        let page = Page::parse(request.page_size, &request.page_token);
        let status = match pb::ApprovalStatus::try_from(request.status) {
            Ok(pb::ApprovalStatus::Unspecified) => Ok(None),
            Ok(pb::ApprovalStatus::Pending) => Ok(Some(CreditNoteApproval::Pending)),
            Ok(pb::ApprovalStatus::Approved) => Ok(Some(CreditNoteApproval::Approved)),
            Ok(pb::ApprovalStatus::Rejected) => Ok(Some(CreditNoteApproval::Rejected)),
            Err(_) => Err(ServiceError::invalid("status", "is not an approval status")),
        };
        let (page, status) = both(page, status)?;
        let mut rows = self
            .store
            .credit_note_approvals(status, page.after.as_deref(), page.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut rows, |row| row.credit_note_id.as_str());
        let mut credit_notes = Vec::with_capacity(rows.len());
        for row in &rows {
            // An approved one shows when it reached the ledger.
            let posted = match row.status {
                CreditNoteApproval::Approved => self
                    .store
                    .credit_note(&row.credit_note_id)
                    .await
                    .map_err(ServiceError::from)?,
                _ => None,
            };
            credit_notes.push(convert::credit_note_approval(row, posted.as_ref()));
        }
        Ok(pb::ListCreditNoteApprovalsResponse {
            credit_notes,
            next_page_token,
        })
    }
}

/// What approving `waiting` writes: the credit note posted as PostCreditNote would have, and,
/// for a dispute's credit, the dispute resolved VALID by the manager who resolved it.
fn approved_changes(
    account: &Account,
    waiting: &CreditNoteApprovalRecord,
) -> Result<Changes, ServiceError> {
    let stored = open_invoice(account, &waiting.invoice_id)?;
    let mut changes = credit_note_changes(
        stored,
        &NewCreditNote {
            credit_note_id: waiting.credit_note_id.clone(),
            number: waiting.credit_note_number.clone(),
            amount: Money::new(waiting.amount, waiting.currency),
            issue_date: waiting.issue_date,
            reason: waiting.reason.clone(),
            dispute_id: waiting.dispute_id.clone(),
            posted_by: waiting.requested_by.name.clone(),
            fingerprint: waiting.fingerprint.clone(),
        },
    )?;
    if !waiting.dispute_id.is_empty() {
        let open = account
            .open_disputes
            .iter()
            .find(|open| open.dispute_id == waiting.dispute_id)
            .ok_or_else(|| {
                ServiceError::failed_precondition(
                    "DISPUTE_NOT_OPEN",
                    format!("dispute {} is not open", waiting.dispute_id),
                )
            })?;
        changes.resolved_dispute = Some(DisputeRecord {
            status: "RESOLVED_VALID".to_owned(),
            resolved_at: Some(Utc::now()),
            resolved_by: waiting.requested_by.name.clone(),
            resolution_notes: waiting.reason.clone(),
            credit_note_id: waiting.credit_note_id.clone(),
            ..open.clone()
        });
    }
    Ok(changes)
}

fn decision_refusal(error: CreditNoteDecisionError) -> ServiceError {
    match error {
        CreditNoteDecisionError::SelfApproval | CreditNoteDecisionError::AuthorityInsufficient => {
            ServiceError::permission_denied(error.reason(), error.to_string())
        }
        CreditNoteDecisionError::NotPending => {
            ServiceError::failed_precondition(error.reason(), error.to_string())
        }
    }
}

/// The waiting credit note a poster who may not post `note` alone leaves: nothing moves on
/// the ledger until a second person approves it.
pub(super) fn waiting_credit_note(
    customer_id: &str,
    invoice_id: &str,
    note: &NewCreditNote,
    maker: &Principal,
) -> CreditNoteApprovalRecord {
    CreditNoteApprovalRecord {
        credit_note_id: note.credit_note_id.clone(),
        customer_id: customer_id.to_owned(),
        credit_note_number: note.number.clone(),
        invoice_id: invoice_id.to_owned(),
        currency: note.amount.currency(),
        amount: note.amount.amount(),
        issue_date: note.issue_date,
        reason: note.reason.clone(),
        dispute_id: note.dispute_id.clone(),
        fingerprint: note.fingerprint.clone(),
        status: CreditNoteApproval::Pending,
        requested_by: Actor::of(maker),
        requested_at: Utc::now(),
        decided_by: String::new(),
        decided_at: None,
        decision_reason: String::new(),
    }
}
