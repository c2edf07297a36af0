//! The collector's worklist: open cases ranked by priority (`ListWorklist`, `WorklistItem`).
//!
//! priority = expected loss × days-past-due factor × broken-promise factor, where
//! - expected loss = overdue amount × the customer's PD × LGD (LGD 0.45 unless configured),
//!   rounded to cents;
//! - days-past-due factor = 1 + oldest days past due / 90, rounded to 4 places: a case 90
//!   days late weighs twice a fresh one, 180 days three times;
//! - broken-promise factor = 1 + 0.25 × broken promises since the case opened: each broken
//!   promise adds a quarter.
//!
//! The priority is computed from the rounded components as shown, so a collector multiplying
//! the figures on screen gets the priority to the cent. Ties are broken by the larger overdue
//! amount, then the older case (more days past due), then case id, so the order is total and
//! the same on every call.

use std::cmp::Ordering;

use credit_core::Currency;
use rust_decimal::Decimal;

use super::fraction::{DEFAULT_LGD, Fraction};
use super::receivable::{CaseId, CustomerId};
use super::rounding::{round_money, round_ratio};

/// Days past due that add 1 to the days-past-due factor.
pub const DAYS_PAST_DUE_SCALE: u32 = 90;
/// What each broken promise adds to the broken-promise factor: 0.25.
pub const BROKEN_PROMISE_STEP: Decimal = Decimal::from_parts(25, 0, 0, false, 2);

/// Ranking settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorklistParams {
    pub lgd: Fraction,
}

impl Default for WorklistParams {
    fn default() -> Self {
        Self { lgd: DEFAULT_LGD }
    }
}

/// An open case as the ranking needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseExposure {
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    /// Overdue amount in the reporting currency (converted by the caller with limits' rates).
    pub overdue_amount: Decimal,
    pub currency: Currency,
    /// The customer's PD, from its rating.
    pub pd: Fraction,
    pub oldest_days_past_due: u32,
    pub broken_promises: u32,
}

/// A ranked case with every component of its priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorklistItem {
    /// 1 = highest priority.
    pub rank: u32,
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub overdue_amount: Decimal,
    pub currency: Currency,
    pub pd: Fraction,
    pub lgd: Fraction,
    /// overdue amount × PD × LGD, rounded to cents.
    pub expected_loss: Decimal,
    pub oldest_days_past_due: u32,
    /// 1 + days past due / 90, rounded to 4 places.
    pub days_past_due_factor: Decimal,
    pub broken_promises: u32,
    /// 1 + 0.25 × broken promises.
    pub broken_promise_factor: Decimal,
    /// expected loss × both factors, rounded to cents: the ranking key.
    pub priority_amount: Decimal,
}

/// Why cases could not be ranked together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorklistError {
    #[error(
        "case '{case_id}' is in {found}, the others in {expected}: convert to the reporting currency first"
    )]
    MixedCurrencies {
        case_id: CaseId,
        expected: Currency,
        found: Currency,
    },
}

/// 1 + days / 90, rounded to 4 places.
pub fn days_past_due_factor(days_past_due: u32) -> Decimal {
    round_ratio(Decimal::ONE + Decimal::from(days_past_due) / Decimal::from(DAYS_PAST_DUE_SCALE))
}

/// 1 + 0.25 × broken promises.
pub fn broken_promise_factor(broken_promises: u32) -> Decimal {
    Decimal::ONE + BROKEN_PROMISE_STEP * Decimal::from(broken_promises)
}

/// Ranks `cases` (all in one reporting currency), highest priority first.
pub fn rank_worklist(
    cases: &[CaseExposure],
    params: &WorklistParams,
) -> Result<Vec<WorklistItem>, WorklistError> {
    if let Some(first) = cases.first()
        && let Some(other) = cases.iter().find(|case| case.currency != first.currency)
    {
        return Err(WorklistError::MixedCurrencies {
            case_id: other.case_id.clone(),
            expected: first.currency,
            found: other.currency,
        });
    }
    let mut items: Vec<WorklistItem> = cases
        .iter()
        .map(|case| {
            let expected_loss =
                round_money(case.overdue_amount * case.pd.value() * params.lgd.value());
            let days_factor = days_past_due_factor(case.oldest_days_past_due);
            let promise_factor = broken_promise_factor(case.broken_promises);
            WorklistItem {
                rank: 0,
                case_id: case.case_id.clone(),
                customer_id: case.customer_id.clone(),
                overdue_amount: case.overdue_amount,
                currency: case.currency,
                pd: case.pd,
                lgd: params.lgd,
                expected_loss,
                oldest_days_past_due: case.oldest_days_past_due,
                days_past_due_factor: days_factor,
                broken_promises: case.broken_promises,
                broken_promise_factor: promise_factor,
                priority_amount: round_money(expected_loss * days_factor * promise_factor),
            }
        })
        .collect();
    items.sort_by(priority_order);
    for (index, item) in items.iter_mut().enumerate() {
        item.rank = u32::try_from(index + 1).unwrap_or(u32::MAX);
    }
    Ok(items)
}

fn priority_order(left: &WorklistItem, right: &WorklistItem) -> Ordering {
    right
        .priority_amount
        .cmp(&left.priority_amount)
        .then_with(|| right.overdue_amount.cmp(&left.overdue_amount))
        .then_with(|| right.oldest_days_past_due.cmp(&left.oldest_days_past_due))
        .then_with(|| left.case_id.cmp(&right.case_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::receivable::test_support::*;
    use rust_decimal_macros::dec;

    fn case(id: &str, overdue: Decimal, pd: Decimal, days: u32, broken: u32) -> CaseExposure {
        CaseExposure {
            case_id: CaseId::parse(id).unwrap(),
            customer_id: CustomerId::parse(&format!("cus-{id}")).unwrap(),
            overdue_amount: overdue,
            currency: cny(),
            pd: Fraction::parse(pd).unwrap(),
            oldest_days_past_due: days,
            broken_promises: broken,
        }
    }

    #[test]
    fn cases_rank_by_priority_with_every_component_shown() {
        let cases = [
            // 10000 × 0.02 × 0.45 = 90.00; 1 + 45/90 = 1.5; no broken promise → 135.00.
            case("k1", dec!(10000.00), dec!(0.02), 45, 0),
            // 2000 × 0.10 × 0.45 = 90.00; 1 + 100/90 = 2.1111; 1 + 0.25 × 2 = 1.5
            // → 90 × 2.1111 × 1.5 = 284.9985 → 285.00.
            case("k2", dec!(2000.00), dec!(0.10), 100, 2),
            // 500 × 0.30 × 0.45 = 67.50; 1 + 9/90 = 1.1; 1.25 → 92.8125 → 92.81.
            case("k3", dec!(500.00), dec!(0.30), 9, 1),
            // Same figures as k1: tied, ranked after k1 by case id.
            case("k4", dec!(10000.00), dec!(0.02), 45, 0),
            // Same priority as k1 but a larger overdue amount: before k1.
            // 20000 × 0.01 × 0.45 = 90.00; × 1.5 = 135.00.
            case("k5", dec!(20000.00), dec!(0.01), 45, 0),
        ];
        let items = rank_worklist(&cases, &WorklistParams::default()).unwrap();
        let ranking: Vec<(u32, &str, Decimal)> = items
            .iter()
            .map(|item| (item.rank, item.case_id.as_str(), item.priority_amount))
            .collect();
        assert_eq!(
            ranking,
            [
                (1, "k2", dec!(285.00)),
                (2, "k5", dec!(135.00)),
                (3, "k1", dec!(135.00)),
                (4, "k4", dec!(135.00)),
                (5, "k3", dec!(92.81)),
            ]
        );
        let top = &items[0];
        assert_eq!(top.expected_loss, dec!(90.00));
        assert_eq!(top.days_past_due_factor, dec!(2.1111));
        assert_eq!(top.broken_promise_factor, dec!(1.50));
        assert_eq!(top.lgd, DEFAULT_LGD);
    }

    #[test]
    fn lgd_is_configurable_and_currencies_must_match() {
        let params = WorklistParams {
            lgd: Fraction::parse(dec!(0.60)).unwrap(),
        };
        // 1000 × 0.05 × 0.60 = 30.00; factors 1 and 1 → 30.00.
        let items = rank_worklist(&[case("k1", dec!(1000.00), dec!(0.05), 0, 0)], &params).unwrap();
        assert_eq!(items[0].priority_amount, dec!(30.00));
        let mut dollars = case("k2", dec!(1.00), dec!(0.05), 0, 0);
        dollars.currency = usd();
        assert!(matches!(
            rank_worklist(
                &[case("k1", dec!(1.00), dec!(0.05), 0, 0), dollars],
                &params
            ),
            Err(WorklistError::MixedCurrencies { .. })
        ));
    }
}
