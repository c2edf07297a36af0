//! The one error set every service returns, and its one mapping to `tonic::Status`.
//!
//! Clients get a gRPC code, a readable message, an `ErrorInfo` whose `reason` is a stable
//! upper-snake code they may branch on, and for bad input a `BadRequest` with one field
//! violation per problem. Causes from storage or the network are logged in full and never
//! shown: no SQL text, host name or driver message reaches a client.

use std::error::Error as StdError;
use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error the suite returns.
pub const ERROR_DOMAIN: &str = "credit.v1";

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// One problem with one field of a request. `field` is the proto path (`contacts[0].email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Collects every problem of a request before refusing it, so a caller fixes all at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records the error of `result` against `field` and hands back the value when it is fine.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was recorded, otherwise `ServiceError::InvalidArgument` with all of it.
    pub fn finish(self) -> Result<(), ServiceError> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(ServiceError::InvalidArgument(self.0))
    }
}

/// Field problems a domain rule found, as the caller hears them: INVALID_ARGUMENT with every
/// violation.
impl From<Violations> for ServiceError {
    fn from(violations: Violations) -> Self {
        ServiceError::InvalidArgument(violations.0)
    }
}

/// Everything a service call can fail with. Each variant maps to exactly one gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the request has invalid fields")]
    InvalidArgument(Vec<FieldViolation>),

    #[error("{resource} '{id}' was not found")]
    NotFound { resource: &'static str, id: String },

    /// `reason` is a stable code (`CUSTOMER_ALREADY_REGISTERED`); `metadata` carries ids the
    /// caller needs, such as the id of the existing record.
    #[error("{message}")]
    AlreadyExists {
        reason: &'static str,
        message: String,
        metadata: Vec<(&'static str, String)>,
    },

    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
        metadata: Vec<(&'static str, String)>,
    },

    /// A concurrent change won (optimistic concurrency): read again and retry.
    #[error("{message}")]
    Aborted {
        reason: &'static str,
        message: String,
    },

    #[error("{message}")]
    PermissionDenied {
        reason: &'static str,
        message: String,
    },

    #[error("{message}")]
    Unauthenticated {
        reason: &'static str,
        message: String,
    },

    /// The caller (or the process) is over its budget: retry after `retry_after`.
    #[error("{message}")]
    ResourceExhausted {
        reason: &'static str,
        message: String,
        retry_after: std::time::Duration,
    },

    /// A dependency (database, cache, peer service) did not answer; the caller may retry.
    #[error("{message}")]
    Unavailable {
        message: &'static str,
        #[source]
        source: BoxError,
    },

    /// A bug or an unexpected state; logged in full, shown to the caller as "internal error".
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            resource,
            id: id.into(),
        }
    }

    pub fn failed_precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            reason,
            message: message.into(),
            metadata: Vec::new(),
        }
    }

    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::PermissionDenied {
            reason,
            message: message.into(),
        }
    }

    pub fn unavailable(message: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            message,
            source: source.into(),
        }
    }

    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self::Internal(source.into())
    }

    /// The gRPC code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::FailedPrecondition { .. } => Code::FailedPrecondition,
            Self::Aborted { .. } => Code::Aborted,
            Self::PermissionDenied { .. } => Code::PermissionDenied,
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::ResourceExhausted { .. } => Code::ResourceExhausted,
            Self::Unavailable { .. } => Code::Unavailable,
            Self::Internal(_) => Code::Internal,
        }
    }
}

/// Renders an error and its sources on one line, for logs only.
#[derive(Debug)]
pub struct ErrorChain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(formatter, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let code = error.code();
        match error {
            ServiceError::InvalidArgument(violations) => {
                let summary = violations
                    .iter()
                    .map(|violation| format!("{}: {}", violation.field, violation.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut details = ErrorDetails::new();
                for violation in violations {
                    details.add_bad_request_violation(violation.field, violation.description);
                }
                details.set_error_info("INVALID_ARGUMENT", ERROR_DOMAIN, []);
                Status::with_error_details(code, format!("invalid request: {summary}"), details)
            }
            ServiceError::NotFound { resource, ref id } => {
                let message = error.to_string();
                let details = ErrorDetails::with_error_info(
                    "NOT_FOUND",
                    ERROR_DOMAIN,
                    [
                        ("resource".to_owned(), resource.to_owned()),
                        ("id".to_owned(), id.clone()),
                    ],
                );
                Status::with_error_details(code, message, details)
            }
            ServiceError::AlreadyExists {
                reason,
                message,
                metadata,
            }
            | ServiceError::FailedPrecondition {
                reason,
                message,
                metadata,
            } => {
                let metadata: std::collections::HashMap<String, String> = metadata
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value))
                    .collect();
                let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
                Status::with_error_details(code, message, details)
            }
            ServiceError::PermissionDenied { reason, message }
            | ServiceError::Aborted { reason, message }
            | ServiceError::Unauthenticated { reason, message } => {
                let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, []);
                Status::with_error_details(code, message, details)
            }
            ServiceError::ResourceExhausted {
                reason,
                message,
                retry_after,
            } => {
                let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, []);
                details.set_retry_info(Some(retry_after));
                Status::with_error_details(code, message, details)
            }
            ServiceError::Unavailable { message, source } => {
                tracing::warn!(error = %ErrorChain(source.as_ref()), "dependency unavailable");
                let details = ErrorDetails::with_error_info("UNAVAILABLE", ERROR_DOMAIN, []);
                Status::with_error_details(code, message, details)
            }
            ServiceError::Internal(source) => {
                tracing::error!(error = %ErrorChain(source.as_ref()), "internal error");
                let details = ErrorDetails::with_error_info("INTERNAL", ERROR_DOMAIN, []);
                Status::with_error_details(code, "internal error", details)
            }
        }
    }
}

/// A required text field, trimmed: refused when empty or longer than `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, ServiceError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(ServiceError::invalid(
            field,
            format!("is required, at most {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// An optional text field, trimmed: empty is fine, longer than `max` characters is refused.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<String, ServiceError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(ServiceError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Both results, or every field violation of both, so a caller fixes all problems of a request
/// at once instead of one per attempt. Any other error wins as it is.
pub fn both<A, B>(
    first: Result<A, ServiceError>,
    second: Result<B, ServiceError>,
) -> Result<(A, B), ServiceError> {
    match (first, second) {
        (Ok(first), Ok(second)) => Ok((first, second)),
        (
            Err(ServiceError::InvalidArgument(mut first)),
            Err(ServiceError::InvalidArgument(second)),
        ) => {
            first.extend(second);
            Err(ServiceError::InvalidArgument(first))
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_fields_are_trimmed_required_or_bounded() {
        assert_eq!(required_text("f", "  ab ", 2).unwrap(), "ab");
        assert!(required_text("f", "   ", 2).is_err());
        assert!(required_text("f", "abc", 2).is_err());
        assert_eq!(optional_text("f", "  ", 2).unwrap(), "");
        assert!(optional_text("f", "abc", 2).is_err());
    }

    #[test]
    fn both_collects_the_violations_of_both_sides() {
        let merged = both::<(), ()>(
            Err(ServiceError::invalid("request_id", "is required")),
            Err(ServiceError::invalid("model.model_id", "is required")),
        );
        let Err(ServiceError::InvalidArgument(violations)) = merged else {
            panic!("expected INVALID_ARGUMENT");
        };
        assert_eq!(
            violations,
            [
                FieldViolation::new("request_id", "is required"),
                FieldViolation::new("model.model_id", "is required"),
            ]
        );
        let other = both::<(), ()>(
            Err(ServiceError::invalid("request_id", "is required")),
            Err(ServiceError::not_found("model", "x")),
        );
        assert!(matches!(other, Err(ServiceError::InvalidArgument(_))));
    }

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("relation \"customers\" does not exist at character 15")]
    struct FakeSqlError;

    #[test]
    fn bad_input_carries_every_field_violation() {
        let mut violations = Violations::new();
        violations.add("legal_name", "is required");
        violations.add("contacts[0].email", "is not an email address");
        let status = Status::from(violations.finish().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad_request = details.bad_request().unwrap();
        let fields: Vec<_> = bad_request
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["legal_name", "contacts[0].email"]);
        assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");
    }

    #[test]
    fn causes_never_reach_the_client() {
        let internal = Status::from(ServiceError::internal(FakeSqlError));
        assert_eq!(internal.code(), Code::Internal);
        assert!(!internal.message().contains("relation"));
        let unavailable = Status::from(ServiceError::unavailable(
            "the store did not answer",
            FakeSqlError,
        ));
        assert_eq!(unavailable.code(), Code::Unavailable);
        assert!(!unavailable.message().contains("relation"));
    }

    #[test]
    fn stable_reasons_and_metadata_reach_the_client() {
        let status = Status::from(ServiceError::AlreadyExists {
            reason: "CUSTOMER_ALREADY_REGISTERED",
            message: "a customer with this registration number exists".into(),
            metadata: vec![("existing_customer_id", "cus_1".into())],
        });
        assert_eq!(status.code(), Code::AlreadyExists);
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "CUSTOMER_ALREADY_REGISTERED");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(
            info.metadata
                .get("existing_customer_id")
                .map(String::as_str),
            Some("cus_1")
        );
    }
}
