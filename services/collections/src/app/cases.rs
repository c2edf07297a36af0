//! Collection cases: opened and closed by overdue detection (one open case per customer), the
//! collector's worklist, assignment, contacts and promises to pay.
//!
//! Choices:
//! - one open case per customer (a unique index on the open case); it opens when overdue
//!   detection finds anything overdue and closes when nothing is, cancelling a promise still
//!   open then;
//! - a new case is due for contact on the day it opens;
//! - the worklist ranks in the suite's base currency (`CREDIT_BASE_CURRENCY`): overdue amounts
//!   in other currencies are converted with limits' current FX rates (direct, else inverse);
//!   an amount without a rate is left out of the ranking (and logged), not guessed;
//! - a customer without a rating from rating ranks with [`DEFAULT_PD`] (0.05).

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{NaiveDate, Utc};
use credit_core::{Currency, Principal, ServiceError, both};
use credit_proto::v1 as pb;
use credit_runtime::sql::{IdempotencyKey, Page};
use rust_decimal::Decimal;

use super::Collections;
use crate::api::convert::{
    self, from_date, money, optional_id, positive_money, required_id, timestamp, to_date,
};
use crate::domain::promise::AllocatedPayment;
use crate::domain::{
    CaseExposure, CaseId, ContactOutcome, CustomerId, Fraction, InvoiceId, MovementKind,
    OverduePosition, PromiseId, PromiseScope, PromiseStatus, PromiseToPay, WorklistParams,
    default_next_contact, evaluate_promise, overdue_positions, rank_worklist,
};
use crate::store::{CaseRecord, ContactRecord, PromiseDecision, PromiseRecord};

/// PD of a customer rating has not announced a rating for.
pub const DEFAULT_PD: Decimal = Decimal::from_parts(5, 0, 0, false, 2);

const MAX_NOTES_LEN: usize = 4_000;

impl Collections {
    /// Rates into `target` from limits' current FX table; only `target` itself when limits
    /// cannot be asked (the ranking then counts amounts in `target` only).
    async fn rates_into(&self, target: Currency) -> BTreeMap<Currency, Decimal> {
        let mut table = Vec::new();
        if let Some(limits) = &self.limits {
            let mut limits = limits.clone();
            let mut page_token = String::new();
            loop {
                let page = match limits
                    .list_fx_rates(pb::ListFxRatesRequest {
                        page_size: 500,
                        page_token: page_token.clone(),
                        ..Default::default()
                    })
                    .await
                {
                    Ok(page) => page.into_inner(),
                    Err(status) => {
                        tracing::warn!(code = ?status.code(), "FX rates not available for the worklist ranking");
                        break;
                    }
                };
                for rate in &page.fx_rates {
                    if let (Ok(base), Ok(quote), Ok(value)) = (
                        Currency::parse(&rate.base_currency),
                        Currency::parse(&rate.quote_currency),
                        Decimal::from_str(&rate.rate),
                    ) {
                        table.push((base, quote, value));
                    }
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        rates_into_target(&table, target)
    }

    /// Promises evaluated, then cases opened and closed, as of `as_of` for the customers
    /// `positions` covers (those in scope). Returns (opened, closed, broken).
    pub(crate) async fn sync_cases(
        &self,
        as_of: NaiveDate,
        only: Option<&[String]>,
        overdue_days: &BTreeMap<String, u32>,
    ) -> Result<(u32, u32, u32), ServiceError> {
        // Promises first: a promise kept on the day the last invoice was paid is kept, not
        // cancelled by the case closing.
        let promises = match only {
            Some([customer]) => self.cases.open_promises(Some(customer)).await,
            _ => self.cases.open_promises(None).await,
        }
        .map_err(ServiceError::from)?;
        let mut decisions = Vec::new();
        for promise in promises {
            if only.is_some_and(|only| !only.contains(&promise.customer_id)) {
                continue;
            }
            let Some(domain) = domain_promise(&promise) else {
                continue;
            };
            let histories = self
                .store
                .histories(Some(&promise.customer_id), as_of, promise.made_on)
                .await
                .map_err(ServiceError::from)?;
            let allocations: Vec<AllocatedPayment> = histories
                .iter()
                .flat_map(|history| {
                    history
                        .movements
                        .iter()
                        .filter(|movement| movement.kind == MovementKind::Payment)
                        .map(|movement| AllocatedPayment {
                            customer_id: history.invoice.customer_id.clone(),
                            invoice_id: history.invoice.invoice_id.clone(),
                            currency: history.invoice.currency,
                            amount: movement.amount,
                            value_date: movement.date,
                        })
                })
                .collect();
            let evaluation = evaluate_promise(&domain, &allocations, as_of);
            let status = promise_status_name(evaluation.status);
            if status == "OPEN" && evaluation.paid_amount == promise.paid_amount {
                continue;
            }
            decisions.push(PromiseDecision {
                promise_id: promise.promise_id.clone(),
                case_id: promise.case_id.clone(),
                status: status.to_owned(),
                paid_amount: evaluation.paid_amount,
                decided_on: evaluation.decided_on,
            });
        }
        let broken = self
            .cases
            .decide_promises(&decisions)
            .await
            .map_err(ServiceError::from)?;
        let overdue: Vec<String> = overdue_days
            .iter()
            .filter(|(_, days)| **days > 0)
            .map(|(customer, _)| customer.clone())
            .collect();
        let settled: Vec<String> = self
            .cases
            .cases(None, true)
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .map(|case| case.customer_id)
            .filter(|customer| only.is_none_or(|only| only.contains(customer)))
            .filter(|customer| overdue_days.get(customer).copied().unwrap_or(0) == 0)
            .collect();
        let (opened, closed) = self
            .cases
            .sync_cases(&overdue, &settled, as_of)
            .await
            .map_err(ServiceError::from)?;
        if opened + closed + broken > 0 {
            tracing::info!(opened, closed, broken, %as_of, "collection cases updated");
        }
        Ok((opened, closed, broken))
    }

    /// The contract's case: overdue figures as of `today`, with its open promise.
    pub(crate) async fn case_view(
        &self,
        record: &CaseRecord,
        today: NaiveDate,
    ) -> Result<pb::CollectionCase, ServiceError> {
        let histories = self
            .store
            .histories(Some(&record.customer_id), today, today)
            .await
            .map_err(ServiceError::from)?;
        let positions = overdue_positions(&histories, today)
            .map_err(|_| crate::api::convert::too_large("an overdue amount"))?;
        let position = positions
            .into_values()
            .find(|position| position.customer_id.as_str() == record.customer_id);
        let open_promise = self
            .cases
            .open_promises(Some(&record.customer_id))
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .find(|promise| promise.case_id == record.case_id);
        Ok(case_message(
            record,
            position.as_ref(),
            open_promise.as_ref(),
        ))
    }

    pub(crate) async fn list_worklist_now(
        &self,
        request: &pb::ListWorklistRequest,
    ) -> Result<pb::ListWorklistResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let page = Page::parse(request.page_size, &request.page_token);
        let collector = optional_id("collector", &request.collector);
        let due_by = match &request.due_by_date {
            None => Ok(None),
            Some(date) => from_date(date).map(Some).ok_or_else(|| {
                ServiceError::invalid("due_by_date", "is not a valid calendar date")
            }),
        };
        let (page, (collector, due_by)) = both(page, both(collector, due_by))?;
        let ranking_currency = self.reporting_currency;
        let rates = self.rates_into(ranking_currency).await;
        let cases = self
            .cases
            .cases(None, true)
            .await
            .map_err(ServiceError::from)?;
        let histories = self
            .store
            .histories(None, today, today)
            .await
            .map_err(ServiceError::from)?;
        let positions: BTreeMap<String, OverduePosition> = overdue_positions(&histories, today)
            .map_err(|_| crate::api::convert::too_large("an overdue amount"))?
            .into_iter()
            .map(|(customer, position)| (customer.to_string(), position))
            .collect();
        let pds = self
            .cases
            .customer_pds()
            .await
            .map_err(ServiceError::from)?;
        let mut exposures = Vec::new();
        for case in &cases {
            let position = positions.get(&case.customer_id);
            let pd = pds
                .get(&case.customer_id)
                .and_then(|pd| Decimal::from_str(pd).ok())
                .and_then(|pd| Fraction::parse(pd).ok())
                .map_or_else(default_pd, Ok)?;
            exposures.push(CaseExposure {
                case_id: CaseId::parse(&case.case_id)
                    .map_err(|error| ServiceError::internal(format!("case id: {error}")))?,
                customer_id: CustomerId::parse(&case.customer_id)
                    .map_err(|error| ServiceError::internal(format!("customer id: {error}")))?,
                overdue_amount: position.map_or(Decimal::ZERO, |position| {
                    in_reporting_currency(&position.overdue_amounts, &rates, &case.customer_id)
                }),
                currency: ranking_currency,
                pd,
                oldest_days_past_due: position.map_or(0, |position| position.oldest_overdue_days),
                broken_promises: case.broken_promises,
            });
        }
        let ranked = rank_worklist(&exposures, &WorklistParams::default())
            .map_err(ServiceError::internal)?;
        let by_id: BTreeMap<&str, &CaseRecord> = cases
            .iter()
            .map(|case| (case.case_id.as_str(), case))
            .collect();
        let open_promises: BTreeMap<String, PromiseRecord> = self
            .cases
            .open_promises(None)
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .map(|promise| (promise.case_id.clone(), promise))
            .collect();
        let after = page.after.clone().unwrap_or_default();
        let mut lines: Vec<(String, pb::WorklistItem)> = Vec::new();
        for item in &ranked {
            let Some(case) = by_id.get(item.case_id.as_str()) else {
                continue;
            };
            if !collector.is_empty() && case.assigned_collector != collector {
                continue;
            }
            if let Some(due_by) = due_by
                && case.next_contact_date.is_none_or(|next| next > due_by)
            {
                continue;
            }
            let key = format!("{:010}", item.rank);
            if key <= after {
                continue;
            }
            lines.push((
                key,
                pb::WorklistItem {
                    rank: i32::try_from(item.rank).unwrap_or(i32::MAX),
                    collection_case: Some(case_message(
                        case,
                        positions.get(&case.customer_id),
                        open_promises.get(&case.case_id),
                    )),
                    // Collections keeps no customer names: filled from intake below, for
                    // this page only.
                    customer_display_name: String::new(),
                    overdue_amount: money(item.overdue_amount, item.currency),
                    pd: item.pd.value().normalize().to_string(),
                    lgd: item.lgd.value().normalize().to_string(),
                    expected_loss: money(item.expected_loss, item.currency),
                    days_past_due_factor: item.days_past_due_factor.normalize().to_string(),
                    broken_promise_factor: item.broken_promise_factor.normalize().to_string(),
                    priority_amount: money(item.priority_amount, item.currency),
                },
            ));
            if lines.len() > page.size {
                break;
            }
        }
        let next_page_token = page.finish(&mut lines, |(key, _)| key);
        let mut items: Vec<pb::WorklistItem> = lines.into_iter().map(|(_, item)| item).collect();
        for item in &mut items {
            if let Some(case) = &item.collection_case {
                item.customer_display_name = self.customer_name(&case.customer_id).await;
            }
        }
        Ok(pb::ListWorklistResponse {
            items,
            next_page_token,
        })
    }

    pub(crate) async fn assign_case_now(
        &self,
        principal: &Principal,
        request: &pb::AssignCaseRequest,
    ) -> Result<pb::AssignCaseResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let (case_id, collector) = both(
            required_id("case_id", &request.case_id),
            optional_id("collector", &request.collector),
        )?;
        let record = self
            .cases
            .assign_case(&case_id, &collector)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("collection case", &case_id))?;
        tracing::info!(%case_id, assigned_by = %principal.name, "collection case assigned");
        Ok(pb::AssignCaseResponse {
            collection_case: Some(self.case_view(&record, today).await?),
        })
    }

    pub(crate) async fn log_contact_now(
        &self,
        principal: &Principal,
        request: &pb::LogContactRequest,
    ) -> Result<pb::LogContactResponse, ServiceError> {
        let now = Utc::now();
        let today = now.date_naive();
        let request_id = required_id("request_id", &request.request_id);
        let case_id = required_id("case_id", &request.case_id);
        let channel = match pb::ContactChannel::try_from(request.channel) {
            Ok(pb::ContactChannel::Unspecified) | Err(_) => {
                Err(ServiceError::invalid("channel", "is required"))
            }
            Ok(channel) => Ok(channel),
        };
        let outcome = match pb::ContactOutcome::try_from(request.outcome) {
            Ok(pb::ContactOutcome::Reached) => Ok(ContactOutcome::Reached),
            Ok(pb::ContactOutcome::NoAnswer) => Ok(ContactOutcome::NoAnswer),
            Ok(pb::ContactOutcome::PromiseToPay) => Ok(ContactOutcome::PromiseToPay),
            Ok(pb::ContactOutcome::Dispute) => Ok(ContactOutcome::Dispute),
            Ok(pb::ContactOutcome::Refused) => Ok(ContactOutcome::Refused),
            Ok(pb::ContactOutcome::Unspecified) | Err(_) => {
                Err(ServiceError::invalid("outcome", "is required"))
            }
        };
        let notes = bounded_text("notes", &request.notes, MAX_NOTES_LEN);
        let contact_name = bounded_text("contact_name", &request.contact_name, 200);
        let contacted_at = match &request.contacted_at {
            None => Ok(now),
            Some(time) => credit_proto::time::from_timestamp(time)
                .filter(|time| *time <= now)
                .ok_or_else(|| {
                    ServiceError::invalid("contacted_at", "must be a valid time, not in the future")
                }),
        };
        let next_given = match &request.next_contact_date {
            None => Ok(None),
            Some(date) => from_date(date).map(Some).ok_or_else(|| {
                ServiceError::invalid("next_contact_date", "is not a valid calendar date")
            }),
        };
        let (
            ((request_id, case_id), (channel, outcome)),
            ((notes, contact_name), (contacted_at, next_given)),
        ) = both(
            both(both(request_id, case_id), both(channel, outcome)),
            both(both(notes, contact_name), both(contacted_at, next_given)),
        )?;
        let contacted_on = contacted_at.date_naive();
        let promise_input = match (outcome, &request.promise) {
            (ContactOutcome::PromiseToPay, None) => {
                return Err(ServiceError::FailedPrecondition {
                    reason: "PROMISE_REQUIRED",
                    message: "outcome PROMISE_TO_PAY needs the promise (amount and date)"
                        .to_owned(),
                    metadata: Vec::new(),
                });
            }
            (ContactOutcome::PromiseToPay, Some(promise)) => Some(promise_input(promise, today)?),
            (_, Some(_)) => {
                return Err(ServiceError::invalid(
                    "promise",
                    "is given only with outcome PROMISE_TO_PAY",
                ));
            }
            (_, None) => None,
        };
        let key = IdempotencyKey::new(&principal.name, request_id.clone(), "LogContact", request);
        // The store recognises a replay before it checks the case is still open: a retry
        // answers the first result.
        let case = self
            .cases
            .case(&case_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("collection case", &case_id))?;
        if let Some((_, currency, _, invoice_ids)) = &promise_input {
            for (index, invoice_id) in invoice_ids.iter().enumerate() {
                let invoice = self
                    .store
                    .invoice(invoice_id)
                    .await
                    .map_err(ServiceError::from)?
                    .filter(|stored| {
                        stored.record.invoice.customer_id.as_str() == case.customer_id
                    });
                match invoice {
                    None => {
                        return Err(ServiceError::invalid(
                            format!("promise.invoice_ids[{index}]"),
                            "is not an invoice of the case's customer",
                        ));
                    }
                    Some(stored) if stored.record.invoice.currency != *currency => {
                        return Err(ServiceError::invalid(
                            format!("promise.invoice_ids[{index}]"),
                            "is in another currency than the promised amount",
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        let contact_id = format!("con_{}", uuid::Uuid::now_v7().simple());
        let promise =
            promise_input.map(
                |(amount, currency, promised_date, invoice_ids)| PromiseRecord {
                    promise_id: format!("ptp_{}", uuid::Uuid::now_v7().simple()),
                    case_id: case.case_id.clone(),
                    customer_id: case.customer_id.clone(),
                    currency,
                    amount,
                    made_on: contacted_on,
                    promised_date,
                    invoice_ids,
                    status: "OPEN".to_owned(),
                    paid_amount: Decimal::ZERO,
                    decided_on: None,
                    created_at: now,
                    created_by: principal.name.clone(),
                },
            );
        let next_contact_date = next_given.unwrap_or_else(|| {
            default_next_contact(
                outcome,
                contacted_on,
                promise.as_ref().map(|promise| promise.promised_date),
            )
        });
        let contact = ContactRecord {
            contact_id,
            case_id: case.case_id.clone(),
            customer_id: case.customer_id.clone(),
            channel: channel.as_str_name().to_owned(),
            outcome: outcome_name(outcome).to_owned(),
            notes,
            contact_name,
            promise_id: promise
                .as_ref()
                .map(|promise| promise.promise_id.clone())
                .unwrap_or_default(),
            contacted_at,
            logged_by: principal.name.clone(),
            next_contact_date,
        };
        let outcome = self
            .cases
            .log_contact(&key, &contact, promise.as_ref())
            .await
            .map_err(ServiceError::from)?;
        let replayed = outcome.is_replay();
        let contact_id = outcome.into_inner();
        if !replayed {
            tracing::info!(%contact_id, case_id = %case.case_id, "contact logged");
        }
        let stored = self
            .cases
            .contact(&contact_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::internal("a contact just logged is missing"))?;
        let case = self
            .cases
            .case(&stored.case_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::internal("the case of a contact is missing"))?;
        Ok(pb::LogContactResponse {
            contact: Some(self.contact_message(&stored).await?),
            collection_case: Some(self.case_view(&case, today).await?),
        })
    }

    pub(crate) async fn list_contacts_now(
        &self,
        request: &pb::ListContactsRequest,
    ) -> Result<pb::ListContactsResponse, ServiceError> {
        let page = Page::parse(request.page_size, &request.page_token);
        let case_id = optional_id("case_id", &request.case_id);
        let customer_id = optional_id("customer_id", &request.customer_id);
        let (page, (case_id, customer_id)) = both(page, both(case_id, customer_id))?;
        if case_id.is_empty() && customer_id.is_empty() {
            return Err(ServiceError::invalid(
                "case_id",
                "give case_id or customer_id",
            ));
        }
        let mut rows = self
            .cases
            .contacts(
                &case_id,
                &customer_id,
                page.after.as_deref(),
                page.fetch_limit(),
            )
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut rows, |row| &row.contact_id);
        let mut contacts = Vec::with_capacity(rows.len());
        for row in &rows {
            contacts.push(self.contact_message(row).await?);
        }
        Ok(pb::ListContactsResponse {
            contacts,
            next_page_token,
        })
    }

    async fn contact_message(
        &self,
        record: &ContactRecord,
    ) -> Result<pb::ContactLogEntry, ServiceError> {
        let promise = if record.promise_id.is_empty() {
            None
        } else {
            self.cases
                .promise(&record.promise_id)
                .await
                .map_err(ServiceError::from)?
                .map(|promise| promise_message(&promise))
        };
        Ok(pb::ContactLogEntry {
            contact_id: record.contact_id.clone(),
            case_id: record.case_id.clone(),
            customer_id: record.customer_id.clone(),
            channel: pb::ContactChannel::from_str_name(&record.channel)
                .unwrap_or_default()
                .into(),
            outcome: pb::ContactOutcome::from_str_name(&record.outcome)
                .unwrap_or_default()
                .into(),
            notes: record.notes.clone(),
            contact_name: record.contact_name.clone(),
            promise,
            contacted_at: Some(timestamp(record.contacted_at)),
            logged_by: convert::actor(&record.logged_by),
            next_contact_date: Some(to_date(record.next_contact_date)),
        })
    }
}

/// The sum of `amounts` in the reporting currency: each converted by its rate into it (the
/// reporting currency itself at 1), rounded once; an amount without a rate is left out.
fn in_reporting_currency(
    amounts: &BTreeMap<Currency, Decimal>,
    rates: &BTreeMap<Currency, Decimal>,
    customer_id: &str,
) -> Decimal {
    let mut total = Decimal::ZERO;
    for (currency, amount) in amounts {
        match rates.get(currency) {
            Some(rate) => total += amount * rate,
            None => tracing::warn!(
                %customer_id,
                currency = currency.code(),
                "no FX rate into the reporting currency: amount left out of the worklist ranking"
            ),
        }
    }
    crate::domain::round_money(total)
}

/// Rates from each currency into `target`, from limits' current FX table: a direct rate
/// (base = the currency, quote = `target`), else the inverse of the opposite one. `target`
/// itself is 1.
pub(super) fn rates_into_target(
    table: &[(Currency, Currency, Decimal)],
    target: Currency,
) -> BTreeMap<Currency, Decimal> {
    let mut rates = BTreeMap::from([(target, Decimal::ONE)]);
    for (base, quote, rate) in table {
        if *quote == target && *base != target {
            rates.insert(*base, *rate);
        }
    }
    for (base, quote, rate) in table {
        if *base == target && *quote != target && !rate.is_zero() {
            rates.entry(*quote).or_insert(Decimal::ONE / rate);
        }
    }
    rates
}

/// The PD of a customer rating has not graded (the worklist and expected credit loss).
pub(super) fn default_pd() -> Result<Fraction, ServiceError> {
    Fraction::parse(DEFAULT_PD).map_err(|error| ServiceError::internal(error.to_string()))
}

fn bounded_text(field: &str, value: &str, max: usize) -> Result<String, ServiceError> {
    credit_core::optional_text(field, value, max)
}

/// (amount, currency, promised date, invoice ids) of a promise given to LogContact.
fn promise_input(
    promise: &pb::PromiseToPayInput,
    today: NaiveDate,
) -> Result<(Decimal, Currency, NaiveDate, Vec<String>), ServiceError> {
    let amount = positive_money("promise.amount", promise.amount.as_ref());
    let date = match &promise.promised_date {
        None => Err(ServiceError::invalid(
            "promise.promised_date",
            "is required",
        )),
        Some(date) => from_date(date)
            .filter(|date| *date >= today)
            .ok_or_else(|| {
                ServiceError::invalid(
                    "promise.promised_date",
                    "must be a valid date, today or later",
                )
            }),
    };
    let mut ids = Vec::new();
    let mut violations = Ok(());
    for (index, id) in promise.invoice_ids.iter().enumerate() {
        match InvoiceId::parse(id.trim()) {
            Ok(id) => ids.push(id.to_string()),
            Err(error) => {
                violations = Err(ServiceError::invalid(
                    format!("promise.invoice_ids[{index}]"),
                    error.to_string(),
                ));
            }
        }
    }
    let ((amount, date), ()) = both(both(amount, date), violations)?;
    Ok((amount.amount(), amount.currency(), date, ids))
}

fn outcome_name(outcome: ContactOutcome) -> &'static str {
    match outcome {
        ContactOutcome::Reached => pb::ContactOutcome::Reached.as_str_name(),
        ContactOutcome::NoAnswer => pb::ContactOutcome::NoAnswer.as_str_name(),
        ContactOutcome::PromiseToPay => pb::ContactOutcome::PromiseToPay.as_str_name(),
        ContactOutcome::Dispute => pb::ContactOutcome::Dispute.as_str_name(),
        ContactOutcome::Refused => pb::ContactOutcome::Refused.as_str_name(),
    }
}

fn promise_status_name(status: PromiseStatus) -> &'static str {
    match status {
        PromiseStatus::Open => "OPEN",
        PromiseStatus::Kept => "KEPT",
        PromiseStatus::Broken => "BROKEN",
        PromiseStatus::Cancelled => "CANCELLED",
    }
}

pub(super) fn domain_promise(record: &PromiseRecord) -> Option<PromiseToPay> {
    let scope = if record.invoice_ids.is_empty() {
        PromiseScope::WholeCase
    } else {
        PromiseScope::Invoices(
            record
                .invoice_ids
                .iter()
                .filter_map(|id| InvoiceId::parse(id).ok())
                .collect(),
        )
    };
    Some(PromiseToPay {
        promise_id: PromiseId::parse(&record.promise_id).ok()?,
        customer_id: CustomerId::parse(&record.customer_id).ok()?,
        amount: record.amount,
        currency: record.currency,
        made_on: record.made_on,
        promised_date: record.promised_date,
        scope,
        cancelled_on: None,
    })
}

pub(super) fn promise_message(record: &PromiseRecord) -> pb::PromiseToPay {
    pb::PromiseToPay {
        promise_id: record.promise_id.clone(),
        case_id: record.case_id.clone(),
        customer_id: record.customer_id.clone(),
        amount: money(record.amount, record.currency),
        promised_date: Some(to_date(record.promised_date)),
        invoice_ids: record.invoice_ids.clone(),
        status: match record.status.as_str() {
            "OPEN" => pb::PromiseStatus::Open,
            "KEPT" => pb::PromiseStatus::Kept,
            "BROKEN" => pb::PromiseStatus::Broken,
            "CANCELLED" => pb::PromiseStatus::Cancelled,
            _ => pb::PromiseStatus::Unspecified,
        }
        .into(),
        paid_amount: money(record.paid_amount, record.currency),
        created_at: Some(timestamp(record.created_at)),
        created_by: convert::actor(&record.created_by),
    }
}

fn case_message(
    record: &CaseRecord,
    position: Option<&OverduePosition>,
    open_promise: Option<&PromiseRecord>,
) -> pb::CollectionCase {
    pb::CollectionCase {
        case_id: record.case_id.clone(),
        customer_id: record.customer_id.clone(),
        status: if record.status == "OPEN" {
            pb::CaseStatus::Open
        } else {
            pb::CaseStatus::Closed
        }
        .into(),
        assigned_collector: record.assigned_collector.clone(),
        overdue_amounts: position
            .map(|position| {
                position
                    .overdue_amounts
                    .iter()
                    .filter_map(|(currency, amount)| money(*amount, *currency))
                    .collect()
            })
            .unwrap_or_default(),
        oldest_days_past_due: position.map_or(0, |position| {
            i32::try_from(position.oldest_overdue_days).unwrap_or(i32::MAX)
        }),
        dunning_level: 0,
        broken_promises: i32::try_from(record.broken_promises).unwrap_or(i32::MAX),
        escalation_level: i32::try_from(record.escalation_level).unwrap_or(i32::MAX),
        open_promise: open_promise.map(promise_message),
        next_contact_date: record.next_contact_date.map(to_date),
        last_contact_at: record.last_contact_at.map(timestamp),
        opened_at: Some(timestamp(record.opened_at)),
        closed_at: record.closed_at.map(timestamp),
    }
}

#[cfg(test)]
mod fx_tests;
