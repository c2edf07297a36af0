//! The limits store's walk over its customer projection (`LimitStore::customers_after`), on
//! both backends: the embedded SQLite file and a PostgreSQL database of the test's own. It is
//! how `ReconcileExposure` visits every customer, a batch at a time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use credit_limits::store::{CustomerFacts, LimitStore, SqlLimitStore};
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::config::Backend;
use credit_runtime::events::new_event;
use credit_runtime::{Database, testing::TestDatabase};

async fn registered(store: &SqlLimitStore, customer_id: &str) {
    let event = new_event(
        "intake",
        Payload::CustomerRegistered(pb::CustomerRegistered {
            customer_id: customer_id.to_owned(),
            status: pb::CustomerStatus::Active as i32,
            ..Default::default()
        }),
    );
    store.apply_customer_event("limits", &event).await.unwrap();
}

async fn joined(store: &SqlLimitStore, customer_id: &str, group_id: &str) {
    let event = new_event(
        "intake",
        Payload::GroupMembershipChanged(pb::GroupMembershipChanged {
            group_id: group_id.to_owned(),
            customer_id: customer_id.to_owned(),
            change: pb::GroupMembershipChange::Added as i32,
        }),
    );
    store.apply_customer_event("limits", &event).await.unwrap();
}

/// Five customers, two of them in a group, walked two at a time: every customer once, in id
/// order, with its group; an empty batch ends the walk.
async fn walks_every_customer_in_batches(backend: &Backend) {
    let database = Database::open(backend, &credit_limits::STORE, 2, true)
        .await
        .unwrap();
    let store = SqlLimitStore::new(database.clone());
    assert!(store.customers_after("", 2).await.unwrap().is_empty());
    for customer_id in ["cus_e", "cus_b", "cus_a", "cus_d", "cus_c"] {
        registered(&store, customer_id).await;
    }
    joined(&store, "cus_b", "grp_1").await;
    joined(&store, "cus_d", "grp_1").await;

    let mut walked: Vec<CustomerFacts> = Vec::new();
    let mut batches = 0;
    loop {
        let after = walked
            .last()
            .map(|facts| facts.customer_id.clone())
            .unwrap_or_default();
        let batch = store.customers_after(&after, 2).await.unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 2);
        batches += 1;
        walked.extend(batch);
    }
    assert_eq!(batches, 3);
    let seen: Vec<(&str, Option<&str>, &str)> = walked
        .iter()
        .map(|facts| {
            (
                facts.customer_id.as_str(),
                facts.group_id.as_deref(),
                facts.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("cus_a", None, "ACTIVE"),
            ("cus_b", Some("grp_1"), "ACTIVE"),
            ("cus_c", None, "ACTIVE"),
            ("cus_d", Some("grp_1"), "ACTIVE"),
            ("cus_e", None, "ACTIVE"),
        ]
    );
    database.close().await;
}

#[tokio::test]
async fn on_sqlite() {
    let data_dir = tempfile::tempdir().unwrap();
    walks_every_customer_in_batches(&Backend::Embedded {
        data_dir: data_dir.path().to_owned(),
    })
    .await;
}

#[tokio::test]
async fn on_postgres() {
    let database = TestDatabase::create().await;
    walks_every_customer_in_batches(&database.backend()).await;
    database.drop_database().await;
}
