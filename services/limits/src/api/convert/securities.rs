//! The security register on the wire: RegisterSecurity and ChangeSecurity read into domain
//! values (every problem named by its field), securities and their secured positions shown,
//! and SecurityChanged built.

use chrono::NaiveDate;
use credit_core::{Money, ServiceError, Violations};
use credit_proto::service_names::LIMITS;
use credit_proto::time::{from_date, to_date};
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;
use rust_decimal::Decimal;

use crate::domain::limits::Actor;
use crate::domain::security::{
    ChangeAction, NewSecurity, Security, SecurityChange, SecurityKind, SecurityStatus,
};

use super::to_timestamp;

pub fn security_kind(wire: i32) -> Option<SecurityKind> {
    let name = pb::SecurityKind::try_from(wire).ok()?.as_str_name();
    let name = name.strip_prefix("SECURITY_KIND_")?;
    SecurityKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == name)
}

fn kind_to_proto(kind: SecurityKind) -> i32 {
    pb::SecurityKind::from_str_name(&format!("SECURITY_KIND_{}", kind.as_str()))
        .map_or(0, |kind| kind as i32)
}

fn status_to_proto(status: SecurityStatus) -> i32 {
    pb::SecurityStatus::from_str_name(&format!("SECURITY_STATUS_{}", status.as_str()))
        .map_or(0, |status| status as i32)
}

/// A list filter's status: unset is any.
pub fn security_status_filter(wire: i32) -> Result<Option<SecurityStatus>, ServiceError> {
    let name = pb::SecurityStatus::try_from(wire)
        .map_err(|_| ServiceError::invalid("status", "is not a SecurityStatus"))?
        .as_str_name();
    Ok(name
        .strip_prefix("SECURITY_STATUS_")
        .and_then(SecurityStatus::parse))
}

/// A wire date named by `field`, when set.
fn date(wire: Option<&pb::Date>, field: &str, violations: &mut Violations) -> Option<NaiveDate> {
    let wire = wire?;
    let parsed = from_date(wire);
    if parsed.is_none() {
        violations.add(field, "is not a valid date");
    }
    parsed
}

/// A percentage text named by `field`; empty is `default`.
fn percent(
    text: &str,
    field: &str,
    default: Option<Decimal>,
    violations: &mut Violations,
) -> Option<Decimal> {
    if text.trim().is_empty() {
        return default;
    }
    match credit_core::money::parse_decimal(text.trim()) {
        Ok(value) => Some(value),
        Err(_) => {
            violations.add(field, "is a decimal percentage such as \"20\" or \"12.5\"");
            None
        }
    }
}

fn money(wire: Option<&pb::Money>, field: &str, violations: &mut Violations) -> Option<Money> {
    let wire = wire?;
    violations.check(field, Money::try_from(wire))
}

/// RegisterSecurity's security, read field by field; the domain checks what it means.
pub fn parse_new_security(
    request: &pb::RegisterSecurityRequest,
) -> Result<NewSecurity, ServiceError> {
    let mut violations = Violations::new();
    let Some(wire) = request.security.as_ref() else {
        return Err(ServiceError::invalid("security", "is required"));
    };
    let kind = if wire.kind == 0 {
        None
    } else {
        let kind = security_kind(wire.kind);
        if kind.is_none() {
            violations.add("security.kind", "is not a SecurityKind");
        }
        kind
    };
    let amount = money(wire.amount.as_ref(), "security.amount", &mut violations);
    let deductible = money(
        wire.deductible.as_ref(),
        "security.deductible",
        &mut violations,
    );
    let haircut = percent(
        &wire.haircut_percent,
        "security.haircut_percent",
        Some(Decimal::ZERO),
        &mut violations,
    );
    let share = percent(
        &wire.share_covered_percent,
        "security.share_covered_percent",
        None,
        &mut violations,
    );
    let valuation_date = date(
        wire.valuation_date.as_ref(),
        "security.valuation_date",
        &mut violations,
    );
    let valid_from = date(
        wire.valid_from.as_ref(),
        "security.valid_from",
        &mut violations,
    );
    let valid_until = date(
        wire.valid_until.as_ref(),
        "security.valid_until",
        &mut violations,
    );
    violations.finish()?;
    Ok(NewSecurity {
        customer_id: wire.customer_id.clone(),
        kind,
        amount,
        haircut_percent: haircut.unwrap_or_default(),
        valuation_date,
        provider: wire.provider.clone(),
        guarantor_customer_id: Some(wire.guarantor_customer_id.clone()),
        reference: wire.reference.clone(),
        deductible,
        share_covered_percent: share,
        valid_from,
        valid_until,
        document_ids: wire.document_ids.clone(),
        reason: request.reason.clone(),
    })
}

/// ChangeSecurity read: the security, what to do, and why. A valuation without a date is
/// today's.
pub fn parse_security_change(
    request: &pb::ChangeSecurityRequest,
    today: NaiveDate,
) -> Result<(String, ChangeAction, String), ServiceError> {
    let mut violations = Violations::new();
    let security_id = request.security_id.trim();
    if security_id.is_empty() || security_id.len() > 100 {
        violations.add("security_id", "is required, at most 100 characters");
    }
    if request.reason.len() > 1000 {
        violations.add("reason", "must be at most 1000 characters");
    }
    let action = match pb::SecurityChangeAction::try_from(request.action) {
        Ok(pb::SecurityChangeAction::Release) => {
            if request.new_amount.is_some() {
                violations.add("new_amount", "goes only with REVALUE");
            }
            Some(ChangeAction::Release)
        }
        Ok(pb::SecurityChangeAction::Revalue) => {
            let amount = match request.new_amount.as_ref() {
                None => {
                    violations.add("new_amount", "is required to revalue");
                    None
                }
                Some(wire) => violations.check(
                    "new_amount",
                    Money::try_from(wire).and_then(Money::non_negative),
                ),
            };
            let valuation_date = date(
                request.valuation_date.as_ref(),
                "valuation_date",
                &mut violations,
            )
            .unwrap_or(today);
            if valuation_date > today {
                violations.add("valuation_date", "must not be in the future");
            }
            amount.map(|amount| ChangeAction::Revalue {
                amount,
                valuation_date,
            })
        }
        _ => {
            violations.add("action", "must be RELEASE or REVALUE");
            None
        }
    };
    violations.finish()?;
    let action = action.ok_or_else(|| ServiceError::invalid("action", "is required"))?;
    Ok((security_id.to_owned(), action, request.reason.clone()))
}

fn change_to_proto(change: &SecurityChange) -> pb::SecurityChange {
    let (action, new_amount, valuation_date) = match &change.action {
        ChangeAction::Register => (pb::SecurityChangeAction::Register, None, None),
        ChangeAction::Release => (pb::SecurityChangeAction::Release, None, None),
        ChangeAction::Revalue {
            amount,
            valuation_date,
        } => (
            pb::SecurityChangeAction::Revalue,
            Some((*amount).into()),
            Some(to_date(*valuation_date)),
        ),
    };
    pb::SecurityChange {
        action: action as i32,
        new_amount,
        valuation_date,
        reason: change.reason.clone(),
        requested_at: Some(to_timestamp(change.requested_at)),
        approval_chain: Some(super::chain_to_proto(&change.chain)),
    }
}

pub fn security_to_proto(security: &Security) -> pb::Security {
    pb::Security {
        security_id: security.security_id.clone(),
        customer_id: security.customer_id.clone(),
        kind: kind_to_proto(security.kind),
        amount: Some(security.amount.into()),
        haircut_percent: security.haircut_percent.normalize().to_string(),
        valuation_date: security.valuation_date.map(to_date),
        provider: security.provider.clone(),
        guarantor_customer_id: security.guarantor_customer_id.clone().unwrap_or_default(),
        reference: security.reference.clone(),
        deductible: security.deductible.map(Into::into),
        share_covered_percent: security.share_covered_percent.normalize().to_string(),
        valid_from: Some(to_date(security.valid_from)),
        valid_until: security.valid_until.map(to_date),
        document_ids: security.document_ids.clone(),
        status: status_to_proto(security.status),
        eligible_value: Some(security.eligible_value().into()),
        pending_change: security.pending.as_ref().map(change_to_proto),
        decided_changes: security.decided.iter().map(change_to_proto).collect(),
        valuations: security
            .valuations
            .iter()
            .map(|valuation| pb::SecurityValuation {
                amount: Some(valuation.amount.into()),
                valuation_date: valuation.valuation_date.map(to_date),
                recorded_by: Some(pb::Actor::from(&valuation.recorded_by)),
                recorded_at: Some(to_timestamp(valuation.recorded_at)),
                note: valuation.note.clone(),
            })
            .collect(),
        registered_by: Some(pb::Actor::from(&security.registered_by)),
        registered_at: Some(to_timestamp(security.registered_at)),
        ended_at: security.ended_at.map(to_timestamp),
    }
}

/// SecurityChanged for a security that took effect or stopped counting (`change`:
/// REGISTERED, RELEASED, REVALUED, EXPIRED).
pub fn security_changed_event(
    security: &Security,
    change: &str,
    actor: &Actor,
    request_id: &str,
) -> pb::Event {
    let counts = security.status == SecurityStatus::Active;
    let eligible = if counts {
        security.eligible_value()
    } else {
        Money::zero(security.amount.currency())
    };
    pb::Event {
        aggregate_id: security.security_id.clone(),
        customer_id: security.customer_id.clone(),
        actor: Some(pb::Actor::from(actor)),
        request_id: request_id.to_owned(),
        ..new_event(
            LIMITS,
            Payload::SecurityChanged(pb::SecurityChanged {
                security_id: security.security_id.clone(),
                customer_id: security.customer_id.clone(),
                guarantor_customer_id: security.guarantor_customer_id.clone().unwrap_or_default(),
                kind: security.kind.as_str().to_owned(),
                change: change.to_owned(),
                status: security.status.as_str().to_owned(),
                amount: Some(security.amount.into()),
                eligible_value: Some(eligible.into()),
                valid_until: security.valid_until.map(to_date),
            }),
        )
    }
}
