//! The outbox events intake publishes, built from domain records: the contract's `Event`
//! envelope (aggregate, customer, group, actor, request id) around one payload.

use credit_core::Actor;
use credit_proto::service_names::INTAKE;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;

use super::statement::figures_to_proto;
use super::{date_to_proto, kind_to_proto, status_to_proto};
use crate::domain::customer::{Customer, CustomerStatus};
use crate::domain::investigations::Investigation;
use crate::domain::records::{BureauReport, StatementRecord};
use crate::domain::statement::ratios;

/// An event about `customer`, carrying its group as it is after the change.
fn customer_event(
    customer: &Customer,
    actor: &Actor,
    request_id: &str,
    payload: Payload,
) -> pb::Event {
    pb::Event {
        aggregate_id: customer.id.clone(),
        customer_id: customer.id.clone(),
        group_id: customer.group_id.clone().unwrap_or_default(),
        actor: Some(pb::Actor::from(actor)),
        request_id: request_id.to_owned(),
        ..new_event(INTAKE, payload)
    }
}

pub fn customer_registered(customer: &Customer, actor: &Actor, request_id: &str) -> pb::Event {
    customer_event(
        customer,
        actor,
        request_id,
        Payload::CustomerRegistered(pb::CustomerRegistered {
            customer_id: customer.id.clone(),
            kind: kind_to_proto(customer.profile.kind()) as i32,
            status: status_to_proto(customer.status) as i32,
            country: customer.country.clone(),
            industry_code: customer.profile.industry_code().to_owned(),
        }),
    )
}

/// `updated` has its new status and the reason for it; `previous_status` is the one it left.
pub fn customer_status_changed(
    updated: &Customer,
    previous_status: CustomerStatus,
    actor: &Actor,
) -> pb::Event {
    customer_event(
        updated,
        actor,
        "",
        Payload::CustomerStatusChanged(pb::CustomerStatusChanged {
            customer_id: updated.id.clone(),
            previous_status: status_to_proto(previous_status) as i32,
            status: status_to_proto(updated.status) as i32,
            reason: updated.status_reason.clone(),
        }),
    )
}

/// `updated` is the customer as it is after joining `group_id`.
pub fn group_member_added(updated: &Customer, group_id: &str, actor: &Actor) -> pb::Event {
    customer_event(
        updated,
        actor,
        "",
        Payload::GroupMembershipChanged(pb::GroupMembershipChanged {
            group_id: group_id.to_owned(),
            customer_id: updated.id.clone(),
            change: pb::GroupMembershipChange::Added as i32,
        }),
    )
}

/// `updated` is the customer as it is after leaving `group_id`.
pub fn group_member_removed(updated: &Customer, group_id: &str, actor: &Actor) -> pb::Event {
    let mut event = customer_event(
        updated,
        actor,
        "",
        Payload::GroupMembershipChanged(pb::GroupMembershipChanged {
            group_id: group_id.to_owned(),
            customer_id: updated.id.clone(),
            change: pb::GroupMembershipChange::Removed as i32,
        }),
    );
    // The customer is in no group any more; the event still belongs to the group it left.
    event.group_id = group_id.to_owned();
    event
}

/// Built from the statement as stored, so it carries the version the store gave it.
pub fn financial_statement_submitted(
    customer: &Customer,
    stored: &StatementRecord,
    actor: &Actor,
    request_id: &str,
) -> pb::Event {
    let ratios = ratios(&stored.figures);
    let wire_ratios = pb::FinancialRatios::from(&ratios);
    // The figures as the statement itself shows them on the wire, so a consumer
    // reads the same amounts GetFinancialStatement returns.
    let (balance_sheet, income_statement, _) = figures_to_proto(&stored.figures);
    customer_event(
        customer,
        actor,
        request_id,
        Payload::FinancialStatementSubmitted(pb::FinancialStatementSubmitted {
            customer_id: stored.customer_id.clone(),
            statement_id: stored.id.clone(),
            version: stored.version,
            fiscal_year: stored.period.fiscal_year,
            fiscal_quarter: stored.period.fiscal_quarter.map(i32::from).unwrap_or(0),
            period_end_date: Some(date_to_proto(stored.period.period_end)),
            altman_z_score: wire_ratios.altman_z_score,
            currency: stored.figures.currency.clone(),
            equity: balance_sheet.equity,
            revenue: income_statement.revenue,
            period_months: i32::from(stored.period.period_type.months()),
        }),
    )
}

pub fn bureau_report_recorded(
    customer: &Customer,
    report: &BureauReport,
    actor: &Actor,
    request_id: &str,
) -> pb::Event {
    customer_event(
        customer,
        actor,
        request_id,
        Payload::BureauReportRecorded(pb::BureauReportRecorded {
            customer_id: customer.id.clone(),
            report_id: report.id.clone(),
            agency: report.agency.clone(),
            report_date: Some(date_to_proto(report.report_date)),
        }),
    )
}

/// Data points of `customer` set or cleared, or a document recorded: rating re-rates.
pub fn credit_file_updated(
    customer: &Customer,
    data_point_codes: Vec<String>,
    document_id: &str,
    actor: &Actor,
    request_id: &str,
) -> pb::Event {
    customer_event(
        customer,
        actor,
        request_id,
        Payload::CreditFileUpdated(pb::CreditFileUpdated {
            customer_id: customer.id.clone(),
            data_point_codes,
            document_id: document_id.to_owned(),
        }),
    )
}

/// A completed investigation of `customer`.
pub fn investigation_completed(
    customer: &Customer,
    investigation: &Investigation,
    actor: &Actor,
) -> pb::Event {
    customer_event(
        customer,
        actor,
        "",
        Payload::InvestigationCompleted(pb::InvestigationCompleted {
            customer_id: customer.id.clone(),
            investigation_id: investigation.id.clone(),
            checklist_id: investigation.checklist_id.clone(),
            checklist_version: investigation.checklist_version,
            completed_at: investigation.closed_at.map(super::timestamp),
        }),
    )
}
