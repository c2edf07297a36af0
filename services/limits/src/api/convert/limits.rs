//! Limits, limit requests, the change log and credit blocks on the wire: scopes read from
//! and shown as `LimitScope`, RequestLimitChange and DecideLimitRequest checked into domain
//! values, granted limits shown with the status they have at an instant.

use chrono::{DateTime, Utc};
use credit_core::{Money, ServiceError, Violations};
use credit_proto::service_names::LIMITS;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;
use rust_decimal::Decimal;

use crate::domain::limits::{
    Actor, CreditBlock, CreditLimit, DecisionRefused, HistoryEntry, LimitDecision, LimitRequest,
    LimitStatus, NewLimitRequest, RequestStatus, Scope,
};

use super::{timestamp, to_timestamp};

/// A scope named by `field`: a customer, a group (ids trimmed, at most 100 bytes) or the
/// portfolio.
pub fn parse_scope(wire: Option<&pb::LimitScope>, field: &str) -> Result<Scope, ServiceError> {
    use pb::limit_scope::Scope as Wire;
    match wire.and_then(|scope| scope.scope.as_ref()) {
        Some(Wire::CustomerId(id)) if !id.trim().is_empty() && id.len() <= 100 => {
            Ok(Scope::Customer(id.trim().to_owned()))
        }
        Some(Wire::GroupId(id)) if !id.trim().is_empty() && id.len() <= 100 => {
            Ok(Scope::Group(id.trim().to_owned()))
        }
        Some(Wire::Portfolio(_)) => Ok(Scope::Portfolio),
        _ => Err(ServiceError::invalid(
            field,
            "a customer_id, a group_id or the portfolio is required",
        )),
    }
}

pub fn scope_to_proto(scope: &Scope) -> pb::LimitScope {
    use pb::limit_scope::Scope as Wire;
    pb::LimitScope {
        scope: Some(match scope {
            Scope::Customer(id) => Wire::CustomerId(id.clone()),
            Scope::Group(id) => Wire::GroupId(id.clone()),
            Scope::Portfolio => Wire::Portfolio(pb::Portfolio {}),
        }),
    }
}

/// The checked content of a `RequestLimitChange`; every problem is reported at once.
pub fn parse_limit_request(
    wire: &pb::RequestLimitChangeRequest,
    now: DateTime<Utc>,
) -> Result<NewLimitRequest, ServiceError> {
    let mut violations = Violations::new();
    let scope = violations.check(
        "scope",
        parse_scope(wire.scope.as_ref(), "scope")
            .map_err(|_| "a customer_id, a group_id or the portfolio is required"),
    );
    let amount = match wire.amount.as_ref() {
        None => {
            violations.add("amount", "is required");
            None
        }
        Some(amount) => violations.check(
            "amount",
            Money::try_from(amount).and_then(Money::non_negative),
        ),
    };
    let valid_from = match wire.valid_from.as_ref() {
        None => Some(now),
        Some(time) => violations.check("valid_from", timestamp(time)),
    };
    let valid_until = match wire.valid_until.as_ref() {
        None => None,
        Some(time) => violations.check("valid_until", timestamp(time)),
    };
    if let (Some(from), Some(until)) = (valid_from, valid_until)
        && until <= from
    {
        violations.add("valid_until", "must be after valid_from");
    }
    if let Some(until) = valid_until
        && until <= now
    {
        violations.add("valid_until", "must be in the future");
    }
    if wire.temporary && wire.valid_until.is_none() {
        violations.add("valid_until", "a temporary limit needs an end");
    }
    let reason = wire.reason.trim();
    if reason.is_empty() {
        violations.add("reason", "a reason is required");
    } else if reason.chars().count() > 1_000 {
        violations.add("reason", "must be at most 1000 characters");
    }
    violations.finish()?;
    match (scope, amount, valid_from) {
        (Some(scope), Some(amount), Some(valid_from)) => Ok(NewLimitRequest {
            scope,
            amount,
            valid_from,
            valid_until,
            temporary: wire.temporary,
            reason: reason.to_owned(),
        }),
        _ => Err(ServiceError::invalid("limit", "is incomplete")),
    }
}

/// The decision, then its reason, each refused on its own.
pub fn parse_decision(wire: &pb::DecideLimitRequestRequest) -> Result<LimitDecision, ServiceError> {
    let approving = match pb::ApprovalDecision::try_from(wire.decision) {
        Ok(pb::ApprovalDecision::Approve) => true,
        Ok(pb::ApprovalDecision::Reject) => false,
        _ => {
            return Err(ServiceError::invalid(
                "decision",
                "is required: APPROVE or REJECT",
            ));
        }
    };
    let reason = wire.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(ServiceError::invalid("reason", "a reason is required"));
    }
    Ok(LimitDecision {
        limit_request_id: wire.limit_request_id.trim().to_owned(),
        approving,
        reason,
    })
}

/// The scope filter of ListLimitRequests: none when the request names no scope.
pub fn scope_filter(wire: Option<&pb::LimitScope>) -> Result<Option<Scope>, ServiceError> {
    match wire {
        Some(scope) if scope.scope.is_some() => Ok(Some(parse_scope(Some(scope), "scope")?)),
        _ => Ok(None),
    }
}

/// The status filter of ListLimitRequests: none for UNSPECIFIED.
pub fn request_status_filter(status: i32) -> Result<Option<RequestStatus>, ServiceError> {
    match pb::ApprovalStatus::try_from(status) {
        Ok(pb::ApprovalStatus::Unspecified) => Ok(None),
        Ok(pb::ApprovalStatus::Pending) => Ok(Some(RequestStatus::Pending)),
        Ok(pb::ApprovalStatus::Approved) => Ok(Some(RequestStatus::Approved)),
        Ok(pb::ApprovalStatus::Rejected) => Ok(Some(RequestStatus::Rejected)),
        Err(_) => Err(ServiceError::invalid("status", "is not an approval status")),
    }
}

fn request_status_to_proto(status: RequestStatus) -> pb::ApprovalStatus {
    match status {
        RequestStatus::Pending => pb::ApprovalStatus::Pending,
        RequestStatus::Approved => pb::ApprovalStatus::Approved,
        RequestStatus::Rejected => pb::ApprovalStatus::Rejected,
    }
}

pub fn limit_request_to_proto(request: &LimitRequest) -> pb::LimitRequest {
    let change_percent = match (&request.current_amount, request.amount) {
        (Some(current), amount)
            if !current.amount().is_zero() && current.currency() == amount.currency() =>
        {
            amount
                .amount()
                .checked_sub(current.amount())
                .and_then(|change| change.checked_div(current.amount()))
                .and_then(|ratio| ratio.checked_mul(Decimal::ONE_HUNDRED))
                .map(|percent| percent.round_dp(2).to_string())
        }
        _ => None,
    };
    pb::LimitRequest {
        limit_request_id: request.id.clone(),
        scope: Some(scope_to_proto(&request.scope)),
        amount: Some(request.amount.into()),
        valid_from: Some(to_timestamp(request.valid_from)),
        valid_until: request.valid_until.map(to_timestamp),
        temporary: request.temporary,
        reason: request.reason.clone(),
        status: request_status_to_proto(request.status) as i32,
        current_amount: request.current_amount.map(Into::into),
        change_percent,
        requested_by: Some(pb::Actor::from(&request.requested_by)),
        requested_at: Some(to_timestamp(request.requested_at)),
        decided_by: request.decided_by.as_ref().map(pb::Actor::from),
        decided_at: request.decided_at.map(to_timestamp),
        decision_reason: request.decision_reason.clone(),
        auto_approval_rule_id: request.auto_approval_rule_id.clone().unwrap_or_default(),
        limit_id: request.limit_id.clone().unwrap_or_default(),
        approval_chain: request.approval_chain.as_ref().map(super::chain_to_proto),
    }
}

/// The limit as it stands at `now`: an active limit shows as scheduled before it starts and
/// as expired after it ends.
pub fn limit_to_proto(limit: &CreditLimit, now: DateTime<Utc>) -> pb::CreditLimit {
    let status = match limit.status {
        LimitStatus::Superseded => pb::CreditLimitStatus::Superseded,
        LimitStatus::Active if limit.valid_from > now => pb::CreditLimitStatus::Scheduled,
        LimitStatus::Active if limit.valid_until.is_some_and(|until| until <= now) => {
            pb::CreditLimitStatus::Expired
        }
        LimitStatus::Active => pb::CreditLimitStatus::Active,
    };
    pb::CreditLimit {
        limit_id: limit.id.clone(),
        scope: Some(scope_to_proto(&limit.scope)),
        amount: Some(limit.amount.into()),
        valid_from: Some(to_timestamp(limit.valid_from)),
        valid_until: limit.valid_until.map(to_timestamp),
        temporary: limit.temporary,
        status: status as i32,
        limit_request_id: limit.limit_request_id.clone(),
        requested_by: Some(pb::Actor::from(&limit.requested_by)),
        approved_by: approved_by(&limit.approved_by, &limit.auto_approval_rule_id),
        auto_approval_rule_id: limit.auto_approval_rule_id.clone().unwrap_or_default(),
        granted_at: Some(to_timestamp(limit.granted_at)),
        reason: limit.reason.clone(),
    }
}

/// The checker, unset when a policy rule approved instead of a person.
fn approved_by(person: &Actor, rule: &Option<String>) -> Option<pb::Actor> {
    rule.is_none().then(|| pb::Actor::from(person))
}

pub fn history_entry_to_proto(entry: &HistoryEntry) -> pb::LimitHistoryEntry {
    pb::LimitHistoryEntry {
        entry_id: entry.id.clone(),
        scope: Some(scope_to_proto(&entry.scope)),
        limit_id: entry.limit_id.clone(),
        limit_request_id: entry.limit_request_id.clone(),
        previous_amount: entry.previous_amount.map(Into::into),
        amount: Some(entry.amount.into()),
        valid_from: Some(to_timestamp(entry.valid_from)),
        valid_until: entry.valid_until.map(to_timestamp),
        temporary: entry.temporary,
        requested_by: Some(pb::Actor::from(&entry.requested_by)),
        approved_by: approved_by(&entry.approved_by, &entry.auto_approval_rule_id),
        auto_approval_rule_id: entry.auto_approval_rule_id.clone().unwrap_or_default(),
        reason: entry.reason.clone(),
        decision_reason: entry.decision_reason.clone(),
        changed_at: Some(to_timestamp(entry.changed_at)),
    }
}

/// The contract's block type for the stored name (MANUAL → CREDIT_BLOCK_TYPE_MANUAL);
/// UNSPECIFIED for a name the contract does not list.
pub fn block_type_to_proto(block: &CreditBlock) -> pb::CreditBlockType {
    pb::CreditBlockType::from_str_name(&format!("CREDIT_BLOCK_TYPE_{}", block.block_type))
        .unwrap_or(pb::CreditBlockType::Unspecified)
}

pub fn credit_block_to_proto(block: &CreditBlock) -> pb::CreditBlock {
    pb::CreditBlock {
        block_type: block_type_to_proto(block) as i32,
        reason: Some(pb::Reason {
            code: block.block_type.clone(),
            message: block.reason.clone(),
            metadata: Default::default(),
        }),
        set_at: Some(to_timestamp(block.set_at)),
        set_by: Some(pb::Actor::from(&block.set_by)),
        source_event_id: block.source_event_id.clone(),
    }
}

/// The LimitChanged event of an approval: `limit` granted by `approver` (the system when
/// `rule_id` names the auto-approval rule), replacing `previous`.
pub fn limit_changed_event(
    limit: &CreditLimit,
    previous: Option<Money>,
    approver: &Actor,
    request_id: &str,
    rule_id: Option<String>,
) -> pb::Event {
    let (customer_id, group_id) = match &limit.scope {
        Scope::Customer(id) => (id.clone(), String::new()),
        Scope::Group(id) => (String::new(), id.clone()),
        Scope::Portfolio => (String::new(), String::new()),
    };
    pb::Event {
        aggregate_id: limit.id.clone(),
        customer_id,
        group_id,
        actor: Some(pb::Actor::from(approver)),
        request_id: request_id.to_owned(),
        ..new_event(
            LIMITS,
            Payload::LimitChanged(pb::LimitChanged {
                scope: Some(scope_to_proto(&limit.scope)),
                limit_id: limit.id.clone(),
                previous_amount: previous.map(Into::into),
                amount: Some(limit.amount.into()),
                valid_from: Some(to_timestamp(limit.valid_from)),
                valid_until: limit.valid_until.map(to_timestamp),
                temporary: limit.temporary,
                limit_request_id: limit.limit_request_id.clone(),
                requested_by: limit.requested_by.name.clone(),
                approved_by: approver.name.clone(),
                auto_approval_rule_id: rule_id.unwrap_or_default(),
            }),
        )
    }
}

/// How a caller hears why a decision on a limit was refused.
impl From<DecisionRefused> for ServiceError {
    fn from(refused: DecisionRefused) -> Self {
        let message = refused.to_string();
        match refused {
            DecisionRefused::PortfolioCapExceeded { cap, .. } => ServiceError::FailedPrecondition {
                reason: "PORTFOLIO_CAP_EXCEEDED",
                message,
                metadata: vec![("portfolio_cap", cap.amount_string())],
            },
        }
    }
}
