//! A change applied while a cold customer is being rebuilt, on both backends (SQLite with the
//! in-process cache, PostgreSQL with Redis).
//!
//! The rebuild reads the customer's facts from the store and then loads them into the cache;
//! the event handler writes the store and then evicts the cached profile. Here the change
//! lands exactly between the two: the cache below applies an event to the store and evicts
//! the customer just before the rebuild's load. The decision must see the change.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use credit_core::Role;
use credit_limits::app::{CreditAdmin, HotPath};
use credit_limits::domain::limits::{LimitDecision, NewLimitRequest, Scope};
use credit_limits::exposure::{
    Adjustment, AuthorizeInput, AuthorizeOutcome, CustomerProfile, CustomerUpdate, ExposureCache,
    ExposureError, Fence, GroupProfile, GroupUpdate, InProcessExposureCache, RedisExposureCache,
    UpdateOutcome,
};
use credit_limits::ledger::{LedgerStore, SqlLedger};
use credit_limits::store::{LimitStore, SqlLimitStore};
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::config::Backend;
use credit_runtime::events::new_event;
use credit_runtime::sql::IdempotencyKey;
use credit_runtime::{Database, testing::TestDatabase};

/// A cache that injects one race, once:
/// - `event`: applies the event to the store and evicts its customer right before a customer
///   profile is loaded (an event handled while the rebuild was between its read and its load);
/// - `rebuild_after_reserving`: rebuilds the customer in the ledger and evicts it right after a
///   reservation (a rebuild between deciding an order and recording it).
#[derive(Debug)]
struct EventDuringRebuild {
    inner: Arc<dyn ExposureCache>,
    store: Arc<SqlLimitStore>,
    event: Mutex<Option<pb::Event>>,
    rebuild_after_reserving: Mutex<Option<Arc<SqlLedger>>>,
}

#[async_trait]
impl ExposureCache for EventDuringRebuild {
    async fn authorize(&self, input: &AuthorizeInput) -> Result<AuthorizeOutcome, ExposureError> {
        let outcome = self.inner.authorize(input).await?;
        let reserved = matches!(&outcome, AuthorizeOutcome::Decided(decision) if decision.reserved);
        let ledger = reserved
            .then(|| self.rebuild_after_reserving.lock().unwrap().take())
            .flatten();
        if let Some(ledger) = ledger {
            ledger
                .rebuild(&format!("customer:{}", input.customer_id))
                .await
                .unwrap();
            self.inner.evict_customer(&input.customer_id).await?;
        }
        Ok(outcome)
    }
    async fn release(
        &self,
        customer_id: &str,
        group_id: Option<&str>,
        amount: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError> {
        self.inner
            .release(customer_id, group_id, amount, fence)
            .await
    }
    async fn add(
        &self,
        customer_id: &str,
        group_id: Option<&str>,
        amount: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError> {
        self.inner.add(customer_id, group_id, amount, fence).await
    }
    async fn load_customer(&self, profile: &CustomerProfile) -> Result<(), ExposureError> {
        let event = self.event.lock().unwrap().take();
        if let Some(event) = event {
            self.store
                .apply_customer_event("limits", &event)
                .await
                .unwrap();
            self.inner.evict_customer(&event.customer_id).await?;
        }
        self.inner.load_customer(profile).await
    }
    async fn load_group(&self, profile: &GroupProfile) -> Result<(), ExposureError> {
        self.inner.load_group(profile).await
    }
    async fn update_customer(
        &self,
        customer_id: &str,
        update: &CustomerUpdate,
    ) -> Result<UpdateOutcome, ExposureError> {
        self.inner.update_customer(customer_id, update).await
    }
    async fn update_group(
        &self,
        group_id: &str,
        update: &GroupUpdate,
    ) -> Result<UpdateOutcome, ExposureError> {
        self.inner.update_group(group_id, update).await
    }
    async fn get_customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<CustomerProfile>, ExposureError> {
        self.inner.get_customer(customer_id).await
    }
    async fn get_group(&self, group_id: &str) -> Result<Option<GroupProfile>, ExposureError> {
        self.inner.get_group(group_id).await
    }
    async fn evict_customer(&self, customer_id: &str) -> Result<(), ExposureError> {
        self.inner.evict_customer(customer_id).await
    }
    async fn customer_generation(&self, customer_id: &str) -> Result<u64, ExposureError> {
        self.inner.customer_generation(customer_id).await
    }
    async fn evict_group(&self, group_id: &str) -> Result<(), ExposureError> {
        self.inner.evict_group(group_id).await
    }
    async fn group_generation(&self, group_id: &str) -> Result<u64, ExposureError> {
        self.inner.group_generation(group_id).await
    }
    async fn evict_all(&self) -> Result<(), ExposureError> {
        self.inner.evict_all().await
    }
}

fn status_event(customer_id: &str, status: pb::CustomerStatus) -> pb::Event {
    pb::Event {
        customer_id: customer_id.to_owned(),
        ..new_event(
            "intake",
            Payload::CustomerStatusChanged(pb::CustomerStatusChanged {
                customer_id: customer_id.to_owned(),
                previous_status: pb::CustomerStatus::Active as i32,
                status: status as i32,
                reason: "suspended".to_owned(),
            }),
        )
    }
}

/// The limits store of `database`, knowing the active customer `customer_id`.
async fn store_with_customer(database: &Database, customer_id: &str) -> Arc<SqlLimitStore> {
    let store = Arc::new(SqlLimitStore::new(database.clone()));
    let registered = new_event(
        "intake",
        Payload::CustomerRegistered(pb::CustomerRegistered {
            customer_id: customer_id.to_owned(),
            status: pb::CustomerStatus::Active as i32,
            ..Default::default()
        }),
    );
    store
        .apply_customer_event("limits", &registered)
        .await
        .unwrap();
    store
}

/// A customer suspended while its cold profile is rebuilt is declined as not active, and
/// the cache keeps the new status.
async fn a_change_during_a_rebuild_is_not_lost(database: Database, inner: Arc<dyn ExposureCache>) {
    let store = store_with_customer(&database, "cus_race").await;
    let cache = Arc::new(EventDuringRebuild {
        inner: inner.clone(),
        store: store.clone(),
        event: Mutex::new(Some(status_event(
            "cus_race",
            pb::CustomerStatus::Suspended,
        ))),
        rebuild_after_reserving: Mutex::new(None),
    });
    let hot = HotPath::new(
        store.clone() as Arc<dyn LimitStore>,
        Arc::new(SqlLedger::new(database.clone())),
        cache.clone(),
        credit_core::Currency::parse("CNY").unwrap(),
    );

    let answer = hot
        .check_credit(&pb::CheckCreditRequest {
            customer_id: "cus_race".to_owned(),
            order_id: "ord-1".to_owned(),
            amount: Some(pb::Money {
                amount: "1.00".to_owned(),
                currency: "CNY".to_owned(),
            }),
        })
        .await
        .unwrap();

    assert!(
        cache.event.lock().unwrap().is_none(),
        "the change landed during the rebuild"
    );
    assert_eq!(answer.decision, pb::AuthorizationDecision::Declined as i32);
    let codes: Vec<&str> = answer
        .reasons
        .iter()
        .map(|reason| reason.code.as_str())
        .collect();
    assert!(codes.contains(&"CUSTOMER_INACTIVE"), "{codes:?}");
    let cached = inner.get_customer("cus_race").await.unwrap().unwrap();
    assert_eq!(cached.status.as_str(), "SUSPENDED");
    database.close().await;
}

/// An order whose reservation is lost to a rebuild before it is recorded is decided again on
/// the rebuilt entry: the clerk gets an answer, not UNAVAILABLE, and the exposure counts the
/// order once.
async fn an_order_that_races_a_rebuild_is_decided_again(
    database: Database,
    inner: Arc<dyn ExposureCache>,
) {
    let store = store_with_customer(&database, "cus_again").await;
    let ledger = Arc::new(SqlLedger::new(database.clone()));
    let cache = Arc::new(EventDuringRebuild {
        inner: inner.clone(),
        store: store.clone(),
        event: Mutex::new(None),
        rebuild_after_reserving: Mutex::new(None),
    });
    let hot = HotPath::new(
        store.clone() as Arc<dyn LimitStore>,
        ledger.clone(),
        cache.clone(),
        credit_core::Currency::parse("CNY").unwrap(),
    );
    grant(&store, &hot, "cus_again", "1000.00").await;
    *cache.rebuild_after_reserving.lock().unwrap() = Some(ledger);

    let answer = hot
        .authorize(
            &person("erp", &[Role::OrderEntry], None),
            &pb::AuthorizeRequest {
                customer_id: "cus_again".to_owned(),
                order_id: "ord-again".to_owned(),
                amount: Some(pb::Money {
                    amount: "100.00".to_owned(),
                    currency: "CNY".to_owned(),
                }),
                idempotency_key: "ord-again".to_owned(),
                hold_ttl: None,
            },
        )
        .await
        .unwrap();
    assert!(
        cache.rebuild_after_reserving.lock().unwrap().is_none(),
        "the rebuild came between deciding and recording"
    );
    assert_eq!(answer.decision, pb::AuthorizationDecision::Approved as i32);
    assert!(!answer.hold_id.is_empty());
    assert_eq!(answer.exposure.unwrap().amount, "100.00", "counted once");
    database.close().await;
}

fn person(name: &str, roles: &[Role], authority: Option<&str>) -> credit_core::Principal {
    credit_core::Principal {
        id: format!("prn_{name}"),
        person_id: format!("psn_{name}"),
        name: name.to_owned(),
        roles: roles.iter().copied().collect(),
        approval_authority: authority
            .map(|amount| credit_core::Money::parse(amount, "CNY").unwrap()),
    }
}

/// A limit of `amount` CNY for `customer_id`, requested by one person and approved by another.
async fn grant(store: &Arc<SqlLimitStore>, hot: &HotPath, customer_id: &str, amount: &str) {
    let admin = CreditAdmin::new(store.clone() as Arc<dyn LimitStore>, hot.clone());
    let maker = person("ana", &[Role::Analyst], None);
    let requested = admin
        .request_limit_change(
            credit_core::Actor::of(&maker),
            NewLimitRequest {
                scope: Scope::Customer(customer_id.to_owned()),
                amount: credit_core::Money::parse(amount, "CNY").unwrap(),
                valid_from: chrono::Utc::now(),
                valid_until: None,
                temporary: false,
                reason: "first limit".to_owned(),
            },
            &IdempotencyKey::of_system("test", "limit-1".to_owned(), "Test", String::new()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    admin
        .decide_limit_request(
            &person("max", &[Role::CreditManager], Some("1000000")),
            LimitDecision {
                limit_request_id: requested.request.id,
                approving: true,
                reason: "checked".to_owned(),
            },
            &IdempotencyKey::of_system("test", "decide-1".to_owned(), "Test", String::new()),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_order_racing_a_rebuild_on_sqlite_and_the_in_process_cache() {
    let data_dir = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: data_dir.path().to_owned(),
    };
    let database = Database::open(&backend, &credit_limits::STORE, 2, true)
        .await
        .unwrap();
    an_order_that_races_a_rebuild_is_decided_again(
        database,
        Arc::new(InProcessExposureCache::new()),
    )
    .await;
}

#[tokio::test]
async fn an_order_racing_a_rebuild_on_postgres_and_redis() {
    let test_database = TestDatabase::create().await;
    let redis = test_database.redis().await;
    let database = Database::open(&test_database.backend(), &credit_limits::STORE, 2, true)
        .await
        .unwrap();
    an_order_that_races_a_rebuild_is_decided_again(
        database,
        Arc::new(RedisExposureCache::new(redis)),
    )
    .await;
    test_database.drop_database().await;
}

#[tokio::test]
async fn on_sqlite_and_the_in_process_cache() {
    let data_dir = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: data_dir.path().to_owned(),
    };
    let database = Database::open(&backend, &credit_limits::STORE, 2, true)
        .await
        .unwrap();
    a_change_during_a_rebuild_is_not_lost(database, Arc::new(InProcessExposureCache::new())).await;
}

#[tokio::test]
async fn on_postgres_and_redis() {
    let test_database = TestDatabase::create().await;
    let redis = test_database.redis().await;
    let database = Database::open(&test_database.backend(), &credit_limits::STORE, 2, true)
        .await
        .unwrap();
    a_change_during_a_rebuild_is_not_lost(database, Arc::new(RedisExposureCache::new(redis))).await;
    test_database.drop_database().await;
}
