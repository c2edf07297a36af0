//! Approval chains between the contract (`credit.v1` approvals) and `credit_core::approval`,
//! for every service that walks a chain: limits (its own decisions, the matrix), collections
//! (write-offs) and rating (overrides, new grades). The latter two ask limits, which keeps the
//! matrix, for their chains ([`ask_for_chain`]).

use std::collections::BTreeSet;

use credit_core::approval::{
    Chain, ChainRule, ChainStatus, Conditions, DecisionKind, Step, StepRule, StepStatus,
    TrailAction,
};
use credit_core::governance::{Change, VersionStatus};
use credit_core::{Actor, Money, Role, ServiceError, Violations};
use credit_proto::v1 as pb;
use credit_proto::v1::approval_service_client::ApprovalServiceClient;

use crate::peers::PeerChannel;

/// The chain a change of a policy document owned by another service than limits walks (a
/// scorecard model, a dunning policy; 制度修订): limits' POLICY_CHANGE chain, or without a
/// limits service, a second administrator.
pub async fn policy_change_chain(
    limits: Option<&ApprovalServiceClient<PeerChannel>>,
    maker: Actor,
    what: &str,
) -> Result<Chain, ServiceError> {
    if let Some(limits) = limits {
        let request = pb::ChooseApprovalChainRequest {
            decision_kind: decision_kind_to_proto(DecisionKind::PolicyChange),
            ..Default::default()
        };
        if let Some(chain) = ask_for_chain(limits, request, maker.clone(), what).await? {
            return Ok(chain);
        }
    }
    let rule = ChainRule {
        rule_id: String::new(),
        kind: DecisionKind::PolicyChange,
        description: "without a limits service: a second administrator approves".into(),
        conditions: Conditions::default(),
        steps: vec![StepRule {
            name: "a second administrator approves the change".into(),
            roles: BTreeSet::from([Role::Admin]),
            needs_authority: false,
            inform_only: false,
            escalate_after_seconds: None,
            escalate_to: BTreeSet::new(),
        }],
    };
    Ok(Chain::start(&rule, 0, maker, None))
}

/// Asks limits for the chain a decision of `request.decision_kind` walks, started for its
/// `maker`; `None` when nobody needs to approve it (a new grade while the credit policy does
/// not ask for approval). `what` names the decision in errors ("the write-off"). A matrix
/// that cannot compare the figures (no FX rate) is FAILED_PRECONDITION
/// (APPROVAL_CHAIN_UNAVAILABLE); limits not answering is UNAVAILABLE.
pub async fn ask_for_chain(
    limits: &ApprovalServiceClient<PeerChannel>,
    request: pb::ChooseApprovalChainRequest,
    maker: Actor,
    what: &str,
) -> Result<Option<Chain>, ServiceError> {
    let kind = decision_kind(request.decision_kind)
        .ok_or_else(|| ServiceError::internal("asked limits for a chain of no kind"))?;
    let chosen = limits
        .clone()
        .choose_approval_chain(request)
        .await
        .map_err(|status| match status.code() {
            tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument => {
                ServiceError::failed_precondition(
                    "APPROVAL_CHAIN_UNAVAILABLE",
                    format!(
                        "limits could not choose {what}'s approval chain: {}",
                        status.message()
                    ),
                )
            }
            code => {
                tracing::warn!(
                    ?code,
                    decision_kind = kind.as_str(),
                    "limits did not answer for an approval chain"
                );
                ServiceError::unavailable("limits did not answer for an approval chain", status)
            }
        })?
        .into_inner();
    if !chosen.approval_required {
        return Ok(None);
    }
    let mut violations = Violations::new();
    let steps = step_rules_from_proto(&chosen.steps, "steps", &mut violations);
    let authority_amount = match &chosen.authority_amount {
        Some(wire) => violations.check("authority_amount", Money::try_from(wire)),
        None => None,
    };
    if !violations.is_empty() || steps.is_empty() {
        return Err(ServiceError::internal(format!(
            "limits answered a chain for {what} this service cannot read"
        )));
    }
    let rule = ChainRule {
        rule_id: chosen.rule_id,
        kind,
        description: chosen.description,
        conditions: Conditions::default(),
        steps,
    };
    Ok(Some(Chain::start(
        &rule,
        chosen.matrix_version,
        maker,
        authority_amount,
    )))
}

/// A field of a proposal's diff as the contract carries it.
pub fn change_to_proto(change: &Change) -> pb::PolicyChange {
    pb::PolicyChange {
        path: change.path.clone(),
        before: change.before.clone(),
        after: change.after.clone(),
    }
}

pub fn version_status_to_proto(status: VersionStatus) -> pb::PolicyVersionStatus {
    match status {
        VersionStatus::Proposed => pb::PolicyVersionStatus::Proposed,
        VersionStatus::Published => pb::PolicyVersionStatus::Published,
        VersionStatus::Rejected => pb::PolicyVersionStatus::Rejected,
    }
}

/// A listing's status filter: unspecified is any status; INVALID_ARGUMENT at `status` for a
/// value the contract does not have.
pub fn version_status_filter(wire: i32) -> Result<Option<VersionStatus>, ServiceError> {
    match pb::PolicyVersionStatus::try_from(wire) {
        Ok(pb::PolicyVersionStatus::Unspecified) => Ok(None),
        Ok(pb::PolicyVersionStatus::Proposed) => Ok(Some(VersionStatus::Proposed)),
        Ok(pb::PolicyVersionStatus::Published) => Ok(Some(VersionStatus::Published)),
        Ok(pb::PolicyVersionStatus::Rejected) => Ok(Some(VersionStatus::Rejected)),
        Err(_) => Err(ServiceError::invalid("status", "is a PolicyVersionStatus")),
    }
}

pub fn decision_kind(wire: i32) -> Option<DecisionKind> {
    let name = pb::DecisionKind::try_from(wire).ok()?.as_str_name();
    DecisionKind::parse(name.strip_prefix("DECISION_KIND_")?)
}

pub fn decision_kind_to_proto(kind: DecisionKind) -> i32 {
    pb::DecisionKind::from_str_name(&format!("DECISION_KIND_{}", kind.as_str()))
        .map_or(0, |kind| kind as i32)
}

pub fn role_to_proto(role: Role) -> i32 {
    pb::Role::from_str_name(&format!("ROLE_{}", role.as_str())).map_or(0, |role| role as i32)
}

pub fn role_from_proto(wire: i32) -> Option<Role> {
    let name = pb::Role::try_from(wire).ok()?.as_str_name();
    name.strip_prefix("ROLE_")?.parse().ok()
}

pub fn chain_status_to_proto(status: ChainStatus) -> pb::ApprovalChainStatus {
    match status {
        ChainStatus::Pending => pb::ApprovalChainStatus::Pending,
        ChainStatus::Returned => pb::ApprovalChainStatus::Returned,
        ChainStatus::Approved => pb::ApprovalChainStatus::Approved,
        ChainStatus::Rejected => pb::ApprovalChainStatus::Rejected,
    }
}

pub fn step_status_to_proto(status: StepStatus) -> pb::ApprovalStepStatus {
    match status {
        StepStatus::Waiting => pb::ApprovalStepStatus::Waiting,
        StepStatus::Current => pb::ApprovalStepStatus::Current,
        StepStatus::Returned => pb::ApprovalStepStatus::Returned,
        StepStatus::Approved => pb::ApprovalStepStatus::Approved,
        StepStatus::Rejected => pb::ApprovalStepStatus::Rejected,
        StepStatus::Informed => pb::ApprovalStepStatus::Informed,
        StepStatus::Skipped => pb::ApprovalStepStatus::Skipped,
    }
}

pub fn trail_action_to_proto(action: TrailAction) -> pb::ApprovalVerdict {
    match action {
        TrailAction::Approve => pb::ApprovalVerdict::Approve,
        TrailAction::Reject => pb::ApprovalVerdict::Reject,
        TrailAction::Return => pb::ApprovalVerdict::Return,
        TrailAction::Resubmit => pb::ApprovalVerdict::Resubmit,
        TrailAction::Escalate => pb::ApprovalVerdict::Escalate,
        TrailAction::Withdraw => pb::ApprovalVerdict::Withdraw,
    }
}

pub fn index_to_proto(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

pub fn step_to_proto(index: usize, step: &Step) -> pb::ApprovalStep {
    pb::ApprovalStep {
        step_index: index_to_proto(index),
        name: step.rule.name.clone(),
        roles: step
            .rule
            .roles
            .iter()
            .map(|role| role_to_proto(*role))
            .collect(),
        needs_authority: step.rule.needs_authority,
        inform_only: step.rule.inform_only,
        status: step_status_to_proto(step.status) as i32,
        decided_by: step.decided_by.as_ref().map(pb::Actor::from),
        decided_at: step.decided_at.map(credit_proto::time::timestamp),
        note: step.note.clone(),
        escalate_after: step.rule.escalate_after_seconds.map(duration_to_proto),
        escalate_to: roles_to_proto(&step.rule.escalate_to),
        escalated_at: step.escalated_at.map(credit_proto::time::timestamp),
    }
}

pub fn duration_to_proto(seconds: u32) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::from(seconds),
        nanos: 0,
    }
}

pub fn roles_to_proto(roles: &BTreeSet<Role>) -> Vec<i32> {
    roles.iter().map(|role| role_to_proto(*role)).collect()
}

pub fn chain_to_proto(chain: &Chain) -> pb::ApprovalChain {
    let current_step_index = match chain.status {
        ChainStatus::Pending | ChainStatus::Returned => chain.current_step().map(index_to_proto),
        _ => None,
    };
    pb::ApprovalChain {
        decision_kind: decision_kind_to_proto(chain.kind),
        matrix_version: chain.matrix_version,
        rule_id: chain.rule_id.clone(),
        status: chain_status_to_proto(chain.status) as i32,
        steps: chain
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| step_to_proto(index, step))
            .collect(),
        trail: chain
            .trail
            .iter()
            .map(|entry| pb::ApprovalTrailEntry {
                step_index: index_to_proto(entry.step_index),
                verdict: trail_action_to_proto(entry.action) as i32,
                actor: Some(pb::Actor::from(&entry.actor)),
                at: Some(credit_proto::time::timestamp(entry.at)),
                note: entry.note.clone(),
            })
            .collect(),
        maker: Some(pb::Actor::from(&chain.maker)),
        authority_amount: chain.authority_amount.map(Into::into),
        current_step_index,
    }
}

/// The steps of a rule as the contract carries them.
pub fn step_rules_to_proto(steps: &[StepRule]) -> Vec<pb::ApprovalStepRule> {
    steps
        .iter()
        .map(|step| pb::ApprovalStepRule {
            name: step.name.clone(),
            roles: roles_to_proto(&step.roles),
            needs_authority: step.needs_authority,
            inform_only: step.inform_only,
            escalate_after: step.escalate_after_seconds.map(duration_to_proto),
            escalate_to: roles_to_proto(&step.escalate_to),
        })
        .collect()
}

/// The steps of a rule read from the contract; each problem is added to `violations` at
/// `{field}[i].{name}` (the rule's checks as a whole are `ApprovalMatrix::check`).
pub fn step_rules_from_proto(
    wire: &[pb::ApprovalStepRule],
    field: &str,
    violations: &mut Violations,
) -> Vec<StepRule> {
    let mut steps = Vec::with_capacity(wire.len());
    for (step_index, step) in wire.iter().enumerate() {
        let step_field = |name: &str| format!("{field}[{step_index}].{name}");
        let mut parse_roles = |wire_roles: &[i32], name: &str| {
            let mut roles = BTreeSet::new();
            for wire_role in wire_roles {
                match role_from_proto(*wire_role) {
                    Some(role) => {
                        roles.insert(role);
                    }
                    None => violations.add(step_field(name), "names a role of the contract"),
                }
            }
            roles
        };
        let roles = parse_roles(&step.roles, "roles");
        let escalate_to = parse_roles(&step.escalate_to, "escalate_to");
        let escalate_after_seconds = match &step.escalate_after {
            None => None,
            Some(after) if after.nanos != 0 || after.seconds < 0 => {
                violations.add(
                    step_field("escalate_after"),
                    "is a whole, non-negative number of seconds",
                );
                None
            }
            Some(after) => match u32::try_from(after.seconds) {
                Ok(seconds) => Some(seconds),
                Err(_) => {
                    violations.add(step_field("escalate_after"), "is at most 136 years");
                    None
                }
            },
        };
        steps.push(StepRule {
            name: step.name.trim().to_owned(),
            roles,
            needs_authority: step.needs_authority,
            inform_only: step.inform_only,
            escalate_after_seconds,
            escalate_to,
        });
    }
    steps
}
