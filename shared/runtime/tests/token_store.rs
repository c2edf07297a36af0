//! One conformance suite for the identity store, run against both backends: PostgreSQL (a
//! database of its own) and the embedded SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use credit_core::{Money, Role};
use credit_runtime::Database;
use credit_runtime::config::Backend;
use credit_runtime::identity::{self, Authenticator, IDENTITY_STORE, NewPrincipal, TokenStore};
use credit_runtime::testing::TestDatabase;
use secrecy::{ExposeSecret, SecretString};

fn manager() -> NewPrincipal {
    NewPrincipal::new("mei", [Role::CreditManager, Role::Analyst])
        .with_authority(Some(Money::parse("250000.00", "CNY").unwrap()))
}

fn hash_of(issued: &identity::IssuedToken) -> String {
    identity::hash_token(issued.token.expose_secret())
}

async fn conformance(store: &dyn TokenStore) {
    assert_eq!(store.count().await.unwrap(), 0);

    let issued = identity::issue_token(store, &manager()).await.unwrap();
    let token = issued.token.expose_secret().to_owned();
    assert!(token.starts_with("cst_"));
    assert_eq!(store.count().await.unwrap(), 1);

    // Only the hash is stored: looking up by the clear token finds nothing.
    let now = Utc::now();
    assert!(store.find_active(&token, now).await.unwrap().is_none());
    let record = store
        .find_active(&identity::hash_token(&token), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.id, issued.principal_id);
    assert_eq!(record.person_id, issued.person_id);
    assert!(record.person_id.starts_with("psn_"));
    // (PostgreSQL keeps microseconds.)
    let micros = |at: Option<chrono::DateTime<Utc>>| at.map(|at| at.timestamp_micros());
    assert_eq!(
        micros(record.last_used_at),
        micros(Some(now)),
        "a lookup is a use"
    );
    assert_eq!(micros(record.expires_at), micros(issued.expires_at));
    assert_eq!(record.name, "mei");
    assert_eq!(
        record.roles,
        BTreeSet::from([Role::Analyst, Role::CreditManager])
    );
    assert_eq!(
        record.approval_authority,
        Some(Money::parse("250000.00", "CNY").unwrap())
    );

    // A principal without authority round-trips as such.
    let system = NewPrincipal::new("erp", [Role::OrderEntry]);
    let erp = identity::issue_token(store, &system).await.unwrap();
    let erp_record = store
        .find_active(&hash_of(&erp), Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(erp_record.approval_authority, None);
    assert_ne!(
        erp_record.person_id, record.person_id,
        "another name, another person"
    );

    // A second token under a known name belongs to the same person.
    let second = identity::issue_token(store, &manager().with_authority(None))
        .await
        .unwrap();
    assert_ne!(second.principal_id, issued.principal_id);
    assert_eq!(second.person_id, issued.person_id);

    // The authenticator resolves the token to the principal and refuses strangers.
    let authenticator = Authenticator::new_uncached_for_tests(store);
    let principal = authenticator
        .authenticate(&issued.token)
        .await
        .unwrap()
        .unwrap();
    assert!(principal.has_role(Role::CreditManager));
    let stranger = SecretString::from(format!("cst_{}", "A".repeat(43)));
    assert!(
        authenticator
            .authenticate(&stranger)
            .await
            .unwrap()
            .is_none()
    );

    // An expired token stops working, in the store and through the authenticator.
    let lapsed = identity::issue_token(
        store,
        &NewPrincipal::new("temp", [Role::Collector])
            .expiring_at(Some(Utc::now() - Duration::seconds(1))),
    )
    .await
    .unwrap();
    assert!(
        store
            .find_active(&hash_of(&lapsed), Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        authenticator
            .authenticate(&lapsed.token)
            .await
            .unwrap()
            .is_none()
    );
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 4);
    let lapsed_record = listed
        .iter()
        .find(|token| token.id == lapsed.principal_id)
        .unwrap();
    assert_eq!(lapsed_record.state(Utc::now()), "expired");

    // Rotation: a new token of the same person, roles and authority; the old one works
    // through its grace period, then not; without grace it is revoked at once.
    let rotated = identity::rotate_token(store, &issued.principal_id, Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(rotated.person_id, issued.person_id);
    let rotated_principal = authenticator
        .authenticate(&rotated.token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated_principal.person_id, principal.person_id);
    assert_eq!(rotated_principal.roles, principal.roles);
    assert_eq!(
        rotated_principal.approval_authority,
        principal.approval_authority
    );
    let old = store.get(&issued.principal_id).await.unwrap().unwrap();
    assert!(old.is_active(Utc::now()));
    assert!(!old.is_active(Utc::now() + Duration::minutes(61)));
    let again = identity::rotate_token(store, &rotated.principal_id, Duration::zero())
        .await
        .unwrap();
    assert!(
        authenticator
            .authenticate(&rotated.token)
            .await
            .unwrap()
            .is_none(),
        "rotated without grace: revoked"
    );
    assert!(
        authenticator
            .authenticate(&again.token)
            .await
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        identity::rotate_token(store, &rotated.principal_id, Duration::zero()).await,
        Err(identity::IdentityError::TokenNotActive(_))
    ));
    assert!(matches!(
        identity::rotate_token(store, "prn_nobody", Duration::zero()).await,
        Err(identity::IdentityError::UnknownToken(_))
    ));

    // Revoked tokens stop working; revoking twice reports nothing to revoke.
    assert!(
        store
            .revoke(&issued.principal_id, chrono::Utc::now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke(&issued.principal_id, chrono::Utc::now())
            .await
            .unwrap()
    );
    assert!(
        store
            .find_active(&identity::hash_token(&token), Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        authenticator
            .authenticate(&issued.token)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn token_store_conformance_on_postgres() {
    let database = TestDatabase::create().await;
    let store_database = Database::open(&database.backend(), &IDENTITY_STORE, 2, true)
        .await
        .unwrap();
    conformance(identity::token_store(&store_database).as_ref()).await;
    store_database.close().await;
    database.drop_database().await;
}

#[tokio::test]
async fn token_store_conformance_on_sqlite() {
    let folder = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: folder.path().to_owned(),
    };
    let store_database = Database::open(&backend, &IDENTITY_STORE, 2, true)
        .await
        .unwrap();
    conformance(identity::token_store(&store_database).as_ref()).await;
    store_database.close().await;
}

#[tokio::test]
async fn migrations_are_idempotent_on_both_backends() {
    let database = TestDatabase::create().await;
    for _ in 0..2 {
        let opened = Database::open(&database.backend(), &IDENTITY_STORE, 1, true)
            .await
            .unwrap();
        opened.close().await;
    }
    database.drop_database().await;

    let folder = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: folder.path().to_owned(),
    };
    for _ in 0..2 {
        let opened = Database::open(&backend, &IDENTITY_STORE, 1, true)
            .await
            .unwrap();
        opened.close().await;
    }
}

#[tokio::test]
async fn a_process_credential_is_accepted_by_its_own_process_only_and_never_stored() {
    let folder = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: folder.path().to_owned(),
    };
    let store_database = Database::open(&backend, &IDENTITY_STORE, 2, true)
        .await
        .unwrap();
    let store = identity::token_store(&store_database);
    let service = credit_core::Principal {
        id: "system:rating".into(),
        person_id: "system:rating".into(),
        name: "system:rating".into(),
        roles: BTreeSet::from([Role::Analyst]),
        approval_authority: None,
    };
    let (authenticator, token) =
        Authenticator::new(store.clone()).with_process_credential(service.clone());
    assert_eq!(
        authenticator.authenticate(&token).await.unwrap(),
        Some(service.clone())
    );
    assert_eq!(store.count().await.unwrap(), 0, "nothing reaches the store");

    // Another process (another authenticator on the same store) does not know it.
    let (other_process, other_token) =
        Authenticator::new(store.clone()).with_process_credential(service);
    assert_eq!(other_process.authenticate(&token).await.unwrap(), None);
    assert_ne!(token.expose_secret(), other_token.expose_secret());
    store_database.close().await;
}

/// Builds the identity schema as it was before people were kept (migration 0001 only), with
/// three tokens: two of "mei" (one with authority) and one of "erp".
async fn tokens_of_the_first_schema(database: &Database, migrations: &str) {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations/identity")
        .join(migrations)
        .join("0001_api_tokens.sql");
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(&source, copy.path().join("0001_api_tokens.sql")).unwrap();
    let first = sqlx::migrate::Migrator::new(copy.path()).await.unwrap();
    let created = Utc::now() - Duration::days(30);
    credit_runtime::on_database!(database, |pool, sql| {
        if migrations == "postgres" {
            sqlx::query("CREATE SCHEMA identity")
                .execute(pool)
                .await
                .unwrap();
        }
        first.run(pool).await.unwrap();
        for (id, name, authority) in [
            ("prn_0001aaaa", "mei", Some("250000.0000")),
            ("prn_0002bbbb", "mei", None),
            ("prn_0003cccc", "erp", None),
        ] {
            let insert = if migrations == "postgres" {
                "INSERT INTO api_tokens (id, name, roles, authority_amount, authority_currency, token_hash, created_at) \
                 VALUES ($1, $2, 'CREDIT_MANAGER', CAST($3 AS NUMERIC), $4, $1, $5)"
            } else {
                "INSERT INTO api_tokens (id, name, roles, authority_amount, authority_currency, token_hash, created_at) \
                 VALUES ($1, $2, 'CREDIT_MANAGER', $3, $4, $1, $5)"
            };
            sqlx::query(&sql(insert))
                .bind(id)
                .bind(name)
                .bind(authority)
                .bind(authority.map(|_| "CNY"))
                .bind(created)
                .execute(pool)
                .await
                .unwrap();
        }
    });
}

async fn first_tokens_get_one_person_per_name(backend: &Backend, migrations: &str) {
    let old = Database::open(backend, &IDENTITY_STORE, 1, false)
        .await
        .unwrap();
    tokens_of_the_first_schema(&old, migrations).await;
    old.close().await;

    let migrated = Database::open(backend, &IDENTITY_STORE, 1, true)
        .await
        .unwrap();
    let store = identity::token_store(&migrated);
    let tokens = store.list().await.unwrap();
    assert_eq!(tokens.len(), 3);
    let person = |id: &str| {
        tokens
            .iter()
            .find(|token| token.id == id)
            .unwrap()
            .person_id
            .clone()
    };
    assert_eq!(person("prn_0001aaaa"), "psn_0001aaaa");
    assert_eq!(
        person("prn_0002bbbb"),
        "psn_0001aaaa",
        "mei's two tokens: one person"
    );
    assert_eq!(person("prn_0003cccc"), "psn_0003cccc");
    let mei = tokens
        .iter()
        .find(|token| token.id == "prn_0001aaaa")
        .unwrap();
    assert_eq!(
        mei.approval_authority,
        Some(Money::parse("250000", "CNY").unwrap())
    );
    assert_eq!(
        mei.expires_at, None,
        "tokens issued before expiry keep working"
    );
    assert_eq!(mei.state(Utc::now()), "active");
    // A new token under the old name joins the existing person.
    let joined = identity::issue_token(store.as_ref(), &NewPrincipal::new("mei", [Role::Analyst]))
        .await
        .unwrap();
    assert_eq!(joined.person_id, "psn_0001aaaa");
    migrated.close().await;
}

#[tokio::test]
async fn tokens_issued_before_people_were_kept_get_one_person_per_name() {
    let database = TestDatabase::create().await;
    first_tokens_get_one_person_per_name(&database.backend(), "postgres").await;
    database.drop_database().await;

    let folder = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: folder.path().to_owned(),
    };
    first_tokens_get_one_person_per_name(&backend, "sqlite").await;
}

#[tokio::test]
async fn a_cached_token_stops_working_when_it_expires() {
    let folder = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: folder.path().to_owned(),
    };
    let store_database = Database::open(&backend, &IDENTITY_STORE, 2, true)
        .await
        .unwrap();
    let store = identity::token_store(&store_database);
    let authenticator = Authenticator::new(store.clone());
    let brief = identity::issue_token(
        store.as_ref(),
        &NewPrincipal::new("brief", [Role::Analyst])
            .expiring_at(Some(Utc::now() + Duration::milliseconds(300))),
    )
    .await
    .unwrap();
    assert!(
        authenticator
            .authenticate(&brief.token)
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    // Still in the cache, whose answer is half a minute old at most: the expiry kept with it
    // ends the token anyway.
    assert!(
        authenticator
            .authenticate(&brief.token)
            .await
            .unwrap()
            .is_none()
    );

    store_database.close().await;
}
