//! Each hot-path use case on its own, on the embedded parts (a SQLite file, the in-process
//! cache): the same code the e2e suite drives through gRPC, without a server around it.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use credit_core::{Currency, Money, Principal, Role};
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::Database;
use credit_runtime::config::Backend;
use credit_runtime::events::new_event;
use credit_runtime::sql::IdempotencyKey;

use super::HotPath;

use crate::app::limits::CreditAdmin;
use crate::domain::limits::{Actor, LimitDecision, NewLimitRequest, Scope};
use crate::exposure::InProcessExposureCache;
use crate::ledger::SqlLedger;
use crate::store::{LimitStore, SqlLimitStore};

const CUSTOMER: &str = "cus_unit";

struct Fixture {
    hot: HotPath,
    _folder: tempfile::TempDir,
}

fn person(id: &str, roles: &[Role], authority: Option<&str>) -> Principal {
    Principal {
        id: id.to_owned(),
        person_id: format!("psn_{id}"),
        name: id.to_owned(),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        approval_authority: authority.map(|amount| Money::parse(amount, "CNY").unwrap()),
    }
}

fn cny(amount: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.to_owned(),
        currency: "CNY".to_owned(),
    })
}

/// An active customer with a limit of 10,000.00 CNY, granted by a maker and a checker.
async fn fixture() -> Fixture {
    let folder = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: folder.path().to_owned(),
    };
    let database = Database::open(&backend, &crate::STORE, 2, true)
        .await
        .unwrap();
    let store = Arc::new(SqlLimitStore::new(database.clone()));
    let registered = new_event(
        "intake",
        Payload::CustomerRegistered(pb::CustomerRegistered {
            customer_id: CUSTOMER.to_owned(),
            status: pb::CustomerStatus::Active as i32,
            ..Default::default()
        }),
    );
    store
        .apply_customer_event("limits", &registered)
        .await
        .unwrap();
    let hot = HotPath::new(
        store.clone() as Arc<dyn LimitStore>,
        Arc::new(SqlLedger::new(database)),
        Arc::new(InProcessExposureCache::new()),
        Currency::parse("CNY").unwrap(),
    );
    let admin = CreditAdmin::new(store, hot.clone());
    let maker = person("ana", &[Role::Analyst], None);
    let requested = admin
        .request_limit_change(
            Actor::of(&maker),
            NewLimitRequest {
                scope: Scope::Customer(CUSTOMER.to_owned()),
                amount: Money::parse("10000.00", "CNY").unwrap(),
                valid_from: Utc::now(),
                valid_until: None,
                temporary: false,
                reason: "first limit".to_owned(),
            },
            &IdempotencyKey::of_system("test", "limit-1".to_owned(), "Test", String::new()),
            Utc::now(),
        )
        .await
        .unwrap();
    let checker = person("max", &[Role::CreditManager], Some("1000000"));
    admin
        .decide_limit_request(
            &checker,
            LimitDecision {
                limit_request_id: requested.request.id,
                approving: true,
                reason: "checked".to_owned(),
            },
            &IdempotencyKey::of_system("test", "decide-1".to_owned(), "Test", String::new()),
        )
        .await
        .unwrap();
    Fixture {
        hot,
        _folder: folder,
    }
}

fn order(order_id: &str, amount: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        customer_id: CUSTOMER.to_owned(),
        order_id: order_id.to_owned(),
        amount: cny(amount),
        idempotency_key: order_id.to_owned(),
        hold_ttl: None,
    }
}

fn erp() -> Principal {
    person("erp", &[Role::OrderEntry], None)
}

async fn exposure(hot: &HotPath) -> String {
    hot.exposure(&Scope::Customer(CUSTOMER.to_owned()))
        .await
        .unwrap()
        .exposure
        .unwrap()
        .amount
}

fn decision(value: i32) -> pb::AuthorizationDecision {
    pb::AuthorizationDecision::try_from(value).unwrap()
}

#[tokio::test]
async fn authorize_reserves_within_the_limit_and_a_retry_gets_the_first_answer() {
    let Fixture { hot, _folder } = fixture().await;
    let first = hot
        .authorize(&erp(), &order("SO-1", "4000.00"))
        .await
        .unwrap();
    assert_eq!(
        decision(first.decision),
        pb::AuthorizationDecision::Approved
    );
    assert!(!first.hold_id.is_empty());
    assert_eq!(first.available, cny("6000.00"));
    assert_eq!(exposure(&hot).await, "4000.00");

    let retried = hot
        .authorize(&erp(), &order("SO-1", "4000.00"))
        .await
        .unwrap();
    assert!(retried.replayed);
    assert_eq!(retried.decision_id, first.decision_id);
    assert_eq!(retried.hold_id, first.hold_id);
    assert_eq!(exposure(&hot).await, "4000.00", "a retry reserves nothing");
}

#[tokio::test]
async fn check_credit_answers_without_reserving() {
    let Fixture { hot, _folder } = fixture().await;
    let check = pb::CheckCreditRequest {
        customer_id: CUSTOMER.to_owned(),
        amount: cny("9000.00"),
        order_id: "SO-2".to_owned(),
    };
    let answer = hot.check_credit(&check).await.unwrap();
    assert_eq!(
        decision(answer.decision),
        pb::AuthorizationDecision::Approved
    );
    assert_eq!(answer.available, cny("10000.00"), "nothing was taken");
    assert_eq!(exposure(&hot).await, "0.00");
    let beyond = pb::CheckCreditRequest {
        amount: cny("12000.00"),
        ..check
    };
    let answer = hot.check_credit(&beyond).await.unwrap();
    assert_eq!(
        decision(answer.decision),
        pb::AuthorizationDecision::Declined
    );
}

#[tokio::test]
async fn settle_release_frees_the_hold_and_capture_keeps_it_owed() {
    let Fixture { hot, _folder } = fixture().await;
    let first = hot
        .authorize(&erp(), &order("SO-3", "3000.00"))
        .await
        .unwrap();
    let second = hot
        .authorize(&erp(), &order("SO-4", "2000.00"))
        .await
        .unwrap();
    assert_eq!(exposure(&hot).await, "5000.00");

    let released = hot
        .release(&pb::ReleaseRequest {
            hold_id: second.hold_id.clone(),
            reason: "order cancelled".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(released.hold.unwrap().status(), pb::HoldStatus::Released);
    assert_eq!(exposure(&hot).await, "3000.00");

    let captured = hot
        .capture(&pb::CaptureRequest {
            hold_id: first.hold_id.clone(),
            amount: cny("3000.00"),
            invoice_id: "INV-3".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(captured.hold.unwrap().status(), pb::HoldStatus::Captured);
    // Captured, the amount stays in exposure: it is owed now, as a receivable.
    assert_eq!(exposure(&hot).await, "3000.00");
}

#[tokio::test]
async fn an_order_past_the_limit_is_referred_and_another_person_may_release_it() {
    let Fixture { hot, _folder } = fixture().await;
    hot.authorize(&erp(), &order("SO-5", "8000.00"))
        .await
        .unwrap();
    // 10,500 is within the 10 % band over the limit: referred, not declined.
    let referred = hot
        .authorize(&erp(), &order("SO-6", "2500.00"))
        .await
        .unwrap();
    assert_eq!(
        decision(referred.decision),
        pb::AuthorizationDecision::Referred,
        "{:?}",
        referred.reasons
    );
    assert!(referred.hold_id.is_empty());
    assert_eq!(
        exposure(&hot).await,
        "8000.00",
        "a referral reserves nothing"
    );

    let queue = hot
        .list_referrals(&pb::ListReferralsRequest {
            status: pb::ReferralStatus::Open as i32,
            customer_id: CUSTOMER.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(queue.referrals.len(), 1);
    assert_eq!(queue.referrals[0].referral_id, referred.referral_id);

    let manager = person("max", &[Role::CreditManager], Some("1000000"));
    let released = hot
        .decide_referral(
            &manager,
            &pb::DecideReferralRequest {
                request_id: "release-6".to_owned(),
                referral_id: referred.referral_id.clone(),
                outcome: pb::ReferralOutcome::Release as i32,
                reason: "long-standing customer".to_owned(),
                hold_ttl: None,
                conditions: Vec::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        released.referral.unwrap().status(),
        pb::ReferralStatus::Released
    );
    assert!(released.hold.is_some());
    assert_eq!(
        exposure(&hot).await,
        "10500.00",
        "the released order holds credit"
    );
}

#[tokio::test]
async fn a_blocked_customer_gets_no_approval_until_the_block_is_cleared() {
    let Fixture { hot, _folder } = fixture().await;
    let manager = person("max", &[Role::CreditManager], Some("1000000"));
    hot.set_block(
        &manager,
        &pb::SetCreditBlockRequest {
            customer_id: CUSTOMER.to_owned(),
            reason: "fraud suspected".to_owned(),
        },
    )
    .await
    .unwrap();
    let blocked = hot
        .authorize(&erp(), &order("SO-7", "10.00"))
        .await
        .unwrap();
    assert_ne!(
        decision(blocked.decision),
        pb::AuthorizationDecision::Approved
    );
    let codes: Vec<&str> = blocked
        .reasons
        .iter()
        .map(|reason| reason.code.as_str())
        .collect();
    assert!(codes.contains(&"CREDIT_BLOCK"), "{codes:?}");

    hot.clear_block(
        &manager,
        &pb::ClearCreditBlockRequest {
            customer_id: CUSTOMER.to_owned(),
            block_type: pb::CreditBlockType::Manual as i32,
            reason: "cleared".to_owned(),
        },
    )
    .await
    .unwrap();
    let cleared = hot
        .authorize(&erp(), &order("SO-8", "10.00"))
        .await
        .unwrap();
    assert_eq!(
        decision(cleared.decision),
        pb::AuthorizationDecision::Approved
    );
}

#[tokio::test]
async fn a_cold_customer_is_warmed_from_the_store_and_the_ledger_before_deciding() {
    let Fixture { hot, _folder } = fixture().await;
    hot.authorize(&erp(), &order("SO-9", "2500.00"))
        .await
        .unwrap();
    // The cache loses everything (a Redis restart): the next decision rebuilds the profile.
    hot.cache().evict_all().await.unwrap();
    assert!(hot.cache().get_customer(CUSTOMER).await.unwrap().is_none());

    let answer = hot
        .authorize(&erp(), &order("SO-10", "7000.00"))
        .await
        .unwrap();
    assert_eq!(
        decision(answer.decision),
        pb::AuthorizationDecision::Approved
    );
    assert_eq!(
        answer.available,
        cny("500.00"),
        "the ledger's 2,500 came back"
    );
    let profile = hot.cache().get_customer(CUSTOMER).await.unwrap().unwrap();
    assert_eq!(profile.limit_currency.as_deref(), Some("CNY"));
    assert_eq!(profile.limit.unwrap().amount, 1_000_000);
}
