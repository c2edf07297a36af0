//! `credit.v1.RatingService`: Scorecard models, ratings with PD and reasons, overrides with four eyes, and re-rating on schedule or event.
//!
//! Landed (first slice of #5): versioned scorecard models — PublishModel, ListModels,
//! GetModel, ImportScorecardTable — the shipped models published on the first start, and
//! ScoreSnapshot of a snapshot given in the request. The RPCs about customer ratings
//! (RateCustomer, GetRating, ListRatingHistory, GetRatingReport, ScoreSnapshot of a stored
//! rating), overrides (ProposeOverride, DecideOverride, ListOverrides) and reviews
//! (ListDueReviews, RunScheduledReviews) answer UNIMPLEMENTED until they land.

pub mod api;
pub mod domain;
pub mod report;
pub mod seed;
pub mod store;

use std::sync::Arc;

use credit_core::{AccessPolicy, Role};
use credit_proto::service_names::RATING;
use credit_proto::v1::rating_service_server::RatingServiceServer;
use credit_runtime::{Database, StoreSpec};
use sqlx::migrate::Migrator;

pub use api::RatingApi;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// This service's store: schema `rating` on PostgreSQL, `rating.db` on SQLite.
pub static STORE: StoreSpec = StoreSpec {
    name: "rating",
    postgres_migrations: &POSTGRES_MIGRATIONS,
    sqlite_migrations: &SQLITE_MIGRATIONS,
};

/// The `RatingService` server on `database`, once the shipped models are published (only the
/// first start publishes them; see [`seed`]).
pub async fn build(database: Database) -> Result<RatingServiceServer<RatingApi>, seed::SeedError> {
    let store: Arc<dyn store::ModelStore> = Arc::new(store::SqlModelStore::new(database));
    seed::publish_shipped_models(store.as_ref()).await?;
    Ok(RatingApi::new(store).into_server())
}

/// Grades are read by everyone who acts on them.
const READERS: &[Role] = &[Role::Analyst, Role::CreditManager, Role::Collector];
/// Analysts rate and propose; managers may too.
const RATERS: &[Role] = &[Role::Analyst, Role::CreditManager];
/// The checker of an override, and scheduled work, belong to managers.
const MANAGERS: &[Role] = &[Role::CreditManager];
/// Models are governed centrally: only ADMIN publishes them.
const ADMIN_ONLY: &[Role] = &[];

/// Who may call which RPC. ADMIN may call all of them.
pub fn access_policy() -> AccessPolicy {
    AccessPolicy::new(
        RATING,
        &[
            ("PublishModel", ADMIN_ONLY),
            ("ImportScorecardTable", ADMIN_ONLY),
            ("ListModels", RATERS),
            ("GetModel", RATERS),
            ("RateCustomer", RATERS),
            ("ScoreSnapshot", RATERS),
            ("GetRating", READERS),
            ("ListRatingHistory", READERS),
            ("GetRatingReport", READERS),
            ("ProposeOverride", RATERS),
            ("DecideOverride", MANAGERS),
            ("ListOverrides", RATERS),
            ("ListDueReviews", RATERS),
            ("RunScheduledReviews", MANAGERS),
        ],
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn access_policy_names_every_rpc_of_the_contract_and_nothing_else() {
        credit_runtime::rpc_path::assert_policy_covers_contract(&super::access_policy());
    }
}
