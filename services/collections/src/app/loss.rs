//! Loss: provisions by five-level classification, write-offs under four eyes, recoveries, and
//! collection KPIs. The figures come from the domain (`classification`, `write_off`, `kpi`);
//! the handlers parse, ask the domain, and store.
//!
//! Choices where the contract is silent:
//! - EXPECTED_CREDIT_LOSS = open amount x PD x LGD 0.45, with the PD rating announced for the
//!   customer (collections keeps it from RatingChanged); a customer rating has not graded
//!   takes the worklist's default PD (0.05).
//! - A write-off is decided (approved or rejected) by another principal than its requester;
//!   rejecting needs no authority, approving needs authority covering the amount in the
//!   authority's currency (amounts in another currency are not converted: refused as
//!   AUTHORITY_INSUFFICIENT unless ADMIN).
//! - A recovery above what is left unrecovered of the write-off is FAILED_PRECONDITION,
//!   AMOUNT_EXCEEDS_OPEN_AMOUNT (the write-off's unrecovered amount is its "open amount").
//! - KPIs count the promises due in the period and those kept.

use chrono::Utc;
use credit_core::approval::Progress;
use credit_core::{Actor, Money, Principal, ServiceError, both};
use credit_proto::service_names::COLLECTIONS;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;
use credit_runtime::sql::{IdempotencyKey, Page};
use rust_decimal::Decimal;

use super::Collections;
use super::write_off_chain::walk_write_off_chain;
use crate::api::convert::{
    self, as_of_date, classification_to_proto, money, optional_id, past_date, positive_money,
    required_id, to_date,
};
use crate::domain::kpi::{Period, PromiseOutcome, compute_kpis, kpi_inputs};
use crate::domain::{
    Checker, MovementKind, ProvisionMethod, WriteOffDecision, WriteOffError, WriteOffStatus,
    classification::ProvisionError, compute_provisions, decide_write_off, exposure_lines,
    record_recovery, write_off_amount,
};
use crate::domain::{DEFAULT_LGD, Fraction, PromiseStatus};
use crate::store::{
    DecisionChanges, InvoiceState, NewMovement, RecoveryChanges, RecoveryRecord, WriteOffFilter,
    WriteOffRecord,
};

const MAX_REASON_LEN: usize = 1_000;

impl Collections {
    /// PD x LGD (0.45) for every customer of `lines`: the PD rating announced, or the default
    /// for a customer rating has not graded.
    async fn expected_credit_loss(
        &self,
        lines: &[crate::domain::classification::ExposureLine],
    ) -> Result<ProvisionMethod, ServiceError> {
        let rated = self
            .cases
            .customer_pds()
            .await
            .map_err(ServiceError::from)?;
        let unrated = super::cases::default_pd()?;
        let mut pd_by_customer = std::collections::BTreeMap::new();
        for line in lines {
            let pd = rated
                .get(line.customer_id.as_str())
                .and_then(|pd| pd.parse::<rust_decimal::Decimal>().ok())
                .and_then(|pd| Fraction::parse(pd).ok())
                .unwrap_or(unrated);
            pd_by_customer.insert(line.customer_id.clone(), pd);
        }
        Ok(ProvisionMethod::ExpectedCreditLoss {
            lgd: DEFAULT_LGD,
            pd_by_customer,
        })
    }

    pub(crate) async fn provisions_now(
        &self,
        request: &pb::GetProvisionsRequest,
    ) -> Result<pb::GetProvisionsResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let as_of = as_of_date("as_of_date", request.as_of_date.as_ref(), today);
        let method = match pb::ProvisionMethod::try_from(request.method) {
            Ok(pb::ProvisionMethod::Unspecified | pb::ProvisionMethod::Classification) => Ok(false),
            Ok(pb::ProvisionMethod::ExpectedCreditLoss) => Ok(true),
            Err(_) => Err(ServiceError::invalid("method", "is not a provision method")),
        };
        let customer_id = optional_id("customer_id", &request.customer_id);
        let page = Page::parse(request.page_size, &request.page_token);
        let ((as_of, expected_credit_loss), (customer_id, page)) =
            both(both(as_of, method), both(customer_id, page))?;
        let customer = (!customer_id.is_empty()).then_some(customer_id.as_str());
        let histories = self
            .store
            .histories(customer, as_of, as_of)
            .await
            .map_err(ServiceError::from)?;
        let policy = self.classification.clone();
        let lines = exposure_lines(&histories, as_of);
        let method = if expected_credit_loss {
            self.expected_credit_loss(&lines).await?
        } else {
            ProvisionMethod::Classification
        };
        let report = compute_provisions(&lines, &policy, &method).map_err(|error| match error {
            ProvisionError::TooLarge(_) => crate::api::convert::too_large("a provision total"),
            missing @ ProvisionError::MissingPd(_) => ServiceError::internal(missing),
        })?;

        let after = page.after.as_deref().unwrap_or("");
        let mut customers: Vec<(String, pb::CustomerProvision)> = report
            .customers
            .iter()
            .enumerate()
            .map(|(index, line)| {
                (
                    format!("{index:010}"),
                    pb::CustomerProvision {
                        customer_id: line.customer_id.to_string(),
                        classification: classification_to_proto(line.classification).into(),
                        exposure: money(line.exposure, line.currency),
                        provision: money(line.provision, line.currency),
                        pd: String::new(),
                        lgd: String::new(),
                    },
                )
            })
            .filter(|(key, _)| key.as_str() > after)
            .take(page.size + 1)
            .collect();
        let next_page_token = page.finish(&mut customers, |(key, _)| key);
        Ok(pb::GetProvisionsResponse {
            as_of_date: Some(to_date(as_of)),
            method: if expected_credit_loss {
                pb::ProvisionMethod::ExpectedCreditLoss
            } else {
                pb::ProvisionMethod::Classification
            }
            .into(),
            summaries: report
                .summaries
                .values()
                .map(|summary| {
                    let too_large = |_| crate::api::convert::too_large("a provision total");
                    let total_exposure = summary.total_exposure().map_err(too_large)?;
                    let total_provision = summary.total_provision().map_err(too_large)?;
                    Ok(pb::ProvisionSummary {
                        currency: summary.currency.code().to_owned(),
                        by_class: summary
                            .by_class()
                            .map(|(classification, class)| pb::ClassProvision {
                                classification: classification_to_proto(classification).into(),
                                exposure: money(class.exposure, summary.currency),
                                provision: money(class.provision, summary.currency),
                                invoice_count: i32::try_from(class.invoice_count)
                                    .unwrap_or(i32::MAX),
                            })
                            .collect(),
                        total_exposure: money(total_exposure, summary.currency),
                        total_provision: money(total_provision, summary.currency),
                    })
                })
                .collect::<Result<_, ServiceError>>()?,
            customers: customers.into_iter().map(|(_, line)| line).collect(),
            rules: policy
                .rules()
                .iter()
                .map(|rule| pb::ClassificationRule {
                    classification: classification_to_proto(rule.classification).into(),
                    min_days_past_due: i32::try_from(rule.min_days_past_due).unwrap_or(i32::MAX),
                    max_days_past_due: policy
                        .max_days_past_due(rule.classification)
                        .map(|days| i32::try_from(days).unwrap_or(i32::MAX)),
                    provision_rate_percent: rule.provision_rate_percent.to_string(),
                })
                .collect(),
            lgd: String::new(),
            next_page_token,
        })
    }

    pub(crate) async fn request_write_off_now(
        &self,
        principal: &Principal,
        request: pb::RequestWriteOffRequest,
    ) -> Result<pb::RequestWriteOffResponse, ServiceError> {
        let request_id = required_id("request_id", &request.request_id);
        let invoice_id = required_id("invoice_id", &request.invoice_id);
        let amount = match &request.amount {
            None => Ok(None),
            Some(amount) => positive_money("amount", Some(amount)).map(Some),
        };
        let reason = required_text("reason", &request.reason);
        let ((request_id, invoice_id), (amount, reason)) =
            both(both(request_id, invoice_id), both(amount, reason))?;
        let key = IdempotencyKey::new(
            &principal.name,
            request_id.clone(),
            "RequestWriteOff",
            &request,
        );
        let stored = self.stored_invoice(&invoice_id).await?;
        let invoice = &stored.history.invoice;
        let open_now = open_now(&stored.history);
        let write_off_id = format!("wof_{}", uuid::Uuid::now_v7().simple());
        if let Some(amount) = &amount
            && amount.currency() != invoice.currency
        {
            return Err(currency_mismatch("amount", invoice.currency));
        }
        let planned = write_off_amount(open_now, amount.as_ref().map(Money::amount))
            .map_err(write_off_refusal)?;
        let approval_chain = self
            .write_off_chain(
                principal,
                invoice.customer_id.as_ref(),
                Money::new(planned, invoice.currency),
            )
            .await?;
        let plan = || -> Result<WriteOffRecord, ServiceError> {
            let amount = write_off_amount(open_now, amount.as_ref().map(Money::amount))
                .map_err(write_off_refusal)?;
            Ok(WriteOffRecord {
                write_off_id: write_off_id.clone(),
                invoice_id: invoice_id.clone(),
                customer_id: invoice.customer_id.to_string(),
                currency: invoice.currency,
                amount,
                reason: reason.clone(),
                status: WriteOffStatus::Pending,
                requested_by: principal.name.clone(),
                requested_by_id: principal.id.clone(),
                requested_at: Utc::now(),
                decided_by: String::new(),
                decided_at: None,
                decision_date: None,
                decision_reason: String::new(),
                recovered: Decimal::ZERO,
                approval_chain: approval_chain.clone().map(Box::new),
            })
        };
        let outcome = self
            .loss
            .request_write_off(&key, &plan)
            .await
            .map_err(ServiceError::from)?;
        let write_off = self.stored_write_off(&outcome.into_inner()).await?;
        Ok(pb::RequestWriteOffResponse {
            write_off: Some(write_off_proto(&write_off)),
        })
    }

    pub(crate) async fn decide_write_off_now(
        &self,
        principal: &Principal,
        request: pb::DecideWriteOffRequest,
    ) -> Result<pb::DecideWriteOffResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let request_id = required_id("request_id", &request.request_id);
        let write_off_id = required_id("write_off_id", &request.write_off_id);
        let approve = convert::approve_or_reject(request.decision);
        let reason = required_text("reason", &request.reason);
        let ((request_id, write_off_id), (approve, reason)) =
            both(both(request_id, write_off_id), both(approve, reason))?;
        let key = IdempotencyKey::new(
            &principal.name,
            request_id.clone(),
            "DecideWriteOff",
            &request,
        );
        let checker_actor = Actor::of(principal);
        let now = Utc::now();
        let plan = |write_off: &WriteOffRecord,
                    invoice: &InvoiceState|
         -> Result<DecisionChanges, ServiceError> {
            // A write-off with a chain: this verdict decides the step that waits; only the
            // last approving step writes the receivable off.
            let walked = match &write_off.approval_chain {
                Some(chain) if write_off.status == WriteOffStatus::Pending => Some(
                    walk_write_off_chain(chain, principal, approve, &reason, now)?,
                ),
                _ => None,
            };
            if let Some((chain, Progress::Advanced)) = &walked {
                return Ok(DecisionChanges {
                    write_off: WriteOffRecord {
                        approval_chain: Some(Box::new(chain.clone())),
                        ..write_off.clone()
                    },
                    movement: None,
                    close_invoice_on: None,
                    events: Vec::new(),
                });
            }
            let checker = Checker {
                actor: &checker_actor,
                // The chain checked the authority its steps need.
                authority_covers_amount: walked.is_some()
                    || principal.may_approve(&Money::new(write_off.amount, write_off.currency)),
            };
            let maker = Actor {
                principal_id: write_off.requested_by_id.clone(),
                ..Actor::named(&write_off.requested_by)
            };
            let decision = decide_write_off(
                write_off.status,
                &maker,
                write_off.amount,
                approve,
                &checker,
                invoice.open_amount,
            )
            .map_err(write_off_refusal)?;
            let mut decided = write_off.clone();
            if let Some((chain, _)) = walked {
                decided.approval_chain = Some(Box::new(chain));
            }
            decided.decided_by = principal.name.clone();
            decided.decision_date = Some(today);
            decided.decision_reason = reason.clone();
            let WriteOffDecision::Approve { amount, open_after } = decision else {
                decided.status = WriteOffStatus::Rejected;
                return Ok(DecisionChanges {
                    write_off: decided,
                    movement: None,
                    close_invoice_on: None,
                    events: Vec::new(),
                });
            };
            decided.status = WriteOffStatus::Approved;
            let event = pb::Event {
                aggregate_id: write_off.write_off_id.clone(),
                customer_id: write_off.customer_id.clone(),
                actor: convert::actor(&principal.name),
                ..new_event(
                    COLLECTIONS,
                    Payload::ReceivableWrittenOff(pb::ReceivableWrittenOff {
                        write_off_id: write_off.write_off_id.clone(),
                        customer_id: write_off.customer_id.clone(),
                        invoice_id: write_off.invoice_id.clone(),
                        amount: money(amount, write_off.currency),
                        invoice_open_amount: money(open_after, write_off.currency),
                        requested_by: write_off.requested_by.clone(),
                        approved_by: principal.name.clone(),
                    }),
                )
            };
            Ok(DecisionChanges {
                write_off: decided,
                movement: Some(NewMovement {
                    invoice_id: write_off.invoice_id.clone(),
                    kind: MovementKind::WriteOff,
                    amount,
                    date: today,
                    document_id: write_off.write_off_id.clone(),
                }),
                close_invoice_on: (open_after <= Decimal::ZERO).then_some(today),
                events: vec![event],
            })
        };
        let outcome = self
            .loss
            .decide_write_off(&key, &write_off_id, &plan)
            .await
            .map_err(ServiceError::from)?;
        let write_off = self.stored_write_off(&outcome.into_inner()).await?;
        let invoice = self.stored_invoice(&write_off.invoice_id).await?;
        Ok(pb::DecideWriteOffResponse {
            write_off: Some(write_off_proto(&write_off)),
            invoice: Some(convert::invoice(&invoice, today, &self.classification)),
        })
    }

    pub(crate) async fn list_write_offs_now(
        &self,
        request: &pb::ListWriteOffsRequest,
    ) -> Result<pb::ListWriteOffsResponse, ServiceError> {
        let page = Page::parse(request.page_size, &request.page_token);
        let status = match pb::ApprovalStatus::try_from(request.status) {
            Ok(pb::ApprovalStatus::Unspecified) => Ok(None),
            Ok(pb::ApprovalStatus::Pending) => Ok(Some(WriteOffStatus::Pending)),
            Ok(pb::ApprovalStatus::Approved) => Ok(Some(WriteOffStatus::Approved)),
            Ok(pb::ApprovalStatus::Rejected) => Ok(Some(WriteOffStatus::Rejected)),
            Err(_) => Err(ServiceError::invalid("status", "is not an approval status")),
        };
        let customer_id = optional_id("customer_id", &request.customer_id);
        let (page, (status, customer_id)) = both(page, both(status, customer_id))?;
        let filter = WriteOffFilter {
            status,
            customer_id: (!customer_id.is_empty()).then_some(customer_id),
        };
        let mut rows = self
            .loss
            .write_offs(&filter, page.after.as_deref(), page.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut rows, |row| row.write_off_id.as_str());
        Ok(pb::ListWriteOffsResponse {
            write_offs: rows.iter().map(write_off_proto).collect(),
            next_page_token,
        })
    }

    pub(crate) async fn record_recovery_now(
        &self,
        principal: &Principal,
        request: pb::RecordRecoveryRequest,
    ) -> Result<pb::RecordRecoveryResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let request_id = required_id("request_id", &request.request_id);
        let write_off_id = required_id("write_off_id", &request.write_off_id);
        let amount = positive_money("amount", request.amount.as_ref());
        let value_date = past_date("value_date", request.value_date.as_ref(), today);
        let reference = optional_id("reference", &request.reference);
        let ((request_id, write_off_id), (amount, (value_date, reference))) = both(
            both(request_id, write_off_id),
            both(amount, both(value_date, reference)),
        )?;
        let key = IdempotencyKey::new(
            &principal.name,
            request_id.clone(),
            "RecordRecovery",
            &request,
        );
        let recovery_id = format!("rcv_{}", uuid::Uuid::now_v7().simple());
        let plan = |write_off: &WriteOffRecord| -> Result<RecoveryChanges, ServiceError> {
            if amount.currency() != write_off.currency {
                return Err(currency_mismatch("amount", write_off.currency));
            }
            let recovered_after = record_recovery(
                write_off.status,
                write_off.amount,
                write_off.recovered,
                amount.amount(),
            )
            .map_err(write_off_refusal)?;
            let event = pb::Event {
                aggregate_id: recovery_id.clone(),
                customer_id: write_off.customer_id.clone(),
                actor: convert::actor(&principal.name),
                ..new_event(
                    COLLECTIONS,
                    Payload::RecoveryRecorded(pb::RecoveryRecorded {
                        recovery_id: recovery_id.clone(),
                        write_off_id: write_off.write_off_id.clone(),
                        customer_id: write_off.customer_id.clone(),
                        invoice_id: write_off.invoice_id.clone(),
                        amount: money(amount.amount(), write_off.currency),
                        value_date: Some(to_date(value_date)),
                    }),
                )
            };
            Ok(RecoveryChanges {
                recovery: RecoveryRecord {
                    recovery_id: recovery_id.clone(),
                    write_off_id: write_off.write_off_id.clone(),
                    invoice_id: write_off.invoice_id.clone(),
                    customer_id: write_off.customer_id.clone(),
                    currency: write_off.currency,
                    amount: amount.amount(),
                    value_date,
                    reference: reference.clone(),
                    recorded_at: Utc::now(),
                    recorded_by: principal.name.clone(),
                },
                recovered_after,
                events: vec![event],
            })
        };
        let outcome = self
            .loss
            .record_recovery(&key, &write_off_id, &plan)
            .await
            .map_err(ServiceError::from)?;
        let recovery = self
            .loss
            .recovery(&outcome.into_inner())
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::internal("a recovery just written is missing"))?;
        let write_off = self.stored_write_off(&recovery.write_off_id).await?;
        Ok(pb::RecordRecoveryResponse {
            recovery: Some(recovery_proto(&recovery)),
            write_off: Some(write_off_proto(&write_off)),
        })
    }

    pub(crate) async fn kpis_now(
        &self,
        request: &pb::GetKpisRequest,
    ) -> Result<pb::GetKpisResponse, ServiceError> {
        let period = match &request.period {
            None => Err(ServiceError::invalid("period", "is required")),
            Some(range) => {
                let start = range.start_date.as_ref().and_then(convert::from_date);
                let end = range.end_date.as_ref().and_then(convert::from_date);
                match (start, end) {
                    (Some(start), Some(end)) => Period::parse(start, end)
                        .map_err(|error| ServiceError::invalid("period", error.to_string())),
                    _ => Err(ServiceError::invalid(
                        "period",
                        "needs a valid start_date and end_date",
                    )),
                }
            }
        };
        let currency = match request.currency.trim() {
            "" => Ok(None),
            code => credit_core::Currency::parse(code)
                .map(Some)
                .map_err(|error| ServiceError::invalid("currency", error.to_string())),
        };
        let (period, currency) = both(period, currency)?;
        let histories = self
            .store
            .histories(None, period.end(), period.day_before())
            .await
            .map_err(ServiceError::from)?;
        let promises: Vec<PromiseOutcome> = self
            .cases
            .dunning_promises()
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .filter_map(|promise| {
                Some(PromiseOutcome {
                    currency: promise.currency,
                    promised_date: promise.promised_date,
                    status: match promise.status.as_str() {
                        "KEPT" => PromiseStatus::Kept,
                        "BROKEN" => PromiseStatus::Broken,
                        "OPEN" => PromiseStatus::Open,
                        _ => return None,
                    },
                })
            })
            .collect();
        let inputs = kpi_inputs(&histories, &promises, &period)
            .map_err(|_| crate::api::convert::too_large("a KPI figure"))?;
        let kpis = inputs
            .into_values()
            .filter(|inputs| currency.is_none_or(|wanted| wanted == inputs.currency))
            .map(|inputs| {
                let kpis = compute_kpis(inputs)
                    .map_err(|_| crate::api::convert::too_large("a KPI figure"))?;
                let inputs = &kpis.inputs;
                let code = inputs.currency;
                Ok(pb::KpiSet {
                    currency: code.code().to_owned(),
                    credit_sales: money(inputs.credit_sales, code),
                    opening_receivables: money(inputs.opening_receivables, code),
                    closing_receivables: money(inputs.closing_receivables, code),
                    closing_current_receivables: money(inputs.closing_current_receivables, code),
                    closing_overdue_receivables: money(inputs.closing_overdue_receivables, code),
                    write_offs: money(inputs.write_offs, code),
                    days_in_period: i32::try_from(inputs.days_in_period).unwrap_or(i32::MAX),
                    dso: kpis.dso.map(|value| value.to_string()),
                    overdue_ratio: kpis.overdue_ratio.map(|value| value.to_string()),
                    bad_debt_ratio: kpis.bad_debt_ratio.map(|value| value.to_string()),
                    collection_effectiveness_percent: kpis
                        .collection_effectiveness_percent
                        .map(|value| value.to_string()),
                    promise_kept_rate: kpis.promise_kept_rate.map(|value| value.to_string()),
                    promises_due: i32::try_from(inputs.promises_due).unwrap_or(i32::MAX),
                    promises_kept: i32::try_from(inputs.promises_kept).unwrap_or(i32::MAX),
                })
            })
            .collect::<Result<_, ServiceError>>()?;
        Ok(pb::GetKpisResponse {
            period: request.period,
            kpis,
        })
    }

    async fn stored_write_off(&self, write_off_id: &str) -> Result<WriteOffRecord, ServiceError> {
        self.loss
            .write_off(write_off_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("write-off", write_off_id))
    }
}

fn write_off_refusal(error: WriteOffError) -> ServiceError {
    if error.is_permission() {
        return ServiceError::PermissionDenied {
            reason: error.reason(),
            message: error.to_string(),
        };
    }
    ServiceError::FailedPrecondition {
        reason: error.reason(),
        message: error.to_string(),
        metadata: Vec::new(),
    }
}

fn currency_mismatch(field: &str, expected: credit_core::Currency) -> ServiceError {
    ServiceError::FailedPrecondition {
        reason: "CURRENCY_MISMATCH",
        message: format!(
            "{field} must be in the invoice's currency {}",
            expected.code()
        ),
        metadata: vec![("currency", expected.code().to_owned())],
    }
}

fn required_text(field: &str, value: &str) -> Result<String, ServiceError> {
    credit_core::required_text(field, value, MAX_REASON_LEN)
}

/// Open amount after every movement recorded, whatever its date.
fn open_now(history: &crate::domain::InvoiceHistory) -> Decimal {
    let reduced: Decimal = history
        .movements
        .iter()
        .map(|movement| movement.amount)
        .sum();
    (history.invoice.amount - reduced).max(Decimal::ZERO)
}

fn status_proto(status: WriteOffStatus) -> pb::ApprovalStatus {
    match status {
        WriteOffStatus::Pending => pb::ApprovalStatus::Pending,
        WriteOffStatus::Approved => pb::ApprovalStatus::Approved,
        WriteOffStatus::Rejected => pb::ApprovalStatus::Rejected,
    }
}

pub(super) fn write_off_proto(record: &WriteOffRecord) -> pb::WriteOff {
    let decided = record.status != WriteOffStatus::Pending;
    pb::WriteOff {
        write_off_id: record.write_off_id.clone(),
        invoice_id: record.invoice_id.clone(),
        customer_id: record.customer_id.clone(),
        amount: money(record.amount, record.currency),
        reason: record.reason.clone(),
        status: status_proto(record.status).into(),
        requested_by: convert::actor(&record.requested_by),
        requested_at: Some(convert::timestamp(record.requested_at)),
        decided_by: if decided {
            convert::actor(&record.decided_by)
        } else {
            None
        },
        decided_at: record.decided_at.map(convert::timestamp),
        decision_reason: record.decision_reason.clone(),
        recovered_amount: money(record.recovered, record.currency),
        approval_chain: record
            .approval_chain
            .as_deref()
            .map(credit_runtime::approval_wire::chain_to_proto),
    }
}

fn recovery_proto(record: &RecoveryRecord) -> pb::Recovery {
    pb::Recovery {
        recovery_id: record.recovery_id.clone(),
        write_off_id: record.write_off_id.clone(),
        invoice_id: record.invoice_id.clone(),
        customer_id: record.customer_id.clone(),
        amount: money(record.amount, record.currency),
        value_date: Some(to_date(record.value_date)),
        reference: record.reference.clone(),
        recorded_at: Some(convert::timestamp(record.recorded_at)),
        recorded_by: convert::actor(&record.recorded_by),
    }
}
