//! Groups, stored statements, bureau reports, trade references and audit entries between
//! the contract and the domain: requests checked into the domain's new records, stored
//! records shown as the contract's messages.

use chrono::NaiveDate;
use credit_core::{Money, ServiceError, Violations};
use credit_proto::v1 as pb;

use super::statement::figures_to_proto;
use super::{date_from_proto, date_to_proto, timestamp};
use crate::app::GroupWithMembers;
use crate::domain::records::{
    AuditAction, AuditEntry, BureauReport, Group, NewBureauReport, NewTradeReference,
    PaymentExperience, StatementRecord, TaxCompliance, TradeReference,
};
use crate::domain::statement::{PeriodType, ratios};

/// The wire form of a group with its members, as the group RPCs answer.
pub fn group_with_members_to_proto(group: &GroupWithMembers) -> pb::CustomerGroup {
    let members = group
        .members
        .iter()
        .map(|customer| pb::GroupMember {
            display_name: customer.profile.display_name().to_owned(),
            joined_at: customer.group_joined_at.map(timestamp),
            customer_id: customer.id.clone(),
        })
        .collect();
    group_to_proto(&group.group, members)
}

/// The wire form of a group with `members` (lists show groups without them).
pub fn group_to_proto(group: &Group, members: Vec<pb::GroupMember>) -> pb::CustomerGroup {
    pb::CustomerGroup {
        group_id: group.id.clone(),
        name: group.name.clone(),
        parent_customer_id: group.parent_customer_id.clone(),
        description: group.description.clone(),
        members,
        audit: Some(pb::AuditInfo {
            created_at: Some(timestamp(group.created_at)),
            created_by: Some(pb::Actor::from(&group.created_by)),
            updated_at: None,
            updated_by: None,
        }),
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

/// The wire form of a stored statement, with its ratios computed afresh.
pub fn statement_to_proto(statement: &StatementRecord) -> pb::FinancialStatement {
    let (balance_sheet, income_statement, cash_flow_statement) =
        figures_to_proto(&statement.figures);
    pb::FinancialStatement {
        statement_id: statement.id.clone(),
        customer_id: statement.customer_id.clone(),
        period_type: match statement.period.period_type {
            PeriodType::Annual => pb::FiscalPeriodType::Annual,
            PeriodType::Quarterly => pb::FiscalPeriodType::Quarterly,
        } as i32,
        fiscal_year: statement.period.fiscal_year,
        fiscal_quarter: statement.period.fiscal_quarter.map(i32::from).unwrap_or(0),
        period_end_date: Some(date_to_proto(statement.period.period_end)),
        currency: statement.figures.currency.clone(),
        audited: statement.audited,
        balance_sheet: Some(balance_sheet),
        income_statement: Some(income_statement),
        cash_flow_statement: Some(cash_flow_statement),
        version: statement.version,
        superseded: statement.superseded,
        ratios: Some((&ratios(&statement.figures)).into()),
        submitted_at: Some(timestamp(statement.submitted_at)),
        submitted_by: Some(pb::Actor::from(&statement.submitted_by)),
    }
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

pub fn bureau_report_to_proto(report: &BureauReport) -> pb::BureauReport {
    pb::BureauReport {
        report_id: report.id.clone(),
        customer_id: report.customer_id.clone(),
        agency: report.agency.clone(),
        report_date: Some(date_to_proto(report.report_date)),
        score: report
            .score
            .map(|score| score.to_string())
            .unwrap_or_default(),
        agency_rating: report.agency_rating.clone(),
        lawsuits_count: i32::try_from(report.lawsuits_count).unwrap_or(i32::MAX),
        tax_compliance_status: match report.tax_compliance {
            TaxCompliance::Compliant => pb::TaxComplianceStatus::Compliant,
            TaxCompliance::MinorIssues => pb::TaxComplianceStatus::MinorIssues,
            TaxCompliance::NonCompliant => pb::TaxComplianceStatus::NonCompliant,
            TaxCompliance::Unknown => pb::TaxComplianceStatus::Unknown,
        } as i32,
        summary: report.summary.clone(),
        external_reference: report.external_reference.clone(),
        audit: Some(pb::AuditInfo {
            created_at: Some(timestamp(report.created_at)),
            created_by: Some(pb::Actor::from(&report.created_by)),
            updated_at: None,
            updated_by: None,
        }),
    }
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

pub fn trade_reference_to_proto(reference: &TradeReference) -> pb::TradeReference {
    pb::TradeReference {
        reference_id: reference.id.clone(),
        customer_id: reference.customer_id.clone(),
        supplier_name: reference.supplier_name.clone(),
        relationship_months: i32::try_from(reference.relationship_months).unwrap_or(i32::MAX),
        typical_credit_line: reference.typical_credit_line.map(Into::into),
        payment_experience: match reference.payment_experience {
            PaymentExperience::Prompt => pb::PaymentExperience::Prompt,
            PaymentExperience::Slow => pb::PaymentExperience::Slow,
            PaymentExperience::VerySlow => pb::PaymentExperience::VerySlow,
        } as i32,
        days_beyond_terms: i32::try_from(reference.days_beyond_terms).unwrap_or(i32::MAX),
        reference_date: reference.reference_date.map(date_to_proto),
        notes: reference.notes.clone(),
        audit: Some(pb::AuditInfo {
            created_at: Some(timestamp(reference.created_at)),
            created_by: Some(pb::Actor::from(&reference.created_by)),
            updated_at: None,
            updated_by: None,
        }),
    }
}

pub fn audit_entry_to_proto(entry: &AuditEntry) -> pb::CustomerAuditEntry {
    use pb::CustomerAuditAction as Wire;
    pb::CustomerAuditEntry {
        entry_id: entry.id.clone(),
        customer_id: entry.customer_id.clone(),
        action: match entry.action {
            AuditAction::Created => Wire::Created,
            AuditAction::Updated => Wire::Updated,
            AuditAction::StatusChanged => Wire::StatusChanged,
            AuditAction::GroupJoined => Wire::GroupJoined,
            AuditAction::GroupLeft => Wire::GroupLeft,
            AuditAction::StatementSubmitted => Wire::StatementSubmitted,
            AuditAction::BureauReportRecorded => Wire::BureauReportRecorded,
            AuditAction::TradeReferenceAdded => Wire::TradeReferenceAdded,
            AuditAction::DataPointsSet => Wire::DataPointsSet,
            AuditAction::DocumentRecorded => Wire::DocumentRecorded,
            AuditAction::Investigation => Wire::Investigation,
        } as i32,
        actor: Some(pb::Actor::from(&entry.actor)),
        changed_at: Some(timestamp(entry.changed_at)),
        changes: entry
            .changes
            .iter()
            .map(|change| pb::FieldChange {
                field: change.field.clone(),
                old_value: change.old_value.clone(),
                new_value: change.new_value.clone(),
            })
            .collect(),
        reason: entry.reason.clone(),
        request_id: entry.request_id.clone(),
    }
}
