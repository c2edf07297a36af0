//! Step 7.2 of the credit procedure, on both backends: an order that breaks the credit terms
//! is referred (not declined, for a grade whose policy says so), finance verifies the figures,
//! the general manager decides and may release it on conditions; a referral whose cause has
//! cleared is released by the system once a payment arrives.

use std::time::Duration;

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::service_names::{COLLECTIONS, RATING};
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use tonic::Code;

use crate::authorize::{
    Limits, authorize, cny, codes, customer, grant, scope_of_customer, wait_until_approvable,
};
use crate::limits::reason;

/// A rated, ACTIVE customer with a limit of `limit` CNY, its grade applied.
async fn graded_customer(suite: &TestSuite, seed: u64, limit: &str, grade: &str) -> String {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, seed, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        limit,
        &format!("lim-{seed}"),
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    suite
        .publish(
            RATING,
            Payload::RatingChanged(pb::RatingChanged {
                customer_id: customer_id.clone(),
                rating_id: format!("rat-{seed}"),
                grade: grade.into(),
                ..Default::default()
            }),
        )
        .await;
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
        if terms.grade == grade {
            return customer_id;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("limits never applied grade {grade} to {customer_id}");
}

async fn referral(limits: &mut Limits, customer_id: &str, referral_id: &str) -> pb::Referral {
    limits
        .list_referrals(pb::ListReferralsRequest {
            customer_id: customer_id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .referrals
        .into_iter()
        .find(|referral| referral.referral_id == referral_id)
        .expect("the referral is in the queue")
}

/// Waits until the referral's chain is open (a moment after the order) and returns it.
async fn with_chain(limits: &mut Limits, customer_id: &str, referral_id: &str) -> pb::Referral {
    for _ in 0..credit_e2e_tests::POLLS {
        let found = referral(limits, customer_id, referral_id).await;
        if found.approval_chain.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the chain of {referral_id} was never opened");
}

fn step(
    request_id: &str,
    referral_id: &str,
    step_index: i32,
    verdict: pb::ApprovalVerdict,
    note: &str,
    release_conditions: Vec<pb::ReleaseCondition>,
) -> pb::DecideApprovalStepRequest {
    pb::DecideApprovalStepRequest {
        request_id: request_id.into(),
        decision_kind: pb::DecisionKind::OrderReferral as i32,
        record_id: referral_id.into(),
        step_index,
        verdict: verdict as i32,
        note: note.into(),
        release_conditions,
    }
}

pub async fn an_order_beyond_the_tolerance_is_verified_by_finance_and_released_by_the_general_manager_on_a_deposit(
    suite: &TestSuite,
) {
    // 良好 (GOOD) refers orders beyond the tolerance instead of declining them.
    let customer_id = graded_customer(suite, 72_001, "1000000.00", "GOOD").await;
    let orderer = suite.issue_token("erp-orders", &[Role::OrderEntry]).await;
    let mut orders = suite.limits(&orderer);
    let answer = authorize(&mut orders, &customer_id, "big-1", "1300000.00")
        .await
        .unwrap();
    assert_eq!(answer.decision(), pb::AuthorizationDecision::Referred);
    let over = answer
        .reasons
        .iter()
        .find(|reason| reason.code == "LIMIT_EXCEEDED")
        .unwrap();
    assert_eq!(over.metadata["within_tolerance"], "false");
    assert_eq!(over.metadata["tolerance_percent"], "10");
    assert_eq!(over.metadata["refer_beyond_tolerance"], "true");

    // Finance's figures are on the referral; the chain is step 7.2.
    let mut reader = suite.limits(&suite.admin_token);
    let referred = with_chain(&mut reader, &customer_id, &answer.referral_id).await;
    assert_eq!(referred.overshoot, cny("300000.00"));
    assert_eq!(referred.oldest_overdue_days, 0);
    let chain = referred.approval_chain.unwrap();
    assert_eq!(chain.rule_id, "referral-large-overshoot");
    assert_eq!(
        chain
            .steps
            .iter()
            .map(|step| step.roles.clone())
            .collect::<Vec<_>>(),
        vec![
            vec![pb::Role::Finance as i32],
            vec![pb::Role::GeneralManager as i32]
        ]
    );
    assert_eq!(chain.authority_amount, cny("300000.00"));

    // Finance finds it in its queue and verifies.
    let mut finance = suite.approvals(&suite.issue_token("fei-finance", &[Role::Finance]).await);
    let queue = finance
        .list_approval_tasks(pb::ListApprovalTasksRequest {
            decision_kind: pb::DecisionKind::OrderReferral as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert!(
        queue
            .iter()
            .any(|task| task.record_id == answer.referral_id)
    );
    // The orderer decides nothing, whatever roles its person holds.
    let orderer_as_finance = suite
        .issue_token("erp-orders", &[Role::OrderEntry, Role::Finance])
        .await;
    let own = suite
        .approvals(&orderer_as_finance)
        .decide_approval_step(step(
            "own",
            &answer.referral_id,
            0,
            pb::ApprovalVerdict::Approve,
            "",
            Vec::new(),
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&own), "SELF_APPROVAL");
    // Conditions go with the release, not with finance's verification.
    let early = finance
        .decide_approval_step(step(
            "f-0",
            &answer.referral_id,
            0,
            pb::ApprovalVerdict::Approve,
            "",
            vec![pb::ReleaseCondition {
                condition_type: pb::ReleaseConditionType::Deposit as i32,
                amount: cny("1.00"),
                ..Default::default()
            }],
        ))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::InvalidArgument);
    finance
        .decide_approval_step(step(
            "f-1",
            &answer.referral_id,
            0,
            pb::ApprovalVerdict::Approve,
            "verified: owed 0, nothing overdue, 300,000 over the limit",
            Vec::new(),
        ))
        .await
        .unwrap();

    // Nobody decides two steps of one chain.
    let both = suite
        .issue_token_with_authority(
            "fei-finance",
            &[Role::Finance, Role::GeneralManager],
            Some("1000000"),
        )
        .await;
    let twice = suite
        .limits(&both)
        .decide_referral(pb::DecideReferralRequest {
            request_id: "twice".into(),
            referral_id: answer.referral_id.clone(),
            outcome: pb::ReferralOutcome::Release as i32,
            reason: "me again".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&twice), "SELF_APPROVAL");

    // The general manager's authority covers the overshoot (300,000), not the order.
    let mut manager = suite.limits(
        &suite
            .issue_token_with_authority("guo-gm", &[Role::GeneralManager], Some("500000"))
            .await,
    );
    let released = manager
        .decide_referral(pb::DecideReferralRequest {
            request_id: "gm-1".into(),
            referral_id: answer.referral_id.clone(),
            outcome: pb::ReferralOutcome::Release as i32,
            reason: "keep trading against a deposit".into(),
            hold_ttl: None,
            conditions: vec![pb::ReleaseCondition {
                condition_type: pb::ReleaseConditionType::Deposit as i32,
                amount: cny("200000.00"),
                hold_ttl: None,
                note: "by bank transfer before shipping".into(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let decided = released.referral.unwrap();
    assert_eq!(decided.status(), pb::ReferralStatus::Released);
    assert_eq!(decided.decided_by.unwrap().principal, "guo-gm");
    assert_eq!(decided.release_conditions.len(), 1);
    assert_eq!(decided.release_conditions[0].amount, cny("200000.00"));
    let trail: Vec<String> = decided
        .approval_chain
        .unwrap()
        .trail
        .iter()
        .map(|entry| entry.actor.as_ref().unwrap().principal.clone())
        .collect();
    assert_eq!(trail, ["fei-finance", "guo-gm"]);
    let hold = released.hold.unwrap();
    assert_eq!(hold.amount, cny("1300000.00"));

    // A customer of a grade that declines beyond the tolerance is still declined.
    let weak = graded_customer(suite, 72_002, "1000000.00", "FAIR").await;
    let declined = authorize(&mut orders, &weak, "big-2", "1300000.00")
        .await
        .unwrap();
    assert_eq!(declined.decision(), pb::AuthorizationDecision::Declined);
}

pub async fn a_release_on_a_partial_quantity_holds_only_that_part(suite: &TestSuite) {
    let customer_id = graded_customer(suite, 72_003, "100000.00", "BBB").await;
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    // 105,000 is within the band: one credit manager decides (referral-delegated).
    let answer = authorize(&mut orders, &customer_id, "part-1", "105000.00")
        .await
        .unwrap();
    assert_eq!(answer.decision(), pb::AuthorizationDecision::Referred);
    let mut manager = suite.approvals(
        &suite
            .issue_token_with_authority("mia-cm", &[Role::CreditManager], Some("100000"))
            .await,
    );
    let mut reader = suite.limits(&suite.admin_token);
    let referred = with_chain(&mut reader, &customer_id, &answer.referral_id).await;
    assert_eq!(
        referred.approval_chain.unwrap().rule_id,
        "referral-delegated"
    );
    let too_much = manager
        .decide_approval_step(step(
            "p-0",
            &answer.referral_id,
            0,
            pb::ApprovalVerdict::Approve,
            "",
            vec![pb::ReleaseCondition {
                condition_type: pb::ReleaseConditionType::PartialQuantity as i32,
                amount: cny("105000.01"),
                ..Default::default()
            }],
        ))
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), Code::InvalidArgument);
    let task = manager
        .decide_approval_step(step(
            "p-1",
            &answer.referral_id,
            0,
            pb::ApprovalVerdict::Approve,
            "ship what fits the limit now",
            vec![
                pb::ReleaseCondition {
                    condition_type: pb::ReleaseConditionType::PartialQuantity as i32,
                    amount: cny("60000.00"),
                    ..Default::default()
                },
                pb::ReleaseCondition {
                    condition_type: pb::ReleaseConditionType::ShorterHold as i32,
                    hold_ttl: Some(prost_types::Duration {
                        seconds: 86_400,
                        nanos: 0,
                    }),
                    ..Default::default()
                },
            ],
        ))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(
        task.chain.unwrap().status(),
        pb::ApprovalChainStatus::Approved
    );
    let released = referral(&mut reader, &customer_id, &answer.referral_id).await;
    assert_eq!(released.status(), pb::ReferralStatus::Released);
    let hold = reader
        .get_hold(pb::GetHoldRequest {
            hold_id: released.hold_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    assert_eq!(hold.amount, cny("60000.00"));
    let lifetime = hold.expires_at.unwrap().seconds - hold.created_at.unwrap().seconds;
    assert_eq!(lifetime, 86_400);
}

pub async fn a_referral_is_released_by_the_system_once_a_payment_clears_it(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 72_004, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "10000.00",
        "clr-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    // An invoice without a hold takes the exposure to 9,000.
    suite
        .publish(
            COLLECTIONS,
            Payload::InvoicePosted(pb::InvoicePosted {
                invoice_id: "clr-inv".into(),
                customer_id: customer_id.clone(),
                invoice_number: "INV-CLR".into(),
                amount: cny("9000.00"),
                open_amount: cny("9000.00"),
                ..Default::default()
            }),
        )
        .await;
    let mut answer = None;
    for attempt in 0..credit_e2e_tests::POLLS {
        let tried = authorize(
            &mut orders,
            &customer_id,
            &format!("clr-{attempt}"),
            "1500.00",
        )
        .await
        .unwrap();
        if tried.decision() == pb::AuthorizationDecision::Referred {
            answer = Some(tried);
            break;
        }
        // Approved before the invoice was counted: give it back and try again.
        orders
            .release(pb::ReleaseRequest {
                hold_id: tried.hold_id,
                reason: "retry after the invoice".into(),
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let answer = answer.expect("the order was referred once the invoice counted");
    assert_eq!(codes(&answer.reasons), ["LIMIT_EXCEEDED"]);

    // A payment of 5,000 lowers the exposure to 4,000: the order now fits.
    suite
        .publish(
            COLLECTIONS,
            Payload::PaymentReceived(pb::PaymentReceived {
                payment_id: "clr-pay".into(),
                customer_id: customer_id.clone(),
                amount: cny("5000.00"),
                allocations: vec![pb::PaymentAllocationApplied {
                    invoice_id: "clr-inv".into(),
                    amount: cny("5000.00"),
                    invoice_open_amount: cny("4000.00"),
                    discount: None,
                }],
                ..Default::default()
            }),
        )
        .await;
    let mut reader = suite.limits(&suite.admin_token);
    let mut released = None;
    for _ in 0..credit_e2e_tests::POLLS {
        let found = referral(&mut reader, &customer_id, &answer.referral_id).await;
        if found.status() == pb::ReferralStatus::Released {
            released = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let released = released.expect("the cleared referral was released");
    assert_eq!(released.decided_by.unwrap().principal, "system:limits");
    assert!(released.decision_reason.contains("a payment arrived"));
    let exposure = reader
        .get_exposure(pb::GetExposureRequest {
            scope: scope_of_customer(&customer_id),
        })
        .await
        .unwrap()
        .into_inner()
        .exposure
        .unwrap();
    assert_eq!(exposure.open_holds, cny("1500.00"));
    assert_eq!(exposure.open_receivables, cny("4000.00"));
}
