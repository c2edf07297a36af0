//! Storing the rows of a customer import: rows that passed their checks are registered
//! several at a time, and when rows share a registration number the first in the file wins
//! and the others come out as its duplicates, whatever the concurrency.

use std::collections::HashSet;

use credit_core::{Actor, FieldViolation, ServiceError};
use credit_runtime::sql::IdempotencyKey;
use futures::StreamExt;

use super::Intake;
use super::customers::ImportedDataPoints;
use super::data_points::{DefinitionCatalog, import_records};
use crate::domain::customer::NewCustomer;
use crate::domain::data_points::{ChangeOrigin, DataPointSource, RawEntry};
use crate::store::{Outcome, duplicate_of};

/// An import row that passed its checks, ready to store.
#[derive(Debug)]
pub struct CheckedRow {
    pub row_number: i64,
    pub customer: NewCustomer,
    /// Values for the new customer's data points, checked against their definitions when the
    /// row is stored (or validated).
    pub data_points: Vec<RawEntry>,
    pub key: IdempotencyKey,
}

impl CheckedRow {
    /// What makes two enterprises the same customer; individuals have none.
    fn registration(&self) -> Option<(String, String)> {
        self.customer
            .profile
            .registration_number()
            .map(|number| (self.customer.country.clone(), number.to_owned()))
    }
}

/// What storing one checked row came to.
#[derive(Debug)]
pub enum RowOutcome {
    Created {
        customer_id: String,
    },
    /// The row's key registered this customer in an earlier call.
    AlreadyImported {
        customer_id: String,
    },
    /// An enterprise with the row's registration number is registered already.
    Duplicate {
        existing_customer_id: String,
    },
    /// A data point of the row was refused (its definition's rules), nothing written.
    Invalid(Vec<FieldViolation>),
    Failed(ServiceError),
}

impl Intake {
    /// Stores checked rows, each tagged with its place in the batch, and answers each with
    /// its tag, its row number and its outcome. First occurrences of a registration number
    /// are stored before its repeats, so a repeat finds the first stored and comes out as
    /// its duplicate. Rows of earlier batches are stored before this one starts, so a repeat
    /// of one of them is a duplicate too.
    pub async fn import_rows(
        &self,
        rows: Vec<(usize, CheckedRow)>,
        import_id: &str,
        actor: &Actor,
    ) -> Vec<(usize, i64, RowOutcome)> {
        // The definitions are read once per batch, and only when a row brings data points.
        let catalog = if rows.iter().any(|(_, row)| !row.data_points.is_empty()) {
            match self.definition_catalog().await {
                Ok(catalog) => catalog,
                Err(error) => {
                    let cause = error.to_string();
                    return rows
                        .into_iter()
                        .map(|(place, row)| {
                            let failed = ServiceError::unavailable(
                                "the data point definitions could not be read; retry the import",
                                cause.clone(),
                            );
                            (place, row.row_number, RowOutcome::Failed(failed))
                        })
                        .collect();
                }
            }
        } else {
            DefinitionCatalog::default()
        };
        let catalog = &catalog;
        let mut first_occurrences = Vec::new();
        let mut repeats = Vec::new();
        let mut registrations = HashSet::new();
        for (place, checked) in rows {
            let first = checked
                .registration()
                .is_none_or(|registration| registrations.insert(registration));
            if first {
                first_occurrences.push((place, checked));
            } else {
                repeats.push((place, checked));
            }
        }
        let mut stored = Vec::new();
        for phase in [first_occurrences, repeats] {
            let outcomes: Vec<(usize, i64, RowOutcome)> = futures::stream::iter(phase)
                .map(|(place, checked)| async move {
                    let row_number = checked.row_number;
                    (
                        place,
                        row_number,
                        self.store_import_row(checked, catalog, import_id, actor)
                            .await,
                    )
                })
                .buffered(self.store.write_concurrency())
                .collect()
                .await;
            stored.extend(outcomes);
        }
        stored
    }

    /// Checks the data points of rows of a `validate_only` import: each row's violations,
    /// empty when it would be stored.
    pub async fn validate_row_data_points(
        &self,
        rows: &[CheckedRow],
        actor: &Actor,
    ) -> Result<Vec<Vec<FieldViolation>>, ServiceError> {
        let catalog = if rows.iter().any(|row| !row.data_points.is_empty()) {
            self.definition_catalog().await?
        } else {
            DefinitionCatalog::default()
        };
        let origin = ChangeOrigin {
            change_id: "",
            source: DataPointSource::Import,
            source_reference: "",
            actor,
            note: "",
            at: chrono::Utc::now(),
        };
        Ok(rows
            .iter()
            .map(|row| {
                import_records(
                    row.data_points.clone(),
                    &catalog,
                    row.customer.profile.kind(),
                    "",
                    &origin,
                )
                .err()
                .unwrap_or_default()
            })
            .collect())
    }

    async fn store_import_row(
        &self,
        row: CheckedRow,
        catalog: &DefinitionCatalog,
        import_id: &str,
        actor: &Actor,
    ) -> RowOutcome {
        let data_points = (!row.data_points.is_empty()).then_some(ImportedDataPoints {
            entries: row.data_points,
            catalog,
            import_id,
        });
        match self
            .register(row.customer, data_points, row.key, actor)
            .await
        {
            Ok(Outcome::New(customer)) => RowOutcome::Created {
                customer_id: customer.id,
            },
            Ok(Outcome::Replayed(customer)) => RowOutcome::AlreadyImported {
                customer_id: customer.id,
            },
            Err(error) => match duplicate_of(&error) {
                Some(existing_id) => RowOutcome::Duplicate {
                    existing_customer_id: existing_id.to_owned(),
                },
                None => match ServiceError::from(error) {
                    ServiceError::InvalidArgument(violations) => RowOutcome::Invalid(violations),
                    other => RowOutcome::Failed(other),
                },
            },
        }
    }
}
