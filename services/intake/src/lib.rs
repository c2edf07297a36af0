//! `credit.v1.IntakeService`: Customers, corporate groups, financial statements, bureau reports and trade references: the credit file kept before and while a customer is rated.
//!
//! Layout: `domain` (pure rules, no protobuf), `app` (the use cases), `store` (persistence
//! behind a trait, both backends), `api` (the gRPC handlers, and in `api::convert` every
//! conversion between the contract and the domain).

pub mod api;
pub mod app;
pub mod domain;
pub mod store;

#[cfg(test)]
mod properties;

use std::sync::Arc;

use credit_core::{AccessPolicy, Role};
use credit_proto::service_names::INTAKE;
use credit_proto::v1::intake_service_server::IntakeServiceServer;
use credit_runtime::{Database, StoreSpec};

/// This service's store: schema `intake` on PostgreSQL, `intake.db` on SQLite.
pub static STORE: StoreSpec = credit_runtime::service_store!("intake", outbox: 1, outbox_packed: 4, keys_per_caller: 5, audit_chain: 6);

/// `ImportCustomers` may run this long (up to 50,000 rows a call) instead of the default
/// per-call deadline.
pub const IMPORT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15 * 60);
pub const IMPORT_PATH: &str = "/credit.v1.IntakeService/ImportCustomers";

/// The `IntakeService` server on `database` (PostgreSQL or the embedded SQLite file).
pub fn server(database: Database) -> IntakeServiceServer<api::IntakeApi> {
    let store = Arc::new(store::SqlIntakeStore::new(database));
    IntakeServiceServer::new(api::IntakeApi::new(store))
}

/// Everyone who works with a customer reads its file; order entry looks customers up.
const READERS: &[Role] = &[
    Role::OrderEntry,
    Role::Analyst,
    Role::CreditManager,
    Role::Collector,
];
/// The readers, and the suite's other services (rating reads credit files, collections the
/// customer's name for dunning letters).
const PEER_READERS: &[Role] = &[
    Role::OrderEntry,
    Role::Analyst,
    Role::CreditManager,
    Role::Collector,
    Role::Service,
];
/// Credit analysts keep the file; managers may too.
const MAINTAINERS: &[Role] = &[Role::Analyst, Role::CreditManager];
/// Anyone a data point's definition may name as its setter; each definition narrows it.
const SETTERS: &[Role] = &[
    Role::Analyst,
    Role::CreditManager,
    Role::Sales,
    Role::Finance,
    Role::Risk,
    Role::GeneralManager,
    Role::Collector,
];
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
            ("GetCustomer", PEER_READERS),
            ("ListCustomers", READERS),
            ("SetCustomerStatus", MANAGERS),
            ("CreateGroup", MAINTAINERS),
            ("AddGroupMember", MAINTAINERS),
            ("RemoveGroupMember", MAINTAINERS),
            ("GetGroup", PEER_READERS),
            ("ListGroups", READERS),
            ("SubmitFinancialStatement", MAINTAINERS),
            ("GetFinancialStatement", READERS),
            ("ListFinancialStatements", PEER_READERS),
            ("RecordBureauReport", MAINTAINERS),
            ("ListBureauReports", PEER_READERS),
            ("AddTradeReference", MAINTAINERS),
            ("ListTradeReferences", PEER_READERS),
            ("ListCustomerAudit", MAINTAINERS),
            ("DefineDataPoint", MANAGERS),
            ("ListDataPointDefinitions", PEER_READERS),
            // Each definition names who may set it (SETTERS by default); the use case checks
            // the caller against the definitions of the values it sets.
            ("SetDataPoints", SETTERS),
            ("ListDataPoints", PEER_READERS),
            ("ListDataPointHistory", MAINTAINERS),
            ("RecordDocument", MAINTAINERS),
            ("ListDocuments", PEER_READERS),
            ("PublishChecklist", MANAGERS),
            ("ListChecklists", MAINTAINERS),
            ("OpenInvestigation", MAINTAINERS),
            ("RecordInvestigationItem", MAINTAINERS),
            ("RecordVisitReport", MAINTAINERS),
            ("CompleteInvestigation", MAINTAINERS),
            ("GetInvestigation", PEER_READERS),
            ("ListInvestigations", PEER_READERS),
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
