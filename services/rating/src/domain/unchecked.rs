//! Models, master scales and scorecard tables as someone submitted them, before any check.
//!
//! Every field is kept as sent (texts untrimmed, decimals as text, enums possibly absent), so the
//! checks in [`super::model`], [`super::scale`] and [`super::table`] can name each problem at its
//! place and report all of them at once. The api fills these from the request; the shipped models
//! in [`super::defaults`] are written in this form so they pass through the very same checks.

use super::kinds::{
    CharacteristicSource, CustomerKind, IndicatorFamily, UnknownEnumValue, ValueType,
};

/// A scorecard model as submitted for publication. Output-only parts of a published model
/// (version, score range, ranks, publication) are not part of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UncheckedModel {
    pub model_id: String,
    pub display_name: String,
    pub description: String,
    pub change_note: String,
    /// `None` when the submitter named no kind, or one this build does not know.
    pub customer_kind: Option<CustomerKind>,
    pub industry_codes: Vec<String>,
    /// Empty means zero.
    pub base_points: String,
    pub characteristics: Vec<UncheckedCharacteristic>,
    pub master_scale: Option<UncheckedScale>,
    /// 0 means the default; negative values are refused by the check.
    pub max_reasons: i32,
}

/// One characteristic as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UncheckedCharacteristic {
    pub code: String,
    pub display_name: String,
    /// `None` when absent or unknown to this build.
    pub source: Option<CharacteristicSource>,
    pub input_key: String,
    /// `None` when absent or unknown to this build.
    pub value_type: Option<ValueType>,
    pub family: SubmittedFamily,
    pub bins: Vec<UncheckedBin>,
    pub missing_points: String,
    pub reason_text: String,
}

/// An indicator family as submitted. A family is optional, but a value this build does not know
/// is refused, so it is kept apart from an absent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubmittedFamily {
    #[default]
    Unspecified,
    Known(IndicatorFamily),
    /// The number the submitter sent.
    Unknown(i32),
}

impl SubmittedFamily {
    /// `Ok(None)` when no family was given, `Err` for a value this build does not know.
    pub fn check(self) -> Result<Option<IndicatorFamily>, UnknownEnumValue> {
        match self {
            Self::Unspecified => Ok(None),
            Self::Known(family) => Ok(Some(family)),
            Self::Unknown(value) => Err(UnknownEnumValue(value)),
        }
    }
}

impl From<IndicatorFamily> for SubmittedFamily {
    fn from(family: IndicatorFamily) -> Self {
        Self::Known(family)
    }
}

/// One bin as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UncheckedBin {
    pub label: String,
    pub condition: Option<BinCondition>,
    pub points: String,
}

/// What a submitted bin matches: a numeric range or a set of categories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinCondition {
    Range(UncheckedRange),
    Categories(UncheckedCategories),
}

/// A numeric range as submitted; `None` bounds are infinite.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UncheckedRange {
    pub lower_bound: Option<String>,
    pub upper_bound: Option<String>,
    pub lower_exclusive: bool,
    pub upper_inclusive: bool,
}

/// The category values of a submitted bin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UncheckedCategories {
    pub values: Vec<String>,
}

/// A master scale as submitted, grades best first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UncheckedScale {
    pub scale_id: String,
    pub display_name: String,
    pub grades: Vec<UncheckedGrade>,
}

/// One grade as submitted. Its rank is not submitted: it follows from the grade's position.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UncheckedGrade {
    pub grade: String,
    pub display_name: String,
    pub min_score: Option<String>,
    pub max_score: Option<String>,
    pub pd: String,
    pub pd_lower: String,
    pub pd_upper: String,
    pub review_interval_months: i32,
}

/// A scorecard table to import, with the mappings that say where each characteristic's values
/// come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UncheckedTable {
    pub model_id: String,
    pub display_name: String,
    pub description: String,
    pub customer_kind: Option<CustomerKind>,
    pub industry_codes: Vec<String>,
    pub master_scale: Option<UncheckedScale>,
    pub max_reasons: i32,
    pub rows: Vec<TableRow>,
    pub mappings: Vec<CharacteristicMapping>,
}

/// One row of a scorecard table: a bin of a characteristic (or the base points) and its points.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableRow {
    pub characteristic: String,
    pub bin: String,
    pub points: String,
}

/// Where the values of one table characteristic come from, and how it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharacteristicMapping {
    pub characteristic: String,
    pub code: String,
    pub display_name: String,
    pub source: Option<CharacteristicSource>,
    pub input_key: String,
    pub family: SubmittedFamily,
    pub reason_text: String,
}
