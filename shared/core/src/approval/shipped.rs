//! The approval matrix the suite ships: the chains of the credit documents, with the
//! delegated authority (分级负责) that lets a credit manager decide the everyday cases alone.
//!
//! - Limits (授信管理制度 3.5): the business unit applies → finance sizes the limit and
//!   assesses the risk → risk management reviews → the general manager approves → the board is
//!   informed (备案); finance's and risk management's steps, undecided after 48 hours, are
//!   escalated to the credit department (a credit manager may decide them too). That chain decides a limit above 5,000,000 or one beyond the maximum
//!   limit of the customer's grade; a credit manager decides the rest within authority.
//! - Orders beyond the credit terms (step 7.2): finance verifies the figures (amount owed,
//!   overdue amount, overdue days) → the general manager decides whether to keep trading,
//!   when the order overshoots the limit by more than 100,000 or the customer is more than 30
//!   days overdue; a credit manager releases the rest within authority.
//! - Grades (信用管理小组…报总经理审批): the general manager approves a grade where the
//!   credit policy asks for rating approval.
//! - Write-offs: a credit manager within authority; above 1,000,000 finance verifies, the
//!   general manager approves and the board is informed.
//! - Reviews after a grade change (upgrade or downgrade): a credit manager.
//! - Overrides: a credit manager; a move of more than two notches, the general manager.
//! - Terms changes: a credit manager. Policy changes (the credit policy, this
//!   matrix, scorecards, dunning policies): the general manager or a credit manager, the board
//!   informed.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use super::{ApprovalMatrix, ChainRule, Conditions, DecisionKind, StepRule};
use crate::identity::Role;
use crate::money::Currency;

/// The shipped matrix, its amounts in `currency` (the suite's base currency).
pub fn shipped_matrix(currency: Currency) -> ApprovalMatrix {
    let amount = |units: i64| Some(Decimal::new(units, 0));
    let documents_limit_chain = || {
        vec![
            escalating(step(
                "finance sizes the limit and assesses the risk",
                &[Role::Finance],
                false,
            )),
            escalating(step("risk management reviews", &[Role::Risk], false)),
            step(
                "the general manager approves",
                &[Role::GeneralManager],
                true,
            ),
            inform("the board is informed (备案)", &[Role::Board]),
        ]
    };
    let step_7_2 = || {
        vec![
            step(
                "finance verifies the amount owed, the overdue amount and days",
                &[Role::Finance],
                false,
            ),
            step(
                "the general manager decides whether to keep trading",
                &[Role::GeneralManager],
                true,
            ),
        ]
    };
    let manager = |name: &str| {
        vec![step(
            name,
            &[Role::CreditManager, Role::GeneralManager],
            true,
        )]
    };
    let rules = vec![
        rule(
            "limit-beyond-grade-max",
            DecisionKind::LimitRequest,
            "a limit beyond the maximum of the customer's grade goes the documents' whole way",
            Conditions {
                exceeds_grade_max_limit: Some(true),
                ..Conditions::default()
            },
            documents_limit_chain(),
        ),
        rule(
            "limit-large",
            DecisionKind::LimitRequest,
            "a limit above 5,000,000 goes the documents' whole way (授信额度审批流程)",
            Conditions {
                amount_above: amount(5_000_000),
                ..Conditions::default()
            },
            documents_limit_chain(),
        ),
        rule(
            "limit-delegated",
            DecisionKind::LimitRequest,
            "any other limit: a credit manager within authority",
            Conditions::default(),
            manager("a credit manager approves within authority"),
        ),
        rule(
            "referral-large-overshoot",
            DecisionKind::OrderReferral,
            "an order more than 100,000 past the limit: step 7.2",
            Conditions {
                overshoot_above: amount(100_000),
                ..Conditions::default()
            },
            step_7_2(),
        ),
        rule(
            "referral-long-overdue",
            DecisionKind::OrderReferral,
            "a customer more than 30 days overdue: step 7.2",
            Conditions {
                oldest_overdue_days_above: Some(30),
                ..Conditions::default()
            },
            step_7_2(),
        ),
        rule(
            "referral-delegated",
            DecisionKind::OrderReferral,
            "any other referred order: a credit manager within authority",
            Conditions::default(),
            manager("a credit manager releases or rejects within authority"),
        ),
        rule(
            "write-off-large",
            DecisionKind::WriteOff,
            "a write-off above 1,000,000: finance, the general manager, the board informed",
            Conditions {
                amount_above: amount(1_000_000),
                ..Conditions::default()
            },
            vec![
                step("finance verifies the loss", &[Role::Finance], false),
                step(
                    "the general manager approves",
                    &[Role::GeneralManager],
                    true,
                ),
                inform("the board is informed (备案)", &[Role::Board]),
            ],
        ),
        rule(
            "write-off-delegated",
            DecisionKind::WriteOff,
            "any other write-off: a credit manager within authority",
            Conditions::default(),
            manager("a credit manager approves within authority"),
        ),
        rule(
            "rating-approval",
            DecisionKind::RatingApproval,
            "a new grade: the general manager approves (报总经理审批)",
            Conditions::default(),
            vec![step(
                "the general manager approves the grade",
                &[Role::GeneralManager],
                false,
            )],
        ),
        rule(
            "rating-override-large",
            DecisionKind::RatingOverride,
            "an override moving the grade by more than two notches: the general manager",
            Conditions {
                grade_notches_above: Some(2),
                ..Conditions::default()
            },
            vec![step(
                "the general manager approves the override",
                &[Role::GeneralManager],
                false,
            )],
        ),
        rule(
            "rating-override",
            DecisionKind::RatingOverride,
            "an override of a computed grade: a credit manager",
            Conditions::default(),
            vec![step(
                "a credit manager approves the override",
                &[Role::CreditManager, Role::GeneralManager],
                false,
            )],
        ),
        rule(
            "terms-change",
            DecisionKind::TermsChange,
            "customer-specific credit terms: a credit manager",
            Conditions::default(),
            vec![step(
                "a credit manager approves the terms",
                &[Role::CreditManager, Role::GeneralManager],
                false,
            )],
        ),
        rule(
            "policy-change",
            DecisionKind::PolicyChange,
            "a change of policy (credit policy, approval matrix, models, dunning): a second person, the board informed",
            Conditions::default(),
            vec![
                step(
                    "the general manager or a credit manager approves the change",
                    &[Role::GeneralManager, Role::CreditManager],
                    false,
                ),
                inform("the board is informed (备案)", &[Role::Board]),
            ],
        ),
        rule(
            "review-after-grade-change",
            DecisionKind::CreditReview,
            "a customer's grade changed: a credit manager reviews its limit, terms and monitoring",
            Conditions::default(),
            vec![step(
                "a credit manager reviews the limit, the terms and the monitoring",
                &[Role::CreditManager],
                false,
            )],
        ),
        rule(
            "security-change",
            DecisionKind::SecurityChange,
            "a security registered, released or valued higher: a second person checks the documents",
            Conditions::default(),
            vec![step(
                "a credit manager or finance checks the security against its documents",
                &[Role::CreditManager, Role::Finance],
                false,
            )],
        ),
    ];
    ApprovalMatrix { currency, rules }
}

fn rule(
    rule_id: &str,
    kind: DecisionKind,
    description: &str,
    conditions: Conditions,
    steps: Vec<StepRule>,
) -> ChainRule {
    ChainRule {
        rule_id: rule_id.to_owned(),
        kind,
        description: description.to_owned(),
        conditions,
        steps,
    }
}

fn step(name: &str, roles: &[Role], needs_authority: bool) -> StepRule {
    StepRule {
        name: name.to_owned(),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        needs_authority,
        inform_only: false,
        escalate_after_seconds: None,
        escalate_to: BTreeSet::new(),
    }
}

fn inform(name: &str, roles: &[Role]) -> StepRule {
    StepRule {
        inform_only: true,
        ..step(name, roles, false)
    }
}

/// A step of the limit chain that waits two working days at most: then the credit
/// department, which runs the process (统一管理), may decide it too.
fn escalating(step: StepRule) -> StepRule {
    StepRule {
        escalate_after_seconds: Some(48 * 3600),
        escalate_to: BTreeSet::from([Role::CreditManager]),
        ..step
    }
}
