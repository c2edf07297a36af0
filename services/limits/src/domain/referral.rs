//! Referred orders as people decide them (step 7.2 of the credit procedure): the figures
//! finance verifies, the chain the approval matrix chooses from them, and the conditions a
//! release may carry.
//!
//! Amounts are minor units of the limit's currency, as the ledger keeps them.

use std::time::Duration;

use credit_core::approval::Figures;
use credit_core::{Currency, Money};
use serde::{Deserialize, Serialize};

/// The kinds of condition a referred order is released with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConditionKind {
    /// A deposit (保证金) to be received before delivery.
    Deposit,
    /// A prepayment to be received before delivery.
    Prepayment,
    /// Only part of the order is released: the hold reserves this much.
    PartialQuantity,
    /// The hold lives only this long.
    ShorterHold,
}

/// A condition of a release, as the decider states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseCondition {
    pub kind: ConditionKind,
    /// DEPOSIT, PREPAYMENT, PARTIAL_QUANTITY: minor units of the order's (limit's) currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    /// SHORTER_HOLD: seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ttl_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Why a set of conditions cannot shape a release.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionRefused {
    #[error(
        "a partial quantity is more than nothing and at most the order ({order_minor} minor units)"
    )]
    PartialOutOfRange { order_minor: i64 },
    #[error("a shorter hold is shorter than the {hold_seconds} seconds the hold would live")]
    HoldNotShorter { hold_seconds: u64 },
    #[error("{0:?} is given at most once")]
    Repeated(ConditionKind),
}

/// The hold a release creates under `conditions`: its amount and lifetime.
pub fn released_hold(
    order_minor: i64,
    hold_ttl: Duration,
    conditions: &[ReleaseCondition],
) -> Result<(i64, Duration), ConditionRefused> {
    let mut amount = order_minor;
    let mut ttl = hold_ttl;
    let mut seen = Vec::new();
    for condition in conditions {
        if seen.contains(&condition.kind) {
            return Err(ConditionRefused::Repeated(condition.kind));
        }
        seen.push(condition.kind);
        match condition.kind {
            ConditionKind::PartialQuantity => match condition.amount_minor {
                Some(partial) if partial > 0 && partial <= order_minor => amount = partial,
                _ => return Err(ConditionRefused::PartialOutOfRange { order_minor }),
            },
            ConditionKind::ShorterHold => match condition.hold_ttl_seconds {
                Some(seconds) if seconds >= 60 && Duration::from_secs(seconds) < hold_ttl => {
                    ttl = Duration::from_secs(seconds);
                }
                _ => {
                    return Err(ConditionRefused::HoldNotShorter {
                        hold_seconds: hold_ttl.as_secs(),
                    });
                }
            },
            // Recorded with the release for the order desk; receiving them is tracked where
            // security is kept.
            ConditionKind::Deposit | ConditionKind::Prepayment => {}
        }
    }
    Ok((amount, ttl))
}

/// How far an order takes the customer past its limit: exposure + amount − limit, never
/// below zero; the whole amount when the customer has no limit. What the deciders'
/// authority must cover.
pub fn overshoot_minor(amount_minor: i64, exposure_minor: i64, limit_minor: Option<i64>) -> i64 {
    match limit_minor {
        None => amount_minor,
        Some(limit) => exposure_minor
            .saturating_add(amount_minor)
            .saturating_sub(limit)
            .max(0),
    }
}

/// The figures of a referral the approval matrix chooses its chain from, in the matrix's
/// currency (`to_matrix` converts an amount of the limit's currency, or says it cannot).
pub fn referral_figures(
    amount: Money,
    overshoot: Money,
    oldest_overdue_days: Option<u32>,
    grade: Option<String>,
) -> Figures {
    Figures {
        amount: Some(amount.amount()),
        overshoot: Some(overshoot.amount()),
        oldest_overdue_days: oldest_overdue_days
            .map(|days| i32::try_from(days).unwrap_or(i32::MAX)),
        grade,
        ..Figures::default()
    }
}

/// Minor units of `currency` as money.
pub fn money_of(minor: i64, currency: Currency) -> Money {
    Money::from_minor_units(minor, currency)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn condition(
        kind: ConditionKind,
        amount_minor: Option<i64>,
        ttl: Option<u64>,
    ) -> ReleaseCondition {
        ReleaseCondition {
            kind,
            amount_minor,
            hold_ttl_seconds: ttl,
            note: String::new(),
        }
    }

    #[test]
    fn a_partial_quantity_and_a_shorter_hold_shape_the_released_hold() {
        let week = Duration::from_secs(7 * 86_400);
        let conditions = [
            condition(ConditionKind::PartialQuantity, Some(40_000), None),
            condition(ConditionKind::ShorterHold, None, Some(86_400)),
            condition(ConditionKind::Deposit, Some(10_000), None),
        ];
        assert_eq!(
            released_hold(100_000, week, &conditions),
            Ok((40_000, Duration::from_secs(86_400)))
        );
        assert_eq!(released_hold(100_000, week, &[]), Ok((100_000, week)));
    }

    #[test]
    fn conditions_that_would_enlarge_the_release_are_refused() {
        let week = Duration::from_secs(7 * 86_400);
        assert!(
            released_hold(
                100_000,
                week,
                &[condition(
                    ConditionKind::PartialQuantity,
                    Some(100_001),
                    None
                )]
            )
            .is_err()
        );
        assert!(
            released_hold(
                100_000,
                week,
                &[condition(
                    ConditionKind::ShorterHold,
                    None,
                    Some(8 * 86_400)
                )]
            )
            .is_err()
        );
        let twice = [
            condition(ConditionKind::Deposit, Some(1), None),
            condition(ConditionKind::Deposit, Some(2), None),
        ];
        assert_eq!(
            released_hold(100_000, week, &twice),
            Err(ConditionRefused::Repeated(ConditionKind::Deposit))
        );
    }

    #[test]
    fn the_overshoot_is_what_passes_the_limit_or_all_of_it_without_one() {
        assert_eq!(overshoot_minor(30_000, 90_000, Some(100_000)), 20_000);
        assert_eq!(overshoot_minor(5_000, 10_000, Some(100_000)), 0);
        assert_eq!(overshoot_minor(5_000, 10_000, None), 5_000);
        assert_eq!(overshoot_minor(i64::MAX, i64::MAX, Some(0)), i64::MAX);
    }
}
