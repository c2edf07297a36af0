//! `credit.v1.RatingService`: Scorecard models, ratings with PD and reasons, overrides with four eyes, and re-rating on schedule or event.
//!
//! Every RPC answers UNIMPLEMENTED until its issue (#5) lands; the access policy and the
//! store are in place so that landing it is adding handlers, not wiring.

pub mod domain;

use credit_core::{AccessPolicy, Role};
use credit_proto::service_names::RATING;
use credit_proto::v1::rating_service_server::{RatingService, RatingServiceServer};
use credit_runtime::{Database, StoreSpec};
use sqlx::migrate::Migrator;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// This service's store: schema `rating` on PostgreSQL, `rating.db` on SQLite.
pub static STORE: StoreSpec = StoreSpec {
    name: "rating",
    postgres_migrations: &POSTGRES_MIGRATIONS,
    sqlite_migrations: &SQLITE_MIGRATIONS,
};

/// The gRPC handlers of `RatingService`.
#[derive(Debug, Clone)]
pub struct RatingApi {
    #[allow(dead_code, reason = "the handlers of #5 read and write it")]
    database: Database,
}

impl RatingApi {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    pub fn into_server(self) -> RatingServiceServer<Self> {
        RatingServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl RatingService for RatingApi {}

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
