//! The shipped models, published on start.
//!
//! A credit department must be able to rate customers on day one, so the two shipped models
//! ("enterprise-default" and "individual-default") are published as version 1 by the service
//! itself the first time it starts. Every later start, and every replica starting at the same
//! moment, finds version 1 in place and publishes nothing: an administrator's later versions
//! are never overwritten or duplicated.

use chrono::Utc;

use crate::domain::ScorecardModel;
use crate::domain::defaults::shipped_models;
use crate::store::{ModelStore, Publication, StoreError, describe};
use credit_core::Actor;

/// How the service names itself when it acts on its own (the contract's "system:<service>").
pub use crate::domain::rating::SYSTEM_PRINCIPAL;

/// Why the shipped models could not be published; startup stops with it.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A bug in the shipped models; a unit test keeps it from being released.
    #[error("the shipped model {model_id} does not pass the model checks: {problems}")]
    Invalid { model_id: String, problems: String },
    #[error("publishing the shipped model {model_id} failed: {error}")]
    Store { model_id: String, error: StoreError },
}

/// Publishes each shipped model as version 1 unless its id has a version already; returns the
/// ids published now.
pub async fn publish_shipped_models(store: &dyn ModelStore) -> Result<Vec<String>, SeedError> {
    let publication = Publication {
        published_at: Utc::now(),
        published_by: Actor::named(SYSTEM_PRINCIPAL),
    };
    let mut published_now = Vec::new();
    for wire in shipped_models() {
        let model = ScorecardModel::try_from(&wire).map_err(|error| SeedError::Invalid {
            model_id: wire.model_id.clone(),
            problems: describe(&error),
        })?;
        let model_id = model.model_id().to_string();
        let published = store
            .publish_first_version(&model, &publication)
            .await
            .map_err(|error| SeedError::Store {
                model_id: model_id.clone(),
                error,
            })?;
        if published {
            tracing::info!(model_id = %model_id, "shipped model published as version 1");
            published_now.push(model_id);
        }
    }
    Ok(published_now)
}
