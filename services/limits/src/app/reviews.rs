//! Reviews after a grade change: rating moved a customer to another grade, so a credit
//! manager reviews its limit, terms and monitoring (a downgrade past the grade's maximum has
//! also drafted a limit cut, decided through its own chain). The review is opened by the
//! RatingChanged consumer, once per event, and walked through the matrix's CREDIT_REVIEW chain
//! from the people's queues; approving it records that the review was done.

use chrono::{DateTime, Utc};
use credit_core::approval::{Chain, DecisionKind, Figures, Verdict, shipped_matrix};
use credit_core::{Principal, ServiceError};
use credit_runtime::sql::IdempotencyKey;

use crate::api::convert::step_decided_event;
use crate::domain::limits::LimitRequest;
use crate::domain::review::{CreditReview, GradeMove};

use super::approvals::StepAction;
use super::{CreditAdmin, new_id, system_actor};

/// The grade change a review follows, as RatingChanged announced it.
#[derive(Debug, Clone, Copy)]
pub struct GradeChange<'a> {
    pub customer_id: &'a str,
    pub previous_grade: &'a str,
    pub grade: &'a str,
    pub rating_id: &'a str,
    pub event_id: &'a str,
}

impl CreditAdmin {
    /// Opens the review of a grade change (once per event; `None` for a first grade or the
    /// same grade again), noting the limit cut the change drafted, if any.
    pub async fn open_review_after_grade_change(
        &self,
        change: GradeChange<'_>,
        limit_cut: Option<&LimitRequest>,
    ) -> Result<Option<CreditReview>, ServiceError> {
        let policy = self.hot.stored_policy().await?;
        let Some(grade_move) = GradeMove::between(&policy, change.previous_grade, change.grade)
        else {
            return Ok(None);
        };
        let now = Utc::now();
        let figures = Figures {
            grade: Some(change.grade.to_owned()),
            ..Figures::default()
        };
        let (version, matrix) = self.matrix_in_force(now).await?;
        // A matrix published before reviews existed has no CREDIT_REVIEW rule: the shipped
        // one applies (version 0).
        let shipped = shipped_matrix(self.hot.base_currency());
        let (version, rule) = match matrix.chain_rule(DecisionKind::CreditReview, &figures) {
            Some(rule) => (version, rule),
            None => (
                0,
                shipped
                    .chain_rule(DecisionKind::CreditReview, &figures)
                    .ok_or_else(|| ServiceError::internal("the shipped matrix has no review"))?,
            ),
        };
        let review = CreditReview {
            review_id: new_id("rev"),
            customer_id: change.customer_id.to_owned(),
            grade_move,
            previous_grade: change.previous_grade.to_owned(),
            grade: change.grade.to_owned(),
            rating_id: change.rating_id.to_owned(),
            limit_cut_request_id: limit_cut.map(|request| request.id.clone()),
            opened_at: now,
            chain: Chain::start(rule, version, system_actor(), None),
        };
        self.store
            .open_review(&review, change.event_id)
            .await
            .map(Some)
            .map_err(ServiceError::from)
    }

    /// A verdict on step `step_index` of a review's chain: approve (the review was done),
    /// or reject (dismissed, with a note). A review has no maker to return it to.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn decide_review_step(
        &self,
        principal: &Principal,
        review_id: &str,
        step_index: usize,
        action: StepAction,
        note: &str,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<CreditReview, ServiceError> {
        if matches!(
            action,
            StepAction::Decide(Verdict::Return) | StepAction::Resubmit
        ) {
            return Err(ServiceError::invalid(
                "verdict",
                "a review after a grade change is approved (done) or rejected (dismissed): the system opened it, there is nobody to return it to",
            ));
        }
        let mut review = self
            .store
            .review(review_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("credit review", review_id))?;
        let expected_trail = review.chain.trail.len();
        let as_stored = review.clone();
        if let Err(refused) = action.apply(&mut review.chain, principal, step_index, note, now) {
            // A retry of a verdict already recorded is answered with the review as it is.
            if self
                .store
                .recorded_under(key)
                .await
                .map_err(ServiceError::from)?
                .is_some()
            {
                return Ok(as_stored);
            }
            return Err(refused.into());
        }
        let step_event = step_decided_event(
            &review.chain,
            &review.review_id,
            &review.customer_id,
            &key.request_id,
        );
        self.store
            .decide_review(&review, expected_trail, key, step_event.as_ref(), now)
            .await
            .map(|outcome| outcome.into_inner())
            .map_err(ServiceError::from)
    }
}
