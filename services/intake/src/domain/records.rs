//! The other parts of a credit file: corporate groups, financial statements as stored,
//! bureau reports, trade references, and the audit trail.

use chrono::{DateTime, NaiveDate, Utc};
use credit_core::{Actor, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::customer::FieldChange;
use super::statement::{PeriodType, StatementFigures, StatementPeriod};

/// A corporate group (集团客户): customers whose exposure is limited together. Membership is
/// the `group_id` of each customer, so a customer is in at most one group by construction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// The group's parent company, when it is itself a customer.
    pub parent_customer_id: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Actor,
}

/// A financial statement as stored: one version of one period of one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementRecord {
    pub id: String,
    pub customer_id: String,
    pub period: StatementPeriod,
    pub audited: bool,
    pub figures: StatementFigures,
    /// 1 for the first submission of the period; each resubmission adds one.
    pub version: i32,
    /// A later version of the same period exists. Kept in its own column, filled on read.
    #[serde(skip)]
    pub superseded: bool,
    pub submitted_at: DateTime<Utc>,
    pub submitted_by: Actor,
}

impl StatementRecord {
    /// Identifies the period across versions: `2025` or `2025Q3`.
    pub fn period_key(&self) -> String {
        period_key(&self.period)
    }
}

pub fn period_key(period: &StatementPeriod) -> String {
    match (period.period_type, period.fiscal_quarter) {
        (PeriodType::Quarterly, Some(quarter)) => format!("{}Q{quarter}", period.fiscal_year),
        _ => period.fiscal_year.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaxCompliance {
    Compliant,
    MinorIssues,
    NonCompliant,
    Unknown,
}

/// A credit bureau's report on a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BureauReport {
    pub id: String,
    pub customer_id: String,
    pub agency: String,
    pub report_date: NaiveDate,
    /// The agency's score as it gives it (a decimal; scales differ between agencies).
    pub score: Option<Decimal>,
    pub agency_rating: String,
    pub lawsuits_count: u32,
    pub tax_compliance: TaxCompliance,
    pub summary: String,
    pub external_reference: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Actor,
}

/// The checked content of a `RecordBureauReport` request (ids and audit come from the caller
/// of this function).
#[derive(Debug, Clone, PartialEq)]
pub struct NewBureauReport {
    pub agency: String,
    pub report_date: NaiveDate,
    pub score: Option<Decimal>,
    pub agency_rating: String,
    pub lawsuits_count: u32,
    pub tax_compliance: TaxCompliance,
    pub summary: String,
    pub external_reference: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentExperience {
    Prompt,
    Slow,
    VerySlow,
}

/// What another supplier says about paying this customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeReference {
    pub id: String,
    pub customer_id: String,
    pub supplier_name: String,
    pub relationship_months: u32,
    pub typical_credit_line: Option<Money>,
    pub payment_experience: PaymentExperience,
    pub days_beyond_terms: u32,
    pub reference_date: Option<NaiveDate>,
    pub notes: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Actor,
}

/// The checked content of an `AddTradeReference` request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTradeReference {
    pub supplier_name: String,
    pub relationship_months: u32,
    pub typical_credit_line: Option<Money>,
    pub payment_experience: PaymentExperience,
    pub days_beyond_terms: u32,
    pub reference_date: Option<NaiveDate>,
    pub notes: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    Created,
    Updated,
    StatusChanged,
    GroupJoined,
    GroupLeft,
    StatementSubmitted,
    BureauReportRecorded,
    TradeReferenceAdded,
    DataPointsSet,
    DocumentRecorded,
    Investigation,
}

/// One entry of a customer's audit trail: who, when, what changed (before and after), why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub customer_id: String,
    pub action: AuditAction,
    pub actor: Actor,
    pub changed_at: DateTime<Utc>,
    pub changes: Vec<FieldChange>,
    pub reason: String,
    pub request_id: String,
}
