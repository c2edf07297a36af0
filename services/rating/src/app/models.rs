//! Proposing and publishing scorecard models (a new version waits for a second person, 制度修订)
//! and finding published versions, for the model handlers and the override use cases alike.

use chrono::Utc;
use credit_core::approval::Progress;
use credit_core::{Actor, Principal, ServiceError};
use credit_runtime::sql::IdempotencyKey;

use super::chains::{self, ApprovalChains};
use crate::domain::{CustomerKind, ModelId, ScorecardModel, selection};
use crate::store::{ModelProposal, ModelStore, Outcome, PublishedModel, model_changes};

/// What a PublishModel or ImportScorecardTable did: with `validate_only` the checked model as
/// it would be published, otherwise the proposal filed (or replayed).
#[derive(Debug, Clone)]
pub enum Publishing {
    Validated(Box<ScorecardModel>),
    Proposed(Box<ModelProposal>),
}

/// Files a checked model as a proposal for its next version (制度修订: a second person
/// approves it before it rates anyone), or with `validate_only` only checks that it could be.
/// Either way a model that would share a claim with another model is refused now, and again
/// when it is published.
pub async fn propose(
    store: &dyn ModelStore,
    chains: &ApprovalChains,
    model: ScorecardModel,
    proposer: Actor,
    key: &IdempotencyKey,
    validate_only: bool,
) -> Result<Publishing, ServiceError> {
    let latest = latest_models(store).await?;
    let published: Vec<ScorecardModel> = latest
        .iter()
        .map(|published| published.model.clone())
        .collect();
    selection::check_applicability(&model, &published).map_err(ServiceError::from)?;
    if validate_only {
        return Ok(Publishing::Validated(Box::new(model)));
    }
    let base = store
        .model(model.model_id(), None)
        .await
        .map_err(ServiceError::from)?;
    let changes = match &base {
        Some(base) => model_changes(&base.model, &model),
        None => Vec::new(),
    };
    let chain = chains.model_change_chain(&proposer).await?;
    let proposal = ModelProposal {
        proposal_id: format!("mpr_{}", uuid::Uuid::now_v7().simple()),
        document: model,
        base_version: base.map_or(0, |base| base.model.version()),
        changes,
        chain,
        proposed_at: Utc::now(),
        published_version: None,
    };
    let outcome = store
        .propose_model(&proposal, key)
        .await
        .map_err(ServiceError::from)?;
    if let Outcome::New(proposal) = &outcome {
        tracing::info!(
            proposal_id = %proposal.proposal_id,
            model_id = %proposal.document.model_id(),
            base_version = proposal.base_version,
            changes = proposal.changes.len(),
            proposed_by = %proposer.name,
            "model proposed"
        );
    }
    Ok(Publishing::Proposed(Box::new(outcome.into_inner())))
}

/// `principal`'s verdict on the step of a model proposal that waits, once per key; the
/// approval of the last step publishes the model as the next version of its id.
pub async fn decide_proposal(
    store: &dyn ModelStore,
    principal: &Principal,
    key: &IdempotencyKey,
    proposal_id: &str,
    approve: bool,
    note: &str,
) -> Result<ModelProposal, ServiceError> {
    let now = Utc::now();
    let decide = |proposal: &ModelProposal, latest_version: u32| {
        let (chain, progress) = chains::walk(
            &proposal.chain,
            principal,
            approve,
            note,
            now,
            "PROPOSAL_NOT_PENDING",
        )?;
        if progress == Progress::Approved && latest_version != proposal.base_version {
            return Err(ServiceError::failed_precondition(
                "PROPOSAL_STALE",
                format!(
                    "model {} was proposed over version {}; version {latest_version} was published since: propose again over it",
                    proposal.document.model_id(),
                    proposal.base_version
                ),
            ));
        }
        Ok(ModelProposal {
            chain,
            ..proposal.clone()
        })
    };
    // A proposal's model never changes: read once, it is the model the approval publishes.
    let filed = store
        .model_proposal(proposal_id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::not_found("model proposal", proposal_id))?;
    let admit = |published: &[ScorecardModel]| {
        selection::check_applicability(&filed.document, published).map_err(ServiceError::from)
    };
    let outcome = store
        .decide_model_proposal(proposal_id, key, &decide, &admit)
        .await
        .map_err(ServiceError::from)?;
    if let Outcome::New(decided) = &outcome {
        tracing::info!(
            proposal_id = %decided.proposal_id,
            model_id = %decided.document.model_id(),
            status = decided.status().as_str(),
            published_version = decided.published_version.unwrap_or(0),
            decided_by = %principal.name,
            "model proposal decided"
        );
    }
    Ok(outcome.into_inner())
}

/// The latest version of every model: the models that rate customers.
pub async fn latest_models(store: &dyn ModelStore) -> Result<Vec<PublishedModel>, ServiceError> {
    store.latest_models().await.map_err(ServiceError::from)
}

/// The latest model that rates customers of `kind` in `industry_code` (see
/// [`selection::select_model`]).
pub async fn selected_model(
    store: &dyn ModelStore,
    kind: CustomerKind,
    industry_code: &str,
) -> Result<ScorecardModel, ServiceError> {
    let published: Vec<ScorecardModel> = latest_models(store)
        .await?
        .into_iter()
        .map(|published| published.model)
        .collect();
    Ok(selection::select_model(&published, kind, industry_code)?.clone())
}

/// A version of a model (`None` = the latest), NOT_FOUND when there is none.
pub async fn published_model(
    store: &dyn ModelStore,
    model_id: &ModelId,
    version: Option<u32>,
) -> Result<PublishedModel, ServiceError> {
    let found = store
        .model(model_id, version)
        .await
        .map_err(ServiceError::from)?;
    found.ok_or_else(|| match version {
        None => ServiceError::not_found("model", model_id.as_str()),
        Some(version) => {
            ServiceError::not_found("model version", format!("{model_id} version {version}"))
        }
    })
}
