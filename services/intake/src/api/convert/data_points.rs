//! Data points between the contract and the domain: a definition and the values of a change
//! read from requests, and definitions and recorded values shown as the contract's messages.

use chrono::{DateTime, Utc};
use credit_core::{FieldViolation, Role, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::approval_wire::{role_from_proto, role_to_proto};

use super::{date_from_proto, date_to_proto, kind_from_proto, kind_to_proto, timestamp};
use crate::domain::data_points::{
    DataPointRecord, DataPointSource, DataPointType, DataPointValue, Definition, DefinitionDraft,
    RawEntry, RawValue,
};

fn type_from_proto(wire: i32) -> Option<DataPointType> {
    match pb::DataPointType::try_from(wire).ok()? {
        pb::DataPointType::Number => Some(DataPointType::Number),
        pb::DataPointType::Category => Some(DataPointType::Category),
        pb::DataPointType::Date => Some(DataPointType::Date),
        pb::DataPointType::YesNo => Some(DataPointType::YesNo),
        pb::DataPointType::Money => Some(DataPointType::Money),
        pb::DataPointType::Unspecified => None,
    }
}

fn type_to_proto(value_type: DataPointType) -> pb::DataPointType {
    match value_type {
        DataPointType::Number => pb::DataPointType::Number,
        DataPointType::Category => pb::DataPointType::Category,
        DataPointType::Date => pb::DataPointType::Date,
        DataPointType::YesNo => pb::DataPointType::YesNo,
        DataPointType::Money => pb::DataPointType::Money,
    }
}

fn source_to_proto(source: DataPointSource) -> pb::DataPointSource {
    match source {
        DataPointSource::Api => pb::DataPointSource::Api,
        DataPointSource::Import => pb::DataPointSource::Import,
        DataPointSource::Investigation => pb::DataPointSource::Investigation,
    }
}

/// The definition a DefineDataPoint request carries; the roles and kind that are not the
/// contract's values are refused here, the rest is checked by the domain.
pub fn parse_definition(
    wire: Option<&pb::DataPointDefinition>,
) -> Result<DefinitionDraft, ServiceError> {
    let wire = wire.ok_or_else(|| ServiceError::invalid("definition", "is required"))?;
    let mut violations = Vec::new();
    let mut setter_roles: Vec<Role> = Vec::new();
    for (index, role) in wire.setter_roles.iter().enumerate() {
        match role_from_proto(*role) {
            Some(role) => setter_roles.push(role),
            None => violations.push(FieldViolation::new(
                format!("definition.setter_roles[{index}]"),
                "is not a role",
            )),
        }
    }
    let customer_kind = match pb::CustomerKind::try_from(wire.customer_kind) {
        Ok(kind) => kind_from_proto(kind),
        Err(_) => {
            violations.push(FieldViolation::new(
                "definition.customer_kind",
                "is not a kind of customer",
            ));
            None
        }
    };
    let value_type = type_from_proto(wire.r#type);
    if !violations.is_empty() {
        return Err(ServiceError::InvalidArgument(violations));
    }
    Ok(DefinitionDraft {
        code: wire.code.clone(),
        label_zh: wire.label_zh.clone(),
        label_en: wire.label_en.clone(),
        value_type,
        customer_kind,
        allowed_values: wire.allowed_values.clone(),
        setter_roles,
        valid_days: wire.valid_days,
        currency: wire.currency.clone(),
        description: wire.description.clone(),
    })
}

pub fn definition_to_proto(definition: &Definition) -> pb::DataPointDefinition {
    pb::DataPointDefinition {
        code: definition.code.clone(),
        label_zh: definition.label_zh.clone(),
        label_en: definition.label_en.clone(),
        r#type: type_to_proto(definition.value_type) as i32,
        customer_kind: definition
            .customer_kind
            .map_or(pb::CustomerKind::Unspecified, kind_to_proto) as i32,
        allowed_values: definition.allowed_values.clone(),
        setter_roles: definition
            .setter_roles
            .iter()
            .map(|role| role_to_proto(*role))
            .collect(),
        valid_days: definition.valid_days,
        currency: definition
            .currency
            .map(|currency| currency.code().to_owned())
            .unwrap_or_default(),
        description: definition.description.clone(),
        version: definition.version,
        updated_at: Some(timestamp(definition.updated_at)),
        updated_by: definition.updated_by.name.clone(),
    }
}

/// The entries of a change (`values` of SetDataPoints, `data_points` of an import row) as the
/// domain checks them; only a missing code is refused here.
pub fn parse_entries(
    wire: &[pb::DataPointEntry],
    field: &str,
) -> Result<Vec<RawEntry>, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let entries = wire
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            if entry.code.trim().is_empty() {
                violations.push(FieldViolation::new(
                    format!("{field}[{index}].code"),
                    "is required",
                ));
            }
            RawEntry {
                code: entry.code.clone(),
                value: entry
                    .value
                    .as_ref()
                    .and_then(|value| value.value.as_ref())
                    .map(raw_value),
            }
        })
        .collect();
    if violations.is_empty() {
        Ok(entries)
    } else {
        Err(violations)
    }
}

fn raw_value(wire: &pb::data_point_value::Value) -> RawValue {
    use pb::data_point_value::Value;
    match wire {
        Value::Number(number) => RawValue::Number(number.clone()),
        Value::Category(category) => RawValue::Category(category.clone()),
        Value::Date(date) => RawValue::Date(date_from_proto(date)),
        Value::YesNo(yes) => RawValue::YesNo(*yes),
        Value::Money(money) => RawValue::Money {
            amount: money.amount.clone(),
            currency: money.currency.clone(),
        },
        Value::Text(text) => RawValue::Text(text.clone()),
    }
}

pub fn value_to_proto(value: &DataPointValue) -> pb::DataPointValue {
    use pb::data_point_value::Value;
    let value = match value {
        DataPointValue::Number(number) => Value::Number(number.normalize().to_string()),
        DataPointValue::Category(category) => Value::Category(category.clone()),
        DataPointValue::Date(date) => Value::Date(date_to_proto(*date)),
        DataPointValue::YesNo(yes) => Value::YesNo(*yes),
        DataPointValue::Money(money) => Value::Money(pb::Money {
            amount: money.amount_string(),
            currency: money.currency().code().to_owned(),
        }),
    };
    pb::DataPointValue { value: Some(value) }
}

/// A recorded value, stale or not as of `now`.
pub fn data_point_to_proto(record: &DataPointRecord, now: DateTime<Utc>) -> pb::DataPoint {
    pb::DataPoint {
        customer_id: record.customer_id.clone(),
        code: record.code.clone(),
        value: record.value.as_ref().map(value_to_proto),
        source: source_to_proto(record.source) as i32,
        source_reference: record.source_reference.clone(),
        set_by: record.set_by.name.clone(),
        set_at: Some(timestamp(record.set_at)),
        valid_until: record.valid_until.map(timestamp),
        stale: record.value.is_some() && record.is_stale(now),
        definition_version: record.definition_version,
        note: record.note.clone(),
    }
}
