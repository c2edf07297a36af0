//! Intake's persistence: the [`IntakeStore`] trait the use cases write through, the filters
//! and list keys it takes, and the errors it answers with (the store kit's). The SQL
//! implementation, on PostgreSQL and on the embedded SQLite file, is [`SqlIntakeStore`].
//! Every change commits together with its audit entry and its outbox event.

pub mod audit;
mod rows;
mod sql;

use async_trait::async_trait;
use chrono::NaiveDate;
use credit_core::ServiceError;
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, Page};
pub use credit_runtime::store::{Outcome, StoreError, StoreResult};

pub use sql::SqlIntakeStore;

use crate::domain::customer::{Customer, CustomerKind, CustomerStatus};
use crate::domain::data_points::{DataPointRecord, Definition, MAX_DEFINITIONS};
use crate::domain::investigations::{Checklist, CreditDocument, Investigation};
use crate::domain::records::{AuditEntry, BureauReport, Group, StatementRecord, TradeReference};
use crate::domain::statement::PeriodType;

/// The answer to a registration whose enterprise is registered already (checked inside the
/// create's transaction); carries the existing customer's id for the caller.
pub fn duplicate_registration(existing_id: String) -> StoreError {
    StoreError::refused(ServiceError::AlreadyExists {
        reason: DUPLICATE_REGISTRATION,
        message: format!(
            "an enterprise with this country and registration number is registered as {existing_id}"
        ),
        metadata: vec![(EXISTING_CUSTOMER_ID, existing_id)],
    })
}

pub const DUPLICATE_REGISTRATION: &str = "CUSTOMER_ALREADY_REGISTERED";
pub const EXISTING_CUSTOMER_ID: &str = "existing_customer_id";

/// The existing customer's id, when `error` refused a registration as a duplicate.
pub fn duplicate_of(error: &StoreError) -> Option<&str> {
    match error {
        StoreError::Refused(answer) => match answer.as_ref() {
            ServiceError::AlreadyExists {
                reason: DUPLICATE_REGISTRATION,
                metadata,
                ..
            } => metadata
                .iter()
                .find(|(key, _)| *key == EXISTING_CUSTOMER_ID)
                .map(|(_, id)| id.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// Filters of `ListCustomers`; empty means "any".
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub statuses: Vec<CustomerStatus>,
    pub kind: Option<CustomerKind>,
    pub industry_code: String,
    pub country: String,
    pub group_id: String,
    /// Lower-case prefix of the display name.
    pub name_prefix: String,
    pub registration_number: String,
    pub external_reference: String,
}

/// Data point definitions and values: what a company defined, and each customer's values with
/// their history. Part of every [`IntakeStore`].
#[async_trait]
pub trait DataPointStore: Send + Sync {
    /// Stores `definition` as a new data point (`expected_version` 0) or as the version after
    /// `expected_version`; `VersionConflict` when the stored version differs (or the code
    /// exists when creating), `Refused` when creating would pass [`MAX_DEFINITIONS`].
    async fn define_data_point(
        &self,
        definition: &Definition,
        expected_version: i64,
    ) -> StoreResult<()>;

    /// Every definition, in code order (at most [`MAX_DEFINITIONS`]).
    async fn data_point_definitions(&self) -> StoreResult<Vec<Definition>>;

    /// Writes one change of a customer's values with its audit entry: each record joins the
    /// history and becomes the current value of its code (a record without a value removes
    /// it). When `key` was used before, nothing is written and the first change's records come
    /// back.
    async fn set_data_points(
        &self,
        records: &[DataPointRecord],
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Outcome<Vec<DataPointRecord>>>;

    /// The current values of a customer, in code order (at most one per definition).
    async fn current_data_points(&self, customer_id: &str) -> StoreResult<Vec<DataPointRecord>>;

    /// A page of a customer's values of one code, newest first, after `page.after` (a record
    /// id).
    async fn data_point_history(
        &self,
        customer_id: &str,
        code: &str,
        page: &Page,
    ) -> StoreResult<Vec<DataPointRecord>>;
}

/// Documents, investigation checklists and investigations. Part of every [`IntakeStore`].
#[async_trait]
pub trait InvestigationStore: Send + Sync {
    /// Records a document with its audit entry, unless `key` was used before (then the first
    /// document comes back).
    async fn add_document(
        &self,
        document: &CreditDocument,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Outcome<CreditDocument>>;

    async fn get_document(&self, id: &str) -> StoreResult<Option<CreditDocument>>;

    /// A customer's documents (of `document_type` unless empty), newest first, after the
    /// page's key ([`document_list_key`], read like a bureau report's).
    async fn list_documents(
        &self,
        customer_id: &str,
        document_type: &str,
        page: &Page,
    ) -> StoreResult<Vec<CreditDocument>>;

    /// Stores a new checklist version, unless `key` was used before (then the first one comes
    /// back); `VersionConflict` when the version exists already (another publication came
    /// first).
    async fn add_checklist(
        &self,
        checklist: &Checklist,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<Checklist>>;

    /// The latest version of every checklist, by id (at most `MAX_CHECKLISTS`).
    async fn latest_checklists(&self) -> StoreResult<Vec<Checklist>>;

    /// Every version of one checklist, newest first.
    async fn checklist_versions(&self, checklist_id: &str) -> StoreResult<Vec<Checklist>>;

    /// Stores a new open investigation with its audit entry, unless `key` was used before (then
    /// the first one comes back). `Refused` (FAILED_PRECONDITION INVESTIGATION_OPEN) when the
    /// customer has an open investigation.
    async fn create_investigation(
        &self,
        investigation: &Investigation,
        key: &IdempotencyKey,
        audit: &AuditEntry,
    ) -> StoreResult<Outcome<Investigation>>;

    async fn get_investigation(&self, id: &str) -> StoreResult<Option<Investigation>>;

    /// Replaces the investigation stored at `expected_version`, in one write with the data
    /// points its change set, its audit entry and its event; `VersionConflict` otherwise.
    async fn save_investigation(
        &self,
        investigation: &Investigation,
        expected_version: i64,
        changes: &InvestigationChanges<'_>,
    ) -> StoreResult<()>;

    /// A customer's investigations, newest first, after `page.after` (an id).
    async fn list_investigations(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<Investigation>>;
}

/// What is written with a change of an investigation.
#[derive(Debug, Default)]
pub struct InvestigationChanges<'a> {
    pub data_points: &'a [DataPointRecord],
    pub audit: Option<&'a AuditEntry>,
    pub event: Option<&'a Event>,
}

/// The page key of a document in its customer's list: issue date, then id.
pub fn document_list_key(document: &CreditDocument) -> String {
    format!("{}|{}", document.issued_on.format("%Y-%m-%d"), document.id)
}

#[async_trait]
pub trait IntakeStore: DataPointStore + InvestigationStore + Send + Sync + std::fmt::Debug {
    /// How many writes are worth running at once: several on PostgreSQL, one on SQLite, whose
    /// single writer would only make concurrent writers wait on its lock.
    fn write_concurrency(&self) -> usize;

    /// Inserts a new customer, unless `key` was used before (then the first customer is
    /// returned, or `KeyReused`) or an enterprise with its registration number exists
    /// (`DuplicateRegistration`). Nothing is written in either case. `data_points` (checked
    /// already) are stored with the customer, as by `set_data_points`.
    async fn create_customer(
        &self,
        customer: &Customer,
        data_points: &[DataPointRecord],
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Outcome<Customer>>;

    async fn get_customer(&self, id: &str) -> StoreResult<Option<Customer>>;

    /// Replaces a customer whose stored version is `expected_version`, with its audit entry
    /// and events, or fails with `VersionConflict`.
    async fn save_customer(
        &self,
        customer: &Customer,
        expected_version: i64,
        audit: &AuditEntry,
        events: &[Event],
    ) -> StoreResult<()>;

    /// Customers matching `filter`, in id (creation) order, after `page.after`, at most
    /// `page.fetch_limit()` of them.
    async fn list_customers(
        &self,
        filter: &CustomerFilter,
        page: &Page,
    ) -> StoreResult<Vec<Customer>>;

    async fn create_group(
        &self,
        group: &Group,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<Group>>;
    async fn get_group(&self, id: &str) -> StoreResult<Option<Group>>;
    async fn list_groups(&self, name_prefix: &str, page: &Page) -> StoreResult<Vec<Group>>;

    /// Stores a statement as the next version of its period (marking earlier versions
    /// superseded); `version` of the argument is ignored and set here. `make_event` builds the
    /// event from the stored record, so it carries the version.
    async fn add_statement(
        &self,
        statement: &StatementRecord,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        make_event: &(dyn for<'record> Fn(&'record StatementRecord) -> Event + Send + Sync),
    ) -> StoreResult<Outcome<StatementRecord>>;
    async fn get_statement(&self, id: &str) -> StoreResult<Option<StatementRecord>>;
    /// A customer's statements, newest period end first, then highest version first, after
    /// `page.after` (a [`statement_list_key`]), at most `page.fetch_limit()` of them.
    async fn list_statements(
        &self,
        customer_id: &str,
        include_superseded: bool,
        period_type: Option<PeriodType>,
        page: &Page,
    ) -> StoreResult<Vec<StatementRecord>>;

    async fn add_bureau_report(
        &self,
        report: &BureauReport,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Outcome<BureauReport>>;
    /// A customer's bureau reports, newest report date first, after `page.after` (a
    /// [`bureau_report_list_key`]).
    async fn list_bureau_reports(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<BureauReport>>;

    async fn add_trade_reference(
        &self,
        reference: &TradeReference,
        key: &IdempotencyKey,
        audit: &AuditEntry,
    ) -> StoreResult<Outcome<TradeReference>>;
    /// A customer's trade references, newest first, after `page.after` (the last id seen).
    async fn list_trade_references(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<TradeReference>>;

    async fn list_audit(&self, customer_id: &str, page: &Page) -> StoreResult<Vec<AuditEntry>>;
}

/// Dates in the sort columns: "YYYY-MM-DD", the form serde writes into the documents (and
/// the migration copied from them), so that text order is date order on both backends.
pub(crate) fn date_column(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A statement's place in `ListFinancialStatements` (newest period end first, then highest
/// version, then id): `period_end|version|id`. The last row's key is where the next page
/// starts.
pub fn statement_list_key(statement: &StatementRecord) -> String {
    format!(
        "{}|{}|{}",
        date_column(statement.period.period_end),
        statement.version,
        statement.id
    )
}

/// A bureau report's place in `ListBureauReports` (newest report date first, then id):
/// `report_date|id`.
pub fn bureau_report_list_key(report: &BureauReport) -> String {
    format!("{}|{}", date_column(report.report_date), report.id)
}

/// `(period_end, version, id)` of the last statement seen; `("", 0, "")` on the first page,
/// which the query reads as "from the top".
pub(crate) fn statement_cursor(after: Option<&str>) -> StoreResult<(&str, i32, &str)> {
    let Some(after) = after else {
        return Ok(("", 0, ""));
    };
    let (period_end, rest) = after.split_once('|').ok_or(StoreError::InvalidPageToken)?;
    let (version, id) = rest.split_once('|').ok_or(StoreError::InvalidPageToken)?;
    let version = version.parse().map_err(|_| StoreError::InvalidPageToken)?;
    if period_end.is_empty() || id.is_empty() {
        return Err(StoreError::InvalidPageToken);
    }
    Ok((period_end, version, id))
}

/// `(date, id)` of the last row seen in a list ordered by a date, then id, newest first (bureau
/// reports by report date, documents by issue date); `("", "")` on the first page.
pub(crate) fn dated_cursor(after: Option<&str>) -> StoreResult<(&str, &str)> {
    let Some(after) = after else {
        return Ok(("", ""));
    };
    match after.split_once('|') {
        Some((report_date, id)) if !report_date.is_empty() && !id.is_empty() => {
            Ok((report_date, id))
        }
        _ => Err(StoreError::InvalidPageToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keys_read_back_as_cursors_and_foreign_keys_are_refused() {
        assert_eq!(statement_cursor(None).unwrap(), ("", 0, ""));
        assert_eq!(
            statement_cursor(Some("2025-12-31|2|stm_1")).unwrap(),
            ("2025-12-31", 2, "stm_1")
        );
        for foreign in [
            "stm_1",
            "2025-12-31|two|stm_1",
            "2025-12-31|2",
            "|2|stm_1",
            "2025-12-31|2|",
        ] {
            assert!(matches!(
                statement_cursor(Some(foreign)),
                Err(StoreError::InvalidPageToken)
            ));
        }
        assert_eq!(dated_cursor(None).unwrap(), ("", ""));
        assert_eq!(
            dated_cursor(Some("2026-03-01|bur_1")).unwrap(),
            ("2026-03-01", "bur_1")
        );
        for foreign in ["bur_1", "|bur_1", "2026-03-01|"] {
            assert!(matches!(
                dated_cursor(Some(foreign)),
                Err(StoreError::InvalidPageToken)
            ));
        }
        let date = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        assert_eq!(date_column(date), "2025-06-01");
        assert_eq!(
            serde_json::to_value(date).unwrap(),
            serde_json::json!("2025-06-01"),
            "the migration copies the documents' form into the column"
        );
    }
}
