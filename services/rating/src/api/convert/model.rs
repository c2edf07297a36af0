//! Scorecard models, master scales and scorecard tables between their proto form and the
//! domain.
//!
//! Incoming messages become the domain's unchecked forms field by field, without judging
//! anything: the domain's checks name every problem, at the same paths the request uses.
//! Outgoing models carry the output-only fields (version, score range, grade ranks) the domain
//! computed.

use credit_core::ServiceError;
use credit_proto::v1 as pb;

use super::{
    customer_kind_from_proto, customer_kind_to_proto, family_from_proto, family_to_proto,
    source_from_proto, source_to_proto, value_type_from_proto, value_type_to_proto,
};
use crate::domain::model::{Bins, Characteristic, ModelPaths, NumericRange, ScorecardModel};
use crate::domain::scale::{Grade, MasterScale};
use crate::domain::unchecked::{
    BinCondition, CharacteristicMapping, TableRow, UncheckedBin, UncheckedCategories,
    UncheckedCharacteristic, UncheckedGrade, UncheckedModel, UncheckedRange, UncheckedScale,
    UncheckedTable,
};

/// Paths inside a proto `ScorecardModel`: the domain names a submitted model's fields exactly as
/// the message does, so its paths serve both.
pub type ProtoPaths = ModelPaths;

// ---------------------------------------------------------------------------------------------
// Incoming
// ---------------------------------------------------------------------------------------------

impl TryFrom<&pb::ScorecardModel> for ScorecardModel {
    type Error = ServiceError;

    /// As sent in PublishModelRequest: violations are named `model.<field>`.
    fn try_from(proto: &pb::ScorecardModel) -> Result<Self, Self::Error> {
        Ok(Self::parse(
            &unchecked_model(proto),
            &ProtoPaths::new("model"),
        )?)
    }
}

impl TryFrom<pb::ScorecardModel> for ScorecardModel {
    type Error = ServiceError;

    fn try_from(proto: pb::ScorecardModel) -> Result<Self, Self::Error> {
        Self::try_from(&proto)
    }
}

/// A proto model as submitted. Output-only fields (version, score range, ranks, publication)
/// are dropped: a submission cannot set them.
pub fn unchecked_model(proto: &pb::ScorecardModel) -> UncheckedModel {
    UncheckedModel {
        model_id: proto.model_id.clone(),
        display_name: proto.display_name.clone(),
        description: proto.description.clone(),
        change_note: proto.change_note.clone(),
        customer_kind: customer_kind_from_proto(proto.customer_kind),
        industry_codes: proto.industry_codes.clone(),
        base_points: proto.base_points.clone(),
        characteristics: proto
            .characteristics
            .iter()
            .map(unchecked_characteristic)
            .collect(),
        master_scale: proto.master_scale.as_ref().map(unchecked_scale),
        max_reasons: proto.max_reasons,
    }
}

fn unchecked_characteristic(proto: &pb::Characteristic) -> UncheckedCharacteristic {
    UncheckedCharacteristic {
        code: proto.code.clone(),
        display_name: proto.display_name.clone(),
        source: source_from_proto(proto.source),
        input_key: proto.input_key.clone(),
        value_type: value_type_from_proto(proto.value_type),
        family: family_from_proto(proto.family),
        bins: proto.bins.iter().map(unchecked_bin).collect(),
        missing_points: proto.missing_points.clone(),
        reason_text: proto.reason_text.clone(),
    }
}

fn unchecked_bin(proto: &pb::ScorecardBin) -> UncheckedBin {
    let condition = proto.condition.as_ref().map(|condition| match condition {
        pb::scorecard_bin::Condition::Range(range) => BinCondition::Range(UncheckedRange {
            lower_bound: range.lower_bound.clone(),
            upper_bound: range.upper_bound.clone(),
            lower_exclusive: range.lower_exclusive,
            upper_inclusive: range.upper_inclusive,
        }),
        pb::scorecard_bin::Condition::Categories(categories) => {
            BinCondition::Categories(UncheckedCategories {
                values: categories.values.clone(),
            })
        }
    });
    UncheckedBin {
        label: proto.label.clone(),
        condition,
        points: proto.points.clone(),
    }
}

/// A proto scale as submitted; grade ranks are output-only and dropped.
pub fn unchecked_scale(proto: &pb::MasterScale) -> UncheckedScale {
    UncheckedScale {
        scale_id: proto.scale_id.clone(),
        display_name: proto.display_name.clone(),
        grades: proto
            .grades
            .iter()
            .map(|grade| UncheckedGrade {
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

/// An ImportScorecardTableRequest as submitted; `request_id` and `validate_only` are the
/// handler's business, not the table's.
pub fn unchecked_table(request: &pb::ImportScorecardTableRequest) -> UncheckedTable {
    UncheckedTable {
        model_id: request.model_id.clone(),
        display_name: request.display_name.clone(),
        description: request.description.clone(),
        customer_kind: customer_kind_from_proto(request.customer_kind),
        industry_codes: request.industry_codes.clone(),
        master_scale: request.master_scale.as_ref().map(unchecked_scale),
        max_reasons: request.max_reasons,
        rows: request
            .rows
            .iter()
            .map(|row| TableRow {
                characteristic: row.characteristic.clone(),
                bin: row.bin.clone(),
                points: row.points.clone(),
            })
            .collect(),
        mappings: request
            .mappings
            .iter()
            .map(|mapping| CharacteristicMapping {
                characteristic: mapping.characteristic.clone(),
                code: mapping.code.clone(),
                display_name: mapping.display_name.clone(),
                source: source_from_proto(mapping.source),
                input_key: mapping.input_key.clone(),
                family: family_from_proto(mapping.family),
                reason_text: mapping.reason_text.clone(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Outgoing
// ---------------------------------------------------------------------------------------------

impl From<&ScorecardModel> for pb::ScorecardModel {
    /// Everything but the publication time and publisher, which the store keeps.
    fn from(model: &ScorecardModel) -> Self {
        pb::ScorecardModel {
            model_id: model.model_id().to_string(),
            version: i32::try_from(model.version()).unwrap_or(i32::MAX),
            display_name: model.display_name().to_owned(),
            description: model.description().to_owned(),
            customer_kind: customer_kind_to_proto(model.customer_kind()).into(),
            industry_codes: model.industry_codes().to_vec(),
            base_points: model.base_points().to_string(),
            characteristics: model
                .characteristics()
                .iter()
                .map(characteristic_to_proto)
                .collect(),
            master_scale: Some(scale_to_proto(model.master_scale())),
            max_reasons: i32::try_from(model.max_reasons()).unwrap_or(i32::MAX),
            min_score: model.min_score().normalize().to_string(),
            max_score: model.max_score().normalize().to_string(),
            change_note: model.change_note().to_owned(),
            published_at: None,
            published_by: None,
        }
    }
}

fn characteristic_to_proto(characteristic: &Characteristic) -> pb::Characteristic {
    let bins = match &characteristic.bins {
        Bins::Numeric(bins) => bins
            .iter()
            .map(|bin| pb::ScorecardBin {
                label: bin.label.clone(),
                condition: Some(pb::scorecard_bin::Condition::Range(range_to_proto(
                    &bin.range,
                ))),
                points: bin.points.to_string(),
            })
            .collect(),
        Bins::Categorical(bins) => bins
            .iter()
            .map(|bin| pb::ScorecardBin {
                label: bin.label.clone(),
                condition: Some(pb::scorecard_bin::Condition::Categories(pb::CategorySet {
                    values: bin.values.clone(),
                })),
                points: bin.points.to_string(),
            })
            .collect(),
    };
    pb::Characteristic {
        code: characteristic.code.clone(),
        display_name: characteristic.display_name.clone(),
        source: source_to_proto(characteristic.source).into(),
        input_key: characteristic.input_key.clone(),
        value_type: value_type_to_proto(characteristic.value_type()).into(),
        family: family_to_proto(characteristic.family).into(),
        bins,
        missing_points: characteristic.missing_points.to_string(),
        reason_text: characteristic.reason_text.clone(),
    }
}

fn range_to_proto(range: &NumericRange) -> pb::NumericRange {
    pb::NumericRange {
        lower_bound: range.lower.map(|lower| lower.to_string()),
        upper_bound: range.upper.map(|upper| upper.to_string()),
        lower_exclusive: range.lower_exclusive,
        upper_inclusive: range.upper_inclusive,
    }
}

pub fn scale_to_proto(scale: &MasterScale) -> pb::MasterScale {
    pb::MasterScale {
        scale_id: scale.scale_id().to_owned(),
        display_name: scale.display_name().to_owned(),
        grades: scale.grades().iter().map(grade_to_proto).collect(),
    }
}

fn grade_to_proto(grade: &Grade) -> pb::MasterScaleGrade {
    pb::MasterScaleGrade {
        grade: grade.code.clone(),
        display_name: grade.display_name.clone(),
        min_score: grade.min_score.map(|score| score.to_string()),
        max_score: grade.max_score.map(|score| score.to_string()),
        pd: grade.pd.to_string(),
        pd_lower: grade.pd_lower.to_string(),
        pd_upper: grade.pd_upper.to_string(),
        review_interval_months: i32::try_from(grade.review_interval_months).unwrap_or(i32::MAX),
        rank: i32::try_from(grade.rank).unwrap_or(i32::MAX),
    }
}

/// A submitted model in its proto form, as PublishModel would receive it: how the shipped
/// models reach tools that speak the contract.
pub fn unchecked_model_to_proto(model: &UncheckedModel) -> pb::ScorecardModel {
    pb::ScorecardModel {
        model_id: model.model_id.clone(),
        display_name: model.display_name.clone(),
        description: model.description.clone(),
        change_note: model.change_note.clone(),
        customer_kind: model
            .customer_kind
            .map_or(pb::CustomerKind::Unspecified, customer_kind_to_proto)
            .into(),
        industry_codes: model.industry_codes.clone(),
        base_points: model.base_points.clone(),
        characteristics: model
            .characteristics
            .iter()
            .map(unchecked_characteristic_to_proto)
            .collect(),
        master_scale: model.master_scale.as_ref().map(unchecked_scale_to_proto),
        max_reasons: model.max_reasons,
        ..Default::default()
    }
}

fn unchecked_characteristic_to_proto(
    characteristic: &UncheckedCharacteristic,
) -> pb::Characteristic {
    use crate::domain::unchecked::SubmittedFamily;
    let family = match characteristic.family {
        SubmittedFamily::Unspecified => pb::IndicatorFamily::Unspecified.into(),
        SubmittedFamily::Known(family) => family_to_proto(Some(family)).into(),
        SubmittedFamily::Unknown(value) => value,
    };
    pb::Characteristic {
        code: characteristic.code.clone(),
        display_name: characteristic.display_name.clone(),
        source: characteristic
            .source
            .map_or(pb::CharacteristicSource::Unspecified, source_to_proto)
            .into(),
        input_key: characteristic.input_key.clone(),
        value_type: characteristic
            .value_type
            .map_or(
                pb::CharacteristicValueType::Unspecified,
                value_type_to_proto,
            )
            .into(),
        family,
        bins: characteristic
            .bins
            .iter()
            .map(|bin| pb::ScorecardBin {
                label: bin.label.clone(),
                condition: bin.condition.as_ref().map(|condition| match condition {
                    BinCondition::Range(range) => {
                        pb::scorecard_bin::Condition::Range(pb::NumericRange {
                            lower_bound: range.lower_bound.clone(),
                            upper_bound: range.upper_bound.clone(),
                            lower_exclusive: range.lower_exclusive,
                            upper_inclusive: range.upper_inclusive,
                        })
                    }
                    BinCondition::Categories(categories) => {
                        pb::scorecard_bin::Condition::Categories(pb::CategorySet {
                            values: categories.values.clone(),
                        })
                    }
                }),
                points: bin.points.clone(),
            })
            .collect(),
        missing_points: characteristic.missing_points.clone(),
        reason_text: characteristic.reason_text.clone(),
    }
}

/// A submitted scale in its proto form; ranks are output-only and left 0.
pub fn unchecked_scale_to_proto(scale: &UncheckedScale) -> pb::MasterScale {
    pb::MasterScale {
        scale_id: scale.scale_id.clone(),
        display_name: scale.display_name.clone(),
        grades: scale
            .grades
            .iter()
            .map(|grade| pb::MasterScaleGrade {
                grade: grade.grade.clone(),
                display_name: grade.display_name.clone(),
                min_score: grade.min_score.clone(),
                max_score: grade.max_score.clone(),
                pd: grade.pd.clone(),
                pd_lower: grade.pd_lower.clone(),
                pd_upper: grade.pd_upper.clone(),
                review_interval_months: grade.review_interval_months,
                rank: 0,
            })
            .collect(),
    }
}
