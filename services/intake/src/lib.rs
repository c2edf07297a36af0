//! `credit.v1.IntakeService`: Customers, corporate groups, financial statements, bureau reports and trade references: the credit file kept before and while a customer is rated.
//!
//! Every RPC answers UNIMPLEMENTED until its issue (#3) lands; the access policy and the
//! store are in place so that landing it is adding handlers, not wiring.

use credit_core::{AccessPolicy, Role};
use credit_proto::service_names::INTAKE;
use credit_proto::v1::intake_service_server::{IntakeService, IntakeServiceServer};
use credit_runtime::{Database, StoreSpec};
use sqlx::migrate::Migrator;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// This service's store: schema `intake` on PostgreSQL, `intake.db` on SQLite.
pub static STORE: StoreSpec = StoreSpec {
    name: "intake",
    postgres_migrations: &POSTGRES_MIGRATIONS,
    sqlite_migrations: &SQLITE_MIGRATIONS,
};

/// The gRPC handlers of `IntakeService`.
#[derive(Debug, Clone)]
pub struct IntakeApi {
    #[allow(dead_code, reason = "the handlers of #3 read and write it")]
    database: Database,
}

impl IntakeApi {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    pub fn into_server(self) -> IntakeServiceServer<Self> {
        IntakeServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {}

/// Everyone who works with a customer reads its file; order entry looks customers up.
const READERS: &[Role] = &[
    Role::OrderEntry,
    Role::Analyst,
    Role::CreditManager,
    Role::Collector,
];
/// Credit analysts keep the file; managers may too.
const MAINTAINERS: &[Role] = &[Role::Analyst, Role::CreditManager];
/// Changing whether a customer may trade at all is a manager's decision.
const MANAGERS: &[Role] = &[Role::CreditManager];

/// Who may call which RPC. ADMIN may call all of them.
pub fn access_policy() -> AccessPolicy {
    AccessPolicy::new(
        INTAKE,
        &[
            ("CreateCustomer", MAINTAINERS),
            ("UpdateCustomer", MAINTAINERS),
            ("ImportCustomers", MAINTAINERS),
            ("GetCustomer", READERS),
            ("ListCustomers", READERS),
            ("SetCustomerStatus", MANAGERS),
            ("CreateGroup", MAINTAINERS),
            ("AddGroupMember", MAINTAINERS),
            ("RemoveGroupMember", MAINTAINERS),
            ("GetGroup", READERS),
            ("ListGroups", READERS),
            ("SubmitFinancialStatement", MAINTAINERS),
            ("GetFinancialStatement", READERS),
            ("ListFinancialStatements", READERS),
            ("RecordBureauReport", MAINTAINERS),
            ("ListBureauReports", READERS),
            ("AddTradeReference", MAINTAINERS),
            ("ListTradeReferences", READERS),
            ("ListCustomerAudit", MAINTAINERS),
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
