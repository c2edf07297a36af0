//! Overdue interest (逾期利息): what an invoice's overdue open amount costs the customer at the
//! credit policy's rate, accrued by the day.
//!
//! Interest runs from the day after the due date through the day asked about, each day on the
//! amount open at the start of that day (a payment, credit note, discount or write-off dated
//! on a day lowers the amount from the next day on), at `annual percent / 365` a day. The sum
//! is rounded once (`rounding::round_money`).

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::receivable::InvoiceHistory;
use super::rounding::round_money;

/// The days of a year of interest.
pub const DAYS_PER_YEAR: u32 = 365;

/// The interest `history`'s invoice accrued through `as_of` at `annual_percent` a year.
pub fn accrued_interest(
    history: &InvoiceHistory,
    annual_percent: Decimal,
    as_of: NaiveDate,
) -> Decimal {
    let invoice = &history.invoice;
    let Some(first_day) = invoice.due_date.succ_opt() else {
        return Decimal::ZERO;
    };
    if as_of < first_day || annual_percent <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let mut movements: Vec<_> = history.movements.iter().collect();
    movements.sort_by_key(|movement| movement.date);
    // The amount open at the start of the first day of interest.
    let mut open = invoice.amount;
    let mut later = Vec::new();
    for movement in movements {
        if movement.date < first_day {
            open -= movement.amount;
        } else {
            later.push(movement);
        }
    }
    // Σ open amount × days, segment by segment between the movements.
    let mut open_days = Decimal::ZERO;
    let mut day = first_day;
    for movement in later {
        if day > as_of {
            break;
        }
        // Days up to and including the movement's date accrue on the amount before it.
        let last = movement.date.min(as_of);
        if last >= day {
            let days = (last - day).num_days() + 1;
            open_days += open.max(Decimal::ZERO) * Decimal::from(days);
            day = last.succ_opt().unwrap_or(last);
        }
        open -= movement.amount;
    }
    if day <= as_of {
        let days = (as_of - day).num_days() + 1;
        open_days += open.max(Decimal::ZERO) * Decimal::from(days);
    }
    round_money(open_days * annual_percent / Decimal::ONE_HUNDRED / Decimal::from(DAYS_PER_YEAR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::receivable::test_support::*;
    use crate::domain::receivable::{Movement, MovementKind};
    use rust_decimal_macros::dec;

    fn history(movements: Vec<Movement>) -> InvoiceHistory {
        // 10,000.00 due on 31 January.
        InvoiceHistory::new(
            invoice("c1", "A", dec!(10000.00), "2026-01-01", "2026-01-31"),
            movements,
        )
    }

    fn paid(amount: Decimal, on: &str) -> Movement {
        movement(MovementKind::Payment, amount, on)
    }

    #[test]
    fn interest_accrues_by_the_day_from_the_day_after_the_due_date() {
        let unpaid = history(Vec::new());
        let at = |day: &str| accrued_interest(&unpaid, dec!(18.25), date(day));
        // 18.25 % a year is 0.05 % a day: 5.00 a day on 10,000.
        assert_eq!(at("2026-01-31"), Decimal::ZERO, "not on the due date");
        assert_eq!(at("2026-02-01"), dec!(5.00));
        assert_eq!(at("2026-02-10"), dec!(50.00));
        assert_eq!(
            at("2026-02-11"),
            dec!(55.00),
            "one more day, one more day's interest"
        );
    }

    #[test]
    fn a_payment_lowers_the_amount_interest_runs_on_from_the_next_day() {
        // 4,000 paid on 5 February: 5 days on 10,000, then 5 days on 6,000.
        let part_paid = history(vec![paid(dec!(4000.00), "2026-02-05")]);
        assert_eq!(
            accrued_interest(&part_paid, dec!(18.25), date("2026-02-10")),
            dec!(40.00)
        );
        // Settled on 3 February: interest stops with it.
        let settled = history(vec![paid(dec!(10000.00), "2026-02-03")]);
        assert_eq!(
            accrued_interest(&settled, dec!(18.25), date("2026-03-31")),
            dec!(15.00)
        );
        // Paid before it was due: nothing.
        let early = history(vec![paid(dec!(10000.00), "2026-01-20")]);
        assert_eq!(
            accrued_interest(&early, dec!(18.25), date("2026-03-31")),
            Decimal::ZERO
        );
    }
}
