//! ApprovalService: limit requests walk the approval matrix's chains (the documents' business →
//! finance → risk → general manager → board), people's queues, returns for information, and
//! the matrix changed as versioned data with a second person — on both backends.

use credit_core::Role;
use credit_e2e_tests::{Authed, TestSuite};
use credit_proto::v1 as pb;
use credit_proto::v1::approval_service_client::ApprovalServiceClient;
use tonic::Code;
use tonic_types::StatusExt;

use crate::limits::{cny, customer_scope, reason, registered_customer};

type Approvals = ApprovalServiceClient<Authed>;

/// A limit request of `amount` CNY for a new customer, made by a person of the business unit.
async fn requested(suite: &TestSuite, seed: u64, amount: &str) -> (pb::LimitRequest, String) {
    let customer_id = registered_customer(suite, seed).await;
    let sales_token = suite.issue_token("sally-sales", &[Role::Sales]).await;
    let mut sales = suite.limits(&sales_token);
    let request = sales
        .request_limit_change(pb::RequestLimitChangeRequest {
            request_id: format!("lr-{seed}"),
            scope: customer_scope(&customer_id),
            amount: cny(amount),
            reason: "a new distributor for the eastern region".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .limit_request
        .unwrap();
    (request, sales_token)
}

/// The approval desk as a person holding `role`, who may approve up to `authority` CNY.
pub(crate) async fn person(
    suite: &TestSuite,
    name: &str,
    role: Role,
    authority: Option<&str>,
) -> Approvals {
    suite.approvals(
        &suite
            .issue_token_with_authority(name, &[role], authority)
            .await,
    )
}

/// What waits for the caller of `approvals` among decisions of `kind`.
pub(crate) async fn queue(
    approvals: &mut Approvals,
    kind: pb::DecisionKind,
    include_informed: bool,
) -> Vec<pb::ApprovalTask> {
    approvals
        .list_approval_tasks(pb::ListApprovalTasksRequest {
            decision_kind: kind as i32,
            include_informed,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks
}

async fn tasks(approvals: &mut Approvals, include_informed: bool) -> Vec<pb::ApprovalTask> {
    queue(approvals, pb::DecisionKind::LimitRequest, include_informed).await
}

/// A verdict on step `step_index` of the chain of `record_id`, a decision of `kind`.
pub(crate) async fn decide_step(
    approvals: &mut Approvals,
    kind: pb::DecisionKind,
    request_id: &str,
    record_id: &str,
    step_index: i32,
    verdict: pb::ApprovalVerdict,
    note: &str,
) -> Result<pb::ApprovalTask, tonic::Status> {
    approvals
        .decide_approval_step(pb::DecideApprovalStepRequest {
            request_id: request_id.into(),
            decision_kind: kind as i32,
            record_id: record_id.into(),
            step_index,
            verdict: verdict as i32,
            note: note.into(),
            release_conditions: Vec::new(),
        })
        .await
        .map(|response| response.into_inner().task.unwrap())
}

async fn decide(
    approvals: &mut Approvals,
    request_id: &str,
    record_id: &str,
    step_index: i32,
    verdict: pb::ApprovalVerdict,
    note: &str,
) -> Result<pb::ApprovalTask, tonic::Status> {
    let kind = pb::DecisionKind::LimitRequest;
    decide_step(
        approvals, kind, request_id, record_id, step_index, verdict, note,
    )
    .await
}

/// The field of the first violation a refusal names.
fn first_violated_field(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations[0]
        .field
        .clone()
}

fn step_statuses(chain: &pb::ApprovalChain) -> Vec<pb::ApprovalStepStatus> {
    chain.steps.iter().map(|step| step.status()).collect()
}

pub async fn a_large_limit_walks_finance_risk_and_the_general_manager_and_is_filed_with_the_board(
    suite: &TestSuite,
) {
    let (request, _) = requested(suite, 2201, "8000000.00").await;
    assert_eq!(request.status(), pb::ApprovalStatus::Pending);
    let chain = request.approval_chain.clone().unwrap();
    assert_eq!(chain.rule_id, "limit-large");
    let roles: Vec<Vec<i32>> = chain.steps.iter().map(|step| step.roles.clone()).collect();
    assert_eq!(
        roles,
        vec![
            vec![pb::Role::Finance as i32],
            vec![pb::Role::Risk as i32],
            vec![pb::Role::GeneralManager as i32],
            vec![pb::Role::Board as i32],
        ]
    );
    assert!(chain.steps[3].inform_only);
    let id = request.limit_request_id.clone();

    // Finance sees it in its queue; risk does not yet.
    let mut finance = person(suite, "fiona-finance", Role::Finance, None).await;
    let mut risk = person(suite, "rick-risk", Role::Risk, None).await;
    let queued = tasks(&mut finance, false).await;
    assert!(queued.iter().any(|task| task.record_id == id));
    assert!(
        !tasks(&mut risk, false)
            .await
            .iter()
            .any(|task| task.record_id == id)
    );

    // Risk may not decide finance's step.
    let early = decide(
        &mut risk,
        "r-early",
        &id,
        0,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await;
    assert_eq!(early.unwrap_err().code(), Code::PermissionDenied);

    let after_finance = decide(
        &mut finance,
        "f-1",
        &id,
        0,
        pb::ApprovalVerdict::Approve,
        "sized on the 2025 accounts",
    )
    .await
    .unwrap();
    assert_eq!(
        after_finance.chain.as_ref().unwrap().current_step_index,
        Some(1)
    );
    // A retry of the same verdict answers the chain as it stands and decides nothing twice.
    let retried = decide(
        &mut finance,
        "f-1",
        &id,
        0,
        pb::ApprovalVerdict::Approve,
        "sized on the 2025 accounts",
    )
    .await
    .unwrap();
    assert_eq!(retried.chain.as_ref().unwrap().trail.len(), 1);
    assert!(
        tasks(&mut risk, false)
            .await
            .iter()
            .any(|task| task.record_id == id)
    );
    decide(&mut risk, "r-1", &id, 1, pb::ApprovalVerdict::Approve, "")
        .await
        .unwrap();

    // The general manager's authority must cover the amount.
    let mut small_gm = person(suite, "gary-small", Role::GeneralManager, Some("1000000")).await;
    let refused = decide(
        &mut small_gm,
        "g-0",
        &id,
        2,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "AUTHORITY_INSUFFICIENT");
    let mut manager = person(suite, "grace-gm", Role::GeneralManager, Some("10000000")).await;
    let done = decide(
        &mut manager,
        "g-1",
        &id,
        2,
        pb::ApprovalVerdict::Approve,
        "approved",
    )
    .await
    .unwrap();
    let chain = done.chain.unwrap();
    assert_eq!(chain.status(), pb::ApprovalChainStatus::Approved);
    assert_eq!(
        step_statuses(&chain),
        vec![
            pb::ApprovalStepStatus::Approved,
            pb::ApprovalStepStatus::Approved,
            pb::ApprovalStepStatus::Approved,
            pb::ApprovalStepStatus::Informed,
        ]
    );

    // The limit is granted, and the request shows its whole trail.
    let mut reader = suite.limits(&suite.admin_token);
    let limit = reader
        .get_credit_limit(pb::GetCreditLimitRequest {
            scope: customer_scope(&request.scope_customer_id()),
        })
        .await
        .unwrap()
        .into_inner()
        .effective_limit
        .unwrap();
    assert_eq!(limit.amount, cny("8000000.00"));
    assert_eq!(limit.approved_by.unwrap().principal, "grace-gm");
    let listed = reader
        .list_limit_requests(pb::ListLimitRequestsRequest {
            scope: customer_scope(&request.scope_customer_id()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .limit_requests;
    let trail = &listed[0].approval_chain.as_ref().unwrap().trail;
    let deciders: Vec<String> = trail
        .iter()
        .map(|entry| entry.actor.as_ref().unwrap().principal.clone())
        .collect();
    assert_eq!(deciders, ["fiona-finance", "rick-risk", "grace-gm"]);
    assert_eq!(listed[0].status(), pb::ApprovalStatus::Approved);

    // The board finds it filed (备案), not as a step to decide.
    let mut board = person(suite, "bob-board", Role::Board, None).await;
    assert!(
        !tasks(&mut board, false)
            .await
            .iter()
            .any(|task| task.record_id == id)
    );
    assert!(
        tasks(&mut board, true)
            .await
            .iter()
            .any(|task| task.record_id == id)
    );
    // Nothing waits for finance any more.
    assert!(
        !tasks(&mut finance, false)
            .await
            .iter()
            .any(|task| task.record_id == id)
    );
    // Each verdict was announced with the decision (ApprovalStepDecided), once each.
    let announced = suite.outbox_event_types(&credit_limits::STORE).await;
    assert_eq!(
        announced
            .iter()
            .filter(|kind| kind.as_str() == "ApprovalStepDecided")
            .count(),
        3,
        "{announced:?}"
    );
}

pub async fn nobody_decides_two_steps_of_one_chain_nor_their_own_request(suite: &TestSuite) {
    let (request, sales_token) = requested(suite, 2202, "9000000.00").await;
    let id = request.limit_request_id.clone();
    // The maker, even holding finance's role under another token, may not decide.
    let maker_as_finance = suite
        .issue_token("sally-sales", &[Role::Sales, Role::Finance])
        .await;
    let own = decide(
        &mut suite.approvals(&maker_as_finance),
        "own",
        &id,
        0,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied);
    assert_eq!(reason(&own), "SELF_APPROVAL");
    assert!(
        !tasks(&mut suite.approvals(&maker_as_finance), false)
            .await
            .iter()
            .any(|task| task.record_id == id),
        "a person's own request is not in their queue"
    );
    drop(sales_token);

    // One person holding finance and risk decides one step only.
    let both = suite
        .issue_token("fred-both", &[Role::Finance, Role::Risk])
        .await;
    let mut both = suite.approvals(&both);
    decide(&mut both, "b-1", &id, 0, pb::ApprovalVerdict::Approve, "")
        .await
        .unwrap();
    let twice = decide(&mut both, "b-2", &id, 1, pb::ApprovalVerdict::Approve, "")
        .await
        .unwrap_err();
    assert_eq!(reason(&twice), "SELF_APPROVAL");
    // A verdict for a step the chain has left is refused, not applied to the next one.
    let mut admin = suite.approvals(&suite.admin_token);
    let stale = decide(&mut admin, "a-0", &id, 0, pb::ApprovalVerdict::Approve, "")
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);
    assert_eq!(reason(&stale), "STEP_NOT_CURRENT");
}

pub async fn a_returned_request_goes_back_to_its_maker_and_a_rejection_ends_it(suite: &TestSuite) {
    let (request, sales_token) = requested(suite, 2203, "7000000.00").await;
    let id = request.limit_request_id.clone();
    let mut finance = person(suite, "fay-finance", Role::Finance, None).await;
    let no_note = decide(&mut finance, "f-0", &id, 0, pb::ApprovalVerdict::Return, "")
        .await
        .unwrap_err();
    assert_eq!(no_note.code(), Code::InvalidArgument);
    assert_eq!(
        no_note
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "note"
    );
    let returned = decide(
        &mut finance,
        "f-1",
        &id,
        0,
        pb::ApprovalVerdict::Return,
        "send the audited 2025 statements",
    )
    .await
    .unwrap();
    assert_eq!(
        returned.chain.unwrap().status(),
        pb::ApprovalChainStatus::Returned
    );
    let mut maker = suite.approvals(&sales_token);
    assert!(
        tasks(&mut maker, false)
            .await
            .iter()
            .any(|task| task.record_id == id)
    );
    decide(
        &mut maker,
        "m-1",
        &id,
        0,
        pb::ApprovalVerdict::Resubmit,
        "attached",
    )
    .await
    .unwrap();
    let rejected = decide(
        &mut finance,
        "f-2",
        &id,
        0,
        pb::ApprovalVerdict::Reject,
        "too thin",
    )
    .await
    .unwrap();
    let chain = rejected.chain.unwrap();
    assert_eq!(chain.status(), pb::ApprovalChainStatus::Rejected);
    assert_eq!(chain.steps[3].status(), pb::ApprovalStepStatus::Skipped);
    let mut reader = suite.limits(&suite.admin_token);
    let listed = reader
        .list_limit_requests(pb::ListLimitRequestsRequest {
            scope: customer_scope(&request.scope_customer_id()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .limit_requests;
    assert_eq!(listed[0].status(), pb::ApprovalStatus::Rejected);
}

pub async fn a_small_limit_is_still_one_credit_managers_decision(suite: &TestSuite) {
    let (request, _) = requested(suite, 2204, "300000.00").await;
    let chain = request.approval_chain.unwrap();
    assert_eq!(chain.rule_id, "limit-delegated");
    assert_eq!(chain.steps.len(), 1);
    let mut manager = suite.limits(
        &suite
            .issue_token_with_authority("cora-cm", &[Role::CreditManager], Some("1000000"))
            .await,
    );
    let decided = manager
        .decide_limit_request(pb::DecideLimitRequestRequest {
            request_id: "cm-1".into(),
            limit_request_id: request.limit_request_id,
            decision: pb::ApprovalDecision::Approve as i32,
            reason: "fine".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decided.limit_request.unwrap().status(),
        pb::ApprovalStatus::Approved
    );
    assert_eq!(decided.limit.unwrap().amount, cny("300000.00"));
}

fn policy_matrix_with_a_lower_threshold(shipped: &pb::ApprovalMatrix) -> pb::ApprovalMatrix {
    let mut matrix = shipped.clone();
    for rule in &mut matrix.rules {
        if rule.rule_id == "limit-large" {
            rule.conditions.as_mut().unwrap().amount_above = cny("1000000.00");
        }
    }
    matrix
}

pub async fn a_matrix_change_needs_a_second_person_and_keeps_its_history(suite: &TestSuite) {
    let proposer_token = suite.issue_token("carl-cm", &[Role::CreditManager]).await;
    let mut proposer = suite.approvals(&proposer_token);
    let shipped = proposer
        .get_approval_matrix(pb::GetApprovalMatrixRequest { version: None })
        .await
        .unwrap()
        .into_inner()
        .matrix
        .unwrap();
    assert_eq!(shipped.version, 0);
    assert_eq!(shipped.status(), pb::PolicyVersionStatus::Published);

    // A matrix without a catch-all for a kind is refused at its field, and nothing is filed.
    let mut broken = shipped.clone();
    broken
        .rules
        .retain(|rule| rule.rule_id != "referral-delegated");
    let refused = proposer
        .propose_approval_matrix(pb::ProposeApprovalMatrixRequest {
            request_id: "bad".into(),
            matrix: Some(broken),
            reason: "drop a rule".into(),
            effective_from: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(first_violated_field(&refused), "matrix.rules");

    let proposed = proposer
        .propose_approval_matrix(pb::ProposeApprovalMatrixRequest {
            request_id: "lower".into(),
            matrix: Some(policy_matrix_with_a_lower_threshold(&shipped)),
            reason: "the documents' chain from 1,000,000".into(),
            effective_from: None,
        })
        .await
        .unwrap()
        .into_inner()
        .matrix
        .unwrap();
    assert_eq!(proposed.version, 1);
    assert_eq!(proposed.status(), pb::PolicyVersionStatus::Proposed);
    assert_eq!(proposed.changes.len(), 1);
    assert_eq!(proposed.changes[0].path, "rules[1].conditions.amount_above");
    assert_eq!(proposed.changes[0].before, "\"5000000\"");
    assert_eq!(proposed.changes[0].after, "\"1000000\"");

    // The proposer cannot approve it; another credit manager can.
    let record = "matrix:1";
    let own = proposer
        .decide_approval_step(pb::DecideApprovalStepRequest {
            request_id: "self".into(),
            decision_kind: pb::DecisionKind::PolicyChange as i32,
            record_id: record.into(),
            step_index: 0,
            verdict: pb::ApprovalVerdict::Approve as i32,
            note: String::new(),
            release_conditions: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&own), "SELF_APPROVAL");
    let mut second = person(suite, "gina-gm", Role::GeneralManager, None).await;
    let waiting = queue(&mut second, pb::DecisionKind::PolicyChange, false).await;
    assert!(waiting.iter().any(|task| task.record_id == record));
    decide_step(
        &mut second,
        pb::DecisionKind::PolicyChange,
        "ok",
        record,
        0,
        pb::ApprovalVerdict::Approve,
        "agreed at the credit committee",
    )
    .await
    .unwrap();

    let versions = second
        .list_approval_matrix_versions(pb::ListApprovalMatrixVersionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions.in_force_version, 1);
    let listed: Vec<u32> = versions
        .versions
        .iter()
        .map(|version| version.version)
        .collect();
    assert_eq!(listed, [1, 0]);
    let published = &versions.versions[0];
    assert_eq!(published.status(), pb::PolicyVersionStatus::Published);
    let trail = &published.chain.as_ref().unwrap().trail;
    assert_eq!(trail[0].actor.as_ref().unwrap().principal, "gina-gm");

    // A new request of 2,000,000 now walks the documents' chain under version 1.
    let (request, _) = requested(suite, 2205, "2000000.00").await;
    let chain = request.approval_chain.unwrap();
    assert_eq!(chain.rule_id, "limit-large");
    assert_eq!(chain.matrix_version, 1);
}

pub async fn only_people_who_run_credit_propose_a_matrix(suite: &TestSuite) {
    let mut analyst = person(suite, "al-analyst", Role::Analyst, None).await;
    let refused = analyst
        .propose_approval_matrix(pb::ProposeApprovalMatrixRequest {
            request_id: "x".into(),
            matrix: None,
            reason: "x".into(),
            effective_from: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

trait ScopeCustomer {
    fn scope_customer_id(&self) -> String;
}

impl ScopeCustomer for pb::LimitRequest {
    fn scope_customer_id(&self) -> String {
        match self.scope.as_ref().and_then(|scope| scope.scope.as_ref()) {
            Some(pb::limit_scope::Scope::CustomerId(id)) => id.clone(),
            _ => String::new(),
        }
    }
}

/// Publishes `matrix` as the next version: proposed by one credit manager, approved by the
/// general manager.
pub(crate) async fn publish_matrix(
    suite: &TestSuite,
    matrix: pb::ApprovalMatrix,
    request_id: &str,
) {
    let mut proposer = person(suite, "pia-cm", Role::CreditManager, None).await;
    let proposed = proposer
        .propose_approval_matrix(pb::ProposeApprovalMatrixRequest {
            request_id: request_id.into(),
            matrix: Some(matrix),
            reason: "the limit chain's deadlines".into(),
            effective_from: None,
        })
        .await
        .unwrap()
        .into_inner()
        .matrix
        .unwrap();
    let mut approver = person(suite, "gus-gm", Role::GeneralManager, None).await;
    decide_step(
        &mut approver,
        pb::DecisionKind::PolicyChange,
        &format!("{request_id}-ok"),
        &format!("matrix:{}", proposed.version),
        0,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap();
}

pub async fn a_step_left_waiting_past_its_deadline_is_escalated_to_the_credit_department(
    suite: &TestSuite,
) {
    let mut reader = person(suite, "rita-reader", Role::Analyst, None).await;
    let shipped = reader
        .get_approval_matrix(pb::GetApprovalMatrixRequest { version: None })
        .await
        .unwrap()
        .into_inner()
        .matrix
        .unwrap();
    let finance_step = shipped
        .rules
        .iter()
        .find(|rule| rule.rule_id == "limit-large")
        .map(|rule| rule.steps[0].clone())
        .unwrap();
    assert_eq!(
        finance_step
            .escalate_after
            .as_ref()
            .map(|after| after.seconds),
        Some(48 * 3600),
        "the shipped chain gives finance two days"
    );
    assert_eq!(finance_step.escalate_to, [pb::Role::CreditManager as i32]);

    // A deadline that cannot be a duration of whole seconds is refused at its field.
    let mut broken = shipped.clone();
    broken.rules[1].steps[0].escalate_after = Some(prost_types::Duration {
        seconds: 0,
        nanos: 500,
    });
    let refused = person(suite, "pia-cm", Role::CreditManager, None)
        .await
        .propose_approval_matrix(pb::ProposeApprovalMatrixRequest {
            request_id: "half-second".into(),
            matrix: Some(broken),
            reason: "faster".into(),
            effective_from: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        first_violated_field(&refused),
        "matrix.rules[1].steps[0].escalate_after"
    );

    // Finance gets one second instead of two days.
    let mut hurried = shipped.clone();
    for rule in &mut hurried.rules {
        if rule.rule_id == "limit-large" {
            rule.steps[0].escalate_after = Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            });
        }
    }
    publish_matrix(suite, hurried, "hurried").await;

    let (request, _) = requested(suite, 2207, "8000000.00").await;
    let id = request.limit_request_id.clone();
    let mut manager = person(suite, "cleo-cm", Role::CreditManager, Some("10000000")).await;
    assert!(
        !tasks(&mut manager, false)
            .await
            .iter()
            .any(|task| task.record_id == id),
        "finance's step is not the credit department's before its deadline"
    );
    let mut escalated = None;
    // The sweep runs every few seconds.
    for _ in 0..200 {
        escalated = tasks(&mut manager, false)
            .await
            .into_iter()
            .find(|task| task.record_id == id);
        if escalated.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let chain = escalated
        .expect("escalated into the credit manager's queue")
        .chain
        .unwrap();
    assert!(chain.steps[0].escalated_at.is_some());
    let last = chain.trail.last().unwrap();
    assert_eq!(last.verdict(), pb::ApprovalVerdict::Escalate);
    assert_eq!(last.actor.as_ref().unwrap().principal, "system:limits");
    // Still finance's step too; the credit manager now decides it, and the chain goes on to
    // risk management, whose two days run from now.
    let task = decide(
        &mut manager,
        "esc-1",
        &id,
        0,
        pb::ApprovalVerdict::Approve,
        "sized for finance",
    )
    .await
    .unwrap();
    let chain = task.chain.unwrap();
    assert_eq!(chain.current_step_index, Some(1));
    assert!(chain.steps[1].escalated_at.is_none());
    // Escalating is the system's, never a person's verdict.
    let mut risk = person(suite, "ron-risk", Role::Risk, None).await;
    let refused = decide(
        &mut risk,
        "esc-2",
        &id,
        1,
        pb::ApprovalVerdict::Escalate,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
}

pub async fn a_request_left_waiting_past_the_policy_expiry_is_withdrawn(suite: &TestSuite) {
    // Shipped: a request waits 30 days at most.
    let mut admin = suite.limits(&suite.admin_token);
    let shipped = crate::policy::policy(&mut admin).await;
    assert_eq!(
        shipped
            .approval_expiry
            .as_ref()
            .map(|expiry| expiry.seconds),
        Some(30 * 86_400)
    );
    // A negative expiry is refused at its field.
    let mut negative = shipped.clone();
    negative.approval_expiry = Some(prost_types::Duration {
        seconds: -1,
        nanos: 0,
    });
    let refused = admin
        .update_credit_policy(pb::UpdateCreditPolicyRequest {
            request_id: "negative-expiry".into(),
            policy: Some(negative),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["approval_expiry".into()],
            }),
            reason: "faster".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(first_violated_field(&refused), "policy.approval_expiry");

    let mut hurried = shipped;
    hurried.approval_expiry = Some(prost_types::Duration {
        seconds: 2,
        nanos: 0,
    });
    crate::policy::change_policy(suite, hurried, &["approval_expiry"]).await;
    let (request, _) = requested(suite, 9_101, "1000000").await;
    let mut manager = person(suite, "mia-cm", Role::CreditManager, Some("5000000")).await;
    assert!(
        tasks(&mut manager, false)
            .await
            .iter()
            .any(|task| task.record_id == request.limit_request_id),
        "waits for a credit manager first"
    );
    let mut reader = suite.limits(&suite.admin_token);
    let mut withdrawn = None;
    // The sweep runs every few seconds.
    for _ in 0..200 {
        let listed = reader
            .list_limit_requests(pb::ListLimitRequestsRequest {
                scope: customer_scope(&request.scope_customer_id()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .limit_requests;
        if listed[0].status() == pb::ApprovalStatus::Rejected {
            withdrawn = Some(listed[0].clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let withdrawn = withdrawn.expect("the request expired");
    let chain = withdrawn.approval_chain.unwrap();
    assert_eq!(chain.status(), pb::ApprovalChainStatus::Rejected);
    let last = chain.trail.last().unwrap();
    assert_eq!(last.verdict(), pb::ApprovalVerdict::Withdraw);
    assert_eq!(last.actor.as_ref().unwrap().principal, "system:limits");
    assert_eq!(
        last.note,
        "expired: no decision within 2 seconds of the request"
    );
    assert!(
        !tasks(&mut manager, false)
            .await
            .iter()
            .any(|task| task.record_id == request.limit_request_id),
        "nobody's queue keeps it"
    );
    // Nobody decides it any more.
    let late = decide(
        &mut manager,
        "late",
        &request.limit_request_id,
        0,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
}
