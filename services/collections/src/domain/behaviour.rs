//! Payment behaviour over the 12 months ending on a date, as rating consumes it
//! (`PaymentBehaviour`).
//!
//! Following the contract: an invoice counts in the window when it was *settled* (paid or
//! credited in full) within it; written-off invoices are excluded. The on-time ratio is by
//! invoice count, not amount (invoices settled on or before their due date / invoices
//! settled), so that one large invoice does not hide a habit of paying late. Average days to
//! pay runs from issue date to settlement date.

use chrono::{Days, Months, NaiveDate};
use rust_decimal::Decimal;

use super::promise::{PromiseEvaluation, PromiseStatus};
use super::receivable::{Closure, CustomerId, InvoiceHistory, days_past_due};
use super::rounding::ratio;

/// The 12-month window ending on (and including) `as_of`: from the day after the same date a
/// year earlier. As of 2026-06-30 it is 2025-07-01 to 2026-06-30.
pub fn twelve_month_window(as_of: NaiveDate) -> (NaiveDate, NaiveDate) {
    let start = as_of
        .checked_sub_months(Months::new(12))
        .and_then(|year_before| year_before.checked_add_days(Days::new(1)))
        .unwrap_or(NaiveDate::MIN);
    (start, as_of)
}

/// A customer's payment behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentBehaviour {
    pub customer_id: CustomerId,
    /// First day of the window (inclusive).
    pub window_start: NaiveDate,
    /// Last day of the window, the as-of date (inclusive).
    pub window_end: NaiveDate,
    /// Highest days past due reached by an invoice settled in the window (at its settlement)
    /// or still open on the as-of date; 0 when none.
    pub max_days_overdue_12m: u32,
    /// Invoices settled on or before their due date / invoices settled in the window, a
    /// fraction rounded to 4 places; `None` when none was settled.
    pub on_time_payment_ratio: Option<Decimal>,
    /// Mean of (settlement date − issue date) in days over the invoices settled in the
    /// window, rounded to 4 places; `None` when none was settled.
    pub average_days_to_pay: Option<Decimal>,
    pub broken_promises_12m: u32,
    pub kept_promises_12m: u32,
    pub invoices_settled_12m: u32,
}

/// The payment behaviour of `customer_id` as of `as_of`, from its invoice histories and the
/// evaluations of its promises (any histories or promises of other customers are the
/// caller's mistake; histories are filtered by customer, promises are taken as given).
/// `None` when the customer has no history: no invoice issued by `as_of` and no promise
/// decided in the window.
pub fn payment_behaviour(
    customer_id: &CustomerId,
    histories: &[InvoiceHistory],
    promises: &[PromiseEvaluation],
    as_of: NaiveDate,
) -> Option<PaymentBehaviour> {
    let (window_start, window_end) = twelve_month_window(as_of);
    let in_window = |day: NaiveDate| window_start <= day && day <= window_end;

    let mut any_invoice = false;
    let mut max_days_overdue = 0_u32;
    let mut settled = 0_u32;
    let mut settled_on_time = 0_u32;
    let mut days_to_pay_total = 0_i64;
    for history in histories {
        let invoice = &history.invoice;
        if &invoice.customer_id != customer_id || !history.is_issued_by(as_of) {
            continue;
        }
        any_invoice = true;
        match history.closure() {
            Some(Closure::Settled(on)) if in_window(on) => {
                settled += 1;
                if on <= invoice.due_date {
                    settled_on_time += 1;
                }
                days_to_pay_total += on.signed_duration_since(invoice.issue_date).num_days();
                max_days_overdue = max_days_overdue.max(days_past_due(invoice.due_date, on));
            }
            _ => {
                max_days_overdue = max_days_overdue.max(history.days_past_due_as_of(as_of));
            }
        }
    }

    let decided_in_window = |status: PromiseStatus| {
        let count = promises
            .iter()
            .filter(|promise| promise.status == status && promise.decided_on.is_some_and(in_window))
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    };
    let broken_promises_12m = decided_in_window(PromiseStatus::Broken);
    let kept_promises_12m = decided_in_window(PromiseStatus::Kept);

    if !any_invoice && broken_promises_12m == 0 && kept_promises_12m == 0 {
        return None;
    }
    let settled_count = Decimal::from(settled);
    Some(PaymentBehaviour {
        customer_id: customer_id.clone(),
        window_start,
        window_end,
        max_days_overdue_12m: max_days_overdue,
        on_time_payment_ratio: ratio(Decimal::from(settled_on_time), settled_count),
        average_days_to_pay: ratio(Decimal::from(days_to_pay_total), settled_count),
        broken_promises_12m,
        kept_promises_12m,
        invoices_settled_12m: settled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::receivable::MovementKind::{CreditNote, Payment, WriteOff};
    use crate::domain::receivable::test_support::*;
    use rust_decimal_macros::dec;

    fn customer() -> CustomerId {
        CustomerId::parse("c1").unwrap()
    }

    #[test]
    fn the_window_is_twelve_months_ending_on_the_as_of_date() {
        assert_eq!(
            twelve_month_window(date("2026-06-30")),
            (date("2025-07-01"), date("2026-06-30"))
        );
        // Leap day: a year before 2024-02-29 is 2023-02-28, so the window starts 2023-03-01.
        assert_eq!(
            twelve_month_window(date("2024-02-29")).0,
            date("2023-03-01")
        );
    }

    #[test]
    fn behaviour_matches_the_hand_computed_figures() {
        let as_of = date("2026-06-30");
        let histories = vec![
            // Settled on its due date, which is on time: issued 01-01, due and paid 01-31
            // → 30 days to pay, 0 late.
            InvoiceHistory::new(
                invoice("c1", "A", dec!(100.00), "2026-01-01", "2026-01-31"),
                vec![movement(Payment, dec!(100.00), "2026-01-31")],
            ),
            // Settled late by payment + credit note: issued 02-01, due 03-03, closed 03-23
            // → 50 days to pay (28 to Mar 1 + 22), 20 days overdue at settlement.
            InvoiceHistory::new(
                invoice("c1", "B", dec!(200.00), "2026-02-01", "2026-03-03"),
                vec![
                    movement(Payment, dec!(150.00), "2026-03-10"),
                    movement(CreditNote, dec!(50.00), "2026-03-23"),
                ],
            ),
            // Settled before the window (2025-06-30): ignored entirely.
            InvoiceHistory::new(
                invoice("c1", "C", dec!(300.00), "2025-01-01", "2025-01-31"),
                vec![movement(Payment, dec!(300.00), "2025-06-30")],
            ),
            // Still open on the as-of date: due 06-15 → 15 days; not settled, so no ratio.
            InvoiceHistory::new(
                invoice("c1", "D", dec!(50.00), "2026-05-16", "2026-06-15"),
                vec![],
            ),
            // Written off: excluded although 150 days late (due 01-10 → 06-09).
            InvoiceHistory::new(
                invoice("c1", "E", dec!(80.00), "2025-12-11", "2026-01-10"),
                vec![movement(WriteOff, dec!(80.00), "2026-06-09")],
            ),
            // Another customer's invoice: ignored.
            InvoiceHistory::new(
                invoice("c2", "F", dec!(10.00), "2025-01-01", "2025-01-02"),
                vec![],
            ),
        ];
        let promises = [
            PromiseEvaluation {
                status: PromiseStatus::Broken,
                paid_amount: dec!(0),
                decided_on: Some(date("2026-04-01")),
            },
            PromiseEvaluation {
                status: PromiseStatus::Broken,
                paid_amount: dec!(0),
                decided_on: Some(date("2025-06-30")), // before the window
            },
            PromiseEvaluation {
                status: PromiseStatus::Kept,
                paid_amount: dec!(10),
                decided_on: Some(date("2025-07-01")), // first day of the window
            },
            PromiseEvaluation {
                status: PromiseStatus::Open,
                paid_amount: dec!(0),
                decided_on: None,
            },
        ];
        let behaviour = payment_behaviour(&customer(), &histories, &promises, as_of).unwrap();
        // max(0 for A, 20 for B at settlement, 15 for D open; E excluded) = 20.
        assert_eq!(behaviour.max_days_overdue_12m, 20);
        assert_eq!(behaviour.invoices_settled_12m, 2);
        // A on time, B late: 1 / 2.
        assert_eq!(behaviour.on_time_payment_ratio, Some(dec!(0.5000)));
        // (30 + 50) / 2 = 40.
        assert_eq!(behaviour.average_days_to_pay, Some(dec!(40.0000)));
        assert_eq!(behaviour.broken_promises_12m, 1);
        assert_eq!(behaviour.kept_promises_12m, 1);
        assert_eq!(behaviour.window_start, date("2025-07-01"));
    }

    #[test]
    fn no_history_is_missing_and_no_settlement_leaves_the_ratios_missing() {
        assert_eq!(
            payment_behaviour(&customer(), &[], &[], date("2026-06-30")),
            None
        );
        // An invoice issued after the as-of date is no history either.
        let future = [InvoiceHistory::new(
            invoice("c1", "A", dec!(1.00), "2026-07-01", "2026-07-31"),
            vec![],
        )];
        assert_eq!(
            payment_behaviour(&customer(), &future, &[], date("2026-06-30")),
            None
        );
        // Open, due 06-20: 10 days past due on 06-30.
        let open = [InvoiceHistory::new(
            invoice("c1", "A", dec!(1.00), "2026-05-21", "2026-06-20"),
            vec![],
        )];
        let behaviour = payment_behaviour(&customer(), &open, &[], date("2026-06-30")).unwrap();
        assert_eq!(behaviour.on_time_payment_ratio, None);
        assert_eq!(behaviour.average_days_to_pay, None);
        assert_eq!(behaviour.max_days_overdue_12m, 10);
    }
}
