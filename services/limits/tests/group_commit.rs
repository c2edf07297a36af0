//! Group commit of Authorize's writes on PostgreSQL: hundreds of concurrent writes are
//! committed in batches, and each keeps its own outcome — a fresh key is written, the second
//! of two writes with one key is a duplicate, a hold reserved in an epoch a rebuild has
//! moved is refused — exactly as when each is written alone. The ledger afterwards holds
//! exactly the holds, answers, referrals and events of the writes that succeeded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::sync::Arc;

use chrono::Utc;
use credit_limits::domain::limits::Actor;
use credit_limits::ledger::{
    Hold, HoldStatus, LedgerError, LedgerStore, Referral, ReferralStatus, SqlLedger, StoredAnswer,
};
use credit_proto::v1 as pb;
use credit_runtime::events::new_event;
use credit_runtime::{Database, testing::TestDatabase};

fn person() -> Actor {
    Actor {
        principal_id: "erp".to_owned(),
        person_id: String::new(),
        name: "erp".to_owned(),
        roles: vec!["ORDER_ENTRY".to_owned()],
    }
}

fn answer(customer_id: &str, key: &str, decision_id: &str) -> StoredAnswer {
    StoredAnswer {
        customer_id: customer_id.to_owned(),
        idempotency_key: key.to_owned(),
        fingerprint: key.to_owned(),
        decision_id: decision_id.to_owned(),
        decision: "APPROVED".to_owned(),
        response: vec![1, 2, 3],
        created_at: Utc::now(),
    }
}

fn hold(customer_id: &str, group_id: &str, id: &str, key: &str, amount: i64, epoch: i64) -> Hold {
    let now = Utc::now();
    Hold {
        id: id.to_owned(),
        customer_id: customer_id.to_owned(),
        group_id: Some(group_id.to_owned()),
        order_id: key.to_owned(),
        currency: "CNY".to_owned(),
        amount_minor: amount,
        status: HoldStatus::Open,
        captured_minor: 0,
        released_minor: 0,
        invoice_id: String::new(),
        release_reason: String::new(),
        decision_id: format!("dec_{id}"),
        idempotency_key: key.to_owned(),
        created_at: now,
        expires_at: now + chrono::Duration::days(7),
        closed_at: None,
        created_by: person(),
        epoch,
        referral_id: String::new(),
    }
}

fn referral(customer_id: &str, id: &str, key: &str) -> (Referral, pb::Event) {
    let referral = Referral {
        id: id.to_owned(),
        customer_id: customer_id.to_owned(),
        order_id: key.to_owned(),
        currency: "CNY".to_owned(),
        amount_minor: 100,
        reasons: vec!["LIMIT_EXCEEDED".to_owned()],
        decision_id: format!("dec_{id}"),
        idempotency_key: key.to_owned(),
        created_at: Utc::now(),
        created_by: person(),
        status: ReferralStatus::Open,
        group_id: None,
        hold_ttl_seconds: None,
        limit_minor: Some(1_000),
        exposure_minor: 1_000,
        group_limit_minor: None,
        group_exposure_minor: None,
        decided_by: None,
        decided_at: None,
        decision_reason: String::new(),
        hold_id: String::new(),
        oldest_overdue_days: Some(0),
        approval_chain: None,
        release_conditions: Vec::new(),
    };
    let event = new_event(
        "credit.v1.LimitService",
        pb::event::Payload::ReferralCreated(pb::ReferralCreated {
            referral_id: id.to_owned(),
            customer_id: customer_id.to_owned(),
            ..Default::default()
        }),
    );
    (referral, event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_writes_keep_their_own_outcomes() {
    let test_database = TestDatabase::create().await;
    let database = Database::open(&test_database.backend(), &credit_limits::STORE, 8, true)
        .await
        .unwrap();
    let ledger = Arc::new(SqlLedger::new(database.clone()));
    let (customer_epoch, _) = ledger.rebuild("customer:C1").await.unwrap();
    let (group_epoch, _) = ledger.rebuild("group:G1").await.unwrap();
    let epoch = i64::try_from(customer_epoch).unwrap();

    let mut writes = tokio::task::JoinSet::new();
    for index in 0..300 {
        let ledger = ledger.clone();
        writes.spawn(async move {
            // Keys 0..20 are written twice (two decisions, one key); every 10th hold was
            // reserved in an epoch a rebuild has since moved; every 7th write is a referral.
            let key = format!("key-{}", index % 280);
            let id = format!("{index}");
            let outcome = if index % 7 == 0 {
                let (referral, event) = referral("C1", &format!("ref_{id}"), &key);
                ledger
                    .record_answer(
                        &answer("C1", &key, &format!("dec_ref_{id}")),
                        Some((&referral, &event)),
                    )
                    .await
            } else {
                let epoch = if index % 10 == 0 { epoch + 1 } else { epoch };
                let hold = hold("C1", "G1", &format!("hld_{id}"), &key, 100, epoch);
                ledger
                    .record_hold(
                        &hold,
                        Some(("G1", group_epoch)),
                        &answer("C1", &key, &hold.decision_id),
                    )
                    .await
            };
            (index, key, outcome)
        });
    }
    let outcomes = writes.join_all().await;

    let mut written_keys = std::collections::HashSet::new();
    let mut held = 0_i64;
    let mut referred = 0_usize;
    for (index, key, outcome) in &outcomes {
        match outcome {
            Ok(()) => {
                assert!(written_keys.insert(key.clone()), "{key} written twice");
                if index % 7 == 0 {
                    referred += 1;
                } else {
                    assert_ne!(index % 10, 0, "a hold of a moved epoch was written");
                    held += 100;
                }
            }
            Err(LedgerError::Duplicate) => assert!(*index % 280 < 20, "{key} was not reused"),
            Err(LedgerError::EpochMoved) => assert_eq!(index % 10, 0),
            Err(other) => panic!("write {index}: {other}"),
        }
    }
    // Every key ends up answered once, except those whose only write was refused for its
    // epoch.
    for key in 0..280 {
        let writers: Vec<usize> = [key, key + 280]
            .into_iter()
            .filter(|index| *index < 300)
            .collect();
        let refusable = writers
            .iter()
            .all(|index| index % 10 == 0 && index % 7 != 0);
        assert!(
            written_keys.contains(&format!("key-{key}")) || refusable,
            "key-{key} never answered"
        );
    }

    let exposure = ledger.exposure("customer:C1").await.unwrap();
    assert_eq!(exposure.open_holds, held);
    assert_eq!(ledger.exposure("group:G1").await.unwrap().open_holds, held);
    let Database::Postgres(pool) = &database else {
        panic!("PostgreSQL");
    };
    let answers: i64 = sqlx::query_scalar("SELECT count(*) FROM authorizations")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(usize::try_from(answers).unwrap(), written_keys.len());
    let referrals: i64 =
        sqlx::query_scalar("SELECT count(*) FROM authorizations WHERE referral_id IS NOT NULL")
            .fetch_one(pool)
            .await
            .unwrap();
    let rows: Vec<(Vec<u8>, bool)> =
        sqlx::query_as("SELECT payload, packed FROM outbox WHERE event_type = 'ReferralCreated'")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut announced = std::collections::HashSet::new();
    for (payload, packed) in rows {
        for (event, _) in credit_runtime::events::outbox_row_events(payload, packed).unwrap() {
            let Some(pb::event::Payload::ReferralCreated(created)) = event.payload else {
                panic!("not a ReferralCreated event: {event:?}");
            };
            assert!(announced.insert(created.referral_id), "announced twice");
        }
    }
    assert_eq!(usize::try_from(referrals).unwrap(), referred);
    assert_eq!(announced.len(), referred);
    database.close().await;
    test_database.drop_database().await;
}
