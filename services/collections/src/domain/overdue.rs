//! Overdue detection: a customer's oldest overdue days and overdue amounts (`DetectOverdue`,
//! `OverduePosition`).
//!
//! Choice on disputes: a disputed amount still counts as overdue here. This position feeds
//! exposure and credit blocks in limits, and money a customer has not paid is owed until a
//! credit note says otherwise; only dunning leaves disputed amounts alone (see
//! [`super::dunning`]).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use credit_core::Currency;
use rust_decimal::Decimal;

use super::AmountOverflow;
use super::receivable::{CustomerId, InvoiceHistory};

/// A customer's overdue position on a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverduePosition {
    pub customer_id: CustomerId,
    /// Maximum days past due over the invoices open on the date; 0 when nothing is overdue.
    pub oldest_overdue_days: u32,
    /// Overdue open amounts per currency (disputed parts included); only currencies with an
    /// overdue amount appear.
    pub overdue_amounts: BTreeMap<Currency, Decimal>,
}

impl OverduePosition {
    pub fn is_overdue(&self) -> bool {
        self.oldest_overdue_days > 0
    }
}

/// The overdue position of every customer with an invoice in `histories` on `as_of`, by
/// customer id. Customers with invoices but nothing overdue appear with 0 days, so that a run
/// can tell "no longer overdue" from "not looked at". Overdue amounts are summed with checked
/// arithmetic: a sum too large is an [`AmountOverflow`], never a panic.
pub fn overdue_positions(
    histories: &[InvoiceHistory],
    as_of: NaiveDate,
) -> Result<BTreeMap<CustomerId, OverduePosition>, AmountOverflow> {
    let mut positions: BTreeMap<CustomerId, OverduePosition> = BTreeMap::new();
    for history in histories {
        let invoice = &history.invoice;
        let position = positions
            .entry(invoice.customer_id.clone())
            .or_insert_with(|| OverduePosition {
                customer_id: invoice.customer_id.clone(),
                oldest_overdue_days: 0,
                overdue_amounts: BTreeMap::new(),
            });
        let Some(open) = history.open_amount_as_of(as_of) else {
            continue;
        };
        let days = invoice.days_past_due(as_of);
        if open <= Decimal::ZERO || days == 0 {
            continue;
        }
        position.oldest_overdue_days = position.oldest_overdue_days.max(days);
        let overdue = position
            .overdue_amounts
            .entry(invoice.currency)
            .or_insert(Decimal::ZERO);
        *overdue = overdue.checked_add(open).ok_or(AmountOverflow)?;
    }
    Ok(positions)
}

/// Oldest overdue days of one customer's invoices on `as_of` (0 when nothing is overdue).
pub fn oldest_overdue_days(histories: &[InvoiceHistory], as_of: NaiveDate) -> u32 {
    histories
        .iter()
        .map(|history| history.days_past_due_as_of(as_of))
        .max()
        .unwrap_or(0)
}

/// Customers whose oldest overdue days differ from `previous` (what limits last heard), with
/// the previous value (0 when unknown): the `InvoiceOverdue` events a run emits. Running it
/// again with the new values as `previous` gives nothing, which makes the run idempotent.
pub fn changed_positions<'a>(
    positions: &'a BTreeMap<CustomerId, OverduePosition>,
    previous: &BTreeMap<CustomerId, u32>,
) -> Vec<(u32, &'a OverduePosition)> {
    positions
        .values()
        .filter_map(|position| {
            let before = previous.get(&position.customer_id).copied().unwrap_or(0);
            (before != position.oldest_overdue_days).then_some((before, position))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::receivable::MovementKind::Payment;
    use crate::domain::receivable::test_support::*;
    use rust_decimal_macros::dec;

    fn histories() -> Vec<InvoiceHistory> {
        vec![
            // 40 days past due on 2026-03-12 (due 01-31: 28 in Feb + 12), 600 open.
            InvoiceHistory::new(
                invoice("c1", "A", dec!(1000.00), "2026-01-01", "2026-01-31"),
                vec![movement(Payment, dec!(400.00), "2026-03-01")],
            ),
            // 12 days past due (due 02-28), 50 open.
            InvoiceHistory::new(
                invoice("c1", "B", dec!(50.00), "2026-01-29", "2026-02-28"),
                vec![],
            ),
            // Older but paid: does not count.
            InvoiceHistory::new(
                invoice("c1", "C", dec!(70.00), "2025-10-01", "2025-10-31"),
                vec![movement(Payment, dec!(70.00), "2026-03-10")],
            ),
            // c2: not yet due.
            InvoiceHistory::new(
                invoice("c2", "D", dec!(90.00), "2026-03-01", "2026-03-31"),
                vec![],
            ),
        ]
    }

    #[test]
    fn oldest_overdue_days_is_the_maximum_over_open_invoices() {
        let as_of = date("2026-03-12");
        let positions = overdue_positions(&histories(), as_of).unwrap();
        let c1 = &positions[&CustomerId::parse("c1").unwrap()];
        assert_eq!(c1.oldest_overdue_days, 40);
        // 600 (A) + 50 (B).
        assert_eq!(c1.overdue_amounts[&cny()], dec!(650.00));
        let c2 = &positions[&CustomerId::parse("c2").unwrap()];
        assert!(!c2.is_overdue());
        assert!(c2.overdue_amounts.is_empty());
        // Before C was paid (on 2026-03-09), C leads: due 2025-10-31, so
        // 30 (to Nov 30) + 31 (Dec) + 31 (Jan) + 28 (Feb) + 9 = 129 days.
        assert_eq!(
            oldest_overdue_days(&histories()[..3], date("2026-03-09")),
            129
        );
    }

    #[test]
    fn only_changed_customers_are_reported_and_a_second_run_reports_nothing() {
        let positions = overdue_positions(&histories(), date("2026-03-12")).unwrap();
        let previous = BTreeMap::from([
            (CustomerId::parse("c1").unwrap(), 39),
            (CustomerId::parse("c2").unwrap(), 0),
        ]);
        let changed = changed_positions(&positions, &previous);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].0, 39);
        assert_eq!(changed[0].1.oldest_overdue_days, 40);
        let after: BTreeMap<CustomerId, u32> = positions
            .values()
            .map(|position| (position.customer_id.clone(), position.oldest_overdue_days))
            .collect();
        assert!(changed_positions(&positions, &after).is_empty());
    }
}
