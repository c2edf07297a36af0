//! The gRPC handlers of `credit.v1.IntakeService`: read the caller, turn the request into
//! domain values ([`convert`]), run the use case (`crate::app`), turn the answer back. No
//! business rule lives here.

pub mod convert;
mod import;

use std::sync::Arc;

use credit_core::{Actor, Principal, Role, ServiceError};
use credit_proto::v1 as pb;
use credit_proto::v1::intake_service_server::IntakeService;
use credit_runtime::principal;
use credit_runtime::sql::{IdempotencyKey, Page};
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

pub use import::{IMPORT_BATCH_BYTES, IMPORT_BATCH_ROWS, MAX_IMPORT_BYTES, MAX_IMPORT_ROWS};

use crate::app::{GroupWithMembers, Intake, NewGroup};
use crate::domain::customer::parse_reason;
use crate::store::IntakeStore;
use convert::{
    apply_update, audit_entry_to_proto, bureau_report_to_proto, checklist_to_proto,
    customer_filter, customer_to_proto, data_point_to_proto, definition_to_proto,
    document_to_proto, group_to_proto, group_with_members_to_proto, investigation_to_proto,
    kind_from_proto, parse_bureau_report, parse_checklist, parse_customer, parse_definition,
    parse_document, parse_entries, parse_group, parse_item_answer, parse_statement,
    parse_trade_reference, parse_visit, period_type_filter, statement_to_proto, status_from_proto,
    today, trade_reference_to_proto, visit_to_proto,
};
use import::ImportCall;

/// The gRPC face of intake's use cases.
#[derive(Debug, Clone)]
pub struct IntakeApi {
    intake: Intake,
}

impl IntakeApi {
    pub fn new(store: Arc<dyn IntakeStore>) -> Self {
        Self {
            intake: Intake::new(store),
        }
    }
}

type Answer<T> = Result<Response<T>, Status>;

/// National ids are shown in full only to roles that assess credit.
fn may_see_personal_data(principal: &Principal) -> bool {
    [Role::Analyst, Role::CreditManager, Role::Admin]
        .into_iter()
        .any(|role| principal.has_role(role))
}

/// The caller as the audit trail records it, and whether it may see personal data.
fn actor_of<T>(request: &Request<T>) -> Result<(Actor, bool), Status> {
    let principal = principal(request)?;
    Ok((Actor::of(principal), may_see_personal_data(principal)))
}

fn idempotency_key(
    actor: &Actor,
    request_id: &str,
    operation: &'static str,
    content: &impl prost::Message,
) -> Result<IdempotencyKey, ServiceError> {
    IdempotencyKey::of_request(&actor.name, request_id, operation, content)
}

fn group_answer(group: &GroupWithMembers) -> Option<pb::CustomerGroup> {
    Some(group_with_members_to_proto(group))
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    async fn create_customer(
        &self,
        request: Request<pb::CreateCustomerRequest>,
    ) -> Answer<pb::CreateCustomerResponse> {
        let (actor, reveal) = actor_of(&request)?;
        let request = request.into_inner();
        let wire = request
            .customer
            .as_ref()
            .ok_or_else(|| ServiceError::invalid("customer", "is required"))?;
        let key = idempotency_key(&actor, &request.request_id, "CreateCustomer", wire)?;
        let new = parse_customer(wire, today(), "customer")?;
        let customer = self.intake.create_customer(new, key, &actor).await?;
        Ok(Response::new(pb::CreateCustomerResponse {
            customer: Some(customer_to_proto(&customer, reveal)),
        }))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Answer<pb::GetCustomerResponse> {
        let (_, reveal) = actor_of(&request)?;
        let customer = self
            .intake
            .load_customer(&request.get_ref().customer_id)
            .await?;
        Ok(Response::new(pb::GetCustomerResponse {
            customer: Some(customer_to_proto(&customer, reveal)),
        }))
    }

    async fn update_customer(
        &self,
        request: Request<pb::UpdateCustomerRequest>,
    ) -> Answer<pb::UpdateCustomerResponse> {
        let (actor, reveal) = actor_of(&request)?;
        let request = request.into_inner();
        let patch = request
            .customer
            .as_ref()
            .ok_or_else(|| ServiceError::invalid("customer", "is required"))?;
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let customer = self
            .intake
            .update_customer(
                &patch.customer_id,
                &patch.etag,
                request.reason.trim(),
                &actor,
                |current| apply_update(current, patch, &paths, today()),
            )
            .await?;
        Ok(Response::new(pb::UpdateCustomerResponse {
            customer: Some(customer_to_proto(&customer, reveal)),
        }))
    }

    async fn list_customers(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> Answer<pb::ListCustomersResponse> {
        let (_, reveal) = actor_of(&request)?;
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let filter = customer_filter(&request)?;
        let (customers, next_page_token) = self.intake.list_customers(&filter, &page).await?;
        Ok(Response::new(pb::ListCustomersResponse {
            customers: customers
                .iter()
                .map(|customer| customer_to_proto(customer, reveal))
                .collect(),
            next_page_token,
        }))
    }

    async fn set_customer_status(
        &self,
        request: Request<pb::SetCustomerStatusRequest>,
    ) -> Answer<pb::SetCustomerStatusResponse> {
        let (actor, reveal) = actor_of(&request)?;
        let request = request.into_inner();
        let next = pb::CustomerStatus::try_from(request.status)
            .ok()
            .and_then(status_from_proto)
            .ok_or_else(|| {
                ServiceError::invalid(
                    "status",
                    "is required: PROSPECT, ACTIVE, SUSPENDED or CLOSED",
                )
            })?;
        let reason = parse_reason(&request.reason, "reason").map_err(ServiceError::from)?;
        let customer = self
            .intake
            .set_customer_status(&request.customer_id, &request.etag, next, reason, &actor)
            .await?;
        Ok(Response::new(pb::SetCustomerStatusResponse {
            customer: Some(customer_to_proto(&customer, reveal)),
        }))
    }

    async fn create_group(
        &self,
        request: Request<pb::CreateGroupRequest>,
    ) -> Answer<pb::CreateGroupResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let wire = request
            .group
            .as_ref()
            .ok_or_else(|| ServiceError::invalid("group", "is required"))?;
        let key = idempotency_key(&actor, &request.request_id, "CreateGroup", wire)?;
        let (name, parent_customer_id, description) = parse_group(wire)?;
        let new = NewGroup {
            name,
            parent_customer_id,
            description,
        };
        let group = self.intake.create_group(new, key, actor).await?;
        Ok(Response::new(pb::CreateGroupResponse {
            group: group_answer(&group),
        }))
    }

    async fn add_group_member(
        &self,
        request: Request<pb::AddGroupMemberRequest>,
    ) -> Answer<pb::AddGroupMemberResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let group = self
            .intake
            .add_group_member(
                &request.group_id,
                &request.customer_id,
                request.reason.trim(),
                &actor,
            )
            .await?;
        Ok(Response::new(pb::AddGroupMemberResponse {
            group: group_answer(&group),
        }))
    }

    async fn remove_group_member(
        &self,
        request: Request<pb::RemoveGroupMemberRequest>,
    ) -> Answer<pb::RemoveGroupMemberResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let group = self
            .intake
            .remove_group_member(
                &request.group_id,
                &request.customer_id,
                request.reason.trim(),
                &actor,
            )
            .await?;
        Ok(Response::new(pb::RemoveGroupMemberResponse {
            group: group_answer(&group),
        }))
    }

    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Answer<pb::GetGroupResponse> {
        let group = self.intake.get_group(&request.get_ref().group_id).await?;
        Ok(Response::new(pb::GetGroupResponse {
            group: group_answer(&group),
        }))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Answer<pb::ListGroupsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let (groups, next_page_token) = self
            .intake
            .list_groups(request.name_prefix.trim(), &page)
            .await?;
        // Lists carry the groups themselves; GetGroup adds the members.
        Ok(Response::new(pb::ListGroupsResponse {
            groups: groups
                .iter()
                .map(|group| group_to_proto(group, Vec::new()))
                .collect(),
            next_page_token,
        }))
    }

    async fn submit_financial_statement(
        &self,
        request: Request<pb::SubmitFinancialStatementRequest>,
    ) -> Answer<pb::SubmitFinancialStatementResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let wire = request
            .statement
            .as_ref()
            .ok_or_else(|| ServiceError::invalid("statement", "is required"))?;
        let key = idempotency_key(
            &actor,
            &request.request_id,
            "SubmitFinancialStatement",
            &request,
        )?;
        let statement = parse_statement(wire, today())?;
        let stored = self
            .intake
            .submit_financial_statement(&request.customer_id, statement, key, &actor)
            .await?;
        Ok(Response::new(pb::SubmitFinancialStatementResponse {
            statement: Some(statement_to_proto(&stored)),
        }))
    }

    async fn get_financial_statement(
        &self,
        request: Request<pb::GetFinancialStatementRequest>,
    ) -> Answer<pb::GetFinancialStatementResponse> {
        let statement = self
            .intake
            .get_financial_statement(&request.get_ref().statement_id)
            .await?;
        Ok(Response::new(pb::GetFinancialStatementResponse {
            statement: Some(statement_to_proto(&statement)),
        }))
    }

    async fn list_financial_statements(
        &self,
        request: Request<pb::ListFinancialStatementsRequest>,
    ) -> Answer<pb::ListFinancialStatementsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        // An unknown customer is NOT_FOUND before a bad period type is INVALID_ARGUMENT.
        let customer = self.intake.load_customer(&request.customer_id).await?;
        let period_type = period_type_filter(request.period_type)?;
        let (statements, next_page_token) = self
            .intake
            .list_financial_statements(&customer, request.include_superseded, period_type, &page)
            .await?;
        Ok(Response::new(pb::ListFinancialStatementsResponse {
            statements: statements.iter().map(statement_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn record_bureau_report(
        &self,
        request: Request<pb::RecordBureauReportRequest>,
    ) -> Answer<pb::RecordBureauReportResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let wire = request
            .report
            .as_ref()
            .ok_or_else(|| ServiceError::invalid("report", "is required"))?;
        let key = idempotency_key(&actor, &request.request_id, "RecordBureauReport", &request)?;
        let report = parse_bureau_report(wire, today())?;
        let stored = self
            .intake
            .record_bureau_report(&request.customer_id, report, key, &actor)
            .await?;
        Ok(Response::new(pb::RecordBureauReportResponse {
            report: Some(bureau_report_to_proto(&stored)),
        }))
    }

    async fn list_bureau_reports(
        &self,
        request: Request<pb::ListBureauReportsRequest>,
    ) -> Answer<pb::ListBureauReportsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let (reports, next_page_token) = self
            .intake
            .list_bureau_reports(&request.customer_id, &page)
            .await?;
        Ok(Response::new(pb::ListBureauReportsResponse {
            reports: reports.iter().map(bureau_report_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn add_trade_reference(
        &self,
        request: Request<pb::AddTradeReferenceRequest>,
    ) -> Answer<pb::AddTradeReferenceResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let wire = request
            .reference
            .as_ref()
            .ok_or_else(|| ServiceError::invalid("reference", "is required"))?;
        let key = idempotency_key(&actor, &request.request_id, "AddTradeReference", &request)?;
        let reference = parse_trade_reference(wire, today())?;
        let stored = self
            .intake
            .add_trade_reference(&request.customer_id, reference, key, &actor)
            .await?;
        Ok(Response::new(pb::AddTradeReferenceResponse {
            reference: Some(trade_reference_to_proto(&stored)),
        }))
    }

    async fn list_trade_references(
        &self,
        request: Request<pb::ListTradeReferencesRequest>,
    ) -> Answer<pb::ListTradeReferencesResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let (references, next_page_token) = self
            .intake
            .list_trade_references(&request.customer_id, &page)
            .await?;
        Ok(Response::new(pb::ListTradeReferencesResponse {
            references: references.iter().map(trade_reference_to_proto).collect(),
            next_page_token,
        }))
    }

    /// Rows are checked and written batch by batch as they arrive (see [`IMPORT_BATCH_ROWS`]),
    /// not after the whole stream. A call that goes over [`MAX_IMPORT_ROWS`] or
    /// [`MAX_IMPORT_BYTES`] ends with INVALID_ARGUMENT naming the cap and how many of its
    /// first rows were already settled: those stay written. As every row's key is
    /// `<import_id>:<row_number>` (or its own request id), sending the rows again under the
    /// same import id, in smaller calls, answers the settled ones ALREADY_IMPORTED and creates
    /// nothing twice, the way a bulk load is resumed. A call the client cancels leaves its
    /// settled rows the same way.
    async fn import_customers(
        &self,
        request: Request<Streaming<pb::ImportCustomersRequest>>,
    ) -> Answer<pb::ImportCustomersResponse> {
        let (actor, _) = actor_of(&request)?;
        let mut messages = request.into_inner();
        let mut import: Option<ImportCall> = None;
        while let Some(message) = messages.next().await {
            let message = message?;
            let call = match &mut import {
                Some(call) => call,
                None => import.insert(ImportCall::start(&message)?),
            };
            if let Err(over_cap) = call.admit(&message) {
                tracing::warn!(
                    import_id = %call.import_id,
                    rows_settled = call.results.len(),
                    "customer import ended at its cap"
                );
                return Err(over_cap.into());
            }
            call.hold(message.rows);
            while let Some(batch) = call.full_batch() {
                self.import_batch(call, batch, &actor).await;
            }
        }
        let Some(mut call) = import else {
            return Err(
                ServiceError::invalid("import_id", "is required in the first message").into(),
            );
        };
        let rest = call.rest();
        self.import_batch(&mut call, rest, &actor).await;
        let summary = call.summary();
        tracing::info!(import_id = %call.import_id, rows = summary.rows_received, created = summary.created, invalid = summary.invalid, "customer import finished");
        Ok(Response::new(pb::ImportCustomersResponse {
            import_id: call.import_id,
            results: call.results,
            summary: Some(summary),
        }))
    }

    async fn list_customer_audit(
        &self,
        request: Request<pb::ListCustomerAuditRequest>,
    ) -> Answer<pb::ListCustomerAuditResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let (entries, next_page_token) = self
            .intake
            .list_customer_audit(&request.customer_id, &page)
            .await?;
        Ok(Response::new(pb::ListCustomerAuditResponse {
            entries: entries.iter().map(audit_entry_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn define_data_point(
        &self,
        request: Request<pb::DefineDataPointRequest>,
    ) -> Answer<pb::DefineDataPointResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let draft = parse_definition(request.definition.as_ref())?;
        let definition = self
            .intake
            .define_data_point(draft, request.expected_version, &actor)
            .await?;
        Ok(Response::new(pb::DefineDataPointResponse {
            definition: Some(definition_to_proto(&definition)),
        }))
    }

    async fn list_data_point_definitions(
        &self,
        request: Request<pb::ListDataPointDefinitionsRequest>,
    ) -> Answer<pb::ListDataPointDefinitionsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let kind = pb::CustomerKind::try_from(request.customer_kind)
            .map_err(|_| ServiceError::invalid("customer_kind", "is not a kind of customer"))?;
        let (definitions, next_page_token) = self
            .intake
            .list_data_point_definitions(kind_from_proto(kind), &page)
            .await?;
        Ok(Response::new(pb::ListDataPointDefinitionsResponse {
            definitions: definitions.iter().map(definition_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn set_data_points(
        &self,
        request: Request<pb::SetDataPointsRequest>,
    ) -> Answer<pb::SetDataPointsResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let key = idempotency_key(&actor, &request.request_id, "SetDataPoints", &request)?;
        let entries =
            parse_entries(&request.values, "values").map_err(ServiceError::InvalidArgument)?;
        let records = self
            .intake
            .set_data_points(&request.customer_id, entries, &request.note, key, &actor)
            .await?;
        let now = chrono::Utc::now();
        Ok(Response::new(pb::SetDataPointsResponse {
            data_points: records
                .iter()
                .map(|record| data_point_to_proto(record, now))
                .collect(),
        }))
    }

    async fn list_data_points(
        &self,
        request: Request<pb::ListDataPointsRequest>,
    ) -> Answer<pb::ListDataPointsResponse> {
        let records = self
            .intake
            .current_data_points(&request.get_ref().customer_id)
            .await?;
        let now = chrono::Utc::now();
        Ok(Response::new(pb::ListDataPointsResponse {
            data_points: records
                .iter()
                .map(|record| data_point_to_proto(record, now))
                .collect(),
        }))
    }

    async fn record_document(
        &self,
        request: Request<pb::RecordDocumentRequest>,
    ) -> Answer<pb::RecordDocumentResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let key = idempotency_key(&actor, &request.request_id, "RecordDocument", &request)?;
        let draft = parse_document(request.document.as_ref())?;
        let document = self
            .intake
            .record_document(&request.customer_id, draft, key, &actor)
            .await?;
        Ok(Response::new(pb::RecordDocumentResponse {
            document: Some(document_to_proto(&document)),
        }))
    }

    async fn list_documents(
        &self,
        request: Request<pb::ListDocumentsRequest>,
    ) -> Answer<pb::ListDocumentsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let (documents, next_page_token) = self
            .intake
            .list_documents(&request.customer_id, &request.document_type, &page)
            .await?;
        Ok(Response::new(pb::ListDocumentsResponse {
            documents: documents.iter().map(document_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn publish_checklist(
        &self,
        request: Request<pb::PublishChecklistRequest>,
    ) -> Answer<pb::PublishChecklistResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let key = idempotency_key(&actor, &request.request_id, "PublishChecklist", &request)?;
        let draft = parse_checklist(request.checklist.as_ref())?;
        let checklist = self.intake.publish_checklist(draft, key, &actor).await?;
        Ok(Response::new(pb::PublishChecklistResponse {
            checklist: Some(checklist_to_proto(&checklist)),
        }))
    }

    async fn list_checklists(
        &self,
        request: Request<pb::ListChecklistsRequest>,
    ) -> Answer<pb::ListChecklistsResponse> {
        let request = request.into_inner();
        let kind = pb::CustomerKind::try_from(request.customer_kind)
            .map_err(|_| ServiceError::invalid("customer_kind", "is not a kind of customer"))?;
        let checklists = self
            .intake
            .list_checklists(&request.checklist_id, kind_from_proto(kind))
            .await?;
        Ok(Response::new(pb::ListChecklistsResponse {
            checklists: checklists.iter().map(checklist_to_proto).collect(),
        }))
    }

    async fn open_investigation(
        &self,
        request: Request<pb::OpenInvestigationRequest>,
    ) -> Answer<pb::OpenInvestigationResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let key = idempotency_key(&actor, &request.request_id, "OpenInvestigation", &request)?;
        let investigation = self
            .intake
            .open_investigation(&request.customer_id, &request.checklist_id, key, &actor)
            .await?;
        Ok(Response::new(pb::OpenInvestigationResponse {
            investigation: Some(investigation_to_proto(&investigation)),
        }))
    }

    async fn record_investigation_item(
        &self,
        request: Request<pb::RecordInvestigationItemRequest>,
    ) -> Answer<pb::RecordInvestigationItemResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let answer = parse_item_answer(request.outcome.as_ref())?;
        let investigation = self
            .intake
            .record_investigation_item(
                &request.investigation_id,
                &request.item_code,
                answer,
                &request.note,
                &request.etag,
                &actor,
            )
            .await?;
        Ok(Response::new(pb::RecordInvestigationItemResponse {
            investigation: Some(investigation_to_proto(&investigation)),
        }))
    }

    async fn record_visit_report(
        &self,
        request: Request<pb::RecordVisitReportRequest>,
    ) -> Answer<pb::RecordVisitReportResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let draft = parse_visit(request.report.as_ref())?;
        let (investigation, report) = self
            .intake
            .record_visit_report(&request.investigation_id, draft, &actor)
            .await?;
        Ok(Response::new(pb::RecordVisitReportResponse {
            investigation: Some(investigation_to_proto(&investigation)),
            report: Some(visit_to_proto(&report)),
        }))
    }

    async fn complete_investigation(
        &self,
        request: Request<pb::CompleteInvestigationRequest>,
    ) -> Answer<pb::CompleteInvestigationResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let investigation = self
            .intake
            .close_investigation(
                &request.investigation_id,
                &request.note,
                request.cancel,
                &actor,
            )
            .await?;
        Ok(Response::new(pb::CompleteInvestigationResponse {
            investigation: Some(investigation_to_proto(&investigation)),
        }))
    }

    async fn get_investigation(
        &self,
        request: Request<pb::GetInvestigationRequest>,
    ) -> Answer<pb::GetInvestigationResponse> {
        let investigation = self
            .intake
            .load_investigation(&request.get_ref().investigation_id)
            .await?;
        Ok(Response::new(pb::GetInvestigationResponse {
            investigation: Some(investigation_to_proto(&investigation)),
        }))
    }

    async fn list_investigations(
        &self,
        request: Request<pb::ListInvestigationsRequest>,
    ) -> Answer<pb::ListInvestigationsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let (investigations, next_page_token) = self
            .intake
            .list_investigations(&request.customer_id, &page)
            .await?;
        Ok(Response::new(pb::ListInvestigationsResponse {
            investigations: investigations.iter().map(investigation_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_data_point_history(
        &self,
        request: Request<pb::ListDataPointHistoryRequest>,
    ) -> Answer<pb::ListDataPointHistoryResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let (records, next_page_token) = self
            .intake
            .data_point_history(&request.customer_id, &request.code, &page)
            .await?;
        let now = chrono::Utc::now();
        Ok(Response::new(pb::ListDataPointHistoryResponse {
            values: records
                .iter()
                .map(|record| data_point_to_proto(record, now))
                .collect(),
            next_page_token,
        }))
    }
}
