//! `credit.v1.LimitService`: Credit limits with maker-checker approval, terms, blocks, and the order-time `Authorize` on exposure cached in Redis.
//!
//! Landed: limits with four-eyes approval and the portfolio cap, limit proposals from policy
//! (`ProposeLimit`), the projection of intake's customer and statement events, the hot path
//! (Authorize, CheckCredit, Capture, Release, GetExposure), the referral queue, manual credit
//! blocks, the hold expiry sweeper and the reconciliation of the exposure cache with the
//! ledger (`ReconcileExposure`). Other RPCs answer UNIMPLEMENTED until they land (#4).

pub mod api;
pub mod app;
pub mod domain;
pub mod events;
pub mod expiry;
pub mod exposure;
pub mod ledger;
pub mod receivables;
pub mod reconcile;
pub mod store;

#[cfg(test)]
mod properties;

use std::sync::Arc;

use credit_core::{AccessPolicy, Role};
use credit_proto::service_names::{APPROVALS, LIMITS};
use credit_proto::v1::approval_service_server::ApprovalServiceServer;
use credit_proto::v1::limit_service_server::LimitServiceServer;
use credit_runtime::{Database, StoreSpec};

/// `ReconcileExposure` reads every customer and group (thousands of cache and ledger reads)
/// and may run this long instead of the default per-call deadline.
pub const RECONCILE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15 * 60);
pub const RECONCILE_PATH: &str = "/credit.v1.LimitService/ReconcileExposure";

/// This service's store: schema `limits` on PostgreSQL, `limits.db` on SQLite.
pub static STORE: StoreSpec = credit_runtime::service_store!("limits", outbox: 1, outbox_packed: 10, keys_per_caller: 15, audit_chain: 16);

/// What limits runs: its server, the handlers of the events it consumes, and the background
/// work for the caller to run.
pub struct Limits {
    pub server: LimitServiceServer<api::LimitsApi>,
    /// `credit.v1.ApprovalService`: people's queues and the approval matrix.
    pub approvals: ApprovalServiceServer<api::ApprovalsApi>,
    pub handlers: Vec<Arc<dyn credit_runtime::events::EventHandler>>,
    /// Releases holds whose TTL has passed.
    pub sweeper: expiry::ExpirySweeper,
    /// Releases referrals whose cause has cleared (a payment, a lifted block, a new limit).
    pub reexaminer: app::ReferralReexaminer,
    /// Escalates approval steps left waiting past their deadline.
    pub escalator: app::Escalator,
    store: Arc<dyn store::LimitStore>,
    hot: app::HotPath,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Limits")
            .field("handlers", &self.handlers.len())
            .finish_non_exhaustive()
    }
}

impl Limits {
    /// The periodic compare-and-repair of cached exposure with the ledger, every `interval`,
    /// counting repairs in `repairs`.
    pub fn background_reconcile(
        &self,
        interval: std::time::Duration,
        repairs: credit_runtime::metrics::Counter,
    ) -> reconcile::BackgroundReconcile {
        reconcile::BackgroundReconcile::new(self.hot.clone(), self.store.clone(), interval, repairs)
    }
}

/// Limits on `database`, with the exposure cache in `redis` (PostgreSQL mode) or in this
/// process (the embedded default).
///
/// Exposure of a scope without a limit is kept in `base_currency`.
pub fn build(
    database: Database,
    redis: Option<credit_runtime::RedisHandle>,
    base_currency: credit_core::Currency,
) -> Limits {
    let store: Arc<dyn store::LimitStore> = Arc::new(store::SqlLimitStore::new(database.clone()));
    let ledger: Arc<dyn ledger::LedgerStore> = Arc::new(ledger::SqlLedger::new(database));
    let cache: Arc<dyn exposure::ExposureCache> = match redis {
        Some(redis) => Arc::new(exposure::RedisExposureCache::new(redis)),
        None => Arc::new(exposure::InProcessExposureCache::new()),
    };
    let hot = app::HotPath::new(store.clone(), ledger, cache, base_currency);
    let handlers: Vec<Arc<dyn credit_runtime::events::EventHandler>> = vec![
        Arc::new(events::CustomerProjection::new(store.clone(), hot.clone())),
        Arc::new(receivables::ReceivablesProjection::new(hot.clone())),
    ];
    let sweeper = expiry::ExpirySweeper::new(
        hot.clone(),
        app::CreditAdmin::new(store.clone(), hot.clone()),
        expiry::SWEEP_INTERVAL,
    );
    let desk = app::ApprovalDesk::new(
        store.clone(),
        hot.clone(),
        app::CreditAdmin::new(store.clone(), hot.clone()),
    );
    Limits {
        server: LimitServiceServer::new(api::LimitsApi::new(store.clone(), hot.clone())),
        approvals: ApprovalServiceServer::new(api::ApprovalsApi::new(desk.clone())),
        escalator: app::Escalator::new(desk),
        handlers,
        sweeper,
        reexaminer: app::ReferralReexaminer::new(hot.clone()),
        store,
        hot,
    }
}

/// Order-entry systems reserve, capture and release credit for orders.
const ORDER_ENTRY: &[Role] = &[Role::OrderEntry];
/// A what-if check is useful to order entry and to credit staff.
const ORDER_AND_CREDIT: &[Role] = &[Role::OrderEntry, Role::Analyst, Role::CreditManager];
/// Limits, terms and exposure are read by everyone who acts on them.
const READERS: &[Role] = &[
    Role::OrderEntry,
    Role::Analyst,
    Role::CreditManager,
    Role::Collector,
];
/// The readers, and collections (terms for due dates, FX rates for the worklist).
const PEER_READERS: &[Role] = &[
    Role::OrderEntry,
    Role::Analyst,
    Role::CreditManager,
    Role::Collector,
    Role::Service,
];
/// Analysts propose; managers and the business unit may too (but never approve their own
/// request).
const MAKERS: &[Role] = &[Role::Analyst, Role::CreditManager, Role::Sales];
/// Who reads the credit policy: the makers, and rating (its freshness rules apply to every
/// rating).
const POLICY_READERS: &[Role] = &[
    Role::Analyst,
    Role::CreditManager,
    Role::Sales,
    Role::Service,
];
/// Who follows limit requests through their chains.
const REQUEST_READERS: &[Role] = &[
    Role::Analyst,
    Role::CreditManager,
    Role::Sales,
    Role::Finance,
    Role::Risk,
    Role::GeneralManager,
    Role::Board,
];
/// Checkers: approval authority decides the amount they may approve.
const MANAGERS: &[Role] = &[Role::CreditManager];
/// Who may decide a step of a limit request's chain (the step itself names which of them).
const LIMIT_DECIDERS: &[Role] = &[
    Role::CreditManager,
    Role::Sales,
    Role::Finance,
    Role::Risk,
    Role::GeneralManager,
];
/// The chains of decisions walked elsewhere are asked for by the suite's services (collections
/// for a write-off) and by the people who request those decisions.
const CHAIN_CHOOSERS: &[Role] = &[Role::Service, Role::Collector, Role::CreditManager];
/// Policy changes are proposed by those who run credit.
const POLICY_PROPOSERS: &[Role] = &[Role::CreditManager, Role::GeneralManager];
/// Everyone who works a queue (the step decides who may act on what).
const PEOPLE: &[Role] = &Role::DECIDERS;
/// The matrix is read by everyone who acts on it, and by order entry (what a referral needs).
const MATRIX_READERS: &[Role] = &[
    Role::OrderEntry,
    Role::Analyst,
    Role::CreditManager,
    Role::Collector,
    Role::Sales,
    Role::Finance,
    Role::Risk,
    Role::GeneralManager,
    Role::Board,
];
/// The referral queue is worked by credit staff and collectors (who know the overdue side),
/// finance (who verifies the figures of step 7.2) and the general manager.
const REVIEWERS: &[Role] = &[
    Role::Analyst,
    Role::CreditManager,
    Role::Collector,
    Role::Finance,
    Role::GeneralManager,
];
/// Who may decide a step of a referral's chain (step 7.2: finance verifies, the general
/// manager decides; the step names which of them).
const REFERRAL_DECIDERS: &[Role] = &[Role::CreditManager, Role::Finance, Role::GeneralManager];
/// A collector may stop credit to a customer; only a manager lifts the stop.
const BLOCKERS: &[Role] = &[Role::CreditManager, Role::Collector];
/// A credit price is quoted to those who sell and those who decide credit.
const PRICE_READERS: &[Role] = &[
    Role::OrderEntry,
    Role::Analyst,
    Role::CreditManager,
    Role::Sales,
    Role::Finance,
];
/// Securities are registered by credit staff and finance (who hold deposits and guarantee
/// letters); a second person of the SECURITY_CHANGE chain checks each one.
const SECURITY_MAKERS: &[Role] = &[Role::Analyst, Role::CreditManager, Role::Finance];
/// Rates tables, the credit policy and ledger repair are governed centrally.
const ADMIN_ONLY: &[Role] = &[];

/// Who may call which RPC. ADMIN may call all of them.
pub fn access_policy() -> AccessPolicy {
    AccessPolicy::new(
        LIMITS,
        &[
            ("Authorize", ORDER_ENTRY),
            ("Capture", ORDER_ENTRY),
            ("Release", ORDER_ENTRY),
            ("GetHold", READERS),
            ("ListHolds", READERS),
            ("CheckCredit", ORDER_AND_CREDIT),
            ("GetExposure", READERS),
            ("GetCreditLimit", READERS),
            ("ListLimitHistory", READERS),
            ("GetCreditTerms", PEER_READERS),
            ("RequestLimitChange", MAKERS),
            ("DecideLimitRequest", LIMIT_DECIDERS),
            ("ListLimitRequests", REQUEST_READERS),
            ("ProposeLimit", MAKERS),
            ("SetCreditTerms", MANAGERS),
            ("SetCreditBlock", BLOCKERS),
            ("ClearCreditBlock", MANAGERS),
            ("ListReferrals", REVIEWERS),
            ("DecideReferral", REFERRAL_DECIDERS),
            ("SetFxRate", ADMIN_ONLY),
            ("ListFxRates", PEER_READERS),
            ("GetCreditPolicy", POLICY_READERS),
            ("UpdateCreditPolicy", POLICY_PROPOSERS),
            ("ListCreditPolicyVersions", MATRIX_READERS),
            ("ReconcileExposure", ADMIN_ONLY),
            ("RegisterSecurity", SECURITY_MAKERS),
            ("ChangeSecurity", SECURITY_MAKERS),
            ("GetSecurity", MATRIX_READERS),
            ("ListSecurities", MATRIX_READERS),
            ("QuoteCreditPrice", PRICE_READERS),
        ],
    )
}

/// Who may call which RPC of `credit.v1.ApprovalService`. ADMIN may call all of them.
pub fn approvals_access_policy() -> AccessPolicy {
    AccessPolicy::new(
        APPROVALS,
        &[
            ("ListApprovalTasks", PEOPLE),
            ("DecideApprovalStep", PEOPLE),
            ("GetApprovalMatrix", MATRIX_READERS),
            ("ListApprovalMatrixVersions", MATRIX_READERS),
            ("ProposeApprovalMatrix", POLICY_PROPOSERS),
            ("ChooseApprovalChain", CHAIN_CHOOSERS),
        ],
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn access_policy_names_every_rpc_of_the_contract_and_nothing_else() {
        credit_runtime::rpc_path::assert_policy_covers_contract(&super::access_policy());
        credit_runtime::rpc_path::assert_policy_covers_contract(&super::approvals_access_policy());
    }
}
