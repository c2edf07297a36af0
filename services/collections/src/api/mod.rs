//! The gRPC handlers of `credit.v1.CollectionsService`: each reads who is calling and hands the
//! request to its use case in `app` (receivables, account, overdue, cases, disputes, dunning,
//! loss); `convert` holds every protobuf ⇄ domain conversion.

pub mod convert;

pub(crate) use convert::timestamp;

use credit_proto::v1 as pb;
use credit_proto::v1::collections_service_server::{CollectionsService, CollectionsServiceServer};
use credit_runtime::principal;
use tonic::{Request, Response, Status};

use crate::app::Collections;

type Answer<T> = Result<Response<T>, Status>;

/// The gRPC handlers of `CollectionsService`: who is calling, then the use case.
#[derive(Debug, Clone)]
pub struct CollectionsApi {
    app: Collections,
}

impl CollectionsApi {
    pub fn new(app: Collections) -> Self {
        Self { app }
    }

    /// The use cases behind the handlers (the overdue scheduler runs one of them).
    pub fn app(&self) -> &Collections {
        &self.app
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
            self.app
                .post_invoice_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn post_credit_note(
        &self,
        request: Request<pb::PostCreditNoteRequest>,
    ) -> Answer<pb::PostCreditNoteResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .post_credit_note_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn decide_credit_note(
        &self,
        request: Request<pb::DecideCreditNoteRequest>,
    ) -> Answer<pb::DecideCreditNoteResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .decide_credit_note_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_credit_note_approvals(
        &self,
        request: Request<pb::ListCreditNoteApprovalsRequest>,
    ) -> Answer<pb::ListCreditNoteApprovalsResponse> {
        Ok(Response::new(
            self.app
                .list_credit_note_approvals_now(request.get_ref())
                .await?,
        ))
    }

    async fn record_payment(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Answer<pb::RecordPaymentResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .record_payment_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn get_invoice(
        &self,
        request: Request<pb::GetInvoiceRequest>,
    ) -> Answer<pb::GetInvoiceResponse> {
        let invoice = self.app.get_invoice_now(request.get_ref()).await?;
        Ok(Response::new(pb::GetInvoiceResponse {
            invoice: Some(invoice),
        }))
    }

    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Answer<pb::ListInvoicesResponse> {
        Ok(Response::new(
            self.app.list_invoices_now(request.get_ref()).await?,
        ))
    }

    async fn get_customer_ledger(
        &self,
        request: Request<pb::GetCustomerLedgerRequest>,
    ) -> Answer<pb::GetCustomerLedgerResponse> {
        Ok(Response::new(
            self.app.customer_ledger(request.get_ref()).await?,
        ))
    }

    async fn get_aging(
        &self,
        request: Request<pb::GetAgingRequest>,
    ) -> Answer<pb::GetAgingResponse> {
        Ok(Response::new(self.app.aging(request.get_ref()).await?))
    }

    async fn get_overdue_interest(
        &self,
        request: Request<pb::GetOverdueInterestRequest>,
    ) -> Answer<pb::GetOverdueInterestResponse> {
        Ok(Response::new(
            self.app.overdue_interest(request.get_ref()).await?,
        ))
    }

    async fn detect_overdue(
        &self,
        request: Request<pb::DetectOverdueRequest>,
    ) -> Answer<pb::DetectOverdueResponse> {
        Ok(Response::new(
            self.app.detect_overdue_now(request.get_ref()).await?,
        ))
    }

    async fn publish_dunning_policy(
        &self,
        request: Request<pb::PublishDunningPolicyRequest>,
    ) -> Answer<pb::PublishDunningPolicyResponse> {
        let principal = principal(&request)?.clone();
        let (policy, proposal) = self
            .app
            .propose_dunning_policy(&principal, request.into_inner())
            .await?;
        Ok(Response::new(pb::PublishDunningPolicyResponse {
            policy: Some(policy),
            proposal: proposal.as_ref().map(crate::app::dunning_proposal_to_proto),
        }))
    }

    async fn decide_dunning_policy_proposal(
        &self,
        request: Request<pb::DecideDunningPolicyProposalRequest>,
    ) -> Answer<pb::DecideDunningPolicyProposalResponse> {
        let principal = principal(&request)?.clone();
        let decided = self
            .app
            .decide_dunning_policy_proposal(&principal, request.get_ref())
            .await?;
        Ok(Response::new(pb::DecideDunningPolicyProposalResponse {
            proposal: Some(crate::app::dunning_proposal_to_proto(&decided)),
        }))
    }

    async fn list_dunning_policy_proposals(
        &self,
        request: Request<pb::ListDunningPolicyProposalsRequest>,
    ) -> Answer<pb::ListDunningPolicyProposalsResponse> {
        Ok(Response::new(
            self.app
                .dunning_policy_proposals_page(request.get_ref())
                .await?,
        ))
    }

    async fn list_dunning_policies(
        &self,
        request: Request<pb::ListDunningPoliciesRequest>,
    ) -> Answer<pb::ListDunningPoliciesResponse> {
        Ok(Response::new(
            self.app.dunning_policies_page(request.get_ref()).await?,
        ))
    }

    async fn run_dunning(
        &self,
        request: Request<pb::RunDunningRequest>,
    ) -> Answer<pb::RunDunningResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .run_dunning_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_dunning_actions(
        &self,
        request: Request<pb::ListDunningActionsRequest>,
    ) -> Answer<pb::ListDunningActionsResponse> {
        Ok(Response::new(
            self.app.dunning_actions_page(request.get_ref()).await?,
        ))
    }

    async fn get_payment_behaviour(
        &self,
        request: Request<pb::GetPaymentBehaviourRequest>,
    ) -> Answer<pb::GetPaymentBehaviourResponse> {
        let behaviour = self.app.payment_behaviour_now(request.get_ref()).await?;
        Ok(Response::new(pb::GetPaymentBehaviourResponse {
            behaviour: Some(behaviour),
        }))
    }

    async fn list_worklist(
        &self,
        request: Request<pb::ListWorklistRequest>,
    ) -> Answer<pb::ListWorklistResponse> {
        Ok(Response::new(
            self.app.list_worklist_now(request.get_ref()).await?,
        ))
    }

    async fn assign_case(
        &self,
        request: Request<pb::AssignCaseRequest>,
    ) -> Answer<pb::AssignCaseResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .assign_case_now(&principal, request.get_ref())
                .await?,
        ))
    }

    async fn log_contact(
        &self,
        request: Request<pb::LogContactRequest>,
    ) -> Answer<pb::LogContactResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .log_contact_now(&principal, request.get_ref())
                .await?,
        ))
    }

    async fn list_contacts(
        &self,
        request: Request<pb::ListContactsRequest>,
    ) -> Answer<pb::ListContactsResponse> {
        Ok(Response::new(
            self.app.list_contacts_now(request.get_ref()).await?,
        ))
    }

    async fn open_dispute(
        &self,
        request: Request<pb::OpenDisputeRequest>,
    ) -> Answer<pb::OpenDisputeResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .open_dispute_now(&principal, request.get_ref())
                .await?,
        ))
    }

    async fn resolve_dispute(
        &self,
        request: Request<pb::ResolveDisputeRequest>,
    ) -> Answer<pb::ResolveDisputeResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .resolve_dispute_now(&principal, request.get_ref())
                .await?,
        ))
    }

    async fn get_provisions(
        &self,
        request: Request<pb::GetProvisionsRequest>,
    ) -> Answer<pb::GetProvisionsResponse> {
        Ok(Response::new(
            self.app.provisions_now(request.get_ref()).await?,
        ))
    }

    async fn request_write_off(
        &self,
        request: Request<pb::RequestWriteOffRequest>,
    ) -> Answer<pb::RequestWriteOffResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .request_write_off_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_disputes(
        &self,
        request: Request<pb::ListDisputesRequest>,
    ) -> Answer<pb::ListDisputesResponse> {
        Ok(Response::new(
            self.app.list_disputes_now(request.get_ref()).await?,
        ))
    }

    async fn decide_write_off(
        &self,
        request: Request<pb::DecideWriteOffRequest>,
    ) -> Answer<pb::DecideWriteOffResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .decide_write_off_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_write_offs(
        &self,
        request: Request<pb::ListWriteOffsRequest>,
    ) -> Answer<pb::ListWriteOffsResponse> {
        Ok(Response::new(
            self.app.list_write_offs_now(request.get_ref()).await?,
        ))
    }

    async fn record_recovery(
        &self,
        request: Request<pb::RecordRecoveryRequest>,
    ) -> Answer<pb::RecordRecoveryResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.app
                .record_recovery_now(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn get_kpis(&self, request: Request<pb::GetKpisRequest>) -> Answer<pb::GetKpisResponse> {
        Ok(Response::new(self.app.kpis_now(request.get_ref()).await?))
    }
}
