//! Every conversion between limits' contract (`credit.v1`) and its domain: requests read and
//! checked into domain values, each problem named by its field path, and domain records shown
//! as the contract's messages. Handlers, use cases and the hot path call these; the domain
//! never sees a protobuf type.

// Moved out of the domain, where every arithmetic operation that can overflow must be a
// checked one; the conversions keep that rule.
#![deny(clippy::arithmetic_side_effects)]

mod approvals;
mod fx;
mod limits;
mod policy;
mod pricing;
mod proposal;
mod securities;
mod terms;

use chrono::{DateTime, Utc};
use credit_core::ServiceError;
use credit_proto::v1 as pb;

use crate::ledger::HoldStatus;

pub use approvals::{
    StepDecision, chain_to_proto, chosen_chain_to_proto, decision_kind_filter, matrix_to_proto,
    parse_chain_choice, parse_matrix_proposal, parse_step_decision, step_decided_event,
    task_to_proto,
};
use approvals::{change_to_proto, effective_from_to_proto, version_status_to_proto};
pub use fx::{fx_rate_to_proto, parse_fx_filter, parse_fx_rate};
pub use limits::{
    block_type_to_proto, credit_block_to_proto, history_entry_to_proto, limit_changed_event,
    limit_request_to_proto, limit_to_proto, parse_decision, parse_limit_request, parse_scope,
    request_status_filter, scope_filter, scope_to_proto,
};
pub use policy::{
    parse_payment_terms, parse_policy_proposal, payment_terms_to_proto, policy_to_proto,
    policy_version_to_proto,
};
pub use pricing::{parse_quote_request, quote_to_proto};
pub use proposal::{component_to_proto, proposal_to_proto, requested_currency};
pub use securities::{
    parse_new_security, parse_security_change, security_changed_event, security_status_filter,
    security_to_proto,
};
pub use terms::{parse_terms_edits, terms_to_proto};

/// A protobuf time as UTC, or why not.
pub fn timestamp(time: &prost_types::Timestamp) -> Result<DateTime<Utc>, &'static str> {
    let nanos = u32::try_from(time.nanos).map_err(|_| "is not a valid time")?;
    DateTime::from_timestamp(time.seconds, nanos).ok_or("is not a valid time")
}

pub fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The status filter of ListHolds: none for UNSPECIFIED.
pub fn hold_status_filter(status: i32) -> Result<Option<HoldStatus>, ServiceError> {
    match pb::HoldStatus::try_from(status) {
        Ok(pb::HoldStatus::Unspecified) => Ok(None),
        Ok(pb::HoldStatus::Open) => Ok(Some(HoldStatus::Open)),
        Ok(pb::HoldStatus::Captured) => Ok(Some(HoldStatus::Captured)),
        Ok(pb::HoldStatus::Released) => Ok(Some(HoldStatus::Released)),
        Ok(pb::HoldStatus::Expired) => Ok(Some(HoldStatus::Expired)),
        Err(_) => Err(ServiceError::invalid("status", "is not a hold status")),
    }
}
