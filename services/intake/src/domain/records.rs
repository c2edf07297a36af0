//! The other parts of a credit file: corporate groups, financial statements as stored,
//! bureau reports, trade references, and the audit trail.

use chrono::{DateTime, NaiveDate, Utc};
use credit_core::{Money, ServiceError, Violations};
use credit_proto::v1 as pb;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::customer::{ActorRecord, FieldChange, date_from_proto, date_to_proto, timestamp};
use super::statement::{PeriodType, StatementFigures, StatementPeriod, figures_to_proto, ratios};

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
    pub created_by: ActorRecord,
}

impl Group {
    pub fn to_proto(&self, members: Vec<pb::GroupMember>) -> pb::CustomerGroup {
        pb::CustomerGroup {
            group_id: self.id.clone(),
            name: self.name.clone(),
            parent_customer_id: self.parent_customer_id.clone(),
            description: self.description.clone(),
            members,
            audit: Some(pb::AuditInfo {
                created_at: Some(timestamp(self.created_at)),
                created_by: Some(self.created_by.to_proto()),
                updated_at: None,
                updated_by: None,
            }),
        }
    }
}

/// A checked `CreateGroup` request: name and description.
pub fn parse_group(wire: &pb::CustomerGroup) -> Result<(String, String, String), ServiceError> {
    let mut violations = Violations::new();
    let name = wire.name.trim().to_owned();
    if name.is_empty() {
        violations.add("group.name", "is required");
    } else if name.chars().count() > 200 {
        violations.add("group.name", "must be at most 200 characters");
    }
    let description = wire.description.trim().to_owned();
    if description.chars().count() > 2_000 {
        violations.add("group.description", "must be at most 2000 characters");
    }
    violations.finish()?;
    Ok((name, wire.parent_customer_id.trim().to_owned(), description))
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
    pub submitted_by: ActorRecord,
}

impl StatementRecord {
    /// Identifies the period across versions: `2025` or `2025Q3`.
    pub fn period_key(&self) -> String {
        period_key(&self.period)
    }

    pub fn to_proto(&self) -> pb::FinancialStatement {
        let (balance_sheet, income_statement, cash_flow_statement) =
            figures_to_proto(&self.figures);
        pb::FinancialStatement {
            statement_id: self.id.clone(),
            customer_id: self.customer_id.clone(),
            period_type: match self.period.period_type {
                PeriodType::Annual => pb::FiscalPeriodType::Annual,
                PeriodType::Quarterly => pb::FiscalPeriodType::Quarterly,
            } as i32,
            fiscal_year: self.period.fiscal_year,
            fiscal_quarter: self.period.fiscal_quarter.map(i32::from).unwrap_or(0),
            period_end_date: Some(date_to_proto(self.period.period_end)),
            currency: self.figures.currency.clone(),
            audited: self.audited,
            balance_sheet: Some(balance_sheet),
            income_statement: Some(income_statement),
            cash_flow_statement: Some(cash_flow_statement),
            version: self.version,
            superseded: self.superseded,
            ratios: Some((&ratios(&self.figures)).into()),
            submitted_at: Some(timestamp(self.submitted_at)),
            submitted_by: Some(self.submitted_by.to_proto()),
        }
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
    pub created_by: ActorRecord,
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

pub fn parse_bureau_report(
    wire: &pb::BureauReport,
    today: NaiveDate,
) -> Result<NewBureauReport, ServiceError> {
    let mut violations = Violations::new();
    let agency = wire.agency.trim().to_owned();
    if agency.is_empty() || agency.chars().count() > 100 {
        violations.add("report.agency", "is required, at most 100 characters");
    }
    let report_date = match wire.report_date.as_ref() {
        None => {
            violations.add("report.report_date", "is required");
            None
        }
        Some(date) => violations
            .check("report.report_date", date_from_proto(date))
            .filter(|date| {
                let fine = *date <= today;
                if !fine {
                    violations.add("report.report_date", "must not be in the future");
                }
                fine
            }),
    };
    let score = if wire.score.trim().is_empty() {
        None
    } else {
        violations.check(
            "report.score",
            credit_core::money::parse_decimal(wire.score.trim()),
        )
    };
    let lawsuits_count = u32::try_from(wire.lawsuits_count).ok();
    if lawsuits_count.is_none() {
        violations.add("report.lawsuits_count", "must not be negative");
    }
    let tax_compliance = match pb::TaxComplianceStatus::try_from(wire.tax_compliance_status) {
        Ok(pb::TaxComplianceStatus::Compliant) => TaxCompliance::Compliant,
        Ok(pb::TaxComplianceStatus::MinorIssues) => TaxCompliance::MinorIssues,
        Ok(pb::TaxComplianceStatus::NonCompliant) => TaxCompliance::NonCompliant,
        Ok(pb::TaxComplianceStatus::Unknown | pb::TaxComplianceStatus::Unspecified) => {
            TaxCompliance::Unknown
        }
        Err(_) => {
            violations.add("report.tax_compliance_status", "is not a known status");
            TaxCompliance::Unknown
        }
    };
    let agency_rating = wire.agency_rating.trim().to_owned();
    let summary = wire.summary.trim().to_owned();
    if agency_rating.chars().count() > 20 {
        violations.add("report.agency_rating", "must be at most 20 characters");
    }
    if summary.chars().count() > 4_000 {
        violations.add("report.summary", "must be at most 4000 characters");
    }
    violations.finish()?;
    Ok(NewBureauReport {
        agency,
        report_date: report_date.unwrap_or(today),
        score,
        agency_rating,
        lawsuits_count: lawsuits_count.unwrap_or(0),
        tax_compliance,
        summary,
        external_reference: wire.external_reference.trim().to_owned(),
    })
}

impl BureauReport {
    pub fn to_proto(&self) -> pb::BureauReport {
        pb::BureauReport {
            report_id: self.id.clone(),
            customer_id: self.customer_id.clone(),
            agency: self.agency.clone(),
            report_date: Some(date_to_proto(self.report_date)),
            score: self
                .score
                .map(|score| score.to_string())
                .unwrap_or_default(),
            agency_rating: self.agency_rating.clone(),
            lawsuits_count: i32::try_from(self.lawsuits_count).unwrap_or(i32::MAX),
            tax_compliance_status: match self.tax_compliance {
                TaxCompliance::Compliant => pb::TaxComplianceStatus::Compliant,
                TaxCompliance::MinorIssues => pb::TaxComplianceStatus::MinorIssues,
                TaxCompliance::NonCompliant => pb::TaxComplianceStatus::NonCompliant,
                TaxCompliance::Unknown => pb::TaxComplianceStatus::Unknown,
            } as i32,
            summary: self.summary.clone(),
            external_reference: self.external_reference.clone(),
            audit: Some(pb::AuditInfo {
                created_at: Some(timestamp(self.created_at)),
                created_by: Some(self.created_by.to_proto()),
                updated_at: None,
                updated_by: None,
            }),
        }
    }
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
    pub created_by: ActorRecord,
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

pub fn parse_trade_reference(
    wire: &pb::TradeReference,
    today: NaiveDate,
) -> Result<NewTradeReference, ServiceError> {
    let mut violations = Violations::new();
    let supplier_name = wire.supplier_name.trim().to_owned();
    if supplier_name.is_empty() || supplier_name.chars().count() > 200 {
        violations.add(
            "reference.supplier_name",
            "is required, at most 200 characters",
        );
    }
    let relationship_months = u32::try_from(wire.relationship_months).ok();
    if relationship_months.is_none() {
        violations.add("reference.relationship_months", "must not be negative");
    }
    let typical_credit_line = wire.typical_credit_line.as_ref().and_then(|money| {
        violations.check(
            "reference.typical_credit_line",
            Money::try_from(money).and_then(Money::non_negative),
        )
    });
    let payment_experience = match pb::PaymentExperience::try_from(wire.payment_experience) {
        Ok(pb::PaymentExperience::Prompt) => Some(PaymentExperience::Prompt),
        Ok(pb::PaymentExperience::Slow) => Some(PaymentExperience::Slow),
        Ok(pb::PaymentExperience::VerySlow) => Some(PaymentExperience::VerySlow),
        _ => {
            violations.add(
                "reference.payment_experience",
                "is required: PROMPT, SLOW or VERY_SLOW",
            );
            None
        }
    };
    let days_beyond_terms = u32::try_from(wire.days_beyond_terms).ok();
    if days_beyond_terms.is_none() {
        violations.add("reference.days_beyond_terms", "must not be negative");
    }
    if payment_experience == Some(PaymentExperience::Prompt)
        && days_beyond_terms.is_some_and(|days| days > 0)
    {
        violations.add(
            "reference.days_beyond_terms",
            "must be 0 when payment experience is PROMPT",
        );
    }
    let reference_date = wire.reference_date.as_ref().and_then(|date| {
        let date = violations.check("reference.reference_date", date_from_proto(date))?;
        if date > today {
            violations.add("reference.reference_date", "must not be in the future");
            return None;
        }
        Some(date)
    });
    let notes = wire.notes.trim().to_owned();
    if notes.chars().count() > 2_000 {
        violations.add("reference.notes", "must be at most 2000 characters");
    }
    violations.finish()?;
    Ok(NewTradeReference {
        supplier_name,
        relationship_months: relationship_months.unwrap_or(0),
        typical_credit_line,
        payment_experience: payment_experience.unwrap_or(PaymentExperience::Prompt),
        days_beyond_terms: days_beyond_terms.unwrap_or(0),
        reference_date,
        notes,
    })
}

impl TradeReference {
    pub fn to_proto(&self) -> pb::TradeReference {
        pb::TradeReference {
            reference_id: self.id.clone(),
            customer_id: self.customer_id.clone(),
            supplier_name: self.supplier_name.clone(),
            relationship_months: i32::try_from(self.relationship_months).unwrap_or(i32::MAX),
            typical_credit_line: self.typical_credit_line.map(Into::into),
            payment_experience: match self.payment_experience {
                PaymentExperience::Prompt => pb::PaymentExperience::Prompt,
                PaymentExperience::Slow => pb::PaymentExperience::Slow,
                PaymentExperience::VerySlow => pb::PaymentExperience::VerySlow,
            } as i32,
            days_beyond_terms: i32::try_from(self.days_beyond_terms).unwrap_or(i32::MAX),
            reference_date: self.reference_date.map(date_to_proto),
            notes: self.notes.clone(),
            audit: Some(pb::AuditInfo {
                created_at: Some(timestamp(self.created_at)),
                created_by: Some(self.created_by.to_proto()),
                updated_at: None,
                updated_by: None,
            }),
        }
    }
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
}

/// One entry of a customer's audit trail: who, when, what changed (before and after), why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub customer_id: String,
    pub action: AuditAction,
    pub actor: ActorRecord,
    pub changed_at: DateTime<Utc>,
    pub changes: Vec<FieldChange>,
    pub reason: String,
    pub request_id: String,
}

impl AuditEntry {
    pub fn to_proto(&self) -> pb::CustomerAuditEntry {
        use pb::CustomerAuditAction as Wire;
        pb::CustomerAuditEntry {
            entry_id: self.id.clone(),
            customer_id: self.customer_id.clone(),
            action: match self.action {
                AuditAction::Created => Wire::Created,
                AuditAction::Updated => Wire::Updated,
                AuditAction::StatusChanged => Wire::StatusChanged,
                AuditAction::GroupJoined => Wire::GroupJoined,
                AuditAction::GroupLeft => Wire::GroupLeft,
                AuditAction::StatementSubmitted => Wire::StatementSubmitted,
                AuditAction::BureauReportRecorded => Wire::BureauReportRecorded,
                AuditAction::TradeReferenceAdded => Wire::TradeReferenceAdded,
            } as i32,
            actor: Some(self.actor.to_proto()),
            changed_at: Some(timestamp(self.changed_at)),
            changes: self
                .changes
                .iter()
                .map(|change| pb::FieldChange {
                    field: change.field.clone(),
                    old_value: change.old_value.clone(),
                    new_value: change.new_value.clone(),
                })
                .collect(),
            reason: self.reason.clone(),
            request_id: self.request_id.clone(),
        }
    }
}
