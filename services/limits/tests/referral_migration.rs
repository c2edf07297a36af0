//! Upgrading a store whose referrals were kept in a table of their own (before migration 0012)
//! moves each referral into its answer's row: afterwards it is found by id, listed in the
//! review queue (open ones first) and decided as before, and the answers still replay. On
//! both backends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use chrono::{TimeZone, Utc};
use credit_limits::domain::limits::Actor;
use credit_limits::ledger::{LedgerStore, Referral, ReferralStatus, SqlLedger};
use credit_runtime::config::Backend;
use credit_runtime::sql::Page;
use credit_runtime::testing::{TestDatabase, migrate_before};
use credit_runtime::{Database, on_database};
use sqlx::types::Json;

/// The version that moved referrals into their answers' rows.
const MOVE_VERSION: i64 = 12;

fn referral(number: u32, status: ReferralStatus) -> Referral {
    Referral {
        id: format!("ref_{number:02}"),
        customer_id: "C1".to_owned(),
        order_id: format!("order-{number}"),
        currency: "CNY".to_owned(),
        amount_minor: 10_000 + i64::from(number),
        reasons: vec!["LIMIT_EXCEEDED".to_owned()],
        decision_id: format!("dec_{number:02}"),
        idempotency_key: format!("key-{number}"),
        created_at: Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, number).unwrap(),
        created_by: Actor {
            principal_id: "erp".to_owned(),
            person_id: String::new(),
            name: "erp".to_owned(),
            roles: vec!["ORDER_ENTRY".to_owned()],
        },
        status,
        group_id: None,
        hold_ttl_seconds: None,
        limit_minor: Some(1_000_000),
        exposure_minor: 1_000_000,
        group_limit_minor: None,
        group_exposure_minor: None,
        decided_by: None,
        decided_at: None,
        decision_reason: String::new(),
        hold_id: String::new(),
        oldest_overdue_days: None,
        approval_chain: None,
        release_conditions: Vec::new(),
    }
}

async fn referrals_survive_the_move(backend: Backend) {
    let database = Database::open(&backend, &credit_limits::STORE, 2, false)
        .await
        .unwrap();
    migrate_before(&database, &credit_limits::STORE, MOVE_VERSION)
        .await
        .unwrap();

    // Three referred answers as the old schema kept them, one referral already released, and
    // an approved answer with no referral.
    let mut decided = referral(2, ReferralStatus::Released);
    decided.decided_at = Some(Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap());
    decided.decision_reason = "good payer".to_owned();
    let stored = vec![
        referral(1, ReferralStatus::Open),
        decided,
        referral(3, ReferralStatus::Open),
    ];
    let answers: Vec<(&str, &str, &str)> = stored
        .iter()
        .map(|referral| {
            (
                referral.idempotency_key.as_str(),
                referral.decision_id.as_str(),
                "REFERRED",
            )
        })
        .chain([("key-9", "dec_09", "APPROVED")])
        .collect();
    on_database!(&database, |pool, sql| {
        for (key, decision_id, decision) in &answers {
            sqlx::query(&sql(
                "INSERT INTO authorizations (customer_id, idempotency_key, fingerprint, decision_id, decision, response, created_at) \
                 VALUES ('C1', $1, $1, $2, $3, $4, $5)",
            ))
            .bind(key)
            .bind(decision_id)
            .bind(decision)
            .bind(vec![7_u8, 7, 7])
            .bind(Utc::now())
            .execute(pool)
            .await
            .unwrap();
        }
        for referral in &stored {
            sqlx::query(&sql(
                "INSERT INTO referrals (id, customer_id, status, document, created_at) VALUES ($1, $2, $3, $4, $5)",
            ))
            .bind(&referral.id)
            .bind(&referral.customer_id)
            .bind(referral.status.as_str())
            .bind(Json(referral))
            .bind(referral.created_at)
            .execute(pool)
            .await
            .unwrap();
        }
    });

    database.migrate(&credit_limits::STORE).await.unwrap();
    let ledger = SqlLedger::new(database.clone());

    for referral in &stored {
        assert_eq!(
            ledger.referral(&referral.id).await.unwrap().as_ref(),
            Some(referral)
        );
    }
    let page = Page {
        size: 10,
        after: None,
    };
    let queue: Vec<String> = ledger
        .referrals(None, "", &page)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, referral)| referral.id)
        .collect();
    assert_eq!(queue, ["ref_01", "ref_03", "ref_02"], "open ones first");
    let open: Vec<String> = ledger
        .referrals(Some(ReferralStatus::Open), "C1", &page)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, referral)| referral.id)
        .collect();
    assert_eq!(open, ["ref_01", "ref_03"]);
    for (key, decision_id, _) in &answers {
        let answer = ledger.answer("C1", key).await.unwrap().unwrap();
        assert_eq!(&answer.decision_id, decision_id);
        assert_eq!(answer.response, [7, 7, 7]);
    }
}

#[tokio::test]
async fn referrals_move_into_their_answers_rows_on_postgres() {
    let test_database = TestDatabase::create().await;
    referrals_survive_the_move(test_database.backend()).await;
    test_database.drop_database().await;
}

#[tokio::test]
async fn referrals_move_into_their_answers_rows_on_sqlite() {
    let data_dir = tempfile::tempdir().unwrap();
    referrals_survive_the_move(Backend::Embedded {
        data_dir: data_dir.path().to_path_buf(),
    })
    .await;
}
