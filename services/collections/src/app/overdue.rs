//! Overdue detection: each customer's oldest overdue days as of a date, announced as
//! InvoiceOverdue when they changed since the last announcement (limits blocks and unblocks
//! credit on it, rating re-rates past 30 days); then promises to pay evaluated (kept, or
//! broken the day after their date, escalating the case) and collection cases opened for
//! customers with anything overdue and closed for those without. Running it twice for one
//! date announces, opens, closes and breaks nothing new.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use credit_core::ServiceError;
use credit_proto::service_names::COLLECTIONS;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;

use super::Collections;
use crate::api::convert::{as_of_date, money, to_date};
use crate::domain::overdue_positions;
use crate::store::OverdueChange;

impl Collections {
    pub(crate) async fn detect_overdue_now(
        &self,
        request: &pb::DetectOverdueRequest,
    ) -> Result<pb::DetectOverdueResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let as_of = as_of_date("as_of_date", request.as_of_date.as_ref(), today)?;
        let customers: Vec<String> = request
            .customer_ids
            .iter()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .collect();
        let only = (!customers.is_empty()).then_some(customers.as_slice());
        self.detect_overdue_for(as_of, only).await
    }

    /// Detects overdue as of `as_of` for every customer with receivables, or only `only`.
    pub async fn detect_overdue_for(
        &self,
        as_of: NaiveDate,
        only: Option<&[String]>,
    ) -> Result<pb::DetectOverdueResponse, ServiceError> {
        let histories = match only {
            Some([customer]) => self
                .store
                .histories(Some(customer), as_of, as_of)
                .await
                .map_err(ServiceError::from)?,
            _ => self
                .store
                .histories(None, as_of, as_of)
                .await
                .map_err(ServiceError::from)?,
        };
        let positions = overdue_positions(&histories, as_of)
            .map_err(|_| crate::api::convert::too_large("an overdue amount"))?;
        let announced = self
            .store
            .overdue_positions()
            .await
            .map_err(ServiceError::from)?;
        let mut evaluated: BTreeMap<String, (u32, Vec<pb::Money>, Vec<pb::OverdueInvoice>)> =
            BTreeMap::new();
        for (customer, position) in &positions {
            let invoices = histories
                .iter()
                .filter(|history| &history.invoice.customer_id == customer)
                .filter_map(|history| {
                    let open = history.open_amount_as_of(as_of)?;
                    let days = history.invoice.days_past_due(as_of);
                    (open > rust_decimal::Decimal::ZERO && days > 0).then(|| pb::OverdueInvoice {
                        invoice_id: history.invoice.invoice_id.to_string(),
                        days_past_due: i32::try_from(days).unwrap_or(i32::MAX),
                        open_amount: money(open, history.invoice.currency),
                    })
                })
                .collect();
            evaluated.insert(
                customer.to_string(),
                (
                    position.oldest_overdue_days,
                    position
                        .overdue_amounts
                        .iter()
                        .filter_map(|(currency, amount)| money(*amount, *currency))
                        .collect(),
                    invoices,
                ),
            );
        }
        // Customers announced overdue before whose receivables are gone from the read (all
        // paid before the as-of date) are back to 0.
        for (customer, days) in &announced {
            let in_scope = only.is_none_or(|only| only.contains(customer));
            if *days > 0 && in_scope && !evaluated.contains_key(customer) {
                evaluated.insert(customer.clone(), (0, Vec::new(), Vec::new()));
            }
        }
        let mut changed = Vec::new();
        let mut changes = Vec::new();
        for (customer, (days, amounts, invoices)) in &evaluated {
            if only.is_some_and(|only| !only.contains(customer)) {
                continue;
            }
            let previous = announced.get(customer).copied().unwrap_or(0);
            if previous == *days {
                continue;
            }
            let to_i32 = |days: u32| i32::try_from(days).unwrap_or(i32::MAX);
            changed.push(pb::OverduePosition {
                customer_id: customer.clone(),
                previous_oldest_overdue_days: to_i32(previous),
                oldest_overdue_days: to_i32(*days),
                overdue_amounts: amounts.clone(),
            });
            let event = pb::Event {
                aggregate_id: customer.clone(),
                customer_id: customer.clone(),
                ..new_event(
                    COLLECTIONS,
                    Payload::InvoiceOverdue(pb::InvoiceOverdue {
                        customer_id: customer.clone(),
                        as_of_date: Some(to_date(as_of)),
                        oldest_overdue_days: to_i32(*days),
                        previous_oldest_overdue_days: to_i32(previous),
                        overdue_amounts: amounts.clone(),
                        invoices: invoices.clone(),
                    }),
                )
            };
            changes.push(OverdueChange {
                customer_id: customer.clone(),
                previous,
                days: *days,
                event,
            });
        }
        if !changes.is_empty() {
            let saved = self
                .store
                .save_overdue_positions(&changes, as_of)
                .await
                .map_err(ServiceError::from)?;
            // A change another detection recorded first is its to announce.
            changed.retain(|position| saved.contains(&position.customer_id));
            tracing::info!(changed = saved.len(), %as_of, "overdue positions announced");
        }
        let overdue_days: BTreeMap<String, u32> = evaluated
            .iter()
            .filter(|(customer, _)| only.is_none_or(|only| only.contains(customer)))
            .map(|(customer, (days, _, _))| (customer.clone(), *days))
            .collect();
        let (opened, closed, broken) = self.sync_cases(as_of, only, &overdue_days).await?;
        let count = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
        Ok(pb::DetectOverdueResponse {
            customers_evaluated: i32::try_from(evaluated.len()).unwrap_or(i32::MAX),
            changed,
            cases_opened: count(opened),
            cases_closed: count(closed),
            promises_broken: count(broken),
        })
    }
}
