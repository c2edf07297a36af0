//! Rating inputs and score results between their proto form and the domain.

use credit_proto::v1 as pb;

use super::rating::input_from_proto;
use super::source_to_proto;
use crate::domain::InvalidFields;
use crate::domain::rating::{RatedCharacteristic, RatingReason};
use crate::domain::scoring::{
    CharacteristicScore, InputValue, RatingInput, RatingInputs, ScoreReason, ScoreResult,
    UncheckedInput, figure,
};

/// Parses the inputs of a snapshot; `field` is where they sit in the request, for example
/// "inputs.inputs" in ScoreSnapshotRequest. Every problem is reported at once.
pub fn inputs_from_proto(
    wire: &[pb::RatingInput],
    field: &str,
) -> Result<RatingInputs, InvalidFields> {
    let unchecked: Vec<UncheckedInput> = wire.iter().map(input_from_proto).collect();
    RatingInputs::parse(&unchecked, field)
}

/// For `RatingInputSnapshot.inputs`, by source then key.
pub fn inputs_to_proto(inputs: &RatingInputs) -> Vec<pb::RatingInput> {
    inputs.iter().map(pb::RatingInput::from).collect()
}

impl From<&RatingInput> for pb::RatingInput {
    fn from(input: &RatingInput) -> Self {
        let value = match &input.value {
            InputValue::Number(number) => Some(pb::rating_input::Value::Number(number.to_string())),
            InputValue::Category(category) => {
                Some(pb::rating_input::Value::Category(category.clone()))
            }
            InputValue::Missing => None,
        };
        pb::RatingInput {
            source: source_to_proto(input.source).into(),
            key: input.key.clone(),
            value,
            origin: input.origin.clone(),
        }
    }
}

impl From<&CharacteristicScore> for pb::CharacteristicScore {
    /// As a rating records it.
    fn from(line: &CharacteristicScore) -> Self {
        pb::CharacteristicScore::from(&RatedCharacteristic::from(line))
    }
}

impl From<&ScoreReason> for pb::Reason {
    /// As a rating records it.
    fn from(reason: &ScoreReason) -> Self {
        pb::Reason::from(&RatingReason::from(reason))
    }
}

impl From<&ScoreResult> for pb::ScoreResult {
    fn from(result: &ScoreResult) -> Self {
        pb::ScoreResult {
            model_id: result.model_id.clone(),
            model_version: i32::try_from(result.model_version).unwrap_or(i32::MAX),
            score: figure(result.score),
            grade: result.grade.clone(),
            grade_rank: i32::try_from(result.grade_rank).unwrap_or(i32::MAX),
            pd: result.pd.to_string(),
            breakdown: result.breakdown.iter().map(Into::into).collect(),
            reasons: result.reasons.iter().map(Into::into).collect(),
        }
    }
}
