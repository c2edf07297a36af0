//! The gRPC handlers of `credit.v1.RatingService`: scorecard models (PublishModel, ListModels,
//! GetModel, ImportScorecardTable) and ScoreSnapshot here; customer ratings, the report,
//! overrides and reviews in [`ratings`].
//!
//! Each handler checks the request's fields, turns them into domain values (conversions in
//! [`convert`]), hands them to a use case in `app`, and answers in the contract's messages; the
//! rules themselves live in `domain`.

pub mod convert;
mod ratings;

use std::sync::Arc;

use credit_core::{Actor, FieldViolation, Principal, ServiceError, both};
use credit_proto::time::timestamp;
use credit_proto::v1 as pb;
use credit_proto::v1::rating_service_server::{RatingService, RatingServiceServer};
use credit_runtime::approval_wire::{
    chain_to_proto, change_to_proto, version_status_filter, version_status_to_proto,
};
use credit_runtime::principal;
use credit_runtime::sql::{IdempotencyKey, Page};
use tonic::{Request, Response, Status};

use crate::app::models::{self, Publishing};
use crate::app::rater::Rater;
use crate::domain::data_points::{DataPointCatalog, check_model_data_points, reads_data_points};
use crate::domain::scoring::{self, RatingInputs};
use crate::domain::table::{TableImport, import_table, may_read_data_points};
use crate::domain::{CustomerKind, ModelId, ScorecardModel};
use crate::store::{
    ModelCursor, ModelFilter, ModelProposal, ModelStore, ProposalFilter, PublishedModel,
};

const PUBLISH_MODEL: &str = "PublishModel";
const IMPORT_SCORECARD_TABLE: &str = "ImportScorecardTable";
const DECIDE_MODEL_PROPOSAL: &str = "DecideModelProposal";

/// The gRPC handlers of `RatingService`.
#[derive(Debug, Clone)]
pub struct RatingApi {
    store: Arc<dyn ModelStore>,
    rater: Rater,
}

type Answer<T> = Result<Response<T>, Status>;

impl RatingApi {
    pub fn new(store: Arc<dyn ModelStore>, rater: Rater) -> Self {
        Self { store, rater }
    }

    pub fn into_server(self) -> RatingServiceServer<Self> {
        RatingServiceServer::new(self)
    }

    /// Files a checked model as a proposal (see [`models::propose`]): the model as it will be
    /// published, and the proposal (none with `validate_only`).
    async fn propose(
        &self,
        model: ScorecardModel,
        proposer: Actor,
        key: &IdempotencyKey,
        validate_only: bool,
    ) -> Result<(pb::ScorecardModel, Option<pb::ModelProposal>), ServiceError> {
        let chains = self.rater.chains();
        match models::propose(
            self.store.as_ref(),
            chains,
            model,
            proposer,
            key,
            validate_only,
        )
        .await?
        {
            Publishing::Validated(model) => Ok((pb::ScorecardModel::from(model.as_ref()), None)),
            Publishing::Proposed(proposal) => Ok((
                pb::ScorecardModel::from(&proposal.document),
                Some(proposal_to_proto(&proposal)),
            )),
        }
    }

    /// The model a ScoreSnapshot names, or the one selected for the snapshot's kind and
    /// industry when it names none.
    async fn model_for_snapshot(
        &self,
        request: &pb::ScoreSnapshotRequest,
        snapshot: &pb::RatingInputSnapshot,
    ) -> Result<ScorecardModel, ServiceError> {
        let kind = optional_kind("inputs.customer_kind", snapshot.customer_kind);
        if request.model_id.trim().is_empty() {
            return self
                .selected_model(kind?, request.model_version, &snapshot.industry_code)
                .await;
        }
        let named = model_and_version(&request.model_id, request.model_version, "model_version");
        let (kind, (model_id, version)) = both(kind, named)?;
        let model = self.published_model(&model_id, version).await?.model;
        match kind {
            Some(kind) if kind != model.customer_kind() => Err(ServiceError::invalid(
                "inputs.customer_kind",
                format!(
                    "model '{}' rates {} customers",
                    model.model_id(),
                    model.customer_kind().contract_name()
                ),
            )),
            _ => Ok(model),
        }
    }

    /// ScoreSnapshot of a stored rating: its snapshot, by default with its own model version
    /// (the determinism check), or with another model named in the request.
    async fn rescore_rating(
        &self,
        request: &pb::ScoreSnapshotRequest,
        rating_id: &str,
    ) -> Result<pb::ScoreSnapshotResponse, ServiceError> {
        let rating = self
            .rater
            .ratings()
            .rating(rating_id.trim())
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("rating", rating_id.trim()))?;
        let own_model =
            request.model_id.trim().is_empty() || request.model_id.trim() == rating.model_id;
        let (model_id, version) = if own_model {
            let version = match request.model_version {
                0 => rating.model_version,
                version => version,
            };
            model_and_version(&rating.model_id, version, "model_version")?
        } else {
            model_and_version(&request.model_id, request.model_version, "model_version")?
        };
        let model = self.published_model(&model_id, version).await?.model;
        let snapshot = rating.inputs.unwrap_or_default();
        let inputs = RatingInputs::parse(&snapshot.inputs, "inputs.inputs")
            .map_err(|error| ServiceError::internal(format!("rating {rating_id}: {error}")))?;
        let result = scoring::score(&model, &inputs)?;
        Ok(pb::ScoreSnapshotResponse {
            result: Some(pb::ScoreResult::from(&result)),
        })
    }

    /// The model a snapshot of `kind` in `industry_code` is scored with (see
    /// [`models::selected_model`]); a version needs a named model.
    async fn selected_model(
        &self,
        kind: Option<CustomerKind>,
        model_version: i32,
        industry_code: &str,
    ) -> Result<ScorecardModel, ServiceError> {
        let kind = match (kind, model_version) {
            (Some(kind), 0) => kind,
            (kind, version) => {
                let mut violations = Vec::new();
                if version != 0 {
                    violations.push(FieldViolation::new(
                        "model_version",
                        "needs model_id: a version is of one model",
                    ));
                }
                if kind.is_none() {
                    violations.push(FieldViolation::new(
                        "inputs.customer_kind",
                        "is required to select the model; or name the model in model_id",
                    ));
                }
                return Err(ServiceError::InvalidArgument(violations));
            }
        };
        models::selected_model(self.store.as_ref(), kind, industry_code).await
    }

    /// A version of a model (`None` = the latest), NOT_FOUND when there is none.
    async fn published_model(
        &self,
        model_id: &ModelId,
        version: Option<u32>,
    ) -> Result<PublishedModel, ServiceError> {
        models::published_model(self.store.as_ref(), model_id, version).await
    }
}

#[tonic::async_trait]
impl RatingService for RatingApi {
    async fn publish_model(
        &self,
        request: Request<pb::PublishModelRequest>,
    ) -> Answer<pb::PublishModelResponse> {
        let caller = principal(&request)?.clone();
        let publisher = Actor::of(&caller);
        let request = request.into_inner();
        let key = idempotency_key(&caller, &request.request_id, PUBLISH_MODEL, &request);
        let model = match &request.model {
            Some(wire) => ScorecardModel::try_from(wire),
            None => Err(ServiceError::invalid("model", "is required")),
        };
        let (key, model) = both(key, model)?;
        if reads_data_points(&model) {
            let catalog = self.rater.files().data_point_catalog().await?;
            check_model_data_points(&model, &catalog, "model.").map_err(ServiceError::from)?;
        }
        let (model, proposal) = self
            .propose(model, publisher, &key, request.validate_only)
            .await?;
        Ok(Response::new(pb::PublishModelResponse {
            model: Some(model),
            proposal,
        }))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Answer<pb::ListModelsResponse> {
        let request = request.into_inner();
        let (filter, page) = both(
            model_filter(&request),
            Page::parse(request.page_size, &request.page_token),
        )?;
        let after = match page.after.as_deref() {
            None => None,
            Some(key) => Some(ModelCursor::from_key(key).ok_or_else(|| {
                ServiceError::invalid("page_token", "is not a token this service issued")
            })?),
        };
        let rows = self
            .store
            .list_models(&filter, after.as_ref(), page.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let mut keyed: Vec<(String, PublishedModel)> = rows
            .into_iter()
            .map(|published| (ModelCursor::of(&published.model).to_key(), published))
            .collect();
        let next_page_token = page.finish(&mut keyed, |(key, _)| key);
        Ok(Response::new(pb::ListModelsResponse {
            models: keyed
                .iter()
                .map(|(_, published)| model_to_proto(published))
                .collect(),
            next_page_token,
        }))
    }

    async fn decide_model_proposal(
        &self,
        request: Request<pb::DecideModelProposalRequest>,
    ) -> Answer<pb::DecideModelProposalResponse> {
        let caller = principal(&request)?.clone();
        let request = request.into_inner();
        let key = idempotency_key(
            &caller,
            &request.request_id,
            DECIDE_MODEL_PROPOSAL,
            &request,
        );
        let verdict = match pb::ApprovalVerdict::try_from(request.verdict) {
            Ok(pb::ApprovalVerdict::Approve) => Ok(true),
            Ok(pb::ApprovalVerdict::Reject) if request.note.trim().is_empty() => Err(
                ServiceError::invalid("note", "is required to reject: say why"),
            ),
            Ok(pb::ApprovalVerdict::Reject) => Ok(false),
            _ => Err(ServiceError::invalid("verdict", "is APPROVE or REJECT")),
        };
        let proposal_id = if request.proposal_id.trim().is_empty() {
            Err(ServiceError::invalid("proposal_id", "is required"))
        } else {
            Ok(request.proposal_id.trim())
        };
        let (key, (approve, proposal_id)) = both(key, both(verdict, proposal_id))?;
        let decided = models::decide_proposal(
            self.store.as_ref(),
            &caller,
            &key,
            proposal_id,
            approve,
            request.note.trim(),
        )
        .await?;
        Ok(Response::new(pb::DecideModelProposalResponse {
            proposal: Some(proposal_to_proto(&decided)),
        }))
    }

    async fn list_model_proposals(
        &self,
        request: Request<pb::ListModelProposalsRequest>,
    ) -> Answer<pb::ListModelProposalsResponse> {
        let request = request.into_inner();
        let status = version_status_filter(request.status);
        let (status, page) = both(status, Page::parse(request.page_size, &request.page_token))?;
        let filter = ProposalFilter {
            status,
            document_id: request.model_id.trim().to_owned(),
        };
        let mut proposals = self
            .store
            .model_proposals(&filter, page.after.as_deref(), page.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut proposals, |proposal| &proposal.proposal_id);
        Ok(Response::new(pb::ListModelProposalsResponse {
            proposals: proposals.iter().map(proposal_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Answer<pb::GetModelResponse> {
        let request = request.into_inner();
        let (model_id, version) = model_and_version(&request.model_id, request.version, "version")?;
        let published = self.published_model(&model_id, version).await?;
        Ok(Response::new(pb::GetModelResponse {
            model: Some(model_to_proto(&published)),
        }))
    }

    async fn import_scorecard_table(
        &self,
        request: Request<pb::ImportScorecardTableRequest>,
    ) -> Answer<pb::ImportScorecardTableResponse> {
        let caller = principal(&request)?.clone();
        let publisher = Actor::of(&caller);
        let request = request.into_inner();
        let key = idempotency_key(
            &caller,
            &request.request_id,
            IMPORT_SCORECARD_TABLE,
            &request,
        );
        // The table is parsed again on a replay; the same rows give the same warnings (and the
        // same data points, unless the company changed their definitions meanwhile).
        let table = convert::model::unchecked_table(&request);
        let catalog = if may_read_data_points(&table) {
            self.rater.files().data_point_catalog().await?
        } else {
            DataPointCatalog::default()
        };
        let (key, TableImport { model, warnings }) = both(
            key,
            import_table(&table, &catalog).map_err(ServiceError::from),
        )?;
        let (model, proposal) = self
            .propose(model, publisher, &key, request.validate_only)
            .await?;
        Ok(Response::new(pb::ImportScorecardTableResponse {
            model: Some(model),
            warnings,
            proposal,
        }))
    }

    async fn score_snapshot(
        &self,
        request: Request<pb::ScoreSnapshotRequest>,
    ) -> Answer<pb::ScoreSnapshotResponse> {
        let request = request.into_inner();
        let snapshot = match &request.source {
            Some(pb::score_snapshot_request::Source::Inputs(snapshot)) => snapshot.clone(),
            Some(pb::score_snapshot_request::Source::RatingId(rating_id)) => {
                return Ok(Response::new(
                    self.rescore_rating(&request, rating_id).await?,
                ));
            }
            None => {
                return Err(ServiceError::invalid(
                    "source",
                    "give the snapshot to score in `inputs`, or a rating in `rating_id`",
                )
                .into());
            }
        };
        let snapshot = &snapshot;
        let inputs = convert::inputs_from_proto(&snapshot.inputs, "inputs.inputs")
            .map_err(ServiceError::from);
        let model = self.model_for_snapshot(&request, snapshot).await;
        let (inputs, model) = both(inputs, model)?;
        let result = scoring::score(&model, &inputs).map_err(ServiceError::from)?;
        Ok(Response::new(pb::ScoreSnapshotResponse {
            result: Some(pb::ScoreResult::from(&result)),
        }))
    }

    async fn rate_customer(
        &self,
        request: Request<pb::RateCustomerRequest>,
    ) -> Answer<pb::RateCustomerResponse> {
        let principal = principal(&request)?.clone();
        let response = self
            .rate_customer_now(&principal, request.into_inner())
            .await?;
        Ok(Response::new(response))
    }

    async fn get_rating(
        &self,
        request: Request<pb::GetRatingRequest>,
    ) -> Answer<pb::GetRatingResponse> {
        let rating = self.rating_by_lookup(request.get_ref()).await?;
        Ok(Response::new(pb::GetRatingResponse {
            rating: Some(rating),
        }))
    }

    async fn list_rating_history(
        &self,
        request: Request<pb::ListRatingHistoryRequest>,
    ) -> Answer<pb::ListRatingHistoryResponse> {
        Ok(Response::new(
            self.rating_history_page(request.get_ref()).await?,
        ))
    }

    async fn get_rating_report(
        &self,
        request: Request<pb::GetRatingReportRequest>,
    ) -> Answer<pb::GetRatingReportResponse> {
        let report = self.rating_report(request.get_ref()).await?;
        let html = crate::app::report::render_html(&report);
        Ok(Response::new(pb::GetRatingReportResponse {
            report: Some(report),
            html,
        }))
    }

    async fn propose_override(
        &self,
        request: Request<pb::ProposeOverrideRequest>,
    ) -> Answer<pb::ProposeOverrideResponse> {
        let principal = principal(&request)?.clone();
        let proposal = self
            .propose_override_now(&principal, request.into_inner())
            .await?;
        Ok(Response::new(pb::ProposeOverrideResponse {
            rating_override: Some(proposal),
        }))
    }

    async fn decide_override(
        &self,
        request: Request<pb::DecideOverrideRequest>,
    ) -> Answer<pb::DecideOverrideResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.decide_override_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_overrides(
        &self,
        request: Request<pb::ListOverridesRequest>,
    ) -> Answer<pb::ListOverridesResponse> {
        Ok(Response::new(self.overrides_page(request.get_ref()).await?))
    }

    async fn list_file_reviews(
        &self,
        request: Request<pb::ListFileReviewsRequest>,
    ) -> Answer<pb::ListFileReviewsResponse> {
        Ok(Response::new(
            self.file_reviews_page(request.get_ref()).await?,
        ))
    }

    async fn list_due_reviews(
        &self,
        request: Request<pb::ListDueReviewsRequest>,
    ) -> Answer<pb::ListDueReviewsResponse> {
        Ok(Response::new(
            self.due_reviews_page(request.get_ref()).await?,
        ))
    }

    async fn run_scheduled_reviews(
        &self,
        request: Request<pb::RunScheduledReviewsRequest>,
    ) -> Answer<pb::RunScheduledReviewsResponse> {
        let caller = principal(&request)?.clone();
        Ok(Response::new(
            self.run_scheduled_reviews_now(&caller, request.into_inner())
                .await?,
        ))
    }
}

fn idempotency_key(
    caller: &Principal,
    request_id: &str,
    operation: &'static str,
    content: &impl prost::Message,
) -> Result<IdempotencyKey, ServiceError> {
    IdempotencyKey::of_request(&caller.name, request_id, operation, content)
}

/// A customer kind given as a filter or hint: UNSPECIFIED is none.
fn optional_kind(field: &str, value: i32) -> Result<Option<CustomerKind>, ServiceError> {
    if value == 0 {
        return Ok(None);
    }
    convert::customer_kind_from_proto(value)
        .map(Some)
        .ok_or_else(|| ServiceError::invalid(field, format!("unknown value {value}")))
}

pub(crate) fn model_filter(request: &pb::ListModelsRequest) -> Result<ModelFilter, ServiceError> {
    let customer_kind = optional_kind("customer_kind", request.customer_kind);
    let model_id = match request.model_id.trim() {
        "" => Ok(None),
        text => ModelId::parse(text)
            .map(Some)
            .map_err(|error| ServiceError::invalid("model_id", error.to_string())),
    };
    let (customer_kind, model_id) = both(customer_kind, model_id)?;
    Ok(ModelFilter {
        customer_kind,
        model_id,
        all_versions: request.all_versions,
    })
}

/// A model id and a version of it (`None` = the latest), each checked.
fn model_and_version(
    model_id: &str,
    version: i32,
    version_field: &str,
) -> Result<(ModelId, Option<u32>), ServiceError> {
    let model_id = ModelId::parse(model_id.trim())
        .map_err(|error| ServiceError::invalid("model_id", error.to_string()));
    let version =
        parse_version(version).map_err(|error| ServiceError::invalid(version_field, error));
    both(model_id, version)
}

/// A requested version: 0 is the latest (`None`), negative versions do not exist.
pub(crate) fn parse_version(version: i32) -> Result<Option<u32>, &'static str> {
    match u32::try_from(version) {
        Ok(0) => Ok(None),
        Ok(version) => Ok(Some(version)),
        Err(_) => Err("must not be negative; 0 means the latest version"),
    }
}

fn proposal_to_proto(proposal: &ModelProposal) -> pb::ModelProposal {
    pb::ModelProposal {
        proposal_id: proposal.proposal_id.clone(),
        model: Some(pb::ScorecardModel {
            version: i32::try_from(proposal.published_version.unwrap_or(0)).unwrap_or(i32::MAX),
            ..pb::ScorecardModel::from(&proposal.document)
        }),
        base_version: proposal.base_version,
        changes: proposal.changes.iter().map(change_to_proto).collect(),
        status: version_status_to_proto(proposal.status()).into(),
        approval_chain: Some(chain_to_proto(&proposal.chain)),
        proposed_at: Some(timestamp(proposal.proposed_at)),
        published_version: proposal.published_version.unwrap_or(0),
    }
}

fn model_to_proto(published: &PublishedModel) -> pb::ScorecardModel {
    pb::ScorecardModel {
        published_at: Some(timestamp(published.published_at)),
        published_by: Some(pb::Actor::from(&published.published_by)),
        ..pb::ScorecardModel::from(&published.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_zero_is_the_latest_and_negative_is_refused() {
        assert_eq!(parse_version(0), Ok(None));
        assert_eq!(parse_version(3), Ok(Some(3)));
        assert!(parse_version(-1).is_err());
    }
}
