//! Data point use cases: define a data point, set a customer's values (through the API or with
//! a new customer of an import), and read the current values and their history.

use std::collections::BTreeMap;

use chrono::Utc;
use credit_core::{Actor, ServiceError, Violations};
use credit_runtime::sql::{IdempotencyKey, Page};

use super::{Intake, audit_entry, finish_keyed, new_id, required_id};
use crate::api::convert::events;
use crate::domain::customer::{CustomerKind, FieldChange};
use crate::domain::data_points::{
    self, ChangeOrigin, ChangeRefused, DataPointRecord, DataPointValue, Definition,
    DefinitionDraft, RawEntry,
};
use crate::domain::records::AuditAction;
use crate::store::StoreError;

/// The definitions by code, read once for a request or an import batch.
#[derive(Debug, Clone, Default)]
pub struct DefinitionCatalog(BTreeMap<String, Definition>);

impl DefinitionCatalog {
    pub fn get(&self, code: &str) -> Option<&Definition> {
        self.0.get(code)
    }
}

/// What a change refused for: the violations as the caller's answer, the setter roles as
/// PERMISSION_DENIED.
pub(crate) fn refusal(refused: ChangeRefused) -> ServiceError {
    match refused {
        ChangeRefused::Invalid(violations) => finish_violations(violations),
        ChangeRefused::SetterRoleRequired(codes) => ServiceError::permission_denied(
            "SETTER_ROLE_REQUIRED",
            format!(
                "your roles may not set {}: each data point's definition names who may",
                codes.join(", ")
            ),
        ),
    }
}

fn finish_violations(violations: Violations) -> ServiceError {
    match violations.finish() {
        Err(error) => error,
        Ok(()) => ServiceError::invalid("values", "were refused"),
    }
}

/// How a value reads in the customer's audit trail (never personal data: data points are
/// company-defined business facts).
fn audit_value(value: Option<&DataPointValue>) -> String {
    match value {
        None => String::new(),
        Some(DataPointValue::Number(number)) => number.to_string(),
        Some(DataPointValue::Category(category)) => category.clone(),
        Some(DataPointValue::Date(date)) => date.to_string(),
        Some(DataPointValue::YesNo(yes)) => if *yes { "yes" } else { "no" }.to_owned(),
        Some(DataPointValue::Money(money)) => {
            format!("{} {}", money.amount_string(), money.currency())
        }
    }
}

/// The audit changes of a set of records, against the current values they replace.
fn audit_changes(records: &[DataPointRecord], current: &[DataPointRecord]) -> Vec<FieldChange> {
    records
        .iter()
        .map(|record| FieldChange {
            field: format!("data_points.{}", record.code),
            old_value: audit_value(
                current
                    .iter()
                    .find(|old| old.code == record.code)
                    .and_then(|old| old.value.as_ref()),
            ),
            new_value: audit_value(record.value.as_ref()),
        })
        .collect()
}

impl Intake {
    /// Every definition, by code.
    pub async fn definition_catalog(&self) -> Result<DefinitionCatalog, ServiceError> {
        let definitions = self
            .store
            .data_point_definitions()
            .await
            .map_err(ServiceError::from)?;
        Ok(DefinitionCatalog(
            definitions
                .into_iter()
                .map(|definition| (definition.code.clone(), definition))
                .collect(),
        ))
    }

    /// Creates (`expected_version` 0) or replaces a definition.
    pub async fn define_data_point(
        &self,
        draft: DefinitionDraft,
        expected_version: i64,
        actor: &Actor,
    ) -> Result<Definition, ServiceError> {
        if expected_version < 0 {
            return Err(ServiceError::invalid(
                "expected_version",
                "must be 0 or more",
            ));
        }
        let catalog = self.definition_catalog().await?;
        let current = catalog.get(draft.code.trim());
        match (current, expected_version) {
            (Some(current), 0) => {
                return Err(ServiceError::AlreadyExists {
                    reason: "DATA_POINT_EXISTS",
                    message: format!(
                        "'{}' is defined (version {}); send expected_version to change it",
                        current.code, current.version
                    ),
                    metadata: Vec::new(),
                });
            }
            (None, version) if version > 0 => {
                return Err(ServiceError::not_found("data point", draft.code.trim()));
            }
            _ => {}
        }
        let definition = draft
            .check(current, actor, Utc::now())
            .map_err(finish_violations)?;
        self.store
            .define_data_point(&definition, expected_version)
            .await
            .map_err(|error| match error {
                StoreError::VersionConflict => ServiceError::failed_precondition(
                    "VERSION_CONFLICT",
                    format!(
                        "'{}' changed since version {expected_version}; read it again",
                        definition.code
                    ),
                ),
                other => ServiceError::from(other),
            })?;
        Ok(definition)
    }

    /// A page of definitions in code order, those of `kind` (and of both kinds) when given.
    pub async fn list_data_point_definitions(
        &self,
        kind: Option<CustomerKind>,
        page: &Page,
    ) -> Result<(Vec<Definition>, String), ServiceError> {
        let after = page.after.clone().unwrap_or_default();
        let rows: Vec<Definition> = self
            .definition_catalog()
            .await?
            .0
            .into_values()
            .filter(|definition| kind.is_none_or(|kind| definition.applies_to(kind)))
            .filter(|definition| definition.code > after)
            .take(usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX))
            .collect();
        Ok(finish_keyed(page, rows, |definition| {
            definition.code.clone()
        }))
    }

    /// Sets or clears values of a customer's data points in one audited change.
    pub async fn set_data_points(
        &self,
        customer_id: &str,
        entries: Vec<RawEntry>,
        note: &str,
        key: IdempotencyKey,
        actor: &Actor,
    ) -> Result<Vec<DataPointRecord>, ServiceError> {
        if entries.is_empty() {
            return Err(ServiceError::invalid(
                "values",
                "at least one value is required",
            ));
        }
        let customer = self.load_customer(customer_id).await?;
        let catalog = self.definition_catalog().await?;
        let change_id = new_id("dpc");
        let origin = ChangeOrigin {
            change_id: &change_id,
            source: data_points::DataPointSource::Api,
            source_reference: "",
            actor,
            note,
            at: Utc::now(),
        };
        let records = data_points::check_change(
            entries,
            |code| catalog.get(code),
            customer.profile.kind(),
            &customer.id,
            &origin,
            "values",
            &mut || new_id("dpv"),
        )
        .map_err(refusal)?;
        let current = self
            .store
            .current_data_points(&customer.id)
            .await
            .map_err(ServiceError::from)?;
        let audit = audit_entry(
            &customer.id,
            AuditAction::DataPointsSet,
            actor,
            audit_changes(&records, &current),
            note,
            &key.request_id,
        );
        let codes = records.iter().map(|record| record.code.clone()).collect();
        let event = events::credit_file_updated(&customer, codes, "", actor, &key.request_id);
        Ok(self
            .store
            .set_data_points(&records, &key, &audit, &event)
            .await
            .map_err(ServiceError::from)?
            .into_inner())
    }

    /// The current values of a customer's data points, in code order.
    pub async fn current_data_points(
        &self,
        customer_id: &str,
    ) -> Result<Vec<DataPointRecord>, ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        self.store
            .current_data_points(&customer.id)
            .await
            .map_err(ServiceError::from)
    }

    /// A page of one data point's values for a customer, newest first.
    pub async fn data_point_history(
        &self,
        customer_id: &str,
        code: &str,
        page: &Page,
    ) -> Result<(Vec<DataPointRecord>, String), ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let code = required_id(code, "code")?;
        let rows = self
            .store
            .data_point_history(&customer.id, &code, page)
            .await
            .map_err(ServiceError::from)?;
        Ok(finish_keyed(page, rows, |record| record.id.clone()))
    }
}

/// The records an import row's data points make for customer `customer_id` of `kind`, or the
/// row's violations (each at `data_points[i]…`; a value the importer may not set is one too).
pub(crate) fn import_records(
    entries: Vec<RawEntry>,
    catalog: &DefinitionCatalog,
    kind: CustomerKind,
    customer_id: &str,
    origin: &ChangeOrigin<'_>,
) -> Result<Vec<DataPointRecord>, Vec<credit_core::FieldViolation>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    data_points::check_change(
        entries.clone(),
        |code| catalog.get(code),
        kind,
        customer_id,
        origin,
        "data_points",
        &mut || new_id("dpv"),
    )
    .map_err(|refused| match refused {
        ChangeRefused::Invalid(violations) => match violations.finish() {
            Err(ServiceError::InvalidArgument(list)) => list,
            _ => Vec::new(),
        },
        ChangeRefused::SetterRoleRequired(codes) => entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| codes.contains(&entry.code.trim().to_owned()))
            .map(|(index, entry)| {
                credit_core::FieldViolation::new(
                    format!("data_points[{index}].code"),
                    format!("your roles may not set '{}'", entry.code.trim()),
                )
            })
            .collect(),
    })
}
