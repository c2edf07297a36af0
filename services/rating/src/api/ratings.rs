//! The handlers about customer ratings: rating, reading, the report, overrides (maker and
//! checker) and reviews. Each checks the request's fields, hands domain values to a use case in
//! `app`, and answers in the contract's messages; the rules live in `domain`.

use chrono::{NaiveDate, Utc};
use credit_core::{Actor, Principal, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::sql::Page;

use super::convert;
use super::{RatingApi, idempotency_key};
use crate::api::convert::rating::stale_input_to_proto;
use crate::app::credit_file::{from_date, to_date};
use crate::app::overrides::{
    OverrideDecision, OverrideProposalRequest, decide_override, propose_override,
};
use crate::app::rater::RateRequest;
use crate::app::report::gather_report;
use crate::app::reviews::run_reviews;
use crate::domain::ModelId;
use crate::domain::inputs::QualitativeInputs;
use crate::domain::overrides::{self, days_overdue};
use crate::domain::rating::{Rating, RatingTrigger};
use crate::store::{DueRating, OverrideFilter, RecordedRating, dated_key};
use credit_core::both;

pub(super) const RATE_CUSTOMER: &str = "RateCustomer";
const PROPOSE_OVERRIDE: &str = "ProposeOverride";
const DECIDE_OVERRIDE: &str = "DecideOverride";
const RUN_SCHEDULED_REVIEWS: &str = "RunScheduledReviews";
/// Customers one RunScheduledReviews call re-rates at most when the caller sets no limit.
const MAX_REVIEWS_PER_RUN: usize = 500;

impl RatingApi {
    pub(super) async fn rate_customer_now(
        &self,
        principal: &Principal,
        request: pb::RateCustomerRequest,
    ) -> Result<pb::RateCustomerResponse, ServiceError> {
        let key = idempotency_key(principal, &request.request_id, RATE_CUSTOMER, &request);
        let customer_id = required_id("customer_id", &request.customer_id);
        let qualitative =
            QualitativeInputs::parse(&request.qualitative_inputs).map_err(ServiceError::from);
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
                    trigger: RatingTrigger::Manual,
                    rated_by: Actor::of(principal),
                    key,
                },
                Utc::now(),
            )
            .await?;
        let RecordedRating { rating, previous } = outcome.into_inner();
        Ok(pb::RateCustomerResponse {
            grade_changed: previous.is_none_or(|previous| previous.grade != rating.grade),
            rating: Some(pb::Rating::from(&rating)),
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
                Ok(pb::Rating::from(
                    &self.rater.stored_rating(&rating_id).await?,
                ))
            }
            Some(Lookup::CustomerId(customer_id)) => {
                let customer_id = required_id("customer_id", customer_id)?;
                Ok(pb::Rating::from(
                    &self.rater.current_rating(&customer_id).await?,
                ))
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
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut ratings, |rating| &rating.rating_id);
        Ok(pb::ListRatingHistoryResponse {
            ratings: ratings.iter().map(pb::Rating::from).collect(),
            next_page_token,
        })
    }

    /// The report on a customer's rating (the current one unless named).
    pub(super) async fn rating_report(
        &self,
        request: &pb::GetRatingReportRequest,
    ) -> Result<pb::RatingReport, ServiceError> {
        let customer_id = required_id("customer_id", &request.customer_id)?;
        gather_report(
            &self.rater,
            self.store.as_ref(),
            &customer_id,
            &request.rating_id,
        )
        .await
    }

    pub(super) async fn propose_override_now(
        &self,
        principal: &Principal,
        request: pb::ProposeOverrideRequest,
    ) -> Result<pb::RatingOverride, ServiceError> {
        let key = idempotency_key(principal, &request.request_id, PROPOSE_OVERRIDE, &request);
        let rating_id = required_id("rating_id", &request.rating_id);
        let (key, rating_id) = both(key, rating_id)?;
        let proposal = propose_override(
            &self.rater,
            self.store.as_ref(),
            principal,
            &key,
            &OverrideProposalRequest {
                rating_id: &rating_id,
                proposed_grade: &request.proposed_grade,
                justification: &request.justification,
            },
        )
        .await?;
        Ok(pb::RatingOverride::from(&proposal))
    }

    pub(super) async fn decide_override_now(
        &self,
        principal: &Principal,
        request: pb::DecideOverrideRequest,
    ) -> Result<pb::DecideOverrideResponse, ServiceError> {
        let key = idempotency_key(principal, &request.request_id, DECIDE_OVERRIDE, &request);
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
        let (rating_override, rating) = decide_override(
            &self.rater,
            self.store.as_ref(),
            principal,
            &key,
            &OverrideDecision {
                override_id: &override_id,
                approve,
                comment: &comment,
            },
        )
        .await?;
        Ok(pb::DecideOverrideResponse {
            rating_override: Some(pb::RatingOverride::from(&rating_override)),
            rating: Some(pb::Rating::from(&rating)),
        })
    }

    pub(super) async fn overrides_page(
        &self,
        request: &pb::ListOverridesRequest,
    ) -> Result<pb::ListOverridesResponse, ServiceError> {
        let status = match pb::ApprovalStatus::try_from(request.status) {
            Ok(pb::ApprovalStatus::Unspecified) => Ok(String::new()),
            Ok(status) => Ok(convert::rating::status_from_proto(status.into())
                .stored_name()
                .to_owned()),
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
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut found, |found| &found.override_id);
        Ok(pb::ListOverridesResponse {
            overrides: found.iter().map(pb::RatingOverride::from).collect(),
            next_page_token,
        })
    }

    pub(super) async fn due_reviews_page(
        &self,
        request: &pb::ListDueReviewsRequest,
    ) -> Result<pb::ListDueReviewsResponse, ServiceError> {
        let as_of = as_of_date("as_of_date", request.as_of_date.as_ref());
        let page = dated_page(request.page_size, &request.page_token);
        let (as_of, (page, after)) = both(as_of, page)?;
        let mut due = self
            .rater
            .ratings()
            .due_ratings(as_of, after.as_ref(), page.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
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

    /// The file reviews due: current ratings whose inputs are stale or go stale within the
    /// policy's notice.
    pub(super) async fn file_reviews_page(
        &self,
        request: &pb::ListFileReviewsRequest,
    ) -> Result<pb::ListFileReviewsResponse, ServiceError> {
        let page = dated_page(request.page_size, &request.page_token);
        let (page, after) = page?;
        let rules = self.rater.chains().freshness_rules().await?;
        let today = chrono::Utc::now().date_naive();
        let through = today
            .checked_add_days(chrono::Days::new(u64::from(rules.notice_days)))
            .unwrap_or(today);
        let ratings = self
            .rater
            .ratings()
            .file_reviews(
                through,
                request.customer_id.trim(),
                after.as_ref(),
                page.fetch_limit(),
            )
            .await
            .map_err(ServiceError::from)?;
        let mut keyed: Vec<(String, pb::FileReview)> = ratings
            .iter()
            .filter_map(|rating| {
                let review_on = rating.file_review_on()?;
                let key = dated_key(review_on, &rating.customer_id);
                Some((key, file_review(rating, review_on, today)))
            })
            .collect();
        let next_page_token = page.finish(&mut keyed, |(key, _)| key);
        Ok(pb::ListFileReviewsResponse {
            reviews: keyed.into_iter().map(|(_, review)| review).collect(),
            next_page_token,
        })
    }

    pub(super) async fn run_scheduled_reviews_now(
        &self,
        principal: &Principal,
        request: pb::RunScheduledReviewsRequest,
    ) -> Result<pb::RunScheduledReviewsResponse, ServiceError> {
        let key = idempotency_key(
            principal,
            &request.request_id,
            RUN_SCHEDULED_REVIEWS,
            &request,
        );
        let as_of = as_of_date("as_of_date", request.as_of_date.as_ref());
        let limit = usize::try_from(request.max_customers)
            .map_err(|_| ServiceError::invalid("max_customers", "must not be negative"))
            .map(|limit| match limit {
                0 => MAX_REVIEWS_PER_RUN,
                limit => limit.min(MAX_REVIEWS_PER_RUN),
            });
        let (key, (as_of, limit)) = both(key, both(as_of, limit))?;
        let run = run_reviews(&self.rater, &key, as_of, limit).await?;
        Ok(pb::RunScheduledReviewsResponse::from(&run))
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

/// A page of a list ordered by a date, then customer (due reviews, file reviews), with the
/// position its token carries.
fn dated_page(
    page_size: i32,
    page_token: &str,
) -> Result<(Page, Option<(NaiveDate, String)>), ServiceError> {
    let page = Page::parse(page_size, page_token)?;
    let after = match page.after.as_deref() {
        None => None,
        Some(key) => Some(DueRating::parse_cursor(key).ok_or_else(|| {
            ServiceError::invalid("page_token", "is not a token this service issued")
        })?),
    };
    Ok((page, after))
}

/// A rating whose file needs a review on `review_on`, as ListFileReviews shows it.
fn file_review(rating: &Rating, review_on: NaiveDate, today: NaiveDate) -> pb::FileReview {
    pb::FileReview {
        customer_id: rating.customer_id.clone(),
        rating_id: rating.rating_id.clone(),
        grade: rating.grade.clone(),
        inputs_stale_on: Some(to_date(review_on)),
        days_left: i32::try_from((review_on - today).num_days()).unwrap_or(i32::MIN),
        stale_inputs: rating
            .stale_inputs
            .iter()
            .map(stale_input_to_proto)
            .collect(),
    }
}
