//! Customer use cases: register one (from `CreateCustomer` or an import row), update its
//! profile, change its status, list customers, and read its audit trail.

use chrono::Utc;
use credit_core::{Actor, ServiceError};
use credit_runtime::sql::{IdempotencyKey, Page};

use super::data_points::{DefinitionCatalog, import_records};
use super::{Intake, audit_entry, new_id};
use crate::api::convert::events;
use crate::domain::customer::{self, Customer, CustomerStatus, FieldChange, NewCustomer, Profile};
use crate::domain::data_points::{ChangeOrigin, DataPointSource, RawEntry};
use crate::domain::records::{AuditAction, AuditEntry};
use crate::store::{CustomerFilter, Outcome, StoreError};

/// ABORTED when the caller sent an etag and the customer has moved past it.
fn check_etag(current: &Customer, etag: &str) -> Result<(), ServiceError> {
    if !etag.is_empty() && etag != current.etag() {
        return Err(ServiceError::Aborted {
            reason: "ETAG_MISMATCH",
            message: format!(
                "the customer is at {}, not {etag}; read it again",
                current.etag()
            ),
        });
    }
    Ok(())
}

/// The data points an import row brings for its new customer.
#[derive(Debug)]
pub(crate) struct ImportedDataPoints<'a> {
    pub entries: Vec<RawEntry>,
    pub catalog: &'a DefinitionCatalog,
    pub import_id: &'a str,
}

impl Intake {
    /// Registers a checked customer; shared by `CreateCustomer` and each import row.
    pub(crate) async fn register(
        &self,
        new: NewCustomer,
        data_points: Option<ImportedDataPoints<'_>>,
        key: IdempotencyKey,
        actor: &Actor,
    ) -> Result<Outcome<Customer>, StoreError> {
        let now = Utc::now();
        let customer = Customer {
            id: new_id("cus"),
            country: new.country,
            status: CustomerStatus::Prospect,
            status_reason: "registered".to_owned(),
            status_changed_at: now,
            group_id: None,
            group_joined_at: None,
            profile: new.profile,
            version: 1,
            created_at: now,
            created_by: actor.clone(),
            updated_at: now,
            updated_by: actor.clone(),
        };
        let changes = customer::flatten(&customer.profile)
            .into_iter()
            .map(|(field, new_value)| FieldChange {
                field,
                old_value: String::new(),
                new_value,
            })
            .collect();
        let audit = audit_entry(
            &customer.id,
            AuditAction::Created,
            actor,
            changes,
            "",
            &key.request_id,
        );
        let event = events::customer_registered(&customer, actor, &key.request_id);
        let records = match data_points {
            None => Vec::new(),
            Some(imported) => {
                let origin = ChangeOrigin {
                    change_id: &key.request_id,
                    source: DataPointSource::Import,
                    source_reference: imported.import_id,
                    actor,
                    note: "",
                    at: now,
                };
                import_records(
                    imported.entries,
                    imported.catalog,
                    customer.profile.kind(),
                    &customer.id,
                    &origin,
                )
                .map_err(|violations| {
                    StoreError::refused(ServiceError::InvalidArgument(violations))
                })?
            }
        };
        self.store
            .create_customer(&customer, &records, &key, &audit, &event)
            .await
    }

    /// The new customer, or the one an earlier call with the same key registered.
    pub async fn create_customer(
        &self,
        new: NewCustomer,
        key: IdempotencyKey,
        actor: &Actor,
    ) -> Result<Customer, ServiceError> {
        Ok(self
            .register(new, None, key, actor)
            .await
            .map_err(ServiceError::from)?
            .into_inner())
    }

    /// Replaces the profile of a customer with what `updated_profile` makes of it, and audits
    /// the fields that changed. A profile that changes nothing is no update: the customer is
    /// returned as it is.
    pub async fn update_customer(
        &self,
        customer_id: &str,
        etag: &str,
        reason: &str,
        actor: &Actor,
        updated_profile: impl FnOnce(&Customer) -> Result<Profile, ServiceError>,
    ) -> Result<Customer, ServiceError> {
        let current = self.load_customer(customer_id).await?;
        check_etag(&current, etag)?;
        let profile = updated_profile(&current)?;
        let changes = customer::diff(&current.profile, &profile);
        if changes.is_empty() {
            return Ok(current);
        }
        let audit = audit_entry(
            &current.id,
            AuditAction::Updated,
            actor,
            changes,
            reason,
            "",
        );
        let updated = Customer {
            profile,
            ..current.clone()
        };
        self.save(&current, updated, audit, Vec::new(), actor).await
    }

    /// One page of the customers matching `filter`, and the next page's token.
    pub async fn list_customers(
        &self,
        filter: &CustomerFilter,
        page: &Page,
    ) -> Result<(Vec<Customer>, String), ServiceError> {
        let mut customers = self
            .store
            .list_customers(filter, page)
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut customers, |customer| customer.id.as_str());
        Ok((customers, next_page_token))
    }

    /// Moves a customer to `next` along its lifecycle. A customer already at `next` is
    /// returned unchanged: a retried call finds its change made.
    pub async fn set_customer_status(
        &self,
        customer_id: &str,
        etag: &str,
        next: CustomerStatus,
        reason: String,
        actor: &Actor,
    ) -> Result<Customer, ServiceError> {
        let current = self.load_customer(customer_id).await?;
        check_etag(&current, etag)?;
        if current.status == next {
            return Ok(current);
        }
        if !current.status.may_become(next) {
            return Err(ServiceError::FailedPrecondition {
                reason: "INVALID_STATUS_TRANSITION",
                message: format!(
                    "a {} customer cannot become {}",
                    current.status.as_str(),
                    next.as_str()
                ),
                metadata: vec![("current_status", current.status.as_str().to_owned())],
            });
        }
        let change = FieldChange {
            field: "status".into(),
            old_value: current.status.as_str().into(),
            new_value: next.as_str().into(),
        };
        let audit = audit_entry(
            &current.id,
            AuditAction::StatusChanged,
            actor,
            vec![change],
            &reason,
            "",
        );
        let updated = Customer {
            status: next,
            status_reason: reason,
            status_changed_at: audit.changed_at,
            ..current.clone()
        };
        let event = events::customer_status_changed(&updated, current.status, actor);
        self.save(&current, updated, audit, vec![event], actor)
            .await
    }

    /// One page of a customer's audit trail, oldest first, and the next page's token.
    pub async fn list_customer_audit(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> Result<(Vec<AuditEntry>, String), ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let mut entries = self
            .store
            .list_audit(&customer.id, page)
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut entries, |entry| entry.id.as_str());
        Ok((entries, next_page_token))
    }
}
