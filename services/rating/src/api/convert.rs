//! Every conversion between the contract's protobuf messages and rating's domain, and the one
//! mapping of domain errors to the gRPC answer.
//!
//! The domain owns its types and errors and knows nothing of the wire; handlers, the rater, the
//! report and the store's stored encoding convert here, at the edge, so a change of the contract
//! touches this module and not the rules. The conversions of models, scales and scorecard tables
//! are in [`model`], those of inputs and scores in [`scoring`], those of recorded ratings,
//! overrides and review runs in [`rating`].

pub mod model;
pub mod rating;
pub mod scoring;

#[cfg(test)]
mod tests;

use credit_core::ServiceError;
use credit_proto::v1 as pb;

use crate::domain::InvalidFields;
use crate::domain::kinds::{CharacteristicSource, CustomerKind, IndicatorFamily, ValueType};
use crate::domain::model::ModelError;
use crate::domain::overrides::DeciderError;
use crate::domain::scoring::ScoreError;
use crate::domain::selection::SelectionError;
use crate::domain::unchecked::SubmittedFamily;

pub use model::ProtoPaths;
pub use scoring::{inputs_from_proto, inputs_to_proto};

// ---------------------------------------------------------------------------------------------
// Domain errors as gRPC answers
// ---------------------------------------------------------------------------------------------

impl From<InvalidFields> for ServiceError {
    fn from(InvalidFields(violations): InvalidFields) -> Self {
        ServiceError::InvalidArgument(violations)
    }
}

impl From<ModelError> for ServiceError {
    fn from(error: ModelError) -> Self {
        match error {
            ModelError::Invalid(invalid) => invalid.into(),
            bug @ ModelError::IncompleteDraft => ServiceError::internal(bug),
        }
    }
}

impl From<ScoreError> for ServiceError {
    /// A checked model always has a grade for every score, so this is a bug.
    fn from(error: ScoreError) -> Self {
        ServiceError::internal(error)
    }
}

impl From<SelectionError> for ServiceError {
    fn from(error: SelectionError) -> Self {
        ServiceError::FailedPrecondition {
            reason: error.reason(),
            message: error.to_string(),
            metadata: error.metadata(),
        }
    }
}

impl From<DeciderError> for ServiceError {
    fn from(error: DeciderError) -> Self {
        ServiceError::PermissionDenied {
            reason: error.reason(),
            message: error.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------------------------

/// `None` for UNSPECIFIED and for values this build does not know.
pub fn customer_kind_from_proto(value: i32) -> Option<CustomerKind> {
    match pb::CustomerKind::try_from(value).ok()? {
        pb::CustomerKind::Enterprise => Some(CustomerKind::Enterprise),
        pb::CustomerKind::Individual => Some(CustomerKind::Individual),
        pb::CustomerKind::Unspecified => None,
    }
}

pub fn customer_kind_to_proto(kind: CustomerKind) -> pb::CustomerKind {
    match kind {
        CustomerKind::Enterprise => pb::CustomerKind::Enterprise,
        CustomerKind::Individual => pb::CustomerKind::Individual,
    }
}

/// `None` for UNSPECIFIED and for values this build does not know.
pub fn source_from_proto(value: i32) -> Option<CharacteristicSource> {
    match pb::CharacteristicSource::try_from(value).ok()? {
        pb::CharacteristicSource::FinancialStatement => {
            Some(CharacteristicSource::FinancialStatement)
        }
        pb::CharacteristicSource::BureauReport => Some(CharacteristicSource::BureauReport),
        pb::CharacteristicSource::TradeReferences => Some(CharacteristicSource::TradeReferences),
        pb::CharacteristicSource::PaymentBehaviour => Some(CharacteristicSource::PaymentBehaviour),
        pb::CharacteristicSource::Qualitative => Some(CharacteristicSource::Qualitative),
        pb::CharacteristicSource::Customer => Some(CharacteristicSource::Customer),
        pb::CharacteristicSource::DataPoint => Some(CharacteristicSource::DataPoint),
        pb::CharacteristicSource::Unspecified => None,
    }
}

pub fn source_to_proto(source: CharacteristicSource) -> pb::CharacteristicSource {
    match source {
        CharacteristicSource::FinancialStatement => pb::CharacteristicSource::FinancialStatement,
        CharacteristicSource::BureauReport => pb::CharacteristicSource::BureauReport,
        CharacteristicSource::TradeReferences => pb::CharacteristicSource::TradeReferences,
        CharacteristicSource::PaymentBehaviour => pb::CharacteristicSource::PaymentBehaviour,
        CharacteristicSource::Qualitative => pb::CharacteristicSource::Qualitative,
        CharacteristicSource::Customer => pb::CharacteristicSource::Customer,
        CharacteristicSource::DataPoint => pb::CharacteristicSource::DataPoint,
    }
}

/// `None` for UNSPECIFIED and for values this build does not know.
pub fn value_type_from_proto(value: i32) -> Option<ValueType> {
    match pb::CharacteristicValueType::try_from(value).ok()? {
        pb::CharacteristicValueType::Numeric => Some(ValueType::Numeric),
        pb::CharacteristicValueType::Categorical => Some(ValueType::Categorical),
        pb::CharacteristicValueType::Unspecified => None,
    }
}

pub fn value_type_to_proto(value_type: ValueType) -> pb::CharacteristicValueType {
    match value_type {
        ValueType::Numeric => pb::CharacteristicValueType::Numeric,
        ValueType::Categorical => pb::CharacteristicValueType::Categorical,
    }
}

/// A family as submitted: a number this build does not know is kept for the check to name.
pub fn family_from_proto(value: i32) -> SubmittedFamily {
    let Ok(family) = pb::IndicatorFamily::try_from(value) else {
        return SubmittedFamily::Unknown(value);
    };
    match family {
        pb::IndicatorFamily::Unspecified => SubmittedFamily::Unspecified,
        pb::IndicatorFamily::FinancialStrength => IndicatorFamily::FinancialStrength.into(),
        pb::IndicatorFamily::Operations => IndicatorFamily::Operations.into(),
        pb::IndicatorFamily::Solvency => IndicatorFamily::Solvency.into(),
        pb::IndicatorFamily::Collateral => IndicatorFamily::Collateral.into(),
        pb::IndicatorFamily::PaymentBehaviour => IndicatorFamily::PaymentBehaviour.into(),
    }
}

/// Takes the `Option` a characteristic holds: `None` is UNSPECIFIED.
pub fn family_to_proto(family: Option<IndicatorFamily>) -> pb::IndicatorFamily {
    match family {
        None => pb::IndicatorFamily::Unspecified,
        Some(IndicatorFamily::FinancialStrength) => pb::IndicatorFamily::FinancialStrength,
        Some(IndicatorFamily::Operations) => pb::IndicatorFamily::Operations,
        Some(IndicatorFamily::Solvency) => pb::IndicatorFamily::Solvency,
        Some(IndicatorFamily::Collateral) => pb::IndicatorFamily::Collateral,
        Some(IndicatorFamily::PaymentBehaviour) => pb::IndicatorFamily::PaymentBehaviour,
    }
}
