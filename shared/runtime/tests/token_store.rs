//! One conformance suite for the identity store, run against both backends: PostgreSQL (a
//! database of its own) and the embedded SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeSet;

use credit_core::{Money, Role};
use credit_runtime::Database;
use credit_runtime::config::Backend;
use credit_runtime::identity::{self, Authenticator, IDENTITY_STORE, NewPrincipal, TokenStore};
use credit_runtime::testing::TestDatabase;
use secrecy::{ExposeSecret, SecretString};

fn manager() -> NewPrincipal {
    NewPrincipal {
        name: "mei".into(),
        roles: BTreeSet::from([Role::CreditManager, Role::Analyst]),
        approval_authority: Some(Money::parse("250000.00", "CNY").unwrap()),
    }
}

async fn conformance(store: &dyn TokenStore) {
    assert_eq!(store.count().await.unwrap(), 0);

    let issued = identity::issue_token(store, &manager()).await.unwrap();
    let token = issued.token.expose_secret().to_owned();
    assert!(token.starts_with("cst_"));
    assert_eq!(store.count().await.unwrap(), 1);

    // Only the hash is stored: looking up by the clear token finds nothing.
    assert!(store.find_active(&token).await.unwrap().is_none());
    let record = store
        .find_active(&identity::hash_token(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.id, issued.principal_id);
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
    let system = NewPrincipal {
        name: "erp".into(),
        roles: BTreeSet::from([Role::OrderEntry]),
        approval_authority: None,
    };
    let erp = identity::issue_token(store, &system).await.unwrap();
    let erp_record = store
        .find_active(&identity::hash_token(erp.token.expose_secret()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(erp_record.approval_authority, None);

    // The authenticator resolves the token to the principal and refuses strangers.
    let authenticator = Authenticator::new_uncached_for_tests(store);
    let principal = authenticator
        .authenticate(&issued.token)
        .await
        .unwrap()
        .unwrap();
    assert!(principal.has_role(Role::CreditManager));
    let stranger = SecretString::from("cst_not-a-real-token".to_owned());
    assert!(
        authenticator
            .authenticate(&stranger)
            .await
            .unwrap()
            .is_none()
    );

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
            .find_active(&identity::hash_token(&token))
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
