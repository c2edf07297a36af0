//! The Authorize rules as a pure function. The in-process cache calls [`evaluate`]; the Lua
//! script `lua/authorize.lua` mirrors it rule for rule, and the conformance suite checks that
//! both give the same decision.

// Decides on money: every operation that could overflow is a checked or saturating one.
#![deny(clippy::arithmetic_side_effects)]

use super::model::{
    AuthorizeInput, BASIS_POINTS, CustomerProfile, Decision, GroupPosition, GroupProfile, Limit,
    Outcome, REFER_EVERY_OVERSHOOT_BPS, ReasonCode, RuleFigures,
};

/// Decides one order for `customer`, whose cached group is `group` (`None` when the customer
/// has no group; the caches never call this with a cold group), as if the caller's cache
/// applied the reservation: when the outcome is APPROVED and `input.reserve` is set, the
/// returned exposures include the amount and `reserved` is true. Nothing else is reserved.
///
/// Rules, every one that applies reported in this order, the outcome the worst of them:
/// 1. status not ACTIVE: DECLINED, `CUSTOMER_INACTIVE`;
/// 2. no limit, or its `valid_until <= now`: REFERRED, `NO_VALID_LIMIT`;
/// 3. blocked: REFERRED, `CREDIT_BLOCK`;
/// 4. oldest overdue days over the tolerance: REFERRED, `OVERDUE`;
/// 5. a rating required and missing or `valid_until <= now`: REFERRED, `RATING_STALE`;
/// 6. amount over the per-order cap: REFERRED, `ORDER_AMOUNT_LIMIT`;
/// 7. with a valid limit, exposure + contingent exposure + amount over the capacity (the limit
///    plus the security that extends it, `Cover::extension_at`): `LIMIT_EXCEEDED`, REFERRED
///    while within `floor(limit × (10000 + tolerance_bps) / 10000)` plus that security,
///    DECLINED beyond;
/// 8. the same against the group's valid limit and tolerance: `GROUP_LIMIT_EXCEEDED`. A group
///    without a valid limit does not constrain.
///
/// Arithmetic is exact in i128, so no input can overflow; the caches keep every amount
/// within ±2^53 so that the Lua mirror is exact too.
pub fn evaluate(
    customer: &CustomerProfile,
    group: Option<&GroupProfile>,
    input: &AuthorizeInput,
) -> Decision {
    let mut reasons = Vec::new();
    let mut outcome = Outcome::Approved;
    let mut flag = |reason: ReasonCode, severity: Outcome| {
        reasons.push(reason);
        outcome = outcome.max(severity);
    };

    if customer.status != super::model::ProfileStatus::Active {
        flag(ReasonCode::CustomerInactive, Outcome::Declined);
    }
    let customer_limit = valid_limit(customer.limit.as_ref(), input.now);
    if customer_limit.is_none() {
        flag(ReasonCode::NoValidLimit, Outcome::Referred);
    }
    if customer.blocked {
        flag(ReasonCode::CreditBlock, Outcome::Referred);
    }
    if customer.oldest_overdue_days > customer.overdue_tolerance_days {
        flag(ReasonCode::Overdue, Outcome::Referred);
    }
    if customer.rating_required
        && customer
            .rating_valid_until
            .is_none_or(|valid_until| valid_until <= input.now)
    {
        flag(ReasonCode::RatingStale, Outcome::Referred);
    }
    if customer.order_cap.is_some_and(|cap| input.amount > cap) {
        flag(ReasonCode::OrderAmountLimit, Outcome::Referred);
    }
    let contingent = customer.cover.contingent;
    let extension = customer.cover.extension_at(input.now);
    if let Some(limit) = customer_limit
        && let Some(severity) = over_limit(
            customer.exposure.saturating_add(contingent),
            input.amount,
            limit,
            extension,
            customer.tolerance_bps,
        )
    {
        flag(ReasonCode::LimitExceeded, severity);
    }
    let group_limit = group.and_then(|group| valid_limit(group.limit.as_ref(), input.now));
    if let (Some(group), Some(limit)) = (group, group_limit)
        && let Some(severity) =
            over_limit(group.exposure, input.amount, limit, 0, group.tolerance_bps)
    {
        flag(ReasonCode::GroupLimitExceeded, severity);
    }

    let reserved = outcome == Outcome::Approved && input.reserve;
    let reserved_amount = if reserved { input.amount } else { 0 };
    let exposure_after = customer.exposure.saturating_add(reserved_amount);
    let capacity = customer_limit.map(|limit| limit.saturating_add(extension));
    Decision {
        outcome,
        reasons,
        limit: customer_limit,
        capacity,
        exposure_after,
        available_after: capacity.map(|capacity| {
            capacity
                .saturating_sub(contingent)
                .saturating_sub(exposure_after)
        }),
        secured: customer.cover.secured_at(input.now),
        contingent,
        group: group.map(|group| {
            let exposure_after = group.exposure.saturating_add(reserved_amount);
            GroupPosition {
                group_id: group.group_id.clone(),
                limit: group_limit,
                exposure_after,
                available_after: group_limit.map(|limit| limit.saturating_sub(exposure_after)),
                epoch: group.epoch,
                tolerance_bps: group.tolerance_bps,
            }
        }),
        reserved,
        epoch: customer.epoch,
        figures: RuleFigures::of(customer),
    }
}

/// The limit's amount when it may be used at `now`.
fn valid_limit(limit: Option<&Limit>, now: i64) -> Option<i64> {
    limit
        .filter(|limit| limit.is_valid_at(now))
        .map(|limit| limit.amount)
}

/// `None` when `exposure + amount` fits the capacity `limit + extension`; REFERRED when it
/// fits the tolerance band `floor(limit × (10000 + tolerance_bps) / 10000) + extension` (the
/// tolerance is a share of the unsecured limit, never of the security); DECLINED beyond —
/// except under [`REFER_EVERY_OVERSHOOT_BPS`], which refers every overshoot.
fn over_limit(
    exposure: i64,
    amount: i64,
    limit: i64,
    extension: i64,
    tolerance_bps: u32,
) -> Option<Outcome> {
    // Two i64 in an i128 cannot overflow; saturating says so to the lint.
    let total = i128::from(exposure).saturating_add(i128::from(amount));
    let extension = i128::from(extension);
    let limit = i128::from(limit);
    if total <= limit.saturating_add(extension) {
        return None;
    }
    if tolerance_bps == REFER_EVERY_OVERSHOOT_BPS {
        return Some(Outcome::Referred);
    }
    let band = tolerance_band(limit, tolerance_bps).saturating_add(extension);
    Some(if total <= band {
        Outcome::Referred
    } else {
        Outcome::Declined
    })
}

/// `floor(limit × (10000 + tolerance_bps) / 10000)`, exact (floor also for a negative limit).
pub(crate) fn tolerance_band(limit: i128, tolerance_bps: u32) -> i128 {
    let basis_points = i128::from(BASIS_POINTS);
    // An i64 limit times at most 10000 + u32::MAX fits an i128 many times over.
    limit
        .saturating_mul(basis_points.saturating_add(i128::from(tolerance_bps)))
        .div_euclid(basis_points)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)] // fixed test figures
mod tests {
    use super::*;
    use crate::exposure::model::{Cover, ProfileStatus};

    const NOW: i64 = 1_750_000_000;

    /// A customer every rule approves: active, a limit of 1000.00, nothing overdue.
    fn good_customer() -> CustomerProfile {
        CustomerProfile {
            customer_id: "C1".to_owned(),
            group_id: None,
            status: ProfileStatus::Active,
            limit: Some(Limit {
                amount: 100_000,
                valid_until: Some(NOW + 86_400),
            }),
            limit_currency: Some("CNY".to_owned()),
            blocked: false,
            oldest_overdue_days: 0,
            overdue_tolerance_days: 15,
            rating_required: true,
            rating_valid_until: Some(NOW + 86_400),
            order_cap: None,
            tolerance_bps: 1000,
            cover: Cover::default(),
            exposure: 0,
            epoch: 7,
        }
    }

    fn group(limit: Option<i64>, exposure: i64) -> GroupProfile {
        GroupProfile {
            group_id: "G1".to_owned(),
            limit: limit.map(|amount| Limit {
                amount,
                valid_until: None,
            }),
            tolerance_bps: 500,
            exposure,
            epoch: 3,
        }
    }

    fn order(amount: i64) -> AuthorizeInput {
        AuthorizeInput {
            customer_id: "C1".to_owned(),
            group_id: None,
            amount,
            currency: "CNY".to_owned(),
            now: NOW,
            reserve: true,
        }
    }

    fn decide(customer: &CustomerProfile, amount: i64) -> Decision {
        evaluate(customer, None, &order(amount))
    }

    #[test]
    fn a_customer_within_every_rule_is_approved_and_reserved() {
        let decision = decide(&good_customer(), 40_000);
        assert_eq!(decision.outcome, Outcome::Approved);
        assert!(decision.reasons.is_empty());
        assert!(decision.reserved);
        assert_eq!(decision.limit, Some(100_000));
        assert_eq!(decision.exposure_after, 40_000);
        assert_eq!(decision.available_after, Some(60_000));
        assert_eq!(decision.epoch, 7);
        assert_eq!(decision.group, None);
    }

    #[test]
    fn a_what_if_approval_reserves_nothing() {
        let mut input = order(40_000);
        input.reserve = false;
        let decision = evaluate(&good_customer(), None, &input);
        assert_eq!(decision.outcome, Outcome::Approved);
        assert!(!decision.reserved);
        assert_eq!(decision.exposure_after, 0);
        assert_eq!(decision.available_after, Some(100_000));
    }

    #[test]
    fn every_status_but_active_is_declined_as_inactive() {
        for status in [
            ProfileStatus::Prospect,
            ProfileStatus::Suspended,
            ProfileStatus::Closed,
            ProfileStatus::Unknown,
        ] {
            let customer = CustomerProfile {
                status,
                ..good_customer()
            };
            let decision = decide(&customer, 1);
            assert_eq!(decision.outcome, Outcome::Declined, "{status:?}");
            assert_eq!(decision.reasons, vec![ReasonCode::CustomerInactive]);
            assert!(!decision.reserved);
            assert_eq!(decision.exposure_after, 0);
        }
    }

    #[test]
    fn a_missing_limit_is_referred() {
        let customer = CustomerProfile {
            limit: None,
            ..good_customer()
        };
        let decision = decide(&customer, 1);
        assert_eq!(decision.outcome, Outcome::Referred);
        assert_eq!(decision.reasons, vec![ReasonCode::NoValidLimit]);
        assert_eq!(decision.limit, None);
        assert_eq!(decision.available_after, None);
    }

    #[test]
    fn a_limit_expiring_exactly_now_is_expired_and_one_second_later_is_valid() {
        let mut customer = good_customer();
        customer.limit = Some(Limit {
            amount: 100_000,
            valid_until: Some(NOW),
        });
        let decision = decide(&customer, 1);
        assert_eq!(decision.reasons, vec![ReasonCode::NoValidLimit]);
        assert_eq!(decision.limit, None);

        customer.limit = Some(Limit {
            amount: 100_000,
            valid_until: Some(NOW + 1),
        });
        assert_eq!(decide(&customer, 1).outcome, Outcome::Approved);

        customer.limit = Some(Limit {
            amount: 100_000,
            valid_until: None,
        });
        assert_eq!(decide(&customer, 1).outcome, Outcome::Approved);
    }

    #[test]
    fn a_credit_block_is_referred() {
        let customer = CustomerProfile {
            blocked: true,
            ..good_customer()
        };
        let decision = decide(&customer, 1);
        assert_eq!(decision.outcome, Outcome::Referred);
        assert_eq!(decision.reasons, vec![ReasonCode::CreditBlock]);
    }

    #[test]
    fn overdue_days_over_the_tolerance_are_referred_and_at_it_approved() {
        let mut customer = good_customer();
        customer.oldest_overdue_days = 15;
        assert_eq!(decide(&customer, 1).outcome, Outcome::Approved);
        customer.oldest_overdue_days = 16;
        let decision = decide(&customer, 1);
        assert_eq!(decision.outcome, Outcome::Referred);
        assert_eq!(decision.reasons, vec![ReasonCode::Overdue]);
    }

    #[test]
    fn a_required_rating_missing_or_expiring_now_is_stale() {
        let mut customer = good_customer();
        customer.rating_valid_until = None;
        assert_eq!(decide(&customer, 1).reasons, vec![ReasonCode::RatingStale]);
        customer.rating_valid_until = Some(NOW);
        let decision = decide(&customer, 1);
        assert_eq!(decision.outcome, Outcome::Referred);
        assert_eq!(decision.reasons, vec![ReasonCode::RatingStale]);
        customer.rating_valid_until = Some(NOW + 1);
        assert_eq!(decide(&customer, 1).outcome, Outcome::Approved);
        customer.rating_required = false;
        customer.rating_valid_until = None;
        assert_eq!(decide(&customer, 1).outcome, Outcome::Approved);
    }

    #[test]
    fn an_order_over_the_cap_is_referred_and_at_the_cap_approved() {
        let mut customer = good_customer();
        customer.order_cap = Some(5_000);
        assert_eq!(decide(&customer, 5_000).outcome, Outcome::Approved);
        let decision = decide(&customer, 5_001);
        assert_eq!(decision.outcome, Outcome::Referred);
        assert_eq!(decision.reasons, vec![ReasonCode::OrderAmountLimit]);
    }

    #[test]
    fn the_tolerance_band_refers_up_to_its_edge_and_declines_one_unit_beyond() {
        let mut customer = good_customer();
        customer.exposure = 30_000;
        // Limit 100_000, 10 %: the band ends at 110_000.
        assert_eq!(decide(&customer, 70_000).outcome, Outcome::Approved);
        let at_limit_plus_one = decide(&customer, 70_001);
        assert_eq!(at_limit_plus_one.outcome, Outcome::Referred);
        assert_eq!(at_limit_plus_one.reasons, vec![ReasonCode::LimitExceeded]);
        assert!(!at_limit_plus_one.reserved);
        assert_eq!(at_limit_plus_one.exposure_after, 30_000);
        let at_band = decide(&customer, 80_000);
        assert_eq!(at_band.outcome, Outcome::Referred);
        assert_eq!(at_band.reasons, vec![ReasonCode::LimitExceeded]);
        let beyond = decide(&customer, 80_001);
        assert_eq!(beyond.outcome, Outcome::Declined);
        assert_eq!(beyond.reasons, vec![ReasonCode::LimitExceeded]);
        assert_eq!(beyond.available_after, Some(70_000));
    }

    #[test]
    fn the_band_floors_a_fractional_edge() {
        // 999 × 1.0333 = 1032.2667 -> the band ends at 1032.
        let mut customer = good_customer();
        customer.limit = Some(Limit {
            amount: 999,
            valid_until: None,
        });
        customer.tolerance_bps = 333;
        assert_eq!(decide(&customer, 1032).outcome, Outcome::Referred);
        assert_eq!(decide(&customer, 1033).outcome, Outcome::Declined);
        assert_eq!(tolerance_band(999, 333), 1032);
        assert_eq!(tolerance_band(-1, 5000), -2);
    }

    #[test]
    fn zero_tolerance_declines_anything_over_the_limit() {
        let mut customer = good_customer();
        customer.tolerance_bps = 0;
        assert_eq!(decide(&customer, 100_000).outcome, Outcome::Approved);
        assert_eq!(decide(&customer, 100_001).outcome, Outcome::Declined);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let mut customer = good_customer();
        customer.exposure = i64::MAX;
        customer.limit = Some(Limit {
            amount: i64::MAX,
            valid_until: None,
        });
        customer.tolerance_bps = u32::MAX;
        let decision = decide(&customer, i64::MAX);
        assert_eq!(decision.outcome, Outcome::Referred);
        assert_eq!(decision.reasons, vec![ReasonCode::LimitExceeded]);
    }

    #[test]
    fn the_group_limit_applies_with_its_own_band_and_is_reserved_too() {
        let mut customer = good_customer();
        customer.group_id = Some("G1".to_owned());
        // Group limit 50_000 with exposure 20_000 and a 5 % band ending at 52_500.
        let group = group(Some(50_000), 20_000);
        let approved = evaluate(&customer, Some(&group), &order(30_000));
        assert_eq!(approved.outcome, Outcome::Approved);
        assert_eq!(
            approved.group,
            Some(GroupPosition {
                group_id: "G1".to_owned(),
                limit: Some(50_000),
                exposure_after: 50_000,
                available_after: Some(0),
                epoch: 3,
                tolerance_bps: group.tolerance_bps,
            })
        );
        let at_band = evaluate(&customer, Some(&group), &order(32_500));
        assert_eq!(at_band.outcome, Outcome::Referred);
        assert_eq!(at_band.reasons, vec![ReasonCode::GroupLimitExceeded]);
        assert_eq!(
            at_band.group.map(|group| group.exposure_after),
            Some(20_000)
        );
        let beyond = evaluate(&customer, Some(&group), &order(32_501));
        assert_eq!(beyond.outcome, Outcome::Declined);
        assert_eq!(beyond.reasons, vec![ReasonCode::GroupLimitExceeded]);
    }

    #[test]
    fn a_group_without_a_valid_limit_does_not_constrain() {
        let mut customer = good_customer();
        customer.group_id = Some("G1".to_owned());
        let unlimited = group(None, 10_000_000);
        let decision = evaluate(&customer, Some(&unlimited), &order(50_000));
        assert_eq!(decision.outcome, Outcome::Approved);
        let position = decision.group.unwrap();
        assert_eq!(position.limit, None);
        assert_eq!(position.available_after, None);
        assert_eq!(position.exposure_after, 10_050_000);

        let mut expired = group(Some(1), 10_000_000);
        expired.limit = Some(Limit {
            amount: 1,
            valid_until: Some(NOW),
        });
        let decision = evaluate(&customer, Some(&expired), &order(50_000));
        assert_eq!(decision.outcome, Outcome::Approved);
    }

    #[test]
    fn every_reason_that_applies_is_reported_in_order_with_the_worst_outcome() {
        let customer = CustomerProfile {
            group_id: Some("G1".to_owned()),
            status: ProfileStatus::Suspended,
            blocked: true,
            oldest_overdue_days: 90,
            rating_valid_until: Some(NOW - 1),
            order_cap: Some(1_000),
            exposure: 95_000,
            ..good_customer()
        };
        let group = group(Some(10_000), 9_000);
        let decision = evaluate(&customer, Some(&group), &order(6_000));
        assert_eq!(decision.outcome, Outcome::Declined);
        assert_eq!(
            decision.reasons,
            vec![
                ReasonCode::CustomerInactive,
                ReasonCode::CreditBlock,
                ReasonCode::Overdue,
                ReasonCode::RatingStale,
                ReasonCode::OrderAmountLimit,
                ReasonCode::LimitExceeded,
                ReasonCode::GroupLimitExceeded,
            ]
        );
        assert!(!decision.reserved);

        let no_limit = CustomerProfile {
            limit: None,
            blocked: true,
            ..good_customer()
        };
        let decision = evaluate(&no_limit, None, &order(1));
        assert_eq!(decision.outcome, Outcome::Referred);
        assert_eq!(
            decision.reasons,
            vec![ReasonCode::NoValidLimit, ReasonCode::CreditBlock]
        );
    }

    #[test]
    fn a_referral_within_the_band_and_a_decline_elsewhere_give_declined() {
        let customer = CustomerProfile {
            exposure: 100_000,
            group_id: Some("G1".to_owned()),
            ..good_customer()
        };
        // Customer: 105_000 is within its 10 % band (referred); group: 5 % band on 10_000
        // ends at 10_500, and 9_000 + 5_000 is beyond it (declined).
        let decision = evaluate(&customer, Some(&group(Some(10_000), 9_000)), &order(5_000));
        assert_eq!(decision.outcome, Outcome::Declined);
        assert_eq!(
            decision.reasons,
            vec![ReasonCode::LimitExceeded, ReasonCode::GroupLimitExceeded]
        );
    }

    #[test]
    fn security_that_extends_capacity_raises_what_is_approved_until_it_stops_counting() {
        let secured = CustomerProfile {
            exposure: 90_000,
            cover: Cover {
                secured: 50_000,
                extends_capacity: true,
                secured_valid_until: Some(NOW + 60),
                contingent: 0,
            },
            ..good_customer()
        };
        // 90,000 + 50,000 = 140,000 fits the capacity 100,000 + 50,000.
        let decision = decide(&secured, 50_000);
        assert_eq!(decision.outcome, Outcome::Approved);
        assert_eq!(decision.capacity, Some(150_000));
        assert_eq!(decision.secured, 50_000);
        assert_eq!(decision.available_after, Some(10_000));
        // The band is the limit's tolerance (10,000) on top of the capacity: referred, then
        // declined beyond.
        assert_eq!(decide(&secured, 65_000).outcome, Outcome::Referred);
        assert_eq!(decide(&secured, 75_000).outcome, Outcome::Declined);
        // At its expiry the security no longer counts.
        let later = AuthorizeInput {
            now: NOW + 60,
            ..order(50_000)
        };
        let expired = evaluate(&secured, None, &later);
        assert_eq!(expired.reasons, vec![ReasonCode::LimitExceeded]);
        assert_eq!(expired.secured, 0);
        assert_eq!(expired.capacity, Some(100_000));
    }

    #[test]
    fn security_that_only_lowers_loss_is_reported_but_leaves_the_limit_alone() {
        let loss_only = CustomerProfile {
            exposure: 90_000,
            cover: Cover {
                secured: 50_000,
                extends_capacity: false,
                secured_valid_until: None,
                contingent: 0,
            },
            ..good_customer()
        };
        let decision = decide(&loss_only, 50_000);
        assert_eq!(decision.reasons, vec![ReasonCode::LimitExceeded]);
        assert_eq!(decision.secured, 50_000);
        assert_eq!(decision.capacity, Some(100_000));
    }

    #[test]
    fn a_guarantors_contingent_exposure_uses_its_limit() {
        let guarantor = CustomerProfile {
            exposure: 10_000,
            cover: Cover {
                contingent: 60_000,
                ..Cover::default()
            },
            ..good_customer()
        };
        assert_eq!(decide(&guarantor, 30_000).outcome, Outcome::Approved);
        let decision = decide(&guarantor, 30_001);
        assert_eq!(decision.reasons, vec![ReasonCode::LimitExceeded]);
        assert_eq!(decision.contingent, 60_000);
        assert_eq!(decision.available_after, Some(30_000));
    }

    #[test]
    fn reason_codes_are_stable_and_round_trip() {
        let codes: Vec<&str> = ReasonCode::ALL
            .iter()
            .map(|reason| reason.as_str())
            .collect();
        assert_eq!(
            codes,
            [
                "CUSTOMER_INACTIVE",
                "NO_VALID_LIMIT",
                "CREDIT_BLOCK",
                "OVERDUE",
                "RATING_STALE",
                "ORDER_AMOUNT_LIMIT",
                "LIMIT_EXCEEDED",
                "GROUP_LIMIT_EXCEEDED",
            ]
        );
        for reason in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(reason.as_str()), Some(reason));
        }
        let mut sorted = ReasonCode::ALL;
        sorted.sort();
        assert_eq!(
            sorted,
            ReasonCode::ALL,
            "declaration order is reporting order"
        );
        for outcome in [Outcome::Approved, Outcome::Referred, Outcome::Declined] {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        for status in [
            ProfileStatus::Active,
            ProfileStatus::Prospect,
            ProfileStatus::Suspended,
            ProfileStatus::Closed,
            ProfileStatus::Unknown,
        ] {
            assert_eq!(ProfileStatus::parse(status.as_str()), status);
        }
        assert_eq!(ProfileStatus::parse("ARCHIVED"), ProfileStatus::Unknown);
    }
}
