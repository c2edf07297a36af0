//! Disputes: part or all of an invoice's open amount the customer contests. While open the
//! amount is left out of automatic payment allocation (and of dunning) and shown on the
//! invoice as `disputed_amount`; resolved VALID it is credited by a credit note (posted like
//! PostCreditNote, with `dispute_id`), resolved INVALID it is ordinary open amount again.
//! Both are written with the customer's account, so the amount checks see every payment and
//! dispute of the customer.

use chrono::Utc;
use credit_core::{Principal, ServiceError, both};
use credit_proto::v1 as pb;
use credit_runtime::sql::{IdempotencyKey, Page};
use rust_decimal::Decimal;

use super::Collections;
use super::credit_notes::waiting_credit_note;
use super::receivables::{
    NewCreditNote, credit_note_changes, currency_mismatch, open_invoice, open_now, required_text,
};
use crate::api::convert::{self, money, optional_id, positive_money, required_id, timestamp};
use crate::domain::may_post_alone;
use crate::store::{Account, AccountScope, Changes, DisputeFilter, DisputeRecord, NaturalKey};

impl Collections {
    pub(crate) async fn open_dispute_now(
        &self,
        principal: &Principal,
        request: &pb::OpenDisputeRequest,
    ) -> Result<pb::OpenDisputeResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let request_id = required_id("request_id", &request.request_id);
        let invoice_id = required_id("invoice_id", &request.invoice_id);
        let amount = positive_money("amount", request.amount.as_ref());
        let reason = required_text("reason", &request.reason);
        let ((request_id, invoice_id), (amount, reason)) =
            both(both(request_id, invoice_id), both(amount, reason))?;
        let invoice = self.stored_invoice(&invoice_id).await?;
        let customer_id = invoice.record.invoice.customer_id.to_string();
        let key = IdempotencyKey::new(&principal.name, request_id.clone(), "OpenDispute", request);
        let dispute_id = format!("dsp_{}", uuid::Uuid::now_v7().simple());
        let opened_by = principal.name.clone();
        let plan = |account: &Account| -> Result<Changes, ServiceError> {
            let stored = open_invoice(account, &invoice_id)?;
            let currency = stored.history.invoice.currency;
            if amount.currency() != currency {
                return Err(currency_mismatch("amount", currency));
            }
            let undisputed =
                (open_now(&stored.history) - stored.disputed_amount).max(Decimal::ZERO);
            if amount.amount() > undisputed {
                return Err(ServiceError::FailedPrecondition {
                    reason: "AMOUNT_EXCEEDS_OPEN_AMOUNT",
                    message: format!(
                        "the dispute exceeds the invoice's open amount not yet disputed ({undisputed})"
                    ),
                    metadata: vec![("undisputed_open_amount", undisputed.to_string())],
                });
            }
            Ok(Changes {
                document_id: dispute_id.clone(),
                new_dispute: Some(DisputeRecord {
                    dispute_id: dispute_id.clone(),
                    invoice_id: invoice_id.clone(),
                    customer_id: customer_id.clone(),
                    currency,
                    amount: amount.amount(),
                    reason: reason.clone(),
                    status: "OPEN".to_owned(),
                    opened_at: Utc::now(),
                    opened_by: opened_by.clone(),
                    resolved_at: None,
                    resolved_by: String::new(),
                    resolution_notes: String::new(),
                    credit_note_id: String::new(),
                }),
                ..Changes::default()
            })
        };
        let fingerprint = key.fingerprint.clone();
        let outcome = self
            .store
            .commit(
                &customer_id,
                &NaturalKey::Request(key),
                &fingerprint,
                &AccountScope::Invoices(vec![invoice_id.clone()]),
                &plan,
            )
            .await
            .map_err(ServiceError::from)?;
        let dispute = self.stored_dispute(&outcome.into_inner()).await?;
        let invoice = self.stored_invoice(&dispute.invoice_id).await?;
        Ok(pb::OpenDisputeResponse {
            dispute: Some(dispute_message(&dispute)),
            invoice: Some(convert::invoice(&invoice, today, &self.classification)),
        })
    }

    pub(crate) async fn resolve_dispute_now(
        &self,
        principal: &Principal,
        request: &pb::ResolveDisputeRequest,
    ) -> Result<pb::ResolveDisputeResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let request_id = required_id("request_id", &request.request_id);
        let dispute_id = required_id("dispute_id", &request.dispute_id);
        let resolution = match pb::DisputeResolution::try_from(request.resolution) {
            Ok(pb::DisputeResolution::Valid) => Ok(true),
            Ok(pb::DisputeResolution::Invalid) => Ok(false),
            _ => Err(ServiceError::invalid(
                "resolution",
                "is required: VALID or INVALID",
            )),
        };
        let notes = required_text("notes", &request.notes);
        let number = optional_id("credit_note_number", &request.credit_note_number);
        let ((request_id, dispute_id), ((valid, notes), number)) = both(
            both(request_id, dispute_id),
            both(both(resolution, notes), number),
        )?;
        if !valid && (request.credit_amount.is_some() || !number.is_empty()) {
            return Err(ServiceError::invalid(
                "credit_amount",
                "credit_amount and credit_note_number are for VALID resolutions only",
            ));
        }
        let credit_amount = match &request.credit_amount {
            None => None,
            Some(amount) => Some(positive_money("credit_amount", Some(amount))?),
        };
        let dispute = self.stored_dispute(&dispute_id).await?;
        let key = IdempotencyKey::new(
            &principal.name,
            request_id.clone(),
            "ResolveDispute",
            request,
        );
        let request_fingerprint = key.fingerprint.clone();
        let credit_note_id = format!("crn_{}", uuid::Uuid::now_v7().simple());
        let number = if number.is_empty() {
            format!("CN-{dispute_id}")
        } else {
            number
        };
        let resolved_by = principal.name.clone();
        let four_eyes_above = self.credit_note_four_eyes_above;
        let plan = |account: &Account| -> Result<Changes, ServiceError> {
            let Some(open) = account
                .open_disputes
                .iter()
                .find(|open| open.dispute_id == dispute_id)
            else {
                return Err(ServiceError::FailedPrecondition {
                    reason: "DISPUTE_NOT_OPEN",
                    message: format!("dispute {dispute_id} is not open"),
                    metadata: Vec::new(),
                });
            };
            let mut resolved = DisputeRecord {
                status: if valid {
                    "RESOLVED_VALID"
                } else {
                    "RESOLVED_INVALID"
                }
                .to_owned(),
                resolved_at: Some(Utc::now()),
                resolved_by: resolved_by.clone(),
                resolution_notes: notes.clone(),
                ..open.clone()
            };
            let mut changes = if valid {
                let stored = open_invoice(account, &open.invoice_id)?;
                let amount = credit_amount
                    .unwrap_or_else(|| credit_core::Money::new(open.amount, open.currency));
                resolved.credit_note_id = credit_note_id.clone();
                let note = NewCreditNote {
                    credit_note_id: credit_note_id.clone(),
                    number: number.clone(),
                    amount,
                    issue_date: today,
                    reason: format!("dispute {dispute_id} resolved valid: {}", open.reason),
                    dispute_id: dispute_id.clone(),
                    posted_by: resolved_by.clone(),
                    fingerprint: request_fingerprint.clone(),
                };
                let posting = credit_note_changes(stored, &note)?;
                // Four eyes on the credit: one the resolver may not approve alone waits, and
                // the dispute stays open until a second person approves it.
                if !may_post_alone(principal.may_approve(&amount), amount, four_eyes_above) {
                    return Ok(Changes {
                        document_id: credit_note_id.clone(),
                        credit_note_request: Some(waiting_credit_note(
                            &open.customer_id,
                            &open.invoice_id,
                            &note,
                            principal,
                        )),
                        fingerprint: request_fingerprint.clone(),
                        ..Changes::default()
                    });
                }
                posting
            } else {
                Changes::default()
            };
            changes.document_id = dispute_id.clone();
            changes.resolved_dispute = Some(resolved);
            Ok(changes)
        };
        let fingerprint = key.fingerprint.clone();
        let outcome = self
            .store
            .commit(
                &dispute.customer_id,
                &NaturalKey::Request(key),
                &fingerprint,
                // The dispute's invoice, with its open disputes (the one resolved among them).
                &AccountScope::Invoices(vec![dispute.invoice_id.clone()]),
                &plan,
            )
            .await
            .map_err(ServiceError::from)?;
        if !outcome.is_replay() {
            tracing::info!(%dispute_id, valid, "dispute resolved");
        }
        let document_id = outcome.into_inner();
        // The document is the dispute, or the credit note left waiting for a second person.
        let waiting = self
            .store
            .credit_note_approval(&document_id)
            .await
            .map_err(ServiceError::from)?;
        let (dispute, credit_note) = match waiting {
            Some(waiting) => (
                self.stored_dispute(&waiting.dispute_id).await?,
                Some(self.credit_note_view(&waiting.credit_note_id).await?),
            ),
            None => {
                let dispute = self.stored_dispute(&document_id).await?;
                let credit_note = if dispute.credit_note_id.is_empty() {
                    None
                } else {
                    Some(self.credit_note_view(&dispute.credit_note_id).await?)
                };
                (dispute, credit_note)
            }
        };
        let invoice = self.stored_invoice(&dispute.invoice_id).await?;
        Ok(pb::ResolveDisputeResponse {
            dispute: Some(dispute_message(&dispute)),
            credit_note,
            invoice: Some(convert::invoice(&invoice, today, &self.classification)),
        })
    }

    pub(crate) async fn list_disputes_now(
        &self,
        request: &pb::ListDisputesRequest,
    ) -> Result<pb::ListDisputesResponse, ServiceError> {
        let page = Page::parse(request.page_size, &request.page_token);
        let customer_id = optional_id("customer_id", &request.customer_id);
        let invoice_id = optional_id("invoice_id", &request.invoice_id);
        let (page, (customer_id, invoice_id)) = both(page, both(customer_id, invoice_id))?;
        let status = match pb::DisputeStatus::try_from(request.status) {
            Ok(pb::DisputeStatus::Unspecified) => String::new(),
            Ok(pb::DisputeStatus::Open) => "OPEN".to_owned(),
            Ok(pb::DisputeStatus::ResolvedValid) => "RESOLVED_VALID".to_owned(),
            Ok(pb::DisputeStatus::ResolvedInvalid) => "RESOLVED_INVALID".to_owned(),
            Err(_) => return Err(ServiceError::invalid("status", "is not a dispute status")),
        };
        let filter = DisputeFilter {
            customer_id,
            invoice_id,
            status,
        };
        let mut rows = self
            .cases
            .disputes(&filter, page.after.as_deref(), page.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut rows, |row| &row.dispute_id);
        Ok(pb::ListDisputesResponse {
            disputes: rows.iter().map(dispute_message).collect(),
            next_page_token,
        })
    }

    async fn stored_dispute(&self, dispute_id: &str) -> Result<DisputeRecord, ServiceError> {
        self.cases
            .dispute(dispute_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("dispute", dispute_id))
    }
}

fn dispute_message(record: &DisputeRecord) -> pb::Dispute {
    pb::Dispute {
        dispute_id: record.dispute_id.clone(),
        invoice_id: record.invoice_id.clone(),
        customer_id: record.customer_id.clone(),
        amount: money(record.amount, record.currency),
        reason: record.reason.clone(),
        status: match record.status.as_str() {
            "OPEN" => pb::DisputeStatus::Open,
            "RESOLVED_VALID" => pb::DisputeStatus::ResolvedValid,
            "RESOLVED_INVALID" => pb::DisputeStatus::ResolvedInvalid,
            _ => pb::DisputeStatus::Unspecified,
        }
        .into(),
        opened_at: Some(timestamp(record.opened_at)),
        opened_by: convert::actor(&record.opened_by),
        resolved_at: record.resolved_at.map(timestamp),
        resolved_by: if record.resolved_by.is_empty() {
            None
        } else {
            convert::actor(&record.resolved_by)
        },
        resolution_notes: record.resolution_notes.clone(),
        credit_note_id: record.credit_note_id.clone(),
    }
}
