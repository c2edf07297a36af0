//! Collections' use cases, one module per area: receivables posted to a customer's account
//! (invoices, credit notes, payments) in [`receivables`], the account as people read it
//! (ledger, aging, payment behaviour) in [`account`], overdue detection in [`overdue`], cases,
//! the worklist, contacts and promises in [`cases`], disputes in [`disputes`], dunning in
//! [`dunning`], provisions, write-offs, recoveries and KPIs in [`loss`].
//!
//! Each use case takes the request once `api` has read who is calling, checks it through
//! `api::convert`, plans the change with the pure `domain` against what the store reads inside
//! the write, and answers.

mod account;
mod cases;
mod credit_notes;
mod disputes;
mod dunning;
mod dunning_proposals;
mod interest;
mod loss;
mod overdue;
mod receivables;
mod write_off_chain;

pub(crate) use dunning_proposals::proposal_to_proto as dunning_proposal_to_proto;

pub use cases::DEFAULT_PD;
pub(crate) use dunning::policy_draft as dunning_policy_draft;

use std::sync::Arc;

use credit_proto::v1::approval_service_client::ApprovalServiceClient;
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use credit_proto::v1::limit_service_client::LimitServiceClient;
use credit_runtime::peers::PeerChannel;

use crate::domain::ClassificationPolicy;
use crate::store::{CaseStore, DunningStore, LossStore, ReceivableStore};

/// The services collections asks over gRPC; each is optional.
#[derive(Debug, Clone, Default)]
pub struct CollectionsPeers {
    pub limits: Option<PeerChannel>,
    pub intake: Option<PeerChannel>,
}

/// How a deployment configures collections.
#[derive(Debug, Clone)]
pub struct CollectionsConfig {
    /// `CREDIT_CLASSIFICATION_RULES`; the default thresholds and rates when unset.
    pub classification: ClassificationPolicy,
    /// `CREDIT_BASE_CURRENCY`: the worklist ranks cases in it.
    pub reporting_currency: credit_core::Currency,
    /// `CREDIT_CREDIT_NOTE_FOUR_EYES_ABOVE`: credit notes above it need a second person.
    pub credit_note_four_eyes_above: credit_core::Money,
}

/// What collections' use cases work with: its stores, the peers it asks, and its settings.
#[derive(Debug, Clone)]
pub struct Collections {
    store: Arc<dyn ReceivableStore>,
    dunning: Arc<dyn DunningStore>,
    /// Cases, contacts, promises, disputes, customers' ratings.
    cases: Arc<dyn CaseStore>,
    /// Write-offs and recoveries.
    loss: Arc<dyn LossStore>,
    /// For the customer's payment terms when an invoice gives no due date.
    limits: Option<LimitServiceClient<PeerChannel>>,
    /// For the chain of the approval matrix a write-off walks (limits keeps the matrix).
    approvals: Option<ApprovalServiceClient<PeerChannel>>,
    /// For the customer's name in dunning letters.
    intake: Option<IntakeServiceClient<PeerChannel>>,
    /// Five-level classification thresholds and provision rates.
    classification: ClassificationPolicy,
    /// The currency the worklist ranks in (the suite's base currency).
    reporting_currency: credit_core::Currency,
    /// Credit notes above it need a second person.
    credit_note_four_eyes_above: credit_core::Money,
}

impl Collections {
    pub fn new(
        store: Arc<dyn ReceivableStore>,
        dunning: Arc<dyn DunningStore>,
        cases: Arc<dyn CaseStore>,
        loss: Arc<dyn LossStore>,
        peers: CollectionsPeers,
        config: CollectionsConfig,
    ) -> Self {
        Self {
            classification: config.classification,
            reporting_currency: config.reporting_currency,
            credit_note_four_eyes_above: config.credit_note_four_eyes_above,
            store,
            dunning,
            cases,
            loss,
            approvals: peers.limits.clone().map(ApprovalServiceClient::new),
            limits: peers.limits.map(LimitServiceClient::new),
            intake: peers.intake.map(IntakeServiceClient::new),
        }
    }

    fn dunning(&self) -> &dyn DunningStore {
        self.dunning.as_ref()
    }
}
