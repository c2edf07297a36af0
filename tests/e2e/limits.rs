//! LimitService: limits with four-eyes approval and the portfolio cap, on both backends.
//! Customers are registered in intake; limits learns of them from intake's events.

use std::time::Duration;

use credit_core::Role;
use credit_e2e_tests::{Authed, TestSuite, uscc};
use credit_proto::v1 as pb;
use credit_proto::v1::limit_service_client::LimitServiceClient;
use tonic::Code;
use tonic_types::StatusExt;

use crate::intake::{create, enterprise};

type Limits = LimitServiceClient<Authed>;

pub(crate) fn cny(amount: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.into(),
        currency: "CNY".into(),
    })
}

pub(crate) fn customer_scope(customer_id: &str) -> Option<pb::LimitScope> {
    Some(pb::LimitScope {
        scope: Some(pb::limit_scope::Scope::CustomerId(customer_id.into())),
    })
}

fn portfolio_scope() -> Option<pb::LimitScope> {
    Some(pb::LimitScope {
        scope: Some(pb::limit_scope::Scope::Portfolio(pb::Portfolio {})),
    })
}

pub(crate) fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// Registers a customer in intake and waits until limits has its event.
pub(crate) async fn registered_customer(suite: &TestSuite, seed: u64) -> String {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let customer = create(
        &mut intake,
        &format!("lim-c-{seed}"),
        enterprise(&format!("Limit Co {seed}"), &uscc(seed)),
    )
    .await
    .unwrap();
    let mut limits = suite.limits(&suite.admin_token);
    for _ in 0..credit_e2e_tests::POLLS {
        let known = limits
            .get_credit_limit(pb::GetCreditLimitRequest {
                scope: customer_scope(&customer.customer_id),
            })
            .await;
        if known.is_ok() {
            return customer.customer_id;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("limits never learned of {}", customer.customer_id);
}

/// A new customer's limit request of `amount` by a maker (mei), and the client of the checker
/// who may approve it (sen, a credit manager with authority up to 1,000,000).
pub(crate) async fn first_limit_request(
    suite: &TestSuite,
    customer_id: &str,
    request_id: &str,
    amount: &str,
) -> (pb::LimitRequest, Limits) {
    let mut maker = suite.limits(
        &suite
            .issue_token_with_authority("mei", &[Role::Analyst], Some("10000000"))
            .await,
    );
    let checker = suite.limits(
        &suite
            .issue_token_with_authority("sen", &[Role::CreditManager], Some("1000000"))
            .await,
    );
    let request = request(&mut maker, request_id, customer_scope(customer_id), amount)
        .await
        .unwrap();
    (request, checker)
}

async fn request(
    limits: &mut Limits,
    request_id: &str,
    scope: Option<pb::LimitScope>,
    amount: &str,
) -> Result<pb::LimitRequest, tonic::Status> {
    let response = limits
        .request_limit_change(pb::RequestLimitChangeRequest {
            request_id: request_id.into(),
            scope,
            amount: cny(amount),
            reason: "annual review".into(),
            ..Default::default()
        })
        .await?;
    Ok(response.into_inner().limit_request.unwrap())
}

async fn decide(
    limits: &mut Limits,
    request_id: &str,
    limit_request_id: &str,
    approve: bool,
) -> Result<pb::DecideLimitRequestResponse, tonic::Status> {
    let decision = if approve {
        pb::ApprovalDecision::Approve
    } else {
        pb::ApprovalDecision::Reject
    };
    let response = limits
        .decide_limit_request(pb::DecideLimitRequestRequest {
            request_id: request_id.into(),
            limit_request_id: limit_request_id.into(),
            decision: decision as i32,
            reason: "financials support it".into(),
        })
        .await?;
    Ok(response.into_inner())
}

async fn effective_amount(limits: &mut Limits, scope: Option<pb::LimitScope>) -> Option<String> {
    limits
        .get_credit_limit(pb::GetCreditLimitRequest { scope })
        .await
        .unwrap()
        .into_inner()
        .effective_limit
        .and_then(|limit| limit.amount)
        .map(|amount| amount.amount)
}

pub async fn limits_need_a_second_person_with_enough_authority(suite: &TestSuite) {
    let customer_id = registered_customer(suite, 11_001).await;
    let mut maker = suite.limits(
        &suite
            .issue_token_with_authority(
                "mei",
                &[Role::Analyst, Role::CreditManager],
                Some("10000000"),
            )
            .await,
    );
    let mut junior = suite.limits(
        &suite
            .issue_token_with_authority("jun", &[Role::CreditManager], Some("100000"))
            .await,
    );
    let mut senior = suite.limits(
        &suite
            .issue_token_with_authority("sen", &[Role::CreditManager], Some("1000000"))
            .await,
    );

    let pending = request(
        &mut maker,
        "lr-1",
        customer_scope(&customer_id),
        "500000.00",
    )
    .await
    .unwrap();
    assert_eq!(pending.status(), pb::ApprovalStatus::Pending);
    assert_eq!(pending.requested_by.as_ref().unwrap().principal, "mei");
    assert_eq!(
        effective_amount(&mut maker, customer_scope(&customer_id)).await,
        None
    );

    let own = decide(&mut maker, "d-1", &pending.limit_request_id, true)
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied);
    assert_eq!(reason(&own), "SELF_APPROVAL");
    // A second token of the same person (here an ADMIN one) is still the maker.
    let mut maker_again = suite.limits(&suite.issue_token("mei", &[Role::Admin]).await);
    let own_again = decide(&mut maker_again, "d-1b", &pending.limit_request_id, true)
        .await
        .unwrap_err();
    assert_eq!(own_again.code(), Code::PermissionDenied);
    assert_eq!(reason(&own_again), "SELF_APPROVAL");
    let small = decide(&mut junior, "d-2", &pending.limit_request_id, true)
        .await
        .unwrap_err();
    assert_eq!(small.code(), Code::PermissionDenied);
    assert_eq!(reason(&small), "AUTHORITY_INSUFFICIENT");

    let approved = decide(&mut senior, "d-3", &pending.limit_request_id, true)
        .await
        .unwrap();
    let limit = approved.limit.unwrap();
    assert_eq!(limit.amount, cny("500000.00"));
    assert_eq!(limit.status(), pb::CreditLimitStatus::Active);
    assert_eq!(limit.approved_by.as_ref().unwrap().principal, "sen");
    assert_eq!(
        approved.limit_request.unwrap().status(),
        pb::ApprovalStatus::Approved
    );
    assert_eq!(
        effective_amount(&mut maker, customer_scope(&customer_id))
            .await
            .as_deref(),
        Some("500000.00")
    );

    // A retried decision answers as the first; another decision is refused.
    let replay = decide(&mut senior, "d-3", &pending.limit_request_id, true)
        .await
        .unwrap();
    assert_eq!(
        replay.limit_request.unwrap().status(),
        pb::ApprovalStatus::Approved
    );
    let again = decide(&mut junior, "d-4", &pending.limit_request_id, false)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "REQUEST_NOT_PENDING");

    // A raise replaces the limit; a rejected request changes nothing.
    let raise = request(
        &mut maker,
        "lr-2",
        customer_scope(&customer_id),
        "600000.00",
    )
    .await
    .unwrap();
    assert_eq!(raise.current_amount, cny("500000.00"));
    assert_eq!(raise.change_percent.as_deref(), Some("20.00"));
    decide(&mut senior, "d-5", &raise.limit_request_id, true)
        .await
        .unwrap();
    let cut = request(&mut maker, "lr-3", customer_scope(&customer_id), "50000.00")
        .await
        .unwrap();
    let rejected = decide(&mut junior, "d-6", &cut.limit_request_id, false)
        .await
        .unwrap();
    assert!(rejected.limit.is_none());
    assert_eq!(
        effective_amount(&mut maker, customer_scope(&customer_id))
            .await
            .as_deref(),
        Some("600000.00")
    );
    let current = maker
        .get_credit_limit(pb::GetCreditLimitRequest {
            scope: customer_scope(&customer_id),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.limits.len(), 1, "the first limit is superseded");

    let history = maker
        .list_limit_history(pb::ListLimitHistoryRequest {
            scope: customer_scope(&customer_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let changes: Vec<_> = history
        .iter()
        .map(|entry| {
            (
                entry.previous_amount.clone().map(|money| money.amount),
                entry.amount.clone().unwrap().amount,
                entry.requested_by.clone().unwrap().principal,
                entry.approved_by.clone().unwrap().principal,
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                None,
                "500000.00".to_owned(),
                "mei".to_owned(),
                "sen".to_owned()
            ),
            (
                Some("500000.00".to_owned()),
                "600000.00".to_owned(),
                "mei".to_owned(),
                "sen".to_owned()
            ),
        ]
    );
    assert_eq!(history[0].reason, "annual review");
    assert_eq!(history[0].decision_reason, "financials support it");

    let pending_list = maker
        .list_limit_requests(pb::ListLimitRequestsRequest {
            status: pb::ApprovalStatus::Rejected as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .limit_requests;
    assert_eq!(pending_list.len(), 1);
    // Two limits granted; each of the three verdicts announced on its own.
    let events = suite.outbox_event_types(&credit_limits::STORE).await;
    let count = |kind: &str| events.iter().filter(|event| event.as_str() == kind).count();
    assert_eq!(count("LimitChanged"), 2, "{events:?}");
    assert_eq!(count("ApprovalStepDecided"), 3, "{events:?}");
    assert_eq!(events.len(), 5, "{events:?}");
}

pub async fn the_portfolio_cap_bounds_the_total_of_customer_limits(suite: &TestSuite) {
    let first = registered_customer(suite, 12_001).await;
    let second = registered_customer(suite, 12_002).await;
    let mut maker = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    let mut checker = suite.limits(
        &suite
            .issue_token_with_authority("sen", &[Role::CreditManager], Some("5000000"))
            .await,
    );

    let cap = request(&mut maker, "cap-1", portfolio_scope(), "1000000.00")
        .await
        .unwrap();
    decide(&mut checker, "cap-d1", &cap.limit_request_id, true)
        .await
        .unwrap();
    let granted = request(&mut maker, "cap-2", customer_scope(&first), "600000.00")
        .await
        .unwrap();
    decide(&mut checker, "cap-d2", &granted.limit_request_id, true)
        .await
        .unwrap();

    let over = request(&mut maker, "cap-3", customer_scope(&second), "400000.01")
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::FailedPrecondition);
    assert_eq!(reason(&over), "PORTFOLIO_CAP_EXCEEDED");
    let fits = request(&mut maker, "cap-4", customer_scope(&second), "400000.00")
        .await
        .unwrap();
    decide(&mut checker, "cap-d4", &fits.limit_request_id, true)
        .await
        .unwrap();

    let portfolio = maker
        .get_credit_limit(pb::GetCreditLimitRequest {
            scope: portfolio_scope(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(portfolio.granted_limits_total, cny("1000000.00"));
    // Raising the first customer needs room under the cap, counting its current limit once.
    let raise = request(&mut maker, "cap-5", customer_scope(&first), "600000.01")
        .await
        .unwrap_err();
    assert_eq!(reason(&raise), "PORTFOLIO_CAP_EXCEEDED");
}

pub async fn limit_requests_are_checked_before_anything_is_written(suite: &TestSuite) {
    let customer_id = registered_customer(suite, 13_001).await;
    let mut maker = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    let unknown = request(&mut maker, "bad-1", customer_scope("cus_nobody"), "1000.00")
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let temporary_without_end = maker
        .request_limit_change(pb::RequestLimitChangeRequest {
            request_id: "bad-2".into(),
            scope: customer_scope(&customer_id),
            amount: cny("-5.00"),
            temporary: true,
            reason: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(temporary_without_end.code(), Code::InvalidArgument);
    let fields: Vec<_> = temporary_without_end
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|violation| violation.field.clone())
        .collect();
    assert_eq!(fields, ["amount", "valid_until", "reason"]);
    let listed = maker
        .list_limit_requests(pb::ListLimitRequestsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .limit_requests;
    assert!(listed.is_empty());
    // A group is known to limits once a member joined it in intake.
    let unknown_group = request(
        &mut maker,
        "bad-3",
        Some(pb::LimitScope {
            scope: Some(pb::limit_scope::Scope::GroupId("grp_nobody".into())),
        }),
        "1000.00",
    )
    .await
    .unwrap_err();
    assert_eq!(unknown_group.code(), Code::NotFound);
}

pub async fn group_limits_follow_memberships_made_in_intake(suite: &TestSuite) {
    let customer_id = registered_customer(suite, 14_001).await;
    let member_id = customer_id.clone();
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let group = intake
        .create_group(pb::CreateGroupRequest {
            request_id: "grp-lim".into(),
            group: Some(pb::CustomerGroup {
                name: "Harbour Group".into(),
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
            customer_id,
            reason: "subsidiary".into(),
        })
        .await
        .unwrap();
    let mut maker = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    let scope = Some(pb::LimitScope {
        scope: Some(pb::limit_scope::Scope::GroupId(group.group_id.clone())),
    });
    let mut outcome = request(&mut maker, "grp-lr", scope.clone(), "2000000.00").await;
    for _ in 0..credit_e2e_tests::POLLS {
        if outcome.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        outcome = request(&mut maker, "grp-lr", scope.clone(), "2000000.00").await;
    }
    let pending = outcome.unwrap();
    assert_eq!(pending.status(), pb::ApprovalStatus::Pending);

    // The group's limit is in CNY: a member's limit in another currency is refused before
    // anything is written, and so is a group limit in another currency than a member's.
    let mut checker = suite.limits(
        &suite
            .issue_token_with_authority("sen", &[Role::CreditManager], Some("100000000"))
            .await,
    );
    decide(&mut checker, "grp-dec", &pending.limit_request_id, true)
        .await
        .unwrap();
    let in_dollars = maker
        .request_limit_change(pb::RequestLimitChangeRequest {
            request_id: "grp-usd".into(),
            scope: customer_scope(&member_id),
            amount: Some(pb::Money {
                amount: "1000.00".into(),
                currency: "USD".into(),
            }),
            reason: "dollar business".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(in_dollars.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&in_dollars), "CURRENCY_MISMATCH");
    let member_limit = request(
        &mut maker,
        "grp-member",
        customer_scope(&member_id),
        "5000.00",
    )
    .await
    .unwrap();
    decide(
        &mut checker,
        "grp-member-dec",
        &member_limit.limit_request_id,
        true,
    )
    .await
    .unwrap();
    let group_in_euros = maker
        .request_limit_change(pb::RequestLimitChangeRequest {
            request_id: "grp-eur".into(),
            scope: scope.clone(),
            amount: Some(pb::Money {
                amount: "1000.00".into(),
                currency: "EUR".into(),
            }),
            reason: "euro business".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&group_in_euros), "CURRENCY_MISMATCH");
}

/// Requests that each fit under the cap, decided at the same moment by two checkers: the
/// approvals queue in their transactions, so the second sees the first and is refused. The
/// cap holds whatever the interleaving.
pub async fn concurrent_approvals_never_pass_the_portfolio_cap_together(suite: &TestSuite) {
    let mut maker = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    let checkers = [
        suite
            .issue_token_with_authority("sen", &[Role::CreditManager], Some("5000000"))
            .await,
        suite
            .issue_token_with_authority("mei", &[Role::CreditManager], Some("5000000"))
            .await,
    ];
    let mut checker = suite.limits(&checkers[0]);
    let cap = request(&mut maker, "race-cap", portfolio_scope(), "1000000.00")
        .await
        .unwrap();
    decide(&mut checker, "race-cap-d", &cap.limit_request_id, true)
        .await
        .unwrap();

    // Rounds of two pending requests of 600,000 each: both fit alone, not together.
    for round in 0..3_u64 {
        let customers = [
            registered_customer(suite, 12_100 + 2 * round).await,
            registered_customer(suite, 12_101 + 2 * round).await,
        ];
        let mut pending = Vec::new();
        for (index, customer_id) in customers.iter().enumerate() {
            let filed = request(
                &mut maker,
                &format!("race-{round}-{index}"),
                customer_scope(customer_id),
                "600000.00",
            )
            .await
            .unwrap();
            pending.push(filed.limit_request_id);
        }
        let decisions: Vec<_> = pending
            .iter()
            .zip(&checkers)
            .enumerate()
            .map(|(index, (limit_request_id, token))| {
                let mut limits = suite.limits(token);
                let limit_request_id = limit_request_id.clone();
                tokio::spawn(async move {
                    decide(
                        &mut limits,
                        &format!("race-{round}-d{index}"),
                        &limit_request_id,
                        true,
                    )
                    .await
                })
            })
            .collect();
        let mut approved = 0;
        for decision in decisions {
            match decision.await.unwrap() {
                Ok(_) => approved += 1,
                Err(status) => {
                    assert_eq!(reason(&status), "PORTFOLIO_CAP_EXCEEDED", "{status:?}");
                }
            }
        }
        assert_eq!(approved, 1, "round {round}: exactly one of the two fits");
        let total = maker
            .get_credit_limit(pb::GetCreditLimitRequest {
                scope: portfolio_scope(),
            })
            .await
            .unwrap()
            .into_inner()
            .granted_limits_total;
        assert_eq!(total, cny("600000.00"), "round {round}");
        // Make room for the next round: the approved limit is lowered to zero.
        for customer_id in &customers {
            if effective_amount(&mut maker, customer_scope(customer_id))
                .await
                .is_some()
            {
                let lowered = request(
                    &mut maker,
                    &format!("race-{round}-low"),
                    customer_scope(customer_id),
                    "0.00",
                )
                .await
                .unwrap();
                decide(
                    &mut checker,
                    &format!("race-{round}-lowd"),
                    &lowered.limit_request_id,
                    true,
                )
                .await
                .unwrap();
            }
        }
    }
}
