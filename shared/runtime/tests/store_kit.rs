//! The store kit on both backends: the common migrations compose with a service's own history
//! (including a schema that had the old, global idempotency table), idempotency keys are the
//! caller's own, and the sweeper forgets keys past the retention and only those.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::borrow::Cow;

use chrono::{DateTime, Duration, Utc};
use credit_runtime::config::Backend;
use credit_runtime::sql::{IdempotencyKey, KeyLookup};
use credit_runtime::store::{CommonMigration, sweep_idempotency_keys};
use credit_runtime::testing::TestDatabase;
use credit_runtime::{Database, StoreSpec, insert_idempotency_key, lookup_idempotency_key};
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// The idempotency table every service created in its own early migration, before keys were
/// scoped per caller: the kit's migration must upgrade it in place.
const LEGACY_KEYS_POSTGRES: &str = "CREATE TABLE idempotency_keys (
    request_id  TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);";
const LEGACY_KEYS_SQLITE: &str = "CREATE TABLE idempotency_keys (
    request_id  TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TEXT NOT NULL
);";

fn own_migrations(sql: &'static str) -> &'static Migrator {
    Box::leak(Box::new(Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            2,
            Cow::Borrowed("legacy idempotency keys"),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )]),
        ..Migrator::DEFAULT
    }))
}

fn spec() -> StoreSpec {
    StoreSpec {
        name: "store_kit_test",
        postgres_migrations: own_migrations(LEGACY_KEYS_POSTGRES),
        sqlite_migrations: own_migrations(LEGACY_KEYS_SQLITE),
        common_migrations: &[
            (1, CommonMigration::Outbox),
            (3, CommonMigration::OutboxPacked),
            (4, CommonMigration::IdempotencyKeysPerCaller),
        ],
    }
}

fn key(caller: &str, request_id: &str, content: &str) -> IdempotencyKey {
    IdempotencyKey {
        caller: caller.to_owned(),
        request_id: request_id.to_owned(),
        operation: "CreateThing",
        fingerprint: content.to_owned(),
    }
}

async fn remember(database: &Database, key: &IdempotencyKey, resource: &str, at: DateTime<Utc>) {
    credit_runtime::on_database!(database, |pool, sql| {
        let mut connection = pool.acquire().await.unwrap();
        insert_idempotency_key!(connection, sql, key, resource, at).unwrap();
    });
}

async fn look_up(database: &Database, key: &IdempotencyKey) -> KeyLookup {
    credit_runtime::on_database!(database, |pool, sql| {
        let mut connection = pool.acquire().await.unwrap();
        let lookup: Result<KeyLookup, sqlx::Error> = lookup_idempotency_key!(connection, sql, key);
        lookup.unwrap()
    })
}

async fn conformance(backend: Backend) {
    let spec = spec();
    let database = Database::open(&backend, &spec, 2, true).await.unwrap();
    // Migrating again is a no-op: the composed history is stable (same versions, checksums).
    database.migrate(&spec).await.unwrap();

    let now = Utc::now();
    let alice_first = key("alice-id", "order-1", "content A");
    remember(&database, &alice_first, "thing-a", now).await;

    // Another caller's same request_id is new work, not alice's answer.
    let bob_first = key("bob-id", "order-1", "content B");
    assert_eq!(look_up(&database, &bob_first).await, KeyLookup::Fresh);
    remember(&database, &bob_first, "thing-b", now).await;

    // Each caller replays its own.
    assert_eq!(
        look_up(&database, &alice_first).await,
        KeyLookup::Replay("thing-a".to_owned())
    );
    assert_eq!(
        look_up(&database, &bob_first).await,
        KeyLookup::Replay("thing-b".to_owned())
    );
    // The same caller with other content under the key is refused.
    assert_eq!(
        look_up(&database, &key("alice-id", "order-1", "content C")).await,
        KeyLookup::Reused
    );

    // Past the retention a key is forgotten; a younger one stays.
    let old = key("alice-id", "order-0", "content 0");
    remember(&database, &old, "thing-0", now - Duration::hours(30)).await;
    let swept = sweep_idempotency_keys(&database, now - Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(swept, 1);
    assert_eq!(look_up(&database, &old).await, KeyLookup::Fresh);
    assert_eq!(
        look_up(&database, &alice_first).await,
        KeyLookup::Replay("thing-a".to_owned())
    );
    database.close().await;
}

#[tokio::test]
async fn store_kit_on_postgres() {
    let test_database = TestDatabase::create().await;
    conformance(test_database.backend()).await;
    test_database.drop_database().await;
}

#[tokio::test]
async fn store_kit_on_sqlite() {
    let folder = tempfile::tempdir().unwrap();
    conformance(Backend::Embedded {
        data_dir: folder.path().to_owned(),
    })
    .await;
}
