//! Collection KPIs for a period, per currency (`GetKpis`, `KpiSet`), with the figures they
//! are computed from. A KPI whose denominator is zero is missing (`None`), not zero.
//!
//! - DSO = closing receivables / credit sales × days in period, in days;
//! - CEI = (opening + credit sales − closing) / (opening + credit sales − closing current)
//!   × 100, in percent;
//! - overdue ratio = closing overdue / closing receivables, a fraction;
//! - bad-debt ratio = write-offs / credit sales, a fraction;
//! - promise-kept rate = promises due in the period that were kept / promises due.
//!
//! Each is rounded once, to 4 places ([`super::rounding::round_ratio`]).
//!
//! Sums and products are checked: each amount is bounded on input, a portfolio's sum is not,
//! and a figure too large to compute is an [`AmountOverflow`] for the handler, never a panic.

#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use credit_core::Currency;
use rust_decimal::Decimal;

use super::AmountOverflow;
use super::aging::checked_sum;
use super::promise::PromiseStatus;
use super::receivable::{InvoiceHistory, MovementKind};
use super::rounding::ratio;

/// A period of whole days, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    start: NaiveDate,
    end: NaiveDate,
}

/// Why a period was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("end date {end} is before start date {start}")]
    EndBeforeStart { start: NaiveDate, end: NaiveDate },
}

impl Period {
    pub fn parse(start: NaiveDate, end: NaiveDate) -> Result<Self, PeriodError> {
        if end < start {
            return Err(PeriodError::EndBeforeStart { start, end });
        }
        Ok(Self { start, end })
    }

    pub fn start(&self) -> NaiveDate {
        self.start
    }

    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// Days in the period, both ends counted: January is 31.
    pub fn days(&self) -> u32 {
        let days = self
            .end
            .signed_duration_since(self.start)
            .num_days()
            .saturating_add(1);
        u32::try_from(days).unwrap_or(u32::MAX)
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day <= self.end
    }

    /// The day before the period: opening balances are taken at its end.
    pub fn day_before(&self) -> NaiveDate {
        self.start
            .checked_sub_days(Days::new(1))
            .unwrap_or(self.start)
    }
}

/// The figures KPIs are computed from, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiInputs {
    pub currency: Currency,
    /// Invoices issued in the period.
    pub credit_sales: Decimal,
    /// Open receivables at the end of the day before the period.
    pub opening_receivables: Decimal,
    /// Open receivables at the end of the period.
    pub closing_receivables: Decimal,
    /// Of which not yet due at the end of the period.
    pub closing_current_receivables: Decimal,
    /// Of which overdue at the end of the period.
    pub closing_overdue_receivables: Decimal,
    /// Write-offs approved in the period.
    pub write_offs: Decimal,
    pub days_in_period: u32,
    /// Promises whose promised date falls in the period.
    pub promises_due: u32,
    /// Of which kept.
    pub promises_kept: u32,
}

impl KpiInputs {
    fn empty(currency: Currency, period: &Period) -> Self {
        Self {
            currency,
            credit_sales: Decimal::ZERO,
            opening_receivables: Decimal::ZERO,
            closing_receivables: Decimal::ZERO,
            closing_current_receivables: Decimal::ZERO,
            closing_overdue_receivables: Decimal::ZERO,
            write_offs: Decimal::ZERO,
            days_in_period: period.days(),
            promises_due: 0,
            promises_kept: 0,
        }
    }
}

/// A promise as KPIs need it: its currency, promised date and status as of the period's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseOutcome {
    pub currency: Currency,
    pub promised_date: NaiveDate,
    pub status: PromiseStatus,
}

/// KPIs of one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kpis {
    pub inputs: KpiInputs,
    pub dso: Option<Decimal>,
    pub overdue_ratio: Option<Decimal>,
    pub bad_debt_ratio: Option<Decimal>,
    pub collection_effectiveness_percent: Option<Decimal>,
    pub promise_kept_rate: Option<Decimal>,
}

/// Computes the KPIs of `inputs`.
pub fn compute_kpis(inputs: KpiInputs) -> Result<Kpis, AmountOverflow> {
    let days = Decimal::from(inputs.days_in_period);
    let collectable = add(inputs.opening_receivables, inputs.credit_sales)?;
    let dso = ratio(
        inputs
            .closing_receivables
            .checked_mul(days)
            .ok_or(AmountOverflow)?,
        inputs.credit_sales,
    );
    let collection_effectiveness_percent = ratio(
        collectable
            .checked_sub(inputs.closing_receivables)
            .and_then(|collected| collected.checked_mul(Decimal::ONE_HUNDRED))
            .ok_or(AmountOverflow)?,
        collectable
            .checked_sub(inputs.closing_current_receivables)
            .ok_or(AmountOverflow)?,
    );
    let overdue_ratio = ratio(
        inputs.closing_overdue_receivables,
        inputs.closing_receivables,
    );
    let bad_debt_ratio = ratio(inputs.write_offs, inputs.credit_sales);
    let promise_kept_rate = ratio(
        Decimal::from(inputs.promises_kept),
        Decimal::from(inputs.promises_due),
    );
    Ok(Kpis {
        inputs,
        dso,
        overdue_ratio,
        bad_debt_ratio,
        collection_effectiveness_percent,
        promise_kept_rate,
    })
}

fn add(left: Decimal, right: Decimal) -> Result<Decimal, AmountOverflow> {
    left.checked_add(right).ok_or(AmountOverflow)
}

/// Gathers the KPI inputs of `period` per currency from invoice histories (balances as of
/// the day before and the last day, so past periods are computed as they were) and the
/// promises' outcomes. A currency appears when it has an invoice issued by the period's end
/// or a promise due in the period.
pub fn kpi_inputs(
    histories: &[InvoiceHistory],
    promises: &[PromiseOutcome],
    period: &Period,
) -> Result<BTreeMap<Currency, KpiInputs>, AmountOverflow> {
    let mut by_currency: BTreeMap<Currency, KpiInputs> = BTreeMap::new();
    for history in histories {
        let invoice = &history.invoice;
        if !history.is_issued_by(period.end) {
            continue;
        }
        let inputs = by_currency
            .entry(invoice.currency)
            .or_insert_with(|| KpiInputs::empty(invoice.currency, period));
        if period.contains(invoice.issue_date) {
            inputs.credit_sales = add(inputs.credit_sales, invoice.amount)?;
        }
        inputs.opening_receivables = add(
            inputs.opening_receivables,
            history
                .open_amount_as_of(period.day_before())
                .unwrap_or(Decimal::ZERO),
        )?;
        let closing = history
            .open_amount_as_of(period.end)
            .unwrap_or(Decimal::ZERO);
        inputs.closing_receivables = add(inputs.closing_receivables, closing)?;
        if invoice.days_past_due(period.end) == 0 {
            inputs.closing_current_receivables = add(inputs.closing_current_receivables, closing)?;
        } else {
            inputs.closing_overdue_receivables = add(inputs.closing_overdue_receivables, closing)?;
        }
        let written_off = checked_sum(
            history
                .movements
                .iter()
                .filter(|movement| {
                    movement.kind == MovementKind::WriteOff && period.contains(movement.date)
                })
                .map(|movement| movement.amount),
        )?;
        inputs.write_offs = add(inputs.write_offs, written_off)?;
    }
    for promise in promises {
        if !period.contains(promise.promised_date) {
            continue;
        }
        let inputs = by_currency
            .entry(promise.currency)
            .or_insert_with(|| KpiInputs::empty(promise.currency, period));
        inputs.promises_due = inputs.promises_due.saturating_add(1);
        if promise.status == PromiseStatus::Kept {
            inputs.promises_kept = inputs.promises_kept.saturating_add(1);
        }
    }
    Ok(by_currency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::receivable::MovementKind::{Payment, WriteOff};
    use crate::domain::receivable::test_support::*;
    use rust_decimal_macros::dec;

    fn quarter() -> Period {
        Period::parse(date("2026-01-01"), date("2026-03-31")).unwrap()
    }

    #[test]
    fn kpis_match_the_hand_computed_figures() {
        let kpis = compute_kpis(KpiInputs {
            currency: cny(),
            credit_sales: dec!(90000.00),
            opening_receivables: dec!(50000.00),
            closing_receivables: dec!(60000.00),
            closing_current_receivables: dec!(40000.00),
            closing_overdue_receivables: dec!(20000.00),
            write_offs: dec!(1800.00),
            days_in_period: quarter().days(),
            promises_due: 4,
            promises_kept: 3,
        })
        .unwrap();
        // 31 + 28 + 31 = 90 days.
        assert_eq!(kpis.inputs.days_in_period, 90);
        // DSO = 60000 / 90000 × 90 = 60.
        assert_eq!(kpis.dso, Some(dec!(60.0000)));
        // CEI = (50000 + 90000 − 60000) / (50000 + 90000 − 40000) × 100 = 80000 / 100000 × 100.
        assert_eq!(kpis.collection_effectiveness_percent, Some(dec!(80.0000)));
        // 20000 / 60000 = 0.33333… → 0.3333.
        assert_eq!(kpis.overdue_ratio, Some(dec!(0.3333)));
        // 1800 / 90000 = 0.02.
        assert_eq!(kpis.bad_debt_ratio, Some(dec!(0.0200)));
        assert_eq!(kpis.promise_kept_rate, Some(dec!(0.7500)));
    }

    #[test]
    fn zero_denominators_leave_kpis_missing() {
        let kpis = compute_kpis(KpiInputs::empty(cny(), &quarter())).unwrap();
        assert_eq!(kpis.dso, None);
        assert_eq!(kpis.collection_effectiveness_percent, None);
        assert_eq!(kpis.overdue_ratio, None);
        assert_eq!(kpis.bad_debt_ratio, None);
        assert_eq!(kpis.promise_kept_rate, None);
    }

    #[test]
    fn inputs_are_gathered_from_histories_as_of_the_period_ends() {
        let histories = [
            // Opening 1000 (issued 2025-12-01); paid 600 in the period → closing 400, due
            // 2025-12-31 so overdue.
            InvoiceHistory::new(
                invoice("c1", "A", dec!(1000.00), "2025-12-01", "2025-12-31"),
                vec![movement(Payment, dec!(600.00), "2026-02-01")],
            ),
            // Sale of the period, 2000, not due at the end (due 04-15): current.
            InvoiceHistory::new(
                invoice("c1", "B", dec!(2000.00), "2026-03-16", "2026-04-15"),
                vec![],
            ),
            // Sale of the period, 500, written off 300 in the period, 200 open and overdue.
            InvoiceHistory::new(
                invoice("c2", "C", dec!(500.00), "2026-01-10", "2026-02-09"),
                vec![movement(WriteOff, dec!(300.00), "2026-03-20")],
            ),
            // Due on the period's last day: still current at the end.
            InvoiceHistory::new(
                invoice("c2", "E", dec!(100.00), "2026-03-01", "2026-03-31"),
                vec![],
            ),
            // Due the day before the last: 1 day overdue at the end.
            InvoiceHistory::new(
                invoice("c2", "F", dec!(10.00), "2026-02-28", "2026-03-30"),
                vec![],
            ),
            // Issued after the period: ignored.
            InvoiceHistory::new(
                invoice("c2", "D", dec!(700.00), "2026-04-01", "2026-05-01"),
                vec![],
            ),
        ];
        let promises = [
            PromiseOutcome {
                currency: cny(),
                promised_date: date("2026-02-15"),
                status: PromiseStatus::Kept,
            },
            PromiseOutcome {
                currency: cny(),
                promised_date: date("2026-03-01"),
                status: PromiseStatus::Broken,
            },
            PromiseOutcome {
                currency: cny(),
                promised_date: date("2026-04-02"), // after the period
                status: PromiseStatus::Broken,
            },
        ];
        let inputs = &kpi_inputs(&histories, &promises, &quarter()).unwrap()[&cny()];
        assert_eq!(inputs.credit_sales, dec!(2610.00)); // B 2000 + C 500 + E 100 + F 10
        assert_eq!(inputs.opening_receivables, dec!(1000.00)); // A only
        assert_eq!(inputs.closing_receivables, dec!(2710.00)); // 400 + 2000 + 200 + 100 + 10
        assert_eq!(inputs.closing_current_receivables, dec!(2100.00)); // B 2000 + E 100
        assert_eq!(inputs.closing_overdue_receivables, dec!(610.00)); // A 400 + C 200 + F 10
        assert_eq!(inputs.write_offs, dec!(300.00));
        assert_eq!((inputs.promises_due, inputs.promises_kept), (2, 1));
        let kpis = compute_kpis(inputs.clone()).unwrap();
        // DSO = 2710 / 2610 × 90 = 243900 / 2610 = 93.44827… → 93.4483.
        assert_eq!(kpis.dso, Some(dec!(93.4483)));
        // CEI = (1000 + 2610 − 2710) / (1000 + 2610 − 2100) × 100 = 90000 / 1510
        //     = 59.60264… → 59.6026.
        assert_eq!(kpis.collection_effectiveness_percent, Some(dec!(59.6026)));
        // Bad debt = 300 / 2610 = 0.114942… → 0.1149.
        assert_eq!(kpis.bad_debt_ratio, Some(dec!(0.1149)));
        // Overdue ratio = 610 / 2710 = 0.225092… → 0.2251.
        assert_eq!(kpis.overdue_ratio, Some(dec!(0.2251)));
    }

    #[test]
    fn a_period_cannot_end_before_it_starts() {
        assert!(Period::parse(date("2026-02-01"), date("2026-01-31")).is_err());
        assert_eq!(
            Period::parse(date("2026-02-01"), date("2026-02-01"))
                .unwrap()
                .days(),
            1
        );
    }
}
