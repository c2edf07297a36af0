//! Upgrading a store from before governed documents (migration 0019) keeps what it held: the
//! credit policy an administrator changed in place stays in force, under its number, until
//! the first governed version is published over it, and the approval matrices proposed before
//! stay readable and in force. On both backends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use credit_core::approval::{ApprovalMatrix, Chain, DecisionKind, Verdict, shipped_matrix};
use credit_core::governance::{Version, VersionStatus};
use credit_core::{Actor, Currency, Principal, Role};
use credit_limits::domain::policy::{CreditPolicy, PolicyChange};
use credit_limits::store::{GovernedStore, LimitStore, SqlLimitStore};
use credit_runtime::config::Backend;
use credit_runtime::sql::IdempotencyKey;
use credit_runtime::testing::{TestDatabase, migrate_before};
use credit_runtime::{Database, on_database};
use rust_decimal::Decimal;
use sqlx::types::Json;

/// The migration that made the credit policy and the matrix governed documents.
const GOVERNED_VERSION: i64 = 19;

fn person(name: &str, roles: &[Role]) -> Principal {
    Principal {
        id: format!("prn_{name}"),
        person_id: format!("psn_{name}"),
        name: name.to_owned(),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        approval_authority: None,
    }
}

/// A POLICY_CHANGE chain of the shipped matrix proposed by `proposer`, approved by another
/// credit manager when `approved`.
fn chain(proposer: &Principal, approved: bool) -> Chain {
    let matrix = shipped_matrix(Currency::parse("CNY").unwrap());
    let rule = matrix
        .chain_rule(DecisionKind::PolicyChange, &Default::default())
        .unwrap();
    let mut chain = Chain::start(rule, 0, Actor::of(proposer), None);
    if approved {
        let approver = person("gina", &[Role::GeneralManager]);
        chain
            .decide(&approver, 0, Verdict::Approve, "", Utc::now())
            .unwrap();
    }
    chain
}

async fn governance_survives_the_upgrade(backend: Backend) {
    let database = Database::open(&backend, &credit_limits::STORE, 2, false)
        .await
        .unwrap();
    migrate_before(&database, &credit_limits::STORE, GOVERNED_VERSION)
        .await
        .unwrap();

    // The policy as UpdateCreditPolicy used to leave it: changed in place three times.
    let admin = person("ada", &[Role::Admin]);
    let legacy = CreditPolicy {
        over_limit_tolerance_percent: Decimal::new(7, 0),
        version: 3,
        last_change: Some(PolicyChange {
            changed_by: Actor::of(&admin),
            changed_at: Utc::now() - Duration::days(30),
            reason: "tighter band".to_owned(),
        }),
        ..CreditPolicy::default()
    };
    // A matrix proposed and published under the table of its own.
    let proposed_at = Utc::now() - Duration::days(10);
    let mut matrix = Version {
        version: 1,
        document: shipped_matrix(Currency::parse("CNY").unwrap()),
        reason: "the documents' chain".to_owned(),
        proposed_at,
        effective_from: proposed_at,
        published_at: None,
        chain: chain(&person("carl", &[Role::CreditManager]), true),
        based_on: 0,
        changes: Vec::new(),
    };
    matrix.publish(proposed_at);
    on_database!(&database, |pool, sql| {
        sqlx::query(&sql(
            "INSERT INTO credit_policy (id, etag, document, updated_at) VALUES (1, '3', $1, $2)",
        ))
        .bind(Json(&legacy))
        .bind(Utc::now())
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(&sql(
            "INSERT INTO approval_matrices (version, status, document, proposed_at) VALUES (1, 'PUBLISHED', $1, $2)",
        ))
        .bind(Json(&matrix))
        .bind(proposed_at)
        .execute(pool)
        .await
        .unwrap();
    });

    database.migrate(&credit_limits::STORE).await.unwrap();
    let store = SqlLimitStore::new(database.clone());

    assert_eq!(store.policy().await.unwrap(), Some(legacy.clone()));
    assert_eq!(store.ungoverned_policy().await.unwrap(), Some(legacy));
    let matrices: Vec<Version<ApprovalMatrix>> =
        GovernedStore::<ApprovalMatrix>::governed_versions(&store)
            .await
            .unwrap();
    assert_eq!(matrices, [matrix.clone()]);
    let in_force: Option<Version<ApprovalMatrix>> =
        GovernedStore::<ApprovalMatrix>::governed_in_force(&store, Utc::now())
            .await
            .unwrap();
    assert_eq!(in_force.map(|found| found.version), Some(1));

    // The first governed policy is numbered on from the one changed in place (4), and takes
    // over once published.
    let proposer = person("carl", &[Role::CreditManager]);
    let next = CreditPolicy {
        over_limit_tolerance_percent: Decimal::new(5, 0),
        ..CreditPolicy::default()
    };
    let mut proposal = Version {
        version: 0,
        document: next,
        reason: "narrower band".to_owned(),
        proposed_at: Utc::now(),
        effective_from: Utc::now(),
        published_at: None,
        chain: chain(&proposer, false),
        based_on: 3,
        changes: Vec::new(),
    };
    let key = IdempotencyKey::new("carl", "p-1".to_owned(), "UpdateCreditPolicy", &());
    let filed = GovernedStore::<CreditPolicy>::propose_version(&store, &proposal, 4, &key)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filed.version, 4);
    assert_eq!(filed.status(), VersionStatus::Proposed);
    assert_eq!(
        store.policy().await.unwrap().unwrap().version,
        3,
        "a proposal changes nothing"
    );

    proposal = filed;
    proposal
        .chain
        .decide(
            &person("gina", &[Role::GeneralManager]),
            0,
            Verdict::Approve,
            "",
            Utc::now(),
        )
        .unwrap();
    proposal.publish(Utc::now());
    proposal.document.version = 4;
    let key = IdempotencyKey::new("gina", "d-1".to_owned(), "DecideApprovalStep", &());
    GovernedStore::<CreditPolicy>::decide_version(&store, &proposal, 0, &key, None, Utc::now())
        .await
        .unwrap();
    let in_force = store.policy().await.unwrap().unwrap();
    assert_eq!(in_force.version, 4);
    assert_eq!(in_force.over_limit_tolerance_percent, Decimal::new(5, 0));
}

#[tokio::test]
async fn a_policy_changed_in_place_stays_in_force_until_a_governed_version_on_postgres() {
    let test_database = TestDatabase::create().await;
    governance_survives_the_upgrade(test_database.backend()).await;
    test_database.drop_database().await;
}

#[tokio::test]
async fn a_policy_changed_in_place_stays_in_force_until_a_governed_version_on_sqlite() {
    let data_dir = tempfile::tempdir().unwrap();
    governance_survives_the_upgrade(Backend::Embedded {
        data_dir: data_dir.path().to_path_buf(),
    })
    .await;
}
