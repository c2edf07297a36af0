//! `credit.v1.RatingService`: Scorecard models, ratings with PD and reasons, overrides with four eyes, and re-rating on schedule or event.
//!
//! Models are versioned data (PublishModel, ImportScorecardTable); the shipped ones are
//! published on the first start. RateCustomer reads the credit file from intake and
//! collections over gRPC ([`app::credit_file`]), scores it ([`domain`]) and stores the rating with
//! its snapshot; a grade change is announced as RatingChanged, which limits consumes.
//! Statements, bureau reports and overdue invoices re-rate a customer ([`events`]), and so does
//! the review schedule.

pub mod api;
pub mod app;
pub mod domain;
pub mod events;
pub mod seed;
pub mod store;

/// The use cases under their earlier paths.
pub use app::{credit_file, rater, report};

#[cfg(test)]
mod properties;

use std::sync::Arc;

use credit_core::{AccessPolicy, Role};
use credit_proto::service_names::RATING;
use credit_proto::v1::rating_service_server::RatingServiceServer;
use credit_runtime::events::EventHandler;
use credit_runtime::peers::PeerChannel;
use credit_runtime::{Database, StoreSpec};

pub use api::RatingApi;

/// This service's store: schema `rating` on PostgreSQL, `rating.db` on SQLite.
pub static STORE: StoreSpec = credit_runtime::service_store!("rating", outbox: 1, outbox_packed: 4, keys_per_caller: 5, audit_chain: 7);

/// The services rating asks over gRPC.
#[derive(Debug, Clone)]
pub struct Peers {
    pub intake: PeerChannel,
    /// `None` when no collections service is reachable: payment behaviour is then missing.
    pub collections: Option<PeerChannel>,
    /// `None` when no limits service is reachable: overrides then have one checker and new
    /// grades take effect at once (the approval matrix and the credit policy live in limits).
    pub limits: Option<PeerChannel>,
}

/// The rating service as a process runs it.
#[derive(Debug)]
pub struct RatingParts {
    pub server: RatingServiceServer<RatingApi>,
    /// Re-rates on other services' events.
    pub handlers: Vec<Arc<dyn EventHandler>>,
    pub scheduler: events::ReviewScheduler,
}

/// The `RatingService` on `database`, once the shipped models are published (only the first
/// start publishes them; see [`seed`]).
pub async fn build(database: Database, peers: Peers) -> Result<RatingParts, seed::SeedError> {
    let models: Arc<dyn store::ModelStore> = Arc::new(store::SqlModelStore::new(database.clone()));
    seed::publish_shipped_models(models.as_ref()).await?;
    let ratings: Arc<dyn store::RatingStore> = Arc::new(store::SqlRatingStore::new(database));
    let files: Arc<dyn credit_file::CreditFiles> = Arc::new(credit_file::PeerCreditFiles::new(
        peers.intake,
        peers.collections,
    ));
    let chains = app::chains::ApprovalChains::new(peers.limits);
    let rater = rater::Rater::new(models.clone(), ratings, files, chains);
    let api = RatingApi::new(models, rater.clone());
    Ok(RatingParts {
        server: api.into_server(),
        handlers: vec![Arc::new(events::RatingTriggers::new(rater.clone()))],
        scheduler: events::ReviewScheduler::new(rater),
    })
}

/// Grades are read by everyone who acts on them.
const READERS: &[Role] = &[Role::Analyst, Role::CreditManager, Role::Collector];
/// Analysts rate and propose; managers may too.
const RATERS: &[Role] = &[Role::Analyst, Role::CreditManager];
/// Scheduled work belongs to managers.
const MANAGERS: &[Role] = &[Role::CreditManager];
/// The checkers of overrides, new grades and model proposals: the roles of the shipped chains
/// (a company's matrix may name others; ADMIN may call every RPC).
const CHECKERS: &[Role] = &[Role::CreditManager, Role::GeneralManager];
/// Who follows overrides, grade approvals and model proposals.
const OVERRIDE_READERS: &[Role] = &[Role::Analyst, Role::CreditManager, Role::GeneralManager];
/// Models are governed centrally: only ADMIN publishes them.
const ADMIN_ONLY: &[Role] = &[];

/// Who may call which RPC. ADMIN may call all of them.
pub fn access_policy() -> AccessPolicy {
    AccessPolicy::new(
        RATING,
        &[
            ("PublishModel", ADMIN_ONLY),
            ("ImportScorecardTable", ADMIN_ONLY),
            ("DecideModelProposal", CHECKERS),
            ("ListModelProposals", OVERRIDE_READERS),
            ("ListModels", RATERS),
            ("GetModel", RATERS),
            ("RateCustomer", RATERS),
            ("ScoreSnapshot", RATERS),
            ("GetRating", READERS),
            ("ListRatingHistory", READERS),
            ("GetRatingReport", READERS),
            ("ProposeOverride", RATERS),
            ("DecideOverride", CHECKERS),
            ("ListOverrides", OVERRIDE_READERS),
            ("ListDueReviews", RATERS),
            ("ListFileReviews", RATERS),
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
