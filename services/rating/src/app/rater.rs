//! Rating a customer: the one path RateCustomer, the scheduled reviews and the event-driven
//! re-ratings all take. Reads the credit file from its owners, picks the model, gathers the
//! input snapshot, scores it and stores the rating as current, announcing a grade change.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use credit_core::{Actor, ServiceError};
use credit_proto::service_names::RATING;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;
use credit_runtime::sql::IdempotencyKey;

use super::chains::ApprovalChains;
use crate::api::convert::rating::stale_input_to_proto;
use crate::app::credit_file::{CreditFiles, to_date};
use crate::app::models::selected_model;
use crate::domain::freshness::{self, Freshness};
use crate::domain::inputs::{self, QualitativeInputs};
use crate::domain::overrides::next_review_date;
use crate::domain::rating::{
    ApprovalStatus, InputSnapshot, OverrideKind, Rating, RatingOverride, RatingTrigger,
};
use crate::domain::scoring::{UncheckedInput, figure};
use crate::domain::{ModelId, RatingInputs, ScorecardModel, scoring};
use crate::store::{ModelStore, NewRating, Outcome, RatingStore, RecordedRating};
use credit_core::approval::Chain;
pub use credit_proto::time::timestamp;

/// The principal name of ratings nobody asked for (schedule, events).
pub const SYSTEM_RATER: &str = crate::domain::rating::SYSTEM_PRINCIPAL;

/// What to rate and why.
#[derive(Debug, Clone)]
pub struct RateRequest {
    pub customer_id: String,
    pub qualitative: QualitativeInputs,
    /// A model named by the caller instead of the one chosen by kind and industry.
    pub model_id: Option<ModelId>,
    pub note: String,
    pub trigger: RatingTrigger,
    pub rated_by: Actor,
    pub key: IdempotencyKey,
}

#[derive(Debug, Clone)]
pub struct Rater {
    models: Arc<dyn ModelStore>,
    ratings: Arc<dyn RatingStore>,
    files: Arc<dyn CreditFiles>,
    chains: ApprovalChains,
}

impl Rater {
    pub fn new(
        models: Arc<dyn ModelStore>,
        ratings: Arc<dyn RatingStore>,
        files: Arc<dyn CreditFiles>,
        chains: ApprovalChains,
    ) -> Self {
        Self {
            models,
            ratings,
            files,
            chains,
        }
    }

    /// Where overrides and new grades get their approval chains.
    pub fn chains(&self) -> &ApprovalChains {
        &self.chains
    }

    pub fn ratings(&self) -> &Arc<dyn RatingStore> {
        &self.ratings
    }

    pub fn files(&self) -> &Arc<dyn CreditFiles> {
        &self.files
    }

    /// A stored rating, NOT_FOUND when there is none.
    pub async fn stored_rating(&self, rating_id: &str) -> Result<Rating, ServiceError> {
        self.ratings
            .rating(rating_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("rating", rating_id))
    }

    /// A customer's current rating, NOT_FOUND when it has none.
    pub async fn current_rating(&self, customer_id: &str) -> Result<Rating, ServiceError> {
        self.ratings
            .current_rating(customer_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::NotFound {
                resource: "rating of customer",
                id: customer_id.to_owned(),
            })
    }

    /// Rates the customer now; a replay of the key returns the first rating.
    pub async fn rate(
        &self,
        request: &RateRequest,
        now: DateTime<Utc>,
    ) -> Result<Outcome<RecordedRating>, ServiceError> {
        let today = now.date_naive();
        let (file, rules) = tokio::join!(
            self.files.credit_file(&request.customer_id, today),
            self.chains.freshness_rules()
        );
        let (file, rules) = (file?, rules?);
        let freshness = freshness::assess(&file.dates(), &rules, today);
        if rules.block_rating && !freshness.stale.is_empty() {
            return Err(stale_file(&freshness));
        }
        let facts = file.facts()?;
        let model = self
            .model_for(request.model_id.as_ref(), &facts, &request.customer_id)
            .await?;
        let score = |previous: Option<&Rating>| -> Result<Rating, ServiceError> {
            let carried = previous
                .and_then(|previous| previous.inputs.as_ref())
                .map(|snapshot| RatingInputs::parse(&snapshot.inputs, "previous.inputs"))
                .transpose()?;
            let gathered = inputs::gather(&facts, &request.qualitative, carried.as_ref(), today);
            let result = scoring::score(&model, &gathered)?;
            let mut rating = new_rating(request, &model, &result, &gathered, &facts, now, today);
            rating.stale_inputs = freshness.stale.clone();
            rating.inputs_stale_on = freshness.stale_on;
            Ok(rating)
        };
        let approval_chain = self.grade_approval_chain(request, &model, &score).await?;
        let build = |previous: Option<&Rating>| {
            let mut rating = score(previous)?;
            let grade_approval = match (&approval_chain, previous) {
                (Some(chain), Some(previous)) if previous.grade != rating.grade => {
                    let approval = grade_approval(&rating, previous, &model, chain, request, now);
                    keep_grade_in_force(&mut rating, previous, &approval.override_id);
                    Some(approval)
                }
                _ => None,
            };
            let previous_grade = previous.map(|previous| previous.grade.as_str());
            let mut events = vec![rating_recorded(
                &rating,
                &request.rated_by,
                &request.key.request_id,
            )];
            if previous_grade != Some(rating.grade.as_str()) {
                events.push(rating_changed(
                    &rating,
                    previous_grade.unwrap_or(""),
                    &request.rated_by,
                    &request.key.request_id,
                ));
            }
            Ok(NewRating {
                rating,
                events,
                grade_approval,
            })
        };
        let outcome = self
            .ratings
            .record_rating(&request.customer_id, &request.key, &build)
            .await
            .map_err(ServiceError::from)?;
        if let Outcome::New(recorded) = &outcome {
            tracing::info!(
                rating_id = %recorded.rating.rating_id,
                customer_id = %recorded.rating.customer_id,
                grade = %recorded.rating.grade,
                previous_grade = recorded.previous.as_ref().map_or("", |previous| previous.grade.as_str()),
                trigger = request.trigger.contract_name(),
                "customer rated"
            );
        }
        Ok(outcome)
    }

    /// The chain a new grade must walk before it takes effect, when the credit policy asks
    /// for it: asked before the write from the rating in force now (the write checks again
    /// that the grade still changes). `None` for a first grade, an unchanged grade, or no
    /// approval asked.
    async fn grade_approval_chain(
        &self,
        request: &RateRequest,
        model: &ScorecardModel,
        score: &(dyn Fn(Option<&Rating>) -> Result<Rating, ServiceError> + Sync),
    ) -> Result<Option<Chain>, ServiceError> {
        if !self.chains.configured() {
            return Ok(None);
        }
        let Some(in_force) = self
            .ratings
            .current_rating(&request.customer_id)
            .await
            .map_err(ServiceError::from)?
        else {
            return Ok(None);
        };
        let draft = score(Some(&in_force))?;
        if draft.grade == in_force.grade {
            return Ok(None);
        }
        let notches = model
            .master_scale()
            .notches(&in_force.grade, &draft.grade)
            .unwrap_or(0);
        self.chains
            .grade_approval_chain(&request.rated_by, &request.customer_id, notches)
            .await
    }

    async fn model_for(
        &self,
        model_id: Option<&ModelId>,
        facts: &inputs::CreditFacts,
        customer_id: &str,
    ) -> Result<ScorecardModel, ServiceError> {
        if let Some(model_id) = model_id {
            let published = self
                .models
                .model(model_id, None)
                .await
                .map_err(ServiceError::from)?
                .ok_or_else(|| ServiceError::not_found("model", model_id.as_str()))?;
            if published.model.customer_kind() != facts.kind {
                return Err(ServiceError::invalid(
                    "model_id",
                    format!(
                        "model '{model_id}' rates {} customers; customer {customer_id} is {}",
                        published.model.customer_kind().contract_name(),
                        facts.kind.contract_name()
                    ),
                ));
            }
            return Ok(published.model);
        }
        selected_model(self.models.as_ref(), facts.kind, &facts.industry_code).await
    }
}

/// The rating as stored: the score result, the snapshot it came from, who and why.
fn new_rating(
    request: &RateRequest,
    model: &ScorecardModel,
    result: &scoring::ScoreResult,
    gathered: &RatingInputs,
    facts: &inputs::CreditFacts,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Rating {
    let review = model
        .master_scale()
        .grade(&result.grade)
        .map_or(today, |grade| next_review_date(today, grade));
    let score = figure(result.score);
    let pd = result.pd.to_string();
    Rating {
        rating_id: format!("rtg_{}", uuid::Uuid::now_v7().simple()),
        customer_id: request.customer_id.clone(),
        model_id: result.model_id.clone(),
        model_version: i32::try_from(result.model_version).unwrap_or(i32::MAX),
        master_scale_id: result.master_scale_id.clone(),
        score,
        model_grade: result.grade.clone(),
        model_pd: pd.clone(),
        grade: result.grade.clone(),
        grade_rank: i32::try_from(result.grade_rank).unwrap_or(i32::MAX),
        pd,
        override_id: String::new(),
        breakdown: result.breakdown.iter().map(Into::into).collect(),
        reasons: result.reasons.iter().map(Into::into).collect(),
        inputs: Some(InputSnapshot {
            customer_kind: Some(facts.kind),
            industry_code: facts.industry_code.clone(),
            inputs: gathered.iter().map(UncheckedInput::from).collect(),
            statement_id: facts
                .statement
                .as_ref()
                .map(|statement| statement.statement_id.clone())
                .unwrap_or_default(),
            bureau_report_id: facts
                .bureau_report
                .as_ref()
                .map(|report| report.report_id.clone())
                .unwrap_or_default(),
            captured_at: Some(now),
        }),
        trigger: request.trigger,
        rated_at: Some(now),
        rated_by: Some(request.rated_by.clone()),
        next_review_date: Some(review),
        current: true,
        note: request.note.clone(),
        grade_approval_id: String::new(),
        stale_inputs: Vec::new(),
        inputs_stale_on: None,
    }
}

/// The approval a new model grade waits for, made by whoever rated the customer.
fn grade_approval(
    rating: &Rating,
    in_force: &Rating,
    model: &ScorecardModel,
    chain: &Chain,
    request: &RateRequest,
    now: DateTime<Utc>,
) -> RatingOverride {
    RatingOverride {
        override_id: format!("ovr_{}", uuid::Uuid::now_v7().simple()),
        rating_id: rating.rating_id.clone(),
        customer_id: rating.customer_id.clone(),
        model_grade: rating.model_grade.clone(),
        proposed_grade: rating.model_grade.clone(),
        notches: model
            .master_scale()
            .notches(&rating.model_grade, &in_force.grade)
            .map_or(0, |notches| -notches),
        justification: format!(
            "new grade {} (grade in force {}): the credit policy asks for grades to be approved",
            rating.model_grade, in_force.grade
        ),
        status: ApprovalStatus::Pending,
        required_role: None,
        proposed_by: Some(request.rated_by.clone()),
        proposed_at: Some(now),
        kind: OverrideKind::GradeApproval,
        approval_chain: Some(Box::new(chain.clone())),
        ..RatingOverride::default()
    }
}

/// Until its grade is approved, a new rating keeps the grade in force before it (its PD
/// and rank too); its model grade and score are its own.
fn keep_grade_in_force(rating: &mut Rating, in_force: &Rating, approval_id: &str) {
    rating.grade = in_force.grade.clone();
    rating.grade_rank = in_force.grade_rank;
    rating.pd = in_force.pd.clone();
    rating.grade_approval_id = approval_id.to_owned();
}

/// FAILED_PRECONDITION CREDIT_FILE_STALE: the policy rates nobody on stale inputs.
fn stale_file(freshness: &Freshness) -> ServiceError {
    let inputs: Vec<String> = freshness
        .stale
        .iter()
        .map(|stale| format!("{} {}", stale.code, stale.input))
        .collect();
    let reasons: Vec<&str> = freshness
        .stale
        .iter()
        .map(|stale| stale.message.as_str())
        .collect();
    ServiceError::FailedPrecondition {
        reason: "CREDIT_FILE_STALE",
        message: format!(
            "the credit policy rates no customer on stale inputs: {}; bring the file up to date first",
            reasons.join("; ")
        ),
        metadata: vec![("stale_inputs", inputs.join(","))],
    }
}

/// RatingRecorded for every new rating: its grade and the freshness of its inputs.
fn rating_recorded(rating: &Rating, actor: &Actor, request_id: &str) -> pb::Event {
    pb::Event {
        aggregate_id: rating.rating_id.clone(),
        customer_id: rating.customer_id.clone(),
        actor: Some(pb::Actor::from(actor)),
        request_id: request_id.to_owned(),
        ..new_event(
            RATING,
            Payload::RatingRecorded(pb::RatingRecorded {
                customer_id: rating.customer_id.clone(),
                rating_id: rating.rating_id.clone(),
                grade: rating.grade.clone(),
                stale_inputs: rating
                    .stale_inputs
                    .iter()
                    .map(stale_input_to_proto)
                    .collect(),
                inputs_stale_on: rating.inputs_stale_on.map(to_date),
            }),
        )
    }
}

/// RatingChanged for a rating whose effective grade differs from `previous_grade`.
pub fn rating_changed(
    rating: &Rating,
    previous_grade: &str,
    actor: &Actor,
    request_id: &str,
) -> pb::Event {
    pb::Event {
        aggregate_id: rating.rating_id.clone(),
        customer_id: rating.customer_id.clone(),
        actor: Some(pb::Actor::from(actor)),
        request_id: request_id.to_owned(),
        ..new_event(
            RATING,
            Payload::RatingChanged(pb::RatingChanged {
                customer_id: rating.customer_id.clone(),
                rating_id: rating.rating_id.clone(),
                previous_grade: previous_grade.to_owned(),
                grade: rating.grade.clone(),
                grade_rank: rating.grade_rank,
                pd: rating.pd.clone(),
                score: rating.score.clone(),
                model_id: rating.model_id.clone(),
                model_version: rating.model_version,
                overridden: !rating.override_id.is_empty(),
                next_review_date: rating.next_review_date.map(to_date),
            }),
        )
    }
}
