//! Recorded ratings, overrides and review runs between their proto form and the domain.
//!
//! The store keeps these as encoded protobuf messages, so the same conversions serve the
//! answers of the api and the stored encoding; both directions keep every field, so a stored
//! record reads back exactly as it was written.

use credit_core::{Actor, Role};
use credit_proto::time::{from_date, from_timestamp, timestamp, to_date};
use credit_proto::v1 as pb;

use super::{
    customer_kind_from_proto, customer_kind_to_proto, family_to_proto, source_from_proto,
    source_to_proto,
};
use crate::domain::kinds::IndicatorFamily;
use crate::domain::rating::{
    ApprovalStatus, InputSnapshot, OverrideKind, RatedCharacteristic, Rating, RatingOverride,
    RatingReason, RatingTrigger, ReviewFailure, ReviewResult, ReviewRun, StaleInput,
};
use crate::domain::scoring::{UncheckedInput, UncheckedValue};

// ---------------------------------------------------------------------------------------------
// Enums and actors
// ---------------------------------------------------------------------------------------------

pub fn trigger_from_proto(value: i32) -> RatingTrigger {
    match pb::RatingTrigger::try_from(value) {
        Ok(pb::RatingTrigger::Manual) => RatingTrigger::Manual,
        Ok(pb::RatingTrigger::ScheduledReview) => RatingTrigger::ScheduledReview,
        Ok(pb::RatingTrigger::FinancialStatement) => RatingTrigger::FinancialStatement,
        Ok(pb::RatingTrigger::BureauReport) => RatingTrigger::BureauReport,
        Ok(pb::RatingTrigger::Overdue) => RatingTrigger::Overdue,
        Ok(pb::RatingTrigger::CreditFile) => RatingTrigger::CreditFile,
        Ok(pb::RatingTrigger::Unspecified) | Err(_) => RatingTrigger::Unspecified,
    }
}

pub fn trigger_to_proto(trigger: RatingTrigger) -> pb::RatingTrigger {
    match trigger {
        RatingTrigger::Unspecified => pb::RatingTrigger::Unspecified,
        RatingTrigger::Manual => pb::RatingTrigger::Manual,
        RatingTrigger::ScheduledReview => pb::RatingTrigger::ScheduledReview,
        RatingTrigger::FinancialStatement => pb::RatingTrigger::FinancialStatement,
        RatingTrigger::BureauReport => pb::RatingTrigger::BureauReport,
        RatingTrigger::Overdue => pb::RatingTrigger::Overdue,
        RatingTrigger::CreditFile => pb::RatingTrigger::CreditFile,
    }
}

pub fn status_from_proto(value: i32) -> ApprovalStatus {
    match pb::ApprovalStatus::try_from(value) {
        Ok(pb::ApprovalStatus::Pending) => ApprovalStatus::Pending,
        Ok(pb::ApprovalStatus::Approved) => ApprovalStatus::Approved,
        Ok(pb::ApprovalStatus::Rejected) => ApprovalStatus::Rejected,
        Ok(pb::ApprovalStatus::Unspecified) | Err(_) => ApprovalStatus::Unspecified,
    }
}

pub fn status_to_proto(status: ApprovalStatus) -> pb::ApprovalStatus {
    match status {
        ApprovalStatus::Unspecified => pb::ApprovalStatus::Unspecified,
        ApprovalStatus::Pending => pb::ApprovalStatus::Pending,
        ApprovalStatus::Approved => pb::ApprovalStatus::Approved,
        ApprovalStatus::Rejected => pb::ApprovalStatus::Rejected,
    }
}

/// `None` for UNSPECIFIED and for values this build does not know.
pub fn role_from_proto(value: i32) -> Option<Role> {
    let role = pb::Role::try_from(value).ok()?;
    role.as_str_name().strip_prefix("ROLE_")?.parse().ok()
}

pub fn role_to_proto(role: Option<Role>) -> pb::Role {
    role.and_then(|role| pb::Role::from_str_name(&format!("ROLE_{}", role.as_str())))
        .unwrap_or(pb::Role::Unspecified)
}

/// The contract's actor carries no principal id; the name and roles are all it keeps.
pub fn actor_from_proto(actor: &pb::Actor) -> Actor {
    Actor {
        principal_id: String::new(),
        person_id: String::new(),
        name: actor.principal.clone(),
        roles: actor
            .roles
            .iter()
            .filter_map(|role| pb::Role::try_from(*role).ok())
            .filter_map(|role| role.as_str_name().strip_prefix("ROLE_").map(str::to_owned))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Ratings
// ---------------------------------------------------------------------------------------------

impl From<&Rating> for pb::Rating {
    fn from(rating: &Rating) -> Self {
        pb::Rating {
            rating_id: rating.rating_id.clone(),
            customer_id: rating.customer_id.clone(),
            model_id: rating.model_id.clone(),
            model_version: rating.model_version,
            master_scale_id: rating.master_scale_id.clone(),
            score: rating.score.clone(),
            model_grade: rating.model_grade.clone(),
            model_pd: rating.model_pd.clone(),
            grade: rating.grade.clone(),
            grade_rank: rating.grade_rank,
            pd: rating.pd.clone(),
            override_id: rating.override_id.clone(),
            breakdown: rating.breakdown.iter().map(Into::into).collect(),
            reasons: rating.reasons.iter().map(Into::into).collect(),
            inputs: rating.inputs.as_ref().map(snapshot_to_proto),
            trigger: trigger_to_proto(rating.trigger).into(),
            rated_at: rating.rated_at.map(timestamp),
            rated_by: rating.rated_by.as_ref().map(pb::Actor::from),
            next_review_date: rating.next_review_date.map(to_date),
            current: rating.current,
            note: rating.note.clone(),
            grade_approval_id: rating.grade_approval_id.clone(),
            stale_inputs: rating
                .stale_inputs
                .iter()
                .map(stale_input_to_proto)
                .collect(),
            inputs_stale_on: rating.inputs_stale_on.map(to_date),
        }
    }
}

/// A stale input as the rating's reason: its code and message, the input and the day.
pub fn stale_input_to_proto(stale: &StaleInput) -> pb::Reason {
    pb::Reason {
        code: stale.code.clone(),
        message: stale.message.clone(),
        metadata: [
            ("input".to_owned(), stale.input.clone()),
            ("stale_since".to_owned(), stale.stale_since.to_string()),
        ]
        .into_iter()
        .collect(),
    }
}

fn stale_input_from_proto(reason: &pb::Reason) -> Option<StaleInput> {
    Some(StaleInput {
        code: reason.code.clone(),
        input: reason.metadata.get("input").cloned().unwrap_or_default(),
        stale_since: reason.metadata.get("stale_since")?.parse().ok()?,
        message: reason.message.clone(),
    })
}

impl From<&pb::Rating> for Rating {
    fn from(rating: &pb::Rating) -> Self {
        Rating {
            rating_id: rating.rating_id.clone(),
            customer_id: rating.customer_id.clone(),
            model_id: rating.model_id.clone(),
            model_version: rating.model_version,
            master_scale_id: rating.master_scale_id.clone(),
            score: rating.score.clone(),
            model_grade: rating.model_grade.clone(),
            model_pd: rating.model_pd.clone(),
            grade: rating.grade.clone(),
            grade_rank: rating.grade_rank,
            pd: rating.pd.clone(),
            override_id: rating.override_id.clone(),
            breakdown: rating.breakdown.iter().map(Into::into).collect(),
            reasons: rating.reasons.iter().map(Into::into).collect(),
            inputs: rating.inputs.as_ref().map(snapshot_from_proto),
            trigger: trigger_from_proto(rating.trigger),
            rated_at: rating.rated_at.as_ref().and_then(from_timestamp),
            rated_by: rating.rated_by.as_ref().map(actor_from_proto),
            next_review_date: rating.next_review_date.as_ref().and_then(from_date),
            current: rating.current,
            note: rating.note.clone(),
            grade_approval_id: rating.grade_approval_id.clone(),
            stale_inputs: rating
                .stale_inputs
                .iter()
                .filter_map(stale_input_from_proto)
                .collect(),
            inputs_stale_on: rating.inputs_stale_on.as_ref().and_then(from_date),
        }
    }
}

impl From<&RatedCharacteristic> for pb::CharacteristicScore {
    fn from(line: &RatedCharacteristic) -> Self {
        pb::CharacteristicScore {
            code: line.code.clone(),
            display_name: line.display_name.clone(),
            source: line
                .source
                .map_or(pb::CharacteristicSource::Unspecified, source_to_proto)
                .into(),
            family: family_to_proto(line.family).into(),
            input: line.input.as_ref().map(input_to_proto),
            missing: line.missing,
            bin_label: line.bin_label.clone(),
            points: line.points.clone(),
            max_points: line.max_points.clone(),
            points_lost: line.points_lost.clone(),
        }
    }
}

impl From<&pb::CharacteristicScore> for RatedCharacteristic {
    fn from(line: &pb::CharacteristicScore) -> Self {
        RatedCharacteristic {
            code: line.code.clone(),
            display_name: line.display_name.clone(),
            source: source_from_proto(line.source),
            family: family_from_proto_lenient(line.family),
            input: line.input.as_ref().map(input_from_proto),
            missing: line.missing,
            bin_label: line.bin_label.clone(),
            points: line.points.clone(),
            max_points: line.max_points.clone(),
            points_lost: line.points_lost.clone(),
        }
    }
}

/// A recorded family: a value this build does not know reads as none.
fn family_from_proto_lenient(value: i32) -> Option<IndicatorFamily> {
    super::family_from_proto(value).check().ok().flatten()
}

impl From<&RatingReason> for pb::Reason {
    fn from(reason: &RatingReason) -> Self {
        pb::Reason {
            code: reason.code.clone(),
            message: reason.message.clone(),
            metadata: reason.metadata.clone().into_iter().collect(),
        }
    }
}

impl From<&pb::Reason> for RatingReason {
    fn from(reason: &pb::Reason) -> Self {
        RatingReason {
            code: reason.code.clone(),
            message: reason.message.clone(),
            metadata: reason.metadata.clone().into_iter().collect(),
        }
    }
}

fn snapshot_to_proto(snapshot: &InputSnapshot) -> pb::RatingInputSnapshot {
    pb::RatingInputSnapshot {
        customer_kind: snapshot
            .customer_kind
            .map_or(pb::CustomerKind::Unspecified, customer_kind_to_proto)
            .into(),
        industry_code: snapshot.industry_code.clone(),
        inputs: snapshot.inputs.iter().map(input_to_proto).collect(),
        statement_id: snapshot.statement_id.clone(),
        bureau_report_id: snapshot.bureau_report_id.clone(),
        captured_at: snapshot.captured_at.map(timestamp),
    }
}

fn snapshot_from_proto(snapshot: &pb::RatingInputSnapshot) -> InputSnapshot {
    InputSnapshot {
        customer_kind: customer_kind_from_proto(snapshot.customer_kind),
        industry_code: snapshot.industry_code.clone(),
        inputs: snapshot.inputs.iter().map(input_from_proto).collect(),
        statement_id: snapshot.statement_id.clone(),
        bureau_report_id: snapshot.bureau_report_id.clone(),
        captured_at: snapshot.captured_at.as_ref().and_then(from_timestamp),
    }
}

pub fn input_to_proto(input: &UncheckedInput) -> pb::RatingInput {
    pb::RatingInput {
        source: input
            .source
            .map_or(pb::CharacteristicSource::Unspecified, source_to_proto)
            .into(),
        key: input.key.clone(),
        value: input.value.as_ref().map(|value| match value {
            UncheckedValue::Number(text) => pb::rating_input::Value::Number(text.clone()),
            UncheckedValue::Category(text) => pb::rating_input::Value::Category(text.clone()),
        }),
        origin: input.origin.clone(),
    }
}

pub fn input_from_proto(input: &pb::RatingInput) -> UncheckedInput {
    UncheckedInput {
        source: source_from_proto(input.source),
        key: input.key.clone(),
        value: input.value.as_ref().map(|value| match value {
            pb::rating_input::Value::Number(text) => UncheckedValue::Number(text.clone()),
            pb::rating_input::Value::Category(text) => UncheckedValue::Category(text.clone()),
        }),
        origin: input.origin.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Overrides
// ---------------------------------------------------------------------------------------------

impl From<&RatingOverride> for pb::RatingOverride {
    fn from(proposal: &RatingOverride) -> Self {
        pb::RatingOverride {
            override_id: proposal.override_id.clone(),
            rating_id: proposal.rating_id.clone(),
            customer_id: proposal.customer_id.clone(),
            model_grade: proposal.model_grade.clone(),
            proposed_grade: proposal.proposed_grade.clone(),
            notches: proposal.notches,
            justification: proposal.justification.clone(),
            status: status_to_proto(proposal.status).into(),
            required_role: role_to_proto(proposal.required_role).into(),
            proposed_by: proposal.proposed_by.as_ref().map(pb::Actor::from),
            proposed_at: proposal.proposed_at.map(timestamp),
            decided_by: proposal.decided_by.as_ref().map(pb::Actor::from),
            decided_at: proposal.decided_at.map(timestamp),
            decision_comment: proposal.decision_comment.clone(),
            approval_chain: proposal
                .approval_chain
                .as_deref()
                .map(credit_runtime::approval_wire::chain_to_proto),
            decision_kind: credit_runtime::approval_wire::decision_kind_to_proto(
                proposal.kind.decision_kind(),
            ),
        }
    }
}

impl From<&pb::RatingOverride> for RatingOverride {
    fn from(proposal: &pb::RatingOverride) -> Self {
        RatingOverride {
            override_id: proposal.override_id.clone(),
            rating_id: proposal.rating_id.clone(),
            customer_id: proposal.customer_id.clone(),
            model_grade: proposal.model_grade.clone(),
            proposed_grade: proposal.proposed_grade.clone(),
            notches: proposal.notches,
            justification: proposal.justification.clone(),
            status: status_from_proto(proposal.status),
            required_role: role_from_proto(proposal.required_role),
            proposed_by: proposal.proposed_by.as_ref().map(actor_from_proto),
            proposed_at: proposal.proposed_at.as_ref().and_then(from_timestamp),
            decided_by: proposal.decided_by.as_ref().map(actor_from_proto),
            decided_at: proposal.decided_at.as_ref().and_then(from_timestamp),
            decision_comment: proposal.decision_comment.clone(),
            kind: if proposal.decision_kind == pb::DecisionKind::RatingApproval as i32 {
                OverrideKind::GradeApproval
            } else {
                OverrideKind::Override
            },
            // Kept in its own column; the contract's copy is output only.
            approval_chain: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Review runs
// ---------------------------------------------------------------------------------------------

impl From<&ReviewRun> for pb::RunScheduledReviewsResponse {
    fn from(run: &ReviewRun) -> Self {
        pb::RunScheduledReviewsResponse {
            results: run
                .results
                .iter()
                .map(|result| pb::ScheduledReviewResult {
                    customer_id: result.customer_id.clone(),
                    rating_id: result.rating_id.clone(),
                    previous_grade: result.previous_grade.clone(),
                    grade: result.grade.clone(),
                    error: result.error.as_ref().map(|failure| pb::Reason {
                        code: failure.code.clone(),
                        message: failure.message.clone(),
                        ..Default::default()
                    }),
                })
                .collect(),
            rerated_count: run.rerated_count,
            failed_count: run.failed_count,
        }
    }
}

impl From<&pb::RunScheduledReviewsResponse> for ReviewRun {
    fn from(response: &pb::RunScheduledReviewsResponse) -> Self {
        ReviewRun {
            results: response
                .results
                .iter()
                .map(|result| ReviewResult {
                    customer_id: result.customer_id.clone(),
                    rating_id: result.rating_id.clone(),
                    previous_grade: result.previous_grade.clone(),
                    grade: result.grade.clone(),
                    error: result.error.as_ref().map(|reason| ReviewFailure {
                        code: reason.code.clone(),
                        message: reason.message.clone(),
                    }),
                })
                .collect(),
            rerated_count: response.rerated_count,
            failed_count: response.failed_count,
        }
    }
}
