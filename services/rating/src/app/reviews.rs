//! Scheduled reviews: re-rating the customers whose review date has come, for the
//! RunScheduledReviews call and the daily [`crate::events::ReviewScheduler`] alike.

use chrono::{NaiveDate, Utc};
use credit_core::{Actor, ServiceError};
use credit_runtime::sql::IdempotencyKey;

use super::rater::{RateRequest, Rater, SYSTEM_RATER};
use crate::domain::inputs::QualitativeInputs;
use crate::domain::rating::{RatingTrigger, ReviewFailure, ReviewResult, ReviewRun};

/// The operation a run's per-customer keys are derived under.
const RUN_SCHEDULED_REVIEWS: &str = "RunScheduledReviews";

/// Who re-rates on schedule and on other services' events.
pub fn system_actor() -> Actor {
    Actor::named(SYSTEM_RATER)
}

/// Re-rates the customers due on `as_of` (at most `limit`), each on its own: one failure does
/// not stop the others. A retry of the same key answers the first run's results.
pub async fn run_reviews(
    rater: &Rater,
    key: &IdempotencyKey,
    as_of: NaiveDate,
    limit: usize,
) -> Result<ReviewRun, ServiceError> {
    let ratings = rater.ratings();
    if let Some(run) = ratings.review_run(key).await.map_err(ServiceError::from)? {
        return Ok(run);
    }
    let due = ratings
        .due_ratings(as_of, None, i64::try_from(limit).unwrap_or(i64::MAX))
        .await
        .map_err(ServiceError::from)?;
    let mut run = ReviewRun::default();
    for due in due {
        let request = RateRequest {
            customer_id: due.customer_id.clone(),
            qualitative: QualitativeInputs::default(),
            model_id: None,
            note: String::new(),
            trigger: RatingTrigger::ScheduledReview,
            rated_by: system_actor(),
            // One key per customer of the run, so a crash halfway resumes without rating
            // anyone twice.
            key: key.derived(
                format!("review:{}:{}", key.request_id, due.customer_id),
                RUN_SCHEDULED_REVIEWS,
                key.fingerprint.clone(),
            ),
        };
        let result = match rater.rate(&request, Utc::now()).await {
            Ok(outcome) => {
                run.rerated_count += 1;
                let rating = outcome.into_inner().rating;
                ReviewResult {
                    customer_id: due.customer_id,
                    rating_id: rating.rating_id,
                    previous_grade: due.grade,
                    grade: rating.grade,
                    error: None,
                }
            }
            Err(error) => {
                run.failed_count += 1;
                tracing::warn!(customer_id = %due.customer_id, error = %error, "scheduled review failed");
                ReviewResult {
                    customer_id: due.customer_id,
                    previous_grade: due.grade.clone(),
                    grade: due.grade,
                    error: Some(failure_reason(&error)),
                    ..Default::default()
                }
            }
        };
        run.results.push(result);
    }
    ratings
        .save_review_run(key, &run)
        .await
        .map_err(ServiceError::from)?;
    Ok(run)
}

/// Why one customer of a run failed, as a stable code and a message without internals.
fn failure_reason(error: &ServiceError) -> ReviewFailure {
    let (code, message) = match error {
        ServiceError::NotFound { .. } => ("CUSTOMER_NOT_FOUND", error.to_string()),
        ServiceError::FailedPrecondition {
            reason, message, ..
        } => (*reason, message.clone()),
        ServiceError::Unavailable { message, .. } => ("UNAVAILABLE", (*message).to_owned()),
        _ => ("INTERNAL", "internal error".to_owned()),
    };
    ReviewFailure {
        code: code.to_owned(),
        message,
    }
}
