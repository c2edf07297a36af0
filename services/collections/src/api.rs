//! The gRPC handlers of `credit.v1.CollectionsService`. Receivables (invoices, credit notes,
//! payments, the ledger, aging, payment behaviour) in [`receivables`], overdue detection in
//! [`overdue`], cases, the worklist, contacts and promises in [`cases`], disputes in
//! [`disputes`], dunning in [`dunning`], provisions, write-offs, recoveries and KPIs in
//! [`loss`].

mod cases;
pub mod convert;
mod disputes;
mod dunning;

pub(crate) use convert::timestamp;
pub(crate) use dunning::policy_draft as dunning_policy_draft;
mod loss;
mod overdue;
mod receivables;

pub use cases::DEFAULT_PD;

use std::sync::Arc;

use credit_core::ServiceError;
use credit_proto::v1 as pb;
use credit_proto::v1::collections_service_server::{CollectionsService, CollectionsServiceServer};
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use credit_proto::v1::limit_service_client::LimitServiceClient;
use credit_runtime::peers::PeerChannel;
use credit_runtime::principal;
use credit_runtime::sql::storage_error;
use tonic::{Request, Response, Status};

use crate::domain::ClassificationPolicy;
use crate::store::{CaseStore, DunningStore, LossStore, ReceivableStore, StoreError};

type Answer<T> = Result<Response<T>, Status>;

/// The gRPC handlers of `CollectionsService`.
#[derive(Debug, Clone)]
pub struct CollectionsApi {
    store: Arc<dyn ReceivableStore>,
    dunning: Arc<dyn DunningStore>,
    /// Cases, contacts, promises, disputes, customers' ratings.
    cases: Arc<dyn CaseStore>,
    /// Write-offs and recoveries.
    loss: Arc<dyn LossStore>,
    /// For the customer's payment terms when an invoice gives no due date.
    limits: Option<LimitServiceClient<PeerChannel>>,
    /// For the customer's name in dunning letters.
    intake: Option<IntakeServiceClient<PeerChannel>>,
    /// Five-level classification thresholds and provision rates.
    classification: ClassificationPolicy,
    /// The currency the worklist ranks in (the suite's base currency).
    reporting_currency: credit_core::Currency,
}

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
}

impl CollectionsApi {
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
            store,
            dunning,
            cases,
            loss,
            limits: peers.limits.map(LimitServiceClient::new),
            intake: peers.intake.map(IntakeServiceClient::new),
        }
    }

    fn dunning(&self) -> &dyn DunningStore {
        self.dunning.as_ref()
    }

    pub fn into_server(self) -> CollectionsServiceServer<Self> {
        CollectionsServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl CollectionsService for CollectionsApi {
    async fn post_invoice(
        &self,
        request: Request<pb::PostInvoiceRequest>,
    ) -> Answer<pb::PostInvoiceResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.post_invoice_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn post_credit_note(
        &self,
        request: Request<pb::PostCreditNoteRequest>,
    ) -> Answer<pb::PostCreditNoteResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.post_credit_note_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn record_payment(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Answer<pb::RecordPaymentResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.record_payment_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn get_invoice(
        &self,
        request: Request<pb::GetInvoiceRequest>,
    ) -> Answer<pb::GetInvoiceResponse> {
        let invoice = self.get_invoice_now(request.get_ref()).await?;
        Ok(Response::new(pb::GetInvoiceResponse {
            invoice: Some(invoice),
        }))
    }

    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Answer<pb::ListInvoicesResponse> {
        Ok(Response::new(
            self.list_invoices_now(request.get_ref()).await?,
        ))
    }

    async fn get_customer_ledger(
        &self,
        request: Request<pb::GetCustomerLedgerRequest>,
    ) -> Answer<pb::GetCustomerLedgerResponse> {
        Ok(Response::new(
            self.customer_ledger(request.get_ref()).await?,
        ))
    }

    async fn get_aging(
        &self,
        request: Request<pb::GetAgingRequest>,
    ) -> Answer<pb::GetAgingResponse> {
        Ok(Response::new(self.aging(request.get_ref()).await?))
    }

    async fn detect_overdue(
        &self,
        request: Request<pb::DetectOverdueRequest>,
    ) -> Answer<pb::DetectOverdueResponse> {
        Ok(Response::new(
            self.detect_overdue_now(request.get_ref()).await?,
        ))
    }

    async fn publish_dunning_policy(
        &self,
        request: Request<pb::PublishDunningPolicyRequest>,
    ) -> Answer<pb::PublishDunningPolicyResponse> {
        let principal = principal(&request)?.clone();
        let policy = self
            .publish_dunning_policy_now(&principal, request.into_inner())
            .await?;
        Ok(Response::new(pb::PublishDunningPolicyResponse {
            policy: Some(policy),
        }))
    }

    async fn list_dunning_policies(
        &self,
        request: Request<pb::ListDunningPoliciesRequest>,
    ) -> Answer<pb::ListDunningPoliciesResponse> {
        Ok(Response::new(
            self.dunning_policies_page(request.get_ref()).await?,
        ))
    }

    async fn run_dunning(
        &self,
        request: Request<pb::RunDunningRequest>,
    ) -> Answer<pb::RunDunningResponse> {
        Ok(Response::new(
            self.run_dunning_now(request.into_inner()).await?,
        ))
    }

    async fn list_dunning_actions(
        &self,
        request: Request<pb::ListDunningActionsRequest>,
    ) -> Answer<pb::ListDunningActionsResponse> {
        Ok(Response::new(
            self.dunning_actions_page(request.get_ref()).await?,
        ))
    }

    async fn get_payment_behaviour(
        &self,
        request: Request<pb::GetPaymentBehaviourRequest>,
    ) -> Answer<pb::GetPaymentBehaviourResponse> {
        let behaviour = self.payment_behaviour_now(request.get_ref()).await?;
        Ok(Response::new(pb::GetPaymentBehaviourResponse {
            behaviour: Some(behaviour),
        }))
    }

    async fn list_worklist(
        &self,
        request: Request<pb::ListWorklistRequest>,
    ) -> Answer<pb::ListWorklistResponse> {
        Ok(Response::new(
            self.list_worklist_now(request.get_ref()).await?,
        ))
    }

    async fn assign_case(
        &self,
        request: Request<pb::AssignCaseRequest>,
    ) -> Answer<pb::AssignCaseResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.assign_case_now(&principal, request.get_ref()).await?,
        ))
    }

    async fn log_contact(
        &self,
        request: Request<pb::LogContactRequest>,
    ) -> Answer<pb::LogContactResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.log_contact_now(&principal, request.get_ref()).await?,
        ))
    }

    async fn list_contacts(
        &self,
        request: Request<pb::ListContactsRequest>,
    ) -> Answer<pb::ListContactsResponse> {
        Ok(Response::new(
            self.list_contacts_now(request.get_ref()).await?,
        ))
    }

    async fn open_dispute(
        &self,
        request: Request<pb::OpenDisputeRequest>,
    ) -> Answer<pb::OpenDisputeResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.open_dispute_now(&principal, request.get_ref()).await?,
        ))
    }

    async fn resolve_dispute(
        &self,
        request: Request<pb::ResolveDisputeRequest>,
    ) -> Answer<pb::ResolveDisputeResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.resolve_dispute_now(&principal, request.get_ref())
                .await?,
        ))
    }

    async fn get_provisions(
        &self,
        request: Request<pb::GetProvisionsRequest>,
    ) -> Answer<pb::GetProvisionsResponse> {
        Ok(Response::new(self.provisions_now(request.get_ref()).await?))
    }

    async fn request_write_off(
        &self,
        request: Request<pb::RequestWriteOffRequest>,
    ) -> Answer<pb::RequestWriteOffResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.request_write_off_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_disputes(
        &self,
        request: Request<pb::ListDisputesRequest>,
    ) -> Answer<pb::ListDisputesResponse> {
        Ok(Response::new(
            self.list_disputes_now(request.get_ref()).await?,
        ))
    }

    async fn decide_write_off(
        &self,
        request: Request<pb::DecideWriteOffRequest>,
    ) -> Answer<pb::DecideWriteOffResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.decide_write_off_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_write_offs(
        &self,
        request: Request<pb::ListWriteOffsRequest>,
    ) -> Answer<pb::ListWriteOffsResponse> {
        Ok(Response::new(
            self.list_write_offs_now(request.get_ref()).await?,
        ))
    }

    async fn record_recovery(
        &self,
        request: Request<pb::RecordRecoveryRequest>,
    ) -> Answer<pb::RecordRecoveryResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.record_recovery_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn get_kpis(&self, request: Request<pb::GetKpisRequest>) -> Answer<pb::GetKpisResponse> {
        Ok(Response::new(self.kpis_now(request.get_ref()).await?))
    }
}

fn store_error(error: StoreError) -> ServiceError {
    match error {
        StoreError::KeyReused(_) => ServiceError::AlreadyExists {
            reason: "IDEMPOTENCY_KEY_REUSED",
            message: "this number or reference was used before with different content".to_owned(),
            metadata: Vec::new(),
        },
        StoreError::Refused(refusal) => refusal,
        StoreError::Database(error) => storage_error(error),
        corrupt @ StoreError::Corrupt(_) => ServiceError::internal(corrupt),
    }
}
