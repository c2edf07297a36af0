//! The gRPC handlers of `credit.v1.IntakeService`: read the request, let the domain decide,
//! let the store keep it, answer. No business rule lives here.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use credit_core::{Principal, Role, ServiceError};
use credit_proto::service_names::INTAKE;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_proto::v1::intake_service_server::IntakeService;
use credit_runtime::events::new_event;
use credit_runtime::principal;
use credit_runtime::sql::{Page, fingerprint, storage_error};
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::customer::{
    self, ActorRecord, Customer, CustomerKind, CustomerStatus, FieldChange, NewCustomer,
    parse_customer, parse_reason,
};
use crate::domain::records::{
    AuditAction, AuditEntry, BureauReport, Group, StatementRecord, TradeReference,
    parse_bureau_report, parse_group, parse_trade_reference,
};
use crate::domain::statement::{self, PeriodType};
use crate::store::{
    Created, CustomerFilter, IntakeStore, StoreError, bureau_report_list_key, statement_list_key,
};
use credit_runtime::sql::IdempotencyKey;

/// Rows one `ImportCustomers` call may carry (the contract's limit). The call answers once,
/// with one result per row, so the server keeps every row's result (a number, an outcome, an
/// id: about 200 bytes) until the end: this cap bounds that at about 10 MB a call.
pub const MAX_IMPORT_ROWS: usize = 50_000;

/// Bytes of rows (as encoded on the wire) one `ImportCustomers` call may carry: 64 MiB, on
/// average 1.3 KiB a row at [`MAX_IMPORT_ROWS`], several times a full row with an address
/// and contacts. It keeps one caller from holding a writer for hours with huge rows.
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

/// Rows checked and written together. Rows are read until a batch is full, written, and
/// dropped before more are read, so what a call holds of its rows is one batch plus one
/// message (which gRPC bounds at 4 MiB), whatever the size of the file.
pub const IMPORT_BATCH_ROWS: usize = 500;

/// Bytes of rows that also make a batch full: with rows near the message size limit, 500 of
/// them would be hundreds of megabytes.
pub const IMPORT_BATCH_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct IntakeApi {
    store: Arc<dyn IntakeStore>,
}

impl IntakeApi {
    pub fn new(store: Arc<dyn IntakeStore>) -> Self {
        Self { store }
    }
}

type Answer<T> = Result<Response<T>, Status>;

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// National ids are shown in full only to roles that assess credit.
fn may_see_personal_data(principal: &Principal) -> bool {
    [Role::Analyst, Role::CreditManager, Role::Admin]
        .into_iter()
        .any(|role| principal.has_role(role))
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

fn required_id(value: &str, field: &str) -> Result<String, ServiceError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if value.len() > 100 {
        return Err(ServiceError::invalid(
            field,
            "must be at most 100 characters",
        ));
    }
    Ok(value.to_owned())
}

fn idempotency_key(
    request_id: &str,
    operation: &'static str,
    content: &impl prost::Message,
) -> Result<IdempotencyKey, ServiceError> {
    Ok(IdempotencyKey {
        request_id: required_id(request_id, "request_id")?,
        operation,
        fingerprint: fingerprint(content),
    })
}

/// Store failures as callers see them.
fn store_error(error: StoreError) -> ServiceError {
    match error {
        StoreError::DuplicateRegistration { existing_id } => ServiceError::AlreadyExists {
            reason: "CUSTOMER_ALREADY_REGISTERED",
            message: format!(
                "an enterprise with this country and registration number is registered as {existing_id}"
            ),
            metadata: vec![("existing_customer_id", existing_id)],
        },
        StoreError::KeyReused(_) => ServiceError::AlreadyExists {
            reason: "IDEMPOTENCY_KEY_REUSED",
            message: "request_id was used before with different content".to_owned(),
            metadata: Vec::new(),
        },
        StoreError::VersionConflict => ServiceError::Aborted {
            reason: "CONCURRENT_CHANGE",
            message: "the record changed while this call ran; read it again and retry".to_owned(),
        },
        StoreError::NotFound(resource) => ServiceError::not_found(resource, ""),
        StoreError::Corrupt(detail) => ServiceError::internal(detail),
        StoreError::InvalidPageToken => {
            ServiceError::invalid("page_token", "is not a token this service issued")
        }
        StoreError::Database(error) => storage_error(error),
    }
}

/// [`Page::finish`] for lists whose page key is made from several fields of a row rather
/// than one the row holds: the page's rows and the next page's token.
fn finish_keyed<T>(page: &Page, rows: Vec<T>, key: fn(&T) -> String) -> (Vec<T>, String) {
    let mut keyed: Vec<(String, T)> = rows.into_iter().map(|row| (key(&row), row)).collect();
    let next_page_token = page.finish(&mut keyed, |(row_key, _)| row_key.as_str());
    (
        keyed.into_iter().map(|(_, row)| row).collect(),
        next_page_token,
    )
}

fn audit_entry(
    customer_id: &str,
    action: AuditAction,
    actor: &ActorRecord,
    changes: Vec<FieldChange>,
    reason: &str,
    request_id: &str,
) -> AuditEntry {
    AuditEntry {
        id: new_id("aud"),
        customer_id: customer_id.to_owned(),
        action,
        actor: actor.clone(),
        changed_at: Utc::now(),
        changes,
        reason: reason.to_owned(),
        request_id: request_id.to_owned(),
    }
}

fn customer_event(
    customer: &Customer,
    actor: &ActorRecord,
    request_id: &str,
    payload: Payload,
) -> pb::Event {
    pb::Event {
        aggregate_id: customer.id.clone(),
        customer_id: customer.id.clone(),
        group_id: customer.group_id.clone().unwrap_or_default(),
        actor: Some(actor.to_proto()),
        request_id: request_id.to_owned(),
        ..new_event(INTAKE, payload)
    }
}

impl IntakeApi {
    async fn load_customer(&self, customer_id: &str) -> Result<Customer, ServiceError> {
        let customer_id = required_id(customer_id, "customer_id")?;
        self.store
            .get_customer(&customer_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))
    }

    async fn load_group(&self, group_id: &str) -> Result<Group, ServiceError> {
        let group_id = required_id(group_id, "group_id")?;
        self.store
            .get_group(&group_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("group", group_id))
    }

    /// Registers a checked customer; shared by `CreateCustomer` and each import row.
    async fn register(
        &self,
        new: NewCustomer,
        key: IdempotencyKey,
        actor: &ActorRecord,
    ) -> Result<Created<Customer>, StoreError> {
        let now = Utc::now();
        let customer = Customer {
            id: new_id("cus"),
            country: new.country,
            status: CustomerStatus::Prospect,
            status_reason: "registered".to_owned(),
            status_changed_at: now,
            group_id: None,
            group_joined_at: None,
            profile: new.profile,
            version: 1,
            created_at: now,
            created_by: actor.clone(),
            updated_at: now,
            updated_by: actor.clone(),
        };
        let changes = customer::flatten(&customer.profile)
            .into_iter()
            .map(|(field, new_value)| FieldChange {
                field,
                old_value: String::new(),
                new_value,
            })
            .collect();
        let audit = audit_entry(
            &customer.id,
            AuditAction::Created,
            actor,
            changes,
            "",
            &key.request_id,
        );
        let event = customer_event(
            &customer,
            actor,
            &key.request_id,
            Payload::CustomerRegistered(pb::CustomerRegistered {
                customer_id: customer.id.clone(),
                kind: customer.profile.kind().to_proto() as i32,
                status: customer.status.to_proto() as i32,
                country: customer.country.clone(),
                industry_code: customer.profile.industry_code().to_owned(),
            }),
        );
        self.store
            .create_customer(&customer, &key, &audit, &event)
            .await
    }

    /// Saves `updated` (built from `current`) with its audit entry and events.
    async fn save(
        &self,
        current: &Customer,
        mut updated: Customer,
        audit: AuditEntry,
        events: Vec<pb::Event>,
        actor: &ActorRecord,
    ) -> Result<Customer, ServiceError> {
        updated.version = current.version + 1;
        updated.updated_at = audit.changed_at;
        updated.updated_by = actor.clone();
        self.store
            .save_customer(&updated, current.version, &audit, &events)
            .await
            .map_err(store_error)?;
        Ok(updated)
    }

    async fn group_with_members(&self, group: &Group) -> Result<pb::CustomerGroup, ServiceError> {
        let filter = CustomerFilter {
            group_id: group.id.clone(),
            ..Default::default()
        };
        let mut members = Vec::new();
        let mut page = Page::parse(
            i32::try_from(credit_runtime::sql::MAX_PAGE_SIZE).unwrap_or(500),
            "",
        )?;
        loop {
            let mut rows = self
                .store
                .list_customers(&filter, &page)
                .await
                .map_err(store_error)?;
            let next = page.finish(&mut rows, |customer| customer.id.as_str());
            members.extend(rows.into_iter().map(|customer| pb::GroupMember {
                display_name: customer.profile.display_name().to_owned(),
                joined_at: customer.group_joined_at.map(customer::timestamp),
                customer_id: customer.id,
            }));
            if next.is_empty() {
                break;
            }
            page = Page::parse(i32::try_from(page.size).unwrap_or(500), &next)?;
        }
        Ok(group.to_proto(members))
    }

    fn check_etag(current: &Customer, etag: &str) -> Result<(), ServiceError> {
        if !etag.is_empty() && etag != current.etag() {
            return Err(ServiceError::Aborted {
                reason: "ETAG_MISMATCH",
                message: format!(
                    "the customer is at {}, not {etag}; read it again",
                    current.etag()
                ),
            });
        }
        Ok(())
    }

    /// Checks every row of one batch, then stores the good ones several at a time. When rows
    /// of a batch share a registration number, the first in the file is stored first and the
    /// others come out as its duplicates, whatever the concurrency. Rows of earlier batches
    /// are stored before this one starts, so a repeat of one of them is a duplicate too.
    async fn import_rows(
        &self,
        rows: Vec<pb::ImportCustomerRow>,
        import_id: &str,
        validate_only: bool,
        actor: &ActorRecord,
    ) -> Vec<pb::ImportCustomerRowResult> {
        let mut results: Vec<Option<pb::ImportCustomerRowResult>> = Vec::with_capacity(rows.len());
        let mut first_occurrences = Vec::new();
        let mut repeats = Vec::new();
        let mut registrations = std::collections::HashSet::new();
        for (index, row) in rows.iter().enumerate() {
            match check_import_row(row, import_id) {
                Err(invalid) => results.push(Some(*invalid)),
                Ok(checked) if validate_only => results.push(Some(pb::ImportCustomerRowResult {
                    row_number: checked.row_number,
                    ..Default::default()
                })),
                Ok(checked) => {
                    results.push(None);
                    let first = checked
                        .registration()
                        .is_none_or(|registration| registrations.insert(registration));
                    if first {
                        first_occurrences.push((index, checked));
                    } else {
                        repeats.push((index, checked));
                    }
                }
            }
        }
        for phase in [first_occurrences, repeats] {
            let stored: Vec<(usize, pb::ImportCustomerRowResult)> = futures::stream::iter(phase)
                .map(|(index, checked)| async move {
                    (index, self.store_import_row(checked, actor).await)
                })
                .buffered(self.store.write_concurrency())
                .collect()
                .await;
            for (index, result) in stored {
                results[index] = Some(result);
            }
        }
        results.into_iter().flatten().collect()
    }

    async fn store_import_row(
        &self,
        row: CheckedRow,
        actor: &ActorRecord,
    ) -> pb::ImportCustomerRowResult {
        use pb::ImportRowOutcome as Outcome;
        let (outcome, customer_id, error) = match self.register(row.customer, row.key, actor).await
        {
            Ok(Created::New(customer)) => (Outcome::Created, customer.id, None),
            Ok(Created::Replayed(customer)) => (Outcome::AlreadyImported, customer.id, None),
            Err(StoreError::DuplicateRegistration { existing_id }) => {
                (Outcome::Duplicate, existing_id, None)
            }
            Err(other) => (
                Outcome::Failed,
                String::new(),
                Some(reason_of(store_error(other))),
            ),
        };
        pb::ImportCustomerRowResult {
            row_number: row.row_number,
            outcome: outcome as i32,
            customer_id,
            violations: Vec::new(),
            error,
        }
    }
}

impl IntakeApi {
    /// Checks and stores one batch of an import, and adds its results to the call's.
    async fn import_batch(
        &self,
        call: &mut ImportCall,
        batch: Vec<pb::ImportCustomerRow>,
        actor: &ActorRecord,
    ) {
        if batch.is_empty() {
            return;
        }
        let results = self
            .import_rows(batch, &call.import_id, call.validate_only, actor)
            .await;
        call.results.extend(results);
    }
}

/// One `ImportCustomers` call in progress: what it has received, the rows read but not yet
/// written, and the results of the rows before them, in the order they came.
struct ImportCall {
    import_id: String,
    validate_only: bool,
    rows_received: usize,
    bytes_received: usize,
    pending: Vec<pb::ImportCustomerRow>,
    /// Encoded size of the rows in `pending`.
    pending_bytes: usize,
    results: Vec<pb::ImportCustomerRowResult>,
}

impl ImportCall {
    /// The call as its first message opens it: the import id and `validate_only` are read
    /// from that message only.
    fn start(first: &pb::ImportCustomersRequest) -> Result<Self, ServiceError> {
        if first.import_id.trim().is_empty() {
            return Err(ServiceError::invalid(
                "import_id",
                "is required in the first message",
            ));
        }
        let import_id = required_id(&first.import_id, "import_id")?;
        Ok(Self {
            import_id,
            validate_only: first.validate_only,
            rows_received: 0,
            bytes_received: 0,
            pending: Vec::with_capacity(IMPORT_BATCH_ROWS),
            pending_bytes: 0,
            results: Vec::new(),
        })
    }

    /// Counts `message` against the call's caps, or says which cap it crosses and how many
    /// rows of the call were settled (stored, or answered invalid) before it.
    fn admit(&mut self, message: &pb::ImportCustomersRequest) -> Result<(), ServiceError> {
        let rows = self.rows_received.saturating_add(message.rows.len());
        let bytes = self
            .bytes_received
            .saturating_add(prost::Message::encoded_len(message));
        let settled = self.results.len();
        let resume = format!(
            "the first {settled} rows of this call were settled and stay so; send the rest \
             (or all of them again) under the same import_id in smaller calls"
        );
        if rows > MAX_IMPORT_ROWS {
            return Err(ServiceError::invalid(
                "rows",
                format!("one call carries at most {MAX_IMPORT_ROWS} rows; {resume}"),
            ));
        }
        if bytes > MAX_IMPORT_BYTES {
            return Err(ServiceError::invalid(
                "rows",
                format!(
                    "one call carries at most {MAX_IMPORT_BYTES} bytes ({} MiB) of rows; {resume}",
                    MAX_IMPORT_BYTES / (1024 * 1024)
                ),
            ));
        }
        self.rows_received = rows;
        self.bytes_received = bytes;
        Ok(())
    }

    /// Keeps rows read from the stream until they make a batch.
    fn hold(&mut self, rows: Vec<pb::ImportCustomerRow>) {
        for row in rows {
            self.pending_bytes = self
                .pending_bytes
                .saturating_add(prost::Message::encoded_len(&row));
            self.pending.push(row);
        }
    }

    /// The oldest rows held, when they make a full batch by count or by size.
    fn full_batch(&mut self) -> Option<Vec<pb::ImportCustomerRow>> {
        let full = self.pending.len() >= IMPORT_BATCH_ROWS
            || (self.pending_bytes >= IMPORT_BATCH_BYTES && !self.pending.is_empty());
        if !full {
            return None;
        }
        let take = self.pending.len().min(IMPORT_BATCH_ROWS);
        let batch: Vec<_> = self.pending.drain(..take).collect();
        let batch_bytes: usize = batch.iter().map(prost::Message::encoded_len).sum();
        self.pending_bytes = self.pending_bytes.saturating_sub(batch_bytes);
        Some(batch)
    }

    fn summary(&self) -> pb::ImportCustomersSummary {
        let mut summary = pb::ImportCustomersSummary {
            rows_received: i64::try_from(self.results.len()).unwrap_or(i64::MAX),
            ..Default::default()
        };
        for result in &self.results {
            match pb::ImportRowOutcome::try_from(result.outcome) {
                Ok(pb::ImportRowOutcome::Created) => summary.created += 1,
                Ok(pb::ImportRowOutcome::AlreadyImported) => summary.already_imported += 1,
                Ok(pb::ImportRowOutcome::Duplicate) => summary.duplicates += 1,
                Ok(pb::ImportRowOutcome::Invalid) => summary.invalid += 1,
                Ok(pb::ImportRowOutcome::Failed) => summary.failed += 1,
                _ => {}
            }
        }
        summary
    }
}

/// An import row that passed its checks, ready to store.
pub(crate) struct CheckedRow {
    row_number: i64,
    customer: NewCustomer,
    key: IdempotencyKey,
}

impl CheckedRow {
    /// What makes two enterprises the same customer; individuals have none.
    fn registration(&self) -> Option<(String, String)> {
        self.customer
            .profile
            .registration_number()
            .map(|number| (self.customer.country.clone(), number.to_owned()))
    }
}

/// Checks one import row, or answers it as invalid.
pub(crate) fn check_import_row(
    row: &pb::ImportCustomerRow,
    import_id: &str,
) -> Result<CheckedRow, Box<pb::ImportCustomerRowResult>> {
    let invalid = |violations: Vec<pb::FieldViolation>| pb::ImportCustomerRowResult {
        row_number: row.row_number,
        outcome: pb::ImportRowOutcome::Invalid as i32,
        customer_id: String::new(),
        violations,
        error: None,
    };
    let Some(wire) = row.customer.as_ref() else {
        return Err(Box::new(invalid(vec![pb::FieldViolation {
            field: "customer".into(),
            reason: "REQUIRED".into(),
            description: "is required".into(),
        }])));
    };
    let customer = match parse_customer(wire, today(), "customer") {
        Ok(customer) => customer,
        Err(ServiceError::InvalidArgument(violations)) => {
            return Err(Box::new(invalid(
                violations
                    .into_iter()
                    .map(|violation| pb::FieldViolation {
                        field: violation.field,
                        reason: "INVALID".into(),
                        description: violation.description,
                    })
                    .collect(),
            )));
        }
        Err(other) => {
            return Err(Box::new(pb::ImportCustomerRowResult {
                error: Some(reason_of(other)),
                outcome: pb::ImportRowOutcome::Failed as i32,
                ..invalid(Vec::new())
            }));
        }
    };
    // Without a request id of its own, a row's key is its place in the import, so sending
    // the same file again with the same import id creates nothing twice.
    let request_id = if row.request_id.trim().is_empty() {
        format!("{import_id}:{}", row.row_number)
    } else {
        row.request_id.trim().to_owned()
    };
    Ok(CheckedRow {
        row_number: row.row_number,
        customer,
        key: IdempotencyKey {
            request_id,
            operation: "CreateCustomer",
            fingerprint: fingerprint(wire),
        },
    })
}

/// A failure as a stable reason code inside a successful response (an import row).
fn reason_of(error: ServiceError) -> pb::Reason {
    let status = Status::from(error);
    let code = match status.code() {
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        _ => "INTERNAL",
    };
    pb::Reason {
        code: code.to_owned(),
        message: status.message().to_owned(),
        metadata: Default::default(),
    }
}

fn actor_of<T>(request: &Request<T>) -> Result<(ActorRecord, bool), Status> {
    let principal = principal(request)?;
    Ok((ActorRecord::of(principal), may_see_personal_data(principal)))
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
        let key = idempotency_key(&request.request_id, "CreateCustomer", wire)?;
        let new = parse_customer(wire, today(), "customer")?;
        let customer = self
            .register(new, key, &actor)
            .await
            .map_err(store_error)?
            .into_inner();
        Ok(Response::new(pb::CreateCustomerResponse {
            customer: Some(customer.to_proto(reveal)),
        }))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Answer<pb::GetCustomerResponse> {
        let (_, reveal) = actor_of(&request)?;
        let customer = self.load_customer(&request.get_ref().customer_id).await?;
        Ok(Response::new(pb::GetCustomerResponse {
            customer: Some(customer.to_proto(reveal)),
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
        let current = self.load_customer(&patch.customer_id).await?;
        Self::check_etag(&current, &patch.etag)?;
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let profile = customer::apply_update(&current, patch, &paths, today())?;
        let changes = customer::diff(&current.profile, &profile);
        if changes.is_empty() {
            return Ok(Response::new(pb::UpdateCustomerResponse {
                customer: Some(current.to_proto(reveal)),
            }));
        }
        let audit = audit_entry(
            &current.id,
            AuditAction::Updated,
            &actor,
            changes,
            request.reason.trim(),
            "",
        );
        let updated = Customer {
            profile,
            ..current.clone()
        };
        let saved = self
            .save(&current, updated, audit, Vec::new(), &actor)
            .await?;
        Ok(Response::new(pb::UpdateCustomerResponse {
            customer: Some(saved.to_proto(reveal)),
        }))
    }

    async fn list_customers(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> Answer<pb::ListCustomersResponse> {
        let (_, reveal) = actor_of(&request)?;
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let mut statuses = Vec::new();
        for (index, status) in request.statuses.iter().enumerate() {
            let status = pb::CustomerStatus::try_from(*status)
                .ok()
                .and_then(CustomerStatus::from_proto)
                .ok_or_else(|| {
                    ServiceError::invalid(format!("statuses[{index}]"), "is not a customer status")
                })?;
            statuses.push(status);
        }
        let kind = match pb::CustomerKind::try_from(request.kind) {
            Ok(kind) => CustomerKind::from_proto(kind),
            Err(_) => return Err(ServiceError::invalid("kind", "is not a customer kind").into()),
        };
        let filter = CustomerFilter {
            statuses,
            kind,
            industry_code: request.industry_code.trim().to_ascii_uppercase(),
            country: request.country.trim().to_ascii_uppercase(),
            group_id: request.group_id.trim().to_owned(),
            name_prefix: request.name_prefix.trim().to_owned(),
            registration_number: request.registration_number.trim().to_ascii_uppercase(),
            external_reference: request.external_reference.trim().to_owned(),
        };
        let mut customers = self
            .store
            .list_customers(&filter, &page)
            .await
            .map_err(store_error)?;
        let next_page_token = page.finish(&mut customers, |customer| customer.id.as_str());
        Ok(Response::new(pb::ListCustomersResponse {
            customers: customers
                .iter()
                .map(|customer| customer.to_proto(reveal))
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
            .and_then(CustomerStatus::from_proto)
            .ok_or_else(|| {
                ServiceError::invalid(
                    "status",
                    "is required: PROSPECT, ACTIVE, SUSPENDED or CLOSED",
                )
            })?;
        let reason = parse_reason(&request.reason, "reason")?;
        let current = self.load_customer(&request.customer_id).await?;
        Self::check_etag(&current, &request.etag)?;
        if current.status == next {
            // A retried call: the change is already made.
            return Ok(Response::new(pb::SetCustomerStatusResponse {
                customer: Some(current.to_proto(reveal)),
            }));
        }
        if !current.status.may_become(next) {
            return Err(ServiceError::FailedPrecondition {
                reason: "INVALID_STATUS_TRANSITION",
                message: format!(
                    "a {} customer cannot become {}",
                    current.status.as_str(),
                    next.as_str()
                ),
                metadata: vec![("current_status", current.status.as_str().to_owned())],
            }
            .into());
        }
        let change = FieldChange {
            field: "status".into(),
            old_value: current.status.as_str().into(),
            new_value: next.as_str().into(),
        };
        let audit = audit_entry(
            &current.id,
            AuditAction::StatusChanged,
            &actor,
            vec![change],
            &reason,
            "",
        );
        let updated = Customer {
            status: next,
            status_reason: reason.clone(),
            status_changed_at: audit.changed_at,
            ..current.clone()
        };
        let event = customer_event(
            &updated,
            &actor,
            "",
            Payload::CustomerStatusChanged(pb::CustomerStatusChanged {
                customer_id: current.id.clone(),
                previous_status: current.status.to_proto() as i32,
                status: next.to_proto() as i32,
                reason,
            }),
        );
        let saved = self
            .save(&current, updated, audit, vec![event], &actor)
            .await?;
        Ok(Response::new(pb::SetCustomerStatusResponse {
            customer: Some(saved.to_proto(reveal)),
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
        let key = idempotency_key(&request.request_id, "CreateGroup", wire)?;
        let (name, parent_customer_id, description) = parse_group(wire)?;
        if !parent_customer_id.is_empty() {
            self.load_customer(&parent_customer_id).await?;
        }
        let group = Group {
            id: new_id("grp"),
            name,
            parent_customer_id,
            description,
            created_at: Utc::now(),
            created_by: actor,
        };
        let group = self
            .store
            .create_group(&group, &key)
            .await
            .map_err(store_error)?
            .into_inner();
        Ok(Response::new(pb::CreateGroupResponse {
            group: Some(self.group_with_members(&group).await?),
        }))
    }

    async fn add_group_member(
        &self,
        request: Request<pb::AddGroupMemberRequest>,
    ) -> Answer<pb::AddGroupMemberResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let group = self.load_group(&request.group_id).await?;
        let current = self.load_customer(&request.customer_id).await?;
        match current.group_id.as_deref() {
            Some(group_id) if group_id == group.id => {}
            Some(other) => {
                return Err(ServiceError::FailedPrecondition {
                    reason: "CUSTOMER_IN_ANOTHER_GROUP",
                    message: format!(
                        "the customer belongs to group {other}; remove it there first"
                    ),
                    metadata: vec![("current_group_id", other.to_owned())],
                }
                .into());
            }
            None => {
                let reason = request.reason.trim();
                let change = FieldChange {
                    field: "group_id".into(),
                    old_value: String::new(),
                    new_value: group.id.clone(),
                };
                let audit = audit_entry(
                    &current.id,
                    AuditAction::GroupJoined,
                    &actor,
                    vec![change],
                    reason,
                    "",
                );
                let updated = Customer {
                    group_id: Some(group.id.clone()),
                    group_joined_at: Some(audit.changed_at),
                    ..current.clone()
                };
                let event = customer_event(
                    &updated,
                    &actor,
                    "",
                    Payload::GroupMembershipChanged(pb::GroupMembershipChanged {
                        group_id: group.id.clone(),
                        customer_id: current.id.clone(),
                        change: pb::GroupMembershipChange::Added as i32,
                    }),
                );
                self.save(&current, updated, audit, vec![event], &actor)
                    .await?;
            }
        }
        Ok(Response::new(pb::AddGroupMemberResponse {
            group: Some(self.group_with_members(&group).await?),
        }))
    }

    async fn remove_group_member(
        &self,
        request: Request<pb::RemoveGroupMemberRequest>,
    ) -> Answer<pb::RemoveGroupMemberResponse> {
        let (actor, _) = actor_of(&request)?;
        let request = request.into_inner();
        let group = self.load_group(&request.group_id).await?;
        let current = self.load_customer(&request.customer_id).await?;
        if current.group_id.as_deref() == Some(group.id.as_str()) {
            let change = FieldChange {
                field: "group_id".into(),
                old_value: group.id.clone(),
                new_value: String::new(),
            };
            let audit = audit_entry(
                &current.id,
                AuditAction::GroupLeft,
                &actor,
                vec![change],
                request.reason.trim(),
                "",
            );
            let updated = Customer {
                group_id: None,
                group_joined_at: None,
                ..current.clone()
            };
            let mut event = customer_event(
                &updated,
                &actor,
                "",
                Payload::GroupMembershipChanged(pb::GroupMembershipChanged {
                    group_id: group.id.clone(),
                    customer_id: current.id.clone(),
                    change: pb::GroupMembershipChange::Removed as i32,
                }),
            );
            event.group_id = group.id.clone();
            self.save(&current, updated, audit, vec![event], &actor)
                .await?;
        } else if current.group_id.is_some() {
            return Err(ServiceError::failed_precondition(
                "NOT_A_MEMBER",
                "the customer belongs to another group",
            )
            .into());
        }
        // A customer in no group: the removal is already done (a retried call).
        Ok(Response::new(pb::RemoveGroupMemberResponse {
            group: Some(self.group_with_members(&group).await?),
        }))
    }

    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Answer<pb::GetGroupResponse> {
        let group = self.load_group(&request.get_ref().group_id).await?;
        Ok(Response::new(pb::GetGroupResponse {
            group: Some(self.group_with_members(&group).await?),
        }))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Answer<pb::ListGroupsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let mut groups = self
            .store
            .list_groups(request.name_prefix.trim(), &page)
            .await
            .map_err(store_error)?;
        let next_page_token = page.finish(&mut groups, |group| group.id.as_str());
        // Lists carry the groups themselves; GetGroup adds the members.
        Ok(Response::new(pb::ListGroupsResponse {
            groups: groups
                .iter()
                .map(|group| group.to_proto(Vec::new()))
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
        let key = idempotency_key(&request.request_id, "SubmitFinancialStatement", &request)?;
        let parsed = statement::parse_statement(wire, today())?;
        let customer = self.load_customer(&request.customer_id).await?;
        let record = StatementRecord {
            id: new_id("fst"),
            customer_id: customer.id.clone(),
            period: parsed.period,
            audited: parsed.audited,
            figures: parsed.figures,
            version: 0,
            superseded: false,
            submitted_at: Utc::now(),
            submitted_by: actor.clone(),
        };
        let change = FieldChange {
            field: "financial_statement".into(),
            old_value: String::new(),
            new_value: format!("{} {}", record.period_key(), record.id),
        };
        let audit = audit_entry(
            &customer.id,
            AuditAction::StatementSubmitted,
            &actor,
            vec![change],
            "",
            &key.request_id,
        );
        let make_event = |stored: &StatementRecord| {
            let ratios = statement::ratios(&stored.figures);
            let wire_ratios = pb::FinancialRatios::from(&ratios);
            // The figures as the statement itself shows them on the wire, so a consumer
            // reads the same amounts GetFinancialStatement returns.
            let (balance_sheet, income_statement, _) = statement::figures_to_proto(&stored.figures);
            customer_event(
                &customer,
                &actor,
                &key.request_id,
                Payload::FinancialStatementSubmitted(pb::FinancialStatementSubmitted {
                    customer_id: stored.customer_id.clone(),
                    statement_id: stored.id.clone(),
                    version: stored.version,
                    fiscal_year: stored.period.fiscal_year,
                    fiscal_quarter: stored.period.fiscal_quarter.map(i32::from).unwrap_or(0),
                    period_end_date: Some(customer::date_to_proto(stored.period.period_end)),
                    altman_z_score: wire_ratios.altman_z_score,
                    currency: stored.figures.currency.clone(),
                    equity: balance_sheet.equity,
                    revenue: income_statement.revenue,
                    period_months: i32::from(stored.period.period_type.months()),
                }),
            )
        };
        let stored = self
            .store
            .add_statement(&record, &key, &audit, &make_event)
            .await
            .map_err(store_error)?
            .into_inner();
        Ok(Response::new(pb::SubmitFinancialStatementResponse {
            statement: Some(stored.to_proto()),
        }))
    }

    async fn get_financial_statement(
        &self,
        request: Request<pb::GetFinancialStatementRequest>,
    ) -> Answer<pb::GetFinancialStatementResponse> {
        let statement_id = required_id(&request.get_ref().statement_id, "statement_id")?;
        let statement = self
            .store
            .get_statement(&statement_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("financial statement", statement_id))?;
        Ok(Response::new(pb::GetFinancialStatementResponse {
            statement: Some(statement.to_proto()),
        }))
    }

    async fn list_financial_statements(
        &self,
        request: Request<pb::ListFinancialStatementsRequest>,
    ) -> Answer<pb::ListFinancialStatementsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let customer = self.load_customer(&request.customer_id).await?;
        let period_type = match pb::FiscalPeriodType::try_from(request.period_type) {
            Ok(pb::FiscalPeriodType::Unspecified) => None,
            Ok(pb::FiscalPeriodType::Annual) => Some(PeriodType::Annual),
            Ok(pb::FiscalPeriodType::Quarterly) => Some(PeriodType::Quarterly),
            Err(_) => {
                return Err(
                    ServiceError::invalid("period_type", "is not a fiscal period type").into(),
                );
            }
        };
        let statements = self
            .store
            .list_statements(&customer.id, request.include_superseded, period_type, &page)
            .await
            .map_err(store_error)?;
        let (statements, next_page_token) = finish_keyed(&page, statements, statement_list_key);
        Ok(Response::new(pb::ListFinancialStatementsResponse {
            statements: statements.iter().map(StatementRecord::to_proto).collect(),
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
        let key = idempotency_key(&request.request_id, "RecordBureauReport", &request)?;
        let parsed = parse_bureau_report(wire, today())?;
        let customer = self.load_customer(&request.customer_id).await?;
        let report = BureauReport {
            id: new_id("bur"),
            customer_id: customer.id.clone(),
            agency: parsed.agency,
            report_date: parsed.report_date,
            score: parsed.score,
            agency_rating: parsed.agency_rating,
            lawsuits_count: parsed.lawsuits_count,
            tax_compliance: parsed.tax_compliance,
            summary: parsed.summary,
            external_reference: parsed.external_reference,
            created_at: Utc::now(),
            created_by: actor.clone(),
        };
        let change = FieldChange {
            field: "bureau_report".into(),
            old_value: String::new(),
            new_value: format!("{} {} {}", report.agency, report.report_date, report.id),
        };
        let audit = audit_entry(
            &customer.id,
            AuditAction::BureauReportRecorded,
            &actor,
            vec![change],
            "",
            &key.request_id,
        );
        let event = customer_event(
            &customer,
            &actor,
            &key.request_id,
            Payload::BureauReportRecorded(pb::BureauReportRecorded {
                customer_id: customer.id.clone(),
                report_id: report.id.clone(),
                agency: report.agency.clone(),
                report_date: Some(customer::date_to_proto(report.report_date)),
            }),
        );
        let stored = self
            .store
            .add_bureau_report(&report, &key, &audit, &event)
            .await
            .map_err(store_error)?
            .into_inner();
        Ok(Response::new(pb::RecordBureauReportResponse {
            report: Some(stored.to_proto()),
        }))
    }

    async fn list_bureau_reports(
        &self,
        request: Request<pb::ListBureauReportsRequest>,
    ) -> Answer<pb::ListBureauReportsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let customer = self.load_customer(&request.customer_id).await?;
        let reports = self
            .store
            .list_bureau_reports(&customer.id, &page)
            .await
            .map_err(store_error)?;
        let (reports, next_page_token) = finish_keyed(&page, reports, bureau_report_list_key);
        Ok(Response::new(pb::ListBureauReportsResponse {
            reports: reports.iter().map(BureauReport::to_proto).collect(),
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
        let key = idempotency_key(&request.request_id, "AddTradeReference", &request)?;
        let parsed = parse_trade_reference(wire, today())?;
        let customer = self.load_customer(&request.customer_id).await?;
        let reference = TradeReference {
            id: new_id("trf"),
            customer_id: customer.id.clone(),
            supplier_name: parsed.supplier_name,
            relationship_months: parsed.relationship_months,
            typical_credit_line: parsed.typical_credit_line,
            payment_experience: parsed.payment_experience,
            days_beyond_terms: parsed.days_beyond_terms,
            reference_date: parsed.reference_date,
            notes: parsed.notes,
            created_at: Utc::now(),
            created_by: actor.clone(),
        };
        let change = FieldChange {
            field: "trade_reference".into(),
            old_value: String::new(),
            new_value: format!("{} {}", reference.supplier_name, reference.id),
        };
        let audit = audit_entry(
            &customer.id,
            AuditAction::TradeReferenceAdded,
            &actor,
            vec![change],
            "",
            &key.request_id,
        );
        let stored = self
            .store
            .add_trade_reference(&reference, &key, &audit)
            .await
            .map_err(store_error)?
            .into_inner();
        Ok(Response::new(pb::AddTradeReferenceResponse {
            reference: Some(stored.to_proto()),
        }))
    }

    async fn list_trade_references(
        &self,
        request: Request<pb::ListTradeReferencesRequest>,
    ) -> Answer<pb::ListTradeReferencesResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let customer = self.load_customer(&request.customer_id).await?;
        let mut references = self
            .store
            .list_trade_references(&customer.id, &page)
            .await
            .map_err(store_error)?;
        let next_page_token = page.finish(&mut references, |reference| reference.id.as_str());
        Ok(Response::new(pb::ListTradeReferencesResponse {
            references: references.iter().map(TradeReference::to_proto).collect(),
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
        let rest = std::mem::take(&mut call.pending);
        call.pending_bytes = 0;
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
        let customer = self.load_customer(&request.customer_id).await?;
        let mut entries = self
            .store
            .list_audit(&customer.id, &page)
            .await
            .map_err(store_error)?;
        let next_page_token = page.finish(&mut entries, |entry| entry.id.as_str());
        Ok(Response::new(pb::ListCustomerAuditResponse {
            entries: entries.iter().map(AuditEntry::to_proto).collect(),
            next_page_token,
        }))
    }
}
