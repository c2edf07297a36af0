//! Storing the rows of a customer import: rows that passed their checks are registered
//! several at a time, and when rows share a registration number the first in the file wins
//! and the others come out as its duplicates, whatever the concurrency.

use std::collections::HashSet;

use credit_core::{Actor, ServiceError};
use credit_runtime::sql::IdempotencyKey;
use futures::StreamExt;

use super::Intake;
use crate::domain::customer::NewCustomer;
use crate::store::{Outcome, duplicate_of};

/// An import row that passed its checks, ready to store.
#[derive(Debug)]
pub struct CheckedRow {
    pub row_number: i64,
    pub customer: NewCustomer,
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
        actor: &Actor,
    ) -> Vec<(usize, i64, RowOutcome)> {
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
                        self.store_import_row(checked, actor).await,
                    )
                })
                .buffered(self.store.write_concurrency())
                .collect()
                .await;
            stored.extend(outcomes);
        }
        stored
    }

    async fn store_import_row(&self, row: CheckedRow, actor: &Actor) -> RowOutcome {
        match self.register(row.customer, row.key, actor).await {
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
                None => RowOutcome::Failed(ServiceError::from(error)),
            },
        }
    }
}
