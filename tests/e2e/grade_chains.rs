//! Overrides and new grades walk the approval matrix (issue #22): an override beyond two
//! notches goes to the general manager; a company's matrix may put several people on an
//! override, never the same person twice; and where the credit policy asks for it, a new grade
//! waits for the general manager (报总经理审批) while the grade in force stays — on both
//! backends, through the generated clients.

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use tonic::Code;

use crate::approvals::publish_matrix;
use crate::policy::{change_policy, policy};
use crate::rating::reason;
use crate::ratings::{Rating, decide, propose, publish_model, rate, rated_bbb_customer};

async fn pending_of(rating: &mut Rating, customer_id: &str) -> Vec<pb::RatingOverride> {
    rating
        .list_overrides(pb::ListOverridesRequest {
            customer_id: customer_id.into(),
            status: pb::ApprovalStatus::Pending as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .overrides
}

async fn current(rating: &mut Rating, customer_id: &str) -> pb::Rating {
    rating
        .get_rating(pb::GetRatingRequest {
            lookup: Some(pb::get_rating_request::Lookup::CustomerId(
                customer_id.into(),
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .rating
        .unwrap()
}

/// The grade limits knows for the customer, once it is `expected` (events arrive a moment
/// later).
async fn grade_in_limits(suite: &TestSuite, customer_id: &str, expected: &str) -> String {
    let mut limits = suite.limits(&suite.admin_token);
    let mut seen = String::new();
    for _ in 0..credit_e2e_tests::POLLS {
        if let Ok(proposal) = limits
            .propose_limit(pb::ProposeLimitRequest {
                customer_id: customer_id.into(),
                currency: String::new(),
            })
            .await
        {
            seen = proposal.into_inner().grade;
            if seen == expected {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    seen
}

fn chain(proposal: &pb::RatingOverride) -> &pb::ApprovalChain {
    proposal.approval_chain.as_ref().expect("walks a chain")
}

fn trail(chain: &pb::ApprovalChain) -> Vec<(String, pb::ApprovalVerdict)> {
    chain
        .trail
        .iter()
        .map(|entry| {
            (
                entry.actor.as_ref().unwrap().principal.clone(),
                entry.verdict(),
            )
        })
        .collect()
}

pub async fn an_override_beyond_two_notches_goes_to_the_general_manager(suite: &TestSuite) {
    publish_model(suite).await;
    let (customer_id, rated) = rated_bbb_customer(suite, "Notches Co", 52_001).await;
    let mut mei = suite.rating(&suite.issue_token("mei", &[Role::CreditManager]).await);
    let mut li = suite.rating(&suite.issue_token("li", &[Role::CreditManager]).await);
    let mut gus = suite.rating(&suite.issue_token("gus", &[Role::GeneralManager]).await);

    // One notch: the shipped matrix's delegated rule, a credit manager decides.
    let small = propose(&mut mei, "ov-small", &rated.rating_id, "A")
        .await
        .unwrap();
    assert_eq!(chain(&small).rule_id, "rating-override");
    assert_eq!(chain(&small).status(), pb::ApprovalChainStatus::Pending);
    assert_eq!(chain(&small).maker.as_ref().unwrap().principal, "mei");
    let rejected = decide(
        &mut li,
        "dec-small",
        &small.override_id,
        pb::ApprovalDecision::Reject,
    )
    .await
    .unwrap();
    let rejected_override = rejected.rating_override.unwrap();
    assert_eq!(rejected_override.status(), pb::ApprovalStatus::Rejected);
    assert_eq!(
        trail(chain(&rejected_override)),
        [("li".to_owned(), pb::ApprovalVerdict::Reject)]
    );
    assert_eq!(rejected.rating.unwrap().grade, "BBB");

    // BBB -> CCC is three notches down: the general manager's, not a credit manager's.
    let large = propose(&mut mei, "ov-large", &rated.rating_id, "CCC")
        .await
        .unwrap();
    assert_eq!(large.notches, -3);
    assert_eq!(chain(&large).rule_id, "rating-override-large");
    assert_eq!(
        chain(&large).steps[0].roles,
        [pb::Role::GeneralManager as i32]
    );
    let by_manager = decide(
        &mut li,
        "dec-large-li",
        &large.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap_err();
    assert_eq!(by_manager.code(), Code::PermissionDenied);
    assert_eq!(reason(&by_manager), "INSUFFICIENT_ROLE");
    let approved = decide(
        &mut gus,
        "dec-large-gus",
        &large.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();
    let rating = approved.rating.unwrap();
    assert_eq!(
        (rating.model_grade.as_str(), rating.grade.as_str()),
        ("BBB", "CCC")
    );
    assert_eq!(rating.override_id, large.override_id);
    let decided = approved.rating_override.unwrap();
    assert_eq!(decided.status(), pb::ApprovalStatus::Approved);
    assert_eq!(chain(&decided).status(), pb::ApprovalChainStatus::Approved);
    assert_eq!(
        trail(chain(&decided)),
        [("gus".to_owned(), pb::ApprovalVerdict::Approve)]
    );
    assert_eq!(grade_in_limits(suite, &customer_id, "CCC").await, "CCC");
}

pub async fn a_companys_override_chain_takes_two_people_never_one_twice(suite: &TestSuite) {
    publish_model(suite).await;
    let (_, rated) = rated_bbb_customer(suite, "Two Step Co", 52_002).await;
    // The company wants every override seen by a credit manager, then the general manager.
    let shipped = suite
        .approvals(&suite.admin_token)
        .get_approval_matrix(pb::GetApprovalMatrixRequest { version: None })
        .await
        .unwrap()
        .into_inner()
        .matrix
        .unwrap();
    let mut matrix = shipped.clone();
    matrix
        .rules
        .retain(|rule| rule.decision_kind() != pb::DecisionKind::RatingOverride);
    matrix.rules.push(pb::ApprovalChainRule {
        rule_id: "override-two-people".into(),
        decision_kind: pb::DecisionKind::RatingOverride as i32,
        description: "every override: a credit manager, then the general manager".into(),
        conditions: Some(pb::ApprovalConditions::default()),
        steps: vec![
            pb::ApprovalStepRule {
                name: "a credit manager checks the justification".into(),
                roles: vec![pb::Role::CreditManager as i32],
                ..Default::default()
            },
            pb::ApprovalStepRule {
                name: "the general manager approves".into(),
                roles: vec![pb::Role::GeneralManager as i32],
                ..Default::default()
            },
        ],
    });
    publish_matrix(suite, matrix, "override-two-people").await;

    let mut ana = suite.rating(&suite.issue_token("ana", &[Role::Analyst]).await);
    let mut li = suite.rating(&suite.issue_token("li", &[Role::CreditManager]).await);
    let proposal = propose(&mut ana, "ov-two", &rated.rating_id, "A")
        .await
        .unwrap();
    assert_eq!(chain(&proposal).rule_id, "override-two-people");
    assert_eq!(chain(&proposal).steps.len(), 2);

    let first = decide(
        &mut li,
        "dec-two-li",
        &proposal.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();
    let after_first = first.rating_override.unwrap();
    assert_eq!(after_first.status(), pb::ApprovalStatus::Pending);
    assert_eq!(chain(&after_first).current_step_index, Some(1));
    assert_eq!(first.rating.unwrap().grade, "BBB", "not yet in force");

    // The credit manager who approved the first step may not approve the second, not even
    // with a general manager's token; nor may the analyst who proposed it.
    let li_again = decide(
        &mut suite.rating(&suite.issue_token("li", &[Role::GeneralManager]).await),
        "dec-two-li-gm",
        &proposal.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&li_again), "SELF_APPROVAL");
    let maker = decide(
        &mut suite.rating(&suite.issue_token("ana", &[Role::GeneralManager]).await),
        "dec-two-ana-gm",
        &proposal.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&maker), "SELF_APPROVAL");

    let mut gus = suite.rating(&suite.issue_token("gus", &[Role::GeneralManager]).await);
    let second = decide(
        &mut gus,
        "dec-two-gus",
        &proposal.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();
    assert_eq!(second.rating.unwrap().grade, "A");
    let decided = second.rating_override.unwrap();
    assert_eq!(decided.status(), pb::ApprovalStatus::Approved);
    assert_eq!(
        trail(chain(&decided)),
        [
            ("li".to_owned(), pb::ApprovalVerdict::Approve),
            ("gus".to_owned(), pb::ApprovalVerdict::Approve),
        ]
    );
    assert_eq!(decided.decided_by.unwrap().principal, "gus");
}

pub async fn a_new_grade_waits_for_the_general_manager_when_the_policy_asks(suite: &TestSuite) {
    publish_model(suite).await;
    // Without the policy's say-so a new grade takes effect at once (as the first one did).
    let (customer_id, first) = rated_bbb_customer(suite, "Approval Co", 52_003).await;
    assert_eq!(first.grade, "BBB");
    assert!(first.grade_approval_id.is_empty());
    let mut admin = suite.limits(&suite.admin_token);
    let mut asks = policy(&mut admin).await;
    assert!(!asks.grade_approval_required, "off in the shipped policy");
    asks.grade_approval_required = true;
    let in_force = change_policy(suite, asks, &["grade_approval_required"]).await;
    assert!(in_force.grade_approval_required);

    // Management quality 1 instead of 4: 600 points, BB. The grade in force stays BBB.
    let mut ana = suite.rating(&suite.issue_token("ana", &[Role::Analyst]).await);
    let lower = rate(
        &mut ana,
        "rate-lower",
        &customer_id,
        &[("management_quality", 1)],
    )
    .await
    .unwrap()
    .rating
    .unwrap();
    assert_eq!(
        (lower.model_grade.as_str(), lower.grade.as_str()),
        ("BB", "BBB")
    );
    assert!(!lower.grade_approval_id.is_empty());
    assert_eq!(current(&mut ana, &customer_id).await.grade, "BBB");
    let waiting = pending_of(&mut ana, &customer_id).await;
    assert_eq!(waiting.len(), 1);
    let approval = &waiting[0];
    assert_eq!(approval.override_id, lower.grade_approval_id);
    assert_eq!(approval.decision_kind(), pb::DecisionKind::RatingApproval);
    assert_eq!(approval.proposed_grade, "BB");
    assert_eq!(chain(approval).rule_id, "rating-approval");
    assert_eq!(
        chain(approval).steps[0].roles,
        [pb::Role::GeneralManager as i32]
    );
    // An override cannot jump the queue.
    let jump = propose(
        &mut suite.rating(&suite.issue_token("mei", &[Role::CreditManager]).await),
        "ov-jump",
        &lower.rating_id,
        "A",
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&jump), "OVERRIDE_PENDING");

    // Not a credit manager's, and not the analyst's who rated, whatever their token.
    let by_manager = decide(
        &mut suite.rating(&suite.issue_token("mei", &[Role::CreditManager]).await),
        "grade-mei",
        &approval.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&by_manager), "INSUFFICIENT_ROLE");
    let by_rater = decide(
        &mut suite.rating(&suite.issue_token("ana", &[Role::GeneralManager]).await),
        "grade-ana",
        &approval.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&by_rater), "SELF_APPROVAL");

    let mut gus = suite.rating(&suite.issue_token("gus", &[Role::GeneralManager]).await);
    let approved = decide(
        &mut gus,
        "grade-gus",
        &approval.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();
    let rating = approved.rating.unwrap();
    assert_eq!(rating.grade, "BB");
    assert!(rating.override_id.is_empty(), "the model's own grade");
    assert_eq!(current(&mut ana, &customer_id).await.grade, "BB");
    assert_eq!(grade_in_limits(suite, &customer_id, "BB").await, "BB");

    // Back up to BBB, and the general manager says no: BB stays.
    let higher = rate(
        &mut ana,
        "rate-higher",
        &customer_id,
        &[("management_quality", 4)],
    )
    .await
    .unwrap()
    .rating
    .unwrap();
    assert_eq!(
        (higher.model_grade.as_str(), higher.grade.as_str()),
        ("BBB", "BB")
    );
    let rejected = decide(
        &mut gus,
        "grade-gus-no",
        &higher.grade_approval_id,
        pb::ApprovalDecision::Reject,
    )
    .await
    .unwrap();
    assert_eq!(
        rejected.rating_override.unwrap().status(),
        pb::ApprovalStatus::Rejected
    );
    assert_eq!(current(&mut ana, &customer_id).await.grade, "BB");
    assert!(pending_of(&mut ana, &customer_id).await.is_empty());

    // A new rating replaces one whose grade still waits: the old approval is withdrawn (it can
    // no longer be decided), the new one waits in its place.
    let first_ask = rate(
        &mut ana,
        "rate-again-1",
        &customer_id,
        &[("management_quality", 4)],
    )
    .await
    .unwrap()
    .rating
    .unwrap();
    let second_ask = rate(
        &mut ana,
        "rate-again-2",
        &customer_id,
        &[("management_quality", 4)],
    )
    .await
    .unwrap()
    .rating
    .unwrap();
    let waiting = pending_of(&mut ana, &customer_id).await;
    let waiting_ids: Vec<&str> = waiting.iter().map(|o| o.override_id.as_str()).collect();
    assert_eq!(waiting_ids, [second_ask.grade_approval_id.as_str()]);
    let withdrawn = ana
        .list_overrides(pb::ListOverridesRequest {
            customer_id: customer_id.clone(),
            status: pb::ApprovalStatus::Rejected as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .overrides
        .into_iter()
        .find(|o| o.override_id == first_ask.grade_approval_id)
        .expect("the first approval is closed");
    assert!(
        withdrawn.decision_comment.contains("withdrawn"),
        "{withdrawn:?}"
    );
    assert_eq!(
        trail(chain(&withdrawn)),
        [("system:rating".to_owned(), pb::ApprovalVerdict::Withdraw)]
    );
    assert_eq!(
        chain(&withdrawn).status(),
        pb::ApprovalChainStatus::Rejected
    );
}
