//! Documents, checklists and investigations between the contract and the domain.

use chrono::{NaiveDate, Utc};
use credit_core::ServiceError;
use credit_proto::v1 as pb;

use super::data_points::value_to_proto;
use super::{date_from_proto, date_to_proto, kind_from_proto, kind_to_proto, timestamp};
use crate::app::ItemAnswer;
use crate::domain::data_points::RawValue;
use crate::domain::investigations::{
    Checklist, ChecklistDraft, ChecklistItem, CreditDocument, DocumentDraft, Investigation,
    InvestigationStatus, ItemDraft, ItemKind, ItemOutcome, ItemState, VisitDraft, VisitReport,
};

fn optional_date(date: Option<&pb::Date>) -> Option<Result<NaiveDate, &'static str>> {
    date.map(date_from_proto)
}

pub fn parse_document(wire: Option<&pb::CreditDocument>) -> Result<DocumentDraft, ServiceError> {
    let wire = wire.ok_or_else(|| ServiceError::invalid("document", "is required"))?;
    Ok(DocumentDraft {
        document_type: wire.document_type.clone(),
        title: wire.title.clone(),
        issuer: wire.issuer.clone(),
        number: wire.number.clone(),
        issued_on: optional_date(wire.issued_on.as_ref()),
        valid_until: optional_date(wire.valid_until.as_ref()),
        storage_uri: wire.storage_uri.clone(),
        sha256: wire.sha256.clone(),
        note: wire.note.clone(),
    })
}

pub fn document_to_proto(document: &CreditDocument) -> pb::CreditDocument {
    pb::CreditDocument {
        document_id: document.id.clone(),
        customer_id: document.customer_id.clone(),
        document_type: document.document_type.clone(),
        title: document.title.clone(),
        issuer: document.issuer.clone(),
        number: document.number.clone(),
        issued_on: Some(date_to_proto(document.issued_on)),
        valid_until: document.valid_until.map(date_to_proto),
        storage_uri: document.storage_uri.clone(),
        sha256: document.sha256.clone(),
        note: document.note.clone(),
        recorded_by: document.recorded_by.name.clone(),
        recorded_at: Some(timestamp(document.recorded_at)),
        expired: document.is_expired(Utc::now().date_naive()),
    }
}

fn item_kind_from_proto(wire: i32) -> Option<ItemKind> {
    match pb::ChecklistItemKind::try_from(wire).ok()? {
        pb::ChecklistItemKind::Document => Some(ItemKind::Document),
        pb::ChecklistItemKind::DataPoint => Some(ItemKind::DataPoint),
        pb::ChecklistItemKind::Question => Some(ItemKind::Question),
        pb::ChecklistItemKind::Visit => Some(ItemKind::Visit),
        pb::ChecklistItemKind::Unspecified => None,
    }
}

fn item_kind_to_proto(kind: ItemKind) -> pb::ChecklistItemKind {
    match kind {
        ItemKind::Document => pb::ChecklistItemKind::Document,
        ItemKind::DataPoint => pb::ChecklistItemKind::DataPoint,
        ItemKind::Question => pb::ChecklistItemKind::Question,
        ItemKind::Visit => pb::ChecklistItemKind::Visit,
    }
}

pub fn parse_checklist(
    wire: Option<&pb::InvestigationChecklist>,
) -> Result<ChecklistDraft, ServiceError> {
    let wire = wire.ok_or_else(|| ServiceError::invalid("checklist", "is required"))?;
    Ok(ChecklistDraft {
        checklist_id: wire.checklist_id.clone(),
        display_name: wire.display_name.clone(),
        customer_kind: pb::CustomerKind::try_from(wire.customer_kind)
            .ok()
            .and_then(kind_from_proto),
        industry_codes: wire.industry_codes.clone(),
        items: wire
            .items
            .iter()
            .map(|item| ItemDraft {
                code: item.code.clone(),
                kind: item_kind_from_proto(item.kind),
                label_zh: item.label_zh.clone(),
                label_en: item.label_en.clone(),
                required: item.required,
                document_type: item.document_type.clone(),
                data_point_code: item.data_point_code.clone(),
                guidance: item.guidance.clone(),
            })
            .collect(),
        change_note: wire.change_note.clone(),
    })
}

fn item_to_proto(item: &ChecklistItem) -> pb::ChecklistItem {
    pb::ChecklistItem {
        code: item.code.clone(),
        kind: item_kind_to_proto(item.kind) as i32,
        label_zh: item.label_zh.clone(),
        label_en: item.label_en.clone(),
        required: item.required,
        document_type: item.document_type.clone(),
        data_point_code: item.data_point_code.clone(),
        guidance: item.guidance.clone(),
    }
}

pub fn checklist_to_proto(checklist: &Checklist) -> pb::InvestigationChecklist {
    pb::InvestigationChecklist {
        checklist_id: checklist.checklist_id.clone(),
        version: checklist.version,
        display_name: checklist.display_name.clone(),
        customer_kind: kind_to_proto(checklist.customer_kind) as i32,
        industry_codes: checklist.industry_codes.clone(),
        items: checklist.items.iter().map(item_to_proto).collect(),
        change_note: checklist.change_note.clone(),
        published_by: checklist.published_by.name.clone(),
        published_at: Some(timestamp(checklist.published_at)),
    }
}

/// What a RecordInvestigationItem request answers the item with.
pub fn parse_item_answer(
    outcome: Option<&pb::record_investigation_item_request::Outcome>,
) -> Result<ItemAnswer, ServiceError> {
    use pb::data_point_value::Value;
    use pb::record_investigation_item_request::Outcome;
    Ok(match outcome {
        None => {
            return Err(ServiceError::invalid(
                "outcome",
                "one of document_id, value, answer, visit_report_id or waiver_reason is required",
            ));
        }
        Some(Outcome::DocumentId(id)) => ItemAnswer::Document(id.clone()),
        Some(Outcome::Answer(answer)) => ItemAnswer::Answer(answer.clone()),
        Some(Outcome::VisitReportId(id)) => ItemAnswer::Visit(id.clone()),
        Some(Outcome::WaiverReason(reason)) => ItemAnswer::Waive(reason.clone()),
        Some(Outcome::Value(value)) => ItemAnswer::Value(match value.value.as_ref() {
            None => return Err(ServiceError::invalid("value", "is required")),
            Some(Value::Number(number)) => RawValue::Number(number.clone()),
            Some(Value::Category(category)) => RawValue::Category(category.clone()),
            Some(Value::Date(date)) => RawValue::Date(date_from_proto(date)),
            Some(Value::YesNo(yes)) => RawValue::YesNo(*yes),
            Some(Value::Money(money)) => RawValue::Money {
                amount: money.amount.clone(),
                currency: money.currency.clone(),
            },
            Some(Value::Text(text)) => RawValue::Text(text.clone()),
        }),
    })
}

pub fn parse_visit(wire: Option<&pb::VisitReport>) -> Result<VisitDraft, ServiceError> {
    let wire = wire.ok_or_else(|| ServiceError::invalid("report", "is required"))?;
    Ok(VisitDraft {
        visited_on: optional_date(wire.visited_on.as_ref()),
        visitors: wire.visitors.clone(),
        location: wire.location.clone(),
        met_with: wire.met_with.clone(),
        findings: wire.findings.clone(),
        attachments: wire.attachments.clone(),
    })
}

pub fn visit_to_proto(report: &VisitReport) -> pb::VisitReport {
    pb::VisitReport {
        visit_report_id: report.id.clone(),
        visited_on: Some(date_to_proto(report.visited_on)),
        visitors: report.visitors.clone(),
        location: report.location.clone(),
        met_with: report.met_with.clone(),
        findings: report.findings.clone(),
        attachments: report.attachments.clone(),
        recorded_by: report.recorded_by.name.clone(),
        recorded_at: Some(timestamp(report.recorded_at)),
    }
}

fn item_state_to_proto(state: &ItemState) -> pb::InvestigationItem {
    use pb::InvestigationItemStatus as Status;
    let mut wire = pb::InvestigationItem {
        item: Some(item_to_proto(&state.item)),
        status: Status::Pending as i32,
        done_by: state
            .done_by
            .as_ref()
            .map(|actor| actor.name.clone())
            .unwrap_or_default(),
        done_at: state.done_at.map(timestamp),
        note: state.note.clone(),
        ..Default::default()
    };
    if let Some(outcome) = &state.outcome {
        wire.status = Status::Done as i32;
        match outcome {
            ItemOutcome::Document(id) => wire.document_id = id.clone(),
            ItemOutcome::Value(value) => wire.value = Some(value_to_proto(value)),
            ItemOutcome::Answer(answer) => wire.answer = answer.clone(),
            ItemOutcome::Visit(id) => wire.visit_report_id = id.clone(),
            ItemOutcome::Waived(reason) => {
                wire.status = Status::Waived as i32;
                wire.waiver_reason = reason.clone();
            }
        }
    }
    wire
}

fn status_to_proto(status: InvestigationStatus) -> pb::InvestigationStatus {
    match status {
        InvestigationStatus::Open => pb::InvestigationStatus::Open,
        InvestigationStatus::Completed => pb::InvestigationStatus::Completed,
        InvestigationStatus::Cancelled => pb::InvestigationStatus::Cancelled,
    }
}

pub fn investigation_to_proto(investigation: &Investigation) -> pb::Investigation {
    pb::Investigation {
        investigation_id: investigation.id.clone(),
        customer_id: investigation.customer_id.clone(),
        checklist_id: investigation.checklist_id.clone(),
        checklist_version: investigation.checklist_version,
        status: status_to_proto(investigation.status) as i32,
        items: investigation
            .items
            .iter()
            .map(item_state_to_proto)
            .collect(),
        visit_reports: investigation
            .visit_reports
            .iter()
            .map(visit_to_proto)
            .collect(),
        opened_by: investigation.opened_by.name.clone(),
        opened_at: Some(timestamp(investigation.opened_at)),
        closed_by: investigation
            .closed_by
            .as_ref()
            .map(|actor| actor.name.clone())
            .unwrap_or_default(),
        closed_at: investigation.closed_at.map(timestamp),
        note: investigation.note.clone(),
        etag: investigation.etag(),
    }
}
