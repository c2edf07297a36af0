//! The handlers about customer ratings: rating, reading, the report, overrides (maker and
//! checker) and reviews. Each turns the request into domain values, lets the domain or the
//! [`Rater`] decide, and answers; the rules live in `domain`.

use chrono::{DateTime, NaiveDate, Utc};
use credit_core::{Principal, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::sql::{IdempotencyKey, Page};

use super::{RatingApi, idempotency_key, store_error};
use crate::credit_file::{from_date, to_date};
use crate::domain::inputs::QualitativeInputs;
use crate::domain::overrides::{self, days_overdue, next_review_date};
use crate::domain::{MasterScale, ModelId};
use crate::rater::{RateRequest, SYSTEM_RATER, rating_changed, timestamp};
use crate::store::{DueRating, EffectiveGrade, Outcome, OverrideFilter, RecordedRating};
use credit_core::both;

pub(super) const RATE_CUSTOMER: &str = "RateCustomer";
const PROPOSE_OVERRIDE: &str = "ProposeOverride";
const DECIDE_OVERRIDE: &str = "DecideOverride";
const RUN_SCHEDULED_REVIEWS: &str = "RunScheduledReviews";
/// Grade history entries a report shows.
const REPORT_HISTORY: i64 = 50;
/// Customers one RunScheduledReviews call re-rates at most when the caller sets no limit.
const MAX_REVIEWS_PER_RUN: usize = 500;

impl RatingApi {
    pub(super) async fn rate_customer_now(
        &self,
        principal: &Principal,
        request: pb::RateCustomerRequest,
    ) -> Result<pb::RateCustomerResponse, ServiceError> {
        let key = idempotency_key(&request.request_id, RATE_CUSTOMER, &request);
        let customer_id = required_id("customer_id", &request.customer_id);
        let qualitative = QualitativeInputs::parse(&request.qualitative_inputs);
        let model_id = match request.model_id.trim() {
            "" => Ok(None),
            text => ModelId::parse(text)
                .map(Some)
                .map_err(|error| ServiceError::invalid("model_id", error.to_string())),
        };
        let note = bounded_text("note", &request.note, MAX_NOTE_LEN);
        let ((key, customer_id), ((qualitative, model_id), note)) = both(
            both(key, customer_id),
            both(both(qualitative, model_id), note),
        )?;
        let outcome = self
            .rater
            .rate(
                &RateRequest {
                    customer_id,
                    qualitative,
                    model_id,
                    note,
                    trigger: pb::RatingTrigger::Manual,
                    rated_by: actor_of(principal),
                    key,
                },
                Utc::now(),
            )
            .await?;
        let RecordedRating { rating, previous } = outcome.into_inner();
        Ok(pb::RateCustomerResponse {
            grade_changed: previous.is_none_or(|previous| previous.grade != rating.grade),
            rating: Some(rating),
        })
    }

    pub(super) async fn rating_by_lookup(
        &self,
        request: &pb::GetRatingRequest,
    ) -> Result<pb::Rating, ServiceError> {
        use pb::get_rating_request::Lookup;
        match &request.lookup {
            Some(Lookup::RatingId(rating_id)) => {
                let rating_id = required_id("rating_id", rating_id)?;
                self.stored_rating(&rating_id).await
            }
            Some(Lookup::CustomerId(customer_id)) => {
                let customer_id = required_id("customer_id", customer_id)?;
                self.current_rating(&customer_id).await
            }
            None => Err(ServiceError::invalid(
                "lookup",
                "give rating_id or customer_id",
            )),
        }
    }

    pub(super) async fn rating_history_page(
        &self,
        request: &pb::ListRatingHistoryRequest,
    ) -> Result<pb::ListRatingHistoryResponse, ServiceError> {
        let (customer_id, page) = both(
            required_id("customer_id", &request.customer_id),
            Page::parse(request.page_size, &request.page_token),
        )?;
        let mut ratings = self
            .rater
            .ratings()
            .rating_history(&customer_id, page.after.as_deref(), page.fetch_limit())
            .await
            .map_err(store_error)?;
        let next_page_token = page.finish(&mut ratings, |rating| &rating.rating_id);
        Ok(pb::ListRatingHistoryResponse {
            ratings,
            next_page_token,
        })
    }

    /// The report on a customer's rating (the current one unless named).
    pub(super) async fn rating_report(
        &self,
        request: &pb::GetRatingReportRequest,
    ) -> Result<pb::RatingReport, ServiceError> {
        let customer_id = required_id("customer_id", &request.customer_id)?;
        let rating = match request.rating_id.trim() {
            "" => self.current_rating(&customer_id).await?,
            rating_id => {
                let rating = self.stored_rating(rating_id).await?;
                if rating.customer_id != customer_id {
                    return Err(ServiceError::not_found(
                        "rating",
                        format!("{rating_id} of customer {customer_id}"),
                    ));
                }
                rating
            }
        };
        let now = Utc::now();
        let file = self
            .rater
            .files()
            .credit_file(&customer_id, now.date_naive())
            .await?;
        let ratings = self.rater.ratings();
        let history = ratings
            .rating_history(&customer_id, None, REPORT_HISTORY)
            .await
            .map_err(store_error)?;
        let overrides = ratings
            .list_overrides(
                &OverrideFilter {
                    customer_id: customer_id.clone(),
                    ..OverrideFilter::default()
                },
                None,
                REPORT_HISTORY,
            )
            .await
            .map_err(store_error)?;
        let model_display_name = match ModelId::parse(&rating.model_id) {
            Ok(model_id) => self
                .published_model(&model_id, u32::try_from(rating.model_version).ok())
                .await
                .map(|published| published.model.display_name().to_owned())
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        let customer = &file.customer;
        let (industry_code, founding_date) = match &customer.details {
            Some(pb::customer::Details::Enterprise(enterprise)) => {
                (enterprise.industry_code.clone(), enterprise.founding_date)
            }
            _ => (String::new(), None),
        };
        // The statement and bureau report the rating used, when intake still has them on top.
        Ok(pb::RatingReport {
            customer: Some(pb::RatedCustomerSummary {
                customer_id: customer.customer_id.clone(),
                kind: customer.kind,
                display_name: customer.display_name.clone(),
                country: customer.country.clone(),
                industry_code,
                status: customer.status,
                group_id: customer.group_id.clone(),
                group_name: file.group_name.clone(),
                founding_date,
            }),
            model_display_name,
            statements: file.statements.clone(),
            bureau_report: file.bureau_report.clone(),
            trade_references: file.trade_references.clone(),
            grade_history: history.iter().map(grade_history_entry).collect(),
            overrides,
            generated_at: Some(timestamp(now)),
            rating: Some(rating),
        })
    }

    pub(super) async fn propose_override_now(
        &self,
        principal: &Principal,
        request: pb::ProposeOverrideRequest,
    ) -> Result<pb::RatingOverride, ServiceError> {
        let key = idempotency_key(&request.request_id, PROPOSE_OVERRIDE, &request);
        let rating_id = required_id("rating_id", &request.rating_id);
        let (key, rating_id) = both(key, rating_id)?;
        let rating = self.stored_rating(&rating_id).await?;
        let scale = self.scale_of(&rating).await?;
        let proposer = actor_of(principal);
        let build = |current: &pb::Rating| {
            let proposal = overrides::propose(
                &scale,
                &current.model_grade,
                &current.grade,
                &request.proposed_grade,
                &request.justification,
            )?;
            Ok(pb::RatingOverride {
                override_id: format!("ovr_{}", uuid::Uuid::now_v7().simple()),
                rating_id: current.rating_id.clone(),
                customer_id: current.customer_id.clone(),
                model_grade: current.model_grade.clone(),
                proposed_grade: proposal.proposed_grade,
                notches: proposal.notches,
                justification: proposal.justification,
                status: pb::ApprovalStatus::Pending.into(),
                required_role: role_to_proto(proposal.required_role).into(),
                proposed_by: Some(proposer.clone()),
                proposed_at: Some(timestamp(Utc::now())),
                ..Default::default()
            })
        };
        let outcome = self
            .rater
            .ratings()
            .propose_override(&rating_id, &key, &build)
            .await
            .map_err(store_error)?;
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

    pub(super) async fn decide_override_now(
        &self,
        principal: &Principal,
        request: pb::DecideOverrideRequest,
    ) -> Result<pb::DecideOverrideResponse, ServiceError> {
        let key = idempotency_key(&request.request_id, DECIDE_OVERRIDE, &request);
        let override_id = required_id("override_id", &request.override_id);
        let approve = match pb::ApprovalDecision::try_from(request.decision) {
            Ok(pb::ApprovalDecision::Approve) => Ok(true),
            Ok(pb::ApprovalDecision::Reject) => Ok(false),
            _ => Err(ServiceError::invalid(
                "decision",
                "is required: APPROVE or REJECT",
            )),
        };
        let comment = bounded_text(
            "comment",
            &request.comment,
            overrides::MAX_JUSTIFICATION_LEN,
        )
        .and_then(|comment| match approve {
            Ok(false) if comment.is_empty() => Err(ServiceError::invalid(
                "comment",
                "is required to reject: say why",
            )),
            _ => Ok(comment),
        });
        let ((key, override_id), (approve, comment)) =
            both(both(key, override_id), both(approve, comment))?;
        let proposal = self
            .rater
            .ratings()
            .rating_override(&override_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("override", &override_id))?;
        let rating = self.stored_rating(&proposal.rating_id).await?;
        let scale = self.scale_of(&rating).await?;
        let checker = actor_of(principal);
        let decide = |pending: &pb::RatingOverride, current: &pb::Rating| {
            let proposer = pending
                .proposed_by
                .as_ref()
                .map(|actor| actor.principal.as_str())
                .unwrap_or_default();
            overrides::check_decider(principal, proposer, required_role(pending))?;
            let decided = pb::RatingOverride {
                status: if approve {
                    pb::ApprovalStatus::Approved
                } else {
                    pb::ApprovalStatus::Rejected
                }
                .into(),
                decided_by: Some(checker.clone()),
                decided_at: Some(timestamp(Utc::now())),
                decision_comment: comment.clone(),
                ..pending.clone()
            };
            if !approve {
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
                .as_ref()
                .and_then(|time| DateTime::from_timestamp(time.seconds, 0))
                .map_or_else(|| Utc::now().date_naive(), |time| time.date_naive());
            let effective = EffectiveGrade {
                grade: grade.code.clone(),
                grade_rank: i32::try_from(grade.rank).unwrap_or(i32::MAX),
                pd: grade.pd.to_string(),
                override_id: pending.override_id.clone(),
                next_review_date: next_review_date(rated_on, grade),
            };
            let after = pb::Rating {
                grade: effective.grade.clone(),
                grade_rank: effective.grade_rank,
                pd: effective.pd.clone(),
                override_id: effective.override_id.clone(),
                next_review_date: Some(to_date(effective.next_review_date)),
                ..current.clone()
            };
            let event = rating_changed(&after, &current.grade, &checker, &key.request_id);
            Ok((decided, Some(effective), Some(event)))
        };
        let outcome = self
            .rater
            .ratings()
            .decide_override(&override_id, &key, &decide)
            .await
            .map_err(store_error)?;
        if let Outcome::New((decided, rating)) = &outcome {
            tracing::info!(
                override_id = %decided.override_id,
                status = crate::store::status_name(decided.status),
                grade = %rating.grade,
                decided_by = %principal.name,
                "override decided"
            );
        }
        let (rating_override, rating) = outcome.into_inner();
        Ok(pb::DecideOverrideResponse {
            rating_override: Some(rating_override),
            rating: Some(rating),
        })
    }

    pub(super) async fn overrides_page(
        &self,
        request: &pb::ListOverridesRequest,
    ) -> Result<pb::ListOverridesResponse, ServiceError> {
        let status = match pb::ApprovalStatus::try_from(request.status) {
            Ok(pb::ApprovalStatus::Unspecified) => Ok(String::new()),
            Ok(status) => Ok(crate::store::status_name(status.into()).to_owned()),
            Err(_) => Err(ServiceError::invalid(
                "status",
                format!("unknown value {}", request.status),
            )),
        };
        let (status, page) = both(status, Page::parse(request.page_size, &request.page_token))?;
        let filter = OverrideFilter {
            status,
            customer_id: request.customer_id.trim().to_owned(),
        };
        let mut found = self
            .rater
            .ratings()
            .list_overrides(&filter, page.after.as_deref(), page.fetch_limit())
            .await
            .map_err(store_error)?;
        let next_page_token = page.finish(&mut found, |found| &found.override_id);
        Ok(pb::ListOverridesResponse {
            overrides: found,
            next_page_token,
        })
    }

    pub(super) async fn due_reviews_page(
        &self,
        request: &pb::ListDueReviewsRequest,
    ) -> Result<pb::ListDueReviewsResponse, ServiceError> {
        let as_of = as_of_date("as_of_date", request.as_of_date.as_ref());
        let page = Page::parse(request.page_size, &request.page_token).and_then(|page| {
            let after = match page.after.as_deref() {
                None => None,
                Some(key) => Some(DueRating::parse_cursor(key).ok_or_else(|| {
                    ServiceError::invalid("page_token", "is not a token this service issued")
                })?),
            };
            Ok((page, after))
        });
        let (as_of, (page, after)) = both(as_of, page)?;
        let mut due = self
            .rater
            .ratings()
            .due_ratings(as_of, after.as_ref(), page.fetch_limit())
            .await
            .map_err(store_error)?;
        let mut keyed: Vec<(String, DueRating)> =
            due.drain(..).map(|due| (due.cursor(), due)).collect();
        let next_page_token = page.finish(&mut keyed, |(key, _)| key);
        Ok(pb::ListDueReviewsResponse {
            reviews: keyed
                .into_iter()
                .map(|(_, due)| due_review(due, as_of))
                .collect(),
            next_page_token,
        })
    }

    pub(super) async fn run_scheduled_reviews_now(
        &self,
        request: pb::RunScheduledReviewsRequest,
    ) -> Result<pb::RunScheduledReviewsResponse, ServiceError> {
        let key = idempotency_key(&request.request_id, RUN_SCHEDULED_REVIEWS, &request);
        let as_of = as_of_date("as_of_date", request.as_of_date.as_ref());
        let limit = usize::try_from(request.max_customers)
            .map_err(|_| ServiceError::invalid("max_customers", "must not be negative"))
            .map(|limit| match limit {
                0 => MAX_REVIEWS_PER_RUN,
                limit => limit.min(MAX_REVIEWS_PER_RUN),
            });
        let (key, (as_of, limit)) = both(key, both(as_of, limit))?;
        run_reviews(self, &key, as_of, limit).await
    }

    async fn stored_rating(&self, rating_id: &str) -> Result<pb::Rating, ServiceError> {
        self.rater
            .ratings()
            .rating(rating_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("rating", rating_id))
    }

    async fn current_rating(&self, customer_id: &str) -> Result<pb::Rating, ServiceError> {
        self.rater
            .ratings()
            .current_rating(customer_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::NotFound {
                resource: "rating of customer",
                id: customer_id.to_owned(),
            })
    }

    /// The master scale of the model version that scored `rating`.
    async fn scale_of(&self, rating: &pb::Rating) -> Result<MasterScale, ServiceError> {
        let model_id = ModelId::parse(&rating.model_id).map_err(|error| {
            ServiceError::internal(format!("rating {}: {error}", rating.rating_id))
        })?;
        let version = u32::try_from(rating.model_version).ok();
        Ok(self
            .published_model(&model_id, version)
            .await?
            .model
            .master_scale()
            .clone())
    }
}

/// Re-rates the customers due on `as_of` (at most `limit`), each on its own: one failure does
/// not stop the others. A retry of the same key answers the first run's results.
pub(crate) async fn run_reviews(
    api: &RatingApi,
    key: &IdempotencyKey,
    as_of: NaiveDate,
    limit: usize,
) -> Result<pb::RunScheduledReviewsResponse, ServiceError> {
    let ratings = api.rater.ratings();
    if let Some(response) = ratings.review_run(key).await.map_err(store_error)? {
        return Ok(response);
    }
    let due = ratings
        .due_ratings(as_of, None, i64::try_from(limit).unwrap_or(i64::MAX))
        .await
        .map_err(store_error)?;
    let mut response = pb::RunScheduledReviewsResponse::default();
    for due in due {
        let request = RateRequest {
            customer_id: due.customer_id.clone(),
            qualitative: QualitativeInputs::default(),
            model_id: None,
            note: String::new(),
            trigger: pb::RatingTrigger::ScheduledReview,
            rated_by: system_actor(),
            // One key per customer of the run, so a crash halfway resumes without rating
            // anyone twice.
            key: IdempotencyKey {
                request_id: format!("review:{}:{}", key.request_id, due.customer_id),
                operation: RUN_SCHEDULED_REVIEWS,
                fingerprint: key.fingerprint.clone(),
            },
        };
        let result = match api.rater.rate(&request, Utc::now()).await {
            Ok(outcome) => {
                response.rerated_count += 1;
                let rating = outcome.into_inner().rating;
                pb::ScheduledReviewResult {
                    customer_id: due.customer_id,
                    rating_id: rating.rating_id,
                    previous_grade: due.grade,
                    grade: rating.grade,
                    error: None,
                }
            }
            Err(error) => {
                response.failed_count += 1;
                tracing::warn!(customer_id = %due.customer_id, error = %error, "scheduled review failed");
                pb::ScheduledReviewResult {
                    customer_id: due.customer_id,
                    previous_grade: due.grade.clone(),
                    grade: due.grade,
                    error: Some(failure_reason(&error)),
                    ..Default::default()
                }
            }
        };
        response.results.push(result);
    }
    ratings
        .save_review_run(key, &response)
        .await
        .map_err(store_error)?;
    Ok(response)
}

/// Why one customer of a run failed, as a stable code and a message without internals.
fn failure_reason(error: &ServiceError) -> pb::Reason {
    let (code, message) = match error {
        ServiceError::NotFound { .. } => ("CUSTOMER_NOT_FOUND", error.to_string()),
        ServiceError::FailedPrecondition {
            reason, message, ..
        } => (*reason, message.clone()),
        ServiceError::Unavailable { message, .. } => ("UNAVAILABLE", (*message).to_owned()),
        _ => ("INTERNAL", "internal error".to_owned()),
    };
    pb::Reason {
        code: code.to_owned(),
        message,
        ..Default::default()
    }
}

fn due_review(due: DueRating, as_of: NaiveDate) -> pb::DueReview {
    pb::DueReview {
        days_overdue: i32::try_from(days_overdue(due.next_review_date, as_of)).unwrap_or(i32::MAX),
        next_review_date: Some(to_date(due.next_review_date)),
        customer_id: due.customer_id,
        rating_id: due.rating_id,
        grade: due.grade,
    }
}

fn grade_history_entry(rating: &pb::Rating) -> pb::GradeHistoryEntry {
    pb::GradeHistoryEntry {
        rating_id: rating.rating_id.clone(),
        rated_at: rating.rated_at,
        score: rating.score.clone(),
        model_grade: rating.model_grade.clone(),
        grade: rating.grade.clone(),
        pd: rating.pd.clone(),
        overridden: !rating.override_id.is_empty(),
        trigger: rating.trigger,
    }
}

/// The role an override needs (stored on it when proposed).
fn required_role(proposal: &pb::RatingOverride) -> credit_core::Role {
    match pb::Role::try_from(proposal.required_role) {
        Ok(pb::Role::Admin) => credit_core::Role::Admin,
        _ => overrides::required_role(proposal.notches),
    }
}

fn role_to_proto(role: credit_core::Role) -> pb::Role {
    pb::Role::from_str_name(&format!("ROLE_{}", role.as_str())).unwrap_or(pb::Role::Unspecified)
}

pub(crate) fn actor_of(principal: &Principal) -> pb::Actor {
    pb::Actor {
        principal: principal.name.clone(),
        roles: principal
            .roles
            .iter()
            .map(|role| role_to_proto(*role).into())
            .collect(),
    }
}

pub(crate) fn system_actor() -> pb::Actor {
    pb::Actor {
        principal: SYSTEM_RATER.to_owned(),
        roles: Vec::new(),
    }
}

const MAX_ID_LEN: usize = 100;
const MAX_NOTE_LEN: usize = 2_000;

fn required_id(field: &str, value: &str) -> Result<String, ServiceError> {
    credit_core::required_text(field, value, MAX_ID_LEN)
}

fn bounded_text(field: &str, value: &str, max: usize) -> Result<String, ServiceError> {
    credit_core::optional_text(field, value, max)
}

/// A requested as-of date; unset is today (UTC).
fn as_of_date(field: &str, date: Option<&pb::Date>) -> Result<NaiveDate, ServiceError> {
    match date {
        None => Ok(Utc::now().date_naive()),
        Some(date) => from_date(date)
            .ok_or_else(|| ServiceError::invalid(field, "is not a valid calendar date")),
    }
}
