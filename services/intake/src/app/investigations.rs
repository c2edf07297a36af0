//! Credit investigation use cases: record a customer's documents, publish checklists, open an
//! investigation on the checklist that applies, work its items and visits, complete it.

use chrono::Utc;
use credit_core::{Actor, Role, ServiceError, Violations};
use credit_runtime::sql::{IdempotencyKey, Page};

use super::data_points::{DefinitionCatalog, refusal};
use super::{Intake, audit_entry, finish_keyed, new_id, required_id};
use crate::api::convert::events;
use crate::domain::customer::FieldChange;
use crate::domain::data_points::{self, ChangeOrigin, DataPointSource, RawEntry, RawValue};
use crate::domain::investigations::{
    Checklist, ChecklistDraft, CreditDocument, DocumentDraft, Investigation, InvestigationRefusal,
    ItemKind, ItemOutcome, VisitDraft, VisitReport, select_checklist,
};
use crate::domain::records::AuditAction;
use crate::store::{InvestigationChanges, StoreError, document_list_key};

/// What an investigation item is answered with, as the caller sent it.
#[derive(Debug, Clone)]
pub enum ItemAnswer {
    Document(String),
    Value(RawValue),
    Answer(String),
    Visit(String),
    Waive(String),
}

const MAX_ANSWER: usize = 4_000;

fn invalid(violations: Violations) -> ServiceError {
    match violations.finish() {
        Err(error) => error,
        Ok(()) => ServiceError::invalid("request", "was refused"),
    }
}

/// The caller's answer to an investigation that refused a change.
fn refused(refusal: InvestigationRefusal) -> ServiceError {
    match refusal {
        InvestigationRefusal::Closed(status) => ServiceError::failed_precondition(
            "INVESTIGATION_CLOSED",
            format!(
                "the investigation is {}: nothing more is recorded",
                status.as_str()
            ),
        ),
        InvestigationRefusal::UnknownItem(code) => ServiceError::invalid(
            "item_code",
            format!("'{code}' is not an item of this investigation"),
        ),
        InvestigationRefusal::WrongOutcome { item, kind } => ServiceError::invalid(
            "outcome",
            format!(
                "'{item}' is a {} item: answer it with what that kind asks for",
                kind.as_str()
            ),
        ),
        InvestigationRefusal::UnknownVisitReport(report) => ServiceError::invalid(
            "visit_report_id",
            format!("'{report}' is not a visit report of this investigation: record it first"),
        ),
        InvestigationRefusal::TooManyVisitReports => ServiceError::failed_precondition(
            "TOO_MANY_VISIT_REPORTS",
            "an investigation holds at most 20 visit reports",
        ),
        InvestigationRefusal::Incomplete(pending) => ServiceError::FailedPrecondition {
            reason: "INVESTIGATION_INCOMPLETE",
            message: format!(
                "required items are neither done nor waived: {}",
                pending.join(", ")
            ),
            metadata: vec![("pending_items", pending.join(","))],
        },
    }
}

fn conflict(what: &str) -> impl Fn(StoreError) -> ServiceError + '_ {
    move |error| match error {
        StoreError::VersionConflict => ServiceError::Aborted {
            reason: "CONCURRENT_CHANGE",
            message: format!("{what} changed while this call ran; read it again and retry"),
        },
        other => ServiceError::from(other),
    }
}

impl Intake {
    /// Records a document of a customer's file.
    pub async fn record_document(
        &self,
        customer_id: &str,
        draft: DocumentDraft,
        key: IdempotencyKey,
        actor: &Actor,
    ) -> Result<CreditDocument, ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let document = draft
            .check(new_id("doc"), &customer.id, actor, Utc::now())
            .map_err(invalid)?;
        let validity = document.valid_until.map_or_else(
            || "does not expire".to_owned(),
            |until| format!("valid until {until}"),
        );
        let audit = audit_entry(
            &customer.id,
            AuditAction::DocumentRecorded,
            actor,
            vec![FieldChange {
                field: format!("documents.{}", document.document_type),
                old_value: String::new(),
                new_value: format!(
                    "{} (issued {}, {validity})",
                    document.id, document.issued_on
                ),
            }],
            &document.note,
            &key.request_id,
        );
        let event = events::credit_file_updated(
            &customer,
            Vec::new(),
            &document.id,
            actor,
            &key.request_id,
        );
        Ok(self
            .store
            .add_document(&document, &key, &audit, &event)
            .await
            .map_err(ServiceError::from)?
            .into_inner())
    }

    /// A page of a customer's documents, newest first.
    pub async fn list_documents(
        &self,
        customer_id: &str,
        document_type: &str,
        page: &Page,
    ) -> Result<(Vec<CreditDocument>, String), ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let rows = self
            .store
            .list_documents(&customer.id, document_type.trim(), page)
            .await
            .map_err(ServiceError::from)?;
        Ok(finish_keyed(page, rows, document_list_key))
    }

    /// Publishes the next version of a checklist.
    pub async fn publish_checklist(
        &self,
        draft: ChecklistDraft,
        key: IdempotencyKey,
        actor: &Actor,
    ) -> Result<Checklist, ServiceError> {
        let latest = self
            .store
            .latest_checklists()
            .await
            .map_err(ServiceError::from)?;
        let catalog: DefinitionCatalog = self.definition_catalog().await?;
        let version = latest
            .iter()
            .find(|checklist| checklist.checklist_id == draft.checklist_id.trim())
            .map_or(1, |checklist| checklist.version + 1);
        let checklist = draft
            .check(
                version,
                |code, kind| {
                    catalog
                        .get(code)
                        .is_some_and(|definition| definition.applies_to(kind))
                },
                actor,
                Utc::now(),
            )
            .map_err(invalid)?;
        if let Some(other) = checklist.conflict(&latest) {
            return Err(ServiceError::FailedPrecondition {
                reason: "CHECKLIST_APPLICABILITY_CONFLICT",
                message: format!(
                    "checklist '{}' already investigates these customers (the same kind and \
                     industry prefix, or both the default of the kind)",
                    other.checklist_id
                ),
                metadata: vec![("checklist_id", other.checklist_id.clone())],
            });
        }
        Ok(self
            .store
            .add_checklist(&checklist, &key)
            .await
            .map_err(conflict("the checklist"))?
            .into_inner())
    }

    /// The latest version of each checklist, or every version of one.
    pub async fn list_checklists(
        &self,
        checklist_id: &str,
        kind: Option<crate::domain::customer::CustomerKind>,
    ) -> Result<Vec<Checklist>, ServiceError> {
        let checklists = if checklist_id.trim().is_empty() {
            self.store.latest_checklists().await
        } else {
            self.store.checklist_versions(checklist_id.trim()).await
        }
        .map_err(ServiceError::from)?;
        Ok(checklists
            .into_iter()
            .filter(|checklist| kind.is_none_or(|kind| checklist.customer_kind == kind))
            .collect())
    }

    /// Opens the investigation of a customer on the checklist named, or the one that applies.
    pub async fn open_investigation(
        &self,
        customer_id: &str,
        checklist_id: &str,
        key: IdempotencyKey,
        actor: &Actor,
    ) -> Result<Investigation, ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let kind = customer.profile.kind();
        let checklists = self
            .store
            .latest_checklists()
            .await
            .map_err(ServiceError::from)?;
        let checklist = match checklist_id.trim() {
            "" => select_checklist(&checklists, kind, customer.profile.industry_code())
                .ok_or_else(|| {
                    ServiceError::failed_precondition(
                        "NO_CHECKLIST",
                        format!(
                            "no checklist investigates {} customers of industry '{}': publish one",
                            kind.as_str(),
                            customer.profile.industry_code()
                        ),
                    )
                })?,
            named => {
                let checklist = checklists
                    .iter()
                    .find(|checklist| checklist.checklist_id == named)
                    .ok_or_else(|| ServiceError::not_found("checklist", named))?;
                if checklist.customer_kind != kind {
                    return Err(ServiceError::invalid(
                        "checklist_id",
                        format!(
                            "'{named}' investigates {} customers",
                            checklist.customer_kind.as_str()
                        ),
                    ));
                }
                checklist
            }
        };
        let investigation =
            Investigation::open(new_id("inv"), &customer.id, checklist, actor, Utc::now());
        let audit = audit_entry(
            &customer.id,
            AuditAction::Investigation,
            actor,
            vec![FieldChange {
                field: "investigation".into(),
                old_value: String::new(),
                new_value: format!(
                    "{} opened on {} v{}",
                    investigation.id, investigation.checklist_id, investigation.checklist_version
                ),
            }],
            "",
            &key.request_id,
        );
        Ok(self
            .store
            .create_investigation(&investigation, &key, &audit)
            .await
            .map_err(ServiceError::from)?
            .into_inner())
    }

    /// The investigation with `id`, or NOT_FOUND.
    pub async fn load_investigation(&self, id: &str) -> Result<Investigation, ServiceError> {
        let id = required_id(id, "investigation_id")?;
        self.store
            .get_investigation(&id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("investigation", id))
    }

    /// Records what was done about one item.
    pub async fn record_investigation_item(
        &self,
        investigation_id: &str,
        item_code: &str,
        answer: ItemAnswer,
        note: &str,
        etag: &str,
        actor: &Actor,
    ) -> Result<Investigation, ServiceError> {
        let mut investigation = self.load_investigation(investigation_id).await?;
        if !etag.is_empty() && etag != investigation.etag() {
            return Err(ServiceError::Aborted {
                reason: "ETAG_MISMATCH",
                message: format!(
                    "the investigation is at {}, not {etag}; read it again",
                    investigation.etag()
                ),
            });
        }
        let item = investigation
            .item(item_code.trim())
            .cloned()
            .ok_or_else(|| {
                ServiceError::invalid(
                    "item_code",
                    format!(
                        "'{}' is not an item of this investigation",
                        item_code.trim()
                    ),
                )
            })?;
        let now = Utc::now();
        let mut data_points = Vec::new();
        let mut updated = None;
        let outcome = match answer {
            ItemAnswer::Waive(reason) => {
                let may_waive = actor.roles.iter().any(|role| {
                    role == Role::CreditManager.as_str() || role == Role::Admin.as_str()
                });
                if !may_waive {
                    return Err(ServiceError::permission_denied(
                        "WAIVER_REQUIRES_MANAGER",
                        "only a credit manager waives an investigation item",
                    ));
                }
                let reason = reason.trim();
                if reason.is_empty() || reason.chars().count() > MAX_ANSWER {
                    return Err(ServiceError::invalid(
                        "waiver_reason",
                        format!("say why, in 1 to {MAX_ANSWER} characters"),
                    ));
                }
                ItemOutcome::Waived(reason.to_owned())
            }
            ItemAnswer::Answer(text) => {
                let text = text.trim();
                if text.is_empty() || text.chars().count() > MAX_ANSWER {
                    return Err(ServiceError::invalid(
                        "answer",
                        format!("must be 1 to {MAX_ANSWER} characters"),
                    ));
                }
                ItemOutcome::Answer(text.to_owned())
            }
            ItemAnswer::Visit(report) => ItemOutcome::Visit(report.trim().to_owned()),
            ItemAnswer::Document(document_id) => {
                let document = self
                    .store
                    .get_document(document_id.trim())
                    .await
                    .map_err(ServiceError::from)?
                    .filter(|document| document.customer_id == investigation.customer_id)
                    .ok_or_else(|| {
                        ServiceError::invalid("document_id", "is not a document of this customer")
                    })?;
                if item.kind == ItemKind::Document && document.document_type != item.document_type {
                    return Err(ServiceError::invalid(
                        "document_id",
                        format!(
                            "is a {}; the item asks for a {}",
                            document.document_type, item.document_type
                        ),
                    ));
                }
                ItemOutcome::Document(document.id)
            }
            ItemAnswer::Value(raw) if item.kind == ItemKind::DataPoint => {
                let customer = self.load_customer(&investigation.customer_id).await?;
                let catalog = self.definition_catalog().await?;
                let origin = ChangeOrigin {
                    change_id: &investigation.id,
                    source: DataPointSource::Investigation,
                    source_reference: &investigation.id,
                    actor,
                    note,
                    at: now,
                };
                data_points = data_points::check_change(
                    vec![RawEntry {
                        code: item.data_point_code.clone(),
                        value: Some(raw),
                    }],
                    |code| catalog.get(code),
                    customer.profile.kind(),
                    &customer.id,
                    &origin,
                    "value",
                    &mut || new_id("dpv"),
                )
                .map_err(refusal)?;
                updated = Some(events::credit_file_updated(
                    &customer,
                    vec![item.data_point_code.clone()],
                    "",
                    actor,
                    "",
                ));
                match data_points.first().and_then(|record| record.value.clone()) {
                    Some(value) => ItemOutcome::Value(value),
                    None => return Err(ServiceError::invalid("value", "is required")),
                }
            }
            ItemAnswer::Value(_) => {
                return Err(refused(InvestigationRefusal::WrongOutcome {
                    item: item.code.clone(),
                    kind: item.kind,
                }));
            }
        };
        let expected = investigation.version;
        investigation
            .record(&item.code, outcome, note, actor, now)
            .map_err(refused)?;
        let changes = InvestigationChanges {
            data_points: &data_points,
            audit: None,
            event: updated.as_ref(),
        };
        self.store
            .save_investigation(&investigation, expected, &changes)
            .await
            .map_err(conflict("the investigation"))?;
        Ok(investigation)
    }

    /// Adds a visit report to an open investigation.
    pub async fn record_visit_report(
        &self,
        investigation_id: &str,
        draft: VisitDraft,
        actor: &Actor,
    ) -> Result<(Investigation, VisitReport), ServiceError> {
        let mut investigation = self.load_investigation(investigation_id).await?;
        let report = draft
            .check(new_id("vis"), actor, Utc::now())
            .map_err(invalid)?;
        let expected = investigation.version;
        investigation.add_visit(report.clone()).map_err(refused)?;
        self.store
            .save_investigation(&investigation, expected, &InvestigationChanges::default())
            .await
            .map_err(conflict("the investigation"))?;
        Ok((investigation, report))
    }

    /// Completes (or cancels) an investigation; a completion is announced.
    pub async fn close_investigation(
        &self,
        investigation_id: &str,
        note: &str,
        cancel: bool,
        actor: &Actor,
    ) -> Result<Investigation, ServiceError> {
        let mut investigation = self.load_investigation(investigation_id).await?;
        let customer = self.load_customer(&investigation.customer_id).await?;
        let expected = investigation.version;
        let now = Utc::now();
        if cancel {
            if note.trim().is_empty() {
                return Err(ServiceError::invalid(
                    "note",
                    "say why the investigation is cancelled",
                ));
            }
            investigation.cancel(note, actor, now).map_err(refused)?;
        } else {
            investigation.complete(note, actor, now).map_err(refused)?;
        }
        let audit = audit_entry(
            &customer.id,
            AuditAction::Investigation,
            actor,
            vec![FieldChange {
                field: "investigation".into(),
                old_value: format!("{} OPEN", investigation.id),
                new_value: format!("{} {}", investigation.id, investigation.status.as_str()),
            }],
            note,
            "",
        );
        let event =
            (!cancel).then(|| events::investigation_completed(&customer, &investigation, actor));
        let changes = InvestigationChanges {
            data_points: &[],
            audit: Some(&audit),
            event: event.as_ref(),
        };
        self.store
            .save_investigation(&investigation, expected, &changes)
            .await
            .map_err(conflict("the investigation"))?;
        Ok(investigation)
    }

    /// A page of a customer's investigations, newest first.
    pub async fn list_investigations(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> Result<(Vec<Investigation>, String), ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let rows = self
            .store
            .list_investigations(&customer.id, page)
            .await
            .map_err(ServiceError::from)?;
        Ok(finish_keyed(page, rows, |investigation| {
            investigation.id.clone()
        }))
    }
}
