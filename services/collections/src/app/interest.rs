//! GetOverdueInterest: the interest a customer's overdue invoices accrued, at the credit
//! policy's rate as limits keeps it.

use std::collections::BTreeMap;

use chrono::{Days, Utc};
use credit_core::{Currency, ServiceError};
use credit_proto::v1 as pb;
use rust_decimal::Decimal;

use super::Collections;
use super::receivables::customer_id;
use crate::api::convert::{as_of_date, money, to_date};
use crate::domain::interest::{DAYS_PER_YEAR, accrued_interest};
use crate::domain::receivable::InvoiceHistory;
use credit_core::both;

/// How far back an invoice paid late still shows the interest it accrued until paid.
const LOOKBACK_DAYS: u64 = 365;

impl Collections {
    /// The credit policy's overdue interest rate, percent a year, read from limits.
    async fn overdue_interest_rate(&self) -> Result<Decimal, ServiceError> {
        let Some(limits) = &self.limits else {
            return Err(ServiceError::failed_precondition(
                "LIMITS_UNREACHABLE",
                "the overdue interest rate is limits' credit policy, and no limits service is reachable",
            ));
        };
        let policy = limits
            .clone()
            .get_credit_policy(pb::GetCreditPolicyRequest { version: None })
            .await
            .map_err(|status| {
                ServiceError::unavailable("limits did not answer for the credit policy", status)
            })?
            .into_inner()
            .policy
            .ok_or_else(|| ServiceError::internal("limits answered no credit policy"))?;
        let rate = policy
            .pricing
            .map(|pricing| pricing.overdue_interest_percent)
            .unwrap_or_default();
        rate.parse::<Decimal>()
            .map_err(|_| ServiceError::internal("limits' overdue interest rate is not a decimal"))
    }

    pub(crate) async fn overdue_interest(
        &self,
        request: &pb::GetOverdueInterestRequest,
    ) -> Result<pb::GetOverdueInterestResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let (customer_id, as_of) = both(
            customer_id(&request.customer_id),
            as_of_date("as_of_date", request.as_of_date.as_ref(), today),
        )?;
        let rate = self.overdue_interest_rate().await?;
        let since = as_of
            .checked_sub_days(Days::new(LOOKBACK_DAYS))
            .unwrap_or(as_of);
        let mut histories: Vec<InvoiceHistory> = self
            .store
            .histories(Some(&customer_id), as_of, since)
            .await
            .map_err(ServiceError::from)?;
        histories.sort_by(|left, right| {
            (left.invoice.due_date, &left.invoice.invoice_number)
                .cmp(&(right.invoice.due_date, &right.invoice.invoice_number))
        });
        let mut totals: BTreeMap<Currency, Decimal> = BTreeMap::new();
        let mut lines = Vec::new();
        for history in &histories {
            let interest = accrued_interest(history, rate, as_of);
            if interest.is_zero() {
                continue;
            }
            let invoice = &history.invoice;
            let open = history.open_amount_as_of(as_of).unwrap_or_default();
            *totals.entry(invoice.currency).or_default() += interest;
            lines.push(pb::OverdueInterestLine {
                invoice_id: invoice.invoice_id.to_string(),
                invoice_number: invoice.invoice_number.clone(),
                due_date: Some(to_date(invoice.due_date)),
                days_past_due: if open > Decimal::ZERO {
                    i32::try_from(invoice.days_past_due(as_of)).unwrap_or(i32::MAX)
                } else {
                    0
                },
                open_amount: money(open, invoice.currency),
                accrued_interest: money(interest, invoice.currency),
            });
        }
        let mut daily = rate / Decimal::from(DAYS_PER_YEAR);
        daily = daily.round_dp(8);
        Ok(pb::GetOverdueInterestResponse {
            as_of_date: Some(to_date(as_of)),
            annual_rate_percent: rate.normalize().to_string(),
            daily_rate_percent: daily.normalize().to_string(),
            lines,
            totals: totals
                .into_iter()
                .filter_map(|(currency, total)| money(total, currency))
                .collect(),
        })
    }
}
