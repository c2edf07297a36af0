//! Overrides with four eyes: a maker proposes another grade for a current rating, and a
//! checker other than the maker approves or rejects it. The rules are in
//! [`crate::domain::overrides`]; here they run against the stored rating, inside the store's
//! write, and an approval announces the new effective grade.

use chrono::Utc;
use credit_core::approval::Progress;
use credit_core::{Actor, Principal, Role, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::sql::IdempotencyKey;

use super::chains;
use super::models::published_model;
use super::rater::{Rater, rating_changed};
use crate::domain::overrides::{self, next_review_date};
use crate::domain::rating::{ApprovalStatus, OverrideKind, Rating, RatingOverride};
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
    // Checked first, so that bad input is refused before limits is asked for the chain.
    let checked = overrides::propose(
        &scale,
        &rating.model_grade,
        &rating.grade,
        request.proposed_grade,
        request.justification,
    )?;
    let chain = rater
        .chains()
        .override_chain(&proposer, &rating.customer_id, checked.notches)
        .await?;
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
            kind: OverrideKind::Override,
            approval_chain: chain.clone().map(Box::new),
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
            chain = proposal.approval_chain.as_ref().map_or("", |chain| chain.rule_id.as_str()),
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
    let now = Utc::now();
    let decide = |pending: &RatingOverride,
                  current: &Rating|
     -> Result<
        (RatingOverride, Option<EffectiveGrade>, Option<pb::Event>),
        ServiceError,
    > {
        // With a chain this verdict decides the step that waits, and only the last approving
        // step makes the grade effective; without one, one checker decides.
        let (status, chain) = match &pending.approval_chain {
            Some(chain) => {
                let (walked, progress) = chains::walk(
                    chain,
                    principal,
                    decision.approve,
                    decision.comment,
                    now,
                    "OVERRIDE_NOT_PENDING",
                )?;
                let status = match progress {
                    Progress::Approved => ApprovalStatus::Approved,
                    Progress::Rejected => ApprovalStatus::Rejected,
                    Progress::Advanced | Progress::Returned => ApprovalStatus::Pending,
                };
                (status, Some(Box::new(walked)))
            }
            None => {
                overrides::check_decider(
                    principal,
                    pending.proposed_by.as_ref(),
                    required_role(pending),
                )?;
                let status = if decision.approve {
                    ApprovalStatus::Approved
                } else {
                    ApprovalStatus::Rejected
                };
                (status, None)
            }
        };
        let decided = if status == ApprovalStatus::Pending {
            RatingOverride {
                approval_chain: chain,
                ..pending.clone()
            }
        } else {
            RatingOverride {
                status,
                decided_by: Some(checker.clone()),
                decided_at: Some(now),
                decision_comment: decision.comment.to_owned(),
                approval_chain: chain,
                ..pending.clone()
            }
        };
        if status != ApprovalStatus::Approved {
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
            .map_or_else(|| now.date_naive(), |time| time.date_naive());
        let effective = EffectiveGrade {
            grade: grade.code.clone(),
            grade_rank: i32::try_from(grade.rank).unwrap_or(i32::MAX),
            pd: grade.pd.to_string(),
            // An approved new grade is the model's own: nothing overrides it.
            override_id: match pending.kind {
                OverrideKind::Override => pending.override_id.clone(),
                OverrideKind::GradeApproval => String::new(),
            },
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
