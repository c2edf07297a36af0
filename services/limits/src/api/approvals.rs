//! The gRPC handlers of `credit.v1.ApprovalService`: people's queues, verdicts on steps, and
//! the approval matrix as versioned data. Each reads the caller, converts the request, calls
//! the approval desk and converts the answer back.

use credit_proto::v1 as pb;
use credit_proto::v1::approval_service_server::ApprovalService;
use credit_runtime::principal;
use credit_runtime::sql::Page;
use tonic::{Request, Response, Status};

use credit_core::approval::ApprovalMatrix;

use super::{convert, key};
use crate::app::ApprovalDesk;

#[derive(Debug, Clone)]
pub struct ApprovalsApi {
    desk: ApprovalDesk,
}

impl ApprovalsApi {
    pub fn new(desk: ApprovalDesk) -> Self {
        Self { desk }
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ApprovalService for ApprovalsApi {
    async fn list_approval_tasks(
        &self,
        request: Request<pb::ListApprovalTasksRequest>,
    ) -> Answer<pb::ListApprovalTasksResponse> {
        let caller = principal(&request)?.clone();
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let kind = convert::decision_kind_filter(request.decision_kind)?;
        let (tasks, next) = self
            .desk
            .tasks(&caller, kind, request.include_informed, &page)
            .await?;
        let next_page_token = next
            .map(|key| credit_runtime::sql::page_token_after(&key))
            .unwrap_or_default();
        Ok(Response::new(pb::ListApprovalTasksResponse {
            tasks: tasks.iter().map(convert::task_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn decide_approval_step(
        &self,
        request: Request<pb::DecideApprovalStepRequest>,
    ) -> Answer<pb::DecideApprovalStepResponse> {
        let caller = principal(&request)?.clone();
        let request = request.into_inner();
        let key = key(&caller, &request.request_id, "DecideApprovalStep", &request)?;
        let decision = convert::parse_step_decision(&request)?;
        let task = self
            .desk
            .decide(
                &caller,
                decision.kind,
                &decision.record_id,
                decision.step_index,
                decision.action,
                &decision.note,
                &request.release_conditions,
                &key,
            )
            .await?;
        Ok(Response::new(pb::DecideApprovalStepResponse {
            task: Some(convert::task_to_proto(&task)),
        }))
    }

    async fn get_approval_matrix(
        &self,
        request: Request<pb::GetApprovalMatrixRequest>,
    ) -> Answer<pb::GetApprovalMatrixResponse> {
        let view = self
            .desk
            .admin()
            .governed_version::<ApprovalMatrix>(request.into_inner().version)
            .await?;
        Ok(Response::new(pb::GetApprovalMatrixResponse {
            matrix: Some(convert::matrix_to_proto(&view)),
        }))
    }

    async fn list_approval_matrix_versions(
        &self,
        _request: Request<pb::ListApprovalMatrixVersionsRequest>,
    ) -> Answer<pb::ListApprovalMatrixVersionsResponse> {
        let (views, in_force_version) = self
            .desk
            .admin()
            .governed_history::<ApprovalMatrix>()
            .await?;
        Ok(Response::new(pb::ListApprovalMatrixVersionsResponse {
            versions: views.iter().map(convert::matrix_to_proto).collect(),
            in_force_version,
        }))
    }

    async fn propose_approval_matrix(
        &self,
        request: Request<pb::ProposeApprovalMatrixRequest>,
    ) -> Answer<pb::ProposeApprovalMatrixResponse> {
        let caller = principal(&request)?.clone();
        let request = request.into_inner();
        let key = key(
            &caller,
            &request.request_id,
            "ProposeApprovalMatrix",
            &request,
        )?;
        let (matrix, reason, effective_from) = convert::parse_matrix_proposal(&request)?;
        let admin = self.desk.admin();
        let base = admin.newest_document::<ApprovalMatrix>().await?;
        let view = admin
            .propose_version(&caller, &base, matrix, reason, effective_from, &key)
            .await?;
        Ok(Response::new(pb::ProposeApprovalMatrixResponse {
            matrix: Some(convert::matrix_to_proto(&view)),
        }))
    }

    async fn choose_approval_chain(
        &self,
        request: Request<pb::ChooseApprovalChainRequest>,
    ) -> Answer<pb::ChooseApprovalChainResponse> {
        let request = request.into_inner();
        let choice = convert::parse_chain_choice(&request)?;
        let chosen = self.desk.choose_chain_for(&choice).await?;
        Ok(Response::new(convert::chosen_chain_to_proto(&chosen)))
    }
}
