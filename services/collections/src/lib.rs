//! `credit.v1.CollectionsService`: Receivables, payments, aging, dunning, the collector worklist, promises, disputes, provisions and write-offs.
//!
//! Every RPC answers UNIMPLEMENTED until its issue (#6) lands; the access policy and the
//! store are in place so that landing it is adding handlers, not wiring.

pub mod domain;

use credit_core::{AccessPolicy, Role};
use credit_proto::service_names::COLLECTIONS;
use credit_proto::v1::collections_service_server::{CollectionsService, CollectionsServiceServer};
use credit_runtime::{Database, StoreSpec};
use sqlx::migrate::Migrator;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// This service's store: schema `collections` on PostgreSQL, `collections.db` on SQLite.
pub static STORE: StoreSpec = StoreSpec {
    name: "collections",
    postgres_migrations: &POSTGRES_MIGRATIONS,
    sqlite_migrations: &SQLITE_MIGRATIONS,
};

/// The gRPC handlers of `CollectionsService`.
#[derive(Debug, Clone)]
pub struct CollectionsApi {
    #[allow(dead_code, reason = "the handlers of #6 read and write it")]
    database: Database,
}

impl CollectionsApi {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    pub fn into_server(self) -> CollectionsServiceServer<Self> {
        CollectionsServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl CollectionsService for CollectionsApi {}

/// Billing and cash systems (integrated as ORDER_ENTRY principals) post invoices and payments; managers may correct.
const BILLING: &[Role] = &[Role::OrderEntry, Role::CreditManager];
/// Ledgers, aging and figures are read by credit staff.
const READERS: &[Role] = &[Role::Analyst, Role::CreditManager, Role::Collector];
/// Collectors work cases; managers may too.
const COLLECTORS: &[Role] = &[Role::Collector, Role::CreditManager];
/// Checkers: disputes resolved and write-offs approved within authority.
const MANAGERS: &[Role] = &[Role::CreditManager];
/// Dunning policies are governed centrally.
const ADMIN_ONLY: &[Role] = &[];

/// Who may call which RPC. ADMIN may call all of them.
pub fn access_policy() -> AccessPolicy {
    AccessPolicy::new(
        COLLECTIONS,
        &[
            ("PostInvoice", BILLING),
            ("PostCreditNote", BILLING),
            ("RecordPayment", BILLING),
            ("GetInvoice", READERS),
            ("ListInvoices", READERS),
            ("GetCustomerLedger", READERS),
            ("GetAging", READERS),
            ("ListWorklist", COLLECTORS),
            ("GetProvisions", READERS),
            ("GetPaymentBehaviour", READERS),
            ("GetKpis", READERS),
            ("DetectOverdue", COLLECTORS),
            ("RunDunning", COLLECTORS),
            ("ListDunningActions", READERS),
            ("AssignCase", MANAGERS),
            ("ListContacts", READERS),
            ("ListDisputes", READERS),
            ("ListWriteOffs", READERS),
            ("LogContact", COLLECTORS),
            ("OpenDispute", COLLECTORS),
            ("ResolveDispute", MANAGERS),
            ("RequestWriteOff", COLLECTORS),
            ("DecideWriteOff", MANAGERS),
            ("RecordRecovery", COLLECTORS),
            ("PublishDunningPolicy", ADMIN_ONLY),
            ("ListDunningPolicies", READERS),
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
