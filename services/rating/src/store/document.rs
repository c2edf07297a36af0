//! The stored form of a model version: JSON that mirrors the contract's `ScorecardModel`.
//!
//! The domain model has private fields and can only be built by its checks, so it is stored in
//! the form a publisher sends and read back through the same checks. Enums are written by their
//! contract names ("CHARACTERISTIC_SOURCE_FINANCIAL_STATEMENT"), which stay stable when values
//! are added, and decimals as the strings they were published with, so an operator reading the
//! table sees the figures the model uses. Output-only fields (version, score range, ranks,
//! publication) are not part of the document: the row or the checks supply them.

use credit_proto::v1 as pb;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ModelDocument {
    model_id: String,
    display_name: String,
    description: String,
    customer_kind: String,
    industry_codes: Vec<String>,
    base_points: String,
    characteristics: Vec<CharacteristicDocument>,
    master_scale: ScaleDocument,
    max_reasons: i32,
    change_note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CharacteristicDocument {
    code: String,
    display_name: String,
    source: String,
    input_key: String,
    value_type: String,
    family: String,
    bins: Vec<BinDocument>,
    missing_points: String,
    reason_text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BinDocument {
    label: String,
    condition: ConditionDocument,
    points: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ConditionDocument {
    Range {
        lower_bound: Option<String>,
        upper_bound: Option<String>,
        lower_exclusive: bool,
        upper_inclusive: bool,
    },
    Categories {
        values: Vec<String>,
    },
    /// A bin without a condition never passes the checks; kept so reading never guesses.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScaleDocument {
    scale_id: String,
    display_name: String,
    grades: Vec<GradeDocument>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GradeDocument {
    grade: String,
    display_name: String,
    min_score: Option<String>,
    max_score: Option<String>,
    pd: String,
    pd_lower: String,
    pd_upper: String,
    review_interval_months: i32,
}

/// An enum name in a stored document that this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored {field} '{name}' is not a value of the contract")]
pub(super) struct UnknownName {
    field: &'static str,
    name: String,
}

/// The contract name of an enum value. Stored models passed the checks, so every value is
/// known; an unknown one would be written as "" and refused when read.
fn name_of<E>(value: i32, as_name: impl Fn(&E) -> &'static str) -> String
where
    E: TryFrom<i32>,
{
    E::try_from(value)
        .map(|known| as_name(&known))
        .unwrap_or("")
        .to_owned()
}

fn value_of(
    field: &'static str,
    name: &str,
    from_name: impl Fn(&str) -> Option<i32>,
) -> Result<i32, UnknownName> {
    from_name(name).ok_or_else(|| UnknownName {
        field,
        name: name.to_owned(),
    })
}

impl From<&pb::ScorecardModel> for ModelDocument {
    fn from(model: &pb::ScorecardModel) -> Self {
        Self {
            model_id: model.model_id.clone(),
            display_name: model.display_name.clone(),
            description: model.description.clone(),
            customer_kind: name_of(model.customer_kind, pb::CustomerKind::as_str_name),
            industry_codes: model.industry_codes.clone(),
            base_points: model.base_points.clone(),
            characteristics: model
                .characteristics
                .iter()
                .map(CharacteristicDocument::from)
                .collect(),
            master_scale: model
                .master_scale
                .as_ref()
                .map(ScaleDocument::from)
                .unwrap_or_else(ScaleDocument::empty),
            max_reasons: model.max_reasons,
            change_note: model.change_note.clone(),
        }
    }
}

impl TryFrom<ModelDocument> for pb::ScorecardModel {
    type Error = UnknownName;

    fn try_from(document: ModelDocument) -> Result<Self, Self::Error> {
        Ok(pb::ScorecardModel {
            model_id: document.model_id,
            display_name: document.display_name,
            description: document.description,
            customer_kind: value_of("customer_kind", &document.customer_kind, |name| {
                pb::CustomerKind::from_str_name(name).map(Into::into)
            })?,
            industry_codes: document.industry_codes,
            base_points: document.base_points,
            characteristics: document
                .characteristics
                .into_iter()
                .map(pb::Characteristic::try_from)
                .collect::<Result<_, _>>()?,
            master_scale: Some(document.master_scale.into()),
            max_reasons: document.max_reasons,
            change_note: document.change_note,
            ..Default::default()
        })
    }
}

impl From<&pb::Characteristic> for CharacteristicDocument {
    fn from(characteristic: &pb::Characteristic) -> Self {
        Self {
            code: characteristic.code.clone(),
            display_name: characteristic.display_name.clone(),
            source: name_of(characteristic.source, pb::CharacteristicSource::as_str_name),
            input_key: characteristic.input_key.clone(),
            value_type: name_of(
                characteristic.value_type,
                pb::CharacteristicValueType::as_str_name,
            ),
            family: name_of(characteristic.family, pb::IndicatorFamily::as_str_name),
            bins: characteristic.bins.iter().map(BinDocument::from).collect(),
            missing_points: characteristic.missing_points.clone(),
            reason_text: characteristic.reason_text.clone(),
        }
    }
}

impl TryFrom<CharacteristicDocument> for pb::Characteristic {
    type Error = UnknownName;

    fn try_from(document: CharacteristicDocument) -> Result<Self, Self::Error> {
        Ok(pb::Characteristic {
            code: document.code,
            display_name: document.display_name,
            source: value_of("source", &document.source, |name| {
                pb::CharacteristicSource::from_str_name(name).map(Into::into)
            })?,
            input_key: document.input_key,
            value_type: value_of("value_type", &document.value_type, |name| {
                pb::CharacteristicValueType::from_str_name(name).map(Into::into)
            })?,
            family: value_of("family", &document.family, |name| {
                pb::IndicatorFamily::from_str_name(name).map(Into::into)
            })?,
            bins: document.bins.into_iter().map(Into::into).collect(),
            missing_points: document.missing_points,
            reason_text: document.reason_text,
        })
    }
}

impl From<&pb::ScorecardBin> for BinDocument {
    fn from(bin: &pb::ScorecardBin) -> Self {
        let condition = match &bin.condition {
            Some(pb::scorecard_bin::Condition::Range(range)) => ConditionDocument::Range {
                lower_bound: range.lower_bound.clone(),
                upper_bound: range.upper_bound.clone(),
                lower_exclusive: range.lower_exclusive,
                upper_inclusive: range.upper_inclusive,
            },
            Some(pb::scorecard_bin::Condition::Categories(categories)) => {
                ConditionDocument::Categories {
                    values: categories.values.clone(),
                }
            }
            None => ConditionDocument::None,
        };
        Self {
            label: bin.label.clone(),
            condition,
            points: bin.points.clone(),
        }
    }
}

impl From<BinDocument> for pb::ScorecardBin {
    fn from(document: BinDocument) -> Self {
        let condition = match document.condition {
            ConditionDocument::Range {
                lower_bound,
                upper_bound,
                lower_exclusive,
                upper_inclusive,
            } => Some(pb::scorecard_bin::Condition::Range(pb::NumericRange {
                lower_bound,
                upper_bound,
                lower_exclusive,
                upper_inclusive,
            })),
            ConditionDocument::Categories { values } => {
                Some(pb::scorecard_bin::Condition::Categories(pb::CategorySet {
                    values,
                }))
            }
            ConditionDocument::None => None,
        };
        pb::ScorecardBin {
            label: document.label,
            condition,
            points: document.points,
        }
    }
}

impl ScaleDocument {
    /// A model without a scale never passes the checks; written as an empty scale so that
    /// reading it back fails the checks too instead of inventing one.
    fn empty() -> Self {
        Self {
            scale_id: String::new(),
            display_name: String::new(),
            grades: Vec::new(),
        }
    }
}

impl From<&pb::MasterScale> for ScaleDocument {
    fn from(scale: &pb::MasterScale) -> Self {
        Self {
            scale_id: scale.scale_id.clone(),
            display_name: scale.display_name.clone(),
            grades: scale
                .grades
                .iter()
                .map(|grade| GradeDocument {
                    grade: grade.grade.clone(),
                    display_name: grade.display_name.clone(),
                    min_score: grade.min_score.clone(),
                    max_score: grade.max_score.clone(),
                    pd: grade.pd.clone(),
                    pd_lower: grade.pd_lower.clone(),
                    pd_upper: grade.pd_upper.clone(),
                    review_interval_months: grade.review_interval_months,
                })
                .collect(),
        }
    }
}

impl From<ScaleDocument> for pb::MasterScale {
    fn from(document: ScaleDocument) -> Self {
        pb::MasterScale {
            scale_id: document.scale_id,
            display_name: document.display_name,
            grades: document
                .grades
                .into_iter()
                .map(|grade| pb::MasterScaleGrade {
                    grade: grade.grade,
                    display_name: grade.display_name,
                    min_score: grade.min_score,
                    max_score: grade.max_score,
                    pd: grade.pd,
                    pd_lower: grade.pd_lower,
                    pd_upper: grade.pd_upper,
                    review_interval_months: grade.review_interval_months,
                    // Ranks are output only: the checks number the grades again.
                    rank: 0,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::convert::ProtoPaths;
    use crate::api::convert::model::{unchecked_model, unchecked_model_to_proto};
    use crate::domain::ScorecardModel;
    use crate::domain::defaults::shipped_models;

    #[test]
    fn every_shipped_model_survives_the_trip_through_its_stored_form() {
        for wire in shipped_models() {
            let model = ScorecardModel::try_from(&wire).unwrap();
            let json =
                serde_json::to_string(&ModelDocument::from(&pb::ScorecardModel::from(&model)))
                    .unwrap();
            let document: ModelDocument = serde_json::from_str(&json).unwrap();
            let read = pb::ScorecardModel::try_from(document).unwrap();
            let again =
                ScorecardModel::parse(&unchecked_model(&read), &ProtoPaths::new("")).unwrap();
            assert_eq!(model, again);
        }
    }

    #[test]
    fn an_unknown_enum_name_is_reported_not_guessed() {
        let wire = shipped_models().remove(0);
        let mut document = ModelDocument::from(&unchecked_model_to_proto(&wire));
        document.characteristics[0].source = "CHARACTERISTIC_SOURCE_HOROSCOPE".into();
        let error = pb::ScorecardModel::try_from(document).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the stored source 'CHARACTERISTIC_SOURCE_HOROSCOPE' is not a value of the contract"
        );
    }
}
