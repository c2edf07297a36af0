//! `credit.v1.LimitService`: Credit limits with maker-checker approval, terms, blocks, and the order-time `Authorize` on exposure cached in Redis.
//!
//! Every RPC answers UNIMPLEMENTED until its issue (#4) lands; the access policy and the
//! store are in place so that landing it is adding handlers, not wiring.

use credit_core::{AccessPolicy, Role};
use credit_proto::service_names::LIMITS;
use credit_proto::v1::limit_service_server::{LimitService, LimitServiceServer};
use credit_runtime::{Database, StoreSpec};
use sqlx::migrate::Migrator;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// This service's store: schema `limits` on PostgreSQL, `limits.db` on SQLite.
pub static STORE: StoreSpec = StoreSpec {
    name: "limits",
    postgres_migrations: &POSTGRES_MIGRATIONS,
    sqlite_migrations: &SQLITE_MIGRATIONS,
};

/// The gRPC handlers of `LimitService`.
#[derive(Debug, Clone)]
pub struct LimitsApi {
    #[allow(dead_code, reason = "the handlers of #4 read and write it")]
    database: Database,
}

impl LimitsApi {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    pub fn into_server(self) -> LimitServiceServer<Self> {
        LimitServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl LimitService for LimitsApi {}

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
/// Analysts propose; managers may too (but never approve their own request).
const MAKERS: &[Role] = &[Role::Analyst, Role::CreditManager];
/// Checkers: approval authority decides the amount they may approve.
const MANAGERS: &[Role] = &[Role::CreditManager];
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
            ("GetCreditTerms", READERS),
            ("RequestLimitChange", MAKERS),
            ("DecideLimitRequest", MANAGERS),
            ("ListLimitRequests", MAKERS),
            ("ProposeLimit", MAKERS),
            ("SetCreditTerms", MANAGERS),
            ("SetCreditBlock", MANAGERS),
            ("ClearCreditBlock", MANAGERS),
            ("ListReferrals", MAKERS),
            ("DecideReferral", MANAGERS),
            ("SetFxRate", ADMIN_ONLY),
            ("ListFxRates", READERS),
            ("GetCreditPolicy", MAKERS),
            ("UpdateCreditPolicy", ADMIN_ONLY),
            ("ReconcileExposure", ADMIN_ONLY),
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
