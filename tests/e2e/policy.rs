//! The credit policy, credit terms and the rating inputs of Authorize, on both backends:
//! GetCreditPolicy, a policy change proposed (UpdateCreditPolicy) and published by a second
//! person with its history (ListCreditPolicyVersions), Set/GetCreditTerms with defaults by
//! grade, ORDER_AMOUNT_LIMIT and RATING_STALE. Rating's RatingChanged events are published
//! on the suite's bus, as the rating service's relay will.

use std::time::Duration;

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::service_names::RATING;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use tonic::Code;
use tonic_types::StatusExt;

use crate::approvals::{decide_step, queue};
use crate::authorize::{
    Limits, check, cny, codes, customer, grant, scope_of_customer, wait_until_approvable,
};

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|request| {
            request
                .field_violations
                .iter()
                .map(|violation| violation.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn policy(limits: &mut Limits) -> pb::CreditPolicy {
    limits
        .get_credit_policy(pb::GetCreditPolicyRequest { version: None })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap()
}

/// Proposes a change of the policy (UpdateCreditPolicy) as the caller of `limits`.
async fn propose_policy(
    limits: &mut Limits,
    request_id: &str,
    policy: pb::CreditPolicy,
    paths: &[&str],
) -> Result<pb::UpdateCreditPolicyResponse, tonic::Status> {
    Ok(limits
        .update_credit_policy(pb::UpdateCreditPolicyRequest {
            request_id: request_id.into(),
            policy: Some(policy),
            update_mask: mask(paths),
            reason: "credit committee decision".into(),
            effective_from: None,
        })
        .await?
        .into_inner())
}

/// A verdict on step `step_index` of a proposed policy version's chain.
async fn decide_policy(
    suite: &TestSuite,
    token: &str,
    request_id: &str,
    version: u32,
    verdict: pb::ApprovalVerdict,
) -> Result<pb::ApprovalTask, tonic::Status> {
    decide_step(
        &mut suite.approvals(token),
        pb::DecisionKind::PolicyChange,
        request_id,
        &format!("policy:{version}"),
        0,
        verdict,
        "agreed at the credit committee",
    )
    .await
}

/// The newest published version of the policy (what the next change applies to).
async fn newest_published(limits: &mut Limits) -> pb::CreditPolicy {
    limits
        .list_credit_policy_versions(pb::ListCreditPolicyVersionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .versions
        .into_iter()
        .find(|version| version.status() == pb::PolicyVersionStatus::Published)
        .and_then(|version| version.policy)
        .unwrap()
}

/// Every version of the policy, newest first, with its status; and the version in force.
async fn policy_history(limits: &mut Limits) -> (Vec<(u32, pb::PolicyVersionStatus)>, u32) {
    let history = limits
        .list_credit_policy_versions(pb::ListCreditPolicyVersionsRequest {})
        .await
        .unwrap()
        .into_inner();
    let versions = history
        .versions
        .iter()
        .map(|version| (version.version, version.status()))
        .collect();
    (versions, history.in_force_version)
}

/// Changes the policy as a credit department does: the administrator proposes, a credit
/// manager (a second person) approves; the policy in force afterwards.
pub(crate) async fn change_policy(
    suite: &TestSuite,
    policy: pb::CreditPolicy,
    paths: &[&str],
) -> pb::CreditPolicy {
    let mut admin = suite.limits(&suite.admin_token);
    // The policy's etag tells one change of the same fields from the next.
    let request_id = format!("change-{}-{}", paths.join("-"), policy.etag);
    let proposal = propose_policy(&mut admin, &request_id, policy, paths)
        .await
        .unwrap()
        .proposal
        .unwrap();
    let approver = suite
        .issue_token("policy-approver", &[Role::CreditManager])
        .await;
    let task = decide_policy(
        suite,
        &approver,
        &format!("{request_id}-ok"),
        proposal.version,
        pb::ApprovalVerdict::Approve,
    )
    .await
    .unwrap();
    assert_eq!(
        task.chain.unwrap().status(),
        pb::ApprovalChainStatus::Approved
    );
    self::policy(&mut admin).await
}

fn date(days_from_today: i64) -> pb::Date {
    use chrono::Datelike;
    let day = chrono::Utc::now().date_naive() + chrono::Duration::days(days_from_today);
    pb::Date {
        year: day.year(),
        month: i32::try_from(day.month()).unwrap(),
        day: i32::try_from(day.day()).unwrap(),
    }
}

async fn rate(
    suite: &TestSuite,
    customer_id: &str,
    rating_id: &str,
    grade: &str,
    review: pb::Date,
) {
    suite
        .publish(
            RATING,
            Payload::RatingChanged(pb::RatingChanged {
                customer_id: customer_id.into(),
                rating_id: rating_id.into(),
                grade: grade.into(),
                next_review_date: Some(review),
                ..Default::default()
            }),
        )
        .await;
}

/// Polls CheckCredit until its reason codes are `expected` (events apply a moment later).
async fn wait_for_reasons(limits: &mut Limits, customer_id: &str, amount: &str, expected: &[&str]) {
    let mut last = Vec::new();
    for _ in 0..credit_e2e_tests::POLLS {
        last = codes(&check(limits, customer_id, amount).await.reasons);
        if last == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{customer_id}: reasons {last:?}, expected {expected:?}");
}

pub async fn a_policy_change_is_proposed_and_published_by_a_second_person(suite: &TestSuite) {
    let mut admin = suite.limits(&suite.admin_token);
    let mut manager = suite.limits(&suite.issue_token("sen", &[Role::CreditManager]).await);
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);

    let shipped = policy(&mut manager).await;
    assert_eq!(shipped.over_limit_tolerance_percent, "10");
    assert_eq!(shipped.etag, "v0");
    let grades: Vec<&str> = shipped
        .grade_policies
        .iter()
        .map(|grade| grade.grade.as_str())
        .collect();
    // Both shipped scales, least risky first: each five-tier grade beside the agency grade of
    // its probability of default.
    assert_eq!(
        grades,
        [
            "AAA",
            "AA",
            "A",
            "EXCELLENT",
            "BBB",
            "GOOD",
            "BB",
            "FAIR",
            "B",
            "WATCH",
            "CCC",
            "POOR",
            "D"
        ]
    );

    let customer_id = customer(suite, 31_001, true).await;
    grant(suite, scope_of_customer(&customer_id), "1000.00", "pol-lim").await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    // 1060 is 6 % over the limit: referred within the shipped 10 % band.
    assert_eq!(
        check(&mut orders, &customer_id, "1060.00").await.decision(),
        pb::AuthorizationDecision::Referred
    );

    let mut narrower = shipped.clone();
    narrower.over_limit_tolerance_percent = "5".into();
    let mut analyst = suite.limits(&suite.issue_token("ann", &[Role::Analyst]).await);
    let denied = propose_policy(
        &mut analyst,
        "by-analyst",
        narrower.clone(),
        &["over_limit_tolerance_percent"],
    )
    .await
    .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let mut broken = shipped.clone();
    broken.over_limit_tolerance_percent = "-3".into();
    broken.grade_policies[0].overdue_tolerance_days = -1;
    let refused = propose_policy(
        &mut admin,
        "broken",
        broken,
        &["over_limit_tolerance_percent", "grade_policies", "colour"],
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields = violated_fields(&refused);
    for field in [
        "policy.over_limit_tolerance_percent",
        "policy.grade_policies[0].overdue_tolerance_days",
        "update_mask",
    ] {
        assert!(
            fields.contains(&field.to_owned()),
            "{field} not in {fields:?}"
        );
    }
    let filed = manager
        .list_credit_policy_versions(pb::ListCreditPolicyVersionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        filed.versions.len(),
        1,
        "nothing filed: only the shipped policy"
    );

    // A credit manager proposes; nothing changes until a second person approves.
    let proposed = propose_policy(
        &mut manager,
        "narrower",
        narrower.clone(),
        &["over_limit_tolerance_percent"],
    )
    .await
    .unwrap();
    assert_eq!(
        proposed
            .policy
            .as_ref()
            .unwrap()
            .over_limit_tolerance_percent,
        "10",
        "the policy in force is unchanged"
    );
    let proposal = proposed.proposal.unwrap();
    assert_eq!(proposal.version, 1);
    assert_eq!(proposal.based_on, 0);
    assert_eq!(proposal.status(), pb::PolicyVersionStatus::Proposed);
    let changes: Vec<(&str, &str, &str)> = proposal
        .changes
        .iter()
        .map(|change| {
            (
                change.path.as_str(),
                change.before.as_str(),
                change.after.as_str(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [("over_limit_tolerance_percent", "\"10\"", "\"5\"")],
        "only the masked field changes"
    );
    assert_eq!(
        check(&mut orders, &customer_id, "1060.00").await.decision(),
        pb::AuthorizationDecision::Referred,
        "a proposal does not decide orders"
    );

    // The proposer, under another token with the general manager's role, is the same person.
    let same_person = suite.issue_token("sen", &[Role::GeneralManager]).await;
    let own = decide_policy(suite, &same_person, "self", 1, pb::ApprovalVerdict::Approve)
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied);
    assert_eq!(
        own.get_error_details().error_info().unwrap().reason,
        "SELF_APPROVAL"
    );
    let gm = suite.issue_token("gwen-gm", &[Role::GeneralManager]).await;
    let waiting = queue(
        &mut suite.approvals(&gm),
        pb::DecisionKind::PolicyChange,
        false,
    )
    .await;
    assert!(waiting.iter().any(|task| task.record_id == "policy:1"));
    let approved = decide_policy(suite, &gm, "approve", 1, pb::ApprovalVerdict::Approve)
        .await
        .unwrap();
    assert_eq!(
        approved.chain.unwrap().status(),
        pb::ApprovalChainStatus::Approved
    );

    let changed = policy(&mut manager).await;
    assert_eq!(changed.over_limit_tolerance_percent, "5");
    assert_eq!(changed.etag, "v1");
    assert_eq!(
        changed.grade_policies, shipped.grade_policies,
        "only the masked field changed"
    );
    // A change against the version it replaced is refused.
    let stale = propose_policy(
        &mut admin,
        "stale",
        narrower,
        &["over_limit_tolerance_percent"],
    )
    .await
    .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // Every version stays readable.
    let history = manager
        .list_credit_policy_versions(pb::ListCreditPolicyVersionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.in_force_version, 1);
    let listed: Vec<(u32, pb::PolicyVersionStatus)> = history
        .versions
        .iter()
        .map(|version| (version.version, version.status()))
        .collect();
    assert_eq!(
        listed,
        [
            (1, pb::PolicyVersionStatus::Published),
            (0, pb::PolicyVersionStatus::Published)
        ]
    );
    let trail = &history.versions[0].chain.as_ref().unwrap().trail;
    assert_eq!(
        trail.last().unwrap().actor.as_ref().unwrap().principal,
        "gwen-gm"
    );
    let before = manager
        .get_credit_policy(pb::GetCreditPolicyRequest { version: Some(0) })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(before.over_limit_tolerance_percent, "10");

    // The next order sees the narrower band at once: 6 % over is now declined.
    let after = check(&mut orders, &customer_id, "1060.00").await;
    assert_eq!(after.decision(), pb::AuthorizationDecision::Declined);
    assert_eq!(codes(&after.reasons), ["LIMIT_EXCEEDED"]);
}

pub async fn a_policy_change_takes_effect_on_its_date_and_a_stale_one_is_not_published(
    suite: &TestSuite,
) {
    let mut admin = suite.limits(&suite.admin_token);
    let manager = suite.issue_token("cora-cm", &[Role::CreditManager]).await;
    let current = policy(&mut admin).await;

    let mut later = current.clone();
    later.rating_grace_days = 45;
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let dated = admin
        .update_credit_policy(pb::UpdateCreditPolicyRequest {
            request_id: "dated".into(),
            policy: Some(later),
            update_mask: mask(&["rating_grace_days"]),
            reason: "next year's review rules".into(),
            effective_from: Some(prost_types::Timestamp {
                seconds: tomorrow.timestamp(),
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .proposal
        .unwrap();
    decide_policy(
        suite,
        &manager,
        "dated-ok",
        dated.version,
        pb::ApprovalVerdict::Approve,
    )
    .await
    .unwrap();
    let history = admin
        .list_credit_policy_versions(pb::ListCreditPolicyVersionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        history.versions[0].status(),
        pb::PolicyVersionStatus::Published
    );
    assert_eq!(
        history.versions[0].effective_from.as_ref().unwrap().seconds,
        tomorrow.timestamp()
    );
    assert_eq!(history.in_force_version, 0, "in force from tomorrow only");
    assert_eq!(
        policy(&mut admin).await.rating_grace_days,
        current.rating_grace_days
    );

    // A change is made over the newest published version (the dated one), not the one in
    // force: against the version in force its etag is stale.
    let mut over_in_force = current.clone();
    over_in_force.rating_grace_days = 20;
    let refused = propose_policy(
        &mut admin,
        "over-in-force",
        over_in_force,
        &["rating_grace_days"],
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::Aborted);
    let newest = history.versions[0].policy.clone().unwrap();
    assert_eq!(newest.rating_grace_days, 45);

    // Two proposals made over the same version: once one is published, the other would
    // undo it unseen, so its approval is refused.
    let mut first = newest.clone();
    first.rating_grace_days = 20;
    let mut second = newest.clone();
    second.over_limit_tolerance_percent = "8".into();
    let first = propose_policy(&mut admin, "first", first, &["rating_grace_days"])
        .await
        .unwrap()
        .proposal
        .unwrap();
    let second = propose_policy(
        &mut admin,
        "second",
        second,
        &["over_limit_tolerance_percent"],
    )
    .await
    .unwrap()
    .proposal
    .unwrap();
    assert_eq!(first.based_on, dated.version);
    assert_eq!(second.based_on, dated.version);
    decide_policy(
        suite,
        &manager,
        "first-ok",
        first.version,
        pb::ApprovalVerdict::Approve,
    )
    .await
    .unwrap();
    let stale = decide_policy(
        suite,
        &manager,
        "second-ok",
        second.version,
        pb::ApprovalVerdict::Approve,
    )
    .await
    .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);
    assert_eq!(
        stale.get_error_details().error_info().unwrap().reason,
        "PROPOSAL_STALE"
    );
    // A rejection leaves the policy as it was and stays in the history.
    let mut third = newest_published(&mut admin).await;
    third.rating_grace_days = 1;
    let third = propose_policy(&mut admin, "third", third, &["rating_grace_days"])
        .await
        .unwrap()
        .proposal
        .unwrap();
    decide_policy(
        suite,
        &manager,
        "third-no",
        third.version,
        pb::ApprovalVerdict::Reject,
    )
    .await
    .unwrap();
    let (statuses, in_force) = policy_history(&mut admin).await;
    assert_eq!(
        statuses,
        [
            (third.version, pb::PolicyVersionStatus::Rejected),
            (second.version, pb::PolicyVersionStatus::Proposed),
            (first.version, pb::PolicyVersionStatus::Published),
            (dated.version, pb::PolicyVersionStatus::Published),
            (0, pb::PolicyVersionStatus::Published),
        ]
    );
    // The published one carries the dated version's changes, so it too waits for its date.
    assert_eq!(in_force, 0);
}

pub async fn credit_terms_default_by_grade_and_cap_each_order(suite: &TestSuite) {
    let mut manager = suite.limits(&suite.issue_token("sen", &[Role::CreditManager]).await);
    let mut analyst = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 32_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "2000000.00",
        "terms-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    let terms = |limits: &mut Limits, customer_id: String| {
        let mut limits = limits.clone();
        async move {
            limits
                .get_credit_terms(pb::GetCreditTermsRequest { customer_id })
                .await
                .unwrap()
                .into_inner()
                .terms
                .unwrap()
        }
    };
    let unrated = terms(&mut orders, customer_id.clone()).await;
    assert_eq!(
        unrated.payment_terms_source(),
        pb::CreditTermsSource::DefaultPolicy
    );
    assert_eq!(unrated.payment_terms.unwrap().net_days, 30);
    assert_eq!(unrated.order_amount_cap, None);

    // Rated BB: the grade's defaults, a per-order cap of 1,000,000 CNY among them.
    rate(suite, &customer_id, "rat-1", "BB", date(180)).await;
    wait_for_reasons(
        &mut orders,
        &customer_id,
        "1000000.01",
        &["ORDER_AMOUNT_LIMIT"],
    )
    .await;
    let graded = terms(&mut orders, customer_id.clone()).await;
    assert_eq!(graded.grade, "BB");
    assert_eq!(
        graded.order_amount_cap_source(),
        pb::CreditTermsSource::GradePolicy
    );
    assert_eq!(graded.order_amount_cap, cny("1000000.00"));

    let set = |cap: Option<pb::Money>, payment_terms: Option<pb::PaymentTerms>, paths: &[&str]| {
        pb::SetCreditTermsRequest {
            customer_id: customer_id.clone(),
            terms: Some(pb::CreditTerms {
                payment_terms,
                order_amount_cap: cap,
                ..Default::default()
            }),
            update_mask: mask(paths),
            reason: "negotiated with the customer".into(),
        }
    };
    let two_ten_net_45 = pb::PaymentTerms {
        net_days: 45,
        discount_percent: "2".into(),
        discount_days: 10,
    };
    let denied = analyst
        .set_credit_terms(set(cny("5000.00"), None, &["order_amount_cap"]))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let bad = manager
        .set_credit_terms(set(
            cny("-1.00"),
            Some(pb::PaymentTerms {
                discount_days: 60,
                ..two_ten_net_45.clone()
            }),
            &["order_amount_cap", "payment_terms"],
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields = violated_fields(&bad);
    assert!(
        fields.contains(&"terms.order_amount_cap".to_owned()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"terms.payment_terms.discount_days".to_owned()),
        "{fields:?}"
    );

    let own = manager
        .set_credit_terms(set(
            cny("5000.00"),
            Some(two_ten_net_45.clone()),
            &["order_amount_cap", "payment_terms"],
        ))
        .await
        .unwrap()
        .into_inner()
        .terms
        .unwrap();
    assert_eq!(
        own.order_amount_cap_source(),
        pb::CreditTermsSource::Customer
    );
    assert_eq!(own.payment_terms, Some(two_ten_net_45));
    let over_cap = check(&mut orders, &customer_id, "6000.00").await;
    assert_eq!(over_cap.decision(), pb::AuthorizationDecision::Referred);
    assert_eq!(codes(&over_cap.reasons), ["ORDER_AMOUNT_LIMIT"]);
    assert_eq!(over_cap.reasons[0].metadata["order_amount_cap"], "5000.00");
    assert_eq!(
        check(&mut orders, &customer_id, "4000.00").await.decision(),
        pb::AuthorizationDecision::Approved
    );

    // A masked field left unset goes back to the grade's default.
    let reverted = manager
        .set_credit_terms(set(None, None, &["order_amount_cap"]))
        .await
        .unwrap()
        .into_inner()
        .terms
        .unwrap();
    assert_eq!(
        reverted.order_amount_cap_source(),
        pb::CreditTermsSource::GradePolicy
    );
    assert_eq!(
        reverted.payment_terms_source(),
        pb::CreditTermsSource::Customer
    );
    assert_eq!(
        check(&mut orders, &customer_id, "6000.00").await.decision(),
        pb::AuthorizationDecision::Approved
    );

    let unknown = orders
        .get_credit_terms(pb::GetCreditTermsRequest {
            customer_id: "cus_unknown".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

pub async fn a_required_rating_that_is_missing_or_past_review_refers_orders(suite: &TestSuite) {
    let mut admin = suite.limits(&suite.admin_token);
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 33_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "10000.00",
        "rating-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    let mut requiring = policy(&mut admin).await;
    requiring.rating_required = true;
    requiring.rating_grace_days = 10;
    change_policy(suite, requiring, &["rating_required", "rating_grace_days"]).await;
    // No rating at all.
    assert_eq!(
        codes(&check(&mut orders, &customer_id, "1.00").await.reasons),
        ["RATING_STALE"]
    );

    // Rated, review due in a month: approved.
    rate(suite, &customer_id, "rat-1", "A", date(30)).await;
    wait_for_reasons(&mut orders, &customer_id, "1.00", &[]).await;
    // Review date 5 days ago (re-graded BBB, to see when it applied): still within the 10
    // grace days.
    rate(suite, &customer_id, "rat-2", "BBB", date(-5)).await;
    for _ in 0..credit_e2e_tests::POLLS {
        let terms = orders
            .get_credit_terms(pb::GetCreditTermsRequest {
                customer_id: customer_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .terms
            .unwrap();
        if terms.grade == "BBB" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        codes(&check(&mut orders, &customer_id, "1.00").await.reasons),
        Vec::<String>::new()
    );
    // Review date 11 days ago: past the grace days, stale.
    rate(suite, &customer_id, "rat-3", "A", date(-11)).await;
    wait_for_reasons(&mut orders, &customer_id, "1.00", &["RATING_STALE"]).await;
}

pub async fn small_increases_for_good_grades_are_approved_by_a_policy_rule(suite: &TestSuite) {
    let mut admin = suite.limits(&suite.admin_token);
    let mut maker = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    let customer_id = customer(suite, 34_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "auto-lim",
    )
    .await;

    let mut with_rule = policy(&mut admin).await;
    with_rule.auto_approval_rules = vec![pb::AutoApprovalRule {
        rule_id: "small-increase".into(),
        min_grade: "BBB".into(),
        max_increase_percent: "10".into(),
        max_amount: cny("5000000.00"),
        description: "up to 10 % more for BBB and better".into(),
    }];
    change_policy(suite, with_rule, &["auto_approval_rules"]).await;

    let requests = maker.clone();
    let request = |request_id: &str, amount: &str| {
        let mut maker = requests.clone();
        let request = pb::RequestLimitChangeRequest {
            request_id: request_id.into(),
            scope: scope_of_customer(&customer_id),
            amount: cny(amount),
            reason: "more orders this season".into(),
            ..Default::default()
        };
        async move {
            maker
                .request_limit_change(request)
                .await
                .unwrap()
                .into_inner()
        }
    };
    // Unrated: a person decides.
    let unrated = request("auto-1", "105000.00").await;
    assert_eq!(
        unrated.limit_request.unwrap().status(),
        pb::ApprovalStatus::Pending
    );

    rate(suite, &customer_id, "rat-1", "A", date(180)).await;
    for _ in 0..credit_e2e_tests::POLLS {
        let terms = maker
            .get_credit_terms(pb::GetCreditTermsRequest {
                customer_id: customer_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .terms
            .unwrap();
        if terms.grade == "A" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let small = request("auto-2", "109000.00").await;
    let approved = small.limit_request.unwrap();
    assert_eq!(approved.status(), pb::ApprovalStatus::Approved);
    assert_eq!(approved.auto_approval_rule_id, "small-increase");
    assert_eq!(approved.decided_by, None, "no person decided");
    let limit = small.limit.unwrap();
    assert_eq!(limit.amount, cny("109000.00"));
    assert_eq!(limit.auto_approval_rule_id, "small-increase");
    // A retry answers the approved request and its limit, and grants nothing more.
    let retried = request("auto-2", "109000.00").await;
    assert_eq!(retried.limit.unwrap().limit_id, limit.limit_id);

    // More than 10 % over the current limit: a person decides.
    let large = request("auto-3", "125000.00").await;
    assert_eq!(
        large.limit_request.unwrap().status(),
        pb::ApprovalStatus::Pending
    );
    assert!(large.limit.is_none());

    let history = maker
        .list_limit_history(pb::ListLimitHistoryRequest {
            scope: scope_of_customer(&customer_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let by_rule: Vec<&pb::LimitHistoryEntry> = history
        .iter()
        .filter(|entry| entry.auto_approval_rule_id == "small-increase")
        .collect();
    assert_eq!(by_rule.len(), 1);
    assert_eq!(by_rule[0].approved_by, None);
    assert_eq!(by_rule[0].previous_amount, cny("100000.00"));
}

/// Rating's RatingChanged for a change of grade from `previous` to `grade`.
async fn regrade(
    suite: &TestSuite,
    customer_id: &str,
    rating_id: &str,
    previous: &str,
    grade: &str,
) {
    suite
        .publish(
            RATING,
            Payload::RatingChanged(pb::RatingChanged {
                customer_id: customer_id.into(),
                rating_id: rating_id.into(),
                previous_grade: previous.into(),
                grade: grade.into(),
                next_review_date: Some(date(90)),
                ..Default::default()
            }),
        )
        .await;
}

pub async fn a_five_tier_customer_gets_its_tiers_terms(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 32_101, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "2000000.00",
        "tier-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    // 关注 (WATCH): short terms and small orders.
    rate(suite, &customer_id, "tier-1", "WATCH", date(90)).await;
    wait_for_reasons(
        &mut orders,
        &customer_id,
        "300000.01",
        &["ORDER_AMOUNT_LIMIT"],
    )
    .await;
    let terms = orders
        .get_credit_terms(pb::GetCreditTermsRequest {
            customer_id: customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .terms
        .unwrap();
    assert_eq!(terms.grade, "WATCH");
    assert_eq!(
        terms.payment_terms_source(),
        pb::CreditTermsSource::GradePolicy
    );
    assert_eq!(terms.payment_terms.unwrap().net_days, 15);
    assert_eq!(terms.order_amount_cap, cny("300000.00"));

    // 优秀 (EXCELLENT): the longest terms, no per-order cap.
    regrade(suite, &customer_id, "tier-2", "WATCH", "EXCELLENT").await;
    wait_for_reasons(&mut orders, &customer_id, "300000.01", &[]).await;
    let terms = orders
        .get_credit_terms(pb::GetCreditTermsRequest {
            customer_id: customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .terms
        .unwrap();
    assert_eq!(terms.payment_terms.unwrap().net_days, 60);
    assert_eq!(terms.order_amount_cap, None);

    // The policy lists the five tiers beside the agency grades, each with its maximum limit.
    let mut manager = suite.limits(&suite.issue_token("sen", &[Role::CreditManager]).await);
    let shipped = policy(&mut manager).await;
    let tiers: Vec<&str> = shipped
        .grade_policies
        .iter()
        .map(|grade| grade.grade.as_str())
        .filter(|grade| ["EXCELLENT", "GOOD", "FAIR", "WATCH", "POOR"].contains(grade))
        .collect();
    assert_eq!(tiers, ["EXCELLENT", "GOOD", "FAIR", "WATCH", "POOR"]);
}

/// The reviews of `customer_id` in a credit manager's queue, once there are `count`.
async fn reviews_waiting(
    suite: &TestSuite,
    token: &str,
    customer_id: &str,
    count: usize,
) -> Vec<pb::ApprovalTask> {
    let mut reviews = Vec::new();
    for _ in 0..credit_e2e_tests::POLLS {
        reviews = queue(
            &mut suite.approvals(token),
            pb::DecisionKind::CreditReview,
            false,
        )
        .await
        .into_iter()
        .filter(|task| task.summary.contains(customer_id))
        .collect();
        if reviews.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    reviews
}

/// A verdict on a review after a grade change.
async fn decide_review(
    suite: &TestSuite,
    token: &str,
    request_id: &str,
    review_id: &str,
    verdict: pb::ApprovalVerdict,
) -> Result<pb::ApprovalTask, tonic::Status> {
    decide_step(
        &mut suite.approvals(token),
        pb::DecisionKind::CreditReview,
        request_id,
        review_id,
        0,
        verdict,
        "limit, terms and monitoring reviewed",
    )
    .await
}

pub async fn a_downgrade_drafts_a_limit_cut_and_every_grade_change_a_review(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 32_102, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "4000000.00",
        "cut-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    rate(suite, &customer_id, "cut-1", "GOOD", date(90)).await;
    // 良好 → 关注: the limit of 4,000,000 is above 关注's maximum of 1,000,000.
    regrade(suite, &customer_id, "cut-2", "GOOD", "WATCH").await;
    let mut reader = suite.limits(&suite.admin_token);
    let mut drafted = None;
    for _ in 0..credit_e2e_tests::POLLS {
        let pending = reader
            .list_limit_requests(pb::ListLimitRequestsRequest {
                scope: scope_of_customer(&customer_id),
                status: pb::ApprovalStatus::Pending as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .limit_requests;
        if let Some(request) = pending.into_iter().next() {
            drafted = Some(request);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let drafted = drafted.expect("no limit cut was drafted after the downgrade");
    assert_eq!(drafted.amount, cny("1000000.00"));
    assert_eq!(drafted.requested_by.unwrap().principal, "system:limits");
    assert!(
        drafted.reason.contains("GOOD to WATCH"),
        "{}",
        drafted.reason
    );
    // People decide it, through its chain: nothing is cut until then.
    assert_eq!(drafted.approval_chain.unwrap().rule_id, "limit-delegated");
    let limit = reader
        .get_credit_limit(pb::GetCreditLimitRequest {
            scope: scope_of_customer(&customer_id),
        })
        .await
        .unwrap()
        .into_inner()
        .effective_limit
        .unwrap();
    assert_eq!(limit.amount, cny("4000000.00"));

    // A credit manager finds the review of the downgrade in the queue, with the cut it drafted
    // (the first grade opened none), and records it as done.
    let manager = suite.issue_token("rena-cm", &[Role::CreditManager]).await;
    let reviews = reviews_waiting(suite, &manager, &customer_id, 1).await;
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    let review = &reviews[0];
    assert!(
        review
            .summary
            .contains("downgraded from GOOD to WATCH (rating cut-2)"),
        "{}",
        review.summary
    );
    assert!(review.summary.contains(&drafted.limit_request_id));
    let returned = decide_review(
        suite,
        &manager,
        "rev-return",
        &review.record_id,
        pb::ApprovalVerdict::Return,
    )
    .await
    .unwrap_err();
    assert_eq!(returned.code(), Code::InvalidArgument);
    let analyst = suite.issue_token("ali", &[Role::Analyst]).await;
    let refused = decide_review(
        suite,
        &analyst,
        "rev-analyst",
        &review.record_id,
        pb::ApprovalVerdict::Approve,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let done = decide_review(
        suite,
        &manager,
        "rev-done",
        &review.record_id,
        pb::ApprovalVerdict::Approve,
    )
    .await
    .unwrap();
    let chain = done.chain.unwrap();
    assert_eq!(chain.status(), pb::ApprovalChainStatus::Approved);
    assert_eq!(chain.trail[0].actor.as_ref().unwrap().principal, "rena-cm");

    // An upgrade drafts nothing (once it is applied: the terms follow the new grade).
    regrade(suite, &customer_id, "cut-3", "WATCH", "GOOD").await;
    for _ in 0..credit_e2e_tests::POLLS {
        let terms = orders
            .get_credit_terms(pb::GetCreditTermsRequest {
                customer_id: customer_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .terms
            .unwrap();
        if terms.grade == "GOOD" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let requests = reader
        .list_limit_requests(pb::ListLimitRequestsRequest {
            scope: scope_of_customer(&customer_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .limit_requests;
    assert_eq!(requests.len(), 2, "the grant and the one drafted cut");
    // It opens a review of its own; the one done is no longer waiting.
    let reviews = reviews_waiting(suite, &manager, &customer_id, 1).await;
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert!(
        reviews[0]
            .summary
            .contains("upgraded from WATCH to GOOD (rating cut-3)"),
        "{}",
        reviews[0].summary
    );
}
