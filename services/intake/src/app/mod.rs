//! Intake's use cases: each takes checked domain values (what `api::convert` read from a
//! request), applies the domain's rules, and keeps the result through the [`IntakeStore`],
//! with its audit entry and outbox event in the same transaction.
//!
//! Outbox events are the contract's `Event` message, so the use cases that publish one build
//! it through `api::convert::events`; nothing else here knows the wire.

mod customers;
mod data_points;
mod groups;
mod import;
mod investigations;
mod records;

use std::sync::Arc;

use chrono::Utc;
use credit_core::{Actor, ServiceError};
use credit_proto::v1::Event;
use credit_runtime::sql::Page;

pub use data_points::DefinitionCatalog;
pub use groups::{GroupWithMembers, NewGroup};
pub use import::{CheckedRow, RowOutcome};
pub use investigations::ItemAnswer;

use crate::domain::customer::{Customer, FieldChange};
use crate::domain::records::{AuditAction, AuditEntry, Group};
use crate::store::IntakeStore;

/// Intake's use cases over one store.
#[derive(Debug, Clone)]
pub struct Intake {
    store: Arc<dyn IntakeStore>,
}

impl Intake {
    pub fn new(store: Arc<dyn IntakeStore>) -> Self {
        Self { store }
    }
}

/// A new record id: `<prefix>_<uuid v7>`, so ids sort in creation order.
fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// An id a caller sent: trimmed, required, at most 100 characters.
pub(crate) fn required_id(value: &str, field: &str) -> Result<String, ServiceError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if value.len() > 100 {
        return Err(ServiceError::invalid(
            field,
            "must be at most 100 characters",
        ));
    }
    Ok(value.to_owned())
}

/// [`Page::finish`] for lists whose page key is made from several fields of a row rather
/// than one the row holds: the page's rows and the next page's token.
fn finish_keyed<T>(page: &Page, rows: Vec<T>, key: fn(&T) -> String) -> (Vec<T>, String) {
    let mut keyed: Vec<(String, T)> = rows.into_iter().map(|row| (key(&row), row)).collect();
    let next_page_token = page.finish(&mut keyed, |(row_key, _)| row_key.as_str());
    (
        keyed.into_iter().map(|(_, row)| row).collect(),
        next_page_token,
    )
}

fn audit_entry(
    customer_id: &str,
    action: AuditAction,
    actor: &Actor,
    changes: Vec<FieldChange>,
    reason: &str,
    request_id: &str,
) -> AuditEntry {
    AuditEntry {
        id: new_id("aud"),
        customer_id: customer_id.to_owned(),
        action,
        actor: actor.clone(),
        changed_at: Utc::now(),
        changes,
        reason: reason.to_owned(),
        request_id: request_id.to_owned(),
    }
}

impl Intake {
    /// The customer with `customer_id`, or NOT_FOUND.
    pub async fn load_customer(&self, customer_id: &str) -> Result<Customer, ServiceError> {
        let customer_id = required_id(customer_id, "customer_id")?;
        self.store
            .get_customer(&customer_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))
    }

    async fn load_group(&self, group_id: &str) -> Result<Group, ServiceError> {
        let group_id = required_id(group_id, "group_id")?;
        self.store
            .get_group(&group_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("group", group_id))
    }

    /// Saves `updated` (built from `current`) with its audit entry and events.
    async fn save(
        &self,
        current: &Customer,
        mut updated: Customer,
        audit: AuditEntry,
        events: Vec<Event>,
        actor: &Actor,
    ) -> Result<Customer, ServiceError> {
        updated.version = current.version + 1;
        updated.updated_at = audit.changed_at;
        updated.updated_by = actor.clone();
        self.store
            .save_customer(&updated, current.version, &audit, &events)
            .await
            .map_err(ServiceError::from)?;
        Ok(updated)
    }
}
