//! Import rows between the contract and the domain: a `pb::ImportCustomerRow` checked into a
//! [`CheckedRow`] (or answered INVALID with its field violations), and a row's outcome as
//! the contract's `ImportCustomerRowResult`.

use credit_core::ServiceError;
use credit_proto::v1 as pb;
use credit_runtime::sql::IdempotencyKey;
use tonic::Status;

use super::{parse_customer, parse_entries, today};
use crate::app::{CheckedRow, RowOutcome};

/// Checks one import row, or answers it as invalid.
pub fn check_import_row(
    row: &pb::ImportCustomerRow,
    import_id: &str,
    caller: &str,
) -> Result<CheckedRow, Box<pb::ImportCustomerRowResult>> {
    let invalid = |violations: Vec<pb::FieldViolation>| pb::ImportCustomerRowResult {
        row_number: row.row_number,
        outcome: pb::ImportRowOutcome::Invalid as i32,
        customer_id: String::new(),
        violations,
        error: None,
    };
    let Some(wire) = row.customer.as_ref() else {
        return Err(Box::new(invalid(vec![pb::FieldViolation {
            field: "customer".into(),
            reason: "REQUIRED".into(),
            description: "is required".into(),
        }])));
    };
    let customer = match parse_customer(wire, today(), "customer") {
        Ok(customer) => customer,
        Err(ServiceError::InvalidArgument(violations)) => {
            return Err(Box::new(invalid_row_result(row.row_number, violations)));
        }
        Err(other) => {
            return Err(Box::new(pb::ImportCustomerRowResult {
                error: Some(reason_of(other)),
                outcome: pb::ImportRowOutcome::Failed as i32,
                ..invalid(Vec::new())
            }));
        }
    };
    // Without a request id of its own, a row's key is its place in the import, so sending
    // the same file again with the same import id creates nothing twice.
    let request_id = if row.request_id.trim().is_empty() {
        format!("{import_id}:{}", row.row_number)
    } else {
        row.request_id.trim().to_owned()
    };
    let data_points = match parse_entries(&row.data_points, "data_points") {
        Ok(entries) => entries,
        Err(violations) => return Err(Box::new(invalid_row_result(row.row_number, violations))),
    };
    Ok(CheckedRow {
        row_number: row.row_number,
        customer,
        data_points,
        key: IdempotencyKey::new(caller, request_id, "CreateCustomer", wire),
    })
}

/// A failure as a stable reason code inside a successful response (an import row).
fn reason_of(error: ServiceError) -> pb::Reason {
    let status = Status::from(error);
    let code = match status.code() {
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        _ => "INTERNAL",
    };
    pb::Reason {
        code: code.to_owned(),
        message: status.message().to_owned(),
        metadata: Default::default(),
    }
}

/// A stored row's answer.
pub fn row_result(row_number: i64, outcome: RowOutcome) -> pb::ImportCustomerRowResult {
    use pb::ImportRowOutcome as Wire;
    let (outcome, customer_id, error) = match outcome {
        RowOutcome::Created { customer_id } => (Wire::Created, customer_id, None),
        RowOutcome::AlreadyImported { customer_id } => (Wire::AlreadyImported, customer_id, None),
        RowOutcome::Duplicate {
            existing_customer_id,
        } => (Wire::Duplicate, existing_customer_id, None),
        RowOutcome::Failed(error) => (Wire::Failed, String::new(), Some(reason_of(error))),
        RowOutcome::Invalid(violations) => return invalid_row_result(row_number, violations),
    };
    pb::ImportCustomerRowResult {
        row_number,
        outcome: outcome as i32,
        customer_id,
        violations: Vec::new(),
        error,
    }
}

/// The answer to a row the server refused: INVALID with its violations.
pub fn invalid_row_result(
    row_number: i64,
    violations: Vec<credit_core::FieldViolation>,
) -> pb::ImportCustomerRowResult {
    pb::ImportCustomerRowResult {
        row_number,
        outcome: pb::ImportRowOutcome::Invalid as i32,
        customer_id: String::new(),
        violations: violations
            .into_iter()
            .map(|violation| pb::FieldViolation {
                field: violation.field,
                reason: "INVALID".into(),
                description: violation.description,
            })
            .collect(),
        error: None,
    }
}

/// The answer to a row checked in a `validate_only` call: valid, nothing stored.
pub fn valid_row_result(row_number: i64) -> pb::ImportCustomerRowResult {
    pb::ImportCustomerRowResult {
        row_number,
        ..Default::default()
    }
}
