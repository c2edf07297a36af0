//! The exposure cache's profile of a customer, built from what limits knows of it.
//!
//! Warming a cold customer reads its facts once ([`WarmingFacts`], one store call), then builds
//! the profile here without further I/O; only the per-order cap in a foreign currency (a rate)
//! and the ledger's exposure and epoch come from elsewhere, and are passed in.

use chrono::{DateTime, Utc};
use credit_core::{Currency, Money};

use crate::domain::limits::{self, CreditLimit};
use crate::domain::policy::CreditPolicy;
use crate::domain::security::Security;
use crate::domain::terms::{self, CustomerTerms};
use crate::exposure::{Cover, CustomerProfile, Limit, ProfileStatus};

/// What limits knows of a customer, from intake's and rating's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFacts {
    pub customer_id: String,
    pub status: String,
    pub group_id: Option<String>,
    pub rating: Option<RatingFacts>,
    /// The largest days past due over the customer's open invoices (InvoiceOverdue).
    pub oldest_overdue_days: u32,
}

/// The customer's rating in force (RatingChanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingFacts {
    pub rating_id: String,
    pub grade: String,
    /// After this day (plus the policy's grace days) the rating is stale.
    pub next_review_date: Option<chrono::NaiveDate>,
    /// The grade's probability of default, a fraction; `None` from ratings projected before
    /// limits kept it.
    pub pd: Option<rust_decimal::Decimal>,
}

/// Everything a customer's profile is built from that the limits tables hold.
#[derive(Debug, Clone)]
pub struct WarmingFacts {
    pub customer: CustomerFacts,
    /// Every limit of the customer scope, in force or not.
    pub limits: Vec<CreditLimit>,
    /// Whether any credit block is set.
    pub blocked: bool,
    pub own_terms: Option<CustomerTerms>,
    /// As stored (a rebuild must not bring back an older copy).
    pub policy: CreditPolicy,
    /// The customer's active securities (counted on the days of their validity).
    pub securities: Vec<Security>,
    /// The active third-party guarantees the customer gave: its contingent exposure.
    pub guarantees_given: Vec<Security>,
}

impl WarmingFacts {
    fn grade(&self) -> Option<&str> {
        self.customer
            .rating
            .as_ref()
            .map(|rating| rating.grade.as_str())
    }

    /// The per-order cap of the customer's effective terms, in the currency it was set in.
    pub fn order_cap(&self) -> Option<Money> {
        terms::effective(
            &self.customer.customer_id,
            self.own_terms.as_ref(),
            &self.policy,
            self.grade(),
        )
        .order_amount_cap
    }
}

/// The limit in force at `now` and the one currency the scope's exposure is kept in: the
/// limit's, or the newest granted one's when none is in force, or `base` when the scope never
/// had a limit. Every amount is converted into it on entry, so minor units of two currencies
/// never meet.
pub fn limit_in_force(
    limits: &[CreditLimit],
    now: DateTime<Utc>,
    base: Currency,
) -> (Option<&CreditLimit>, Currency) {
    let in_force = limits::effective_limit(limits, now);
    let currency = in_force
        .or_else(|| limits.iter().max_by_key(|limit| limit.granted_at))
        .map_or(base, |limit| limit.amount.currency());
    (in_force, currency)
}

/// The unix second from which a rating counts as stale: the start (UTC) of the day after its
/// review date plus the grace days. A rating without a review date never goes stale.
pub fn rating_valid_until(rating: &RatingFacts, grace_days: u32) -> Option<i64> {
    let review = rating.next_review_date?;
    let stale_from = review.checked_add_days(chrono::Days::new(u64::from(grace_days) + 1))?;
    Some(stale_from.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// What the cache needs besides the facts: the limit in the cache's form and its currency,
/// the order cap in minor units of that currency, and the ledger's exposure and epoch.
#[derive(Debug, Clone, Copy)]
pub struct CacheState {
    pub limit: Option<Limit>,
    pub currency: Currency,
    pub order_cap: Option<i64>,
    pub exposure: i64,
    pub epoch: u64,
    /// The counted security and contingent exposure, converted into the limit's currency;
    /// whether the security extends the capacity is the grade policy's, set here.
    pub cover: Cover,
}

/// The customer's profile as the exposure cache decides on it.
pub fn customer_profile(facts: &WarmingFacts, state: CacheState) -> CustomerProfile {
    let policy = &facts.policy;
    let (grade_policy, _) = policy.for_grade(facts.grade());
    CustomerProfile {
        customer_id: facts.customer.customer_id.clone(),
        group_id: facts.customer.group_id.clone(),
        status: ProfileStatus::parse(&facts.customer.status),
        limit: state.limit,
        limit_currency: Some(state.currency.code().to_owned()),
        blocked: facts.blocked,
        oldest_overdue_days: facts.customer.oldest_overdue_days,
        overdue_tolerance_days: grade_policy.overdue_tolerance_days,
        rating_required: policy.rating_required,
        rating_valid_until: facts
            .customer
            .rating
            .as_ref()
            .and_then(|rating| rating_valid_until(rating, policy.rating_grace_days)),
        order_cap: state.order_cap,
        // Step 7.2: a grade that refers orders beyond the tolerance declines none of them.
        tolerance_bps: if grade_policy.refer_beyond_tolerance {
            crate::exposure::REFER_EVERY_OVERSHOOT_BPS
        } else {
            policy.tolerance_bps()
        },
        cover: Cover {
            extends_capacity: grade_policy.security_extends_capacity,
            ..state.cover
        },
        exposure: state.exposure,
        epoch: state.epoch,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;
    use crate::domain::limits::{Actor, LimitStatus, Scope};

    fn cny() -> Currency {
        Currency::parse("CNY").unwrap()
    }

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 0, 0, 0).unwrap()
    }

    fn limit(
        id: &str,
        amount: &str,
        currency: &str,
        granted: u32,
        status: LimitStatus,
    ) -> CreditLimit {
        CreditLimit {
            id: id.to_owned(),
            scope: Scope::Customer("C1".to_owned()),
            amount: Money::parse(amount, currency).unwrap(),
            valid_from: at(1),
            valid_until: None,
            temporary: false,
            status,
            limit_request_id: String::new(),
            requested_by: Actor::named("ana"),
            approved_by: Actor::named("max"),
            granted_at: at(granted),
            reason: String::new(),
            auto_approval_rule_id: None,
        }
    }

    fn facts(grade: Option<&str>, review: Option<NaiveDate>) -> WarmingFacts {
        WarmingFacts {
            customer: CustomerFacts {
                customer_id: "C1".to_owned(),
                status: "ACTIVE".to_owned(),
                group_id: Some("G1".to_owned()),
                rating: grade.map(|grade| RatingFacts {
                    rating_id: "r1".to_owned(),
                    grade: grade.to_owned(),
                    next_review_date: review,
                    pd: None,
                }),
                oldest_overdue_days: 4,
            },
            limits: Vec::new(),
            blocked: true,
            own_terms: None,
            policy: CreditPolicy::default(),
            securities: Vec::new(),
            guarantees_given: Vec::new(),
        }
    }

    #[test]
    fn exposure_is_kept_in_the_limit_in_force_else_the_newest_else_the_base_currency() {
        let usd = limit("L1", "1000", "USD", 2, LimitStatus::Active);
        let (in_force, currency) = limit_in_force(std::slice::from_ref(&usd), at(5), cny());
        assert_eq!(in_force.map(|limit| limit.id.as_str()), Some("L1"));
        assert_eq!(currency.code(), "USD");

        let ended_eur = limit("L2", "1000", "EUR", 3, LimitStatus::Superseded);
        let (in_force, currency) = limit_in_force(std::slice::from_ref(&ended_eur), at(5), cny());
        assert!(in_force.is_none());
        assert_eq!(currency.code(), "EUR");

        let (in_force, currency) = limit_in_force(&[], at(5), cny());
        assert!(in_force.is_none());
        assert_eq!(currency.code(), "CNY");
    }

    #[test]
    fn a_rating_goes_stale_the_day_after_its_review_plus_grace() {
        let rating = RatingFacts {
            rating_id: "r1".to_owned(),
            grade: "A".to_owned(),
            next_review_date: NaiveDate::from_ymd_opt(2026, 11, 10),
            pd: None,
        };
        assert_eq!(rating_valid_until(&rating, 5), Some(at(16).timestamp()));
        let undated = RatingFacts {
            next_review_date: None,
            ..rating
        };
        assert_eq!(rating_valid_until(&undated, 5), None);
    }

    #[test]
    fn the_profile_carries_the_facts_the_grade_policy_and_the_cache_state() {
        let facts = facts(Some("BB"), NaiveDate::from_ymd_opt(2026, 11, 10));
        let profile = customer_profile(
            &facts,
            CacheState {
                limit: Some(Limit {
                    amount: 500_000,
                    valid_until: None,
                }),
                currency: cny(),
                order_cap: Some(100_000),
                exposure: 12_345,
                epoch: 7,
                cover: Cover {
                    secured: 500,
                    extends_capacity: false,
                    secured_valid_until: Some(99),
                    contingent: 300,
                },
            },
        );
        assert_eq!(profile.customer_id, "C1");
        assert_eq!(profile.group_id.as_deref(), Some("G1"));
        assert_eq!(profile.status, ProfileStatus::parse("ACTIVE"));
        assert_eq!(profile.limit_currency.as_deref(), Some("CNY"));
        assert!(profile.blocked);
        assert_eq!(profile.oldest_overdue_days, 4);
        // BB tolerates 10 overdue days in the shipped policy.
        assert_eq!(profile.overdue_tolerance_days, 10);
        assert_eq!(
            profile.rating_valid_until,
            rating_valid_until(
                facts.customer.rating.as_ref().unwrap(),
                facts.policy.rating_grace_days
            )
        );
        assert_eq!(profile.order_cap, Some(100_000));
        assert_eq!(profile.exposure, 12_345);
        // The grade policy decides whether the security extends the capacity.
        assert_eq!(
            profile.cover,
            Cover {
                secured: 500,
                extends_capacity: true,
                secured_valid_until: Some(99),
                contingent: 300,
            }
        );
        assert_eq!(profile.epoch, 7);
    }

    #[test]
    fn the_order_cap_comes_from_the_grade_policy_when_the_customer_has_no_terms() {
        assert_eq!(
            facts(Some("BB"), None).order_cap(),
            Some(Money::parse("1000000", "CNY").unwrap())
        );
        assert_eq!(facts(Some("AAA"), None).order_cap(), None);
    }
}
