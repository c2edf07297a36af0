//! The credit investigation (信用调查): the documents of a customer's file, the checklists an
//! investigation follows (《客户信用调查表》, versioned data per class of customer), and the
//! investigation of one customer with its items and visit reports. Pure: what is a valid
//! document, checklist or visit report, which checklist applies to a customer, and how an
//! investigation moves from open to completed.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use credit_core::{Actor, Violations};
use serde::{Deserialize, Serialize};

use super::customer::CustomerKind;
use super::data_points::{DataPointValue, is_code};

const MAX_TEXT: usize = 200;
const MAX_LONG_TEXT: usize = 4_000;
const MAX_URI: usize = 1_000;
/// Items of one checklist.
pub const MAX_ITEMS: usize = 100;
/// Visit reports one investigation may hold.
pub const MAX_VISIT_REPORTS: usize = 20;
const MAX_VISITORS: usize = 10;
const MAX_ATTACHMENTS: usize = 50;
const MAX_INDUSTRY_CODES: usize = 50;
/// Checklists a company may keep (each read whole when an investigation is opened).
pub const MAX_CHECKLISTS: usize = 200;

fn text(
    violations: &mut Violations,
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> String {
    let value = value.trim();
    if required && value.is_empty() {
        violations.add(field, "is required");
    } else if value.chars().count() > max {
        violations.add(field, format!("at most {max} characters"));
    }
    value.to_owned()
}

/// A required date that has already come (an issue date, the day of a visit), or its problem.
fn past_date(
    violations: &mut Violations,
    field: &str,
    date: Option<Result<NaiveDate, &'static str>>,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let problem = match date {
        None => "is required",
        Some(Err(problem)) => problem,
        Some(Ok(date)) if date > today => "is in the future",
        Some(Ok(date)) => return Some(date),
    };
    violations.add(field, problem);
    None
}

// ---------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------

/// A document of a customer's credit file: what it is and where the file is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditDocument {
    pub id: String,
    pub customer_id: String,
    pub document_type: String,
    pub title: String,
    pub issuer: String,
    pub number: String,
    pub issued_on: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub storage_uri: String,
    pub sha256: String,
    pub note: String,
    pub recorded_by: Actor,
    pub recorded_at: DateTime<Utc>,
}

impl CreditDocument {
    /// Whether the document has expired by `today` (its last valid day has passed).
    pub fn is_expired(&self, today: NaiveDate) -> bool {
        self.valid_until.is_some_and(|until| until < today)
    }
}

/// A document as a caller sent it. Dates are already read (or why not).
#[derive(Debug, Clone)]
pub struct DocumentDraft {
    pub document_type: String,
    pub title: String,
    pub issuer: String,
    pub number: String,
    pub issued_on: Option<Result<NaiveDate, &'static str>>,
    pub valid_until: Option<Result<NaiveDate, &'static str>>,
    pub storage_uri: String,
    pub sha256: String,
    pub note: String,
}

impl DocumentDraft {
    /// The document to record, or every problem at `document.<field>`.
    pub fn check(
        self,
        id: String,
        customer_id: &str,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<CreditDocument, Violations> {
        let mut violations = Violations::new();
        let field = |name: &str| format!("document.{name}");
        let document_type = self.document_type.trim().to_owned();
        if !is_code(&document_type) {
            violations.add(
                field("document_type"),
                "must be lower_snake_case, such as business_licence",
            );
        }
        let title = text(
            &mut violations,
            &field("title"),
            &self.title,
            MAX_TEXT,
            false,
        );
        let issuer = text(
            &mut violations,
            &field("issuer"),
            &self.issuer,
            MAX_TEXT,
            false,
        );
        let number = text(
            &mut violations,
            &field("number"),
            &self.number,
            MAX_TEXT,
            false,
        );
        let note = text(
            &mut violations,
            &field("note"),
            &self.note,
            MAX_LONG_TEXT,
            false,
        );
        let storage_uri = text(
            &mut violations,
            &field("storage_uri"),
            &self.storage_uri,
            MAX_URI,
            true,
        );
        let sha256 = self.sha256.trim().to_ascii_lowercase();
        if !sha256.is_empty()
            && (sha256.len() != 64 || !sha256.bytes().all(|byte| byte.is_ascii_hexdigit()))
        {
            violations.add(field("sha256"), "must be 64 hexadecimal digits");
        }
        let issued_on = past_date(
            &mut violations,
            &field("issued_on"),
            self.issued_on,
            at.date_naive(),
        );
        let valid_until = match self.valid_until {
            None => None,
            Some(Err(problem)) => {
                violations.add(field("valid_until"), problem);
                None
            }
            Some(Ok(date)) => {
                if issued_on.is_some_and(|issued| date < issued) {
                    violations.add(field("valid_until"), "is before issued_on");
                }
                Some(date)
            }
        };
        let Some(issued_on) = issued_on.filter(|_| violations.is_empty()) else {
            return Err(violations);
        };
        Ok(CreditDocument {
            id,
            customer_id: customer_id.to_owned(),
            document_type,
            title,
            issuer,
            number,
            issued_on,
            valid_until,
            storage_uri,
            sha256,
            note,
            recorded_by: actor.clone(),
            recorded_at: at,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Checklists
// ---------------------------------------------------------------------------------------------

/// What a checklist item asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ItemKind {
    Document,
    DataPoint,
    Question,
    Visit,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Document => "DOCUMENT",
            ItemKind::DataPoint => "DATA_POINT",
            ItemKind::Question => "QUESTION",
            ItemKind::Visit => "VISIT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub code: String,
    pub kind: ItemKind,
    pub label_zh: String,
    pub label_en: String,
    pub required: bool,
    /// DOCUMENT only.
    pub document_type: String,
    /// DATA_POINT only.
    pub data_point_code: String,
    pub guidance: String,
}

/// A version of an investigation checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checklist {
    pub checklist_id: String,
    pub version: i32,
    pub display_name: String,
    pub customer_kind: CustomerKind,
    /// Industry code prefixes; empty for the default checklist of its kind.
    pub industry_codes: Vec<String>,
    pub items: Vec<ChecklistItem>,
    pub change_note: String,
    pub published_by: Actor,
    pub published_at: DateTime<Utc>,
}

/// An item as a caller sent it.
#[derive(Debug, Clone, Default)]
pub struct ItemDraft {
    pub code: String,
    pub kind: Option<ItemKind>,
    pub label_zh: String,
    pub label_en: String,
    pub required: bool,
    pub document_type: String,
    pub data_point_code: String,
    pub guidance: String,
}

/// A checklist as a caller sent it.
#[derive(Debug, Clone, Default)]
pub struct ChecklistDraft {
    pub checklist_id: String,
    pub display_name: String,
    pub customer_kind: Option<CustomerKind>,
    pub industry_codes: Vec<String>,
    pub items: Vec<ItemDraft>,
    pub change_note: String,
}

/// Whether `id` is a checklist id: 1-63 lower-case letters, digits and '-', starting with a
/// letter.
fn is_checklist_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|first: char| first.is_ascii_lowercase())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

impl ChecklistDraft {
    /// The checklist as version `version`, or every problem at `checklist.<field>`.
    /// `data_point_applies(code, kind)` says whether a data point is defined for the kind.
    pub fn check(
        self,
        version: i32,
        data_point_applies: impl Fn(&str, CustomerKind) -> bool,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<Checklist, Violations> {
        let mut violations = Violations::new();
        let field = |name: &str| format!("checklist.{name}");
        let checklist_id = self.checklist_id.trim().to_owned();
        if !is_checklist_id(&checklist_id) {
            violations.add(
                field("checklist_id"),
                "must be 1-63 lower-case letters, digits and '-', starting with a letter",
            );
        }
        let display_name = text(
            &mut violations,
            &field("display_name"),
            &self.display_name,
            MAX_TEXT,
            true,
        );
        let change_note = text(
            &mut violations,
            &field("change_note"),
            &self.change_note,
            MAX_LONG_TEXT,
            false,
        );
        if self.customer_kind.is_none() {
            violations.add(field("customer_kind"), "is required");
        }
        let mut industry_codes = Vec::new();
        if self.industry_codes.len() > MAX_INDUSTRY_CODES {
            violations.add(
                field("industry_codes"),
                format!("at most {MAX_INDUSTRY_CODES} prefixes"),
            );
        }
        for (index, code) in self.industry_codes.iter().enumerate() {
            let code = code.trim();
            if code.is_empty() || code.len() > 20 {
                violations.add(
                    format!("checklist.industry_codes[{index}]"),
                    "must be 1 to 20 characters",
                );
            } else if industry_codes.iter().any(|seen: &String| seen == code) {
                violations.add(
                    format!("checklist.industry_codes[{index}]"),
                    format!("'{code}' is listed twice"),
                );
            } else {
                industry_codes.push(code.to_owned());
            }
        }
        if self.items.is_empty() || self.items.len() > MAX_ITEMS {
            violations.add(field("items"), format!("must list 1 to {MAX_ITEMS} items"));
        }
        let mut codes = BTreeSet::new();
        let mut items = Vec::new();
        for (index, draft) in self.items.into_iter().enumerate() {
            let at = |name: &str| format!("checklist.items[{index}].{name}");
            let code = draft.code.trim().to_owned();
            if !is_code(&code) {
                violations.add(
                    at("code"),
                    "must be lower_snake_case, such as business_licence",
                );
            } else if !codes.insert(code.clone()) {
                violations.add(at("code"), format!("'{code}' is used by another item"));
            }
            let label_zh = text(
                &mut violations,
                &at("label_zh"),
                &draft.label_zh,
                MAX_TEXT,
                false,
            );
            let label_en = text(
                &mut violations,
                &at("label_en"),
                &draft.label_en,
                MAX_TEXT,
                false,
            );
            if label_zh.is_empty() && label_en.is_empty() {
                violations.add(at("label_en"), "a label in Chinese or English is required");
            }
            let guidance = text(
                &mut violations,
                &at("guidance"),
                &draft.guidance,
                MAX_LONG_TEXT,
                false,
            );
            let document_type = draft.document_type.trim().to_owned();
            let data_point_code = draft.data_point_code.trim().to_owned();
            let Some(kind) = draft.kind else {
                violations.add(at("kind"), "is required");
                continue;
            };
            match kind {
                ItemKind::Document if !is_code(&document_type) => violations.add(
                    at("document_type"),
                    "a DOCUMENT item names the lower_snake_case type to collect",
                ),
                ItemKind::DataPoint => match self.customer_kind {
                    _ if data_point_code.is_empty() => {
                        violations.add(
                            at("data_point_code"),
                            "a DATA_POINT item names its data point",
                        );
                    }
                    Some(kind) if !data_point_applies(&data_point_code, kind) => violations.add(
                        at("data_point_code"),
                        format!(
                            "'{data_point_code}' is not a data point defined for these customers"
                        ),
                    ),
                    _ => {}
                },
                _ => {}
            }
            if kind != ItemKind::Document && !document_type.is_empty() {
                violations.add(
                    at("document_type"),
                    "only a DOCUMENT item names a document type",
                );
            }
            if kind != ItemKind::DataPoint && !data_point_code.is_empty() {
                violations.add(
                    at("data_point_code"),
                    "only a DATA_POINT item names a data point",
                );
            }
            items.push(ChecklistItem {
                code,
                kind,
                label_zh,
                label_en,
                required: draft.required,
                document_type,
                data_point_code,
                guidance,
            });
        }
        let Some(customer_kind) = self.customer_kind.filter(|_| violations.is_empty()) else {
            return Err(violations);
        };
        Ok(Checklist {
            checklist_id,
            version,
            display_name,
            customer_kind,
            industry_codes,
            items,
            change_note,
            published_by: actor.clone(),
            published_at: at,
        })
    }
}

impl Checklist {
    /// How well the checklist fits a customer: `Some(prefix length)` (0 for the default of the
    /// kind), `None` when it does not apply.
    fn fit(&self, kind: CustomerKind, industry_code: &str) -> Option<usize> {
        if self.customer_kind != kind {
            return None;
        }
        if self.industry_codes.is_empty() {
            return Some(0);
        }
        self.industry_codes
            .iter()
            .filter(|prefix| industry_code.starts_with(prefix.as_str()))
            .map(String::len)
            .max()
    }

    /// The other checklist (latest versions) that claims a customer this one would claim: the
    /// same kind and a shared industry prefix, or both the default of the kind.
    pub fn conflict<'a>(&self, others: &'a [Checklist]) -> Option<&'a Checklist> {
        others.iter().find(|other| {
            other.checklist_id != self.checklist_id
                && other.customer_kind == self.customer_kind
                && (other.industry_codes.is_empty() && self.industry_codes.is_empty()
                    || other
                        .industry_codes
                        .iter()
                        .any(|prefix| self.industry_codes.contains(prefix)))
        })
    }
}

/// The checklist for a customer: of its kind, the longest matching industry prefix, else the
/// default of its kind.
pub fn select_checklist<'a>(
    checklists: &'a [Checklist],
    kind: CustomerKind,
    industry_code: &str,
) -> Option<&'a Checklist> {
    checklists
        .iter()
        .filter_map(|checklist| {
            checklist
                .fit(kind, industry_code)
                .map(|fit| (fit, checklist))
        })
        .max_by_key(|(fit, _)| *fit)
        .map(|(_, checklist)| checklist)
}

// ---------------------------------------------------------------------------------------------
// Investigations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvestigationStatus {
    Open,
    Completed,
    Cancelled,
}

impl InvestigationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvestigationStatus::Open => "OPEN",
            InvestigationStatus::Completed => "COMPLETED",
            InvestigationStatus::Cancelled => "CANCELLED",
        }
    }
}

/// What was done about an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemOutcome {
    Document(String),
    Value(DataPointValue),
    Answer(String),
    Visit(String),
    Waived(String),
}

/// One item of an investigation and what was done about it (`None`: pending).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemState {
    pub item: ChecklistItem,
    pub outcome: Option<ItemOutcome>,
    pub done_by: Option<Actor>,
    pub done_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub note: String,
}

/// A visit on site (现场尽职调查).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitReport {
    pub id: String,
    pub visited_on: NaiveDate,
    pub visitors: Vec<String>,
    pub location: String,
    pub met_with: String,
    pub findings: String,
    pub attachments: Vec<String>,
    pub recorded_by: Actor,
    pub recorded_at: DateTime<Utc>,
}

/// A visit report as a caller sent it.
#[derive(Debug, Clone)]
pub struct VisitDraft {
    pub visited_on: Option<Result<NaiveDate, &'static str>>,
    pub visitors: Vec<String>,
    pub location: String,
    pub met_with: String,
    pub findings: String,
    pub attachments: Vec<String>,
}

impl VisitDraft {
    /// The report, or every problem at `report.<field>`.
    pub fn check(
        self,
        id: String,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<VisitReport, Violations> {
        let mut violations = Violations::new();
        let visited_on = past_date(
            &mut violations,
            "report.visited_on",
            self.visited_on,
            at.date_naive(),
        );
        let visitors: Vec<String> = self
            .visitors
            .iter()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect();
        if visitors.is_empty() || visitors.len() > MAX_VISITORS {
            violations.add(
                "report.visitors",
                format!("name 1 to {MAX_VISITORS} visitors"),
            );
        }
        if visitors.iter().any(|name| name.chars().count() > MAX_TEXT) {
            violations.add(
                "report.visitors",
                format!("a name has at most {MAX_TEXT} characters"),
            );
        }
        let location = text(
            &mut violations,
            "report.location",
            &self.location,
            MAX_TEXT,
            false,
        );
        let met_with = text(
            &mut violations,
            "report.met_with",
            &self.met_with,
            MAX_TEXT,
            false,
        );
        let findings = text(
            &mut violations,
            "report.findings",
            &self.findings,
            MAX_LONG_TEXT,
            true,
        );
        if self.attachments.len() > MAX_ATTACHMENTS {
            violations.add(
                "report.attachments",
                format!("at most {MAX_ATTACHMENTS} references"),
            );
        }
        let attachments: Vec<String> = self
            .attachments
            .iter()
            .map(|reference| reference.trim().to_owned())
            .collect();
        if attachments
            .iter()
            .any(|reference| reference.is_empty() || reference.len() > MAX_URI)
        {
            violations.add(
                "report.attachments",
                format!("each reference is 1 to {MAX_URI} characters"),
            );
        }
        let Some(visited_on) = visited_on.filter(|_| violations.is_empty()) else {
            return Err(violations);
        };
        Ok(VisitReport {
            id,
            visited_on,
            visitors,
            location,
            met_with,
            findings,
            attachments,
            recorded_by: actor.clone(),
            recorded_at: at,
        })
    }
}

/// A customer's credit investigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Investigation {
    pub id: String,
    pub customer_id: String,
    pub checklist_id: String,
    pub checklist_version: i32,
    pub status: InvestigationStatus,
    pub items: Vec<ItemState>,
    pub visit_reports: Vec<VisitReport>,
    pub opened_by: Actor,
    pub opened_at: DateTime<Utc>,
    pub closed_by: Option<Actor>,
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub note: String,
    /// Raised by every change (optimistic concurrency and the etag).
    pub version: i64,
}

/// Why an investigation refused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvestigationRefusal {
    /// Completed or cancelled: nothing more is recorded.
    Closed(InvestigationStatus),
    UnknownItem(String),
    /// The outcome does not answer this kind of item.
    WrongOutcome {
        item: String,
        kind: ItemKind,
    },
    UnknownVisitReport(String),
    TooManyVisitReports,
    /// Required items neither done nor waived.
    Incomplete(Vec<String>),
}

impl Investigation {
    /// A new, open investigation of `customer_id` on `checklist`.
    pub fn open(
        id: String,
        customer_id: &str,
        checklist: &Checklist,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            customer_id: customer_id.to_owned(),
            checklist_id: checklist.checklist_id.clone(),
            checklist_version: checklist.version,
            status: InvestigationStatus::Open,
            items: checklist
                .items
                .iter()
                .map(|item| ItemState {
                    item: item.clone(),
                    outcome: None,
                    done_by: None,
                    done_at: None,
                    note: String::new(),
                })
                .collect(),
            visit_reports: Vec::new(),
            opened_by: actor.clone(),
            opened_at: at,
            closed_by: None,
            closed_at: None,
            note: String::new(),
            version: 1,
        }
    }

    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }

    fn ensure_open(&self) -> Result<(), InvestigationRefusal> {
        match self.status {
            InvestigationStatus::Open => Ok(()),
            closed => Err(InvestigationRefusal::Closed(closed)),
        }
    }

    /// The item `code`, when the investigation has it.
    pub fn item(&self, code: &str) -> Option<&ChecklistItem> {
        self.items
            .iter()
            .find(|state| state.item.code == code)
            .map(|state| &state.item)
    }

    /// Records what was done about item `code` (replacing what was recorded before).
    pub fn record(
        &mut self,
        code: &str,
        outcome: ItemOutcome,
        note: &str,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<(), InvestigationRefusal> {
        self.ensure_open()?;
        let visit_reports: Vec<String> = self
            .visit_reports
            .iter()
            .map(|report| report.id.clone())
            .collect();
        let state = self
            .items
            .iter_mut()
            .find(|state| state.item.code == code)
            .ok_or_else(|| InvestigationRefusal::UnknownItem(code.to_owned()))?;
        let fits = matches!(
            (&outcome, state.item.kind),
            (ItemOutcome::Waived(_), _)
                | (ItemOutcome::Document(_), ItemKind::Document)
                | (ItemOutcome::Value(_), ItemKind::DataPoint)
                | (ItemOutcome::Answer(_), ItemKind::Question)
                | (ItemOutcome::Visit(_), ItemKind::Visit)
        );
        if !fits {
            return Err(InvestigationRefusal::WrongOutcome {
                item: code.to_owned(),
                kind: state.item.kind,
            });
        }
        if let ItemOutcome::Visit(report) = &outcome
            && !visit_reports.contains(report)
        {
            return Err(InvestigationRefusal::UnknownVisitReport(report.clone()));
        }
        state.outcome = Some(outcome);
        state.done_by = Some(actor.clone());
        state.done_at = Some(at);
        state.note = note.trim().to_owned();
        self.version += 1;
        Ok(())
    }

    /// Adds a visit report.
    pub fn add_visit(&mut self, report: VisitReport) -> Result<(), InvestigationRefusal> {
        self.ensure_open()?;
        if self.visit_reports.len() >= MAX_VISIT_REPORTS {
            return Err(InvestigationRefusal::TooManyVisitReports);
        }
        self.visit_reports.push(report);
        self.version += 1;
        Ok(())
    }

    /// The required items neither done nor waived, in checklist order.
    pub fn pending_required(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|state| state.item.required && state.outcome.is_none())
            .map(|state| state.item.code.clone())
            .collect()
    }

    /// Completes the investigation when every required item is done or waived.
    pub fn complete(
        &mut self,
        note: &str,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<(), InvestigationRefusal> {
        self.ensure_open()?;
        let pending = self.pending_required();
        if !pending.is_empty() {
            return Err(InvestigationRefusal::Incomplete(pending));
        }
        self.close(InvestigationStatus::Completed, note, actor, at);
        Ok(())
    }

    /// Cancels an open investigation.
    pub fn cancel(
        &mut self,
        note: &str,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<(), InvestigationRefusal> {
        self.ensure_open()?;
        self.close(InvestigationStatus::Cancelled, note, actor, at);
        Ok(())
    }

    fn close(&mut self, status: InvestigationStatus, note: &str, actor: &Actor, at: DateTime<Utc>) {
        self.status = status;
        self.closed_by = Some(actor.clone());
        self.closed_at = Some(at);
        self.note = note.trim().to_owned();
        self.version += 1;
    }
}

#[cfg(test)]
mod tests;
