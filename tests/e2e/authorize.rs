//! Authorize, CheckCredit, Capture, Release and GetExposure, on both backends; and the
//! invariants of the hot path under 64 concurrent callers.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use credit_core::Role;
use credit_e2e_tests::{Authed, TestSuite, uscc};
use credit_proto::v1 as pb;
use credit_proto::v1::limit_service_client::LimitServiceClient;
use rust_decimal::Decimal;
use tonic::Code;
use tonic_types::StatusExt;

use crate::intake::{create, enterprise};

pub(crate) type Limits = LimitServiceClient<Authed>;

pub(crate) fn cny(amount: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.into(),
        currency: "CNY".into(),
    })
}

pub(crate) fn amount(money: &Option<pb::Money>) -> Decimal {
    Decimal::from_str(&money.as_ref().unwrap().amount).unwrap()
}

pub(crate) fn codes(reasons: &[pb::Reason]) -> Vec<String> {
    reasons.iter().map(|reason| reason.code.clone()).collect()
}

pub(crate) fn scope_of_customer(customer_id: &str) -> Option<pb::LimitScope> {
    Some(pb::LimitScope {
        scope: Some(pb::limit_scope::Scope::CustomerId(customer_id.into())),
    })
}

pub(crate) fn scope_of_group(group_id: &str) -> Option<pb::LimitScope> {
    Some(pb::LimitScope {
        scope: Some(pb::limit_scope::Scope::GroupId(group_id.into())),
    })
}

/// Grants `amount` to `scope` through a maker and a checker.
pub(crate) async fn grant(
    suite: &TestSuite,
    scope: Option<pb::LimitScope>,
    amount: &str,
    request_id: &str,
) {
    let mut maker = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    let mut checker = suite.limits(
        &suite
            .issue_token_with_authority("sen", &[Role::CreditManager], Some("100000000"))
            .await,
    );
    let mut pending = None;
    for _ in 0..credit_e2e_tests::POLLS {
        let attempt = maker
            .request_limit_change(pb::RequestLimitChangeRequest {
                request_id: request_id.into(),
                scope: scope.clone(),
                amount: cny(amount),
                reason: "onboarding".into(),
                ..Default::default()
            })
            .await;
        match attempt {
            Ok(response) => {
                pending = response.into_inner().limit_request;
                break;
            }
            // Limits learns of customers and groups from intake's events, a moment later.
            Err(status) if status.code() == Code::NotFound => {
                tokio::time::sleep(Duration::from_millis(25)).await
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    let pending = pending.expect("limits learned of the scope");
    checker
        .decide_limit_request(pb::DecideLimitRequestRequest {
            request_id: format!("{request_id}-decision"),
            limit_request_id: pending.limit_request_id,
            decision: pb::ApprovalDecision::Approve as i32,
            reason: "approved".into(),
        })
        .await
        .unwrap();
}

/// A registered customer, optionally ACTIVE, known to limits.
pub(crate) async fn customer(suite: &TestSuite, seed: u64, active: bool) -> String {
    let mut intake = suite.intake(
        &suite
            .issue_token("ana", &[Role::Analyst, Role::CreditManager])
            .await,
    );
    let customer = create(
        &mut intake,
        &format!("auth-c-{seed}"),
        enterprise(&format!("Order Co {seed}"), &uscc(seed)),
    )
    .await
    .unwrap();
    if active {
        intake
            .set_customer_status(pb::SetCustomerStatusRequest {
                customer_id: customer.customer_id.clone(),
                status: pb::CustomerStatus::Active as i32,
                reason: "approved for credit".into(),
                etag: String::new(),
            })
            .await
            .unwrap();
    }
    customer.customer_id
}

pub(crate) async fn check(
    limits: &mut Limits,
    customer_id: &str,
    amount: &str,
) -> pb::CheckCreditResponse {
    limits
        .check_credit(pb::CheckCreditRequest {
            customer_id: customer_id.into(),
            amount: cny(amount),
            order_id: "what-if".into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Waits until limits has applied intake's events and the limit so that `amount` is approved.
pub(crate) async fn wait_until_approvable(limits: &mut Limits, customer_id: &str, amount: &str) {
    for _ in 0..credit_e2e_tests::POLLS {
        if let Ok(response) = limits
            .check_credit(pb::CheckCreditRequest {
                customer_id: customer_id.into(),
                amount: cny(amount),
                order_id: "what-if".into(),
            })
            .await
            && response.get_ref().decision() == pb::AuthorizationDecision::Approved
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{customer_id} never became approvable for {amount}");
}

pub(crate) async fn authorize(
    limits: &mut Limits,
    customer_id: &str,
    key: &str,
    amount: &str,
) -> Result<pb::AuthorizeResponse, tonic::Status> {
    Ok(limits
        .authorize(pb::AuthorizeRequest {
            customer_id: customer_id.into(),
            order_id: format!("order-{key}"),
            amount: cny(amount),
            idempotency_key: key.into(),
            hold_ttl: None,
        })
        .await?
        .into_inner())
}

pub(crate) async fn exposure(limits: &mut Limits, scope: Option<pb::LimitScope>) -> pb::Exposure {
    limits
        .get_exposure(pb::GetExposureRequest { scope })
        .await
        .unwrap()
        .into_inner()
        .exposure
        .unwrap()
}

pub async fn authorize_follows_the_limit_and_its_tolerance_band(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let prospect = customer(suite, 21_001, false).await;
    let mut declined = None;
    for _ in 0..credit_e2e_tests::POLLS {
        match authorize(&mut orders, &prospect, "p-1", "100.00").await {
            Ok(response) => {
                declined = Some(response);
                break;
            }
            Err(status) if status.code() == Code::NotFound => {
                tokio::time::sleep(Duration::from_millis(25)).await
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    let declined = declined.unwrap();
    assert_eq!(declined.decision(), pb::AuthorizationDecision::Declined);
    assert_eq!(
        codes(&declined.reasons),
        ["CUSTOMER_INACTIVE", "NO_VALID_LIMIT"]
    );
    assert_eq!(declined.reasons[0].metadata["status"], "PROSPECT");
    assert!(declined.hold_id.is_empty());

    let customer_id = customer(suite, 21_002, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "auth-lim-1",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    let approved = authorize(&mut orders, &customer_id, "o-1", "60000.00")
        .await
        .unwrap();
    assert_eq!(
        approved.decision(),
        pb::AuthorizationDecision::Approved,
        "{:?}",
        approved.reasons
    );
    assert!(approved.hold_id.starts_with("hld_"));
    assert_eq!(amount(&approved.exposure), Decimal::new(60_000, 0));
    assert_eq!(amount(&approved.available), Decimal::new(40_000, 0));
    assert_eq!(amount(&approved.limit), Decimal::new(100_000, 0));

    // 60,000 + 45,000 = 105,000: over the limit, inside the 10 % band → referred.
    let referred = authorize(&mut orders, &customer_id, "o-2", "45000.00")
        .await
        .unwrap();
    assert_eq!(referred.decision(), pb::AuthorizationDecision::Referred);
    assert_eq!(codes(&referred.reasons), ["LIMIT_EXCEEDED"]);
    let figures = &referred.reasons[0].metadata;
    assert_eq!(figures["limit"], "100000.00");
    assert_eq!(figures["exposure"], "60000.00");
    assert_eq!(figures["amount"], "45000.00");
    assert_eq!(figures["tolerance_percent"], "10");
    assert_eq!(figures["within_tolerance"], "true");
    assert!(referred.referral_id.starts_with("ref_"));
    assert!(referred.hold_id.is_empty());
    // 60,000 + 50,000.01 = 110,000.01: beyond the band → declined.
    let beyond = authorize(&mut orders, &customer_id, "o-3", "50000.01")
        .await
        .unwrap();
    assert_eq!(beyond.decision(), pb::AuthorizationDecision::Declined);
    assert_eq!(beyond.reasons[0].metadata["within_tolerance"], "false");

    let what_if = check(&mut orders, &customer_id, "40000.00").await;
    assert_eq!(what_if.decision(), pb::AuthorizationDecision::Approved);
    let position = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(
        amount(&position.open_holds),
        Decimal::new(60_000, 0),
        "a what-if reserves nothing"
    );
    assert_eq!(amount(&position.exposure), Decimal::new(60_000, 0));
    assert_eq!(amount(&position.available), Decimal::new(40_000, 0));
    assert_eq!(position.utilization.as_deref(), Some("0.6000"));

    let other_currency = orders
        .authorize(pb::AuthorizeRequest {
            customer_id: customer_id.clone(),
            order_id: "usd".into(),
            amount: Some(pb::Money {
                amount: "10.00".into(),
                currency: "USD".into(),
            }),
            idempotency_key: "usd-1".into(),
            hold_ttl: None,
        })
        .await
        .unwrap_err();
    assert_eq!(other_currency.code(), Code::FailedPrecondition);
    let bad = authorize(&mut orders, &customer_id, "o-4", "-5.00")
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

pub async fn authorize_is_idempotent_on_its_key(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 22_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "idem-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    let first = authorize(&mut orders, &customer_id, "key-1", "10000.00")
        .await
        .unwrap();
    let retry = authorize(&mut orders, &customer_id, "key-1", "10000.00")
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.hold_id, first.hold_id);
    assert_eq!(retry.decision_id, first.decision_id);
    let position = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(
        amount(&position.open_holds),
        Decimal::new(10_000, 0),
        "one hold, not two"
    );

    // Retried after the limit is used up, the approval is still the answer: the first
    // decision, never a second hold, and nothing referred.
    authorize(&mut orders, &customer_id, "key-2", "90000.00")
        .await
        .unwrap();
    let late_retry = authorize(&mut orders, &customer_id, "key-1", "10000.00")
        .await
        .unwrap();
    assert!(late_retry.replayed);
    assert_eq!(late_retry.decision(), pb::AuthorizationDecision::Approved);
    assert_eq!(late_retry.hold_id, first.hold_id);
    // A referred order is replayed as referred, with its one referral.
    let referred = authorize(&mut orders, &customer_id, "key-3", "5000.00")
        .await
        .unwrap();
    assert_eq!(referred.decision(), pb::AuthorizationDecision::Referred);
    let referred_again = authorize(&mut orders, &customer_id, "key-3", "5000.00")
        .await
        .unwrap();
    assert!(referred_again.replayed);
    assert_eq!(referred_again.referral_id, referred.referral_id);
    let position = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(amount(&position.open_holds), Decimal::new(100_000, 0));

    // Eight concurrent retries of one new key: one hold between them.
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut orders = orders.clone();
        let customer_id = customer_id.clone();
        racing.spawn(async move {
            authorize(&mut orders, &customer_id, "key-4", "1.00")
                .await
                .unwrap()
        });
    }
    let answers: Vec<pb::AuthorizeResponse> = racing.join_all().await;
    assert!(
        answers
            .iter()
            .all(|answer| answer.decision_id == answers[0].decision_id)
    );
    assert_eq!(answers.iter().filter(|answer| !answer.replayed).count(), 1);

    let changed = authorize(&mut orders, &customer_id, "key-1", "20000.00")
        .await
        .unwrap_err();
    assert_eq!(changed.code(), Code::AlreadyExists);
    assert_eq!(
        changed.get_error_details().error_info().unwrap().reason,
        "IDEMPOTENCY_KEY_REUSED"
    );
}

pub async fn capture_and_release_move_exposure_between_holds_and_receivables(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 23_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "cap-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    let cancelled = authorize(&mut orders, &customer_id, "c-1", "50000.00")
        .await
        .unwrap();
    let release = pb::ReleaseRequest {
        hold_id: cancelled.hold_id.clone(),
        reason: "order cancelled".into(),
    };
    let released = orders
        .release(release.clone())
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    assert_eq!(released.status(), pb::HoldStatus::Released);
    let again = orders
        .release(release)
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    assert_eq!(
        again.status(),
        pb::HoldStatus::Released,
        "releasing twice is harmless"
    );
    let late_capture = orders
        .capture(pb::CaptureRequest {
            hold_id: cancelled.hold_id.clone(),
            amount: cny("1.00"),
            invoice_id: "inv-late".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(late_capture.code(), Code::FailedPrecondition);
    assert_eq!(
        amount(
            &exposure(&mut orders, scope_of_customer(&customer_id))
                .await
                .exposure
        ),
        Decimal::ZERO
    );

    let shipped = authorize(&mut orders, &customer_id, "c-2", "50000.00")
        .await
        .unwrap();
    let too_much = orders
        .capture(pb::CaptureRequest {
            hold_id: shipped.hold_id.clone(),
            amount: cny("50000.01"),
            invoice_id: "inv-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        too_much.get_error_details().error_info().unwrap().reason,
        "CAPTURE_EXCEEDS_HOLD"
    );
    let captured = orders
        .capture(pb::CaptureRequest {
            hold_id: shipped.hold_id.clone(),
            amount: cny("30000.00"),
            invoice_id: "inv-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(amount(&captured.released_amount), Decimal::new(20_000, 0));
    let position = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(amount(&position.open_holds), Decimal::ZERO);
    assert_eq!(amount(&position.open_receivables), Decimal::new(30_000, 0));
    assert_eq!(amount(&position.exposure), Decimal::new(30_000, 0));
    // The partial capture gave 20,000 back: 70,000 more fits exactly.
    let fits = authorize(&mut orders, &customer_id, "c-3", "70000.00")
        .await
        .unwrap();
    assert_eq!(
        fits.decision(),
        pb::AuthorizationDecision::Approved,
        "{:?}",
        fits.reasons
    );
}

/// 64 callers at once, 16 orders each of 5,000, against one customer (limit 100,000) in a
/// group (limit 80,000): no approval beyond either limit, and the cache agrees with the
/// ledger to the cent.
pub async fn concurrent_callers_never_exceed_the_limits(suite: &TestSuite) {
    let orders_token = suite.issue_token("erp", &[Role::OrderEntry]).await;
    let mut orders = suite.limits(&orders_token);
    let customer_id = customer(suite, 24_001, true).await;
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let group = intake
        .create_group(pb::CreateGroupRequest {
            request_id: "conc-grp".into(),
            group: Some(pb::CustomerGroup {
                name: "Concurrency Group".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    intake
        .add_group_member(pb::AddGroupMemberRequest {
            group_id: group.group_id.clone(),
            customer_id: customer_id.clone(),
            reason: "subsidiary".into(),
        })
        .await
        .unwrap();
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "conc-lim",
    )
    .await;
    grant(
        suite,
        scope_of_group(&group.group_id),
        "80000.00",
        "conc-glim",
    )
    .await;
    // Approvable and in the group: a 79,999 what-if passes only under the group's limit once
    // the membership has reached limits... and 80,001 is referred by the group limit.
    for _ in 0..credit_e2e_tests::POLLS {
        let what_if = check(&mut orders, &customer_id, "80000.01").await;
        if codes(&what_if.reasons).contains(&"GROUP_LIMIT_EXCEEDED".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let approved_total = Arc::new(std::sync::Mutex::new(Decimal::ZERO));
    let mut callers = Vec::new();
    for caller in 0..64 {
        let mut client = suite.limits(&orders_token);
        let customer_id = customer_id.clone();
        let approved_total = approved_total.clone();
        callers.push(tokio::spawn(async move {
            for order in 0..16 {
                let key = format!("conc-{caller}-{order}");
                let response = authorize(&mut client, &customer_id, &key, "5000.00")
                    .await
                    .unwrap();
                if response.decision() == pb::AuthorizationDecision::Approved {
                    *approved_total.lock().unwrap() += Decimal::new(5_000, 0);
                }
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    let approved = *approved_total.lock().unwrap();
    assert!(
        approved <= Decimal::new(80_000, 0),
        "approved {approved} beyond the group limit"
    );
    assert_eq!(
        approved,
        Decimal::new(80_000, 0),
        "the group limit is used up, not left idle"
    );
    let customer_ledger = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(amount(&customer_ledger.exposure), approved);
    let group_ledger = exposure(&mut orders, scope_of_group(&group.group_id)).await;
    assert_eq!(amount(&group_ledger.exposure), approved);

    if let credit_runtime::config::Backend::Production {
        redis_url,
        redis_key_prefix,
        ..
    } = suite.backend()
    {
        use credit_limits::exposure::ExposureCache;
        let redis = credit_runtime::RedisHandle::connect(redis_url, redis_key_prefix)
            .await
            .unwrap();
        let cache = credit_limits::exposure::RedisExposureCache::new(redis);
        let cached = cache.get_customer(&customer_id).await.unwrap().unwrap();
        assert_eq!(
            Decimal::new(cached.exposure, 2),
            approved,
            "Redis equals the ledger"
        );
        let cached_group = cache.get_group(&group.group_id).await.unwrap().unwrap();
        assert_eq!(Decimal::new(cached_group.exposure, 2), approved);
    }
}

/// Redis loses everything while 64 callers order: exposure is rebuilt from the ledger, no
/// approval goes beyond the limit, and afterwards the cache equals the ledger exactly.
#[tokio::test]
async fn redis_flushed_mid_load_loses_no_approval_and_exceeds_no_limit() {
    use credit_limits::exposure::ExposureCache;
    let redis_server = credit_e2e_tests::OwnRedis::start().await;
    let suite = TestSuite::production_on(
        credit_suite::ServiceSelection::all(),
        Some(redis_server.url()),
    )
    .await;
    let orders_token = suite.issue_token("erp", &[Role::OrderEntry]).await;
    let mut orders = suite.limits(&orders_token);
    let customer_id = customer(&suite, 25_001, true).await;
    grant(
        &suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "flush-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    let approved_total = Arc::new(std::sync::Mutex::new(Decimal::ZERO));
    let mut callers = Vec::new();
    for caller in 0..64 {
        let mut client = suite.limits(&orders_token);
        let customer_id = customer_id.clone();
        let approved_total = approved_total.clone();
        callers.push(tokio::spawn(async move {
            for order in 0..8 {
                let key = format!("flush-{caller}-{order}");
                // During the flush a call may be refused as UNAVAILABLE: not approved.
                if let Ok(response) = authorize(&mut client, &customer_id, &key, "1000.00").await
                    && response.decision() == pb::AuthorizationDecision::Approved
                {
                    *approved_total.lock().unwrap() += Decimal::new(1_000, 0);
                }
            }
        }));
    }
    // Flush once part of the limit is used.
    for _ in 0..400 {
        if *approved_total.lock().unwrap() >= Decimal::new(30_000, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let client = redis::Client::open(redis_server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut connection)
        .await
        .unwrap();
    for caller in callers {
        caller.await.unwrap();
    }

    let approved = *approved_total.lock().unwrap();
    assert!(
        approved <= Decimal::new(100_000, 0),
        "approved {approved} beyond the limit"
    );
    let ledger = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(
        amount(&ledger.exposure),
        approved,
        "every approval the callers saw is in the ledger"
    );
    // Warm the cache (it may be cold after the flush) and compare it with the ledger.
    check(&mut orders, &customer_id, "1.00").await;
    let credit_runtime::config::Backend::Production {
        redis_url,
        redis_key_prefix,
        ..
    } = suite.backend()
    else {
        unreachable!()
    };
    let redis = credit_runtime::RedisHandle::connect(redis_url, redis_key_prefix)
        .await
        .unwrap();
    let cached = credit_limits::exposure::RedisExposureCache::new(redis)
        .get_customer(&customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Decimal::new(cached.exposure, 2),
        approved,
        "Redis equals the ledger"
    );
    suite.stop().await;
    drop(redis_server);
}

async fn open_referrals(
    reviewer: &mut Limits,
    page_size: i32,
    page_token: &str,
) -> (Vec<pb::Referral>, String) {
    let page = reviewer
        .list_referrals(pb::ListReferralsRequest {
            page_size,
            page_token: page_token.into(),
            status: pb::ReferralStatus::Open as i32,
            customer_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    (page.referrals, page.next_page_token)
}

fn decide(
    request_id: &str,
    referral_id: &str,
    outcome: pb::ReferralOutcome,
) -> pb::DecideReferralRequest {
    pb::DecideReferralRequest {
        request_id: request_id.into(),
        referral_id: referral_id.into(),
        outcome: outcome as i32,
        reason: "long-standing customer, payment promised".into(),
        hold_ttl: None,
        conditions: Vec::new(),
    }
}

fn reason_of(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .unwrap()
        .reason
        .clone()
}

pub async fn referrals_are_released_or_rejected_by_enough_authority(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let mut reviewer = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    let mut junior = suite.limits(
        &suite
            .issue_token_with_authority("jun", &[Role::CreditManager], Some("4999"))
            .await,
    );
    let mut senior = suite.limits(
        &suite
            .issue_token_with_authority("sen", &[Role::CreditManager], Some("1000000"))
            .await,
    );
    let customer_id = customer(suite, 26_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "ref-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    authorize(&mut orders, &customer_id, "r-1", "60000.00")
        .await
        .unwrap();
    let referred = authorize(&mut orders, &customer_id, "r-2", "45000.00")
        .await
        .unwrap();
    assert_eq!(referred.decision(), pb::AuthorizationDecision::Referred);
    let second = authorize(&mut orders, &customer_id, "r-3", "41000.00")
        .await
        .unwrap();
    assert_eq!(second.decision(), pb::AuthorizationDecision::Referred);

    // The queue: oldest first, one page at a time, with the figures a reviewer needs.
    let (first_page, token) = open_referrals(&mut reviewer, 1, "").await;
    assert_eq!(first_page.len(), 1);
    assert!(!token.is_empty());
    let listed = &first_page[0];
    assert_eq!(listed.referral_id, referred.referral_id);
    assert_eq!(listed.order_id, "order-r-2");
    assert_eq!(listed.status(), pb::ReferralStatus::Open);
    assert_eq!(codes(&listed.reasons), ["LIMIT_EXCEEDED"]);
    assert_eq!(amount(&listed.amount), Decimal::new(45_000, 0));
    let position = listed.customer_position.as_ref().unwrap();
    assert_eq!(amount(&position.limit), Decimal::new(100_000, 0));
    assert_eq!(amount(&position.exposure), Decimal::new(60_000, 0));
    let (second_page, last) = open_referrals(&mut reviewer, 1, &token).await;
    assert_eq!(second_page[0].referral_id, second.referral_id);
    assert!(last.is_empty());

    // Authority must cover the overshoot past the limit (5,000 here), not the order.
    let refused = junior
        .decide_referral(decide(
            "d-0",
            &referred.referral_id,
            pb::ReferralOutcome::Release,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&refused), "AUTHORITY_INSUFFICIENT");
    let not_a_manager = reviewer
        .decide_referral(decide(
            "d-00",
            &referred.referral_id,
            pb::ReferralOutcome::Release,
        ))
        .await
        .unwrap_err();
    assert_eq!(not_a_manager.code(), Code::PermissionDenied);

    // Four eyes: the orderer never decides its own referral, not with a second token of the
    // same person that holds CREDIT_MANAGER and ample authority, nor as ADMIN.
    for (token_roles, request_id) in [
        (&[Role::OrderEntry, Role::CreditManager][..], "d-own-1"),
        (&[Role::Admin][..], "d-own-2"),
    ] {
        let mut orderer_again = suite.limits(
            &suite
                .issue_token_with_authority("erp", token_roles, Some("100000000"))
                .await,
        );
        let own = orderer_again
            .decide_referral(decide(
                request_id,
                &referred.referral_id,
                pb::ReferralOutcome::Release,
            ))
            .await
            .unwrap_err();
        assert_eq!(own.code(), Code::PermissionDenied);
        assert_eq!(reason_of(&own), "SELF_APPROVAL");
    }

    // Release: a hold past the limit, recorded as an override.
    let released = senior
        .decide_referral(decide(
            "d-1",
            &referred.referral_id,
            pb::ReferralOutcome::Release,
        ))
        .await
        .unwrap()
        .into_inner();
    let referral = released.referral.unwrap();
    assert_eq!(referral.status(), pb::ReferralStatus::Released);
    assert_eq!(referral.decided_by.unwrap().principal, "sen");
    let hold = released.hold.unwrap();
    assert_eq!(referral.hold_id, hold.hold_id);
    assert_eq!(hold.referral_id, referred.referral_id);
    assert_eq!(hold.status(), pb::HoldStatus::Open);
    assert_eq!(amount(&hold.amount), Decimal::new(45_000, 0));
    let position = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(amount(&position.open_holds), Decimal::new(105_000, 0));
    assert_eq!(amount(&position.available), Decimal::new(-5_000, 0));
    // The cache counts the override too: the next order is over the limit.
    let next = check(&mut orders, &customer_id, "1.00").await;
    assert_eq!(codes(&next.reasons), ["LIMIT_EXCEEDED"]);

    // A retry replays; a second decision is refused; the order's own answer is unchanged.
    let retried = senior
        .decide_referral(decide(
            "d-1",
            &referred.referral_id,
            pb::ReferralOutcome::Release,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.hold.unwrap().hold_id, hold.hold_id);
    let twice = senior
        .decide_referral(decide(
            "d-2",
            &referred.referral_id,
            pb::ReferralOutcome::Reject,
        ))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&twice), "REFERRAL_NOT_OPEN");
    let original = authorize(&mut orders, &customer_id, "r-2", "45000.00")
        .await
        .unwrap();
    assert!(original.replayed);
    assert_eq!(original.decision(), pb::AuthorizationDecision::Referred);
    assert!(original.hold_id.is_empty());

    // Reject: closed, nothing reserved.
    let rejected = senior
        .decide_referral(decide(
            "d-3",
            &second.referral_id,
            pb::ReferralOutcome::Reject,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rejected.referral.unwrap().status(),
        pb::ReferralStatus::Rejected
    );
    assert!(rejected.hold.is_none());
    let again = senior
        .decide_referral(decide(
            "d-4",
            &second.referral_id,
            pb::ReferralOutcome::Release,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason_of(&again), "REFERRAL_NOT_OPEN");
    let position = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(amount(&position.open_holds), Decimal::new(105_000, 0));
    assert!(open_referrals(&mut reviewer, 0, "").await.0.is_empty());
    let all = reviewer
        .list_referrals(pb::ListReferralsRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .referrals;
    assert_eq!(all.len(), 2);

    let events = suite.outbox_event_types(&credit_limits::STORE).await;
    let count = |kind: &str| events.iter().filter(|event| *event == kind).count();
    assert_eq!(count("ReferralCreated"), 2);
    assert_eq!(count("ReferralDecided"), 2);
}

pub async fn credit_blocks_refer_every_order_until_cleared(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let mut collector = suite.limits(&suite.issue_token("col", &[Role::Collector]).await);
    let mut manager = suite.limits(&suite.issue_token("sen", &[Role::CreditManager]).await);
    let customer_id = customer(suite, 27_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "blk-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    let missing_reason = collector
        .set_credit_block(pb::SetCreditBlockRequest {
            customer_id: customer_id.clone(),
            reason: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing_reason.code(), Code::InvalidArgument);
    let set = pb::SetCreditBlockRequest {
        customer_id: customer_id.clone(),
        reason: "cheque bounced".into(),
    };
    let blocks = collector
        .set_credit_block(set.clone())
        .await
        .unwrap()
        .into_inner()
        .blocks;
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].block_type(), pb::CreditBlockType::Manual);
    assert_eq!(blocks[0].reason.as_ref().unwrap().message, "cheque bounced");
    assert_eq!(blocks[0].set_by.as_ref().unwrap().principal, "col");
    // Setting it again changes nothing.
    let again = collector
        .set_credit_block(set)
        .await
        .unwrap()
        .into_inner()
        .blocks;
    assert_eq!(again, blocks);

    let referred = authorize(&mut orders, &customer_id, "b-1", "10.00")
        .await
        .unwrap();
    assert_eq!(referred.decision(), pb::AuthorizationDecision::Referred);
    assert_eq!(codes(&referred.reasons), ["CREDIT_BLOCK"]);
    let position = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(position.blocks, blocks);

    let clear = |block_type: pb::CreditBlockType| pb::ClearCreditBlockRequest {
        customer_id: customer_id.clone(),
        block_type: block_type as i32,
        reason: "paid in full".into(),
    };
    let not_manual = manager
        .clear_credit_block(clear(pb::CreditBlockType::Overdue))
        .await
        .unwrap_err();
    assert_eq!(not_manual.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&not_manual), "BLOCK_NOT_MANUAL");
    let collector_clears = collector
        .clear_credit_block(clear(pb::CreditBlockType::Manual))
        .await
        .unwrap_err();
    assert_eq!(collector_clears.code(), Code::PermissionDenied);
    let cleared = manager
        .clear_credit_block(clear(pb::CreditBlockType::Unspecified))
        .await
        .unwrap()
        .into_inner();
    assert!(cleared.blocks.is_empty());
    let approved = authorize(&mut orders, &customer_id, "b-2", "10.00")
        .await
        .unwrap();
    assert_eq!(approved.decision(), pb::AuthorizationDecision::Approved);
    assert!(
        exposure(&mut orders, scope_of_customer(&customer_id))
            .await
            .blocks
            .is_empty()
    );

    let events = suite.outbox_event_types(&credit_limits::STORE).await;
    let changes = events
        .iter()
        .filter(|event| *event == "CreditBlockChanged")
        .count();
    assert_eq!(
        changes, 2,
        "one for set, one for clear; the repeated set is a no-op"
    );
}

pub async fn expired_holds_are_released_by_the_sweeper(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 28_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "exp-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    let approved = orders
        .authorize(pb::AuthorizeRequest {
            customer_id: customer_id.clone(),
            order_id: "short-lived".into(),
            amount: cny("30000.00"),
            idempotency_key: "e-1".into(),
            hold_ttl: Some(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.decision(), pb::AuthorizationDecision::Approved);
    let now = std::time::SystemTime::now();
    assert!(suite.expire_holds_at(now).await.is_empty(), "not yet due");
    assert_eq!(
        amount(
            &exposure(&mut orders, scope_of_customer(&customer_id))
                .await
                .open_holds
        ),
        Decimal::new(30_000, 0)
    );

    let expired = suite.expire_holds_at(now + Duration::from_secs(61)).await;
    assert_eq!(expired, std::slice::from_ref(&approved.hold_id));
    let position = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(amount(&position.open_holds), Decimal::ZERO);
    assert_eq!(amount(&position.exposure), Decimal::ZERO);
    // The cache gave the amount back too: the whole limit is available again.
    let whole = check(&mut orders, &customer_id, "100000.00").await;
    assert_eq!(whole.decision(), pb::AuthorizationDecision::Approved);

    let hold = orders
        .release(pb::ReleaseRequest {
            hold_id: approved.hold_id.clone(),
            reason: "checking".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    assert_eq!(hold.status(), pb::HoldStatus::Expired);
    let capture = orders
        .capture(pb::CaptureRequest {
            hold_id: approved.hold_id.clone(),
            invoice_id: "inv-late".into(),
            amount: None,
        })
        .await
        .unwrap_err();
    assert_eq!(capture.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&capture), "HOLD_EXPIRED");
    assert!(
        suite
            .expire_holds_at(now + Duration::from_secs(120))
            .await
            .is_empty()
    );
    let events = suite.outbox_event_types(&credit_limits::STORE).await;
    assert!(events.iter().any(|event| event == "HoldReleased"));
}

pub(crate) fn money(amount: &str, currency: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.into(),
        currency: currency.into(),
    })
}

pub(crate) async fn set_rate(
    limits: &mut Limits,
    request_id: &str,
    base: &str,
    quote: &str,
    rate: &str,
) -> Result<pb::FxRate, tonic::Status> {
    Ok(limits
        .set_fx_rate(pb::SetFxRateRequest {
            request_id: request_id.into(),
            fx_rate: Some(pb::FxRate {
                base_currency: base.into(),
                quote_currency: quote.into(),
                rate: rate.into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .fx_rate
        .unwrap())
}

async fn authorize_in(
    limits: &mut Limits,
    customer_id: &str,
    key: &str,
    amount: Option<pb::Money>,
) -> Result<pb::AuthorizeResponse, tonic::Status> {
    Ok(limits
        .authorize(pb::AuthorizeRequest {
            customer_id: customer_id.into(),
            order_id: format!("order-{key}"),
            amount,
            idempotency_key: key.into(),
            hold_ttl: None,
        })
        .await?
        .into_inner())
}

pub async fn orders_in_another_currency_are_converted_with_the_fx_table(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let mut treasury = suite.limits(&suite.admin_token);
    let customer_id = customer(suite, 27_001, true).await;
    grant(suite, scope_of_customer(&customer_id), "10000.00", "fx-lim").await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    // No rate yet: refused with a stable reason, nothing reserved.
    let missing = authorize_in(&mut orders, &customer_id, "fx-1", money("100.00", "EUR"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert_eq!(
        missing.get_error_details().error_info().unwrap().reason,
        "FX_RATE_MISSING"
    );

    // Only an admin sets rates; a bad rate is refused field by field.
    let clerk = set_rate(&mut orders, "fx-r0", "EUR", "CNY", "7.85")
        .await
        .unwrap_err();
    assert_eq!(clerk.code(), Code::PermissionDenied);
    let bad = set_rate(&mut treasury, "fx-r1", "EUR", "EUR", "-2")
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|violation| violation.field.clone())
        .collect();
    assert!(
        fields.contains(&"fx_rate.quote_currency".to_owned()),
        "{fields:?}"
    );
    assert!(fields.contains(&"fx_rate.rate".to_owned()), "{fields:?}");

    let stored = set_rate(&mut treasury, "fx-r2", "EUR", "CNY", "7.8512")
        .await
        .unwrap();
    assert_eq!(stored.rate, "7.8512");
    let replayed = set_rate(&mut treasury, "fx-r2", "EUR", "CNY", "7.8512")
        .await
        .unwrap();
    assert_eq!(replayed, stored);

    // 100.00 EUR x 7.8512 = 785.12 CNY, reserved in the limit's currency.
    let approved = authorize_in(&mut orders, &customer_id, "fx-1", money("100.00", "EUR"))
        .await
        .unwrap();
    assert_eq!(approved.decision(), pb::AuthorizationDecision::Approved);
    assert_eq!(approved.fx_rate, "7.8512");
    let converted = approved.amount_in_limit_currency.clone().unwrap();
    assert_eq!(
        (converted.amount.as_str(), converted.currency.as_str()),
        ("785.12", "CNY")
    );
    let position = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    assert_eq!(amount(&position.open_holds), Decimal::new(78_512, 2));

    // A pair with only the opposite rate uses its inverse: 1 / 0.125 = 8.
    set_rate(&mut treasury, "fx-r3", "CNY", "USD", "0.125")
        .await
        .unwrap();
    let in_dollars = authorize_in(&mut orders, &customer_id, "fx-2", money("10.00", "USD"))
        .await
        .unwrap();
    assert_eq!(in_dollars.fx_rate, "8");
    assert_eq!(
        amount(&in_dollars.amount_in_limit_currency),
        Decimal::new(80, 0)
    );

    // The what-if converts the same way, and the limit binds on the converted amount:
    // 10000 - 785.12 - 80 leaves 9134.88 CNY; 1200 EUR is 9421.44 CNY, within the 10 % band.
    let what_if = limits_check_in(&mut orders, &customer_id, money("1200.00", "EUR")).await;
    assert_eq!(what_if.decision(), pb::AuthorizationDecision::Referred);
    assert_eq!(codes(&what_if.reasons), vec!["LIMIT_EXCEEDED"]);

    // A newer rate replaces the old one in the list of rates in force; history keeps both.
    set_rate(&mut treasury, "fx-r4", "EUR", "CNY", "7.9")
        .await
        .unwrap();
    let in_force = orders
        .list_fx_rates(pb::ListFxRatesRequest {
            base_currency: "EUR".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .fx_rates;
    assert_eq!(in_force.len(), 1);
    assert_eq!(in_force[0].rate, "7.9");
    let mut history = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = orders
            .list_fx_rates(pb::ListFxRatesRequest {
                include_history: true,
                page_size: 1,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        history.extend(page.fx_rates.into_iter().map(|rate| rate.rate));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(history, vec!["0.125", "7.9", "7.8512"]);
}

async fn limits_check_in(
    limits: &mut Limits,
    customer_id: &str,
    amount: Option<pb::Money>,
) -> pb::CheckCreditResponse {
    limits
        .check_credit(pb::CheckCreditRequest {
            customer_id: customer_id.into(),
            amount,
            order_id: "what-if".into(),
        })
        .await
        .unwrap()
        .into_inner()
}

pub async fn holds_are_read_one_by_one_and_listed_newest_first(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 28_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "10000.00",
        "holds-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    let mut hold_ids = Vec::new();
    for key in ["h-1", "h-2", "h-3"] {
        let approved = authorize(&mut orders, &customer_id, key, "100.00")
            .await
            .unwrap();
        hold_ids.push(approved.hold_id);
    }
    orders
        .release(pb::ReleaseRequest {
            hold_id: hold_ids[1].clone(),
            reason: "order cancelled".into(),
        })
        .await
        .unwrap();

    let one = orders
        .get_hold(pb::GetHoldRequest {
            hold_id: hold_ids[0].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    assert_eq!(one.hold_id, hold_ids[0]);
    assert_eq!(one.order_id, "order-h-1");
    assert_eq!(one.status(), pb::HoldStatus::Open);

    let lister = orders.clone();
    let list = |request: pb::ListHoldsRequest| {
        let mut orders = lister.clone();
        async move { orders.list_holds(request).await }
    };
    let all = list(pb::ListHoldsRequest {
        customer_id: customer_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    let listed: Vec<&str> = all.holds.iter().map(|hold| hold.hold_id.as_str()).collect();
    assert_eq!(
        listed,
        [&hold_ids[2], &hold_ids[1], &hold_ids[0]],
        "newest first"
    );
    let open = list(pb::ListHoldsRequest {
        customer_id: customer_id.clone(),
        status: pb::HoldStatus::Open as i32,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(open.holds.len(), 2);
    let by_order = list(pb::ListHoldsRequest {
        order_id: "order-h-2".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(by_order.holds.len(), 1);
    assert_eq!(by_order.holds[0].status(), pb::HoldStatus::Released);

    let mut paged = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = list(pb::ListHoldsRequest {
            customer_id: customer_id.clone(),
            page_size: 2,
            page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
        paged.extend(page.holds.into_iter().map(|hold| hold.hold_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(paged.len(), 3);
    assert_eq!(paged[0], hold_ids[2]);

    let unknown = orders
        .get_hold(pb::GetHoldRequest {
            hold_id: "hld_unknown".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let unfiltered = list(pb::ListHoldsRequest::default()).await.unwrap_err();
    assert_eq!(unfiltered.code(), Code::InvalidArgument);
}
