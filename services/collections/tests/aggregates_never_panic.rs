//! Property test: the aggregates of collections (aging, provisions, KPIs, totals per due date)
//! over arbitrary amounts near and beyond the bound on money never panic. A total either fits
//! and is exact, or is refused as too large — and it is refused only when the exact sum of the
//! amounts really does not fit a `Decimal` (every amount is non-negative, so no partial sum
//! can overflow when the whole one fits). Sums are compared exactly up to 10^26: beyond that a
//! `Decimal` keeps 28 significant digits and the cents of two summation orders may differ.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use chrono::NaiveDate;
use credit_collections::domain::classification::{
    ClassificationPolicy, ProvisionError, ProvisionMethod, compute_provisions, exposure_lines,
};
use credit_collections::domain::kpi::{Period, compute_kpis, kpi_inputs};
use credit_collections::domain::{
    CustomerId, DueDateTotal, Invoice, InvoiceHistory, InvoiceId, Movement, MovementKind, age,
    age_by_customer, summarize_due_dates,
};
use credit_core::{Currency, money::MAX_AMOUNT};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn day(offset: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(offset)
}

/// Amounts with two decimals: mostly just below 10^15 (the bound a caller may send), some
/// far beyond it (rows stored before the bound existed), some small.
fn amount() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (0_i64..1_000).prop_map(|cents| MAX_AMOUNT - Decimal::new(cents + 1, 2)),
        (1_i64..1_000_000).prop_map(|cents| Decimal::new(cents, 2)),
        (0_u32..1_000).prop_map(|shave| Decimal::MAX - Decimal::from(shave)),
        (1_u64..u64::MAX).prop_map(|units| Decimal::from(units) * Decimal::from(1_000_000_000_u64)),
    ]
}

/// An invoice with an arbitrary amount, dates and a payment of part of it.
fn history() -> impl Strategy<Value = InvoiceHistory> {
    (amount(), 0_i64..400, 0_i64..120, 0_u32..3, 0_u8..101).prop_map(
        |(amount, issued, terms, customer, paid_percent)| {
            let paid = (amount / Decimal::ONE_HUNDRED)
                .checked_mul(Decimal::from(paid_percent))
                .unwrap_or(Decimal::ZERO)
                .round_dp(2);
            let invoice = Invoice {
                invoice_id: InvoiceId::parse(&format!("inv-{issued}-{terms}-{paid_percent}"))
                    .unwrap(),
                customer_id: CustomerId::parse(&format!("c{customer}")).unwrap(),
                invoice_number: format!("N-{issued}-{terms}"),
                currency: Currency::parse("CNY").unwrap(),
                amount,
                issue_date: day(issued),
                due_date: day(issued + terms),
            };
            let movements = if paid > Decimal::ZERO && paid <= amount {
                vec![Movement {
                    kind: MovementKind::Payment,
                    amount: paid,
                    date: day(issued + 1),
                }]
            } else {
                Vec::new()
            };
            InvoiceHistory::new(invoice, movements)
        },
    )
}

fn exact_sum(amounts: impl IntoIterator<Item = Decimal>) -> Option<Decimal> {
    amounts
        .into_iter()
        .try_fold(Decimal::ZERO, |sum, amount| sum.checked_add(amount))
}

/// Below this every sum of amounts with two decimals is exact in a `Decimal`.
fn exact_below() -> Decimal {
    Decimal::from_i128_with_scale(10_i128.pow(26), 0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn aging_totals_are_exact_or_refused_never_a_panic(
        histories in prop::collection::vec(history(), 0..12),
        as_of in 0_i64..600,
    ) {
        let as_of = day(as_of);
        let open = exact_sum(
            histories.iter().filter_map(|history| history.open_amount_as_of(as_of)),
        );
        match age(&histories, as_of) {
            Ok(aging) => {
                let mut total = Some(Decimal::ZERO);
                for summary in aging.summaries.values() {
                    total = match (total, summary.total()) {
                        (Some(sum), Ok(part)) => sum.checked_add(part),
                        _ => None,
                    };
                    let _ = summary.overdue_total();
                }
                if let Some(open) = open.filter(|open| *open < exact_below()) {
                    prop_assert_eq!(total, Some(open));
                }
            }
            Err(_) => prop_assert!(open.is_none(), "refused although the sum {open:?} fits"),
        }
        let by_customer = age_by_customer(&histories, as_of);
        if open.is_some() {
            prop_assert!(by_customer.is_ok());
        }
        // The same totals from what is open per due date (the running balances' way).
        let totals: Vec<DueDateTotal> = histories
            .iter()
            .filter_map(|history| {
                let open = history.open_amount_as_of(as_of)?;
                (open > Decimal::ZERO).then_some(DueDateTotal {
                    currency: history.invoice.currency,
                    due_date: history.invoice.due_date,
                    open_amount: open,
                    open_invoices: 1,
                })
            })
            .collect();
        let from_due_dates = summarize_due_dates(totals, as_of);
        if let (Ok(aging), Ok(from_due_dates), Some(true)) = (
            age(&histories, as_of),
            &from_due_dates,
            open.map(|open| open < exact_below()),
        ) {
            prop_assert_eq!(&aging.summaries, from_due_dates);
        }
        if open.is_some() {
            prop_assert!(from_due_dates.is_ok());
        }
    }

    #[test]
    fn provisions_and_kpis_are_exact_or_refused_never_a_panic(
        histories in prop::collection::vec(history(), 0..12),
        as_of in 0_i64..600,
    ) {
        let as_of = day(as_of);
        let lines = exposure_lines(&histories, as_of);
        let exposure = exact_sum(lines.iter().map(|line| line.open_amount));
        match compute_provisions(&lines, &ClassificationPolicy::default(), &ProvisionMethod::Classification) {
            Ok(report) => {
                for summary in report.summaries.values() {
                    let total = summary.total_exposure();
                    if let Some(exposure) = exposure.filter(|sum| *sum < exact_below()) {
                        prop_assert_eq!(total.ok(), Some(exposure));
                    }
                    let _ = summary.total_provision();
                }
            }
            Err(ProvisionError::TooLarge(_)) => {
                prop_assert!(exposure.is_none(), "refused although the exposure {exposure:?} fits");
            }
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
        let period = Period::parse(day(0), as_of).unwrap();
        if let Ok(inputs) = kpi_inputs(&histories, &[], &period) {
            for inputs in inputs.into_values() {
                let _ = compute_kpis(inputs);
            }
        }
    }
}
