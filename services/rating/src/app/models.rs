//! Publishing scorecard models and finding published versions, for the model handlers and
//! the override use cases alike.

use chrono::Utc;
use credit_core::{Actor, ServiceError};
use credit_runtime::sql::IdempotencyKey;

use crate::domain::{CustomerKind, ModelId, ScorecardModel, selection};
use crate::store::{ModelStore, Outcome, Publication, PublishedModel};

/// What publishing did: with `validate_only` the checked model as it would be published,
/// otherwise the version stored (or replayed) with its publication.
#[derive(Debug, Clone)]
pub enum Publishing {
    Validated(ScorecardModel),
    Published(PublishedModel),
}

/// Publishes a checked model, or with `validate_only` only checks that it could be. Either way a
/// model that would share a claim with another model is refused.
pub async fn publish(
    store: &dyn ModelStore,
    model: ScorecardModel,
    publisher: Actor,
    key: &IdempotencyKey,
    validate_only: bool,
) -> Result<Publishing, ServiceError> {
    let admit = |published: &[ScorecardModel]| {
        selection::check_applicability(&model, published).map_err(ServiceError::from)
    };
    if validate_only {
        let published: Vec<ScorecardModel> = latest_models(store)
            .await?
            .into_iter()
            .map(|published| published.model)
            .collect();
        admit(&published)?;
        return Ok(Publishing::Validated(model));
    }
    let publication = Publication {
        published_at: Utc::now(),
        published_by: publisher,
    };
    let outcome = store
        .publish(&model, &publication, key, &admit)
        .await
        .map_err(ServiceError::from)?;
    if let Outcome::New(published) = &outcome {
        tracing::info!(
            model_id = %published.model.model_id(),
            version = published.model.version(),
            published_by = %published.published_by.name,
            "model published"
        );
    }
    Ok(Publishing::Published(outcome.into_inner()))
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
