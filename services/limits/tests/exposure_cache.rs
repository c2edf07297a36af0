//! One conformance suite for the exposure cache, run against both implementations: Redis (the
//! real server at `credit_runtime::testing::redis_url()`, a key prefix of its own per test,
//! never a flush) and the in-process cache of the embedded default. Each scenario below is a
//! function over `&Fixture`; `conformance!` turns it into `in_process::<name>` and
//! `on_redis::<name>`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::future::Future;
use std::sync::Arc;

use credit_limits::exposure::{
    Adjustment, AuthorizeInput, AuthorizeOutcome, Cover, CustomerProfile, CustomerUpdate, Decision,
    ExposureCache, ExposureError, Fence, GroupPosition, GroupProfile, GroupUpdate,
    InProcessExposureCache, Level, Limit, MAX_EXACT_AMOUNT, Outcome, ProfileStatus,
    REFER_EVERY_OVERSHOOT_BPS, ReasonCode, RedisExposureCache, RuleFigures, UpdateOutcome,
    evaluate,
};
use credit_runtime::RedisHandle;

const NOW: i64 = 1_750_000_000;
const DAY: i64 = 86_400;

// ---- fixture ---------------------------------------------------------------------------

/// A cache under test, and for Redis the handle and prefix to look at the raw keys.
struct Fixture {
    cache: Arc<dyn ExposureCache>,
    redis: Option<RedisHandle>,
    prefix: String,
}

impl Fixture {
    fn in_process() -> Self {
        Self {
            cache: Arc::new(InProcessExposureCache::new()),
            redis: None,
            prefix: String::new(),
        }
    }

    async fn on_redis() -> Self {
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        let url = credit_runtime::testing::redis_url();
        let redis = RedisHandle::connect(&url.into(), &prefix)
            .await
            .expect("Redis must run at credit_runtime::testing::redis_url() for this test");
        Self {
            cache: Arc::new(RedisExposureCache::new(redis.clone())),
            redis: Some(redis),
            prefix,
        }
    }

    /// The keys this test wrote, sorted; `None` for the in-process cache.
    async fn stored_keys(&self) -> Option<Vec<String>> {
        let redis = self.redis.as_ref()?;
        let mut connection = redis.connection();
        let mut keys = Vec::new();
        let mut cursor = 0_u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .unwrap();
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        Some(keys)
    }

    /// Deletes this test's keys (only those under its own prefix).
    async fn clean_up(&self) {
        let (Some(redis), Some(keys)) = (self.redis.as_ref(), self.stored_keys().await) else {
            return;
        };
        let mut connection = redis.connection();
        for key in keys {
            let _: () = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut connection)
                .await
                .unwrap();
        }
    }
}

/// Runs `scenario` on a fresh Redis fixture and removes its keys afterwards, also when the
/// scenario fails (the panic is carried out of a task and resumed after the clean-up).
async fn on_redis<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<Fixture>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let fixture = Arc::new(Fixture::on_redis().await);
    let outcome = tokio::spawn(scenario(fixture.clone())).await;
    fixture.clean_up().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

async fn in_process<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<Fixture>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    scenario(Arc::new(Fixture::in_process())).await;
}

/// One test per implementation for every scenario; multi-threaded so that concurrent
/// scenarios really run in parallel.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::in_process(|fixture| async move { super::$scenario(&fixture).await })
                        .await;
                }
            )*
        }
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::on_redis(|fixture| async move { super::$scenario(&fixture).await })
                        .await;
                }
            )*
        }
    };
}

conformance!(
    approves_and_reserves_at_customer_and_group_level,
    a_refusal_quotes_the_figures_it_compared,
    inactive_customers_are_declined,
    a_missing_or_expired_limit_is_referred,
    an_order_in_another_currency_than_the_limits_is_refused_unreserved,
    a_credit_block_is_referred,
    overdue_days_beyond_tolerance_are_referred,
    a_missing_or_stale_required_rating_is_referred,
    an_order_over_the_per_order_cap_is_referred,
    the_customer_tolerance_band_refers_at_its_edge_and_declines_beyond,
    the_group_tolerance_band_refers_at_its_edge_and_declines_beyond,
    the_band_is_exact_near_two_to_the_53,
    a_band_that_refers_every_overshoot_declines_none,
    every_applicable_reason_is_reported_in_order,
    what_if_never_changes_exposure,
    referred_and_declined_orders_never_reserve,
    the_group_limit_binds_before_the_customer_limits,
    a_group_without_a_valid_limit_does_not_constrain,
    the_cached_group_wins_over_the_callers_belief,
    a_cold_customer_is_reported_and_nothing_written,
    a_cold_group_is_reported_and_nothing_written,
    release_and_add_move_both_levels,
    fenced_adjustments_move_only_levels_cached_under_their_epoch,
    release_and_add_on_cold_profiles_write_nothing,
    loading_overwrites_everything,
    a_customer_moving_group_is_found_under_its_new_group,
    updates_change_profile_fields_but_not_exposure,
    evicted_profiles_are_cold,
    only_evictions_move_a_customers_generation,
    only_evictions_move_a_groups_generation,
    evicting_all_makes_every_profile_cold_and_leaves_other_keys,
    out_of_range_amounts_and_bad_ids_are_refused,
    concurrent_authorizations_respect_the_customer_limit,
    concurrent_authorizations_respect_the_group_limit,
    simultaneous_orders_are_decided_one_after_another,
    security_extends_the_capacity_until_it_stops_counting,
    guarantees_given_use_the_guarantors_limit,
);

// ---- builders --------------------------------------------------------------------------

/// A customer every rule approves: active, a limit of 100_000 valid for a day, 10 % band.
fn customer(customer_id: &str, group_id: Option<&str>) -> CustomerProfile {
    CustomerProfile {
        customer_id: customer_id.to_owned(),
        group_id: group_id.map(str::to_owned),
        status: ProfileStatus::Active,
        limit: Some(Limit {
            amount: 100_000,
            valid_until: Some(NOW + DAY),
        }),
        limit_currency: Some("CNY".to_owned()),
        blocked: false,
        oldest_overdue_days: 0,
        overdue_tolerance_days: 15,
        rating_required: false,
        rating_valid_until: None,
        order_cap: None,
        tolerance_bps: 1000,
        cover: Cover::default(),
        exposure: 0,
        epoch: 11,
    }
}

/// A group with an open-ended limit (or none) and a 5 % band.
fn group(group_id: &str, limit: Option<i64>, exposure: i64) -> GroupProfile {
    GroupProfile {
        group_id: group_id.to_owned(),
        limit: limit.map(|amount| Limit {
            amount,
            valid_until: None,
        }),
        tolerance_bps: 500,
        exposure,
        epoch: 5,
    }
}

fn order(customer_id: &str, group_id: Option<&str>, amount: i64) -> AuthorizeInput {
    AuthorizeInput {
        customer_id: customer_id.to_owned(),
        group_id: group_id.map(str::to_owned),
        amount,
        currency: "CNY".to_owned(),
        now: NOW,
        reserve: true,
    }
}

fn what_if(customer_id: &str, group_id: Option<&str>, amount: i64) -> AuthorizeInput {
    AuthorizeInput {
        reserve: false,
        ..order(customer_id, group_id, amount)
    }
}

async fn decide(fixture: &Fixture, input: &AuthorizeInput) -> Decision {
    match fixture.cache.authorize(input).await.unwrap() {
        AuthorizeOutcome::Decided(decision) => decision,
        cold => panic!("expected a decision for {input:?}, got {cold:?}"),
    }
}

async fn load(fixture: &Fixture, profile: &CustomerProfile) {
    fixture.cache.load_customer(profile).await.unwrap();
}

async fn load_group(fixture: &Fixture, profile: &GroupProfile) {
    fixture.cache.load_group(profile).await.unwrap();
}

async fn exposure_of(fixture: &Fixture, customer_id: &str) -> i64 {
    fixture
        .cache
        .get_customer(customer_id)
        .await
        .unwrap()
        .unwrap()
        .exposure
}

async fn group_exposure_of(fixture: &Fixture, group_id: &str) -> i64 {
    fixture
        .cache
        .get_group(group_id)
        .await
        .unwrap()
        .unwrap()
        .exposure
}

/// Loads `profile` alone and decides one order for it: the single-rule scenarios.
async fn decide_for(fixture: &Fixture, profile: &CustomerProfile, amount: i64) -> Decision {
    load(fixture, profile).await;
    decide(fixture, &order(&profile.customer_id, None, amount)).await
}

// ---- rules -----------------------------------------------------------------------------

async fn security_extends_the_capacity_until_it_stops_counting(fixture: &Fixture) {
    let secured = CustomerProfile {
        exposure: 90_000,
        cover: Cover {
            secured: 50_000,
            extends_capacity: true,
            secured_valid_until: Some(NOW + 60),
            contingent: 0,
        },
        ..customer("C1", None)
    };
    load(fixture, &secured).await;
    let what_if = |amount: i64, now: i64| AuthorizeInput {
        now,
        reserve: false,
        ..order("C1", None, amount)
    };
    let decision = decide(fixture, &what_if(60_000, NOW)).await;
    assert_eq!(decision.outcome, Outcome::Approved);
    assert_eq!(decision.capacity, Some(150_000));
    assert_eq!(decision.secured, 50_000);
    assert_eq!(decision.available_after, Some(60_000));
    // The tolerance band is the limit's, on top of the security.
    assert_eq!(
        decide(fixture, &what_if(70_000, NOW)).await.outcome,
        Outcome::Referred
    );
    assert_eq!(
        decide(fixture, &what_if(70_001, NOW)).await.outcome,
        Outcome::Declined
    );
    // From its expiry on, nothing counts until the customer is re-evaluated.
    let expired = decide(fixture, &what_if(10_001, NOW + 60)).await;
    assert_eq!(expired.reasons, vec![ReasonCode::LimitExceeded]);
    assert_eq!((expired.secured, expired.capacity), (0, Some(100_000)));

    // Security that only lowers the loss is reported and leaves the limit alone.
    let loss_only = CustomerProfile {
        cover: Cover {
            extends_capacity: false,
            ..secured.cover
        },
        ..customer("C2", None)
    };
    let decision = decide_for(fixture, &loss_only, 100_001).await;
    assert_eq!(decision.reasons, vec![ReasonCode::LimitExceeded]);
    assert_eq!(
        (decision.secured, decision.capacity),
        (50_000, Some(100_000))
    );
}

async fn guarantees_given_use_the_guarantors_limit(fixture: &Fixture) {
    let guarantor = CustomerProfile {
        exposure: 10_000,
        cover: Cover {
            contingent: 60_000,
            ..Cover::default()
        },
        ..customer("C1", None)
    };
    load(fixture, &guarantor).await;
    let decision = decide(fixture, &order("C1", None, 30_001)).await;
    assert_eq!(decision.reasons, vec![ReasonCode::LimitExceeded]);
    assert_eq!(decision.contingent, 60_000);
    assert_eq!(decision.available_after, Some(30_000));
    let decision = decide(fixture, &order("C1", None, 30_000)).await;
    assert_eq!(decision.outcome, Outcome::Approved);
    assert_eq!(decision.available_after, Some(0));
    assert_eq!(
        exposure_of(fixture, "C1").await,
        40_000,
        "the contingent part is not reserved"
    );
}

async fn approves_and_reserves_at_customer_and_group_level(fixture: &Fixture) {
    load(fixture, &customer("C1", Some("G1"))).await;
    load_group(fixture, &group("G1", Some(500_000), 1_000)).await;

    let decision = decide(fixture, &order("C1", Some("G1"), 40_000)).await;

    assert_eq!(
        decision,
        Decision {
            outcome: Outcome::Approved,
            reasons: vec![],
            limit: Some(100_000),
            capacity: Some(100_000),
            exposure_after: 40_000,
            available_after: Some(60_000),
            secured: 0,
            contingent: 0,
            group: Some(GroupPosition {
                group_id: "G1".to_owned(),
                limit: Some(500_000),
                exposure_after: 41_000,
                available_after: Some(459_000),
                epoch: 5,
                tolerance_bps: 500,
            }),
            reserved: true,
            epoch: 11,
            figures: RuleFigures {
                status: ProfileStatus::Active,
                oldest_overdue_days: 0,
                overdue_tolerance_days: 15,
                order_cap: None,
                tolerance_bps: 1000,
            },
        }
    );
    assert_eq!(exposure_of(fixture, "C1").await, 40_000);
    assert_eq!(group_exposure_of(fixture, "G1").await, 41_000);

    // A customer without a group reserves at its own level only.
    load(fixture, &customer("C2", None)).await;
    let decision = decide(fixture, &order("C2", None, 100_000)).await;
    assert_eq!(decision.outcome, Outcome::Approved);
    assert_eq!(decision.group, None);
    assert_eq!(decision.available_after, Some(0));
    assert_eq!(exposure_of(fixture, "C2").await, 100_000);
    assert_eq!(group_exposure_of(fixture, "G1").await, 41_000);
}

async fn a_refusal_quotes_the_figures_it_compared(fixture: &Fixture) {
    let mut profile = customer("C1", Some("G1"));
    profile.status = ProfileStatus::Suspended;
    profile.oldest_overdue_days = 40;
    profile.overdue_tolerance_days = 30;
    profile.order_cap = Some(5_000);
    profile.tolerance_bps = 750;
    load(fixture, &profile).await;
    load_group(fixture, &group("G1", Some(500_000), 0)).await;

    let decision = decide(fixture, &order("C1", Some("G1"), 6_000)).await;

    assert_eq!(decision.outcome, Outcome::Declined);
    assert_eq!(
        decision.figures,
        RuleFigures {
            status: ProfileStatus::Suspended,
            oldest_overdue_days: 40,
            overdue_tolerance_days: 30,
            order_cap: Some(5_000),
            tolerance_bps: 750,
        }
    );
    assert_eq!(decision.group.map(|group| group.tolerance_bps), Some(500));
}

async fn a_band_that_refers_every_overshoot_declines_none(fixture: &Fixture) {
    let mut profile = customer("C1", None);
    profile.tolerance_bps = REFER_EVERY_OVERSHOOT_BPS;
    // Far beyond any band, even the one this tolerance would give as a percentage.
    for amount in [100_001, 1_000_000, 9_007_199_254_640_991] {
        let decision = decide_for(fixture, &profile, amount).await;
        assert_eq!(decision.outcome, Outcome::Referred, "{amount}");
        assert_eq!(decision.reasons, vec![ReasonCode::LimitExceeded]);
        assert!(!decision.reserved);
    }
    assert_eq!(
        decide_for(fixture, &profile, 100_000).await.outcome,
        Outcome::Approved
    );
}

async fn inactive_customers_are_declined(fixture: &Fixture) {
    for (index, status) in [
        ProfileStatus::Prospect,
        ProfileStatus::Suspended,
        ProfileStatus::Closed,
        ProfileStatus::Unknown,
    ]
    .into_iter()
    .enumerate()
    {
        let profile = CustomerProfile {
            status,
            ..customer(&format!("C{index}"), None)
        };
        let decision = decide_for(fixture, &profile, 1).await;
        assert_eq!(decision.outcome, Outcome::Declined, "{status:?}");
        assert_eq!(decision.reasons, vec![ReasonCode::CustomerInactive]);
        assert!(!decision.reserved);
        assert_eq!(exposure_of(fixture, &profile.customer_id).await, 0);
    }
}

async fn an_order_in_another_currency_than_the_limits_is_refused_unreserved(fixture: &Fixture) {
    let in_cny = customer("C1", Some("G1"));
    load(fixture, &in_cny).await;
    load_group(fixture, &group("G1", Some(300_000), 0)).await;
    let in_euro = AuthorizeInput {
        currency: "EUR".to_owned(),
        ..order("C1", Some("G1"), 1_000)
    };
    match fixture.cache.authorize(&in_euro).await {
        Err(ExposureError::CurrencyMismatch { limit_currency }) => {
            assert_eq!(limit_currency, "CNY")
        }
        other => panic!("expected a currency mismatch, got {other:?}"),
    }
    assert_eq!(exposure_of(fixture, "C1").await, 0);
    assert_eq!(group_exposure_of(fixture, "G1").await, 0);

    // Without any limit, the order's currency is taken as it is (and referred: no limit).
    let never_limited = CustomerProfile {
        limit: None,
        limit_currency: None,
        ..customer("C2", None)
    };
    let decision = decide_for(fixture, &never_limited, 1).await;
    assert_eq!(decision.reasons, vec![ReasonCode::NoValidLimit]);
}

async fn a_missing_or_expired_limit_is_referred(fixture: &Fixture) {
    let no_limit = CustomerProfile {
        limit: None,
        ..customer("C1", None)
    };
    let decision = decide_for(fixture, &no_limit, 1).await;
    assert_eq!(decision.outcome, Outcome::Referred);
    assert_eq!(decision.reasons, vec![ReasonCode::NoValidLimit]);
    assert_eq!(decision.limit, None);
    assert_eq!(decision.available_after, None);
    assert!(!decision.reserved);

    let expiring_now = CustomerProfile {
        limit: Some(Limit {
            amount: 100_000,
            valid_until: Some(NOW),
        }),
        ..customer("C2", None)
    };
    let decision = decide_for(fixture, &expiring_now, 1).await;
    assert_eq!(decision.outcome, Outcome::Referred);
    assert_eq!(decision.reasons, vec![ReasonCode::NoValidLimit]);
    assert_eq!(exposure_of(fixture, "C2").await, 0);

    let valid_one_more_second = CustomerProfile {
        limit: Some(Limit {
            amount: 100_000,
            valid_until: Some(NOW + 1),
        }),
        ..customer("C3", None)
    };
    let decision = decide_for(fixture, &valid_one_more_second, 1).await;
    assert_eq!(decision.outcome, Outcome::Approved);

    let open_ended = CustomerProfile {
        limit: Some(Limit {
            amount: 100_000,
            valid_until: None,
        }),
        ..customer("C4", None)
    };
    assert_eq!(
        decide_for(fixture, &open_ended, 1).await.outcome,
        Outcome::Approved
    );
}

async fn a_credit_block_is_referred(fixture: &Fixture) {
    let blocked = CustomerProfile {
        blocked: true,
        ..customer("C1", None)
    };
    let decision = decide_for(fixture, &blocked, 1).await;
    assert_eq!(decision.outcome, Outcome::Referred);
    assert_eq!(decision.reasons, vec![ReasonCode::CreditBlock]);
    assert_eq!(exposure_of(fixture, "C1").await, 0);
}

async fn overdue_days_beyond_tolerance_are_referred(fixture: &Fixture) {
    let at_tolerance = CustomerProfile {
        oldest_overdue_days: 15,
        ..customer("C1", None)
    };
    assert_eq!(
        decide_for(fixture, &at_tolerance, 1).await.outcome,
        Outcome::Approved
    );
    let beyond = CustomerProfile {
        oldest_overdue_days: 16,
        ..customer("C2", None)
    };
    let decision = decide_for(fixture, &beyond, 1).await;
    assert_eq!(decision.outcome, Outcome::Referred);
    assert_eq!(decision.reasons, vec![ReasonCode::Overdue]);
}

async fn a_missing_or_stale_required_rating_is_referred(fixture: &Fixture) {
    for (customer_id, valid_until, expected) in [
        ("C1", None, Outcome::Referred),
        ("C2", Some(NOW - 1), Outcome::Referred),
        ("C3", Some(NOW), Outcome::Referred),
        ("C4", Some(NOW + 1), Outcome::Approved),
    ] {
        let profile = CustomerProfile {
            rating_required: true,
            rating_valid_until: valid_until,
            ..customer(customer_id, None)
        };
        let decision = decide_for(fixture, &profile, 1).await;
        assert_eq!(decision.outcome, expected, "{customer_id}");
        if expected == Outcome::Referred {
            assert_eq!(decision.reasons, vec![ReasonCode::RatingStale]);
        }
    }
    // Not required: a missing rating does not matter.
    let not_required = customer("C5", None);
    assert_eq!(
        decide_for(fixture, &not_required, 1).await.outcome,
        Outcome::Approved
    );
}

async fn an_order_over_the_per_order_cap_is_referred(fixture: &Fixture) {
    load(
        fixture,
        &CustomerProfile {
            order_cap: Some(5_000),
            ..customer("C1", None)
        },
    )
    .await;
    let decision = decide(fixture, &order("C1", None, 5_001)).await;
    assert_eq!(decision.outcome, Outcome::Referred);
    assert_eq!(decision.reasons, vec![ReasonCode::OrderAmountLimit]);
    assert_eq!(exposure_of(fixture, "C1").await, 0);
    let at_cap = decide(fixture, &order("C1", None, 5_000)).await;
    assert_eq!(at_cap.outcome, Outcome::Approved);
    assert_eq!(exposure_of(fixture, "C1").await, 5_000);
}

async fn the_customer_tolerance_band_refers_at_its_edge_and_declines_beyond(fixture: &Fixture) {
    // Limit 100_000, exposure 30_000, 10 %: the band ends at 110_000.
    load(
        fixture,
        &CustomerProfile {
            exposure: 30_000,
            ..customer("C1", None)
        },
    )
    .await;
    let cases = [
        (70_000, Outcome::Approved, vec![]),
        (70_001, Outcome::Referred, vec![ReasonCode::LimitExceeded]),
        (80_000, Outcome::Referred, vec![ReasonCode::LimitExceeded]),
        (80_001, Outcome::Declined, vec![ReasonCode::LimitExceeded]),
    ];
    for (amount, outcome, reasons) in cases {
        let decision = decide(fixture, &what_if("C1", None, amount)).await;
        assert_eq!(decision.outcome, outcome, "amount {amount}");
        assert_eq!(decision.reasons, reasons, "amount {amount}");
        assert_eq!(decision.exposure_after, 30_000);
        assert_eq!(decision.available_after, Some(70_000));
    }
    // Reserving: only the approval moves exposure.
    for amount in [80_001, 80_000, 70_001] {
        let decision = decide(fixture, &order("C1", None, amount)).await;
        assert!(!decision.reserved);
        assert_eq!(exposure_of(fixture, "C1").await, 30_000);
    }
    let approved = decide(fixture, &order("C1", None, 70_000)).await;
    assert!(approved.reserved);
    assert_eq!(approved.available_after, Some(0));

    // A fractional band edge is floored: 999 × 1.0333 = 1032.27 -> 1032.
    load(
        fixture,
        &CustomerProfile {
            limit: Some(Limit {
                amount: 999,
                valid_until: None,
            }),
            tolerance_bps: 333,
            ..customer("C2", None)
        },
    )
    .await;
    assert_eq!(
        decide(fixture, &what_if("C2", None, 1032)).await.outcome,
        Outcome::Referred
    );
    assert_eq!(
        decide(fixture, &what_if("C2", None, 1033)).await.outcome,
        Outcome::Declined
    );
}

async fn the_group_tolerance_band_refers_at_its_edge_and_declines_beyond(fixture: &Fixture) {
    // Group limit 50_000, exposure 20_000, 5 %: the band ends at 52_500.
    load(fixture, &customer("C1", Some("G1"))).await;
    load_group(fixture, &group("G1", Some(50_000), 20_000)).await;
    for (amount, outcome) in [
        (30_000, Outcome::Approved),
        (30_001, Outcome::Referred),
        (32_500, Outcome::Referred),
        (32_501, Outcome::Declined),
    ] {
        let decision = decide(fixture, &what_if("C1", Some("G1"), amount)).await;
        assert_eq!(decision.outcome, outcome, "amount {amount}");
        if outcome != Outcome::Approved {
            assert_eq!(decision.reasons, vec![ReasonCode::GroupLimitExceeded]);
        }
        let position = decision.group.unwrap();
        assert_eq!(position.exposure_after, 20_000);
        assert_eq!(position.available_after, Some(30_000));
    }
    for amount in [32_501, 32_500] {
        assert!(
            !decide(fixture, &order("C1", Some("G1"), amount))
                .await
                .reserved
        );
    }
    assert_eq!(exposure_of(fixture, "C1").await, 0);
    assert_eq!(group_exposure_of(fixture, "G1").await, 20_000);
}

/// The band edge `floor(limit × (10000 + bps) / 10000)`, exactly.
fn band(limit: i64, tolerance_bps: u32) -> i64 {
    let band = (i128::from(limit) * (10_000 + i128::from(tolerance_bps))).div_euclid(10_000);
    i64::try_from(band).unwrap()
}

async fn the_band_is_exact_near_two_to_the_53(fixture: &Fixture) {
    // Limits whose products with the tolerance exceed 2^53, where a naive double computation
    // of the band would round.
    let cases: [(i64, u32); 4] = [
        (8_187_999_999_999_999, 1000),
        (1_234_567_890_123_457, 7),
        (MAX_EXACT_AMOUNT - 900_719_925_475, 1),
        (4_503_599_627_370_497, 9_999),
    ];
    for (index, (limit, tolerance_bps)) in cases.into_iter().enumerate() {
        let edge = band(limit, tolerance_bps);
        assert!(edge > limit && edge < MAX_EXACT_AMOUNT, "case {index}");
        let customer_id = format!("C{index}");
        load(
            fixture,
            &CustomerProfile {
                limit: Some(Limit {
                    amount: limit,
                    valid_until: None,
                }),
                tolerance_bps,
                exposure: limit - 1,
                ..customer(&customer_id, None)
            },
        )
        .await;
        let to_edge = edge - (limit - 1);
        for (amount, outcome) in [
            (1, Outcome::Approved),
            (2, Outcome::Referred),
            (to_edge, Outcome::Referred),
            (to_edge + 1, Outcome::Declined),
        ] {
            let decision = decide(fixture, &what_if(&customer_id, None, amount)).await;
            assert_eq!(decision.outcome, outcome, "case {index}, amount {amount}");
        }
        // Reserving exactly up to the limit keeps exposure exact at 2^53 scale.
        let decision = decide(fixture, &order(&customer_id, None, 1)).await;
        assert_eq!(decision.exposure_after, limit);
        assert_eq!(decision.available_after, Some(0));
        assert_eq!(exposure_of(fixture, &customer_id).await, limit);
    }
    // The largest exact limit with no room left: one more unit is refused, not rounded.
    load(
        fixture,
        &CustomerProfile {
            limit: Some(Limit {
                amount: MAX_EXACT_AMOUNT,
                valid_until: None,
            }),
            exposure: MAX_EXACT_AMOUNT - 1,
            ..customer("CMAX", None)
        },
    )
    .await;
    let decision = decide(fixture, &order("CMAX", None, 1)).await;
    assert_eq!(decision.exposure_after, MAX_EXACT_AMOUNT);
    let refused = fixture.cache.authorize(&order("CMAX", None, 1)).await;
    assert!(
        matches!(
            refused,
            Err(ExposureError::ExposureOutOfRange { level: Level::Customer, ref id }) if id == "CMAX"
        ),
        "{refused:?}"
    );
    assert_eq!(exposure_of(fixture, "CMAX").await, MAX_EXACT_AMOUNT);
}

async fn every_applicable_reason_is_reported_in_order(fixture: &Fixture) {
    load(
        fixture,
        &CustomerProfile {
            status: ProfileStatus::Suspended,
            blocked: true,
            oldest_overdue_days: 90,
            rating_required: true,
            rating_valid_until: Some(NOW - DAY),
            order_cap: Some(1_000),
            exposure: 95_000,
            ..customer("C1", Some("G1"))
        },
    )
    .await;
    load_group(fixture, &group("G1", Some(10_000), 9_000)).await;
    let decision = decide(fixture, &order("C1", Some("G1"), 6_000)).await;
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

    // Referred reasons only: the outcome is REFERRED, and NO_VALID_LIMIT replaces the limit
    // check (there is no limit to exceed).
    load(
        fixture,
        &CustomerProfile {
            limit: None,
            blocked: true,
            oldest_overdue_days: 16,
            rating_required: true,
            order_cap: Some(10),
            exposure: 1_000_000,
            ..customer("C2", None)
        },
    )
    .await;
    let decision = decide(fixture, &order("C2", None, 11)).await;
    assert_eq!(decision.outcome, Outcome::Referred);
    assert_eq!(
        decision.reasons,
        vec![
            ReasonCode::NoValidLimit,
            ReasonCode::CreditBlock,
            ReasonCode::Overdue,
            ReasonCode::RatingStale,
            ReasonCode::OrderAmountLimit,
        ]
    );
    assert_eq!(exposure_of(fixture, "C2").await, 1_000_000);
}

async fn what_if_never_changes_exposure(fixture: &Fixture) {
    load(
        fixture,
        &CustomerProfile {
            exposure: 10_000,
            ..customer("C1", Some("G1"))
        },
    )
    .await;
    load_group(fixture, &group("G1", Some(200_000), 50_000)).await;
    for amount in [1, 90_000, 95_000, 200_000] {
        let decision = decide(fixture, &what_if("C1", Some("G1"), amount)).await;
        assert!(!decision.reserved, "amount {amount}");
        assert_eq!(decision.exposure_after, 10_000);
        assert_eq!(decision.group.unwrap().exposure_after, 50_000);
    }
    assert_eq!(
        decide(fixture, &what_if("C1", Some("G1"), 1)).await.outcome,
        Outcome::Approved
    );
    assert_eq!(exposure_of(fixture, "C1").await, 10_000);
    assert_eq!(group_exposure_of(fixture, "G1").await, 50_000);
}

async fn referred_and_declined_orders_never_reserve(fixture: &Fixture) {
    load(
        fixture,
        &CustomerProfile {
            blocked: true,
            ..customer("C1", Some("G1"))
        },
    )
    .await;
    load(
        fixture,
        &CustomerProfile {
            status: ProfileStatus::Closed,
            ..customer("C2", Some("G1"))
        },
    )
    .await;
    load_group(fixture, &group("G1", Some(1_000_000), 0)).await;
    let referred = decide(fixture, &order("C1", Some("G1"), 10)).await;
    assert_eq!(referred.outcome, Outcome::Referred);
    assert!(!referred.reserved);
    assert_eq!(referred.exposure_after, 0);
    let declined = decide(fixture, &order("C2", Some("G1"), 10)).await;
    assert_eq!(declined.outcome, Outcome::Declined);
    assert!(!declined.reserved);
    assert_eq!(exposure_of(fixture, "C1").await, 0);
    assert_eq!(exposure_of(fixture, "C2").await, 0);
    assert_eq!(group_exposure_of(fixture, "G1").await, 0);
}

async fn the_group_limit_binds_before_the_customer_limits(fixture: &Fixture) {
    // Each member may use 100_000, the group only 120_000 together, with no tolerance.
    load(fixture, &customer("A", Some("G1"))).await;
    load(fixture, &customer("B", Some("G1"))).await;
    load_group(
        fixture,
        &GroupProfile {
            tolerance_bps: 0,
            ..group("G1", Some(120_000), 0)
        },
    )
    .await;
    assert!(
        decide(fixture, &order("A", Some("G1"), 70_000))
            .await
            .reserved
    );
    let b = decide(fixture, &order("B", Some("G1"), 50_000)).await;
    assert!(b.reserved);
    assert_eq!(b.group.as_ref().unwrap().available_after, Some(0));

    let over = decide(fixture, &order("B", Some("G1"), 1)).await;
    assert_eq!(over.outcome, Outcome::Declined);
    assert_eq!(over.reasons, vec![ReasonCode::GroupLimitExceeded]);
    assert_eq!(
        over.available_after,
        Some(50_000),
        "the customer has room left"
    );
    assert_eq!(exposure_of(fixture, "A").await, 70_000);
    assert_eq!(exposure_of(fixture, "B").await, 50_000);
    assert_eq!(group_exposure_of(fixture, "G1").await, 120_000);

    // A payment by A frees group room that B may use.
    fixture
        .cache
        .release("A", Some("G1"), 20_000, Fence::NONE)
        .await
        .unwrap();
    assert!(
        decide(fixture, &order("B", Some("G1"), 20_000))
            .await
            .reserved
    );
    assert_eq!(group_exposure_of(fixture, "G1").await, 120_000);
}

async fn a_group_without_a_valid_limit_does_not_constrain(fixture: &Fixture) {
    load(fixture, &customer("C1", Some("G1"))).await;
    load_group(fixture, &group("G1", None, 50_000_000)).await;
    let decision = decide(fixture, &order("C1", Some("G1"), 60_000)).await;
    assert_eq!(decision.outcome, Outcome::Approved);
    let position = decision.group.unwrap();
    assert_eq!(position.limit, None);
    assert_eq!(position.available_after, None);
    assert_eq!(position.exposure_after, 50_060_000);

    load(fixture, &customer("C2", Some("G2"))).await;
    load_group(
        fixture,
        &GroupProfile {
            limit: Some(Limit {
                amount: 1,
                valid_until: Some(NOW),
            }),
            ..group("G2", None, 1_000)
        },
    )
    .await;
    let decision = decide(fixture, &order("C2", Some("G2"), 60_000)).await;
    assert_eq!(decision.outcome, Outcome::Approved);
    assert_eq!(decision.group.unwrap().limit, None);
    assert_eq!(group_exposure_of(fixture, "G2").await, 61_000);
}

async fn the_cached_group_wins_over_the_callers_belief(fixture: &Fixture) {
    load(fixture, &customer("C1", Some("G1"))).await;
    load_group(fixture, &group("G1", Some(1_000_000), 0)).await;
    for belief in [None, Some("OTHER")] {
        let decision = decide(fixture, &order("C1", belief, 1_000)).await;
        assert_eq!(decision.group.unwrap().group_id, "G1");
    }
    assert_eq!(group_exposure_of(fixture, "G1").await, 2_000);
    assert_eq!(fixture.cache.get_group("OTHER").await.unwrap(), None);
    // Adjustments follow the cached group too.
    fixture
        .cache
        .release("C1", Some("OTHER"), 500, Fence::NONE)
        .await
        .unwrap();
    assert_eq!(group_exposure_of(fixture, "G1").await, 1_500);
}

async fn a_cold_customer_is_reported_and_nothing_written(fixture: &Fixture) {
    let before = fixture.stored_keys().await;
    let cold = fixture
        .cache
        .authorize(&order("C1", None, 1))
        .await
        .unwrap();
    assert_eq!(
        cold,
        AuthorizeOutcome::Cold {
            customer: true,
            group: false
        }
    );
    let both_cold = fixture
        .cache
        .authorize(&order("C1", Some("G1"), 1))
        .await
        .unwrap();
    assert_eq!(
        both_cold,
        AuthorizeOutcome::Cold {
            customer: true,
            group: true
        }
    );
    assert_eq!(fixture.stored_keys().await, before, "nothing written");
    assert_eq!(fixture.cache.get_customer("C1").await.unwrap(), None);

    load_group(fixture, &group("G1", Some(1_000), 0)).await;
    let only_customer = fixture
        .cache
        .authorize(&what_if("C1", Some("G1"), 1))
        .await
        .unwrap();
    assert_eq!(
        only_customer,
        AuthorizeOutcome::Cold {
            customer: true,
            group: false
        }
    );
    assert_eq!(group_exposure_of(fixture, "G1").await, 0);
    assert_eq!(fixture.cache.get_customer("C1").await.unwrap(), None);
}

async fn a_cold_group_is_reported_and_nothing_written(fixture: &Fixture) {
    load(fixture, &customer("C1", Some("G1"))).await;
    let before = fixture.stored_keys().await;
    // The caller's belief does not matter: the cached profile names G1, which is cold.
    for belief in [Some("G1"), None] {
        let outcome = fixture
            .cache
            .authorize(&order("C1", belief, 1))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            AuthorizeOutcome::Cold {
                customer: false,
                group: true
            }
        );
    }
    assert_eq!(fixture.stored_keys().await, before, "nothing written");
    assert_eq!(exposure_of(fixture, "C1").await, 0);
    assert_eq!(fixture.cache.get_group("G1").await.unwrap(), None);

    // Warm the group: the same order is decided and reserved.
    load_group(fixture, &group("G1", Some(1_000), 0)).await;
    assert!(decide(fixture, &order("C1", Some("G1"), 1)).await.reserved);
}

async fn fenced_adjustments_move_only_levels_cached_under_their_epoch(fixture: &Fixture) {
    // The builders cache the customer under epoch 11 and the group under epoch 5.
    load(
        fixture,
        &CustomerProfile {
            exposure: 1_000,
            ..customer("C1", Some("G1"))
        },
    )
    .await;
    load_group(fixture, &group("G1", Some(500_000), 1_000)).await;
    let fence = |customer_epoch, group_epoch| Fence {
        customer_epoch,
        group_epoch,
    };
    let applied = |customer_exposure, group_exposure| Adjustment::Applied {
        customer_exposure,
        group_exposure: Some(group_exposure),
    };
    let cache = &fixture.cache;
    assert_eq!(
        cache
            .release("C1", None, 100, fence(Some(11), Some(5)))
            .await
            .unwrap(),
        applied(900, 900)
    );
    // The customer was rebuilt since (epoch 12 expected): only the group moves.
    assert_eq!(
        cache
            .release("C1", None, 100, fence(Some(12), Some(5)))
            .await
            .unwrap(),
        applied(900, 800)
    );
    // The group was rebuilt since: only the customer moves.
    assert_eq!(
        cache
            .add("C1", None, 50, fence(Some(11), Some(4)))
            .await
            .unwrap(),
        applied(950, 800)
    );
    assert_eq!(
        cache
            .add("C1", None, 50, fence(None, Some(5)))
            .await
            .unwrap(),
        applied(1_000, 850)
    );
    assert_eq!(exposure_of(fixture, "C1").await, 1_000);
    assert_eq!(group_exposure_of(fixture, "G1").await, 850);
}

async fn release_and_add_move_both_levels(fixture: &Fixture) {
    load(
        fixture,
        &CustomerProfile {
            exposure: 30_000,
            ..customer("C1", Some("G1"))
        },
    )
    .await;
    load_group(fixture, &group("G1", Some(200_000), 80_000)).await;
    load(fixture, &customer("C2", None)).await;

    let released = fixture
        .cache
        .release("C1", Some("G1"), 10_000, Fence::NONE)
        .await
        .unwrap();
    assert_eq!(
        released,
        Adjustment::Applied {
            customer_exposure: 20_000,
            group_exposure: Some(70_000)
        }
    );
    let added = fixture
        .cache
        .add("C1", Some("G1"), 500_000, Fence::NONE)
        .await
        .unwrap();
    assert_eq!(
        added,
        Adjustment::Applied {
            customer_exposure: 520_000,
            group_exposure: Some(570_000)
        }
    );
    assert_eq!(exposure_of(fixture, "C1").await, 520_000);
    assert_eq!(group_exposure_of(fixture, "G1").await, 570_000);

    // A customer without a group; releasing more than the exposure is kept exact (a credit
    // balance), not clamped.
    let released = fixture
        .cache
        .release("C2", None, 1_000, Fence::NONE)
        .await
        .unwrap();
    assert_eq!(
        released,
        Adjustment::Applied {
            customer_exposure: -1_000,
            group_exposure: None
        }
    );
    let unchanged = fixture.cache.add("C2", None, 0, Fence::NONE).await.unwrap();
    assert_eq!(
        unchanged,
        Adjustment::Applied {
            customer_exposure: -1_000,
            group_exposure: None
        }
    );
    assert_eq!(group_exposure_of(fixture, "G1").await, 570_000);
}

async fn release_and_add_on_cold_profiles_write_nothing(fixture: &Fixture) {
    let before = fixture.stored_keys().await;
    assert_eq!(
        fixture
            .cache
            .release("C1", Some("G1"), 10, Fence::NONE)
            .await
            .unwrap(),
        Adjustment::Cold {
            customer: true,
            group: true
        }
    );
    assert_eq!(
        fixture
            .cache
            .add("C1", None, 10, Fence::NONE)
            .await
            .unwrap(),
        Adjustment::Cold {
            customer: true,
            group: false
        }
    );
    assert_eq!(
        fixture.stored_keys().await,
        before,
        "no half-profile created"
    );
    assert_eq!(fixture.cache.get_customer("C1").await.unwrap(), None);
    assert_eq!(fixture.cache.get_group("G1").await.unwrap(), None);

    // Customer warm, group cold: neither level moves.
    load(
        fixture,
        &CustomerProfile {
            exposure: 700,
            ..customer("C1", Some("G1"))
        },
    )
    .await;
    let before = fixture.stored_keys().await;
    for result in [
        fixture.cache.add("C1", Some("G1"), 10, Fence::NONE).await,
        fixture
            .cache
            .release("C1", Some("G1"), 10, Fence::NONE)
            .await,
    ] {
        assert_eq!(
            result.unwrap(),
            Adjustment::Cold {
                customer: false,
                group: true
            }
        );
    }
    assert_eq!(fixture.stored_keys().await, before);
    assert_eq!(exposure_of(fixture, "C1").await, 700);
    assert_eq!(fixture.cache.get_group("G1").await.unwrap(), None);
}

async fn loading_overwrites_everything(fixture: &Fixture) {
    let first = CustomerProfile {
        order_cap: Some(10_000),
        rating_required: true,
        rating_valid_until: Some(NOW + DAY),
        blocked: true,
        cover: Cover {
            secured: 5,
            extends_capacity: true,
            secured_valid_until: Some(NOW),
            contingent: 7,
        },
        ..customer("C1", Some("G1"))
    };
    load(fixture, &first).await;
    load_group(fixture, &group("G1", Some(300_000), 1_000)).await;
    assert_eq!(fixture.cache.get_customer("C1").await.unwrap(), Some(first));

    // A rebuild: every field changes, optional ones disappear, exposure and epoch included.
    let rebuilt = CustomerProfile {
        customer_id: "C1".to_owned(),
        group_id: Some("G1".to_owned()),
        status: ProfileStatus::Active,
        limit: Some(Limit {
            amount: 250_000,
            valid_until: None,
        }),
        limit_currency: None,
        blocked: false,
        oldest_overdue_days: 3,
        overdue_tolerance_days: 5,
        rating_required: false,
        rating_valid_until: None,
        order_cap: None,
        tolerance_bps: 0,
        cover: Cover::default(),
        exposure: 42_000,
        epoch: 12,
    };
    load(fixture, &rebuilt).await;
    assert_eq!(
        fixture.cache.get_customer("C1").await.unwrap(),
        Some(rebuilt)
    );
    let rebuilt_group = GroupProfile {
        group_id: "G1".to_owned(),
        limit: Some(Limit {
            amount: 400_000,
            valid_until: Some(NOW + 30 * DAY),
        }),
        tolerance_bps: 250,
        exposure: 99_000,
        epoch: 6,
    };
    load_group(fixture, &rebuilt_group).await;
    assert_eq!(
        fixture.cache.get_group("G1").await.unwrap(),
        Some(rebuilt_group)
    );

    let decision = decide(fixture, &order("C1", Some("G1"), 20_000)).await;
    assert_eq!(decision.outcome, Outcome::Approved);
    assert_eq!(decision.exposure_after, 62_000);
    assert_eq!(decision.epoch, 12);
    let position = decision.group.unwrap();
    assert_eq!(position.exposure_after, 119_000);
    assert_eq!(position.epoch, 6);
}

async fn a_customer_moving_group_is_found_under_its_new_group(fixture: &Fixture) {
    load(fixture, &customer("C1", Some("G1"))).await;
    load_group(fixture, &group("G1", Some(1_000_000), 0)).await;
    load_group(fixture, &group("G2", Some(1_000_000), 0)).await;
    let keys_in_g1 = fixture.stored_keys().await;

    fixture.cache.evict_customer("C1").await.unwrap();
    load(
        fixture,
        &CustomerProfile {
            exposure: 5_000,
            ..customer("C1", Some("G2"))
        },
    )
    .await;
    let decision = decide(fixture, &order("C1", Some("G2"), 1_000)).await;
    assert_eq!(decision.group.unwrap().group_id, "G2");
    assert_eq!(group_exposure_of(fixture, "G2").await, 1_000);
    assert_eq!(group_exposure_of(fixture, "G1").await, 0);

    // Loading without evicting first also leaves no stale copy behind.
    load(fixture, &customer("C1", None)).await;
    let decision = decide(fixture, &order("C1", None, 1_000)).await;
    assert_eq!(decision.group, None);
    assert_eq!(
        fixture
            .cache
            .get_customer("C1")
            .await
            .unwrap()
            .unwrap()
            .group_id,
        None
    );
    if let (Some(keys_in_g1), Some(keys_now)) = (keys_in_g1, fixture.stored_keys().await) {
        // Still one customer hash, one index and two group hashes, and now the count of the
        // customer's evictions.
        assert_eq!(keys_now.len(), keys_in_g1.len() + 1);
        let prefix = &fixture.prefix;
        assert!(keys_now.contains(&format!("{prefix}{{C1}}:customer:C1")));
        assert!(!keys_now.contains(&format!("{prefix}{{G1}}:customer:C1")));
        assert!(!keys_now.contains(&format!("{prefix}{{G2}}:customer:C1")));
    }
}

async fn updates_change_profile_fields_but_not_exposure(fixture: &Fixture) {
    let original = CustomerProfile {
        exposure: 7_000,
        order_cap: Some(9_000),
        rating_valid_until: Some(NOW + DAY),
        ..customer("C1", Some("G1"))
    };
    load(fixture, &original).await;
    load_group(fixture, &group("G1", Some(500_000), 7_000)).await;

    let update = CustomerUpdate {
        status: Some(ProfileStatus::Suspended),
        limit: Some(Some(Limit {
            amount: 55_000,
            valid_until: None,
        })),
        blocked: Some(true),
        oldest_overdue_days: Some(40),
        overdue_tolerance_days: Some(30),
        rating_required: Some(true),
        rating_valid_until: Some(None),
        order_cap: Some(None),
        tolerance_bps: Some(2_000),
    };
    assert_eq!(
        fixture.cache.update_customer("C1", &update).await.unwrap(),
        UpdateOutcome::Updated
    );
    let expected = CustomerProfile {
        status: ProfileStatus::Suspended,
        limit: Some(Limit {
            amount: 55_000,
            valid_until: None,
        }),
        blocked: true,
        oldest_overdue_days: 40,
        overdue_tolerance_days: 30,
        rating_required: true,
        rating_valid_until: None,
        order_cap: None,
        tolerance_bps: 2_000,
        ..original.clone()
    };
    assert_eq!(
        fixture.cache.get_customer("C1").await.unwrap(),
        Some(expected.clone())
    );
    let decision = decide(fixture, &order("C1", Some("G1"), 1)).await;
    assert_eq!(
        decision.reasons,
        vec![
            ReasonCode::CustomerInactive,
            ReasonCode::CreditBlock,
            ReasonCode::Overdue,
            ReasonCode::RatingStale,
        ]
    );

    // A partial update touches only its fields; clearing the limit removes it.
    let clear_limit = CustomerUpdate {
        status: Some(ProfileStatus::Active),
        limit: Some(None),
        ..CustomerUpdate::default()
    };
    fixture
        .cache
        .update_customer("C1", &clear_limit)
        .await
        .unwrap();
    assert_eq!(
        fixture.cache.get_customer("C1").await.unwrap(),
        Some(CustomerProfile {
            status: ProfileStatus::Active,
            limit: None,
            ..expected
        })
    );

    let group_update = GroupUpdate {
        limit: Some(Some(Limit {
            amount: 8_000,
            valid_until: Some(NOW + DAY),
        })),
        tolerance_bps: Some(0),
    };
    assert_eq!(
        fixture
            .cache
            .update_group("G1", &group_update)
            .await
            .unwrap(),
        UpdateOutcome::Updated
    );
    assert_eq!(
        fixture.cache.get_group("G1").await.unwrap(),
        Some(GroupProfile {
            limit: Some(Limit {
                amount: 8_000,
                valid_until: Some(NOW + DAY),
            }),
            tolerance_bps: 0,
            ..group("G1", Some(500_000), 7_000)
        })
    );

    // Cold profiles stay cold: nothing is created.
    let before = fixture.stored_keys().await;
    assert_eq!(
        fixture.cache.update_customer("C9", &update).await.unwrap(),
        UpdateOutcome::NotCached
    );
    assert_eq!(
        fixture
            .cache
            .update_group("G9", &group_update)
            .await
            .unwrap(),
        UpdateOutcome::NotCached
    );
    assert_eq!(fixture.stored_keys().await, before);
    assert_eq!(fixture.cache.get_customer("C9").await.unwrap(), None);
    assert_eq!(fixture.cache.get_group("G9").await.unwrap(), None);
}

async fn evicting_all_makes_every_profile_cold_and_leaves_other_keys(fixture: &Fixture) {
    for index in 0..30 {
        let group_id = format!("G{}", index % 3);
        load(fixture, &customer(&format!("C{index}"), Some(&group_id))).await;
        load_group(fixture, &group(&group_id, Some(500_000), 0)).await;
    }
    load(fixture, &customer("LONE", None)).await;
    // Another user of the same prefix (the event stream lives there too) is left alone.
    if let Some(redis) = &fixture.redis {
        let _: () = redis::cmd("SET")
            .arg(format!("{}events-marker", fixture.prefix))
            .arg("kept")
            .query_async(&mut redis.connection())
            .await
            .unwrap();
    }
    fixture.cache.evict_all().await.unwrap();
    for customer_id in ["C0", "C17", "LONE"] {
        assert_eq!(fixture.cache.get_customer(customer_id).await.unwrap(), None);
        assert!(matches!(
            fixture
                .cache
                .authorize(&order(customer_id, None, 1))
                .await
                .unwrap(),
            AuthorizeOutcome::Cold { customer: true, .. }
        ));
    }
    assert_eq!(fixture.cache.get_group("G1").await.unwrap(), None);
    // Besides, only the count of evictions of everything (see `customer_generation`).
    if let Some(keys) = fixture.stored_keys().await {
        assert_eq!(
            keys,
            vec![
                format!("{}events-marker", fixture.prefix),
                format!("{}generation:all", fixture.prefix)
            ]
        );
    }
}

async fn evicted_profiles_are_cold(fixture: &Fixture) {
    load(fixture, &customer("C1", Some("G1"))).await;
    load_group(fixture, &group("G1", Some(500_000), 0)).await;
    fixture.cache.evict_group("G1").await.unwrap();
    assert_eq!(
        fixture
            .cache
            .authorize(&order("C1", None, 1))
            .await
            .unwrap(),
        AuthorizeOutcome::Cold {
            customer: false,
            group: true
        }
    );
    fixture.cache.evict_customer("C1").await.unwrap();
    assert_eq!(
        fixture
            .cache
            .authorize(&order("C1", Some("G1"), 1))
            .await
            .unwrap(),
        AuthorizeOutcome::Cold {
            customer: true,
            group: true
        }
    );
    assert_eq!(fixture.cache.get_customer("C1").await.unwrap(), None);
    assert_eq!(fixture.cache.get_group("G1").await.unwrap(), None);
    // Nothing is left but the counts of evictions.
    if let Some(keys) = fixture.stored_keys().await {
        assert_eq!(
            keys,
            vec![
                format!("{}generation:customer:C1", fixture.prefix),
                format!("{}generation:group:G1", fixture.prefix)
            ]
        );
    }
    // Evicting what is not cached is fine.
    fixture.cache.evict_customer("C1").await.unwrap();
    fixture.cache.evict_group("G1").await.unwrap();
}

/// A rebuild compares the generation it read before the store with the one after its load
/// and drops its load when they differ: so every eviction must move it on, and nothing else
/// may (or every rebuild beside a busy customer would be dropped).
async fn only_evictions_move_a_customers_generation(fixture: &Fixture) {
    let generation = |customer_id: &'static str| async move {
        fixture
            .cache
            .customer_generation(customer_id)
            .await
            .unwrap()
    };
    let start = generation("C1").await;
    load(fixture, &customer("C1", Some("G1"))).await;
    load_group(fixture, &group("G1", Some(500_000), 0)).await;
    decide(fixture, &order("C1", Some("G1"), 100)).await;
    fixture
        .cache
        .update_customer("C1", &CustomerUpdate::default())
        .await
        .unwrap();
    assert_eq!(generation("C1").await, start, "loading, deciding, updating");

    fixture.cache.evict_customer("C1").await.unwrap();
    let evicted = generation("C1").await;
    assert_ne!(evicted, start, "evicting the customer");
    fixture.cache.evict_customer("C2").await.unwrap();
    fixture.cache.evict_group("G1").await.unwrap();
    assert_eq!(
        generation("C1").await,
        evicted,
        "evicting another customer or the group"
    );
    fixture.cache.evict_all().await.unwrap();
    assert_ne!(generation("C1").await, evicted, "evicting everything");
}

async fn only_evictions_move_a_groups_generation(fixture: &Fixture) {
    let generation = |group_id: &'static str| async move {
        fixture.cache.group_generation(group_id).await.unwrap()
    };
    let start = generation("G1").await;
    load(fixture, &customer("C1", Some("G1"))).await;
    load_group(fixture, &group("G1", Some(500_000), 0)).await;
    decide(fixture, &order("C1", Some("G1"), 100)).await;
    fixture.cache.evict_customer("C1").await.unwrap();
    fixture.cache.evict_group("G2").await.unwrap();
    assert_eq!(
        generation("G1").await,
        start,
        "loading, deciding, other evictions"
    );

    fixture.cache.evict_group("G1").await.unwrap();
    let evicted = generation("G1").await;
    assert_ne!(evicted, start, "evicting the group");
    fixture.cache.evict_all().await.unwrap();
    assert_ne!(generation("G1").await, evicted, "evicting everything");
}

async fn out_of_range_amounts_and_bad_ids_are_refused(fixture: &Fixture) {
    load(fixture, &customer("C1", Some("G1"))).await;
    load_group(fixture, &group("G1", Some(1_000), MAX_EXACT_AMOUNT - 10)).await;
    for amount in [0, -1, MAX_EXACT_AMOUNT + 1, i64::MAX] {
        let refused = fixture.cache.authorize(&order("C1", None, amount)).await;
        assert!(
            matches!(
                refused,
                Err(ExposureError::AmountOutOfRange {
                    field: "amount",
                    ..
                })
            ),
            "{amount}: {refused:?}"
        );
    }
    for amount in [-1, MAX_EXACT_AMOUNT + 1] {
        assert!(matches!(
            fixture.cache.add("C1", None, amount, Fence::NONE).await,
            Err(ExposureError::AmountOutOfRange { .. })
        ));
        assert!(matches!(
            fixture.cache.release("C1", None, amount, Fence::NONE).await,
            Err(ExposureError::AmountOutOfRange { .. })
        ));
    }
    // The group's exposure would leave the exact range: refused at both levels, even for a
    // what-if, and nothing moves.
    for input in [order("C1", None, 11), what_if("C1", None, 11)] {
        let refused = fixture.cache.authorize(&input).await;
        assert!(
            matches!(
                refused,
                Err(ExposureError::ExposureOutOfRange { level: Level::Group, ref id }) if id == "G1"
            ),
            "{refused:?}"
        );
    }
    assert!(matches!(
        fixture.cache.add("C1", None, 11, Fence::NONE).await,
        Err(ExposureError::ExposureOutOfRange {
            level: Level::Group,
            ..
        })
    ));
    assert_eq!(exposure_of(fixture, "C1").await, 0);
    assert_eq!(
        group_exposure_of(fixture, "G1").await,
        MAX_EXACT_AMOUNT - 10
    );
    // Exactly at the edge is still fine (declined by the group limit, but computed).
    let decision = decide(fixture, &order("C1", None, 10)).await;
    assert_eq!(decision.outcome, Outcome::Declined);
    assert!(matches!(
        fixture.cache.add("C1", None, 10, Fence::NONE).await,
        Ok(Adjustment::Applied { .. })
    ));
    assert_eq!(group_exposure_of(fixture, "G1").await, MAX_EXACT_AMOUNT);
    // Releasing down to -(2^53 - 1) is exact; one unit further is refused.
    assert_eq!(
        fixture
            .cache
            .release("C1", None, MAX_EXACT_AMOUNT, Fence::NONE)
            .await
            .unwrap(),
        Adjustment::Applied {
            customer_exposure: 10 - MAX_EXACT_AMOUNT,
            group_exposure: Some(0)
        }
    );
    assert_eq!(
        fixture
            .cache
            .release("C1", None, 10, Fence::NONE)
            .await
            .unwrap(),
        Adjustment::Applied {
            customer_exposure: -MAX_EXACT_AMOUNT,
            group_exposure: Some(-10)
        }
    );
    assert!(matches!(
        fixture.cache.release("C1", None, 1, Fence::NONE).await,
        Err(ExposureError::ExposureOutOfRange {
            level: Level::Customer,
            ..
        })
    ));

    // Profiles whose amounts could not be computed exactly are not cached.
    let too_large_limit = CustomerProfile {
        limit: Some(Limit {
            amount: MAX_EXACT_AMOUNT + 1,
            valid_until: None,
        }),
        ..customer("C2", None)
    };
    assert!(matches!(
        fixture.cache.load_customer(&too_large_limit).await,
        Err(ExposureError::AmountOutOfRange {
            field: "limit.amount",
            ..
        })
    ));
    let negative_cap = CustomerProfile {
        order_cap: Some(-1),
        ..customer("C2", None)
    };
    assert!(fixture.cache.load_customer(&negative_cap).await.is_err());
    assert!(matches!(
        fixture
            .cache
            .load_group(&group("G2", None, -MAX_EXACT_AMOUNT - 1))
            .await,
        Err(ExposureError::AmountOutOfRange {
            field: "exposure",
            ..
        })
    ));
    let huge_time = AuthorizeInput {
        now: i64::MAX,
        ..order("C1", None, 1)
    };
    assert!(matches!(
        fixture.cache.authorize(&huge_time).await,
        Err(ExposureError::AmountOutOfRange { field: "now", .. })
    ));
    assert_eq!(fixture.cache.get_customer("C2").await.unwrap(), None);
    assert_eq!(fixture.cache.get_group("G2").await.unwrap(), None);

    // Ids that would break the shared hash tag.
    for bad in ["", "A{B", "A}B"] {
        assert!(matches!(
            fixture.cache.authorize(&order(bad, None, 1)).await,
            Err(ExposureError::InvalidId {
                field: "customer_id",
                ..
            })
        ));
        assert!(matches!(
            fixture
                .cache
                .load_customer(&customer("C3", Some(bad)))
                .await,
            Err(ExposureError::InvalidId {
                field: "group_id",
                ..
            })
        ));
    }
}

// ---- concurrency -----------------------------------------------------------------------

/// SplitMix64: a tiny deterministic generator, so a failing run can be replayed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high` (slightly biased, which no test here cares about).
    fn between(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from(high - low + 1).unwrap();
        low + i64::try_from(self.next() % span).unwrap()
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const TASKS: usize = 64;
const ORDERS_PER_TASK: usize = 16;

/// C1 in G1 with open-ended limits, already carrying exposure at both levels; returns the
/// customer's and the group's exposure before the orders.
async fn load_busy_customer(
    fixture: &Fixture,
    customer_limit: i64,
    group_limit: i64,
) -> (i64, i64) {
    let customer_start = 5_000;
    let group_start = 12_000;
    load(
        fixture,
        &CustomerProfile {
            limit: Some(Limit {
                amount: customer_limit,
                valid_until: None,
            }),
            exposure: customer_start,
            ..customer("C1", Some("G1"))
        },
    )
    .await;
    load_group(fixture, &group("G1", Some(group_limit), group_start)).await;
    (customer_start, group_start)
}

/// 64 tasks send 16 orders each (1..=2_000 minor units, every fourth a what-if) to one customer
/// in one group, offering far more than the limits allow. Afterwards the approved total fits
/// both limits and the cached exposure at both levels is exactly the start plus that total.
async fn concurrent_orders(fixture: &Fixture, customer_limit: i64, group_limit: i64) {
    let (customer_start, group_start) =
        load_busy_customer(fixture, customer_limit, group_limit).await;

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let cache = fixture.cache.clone();
        tasks.spawn(async move {
            let mut random = SplitMix(task as u64);
            let mut approved = 0_i64;
            let mut not_approved = 0_usize;
            for _ in 0..ORDERS_PER_TASK {
                let amount = random.between(1, 2_000);
                let reserve = !random.chance(25);
                let input = AuthorizeInput {
                    reserve,
                    ..order("C1", Some("G1"), amount)
                };
                let AuthorizeOutcome::Decided(decision) = cache.authorize(&input).await.unwrap()
                else {
                    panic!("the customer and group are warm");
                };
                assert_eq!(
                    decision.reserved,
                    reserve && decision.outcome == Outcome::Approved
                );
                if decision.reserved {
                    approved += amount;
                } else if decision.outcome != Outcome::Approved {
                    not_approved += 1;
                }
            }
            (approved, not_approved)
        });
    }
    let mut approved_total = 0_i64;
    let mut not_approved_total = 0_usize;
    while let Some(result) = tasks.join_next().await {
        let (approved, not_approved) = result.unwrap();
        approved_total += approved;
        not_approved_total += not_approved;
    }

    assert!(approved_total > 0, "some orders fit");
    assert!(not_approved_total > 0, "the limits were offered far more");
    assert!(customer_start + approved_total <= customer_limit);
    assert!(group_start + approved_total <= group_limit);
    assert!(approved_total <= customer_limit && approved_total <= group_limit);
    assert_eq!(
        exposure_of(fixture, "C1").await,
        customer_start + approved_total
    );
    assert_eq!(
        group_exposure_of(fixture, "G1").await,
        group_start + approved_total
    );
}

async fn concurrent_authorizations_respect_the_customer_limit(fixture: &Fixture) {
    concurrent_orders(fixture, 300_000, 5_000_000).await;
}

async fn concurrent_authorizations_respect_the_group_limit(fixture: &Fixture) {
    concurrent_orders(fixture, 5_000_000, 250_000).await;
}

/// 64 orders released at once on one customer (on Redis they are decided together, in script
/// calls of several orders): every order gets its own outcome, and the approvals form one
/// sequence in which each saw exactly the reservations before it, at both levels.
async fn simultaneous_orders_are_decided_one_after_another(fixture: &Fixture) {
    let (customer_start, group_start) = load_busy_customer(fixture, 60_000, 5_000_000).await;

    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let cache = fixture.cache.clone();
        let start = start.clone();
        tasks.spawn(async move {
            let amount = 1_000 + i64::try_from(task).unwrap() * 37;
            let input = AuthorizeInput {
                // Every eighth order is in another currency, every fourth a what-if.
                currency: if task % 8 == 7 { "USD" } else { "CNY" }.to_owned(),
                reserve: task % 4 != 3,
                ..order("C1", Some("G1"), amount)
            };
            start.wait().await;
            (input.clone(), cache.authorize(&input).await)
        });
    }
    let mut approved = Vec::new();
    let mut seen_exposures = Vec::new();
    let mut not_approved = 0;
    while let Some(result) = tasks.join_next().await {
        let (input, outcome) = result.unwrap();
        if input.currency == "USD" {
            assert!(
                matches!(outcome, Err(ExposureError::CurrencyMismatch { ref limit_currency }) if limit_currency == "CNY"),
                "{outcome:?}"
            );
            continue;
        }
        let Ok(AuthorizeOutcome::Decided(decision)) = outcome else {
            panic!("the customer and group are warm: {outcome:?}");
        };
        let group = decision.group.as_ref().expect("the customer is in G1");
        assert_eq!(
            group.exposure_after - group_start,
            decision.exposure_after - customer_start,
            "both levels moved together"
        );
        assert_eq!(
            decision.reserved,
            input.reserve && decision.outcome == Outcome::Approved
        );
        if decision.reserved {
            approved.push((decision.exposure_after, input.amount));
        } else {
            if decision.outcome != Outcome::Approved {
                not_approved += 1;
            }
            seen_exposures.push(decision.exposure_after);
        }
    }
    assert!(not_approved > 0, "the limit was offered more than it holds");
    approved.sort_unstable();
    let mut exposure = customer_start;
    let mut states = vec![exposure];
    for (exposure_after, amount) in &approved {
        assert_eq!(
            *exposure_after,
            exposure + amount,
            "each approval saw exactly the ones before it: {approved:?}"
        );
        exposure = *exposure_after;
        states.push(exposure);
    }
    assert!(exposure <= 60_000);
    for seen in seen_exposures {
        assert!(
            states.contains(&seen),
            "an unreserved order saw {seen}, not a state of the sequence {states:?}"
        );
    }
    assert_eq!(exposure_of(fixture, "C1").await, exposure);
    assert_eq!(
        group_exposure_of(fixture, "G1").await,
        group_start + (exposure - customer_start)
    );
}

// ---- Redis script against the Rust rules -------------------------------------------------

/// A random profile, group and order, with amounts steered to the interesting edges: exactly
/// at the limit, one over, exactly at the band, one over, and anywhere up to 2^53.
fn random_case(
    random: &mut SplitMix,
    index: usize,
) -> (CustomerProfile, Option<GroupProfile>, AuthorizeInput) {
    fn some_limit(random: &mut SplitMix) -> Option<Limit> {
        if random.chance(10) {
            return None;
        }
        let amount = if random.chance(30) {
            random.between(0, MAX_EXACT_AMOUNT)
        } else {
            random.between(0, 1_000_000)
        };
        let valid_until = match random.between(0, 4) {
            0 => Some(NOW - 1),
            1 => Some(NOW),
            2 => Some(NOW + 1),
            3 => Some(i64::MAX),
            _ => None,
        };
        Some(Limit {
            amount,
            valid_until,
        })
    }
    fn some_tolerance(random: &mut SplitMix) -> u32 {
        match random.between(0, 5) {
            0 => 0,
            1 => 1,
            2 => 333,
            3 => 1000,
            4 => 9_999,
            _ => u32::try_from(random.between(0, 50_000)).unwrap(),
        }
    }
    fn some_exposure(random: &mut SplitMix, limit: Option<Limit>) -> i64 {
        let ceiling = limit.map_or(1_000_000, |limit| limit.amount);
        random.between(-1_000, ceiling).min(MAX_EXACT_AMOUNT / 2)
    }

    let group_id = format!("G{index}");
    let group = random.chance(60).then(|| {
        let limit = some_limit(random);
        GroupProfile {
            group_id: group_id.clone(),
            limit,
            tolerance_bps: some_tolerance(random),
            exposure: some_exposure(random, limit),
            epoch: random.next(),
        }
    });
    let limit = some_limit(random);
    let status = if random.chance(85) {
        ProfileStatus::Active
    } else {
        [
            ProfileStatus::Prospect,
            ProfileStatus::Suspended,
            ProfileStatus::Closed,
            ProfileStatus::Unknown,
        ][usize::try_from(random.between(0, 3)).unwrap()]
    };
    let rating_valid_until = match random.between(0, 3) {
        0 => None,
        1 => Some(NOW),
        2 => Some(NOW + 1),
        _ => Some(NOW - DAY),
    };
    let customer = CustomerProfile {
        customer_id: format!("C{index}"),
        group_id: group.as_ref().map(|group| group.group_id.clone()),
        status,
        limit,
        limit_currency: match random.between(0, 9) {
            0 => None,
            1 => Some("EUR".to_owned()),
            _ => Some("CNY".to_owned()),
        },
        blocked: random.chance(10),
        oldest_overdue_days: u32::try_from(random.between(0, 40)).unwrap(),
        overdue_tolerance_days: u32::try_from(random.between(0, 40)).unwrap(),
        rating_required: random.chance(30),
        rating_valid_until,
        order_cap: random.chance(20).then(|| random.between(0, 500_000)),
        tolerance_bps: some_tolerance(random),
        cover: Cover::default(),
        exposure: some_exposure(random, limit),
        epoch: random.next(),
    };
    // Security and guarantees given, on limits far below 2^53 (the cache is exact while
    // limit + security stays within it, as every real limit does).
    let modest = |amount: i64| amount.abs() < 1 << 40;
    let customer = if customer.limit.is_none_or(|limit| modest(limit.amount))
        && modest(customer.exposure)
        && random.chance(40)
    {
        CustomerProfile {
            cover: Cover {
                secured: random.between(0, 200_000),
                extends_capacity: random.chance(70),
                secured_valid_until: match random.between(0, 3) {
                    0 => Some(NOW),
                    1 => Some(NOW + 1),
                    _ => None,
                },
                contingent: if random.chance(30) {
                    random.between(0, 100_000)
                } else {
                    0
                },
            },
            ..customer
        }
    } else {
        customer
    };
    // Steer the amount to an edge of the customer's or the group's limit.
    let (edge_exposure, edge_limit, edge_tolerance) = match (&group, random.chance(50)) {
        (Some(group), true) => (group.exposure, group.limit, group.tolerance_bps),
        _ => (customer.exposure, customer.limit, customer.tolerance_bps),
    };
    let edge = edge_limit.map_or(1_000, |limit| limit.amount);
    let amount = match random.between(0, 5) {
        0 => edge - edge_exposure,
        1 => edge - edge_exposure + 1,
        2 => band(edge, edge_tolerance).min(MAX_EXACT_AMOUNT) - edge_exposure,
        3 => band(edge, edge_tolerance).min(MAX_EXACT_AMOUNT) - edge_exposure + 1,
        4 => random.between(1, MAX_EXACT_AMOUNT),
        _ => random.between(1, 5_000),
    }
    .clamp(1, MAX_EXACT_AMOUNT);
    let input = AuthorizeInput {
        customer_id: customer.customer_id.clone(),
        group_id: customer.group_id.clone(),
        amount,
        currency: if random.chance(10) { "EUR" } else { "CNY" }.to_owned(),
        now: NOW,
        reserve: random.chance(50),
    };
    (customer, group, input)
}

fn error_kind(error: &ExposureError) -> String {
    match error {
        ExposureError::ExposureOutOfRange { level, id } => format!("range {level} {id}"),
        other => format!("{other}"),
    }
}

/// The Lua script and `evaluate` (through the in-process cache) give the same decision, the
/// same errors and leave the same exposure, on 1500 random cases around every edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_script_and_in_process_cache_agree_with_evaluate_on_random_cases() {
    on_redis(|fixture| async move {
        let in_process = InProcessExposureCache::new();
        let mut random = SplitMix(20_250_601);
        for index in 0..1_500 {
            let (customer, group, input) = random_case(&mut random, index);
            for cache in [fixture.cache.as_ref(), &in_process as &dyn ExposureCache] {
                cache.load_customer(&customer).await.unwrap();
                if let Some(group) = &group {
                    cache.load_group(group).await.unwrap();
                }
            }
            let on_redis = fixture.cache.authorize(&input).await;
            let in_memory = in_process.authorize(&input).await;
            match (&on_redis, &in_memory) {
                (Ok(on_redis), Ok(in_memory)) => {
                    assert_eq!(
                        on_redis, in_memory,
                        "case {index}: {customer:?} {group:?} {input:?}"
                    );
                    assert_eq!(
                        on_redis,
                        &AuthorizeOutcome::Decided(evaluate(&customer, group.as_ref(), &input)),
                        "case {index}"
                    );
                }
                (Err(on_redis), Err(in_memory)) => {
                    assert_eq!(error_kind(on_redis), error_kind(in_memory), "case {index}");
                }
                _ => panic!("case {index} differs: {on_redis:?} vs {in_memory:?}"),
            }
            assert_eq!(
                fixture
                    .cache
                    .get_customer(&customer.customer_id)
                    .await
                    .unwrap(),
                in_process
                    .get_customer(&customer.customer_id)
                    .await
                    .unwrap(),
                "case {index}"
            );
            if let Some(group) = &group {
                assert_eq!(
                    fixture.cache.get_group(&group.group_id).await.unwrap(),
                    in_process.get_group(&group.group_id).await.unwrap(),
                    "case {index}"
                );
            }
        }
    })
    .await;
}

// ---- Redis layout ------------------------------------------------------------------------

/// The documented key layout: one hash tag per customer-and-group, hashes with plain fields,
/// and the tag index.
#[tokio::test]
async fn redis_keys_share_the_group_hash_tag_and_hold_plain_hash_fields() {
    on_redis(|fixture| async move {
        let redis = fixture.redis.clone().unwrap();
        let prefix = fixture.prefix.clone();
        load(&fixture, &customer("C1", Some("G1"))).await;
        load(&fixture, &customer("C2", None)).await;
        load_group(&fixture, &group("G1", Some(1_000), 0)).await;
        assert_eq!(
            fixture.stored_keys().await.unwrap(),
            vec![
                format!("{prefix}customer-tag:C1"),
                format!("{prefix}customer-tag:C2"),
                format!("{prefix}{{C2}}:customer:C2"),
                format!("{prefix}{{G1}}:customer:C1"),
                format!("{prefix}{{G1}}:group:G1"),
            ]
        );
        let mut connection = redis.connection();
        let tag: String = redis::cmd("GET")
            .arg(format!("{prefix}customer-tag:C1"))
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(tag, "G1");
        let fields: std::collections::BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{prefix}{{G1}}:customer:C1"))
            .query_async(&mut connection)
            .await
            .unwrap();
        let expected: std::collections::BTreeMap<String, String> = [
            ("customer_id", "C1"),
            ("group_id", "G1"),
            ("status", "ACTIVE"),
            ("limit_amount", "100000"),
            ("limit_valid_until", &(NOW + DAY).to_string()),
            ("limit_currency", "CNY"),
            ("blocked", "0"),
            ("oldest_overdue_days", "0"),
            ("overdue_tolerance_days", "15"),
            ("rating_required", "0"),
            ("tolerance_bps", "1000"),
            ("secured", "0"),
            ("secured_extends", "0"),
            ("contingent", "0"),
            ("exposure", "0"),
            ("epoch", "11"),
        ]
        .into_iter()
        .map(|(field, value)| (field.to_owned(), value.to_owned()))
        .collect();
        assert_eq!(fields, expected);
    })
    .await;
}

/// An entry written by something else (a field missing) is reported, not guessed at.
#[tokio::test]
async fn redis_reports_a_corrupt_entry_instead_of_deciding() {
    on_redis(|fixture| async move {
        let redis = fixture.redis.clone().unwrap();
        let prefix = fixture.prefix.clone();
        let mut connection = redis.connection();
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}customer-tag:C1"))
            .arg("C1")
            .query_async(&mut connection)
            .await
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(format!("{prefix}{{C1}}:customer:C1"))
            .arg("customer_id")
            .arg("C1")
            .arg("status")
            .arg("ACTIVE")
            .query_async(&mut connection)
            .await
            .unwrap();
        let refused = fixture.cache.authorize(&order("C1", None, 1)).await;
        assert!(
            matches!(refused, Err(ExposureError::CorruptEntry { ref detail, .. }) if detail.contains("exposure")),
            "{refused:?}"
        );
        assert!(matches!(
            fixture.cache.add("C1", None, 1, Fence::NONE).await,
            Err(ExposureError::CorruptEntry { .. })
        ));
        assert!(matches!(
            fixture.cache.get_customer("C1").await,
            Err(ExposureError::CorruptEntry { .. })
        ));
    })
    .await;
}
