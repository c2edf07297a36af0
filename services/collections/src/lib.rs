//! `credit.v1.CollectionsService`: Receivables, payments, aging, dunning, the collector worklist, promises, disputes, provisions and write-offs.
//!
//! Landed: receivables — PostInvoice (credit from overpayments applied at once), PostCreditNote,
//! RecordPayment (explicit allocations or oldest due first, the rest kept as unapplied credit),
//! GetInvoice, ListInvoices, GetCustomerLedger, GetAging (as of any date), DetectOverdue (on
//! demand and hourly) and GetPaymentBehaviour — with the events limits and rating consume.
//! Collection cases (opened and closed by DetectOverdue, one open case per customer),
//! ListWorklist (ranked by expected loss with the PD rating announces), AssignCase,
//! LogContact and ListContacts with promises to pay (kept or broken by DetectOverdue),
//! OpenDispute, ResolveDispute and ListDisputes; dunning (policies as data, runs, actions).
//! Loss — GetProvisions (five-level classification), RequestWriteOff / DecideWriteOff (four
//! eyes, within authority; emits ReceivableWrittenOff), ListWriteOffs, RecordRecovery (emits
//! RecoveryRecorded) and GetKpis.

pub mod api;
pub mod app;
pub mod domain;
pub mod events;
pub mod schedule;
pub mod seed;
pub mod store;

use std::sync::Arc;

use credit_core::{AccessPolicy, Role};
use credit_proto::service_names::COLLECTIONS;
use credit_proto::v1::collections_service_server::CollectionsServiceServer;
use credit_runtime::{Database, StoreSpec};

pub use api::CollectionsApi;
pub use app::{CollectionsConfig, CollectionsPeers};

/// This service's store: schema `collections` on PostgreSQL, `collections.db` on SQLite.
pub static STORE: StoreSpec = credit_runtime::service_store!("collections", outbox: 1, outbox_packed: 6, keys_per_caller: 9, audit_chain: 13);

/// The collections service as a process runs it.
#[derive(Debug)]
pub struct CollectionsParts {
    pub server: CollectionsServiceServer<CollectionsApi>,
    /// Detects overdue receivables on a schedule.
    pub scheduler: schedule::OverdueScheduler,
    /// Consumes rating's RatingChanged (the worklist's PD).
    pub handlers: Vec<Arc<dyn credit_runtime::events::EventHandler>>,
}

/// The `CollectionsService` on `database`; limits gives customers' payment terms, intake
/// their names for dunning letters.
pub async fn build(
    database: Database,
    peers: CollectionsPeers,
    config: CollectionsConfig,
) -> Result<CollectionsParts, seed::SeedError> {
    let sql = Arc::new(store::SqlReceivableStore::new(database.clone()));
    let receivables: Arc<dyn store::ReceivableStore> = sql.clone();
    let dunning: Arc<dyn store::DunningStore> = sql.clone();
    seed::publish_shipped_policy(sql.as_ref()).await?;
    // Customers that had receivables before the running balances existed get theirs before
    // the first request is served.
    let backfilled = sql
        .backfill_balances()
        .await
        .map_err(seed::SeedError::Balances)?;
    if backfilled > 0 {
        tracing::info!(
            customers = backfilled,
            "running balances computed for existing customers"
        );
    }
    let cases: Arc<dyn store::CaseStore> = sql;
    let loss: Arc<dyn store::LossStore> = Arc::new(store::SqlLossStore::new(database));
    let api = CollectionsApi::new(app::Collections::new(
        receivables,
        dunning,
        cases.clone(),
        loss,
        peers,
        config,
    ));
    Ok(CollectionsParts {
        server: api.clone().into_server(),
        scheduler: schedule::OverdueScheduler::new(api),
        handlers: vec![Arc::new(events::RatingProjection::new(cases))],
    })
}

/// Billing and cash systems (integrated as ORDER_ENTRY principals) post invoices and payments; managers may correct.
const BILLING: &[Role] = &[Role::OrderEntry, Role::CreditManager];
/// Ledgers, aging and figures are read by credit staff.
const READERS: &[Role] = &[Role::Analyst, Role::CreditManager, Role::Collector];
/// The readers, and rating (payment behaviour for the scorecard).
const PEER_READERS: &[Role] = &[
    Role::Analyst,
    Role::CreditManager,
    Role::Collector,
    Role::Service,
];
/// Collectors work cases; managers may too.
const COLLECTORS: &[Role] = &[Role::Collector, Role::CreditManager];
/// Checkers: disputes resolved and write-offs approved within authority.
const MANAGERS: &[Role] = &[Role::CreditManager];
/// A write-off's chain names who decides each step: a credit manager, or finance and the
/// general manager for a large one (the step checks the role).
const WRITE_OFF_DECIDERS: &[Role] = &[Role::CreditManager, Role::Finance, Role::GeneralManager];
/// Dunning policies are proposed centrally (ADMIN)...
const ADMIN_ONLY: &[Role] = &[];
/// ...and approved by a second person of the POLICY_CHANGE chain (the step checks the role).
const POLICY_DECIDERS: &[Role] = &[Role::CreditManager, Role::GeneralManager];
/// Who follows dunning policy proposals.
const POLICY_READERS: &[Role] = &[
    Role::Analyst,
    Role::CreditManager,
    Role::Collector,
    Role::GeneralManager,
];

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
            ("GetOverdueInterest", READERS),
            ("ListWorklist", COLLECTORS),
            ("GetProvisions", READERS),
            ("GetPaymentBehaviour", PEER_READERS),
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
            ("DecideCreditNote", MANAGERS),
            ("ListCreditNoteApprovals", READERS),
            ("RequestWriteOff", COLLECTORS),
            ("DecideWriteOff", WRITE_OFF_DECIDERS),
            ("RecordRecovery", COLLECTORS),
            ("PublishDunningPolicy", ADMIN_ONLY),
            ("DecideDunningPolicyProposal", POLICY_DECIDERS),
            ("ListDunningPolicyProposals", POLICY_READERS),
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
