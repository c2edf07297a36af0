//! The race between closing a hold and a rebuild, on both backends: Release, Capture and
//! expiry close the hold in the ledger and then lower the cached exposure. When a rebuild
//! reads the ledger between those two steps, the rebuilt exposure no longer counts the hold;
//! lowering it again would understate exposure, which DESIGN.md forbids. The ledger returns
//! the epochs it closed the hold under, and the cache lowers only levels still cached under
//! them. Each case runs the steps in the order that matters, with the real ledger on SQLite
//! or PostgreSQL and the in-process cache (the cache's own fence is tested on Redis too, in
//! exposure_cache.rs).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use chrono::Utc;
use credit_limits::domain::limits::Actor;
use credit_limits::exposure::{
    Adjustment, AuthorizeInput, AuthorizeOutcome, CustomerProfile, ExposureCache, GroupProfile,
    InProcessExposureCache, Limit, ProfileStatus,
};
use credit_limits::ledger::{Hold, HoldStatus, LedgerStore, SqlLedger, StoredAnswer};
use credit_runtime::config::Backend;
use credit_runtime::{Database, testing::TestDatabase};

const CUSTOMER: &str = "cus_fence";
const GROUP: &str = "grp_fence";

/// Rebuilds the customer and its group from the ledger into the cache, as a cold customer's
/// first order (or a reconciliation repair) does.
async fn rebuild(ledger: &SqlLedger, cache: &InProcessExposureCache) {
    let (epoch, exposure) = ledger
        .rebuild(&format!("customer:{CUSTOMER}"))
        .await
        .unwrap();
    cache
        .load_customer(&CustomerProfile {
            customer_id: CUSTOMER.to_owned(),
            group_id: Some(GROUP.to_owned()),
            status: ProfileStatus::Active,
            limit: Some(Limit {
                amount: 1_000_000,
                valid_until: None,
            }),
            limit_currency: Some("CNY".to_owned()),
            blocked: false,
            oldest_overdue_days: 0,
            overdue_tolerance_days: 30,
            rating_required: false,
            rating_valid_until: None,
            order_cap: None,
            tolerance_bps: 1000,
            cover: Default::default(),
            exposure: exposure.total(),
            epoch,
        })
        .await
        .unwrap();
    let (epoch, exposure) = ledger.rebuild(&format!("group:{GROUP}")).await.unwrap();
    cache
        .load_group(&GroupProfile {
            group_id: GROUP.to_owned(),
            limit: None,
            tolerance_bps: 1000,
            exposure: exposure.total(),
            epoch,
        })
        .await
        .unwrap();
}

/// Reserves `amount` in the cache and writes the hold, fenced, as Authorize does.
async fn approve(
    ledger: &SqlLedger,
    cache: &InProcessExposureCache,
    key: &str,
    amount: i64,
) -> Hold {
    let input = AuthorizeInput {
        customer_id: CUSTOMER.to_owned(),
        group_id: None,
        amount,
        currency: "CNY".to_owned(),
        now: Utc::now().timestamp(),
        reserve: true,
    };
    let AuthorizeOutcome::Decided(decision) = cache.authorize(&input).await.unwrap() else {
        panic!("the customer is warm");
    };
    assert!(decision.reserved);
    let now = Utc::now();
    let hold = Hold {
        id: format!("hld_{key}"),
        customer_id: CUSTOMER.to_owned(),
        group_id: Some(GROUP.to_owned()),
        order_id: key.to_owned(),
        currency: "CNY".to_owned(),
        amount_minor: amount,
        status: HoldStatus::Open,
        captured_minor: 0,
        released_minor: 0,
        invoice_id: String::new(),
        release_reason: String::new(),
        decision_id: format!("dec_{key}"),
        idempotency_key: key.to_owned(),
        created_at: now,
        expires_at: now + chrono::Duration::days(7),
        closed_at: None,
        created_by: Actor {
            principal_id: "erp".to_owned(),
            person_id: String::new(),
            name: "erp".to_owned(),
            roles: vec!["ORDER_ENTRY".to_owned()],
        },
        epoch: i64::try_from(decision.epoch).unwrap(),
        referral_id: String::new(),
    };
    let answer = StoredAnswer {
        customer_id: CUSTOMER.to_owned(),
        idempotency_key: key.to_owned(),
        fingerprint: key.to_owned(),
        decision_id: hold.decision_id.clone(),
        decision: "APPROVED".to_owned(),
        response: Vec::new(),
        created_at: now,
    };
    let group = decision.group.as_ref().unwrap();
    ledger
        .record_hold(&hold, Some((GROUP, group.epoch)), &answer)
        .await
        .unwrap();
    hold
}

fn released(hold: &Hold) -> Hold {
    Hold {
        status: HoldStatus::Released,
        released_minor: hold.amount_minor,
        release_reason: "order cancelled".to_owned(),
        closed_at: Some(Utc::now()),
        ..hold.clone()
    }
}

async fn cached(cache: &InProcessExposureCache) -> (i64, i64) {
    let customer = cache.get_customer(CUSTOMER).await.unwrap().unwrap();
    let group = cache.get_group(GROUP).await.unwrap().unwrap();
    (customer.exposure, group.exposure)
}

async fn in_ledger(ledger: &SqlLedger) -> (i64, i64) {
    let customer = ledger
        .exposure(&format!("customer:{CUSTOMER}"))
        .await
        .unwrap();
    let group = ledger.exposure(&format!("group:{GROUP}")).await.unwrap();
    (customer.total(), group.total())
}

async fn a_release_never_lowers_a_rebuild_that_already_counts_it(backend: &Backend) {
    let database = Database::open(backend, &credit_limits::STORE, 2, true)
        .await
        .unwrap();
    let ledger = SqlLedger::new(database.clone());
    let cache = InProcessExposureCache::new();
    rebuild(&ledger, &cache).await;
    let first = approve(&ledger, &cache, "o1", 30_000).await;
    let second = approve(&ledger, &cache, "o2", 20_000).await;
    assert_eq!(cached(&cache).await, (50_000, 50_000));

    // No rebuild in between: the release lowers both levels.
    let fence = ledger.close_hold(&released(&first), None).await.unwrap();
    let lowered = cache
        .release(CUSTOMER, Some(GROUP), first.amount_minor, fence)
        .await
        .unwrap();
    assert_eq!(
        lowered,
        Adjustment::Applied {
            customer_exposure: 20_000,
            group_exposure: Some(20_000)
        }
    );

    // A rebuild between the ledger close and the cache release: the rebuilt exposure
    // already leaves the hold out, and the release must not take it out again.
    let fence = ledger.close_hold(&released(&second), None).await.unwrap();
    rebuild(&ledger, &cache).await;
    assert_eq!(cached(&cache).await, (0, 0));
    cache
        .release(CUSTOMER, Some(GROUP), second.amount_minor, fence)
        .await
        .unwrap();
    assert_eq!(cached(&cache).await, (0, 0), "not understated");
    assert_eq!(cached(&cache).await, in_ledger(&ledger).await);
    database.close().await;
}

#[tokio::test]
async fn on_sqlite() {
    let data_dir = tempfile::tempdir().unwrap();
    a_release_never_lowers_a_rebuild_that_already_counts_it(&Backend::Embedded {
        data_dir: data_dir.path().to_owned(),
    })
    .await;
}

#[tokio::test]
async fn on_postgres() {
    let database = TestDatabase::create().await;
    a_release_never_lowers_a_rebuild_that_already_counts_it(&database.backend()).await;
    database.drop_database().await;
}
