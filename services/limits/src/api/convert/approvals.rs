//! Approval chains, the approval matrix and people's queues between the contract and the
//! domain (`credit_core::approval`).

use chrono::{DateTime, Utc};
use credit_core::approval::{ApprovalMatrix, Chain, ChainRule, Conditions, DecisionKind, Verdict};
use credit_core::governance::{Governed, VersionStatus};
use credit_core::{Currency, Money, ServiceError, Violations};
use credit_proto::v1 as pb;
use rust_decimal::Decimal;

pub use credit_runtime::approval_wire::chain_to_proto;
use credit_runtime::approval_wire::{
    chain_status_to_proto, decision_kind, decision_kind_to_proto, index_to_proto, role_to_proto,
    step_rules_from_proto, step_rules_to_proto, trail_action_to_proto,
};

use super::{timestamp, to_timestamp};
use crate::app::{ChainChoice, ChosenChain, StepAction, Task, VersionView};

/// A verdict on a step as DecideApprovalStep states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDecision {
    pub kind: DecisionKind,
    pub record_id: String,
    pub step_index: usize,
    pub action: StepAction,
    pub note: String,
}

pub fn parse_step_decision(
    wire: &pb::DecideApprovalStepRequest,
) -> Result<StepDecision, ServiceError> {
    let mut violations = Violations::new();
    let kind = decision_kind(wire.decision_kind);
    if kind.is_none() {
        violations.add("decision_kind", "is required");
    }
    let record_id = wire.record_id.trim().to_owned();
    if record_id.is_empty() {
        violations.add("record_id", "is required");
    }
    let step_index = usize::try_from(wire.step_index).ok();
    if step_index.is_none() {
        violations.add("step_index", "is not negative");
    }
    let action = match pb::ApprovalVerdict::try_from(wire.verdict) {
        Ok(pb::ApprovalVerdict::Approve) => Some(StepAction::Decide(Verdict::Approve)),
        Ok(pb::ApprovalVerdict::Reject) => Some(StepAction::Decide(Verdict::Reject)),
        Ok(pb::ApprovalVerdict::Return) => Some(StepAction::Decide(Verdict::Return)),
        Ok(pb::ApprovalVerdict::Resubmit) => Some(StepAction::Resubmit),
        _ => {
            violations.add(
                "verdict",
                "is required: APPROVE, REJECT, RETURN or RESUBMIT",
            );
            None
        }
    };
    let note = wire.note.trim().to_owned();
    let needs_note = matches!(
        action,
        Some(StepAction::Decide(Verdict::Reject | Verdict::Return))
    );
    if needs_note && note.is_empty() {
        violations.add("note", "is required to reject or return a request");
    }
    if note.chars().count() > 2000 {
        violations.add("note", "is at most 2000 characters");
    }
    violations.finish()?;
    match (kind, step_index, action) {
        (Some(kind), Some(step_index), Some(action)) => Ok(StepDecision {
            kind,
            record_id,
            step_index,
            action,
            note,
        }),
        _ => Err(ServiceError::internal("a checked decision lost a field")),
    }
}

/// The kind filter of ListApprovalTasks: none for UNSPECIFIED.
pub fn decision_kind_filter(wire: i32) -> Result<Option<DecisionKind>, ServiceError> {
    match pb::DecisionKind::try_from(wire) {
        Ok(pb::DecisionKind::Unspecified) => Ok(None),
        Ok(_) => Ok(decision_kind(wire)),
        Err(_) => Err(ServiceError::invalid(
            "decision_kind",
            "is not a decision kind",
        )),
    }
}

/// ChooseApprovalChain read: the kind, and the amount when given.
pub fn parse_chain_choice(
    wire: &pb::ChooseApprovalChainRequest,
) -> Result<ChainChoice, ServiceError> {
    let mut violations = Violations::new();
    let kind = decision_kind(wire.decision_kind);
    if kind.is_none() {
        violations.add("decision_kind", "is required");
    }
    let amount = match &wire.amount {
        None => None,
        Some(amount) => violations.check("amount", Money::try_from(amount)),
    };
    if amount.is_some_and(|amount| amount.amount() < Decimal::ZERO) {
        violations.add("amount", "is not negative");
    }
    let grade_notches = violations.check(
        "grade_notches",
        u32::try_from(wire.grade_notches).map_err(|_| "is not negative"),
    );
    violations.finish()?;
    let kind = kind.ok_or_else(|| ServiceError::invalid("decision_kind", "is required"))?;
    Ok(ChainChoice {
        kind,
        amount,
        customer_id: wire.customer_id.trim().to_owned(),
        grade_notches: grade_notches.filter(|notches| *notches > 0),
    })
}

pub fn chosen_chain_to_proto(chosen: &ChosenChain) -> pb::ChooseApprovalChainResponse {
    pb::ChooseApprovalChainResponse {
        matrix_version: chosen.matrix_version,
        rule_id: chosen.rule.rule_id.clone(),
        description: chosen.rule.description.clone(),
        steps: step_rules_to_proto(&chosen.rule.steps),
        authority_amount: chosen.authority_amount.map(Into::into),
        approval_required: !chosen.rule.steps.is_empty(),
    }
}

/// The ApprovalStepDecided of the verdict `chain` recorded last, for the outbox of the
/// transaction that stores it; `None` for a chain without verdicts.
pub fn step_decided_event(
    chain: &Chain,
    record_id: &str,
    customer_id: &str,
    request_id: &str,
) -> Option<pb::Event> {
    use credit_proto::service_names::LIMITS;
    use credit_proto::v1::event::Payload;
    let last = chain.trail.last()?;
    let step_name = chain
        .steps
        .get(last.step_index)
        .map(|step| step.rule.name.clone())
        .unwrap_or_default();
    Some(pb::Event {
        aggregate_id: record_id.to_owned(),
        customer_id: customer_id.to_owned(),
        actor: Some(pb::Actor::from(&last.actor)),
        request_id: request_id.to_owned(),
        ..credit_runtime::events::new_event(
            LIMITS,
            Payload::ApprovalStepDecided(pb::ApprovalStepDecided {
                decision_kind: decision_kind_to_proto(chain.kind),
                record_id: record_id.to_owned(),
                step_index: index_to_proto(last.step_index),
                step_name,
                verdict: trail_action_to_proto(last.action) as i32,
                decided_by: last.actor.name.clone(),
                note: last.note.clone(),
                chain_status: chain_status_to_proto(chain.status) as i32,
                waiting_roles: chain
                    .waiting_roles()
                    .into_iter()
                    .map(role_to_proto)
                    .collect(),
            }),
        )
    })
}

pub fn task_to_proto(task: &Task) -> pb::ApprovalTask {
    pb::ApprovalTask {
        decision_kind: decision_kind_to_proto(task.kind),
        record_id: task.record_id.clone(),
        summary: task.summary.clone(),
        amount: task.amount.map(Into::into),
        chain: Some(chain_to_proto(&task.chain)),
        requested_at: Some(to_timestamp(task.requested_at)),
        waiting_since: Some(to_timestamp(task.waiting_since)),
    }
}

fn money_in(amount: Option<Decimal>, currency: Currency) -> Option<pb::Money> {
    amount.map(|amount| Money::new(amount, currency).into())
}

pub fn matrix_to_proto(view: &VersionView<ApprovalMatrix>) -> pb::ApprovalMatrix {
    let currency = view.document.currency;
    pb::ApprovalMatrix {
        version: view.version,
        currency: currency.code().to_owned(),
        rules: view
            .document
            .rules
            .iter()
            .map(|rule| pb::ApprovalChainRule {
                rule_id: rule.rule_id.clone(),
                decision_kind: decision_kind_to_proto(rule.kind),
                description: rule.description.clone(),
                conditions: Some(pb::ApprovalConditions {
                    amount_above: money_in(rule.conditions.amount_above, currency),
                    overshoot_above: money_in(rule.conditions.overshoot_above, currency),
                    change_percent_above: rule
                        .conditions
                        .change_percent_above
                        .map(|percent| percent.to_string()),
                    grades: rule.conditions.grades.clone(),
                    oldest_overdue_days_above: rule.conditions.oldest_overdue_days_above,
                    exceeds_grade_max_limit: rule.conditions.exceeds_grade_max_limit,
                    grade_notches_above: rule
                        .conditions
                        .grade_notches_above
                        .map(|notches| i32::try_from(notches).unwrap_or(i32::MAX)),
                }),
                steps: step_rules_to_proto(&rule.steps),
            })
            .collect(),
        status: version_status_to_proto(view) as i32,
        reason: view
            .stored
            .as_ref()
            .map(|stored| stored.reason.clone())
            .unwrap_or_else(|| "the matrix the suite ships".to_owned()),
        effective_from: effective_from_to_proto(view),
        chain: view
            .stored
            .as_ref()
            .map(|stored| chain_to_proto(&stored.chain)),
        changes: view.changes().iter().map(change_to_proto).collect(),
        proposed_at: view
            .stored
            .as_ref()
            .map(|stored| to_timestamp(stored.proposed_at)),
    }
}

/// Where a version of a governed document stands; an ungoverned one is in force as it is.
pub fn version_status_to_proto<T: Governed>(view: &VersionView<T>) -> pb::PolicyVersionStatus {
    credit_runtime::approval_wire::version_status_to_proto(
        view.stored
            .as_ref()
            .map_or(VersionStatus::Published, |stored| stored.status()),
    )
}

/// From when a published version is in force.
pub fn effective_from_to_proto<T: Governed>(
    view: &VersionView<T>,
) -> Option<prost_types::Timestamp> {
    view.stored
        .as_ref()
        .filter(|stored| stored.status() == VersionStatus::Published)
        .map(|stored| to_timestamp(stored.effective_from))
}

pub use credit_runtime::approval_wire::change_to_proto;

/// A proposed matrix, read and checked: every problem named by its field path; the rules of
/// the matrix are then checked as a whole (`ApprovalMatrix::check`).
pub fn parse_matrix_proposal(
    wire: &pb::ProposeApprovalMatrixRequest,
) -> Result<(ApprovalMatrix, String, Option<DateTime<Utc>>), ServiceError> {
    let mut violations = Violations::new();
    let reason = wire.reason.trim().to_owned();
    if reason.is_empty() {
        violations.add("reason", "is required");
    }
    let effective_from = match &wire.effective_from {
        Some(time) => violations.check("effective_from", timestamp(time)),
        None => None,
    };
    let Some(matrix) = &wire.matrix else {
        violations.add("matrix", "is required");
        violations.finish()?;
        return Err(ServiceError::invalid("matrix", "is required"));
    };
    let currency = violations.check("matrix.currency", Currency::parse(&matrix.currency));
    let mut rules = Vec::with_capacity(matrix.rules.len());
    for (index, rule) in matrix.rules.iter().enumerate() {
        let field = |name: &str| format!("matrix.rules[{index}].{name}");
        let kind = decision_kind(rule.decision_kind);
        if kind.is_none() {
            violations.add(field("decision_kind"), "is required");
        }
        let conditions = rule.conditions.clone().unwrap_or_default();
        let mut amount = |name: &str, wire: &Option<pb::Money>| -> Option<Decimal> {
            let wire = wire.as_ref()?;
            let parsed =
                violations.check(&field(&format!("conditions.{name}")), Money::try_from(wire))?;
            if currency.is_some_and(|currency| parsed.currency() != currency) {
                violations.add(
                    field(&format!("conditions.{name}.currency")),
                    "is the matrix's currency",
                );
            }
            Some(parsed.amount().normalize())
        };
        let amount_above = amount("amount_above", &conditions.amount_above);
        let overshoot_above = amount("overshoot_above", &conditions.overshoot_above);
        let change_percent_above = match &conditions.change_percent_above {
            Some(text) => violations.check(
                &field("conditions.change_percent_above"),
                text.trim()
                    .parse::<Decimal>()
                    .map(|percent| percent.normalize()),
            ),
            None => None,
        };
        let grade_notches_above = match conditions.grade_notches_above {
            Some(notches) => violations.check(
                &field("conditions.grade_notches_above"),
                u32::try_from(notches).map_err(|_| "is not negative"),
            ),
            None => None,
        };
        let steps = step_rules_from_proto(&rule.steps, &field("steps"), &mut violations);
        if let Some(kind) = kind {
            rules.push(ChainRule {
                rule_id: rule.rule_id.trim().to_owned(),
                kind,
                description: rule.description.trim().to_owned(),
                conditions: Conditions {
                    amount_above,
                    overshoot_above,
                    change_percent_above,
                    grades: conditions
                        .grades
                        .iter()
                        .map(|grade| grade.trim().to_owned())
                        .collect(),
                    oldest_overdue_days_above: conditions.oldest_overdue_days_above,
                    exceeds_grade_max_limit: conditions.exceeds_grade_max_limit,
                    grade_notches_above,
                },
                steps,
            });
        }
    }
    violations.finish()?;
    let currency =
        currency.ok_or_else(|| ServiceError::invalid("matrix.currency", "is required"))?;
    Ok((ApprovalMatrix { currency, rules }, reason, effective_from))
}
