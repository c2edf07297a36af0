//! Overrides with four eyes: a maker proposes another grade for a current rating, and a
//! checker other than the maker approves or rejects it. The rules are in
//! [`crate::domain::overrides`]; here they run against the stored rating, inside the store's
//! write, and an approval announces the new effective grade.

use chrono::Utc;
use credit_core::{Actor, Principal, Role, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::sql::IdempotencyKey;

use super::models::published_model;
use super::rater::{Rater, rating_changed};
use crate::domain::overrides::{self, next_review_date};
use crate::domain::rating::{ApprovalStatus, Rating, RatingOverride};
use crate::domain::{MasterScale, ModelId};
use crate::store::{EffectiveGrade, ModelStore, Outcome};

/// A maker's proposal, as the request gave it.
#[derive(Debug, Clone, Copy)]
pub struct OverrideProposalRequest<'a> {
    pub rating_id: &'a str,
    pub proposed_grade: &'a str,
    pub justification: &'a str,
}

/// A checker's decision, as the request gave it.
#[derive(Debug, Clone, Copy)]
pub struct OverrideDecision<'a> {
    pub override_id: &'a str,
    pub approve: bool,
    /// Required to reject; the handler checks it.
    pub comment: &'a str,
}

/// Stores `principal`'s proposal for the current rating `request.rating_id`, once per key.
pub async fn propose_override(
    rater: &Rater,
    models: &dyn ModelStore,
    principal: &Principal,
    key: &IdempotencyKey,
    request: &OverrideProposalRequest<'_>,
) -> Result<RatingOverride, ServiceError> {
    let rating = rater.stored_rating(request.rating_id).await?;
    let scale = scale_of(models, &rating).await?;
    let proposer = Actor::of(principal);
    let build = |current: &Rating| -> Result<RatingOverride, ServiceError> {
        let proposal = overrides::propose(
            &scale,
            &current.model_grade,
            &current.grade,
            request.proposed_grade,
            request.justification,
        )?;
        Ok(RatingOverride {
            override_id: format!("ovr_{}", uuid::Uuid::now_v7().simple()),
            rating_id: current.rating_id.clone(),
            customer_id: current.customer_id.clone(),
            model_grade: current.model_grade.clone(),
            proposed_grade: proposal.proposed_grade,
            notches: proposal.notches,
            justification: proposal.justification,
            status: ApprovalStatus::Pending,
            required_role: Some(proposal.required_role),
            proposed_by: Some(proposer.clone()),
            proposed_at: Some(Utc::now()),
            ..Default::default()
        })
    };
    let outcome = rater
        .ratings()
        .propose_override(request.rating_id, key, &build)
        .await
        .map_err(ServiceError::from)?;
    if let Outcome::New(proposal) = &outcome {
        tracing::info!(
            override_id = %proposal.override_id,
            rating_id = %proposal.rating_id,
            proposed_grade = %proposal.proposed_grade,
            notches = proposal.notches,
            proposed_by = %principal.name,
            "override proposed"
        );
    }
    Ok(outcome.into_inner())
}

/// Decides a pending override as `principal`, once per key: the decided override and the
/// rating as it is now (with the new effective grade when approved).
pub async fn decide_override(
    rater: &Rater,
    models: &dyn ModelStore,
    principal: &Principal,
    key: &IdempotencyKey,
    decision: &OverrideDecision<'_>,
) -> Result<(RatingOverride, Rating), ServiceError> {
    let proposal = rater
        .ratings()
        .rating_override(decision.override_id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::not_found("override", decision.override_id))?;
    let rating = rater.stored_rating(&proposal.rating_id).await?;
    let scale = scale_of(models, &rating).await?;
    let checker = Actor::of(principal);
    let decide = |pending: &RatingOverride,
                  current: &Rating|
     -> Result<
        (RatingOverride, Option<EffectiveGrade>, Option<pb::Event>),
        ServiceError,
    > {
        overrides::check_decider(
            principal,
            pending.proposed_by.as_ref(),
            required_role(pending),
        )?;
        let decided = RatingOverride {
            status: if decision.approve {
                ApprovalStatus::Approved
            } else {
                ApprovalStatus::Rejected
            },
            decided_by: Some(checker.clone()),
            decided_at: Some(Utc::now()),
            decision_comment: decision.comment.to_owned(),
            ..pending.clone()
        };
        if !decision.approve {
            return Ok((decided, None, None));
        }
        let grade = scale.grade(&pending.proposed_grade).ok_or_else(|| {
            ServiceError::internal(format!(
                "override {} proposes grade {} that scale {} does not have",
                pending.override_id,
                pending.proposed_grade,
                scale.scale_id()
            ))
        })?;
        let rated_on = current
            .rated_at
            .map_or_else(|| Utc::now().date_naive(), |time| time.date_naive());
        let effective = EffectiveGrade {
            grade: grade.code.clone(),
            grade_rank: i32::try_from(grade.rank).unwrap_or(i32::MAX),
            pd: grade.pd.to_string(),
            override_id: pending.override_id.clone(),
            next_review_date: next_review_date(rated_on, grade),
        };
        let after = Rating {
            grade: effective.grade.clone(),
            grade_rank: effective.grade_rank,
            pd: effective.pd.clone(),
            override_id: effective.override_id.clone(),
            next_review_date: Some(effective.next_review_date),
            ..current.clone()
        };
        let event = rating_changed(&after, &current.grade, &checker, &key.request_id);
        Ok((decided, Some(effective), Some(event)))
    };
    let outcome = rater
        .ratings()
        .decide_override(decision.override_id, key, &decide)
        .await
        .map_err(ServiceError::from)?;
    if let Outcome::New((decided, rating)) = &outcome {
        tracing::info!(
            override_id = %decided.override_id,
            status = decided.status.stored_name(),
            grade = %rating.grade,
            decided_by = %principal.name,
            "override decided"
        );
    }
    Ok(outcome.into_inner())
}

/// The master scale of the model version that scored `rating`.
async fn scale_of(models: &dyn ModelStore, rating: &Rating) -> Result<MasterScale, ServiceError> {
    let model_id = ModelId::parse(&rating.model_id)
        .map_err(|error| ServiceError::internal(format!("rating {}: {error}", rating.rating_id)))?;
    let version = u32::try_from(rating.model_version).ok();
    Ok(published_model(models, &model_id, version)
        .await?
        .model
        .master_scale()
        .clone())
}

/// The role an override needs (stored on it when proposed).
fn required_role(proposal: &RatingOverride) -> Role {
    match proposal.required_role {
        Some(Role::Admin) => Role::Admin,
        _ => overrides::required_role(proposal.notches),
    }
}
