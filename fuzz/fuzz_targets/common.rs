//! What every target checks: a refused request is refused as INVALID_ARGUMENT with at least
//! one named field violation. Any other error, or a panic, is a finding.

use credit_core::ServiceError;

pub fn assert_invalid_argument<T>(what: &str, result: Result<T, ServiceError>) {
    match result {
        Ok(_) => {}
        Err(ServiceError::InvalidArgument(violations)) => {
            assert!(!violations.is_empty(), "{what}: refused without a violation");
            for violation in &violations {
                assert!(!violation.field.is_empty(), "{what}: a violation names no field");
            }
        }
        Err(other) => panic!("{what}: refused as {other:?}, not INVALID_ARGUMENT"),
    }
}

/// The request kind from the first byte and the message from the rest, so one corpus covers
/// every request of a service.
pub fn split(data: &[u8]) -> Option<(u8, &[u8])> {
    let (&kind, rest) = data.split_first()?;
    Some((kind, rest))
}

/// A fixed "today", so that a finding reproduces on another day.
#[allow(dead_code, reason = "each target includes this module; not all of them need a date")]
pub fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default()
}
