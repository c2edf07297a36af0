//! Running balances of a customer's account (migration 0007): per currency the open
//! receivables and the unapplied credit, and per currency and due date the open amount and
//! the number of open invoices.
//!
//! Why they exist: without them, every posting, payment and aging page re-read every open
//! item of the customer, so a customer with 8,000 open invoices took ten times longer to
//! invoice than one with 1,000 (issue #19). Each change adds its deltas here in the same
//! transaction, after the account row is locked, so the balances never disagree with the
//! rows they sum; [`rebuild_balances!`] computes them from scratch (the backfill of
//! customers that existed before the migration, and the check the tests make).
//!
//! Deltas are added with checked arithmetic: amounts are bounded on input, but a sum of many
//! is not, and an overflow must refuse the change, never panic or wrap.

#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use chrono::NaiveDate;
use credit_core::{Currency, ServiceError};
use rust_decimal::Decimal;

use super::{StoreError, StoreResult};

/// What one change does to a currency's balance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct CurrencyDelta {
    pub open_receivables: Decimal,
    pub unapplied_credit: Decimal,
}

/// What one change does to the invoices due on one date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct DueDelta {
    pub open_amount: Decimal,
    pub open_invoices: i64,
}

/// The deltas of one change, summed per currency and per (currency, due date).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct BalanceDeltas {
    pub currencies: BTreeMap<Currency, CurrencyDelta>,
    pub due_dates: BTreeMap<(Currency, NaiveDate), DueDelta>,
}

/// A running balance beyond what `Decimal` holds: the change is refused, nothing is written.
pub(super) fn overflow(what: &str) -> StoreError {
    StoreError::refused(ServiceError::FailedPrecondition {
        reason: "BALANCE_OUT_OF_RANGE",
        message: format!("the customer's {what} would exceed the largest amount kept"),
        metadata: Vec::new(),
    })
}

pub(super) fn add(left: Decimal, right: Decimal, what: &str) -> StoreResult<Decimal> {
    left.checked_add(right).ok_or_else(|| overflow(what))
}

fn sub(left: Decimal, right: Decimal, what: &str) -> StoreResult<Decimal> {
    left.checked_sub(right).ok_or_else(|| overflow(what))
}

fn count(left: i64, right: i64) -> StoreResult<i64> {
    left.checked_add(right)
        .ok_or_else(|| overflow("open invoice count"))
}

impl BalanceDeltas {
    /// A new invoice: open for its whole amount.
    pub fn invoice_posted(
        &mut self,
        currency: Currency,
        due_date: NaiveDate,
        amount: Decimal,
    ) -> StoreResult<()> {
        let balance = self.currencies.entry(currency).or_default();
        balance.open_receivables = add(balance.open_receivables, amount, "open receivables")?;
        let due = self.due_dates.entry((currency, due_date)).or_default();
        due.open_amount = add(due.open_amount, amount, "open receivables")?;
        due.open_invoices = count(due.open_invoices, 1)?;
        Ok(())
    }

    /// A payment allocation, credit note or write-off reducing an invoice.
    pub fn invoice_reduced(
        &mut self,
        currency: Currency,
        due_date: NaiveDate,
        amount: Decimal,
    ) -> StoreResult<()> {
        let balance = self.currencies.entry(currency).or_default();
        balance.open_receivables = sub(balance.open_receivables, amount, "open receivables")?;
        let due = self.due_dates.entry((currency, due_date)).or_default();
        due.open_amount = sub(due.open_amount, amount, "open receivables")?;
        Ok(())
    }

    /// An invoice whose open amount reached zero leaves the open count of its due date.
    pub fn invoice_closed(&mut self, currency: Currency, due_date: NaiveDate) -> StoreResult<()> {
        let due = self.due_dates.entry((currency, due_date)).or_default();
        due.open_invoices = count(due.open_invoices, -1)?;
        Ok(())
    }

    /// Unapplied credit kept (positive) or used (negative).
    pub fn credit_changed(&mut self, currency: Currency, delta: Decimal) -> StoreResult<()> {
        let balance = self.currencies.entry(currency).or_default();
        balance.unapplied_credit = add(balance.unapplied_credit, delta, "unapplied credit")?;
        Ok(())
    }
}

/// Writes `$deltas` ([`BalanceDeltas`]) of customer `$customer_id` into the running balances,
/// inside the transaction `$tx` that holds the customer's account row. Evaluates to
/// `StoreResult<()>`. A due date left with no open invoice loses its row, so the rows an aging
/// reads are the due dates still open.
macro_rules! write_balances {
    ($tx:ident, $sql:ident, $customer_id:expr, $deltas:expr) => {
        async {
            let customer_id: &str = $customer_id;
            let deltas: &$crate::store::balances::BalanceDeltas = $deltas;
            for (currency, delta) in &deltas.currencies {
                let current: Option<(String, String)> = sqlx::query_as(&$sql(
                    "SELECT open_receivables, unapplied_credit FROM customer_balances \
                     WHERE customer_id = $1 AND currency = $2",
                ))
                .bind(customer_id)
                .bind(currency.code())
                .fetch_optional(&mut *$tx)
                .await?;
                let place = format!("balance of {customer_id} in {}", currency.code());
                let (open, credit) = match current {
                    Some((open, credit)) => (
                        $crate::store::decimal(&place, &open)?,
                        $crate::store::decimal(&place, &credit)?,
                    ),
                    None => (rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ZERO),
                };
                let open = $crate::store::balances::add(
                    open,
                    delta.open_receivables,
                    "open receivables",
                )?;
                let credit = $crate::store::balances::add(
                    credit,
                    delta.unapplied_credit,
                    "unapplied credit",
                )?;
                sqlx::query(&$sql(
                    "INSERT INTO customer_balances (customer_id, currency, open_receivables, unapplied_credit) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (customer_id, currency) DO UPDATE \
                     SET open_receivables = excluded.open_receivables, unapplied_credit = excluded.unapplied_credit",
                ))
                .bind(customer_id)
                .bind(currency.code())
                .bind(open.normalize().to_string())
                .bind(credit.normalize().to_string())
                .execute(&mut *$tx)
                .await?;
            }
            for ((currency, due_date), delta) in &deltas.due_dates {
                let current: Option<(String, i64)> = sqlx::query_as(&$sql(
                    "SELECT open_amount, open_invoices FROM customer_due_balances \
                     WHERE customer_id = $1 AND currency = $2 AND due_date = $3",
                ))
                .bind(customer_id)
                .bind(currency.code())
                .bind(*due_date)
                .fetch_optional(&mut *$tx)
                .await?;
                let place = format!("balance of {customer_id} due {due_date}");
                let (open, invoices) = match current {
                    Some((open, invoices)) => ($crate::store::decimal(&place, &open)?, invoices),
                    None => (rust_decimal::Decimal::ZERO, 0),
                };
                let open =
                    $crate::store::balances::add(open, delta.open_amount, "open receivables")?;
                let invoices = invoices
                    .checked_add(delta.open_invoices)
                    .ok_or_else(|| $crate::store::balances::overflow("open invoice count"))?;
                if invoices <= 0 {
                    sqlx::query(&$sql(
                        "DELETE FROM customer_due_balances \
                         WHERE customer_id = $1 AND currency = $2 AND due_date = $3",
                    ))
                    .bind(customer_id)
                    .bind(currency.code())
                    .bind(*due_date)
                    .execute(&mut *$tx)
                    .await?;
                    continue;
                }
                sqlx::query(&$sql(
                    "INSERT INTO customer_due_balances (customer_id, currency, due_date, open_amount, open_invoices) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id, currency, due_date) DO UPDATE \
                     SET open_amount = excluded.open_amount, open_invoices = excluded.open_invoices",
                ))
                .bind(customer_id)
                .bind(currency.code())
                .bind(*due_date)
                .bind(open.normalize().to_string())
                .bind(invoices)
                .execute(&mut *$tx)
                .await?;
            }
            Ok::<(), $crate::store::StoreError>(())
        }
        .await
    };
}
pub(super) use write_balances;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::receivable::test_support::{cny, date as day};
    use rust_decimal_macros::dec;

    #[test]
    fn an_invoice_paid_in_full_leaves_nothing_open_on_its_due_date() -> StoreResult<()> {
        let mut deltas = BalanceDeltas::default();
        deltas.invoice_posted(cny(), day("2026-03-01"), dec!(100.00))?;
        deltas.invoice_reduced(cny(), day("2026-03-01"), dec!(60.00))?;
        deltas.invoice_reduced(cny(), day("2026-03-01"), dec!(40.00))?;
        deltas.invoice_closed(cny(), day("2026-03-01"))?;
        deltas.credit_changed(cny(), dec!(5.00))?;
        assert_eq!(
            deltas.currencies[&cny()],
            CurrencyDelta {
                open_receivables: dec!(0.00),
                unapplied_credit: dec!(5.00),
            }
        );
        assert_eq!(
            deltas.due_dates[&(cny(), day("2026-03-01"))],
            DueDelta {
                open_amount: dec!(0.00),
                open_invoices: 0,
            }
        );
        Ok(())
    }

    #[test]
    fn a_sum_beyond_decimal_is_refused_not_wrapped() -> StoreResult<()> {
        let mut deltas = BalanceDeltas::default();
        deltas.invoice_posted(cny(), day("2026-03-01"), Decimal::MAX)?;
        let refused = deltas.invoice_posted(cny(), day("2026-03-01"), Decimal::MAX);
        assert!(
            matches!(
                refused,
                Err(StoreError::Refused(ref answer)) if matches!(**answer, ServiceError::FailedPrecondition {
                    reason: "BALANCE_OUT_OF_RANGE",
                    ..
                })
            ),
            "{refused:?}"
        );
        Ok(())
    }
}
