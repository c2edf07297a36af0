//! Scorecard models as the rating service understands them, and the one gate every model passes
//! before it may score anyone.
//!
//! A model is data that a credit department publishes and revises, so nothing in it is trusted
//! until it is checked. A [`ScorecardModel`] can only be built by that check (from an
//! [`UncheckedModel`] with `TryFrom`, or from a scorecard table in [`super::table`]), which reports every problem at
//! once, each at its exact place in the request. Scoring code can then rely on what the check
//! guarantees: every number falls in exactly one bin of a numeric characteristic, no category
//! sits in two bins, and every score the model can produce maps to exactly one grade.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use rust_decimal::Decimal;

use super::data_points::is_data_point_code;
pub use super::fields::{DecimalError, ModelPaths, SlugError};
use super::fields::{
    FieldPaths, InvalidFields, Violations, check_slug, check_text, is_upper_snake_case,
    parse_decimal,
};
pub use super::kinds::{
    CharacteristicSource, CustomerKind, IndicatorFamily, UnknownEnumValue, ValueType,
};
use super::scale::MasterScale;
use super::unchecked::UncheckedModel;
use ValueType::{Categorical, Numeric};

use draft::parse_characteristic;
pub(crate) use draft::{ModelDraft, ModelHeader, ParsedCharacteristic, label_or};

/// Reasons a rating returns when the model does not say (`max_reasons` = 0).
pub const DEFAULT_MAX_REASONS: u32 = 4;

const MAX_CODE_LEN: usize = 64;
const MAX_NAME_LEN: usize = 200;
const MAX_LABEL_LEN: usize = 200;
const MAX_REASON_TEXT_LEN: usize = 500;
const MAX_DESCRIPTION_LEN: usize = 20_000;
const MAX_INDUSTRY_CODE_LEN: usize = 20;
/// Limits that keep one request's validation and every later scoring cheap.
const MAX_CHARACTERISTICS: usize = 200;
const MAX_BINS: usize = 200;
const MAX_CATEGORIES_PER_BIN: usize = 1_000;
const MAX_REASONS_LIMIT: u32 = 50;

// ---------------------------------------------------------------------------------------------
// Identifiers and enums
// ---------------------------------------------------------------------------------------------

/// Id of a model, chosen by its publisher: 1..63 lower-case letters, digits and "-".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(String);

impl ModelId {
    pub fn parse(text: &str) -> Result<Self, SlugError> {
        check_slug(text)?;
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Decimals and text
// ---------------------------------------------------------------------------------------------

/// What is wrong with points a caller sent; the text is safe to show callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointsError {
    #[error(transparent)]
    Decimal(#[from] DecimalError),
    #[error("must be between -{MAX_ABS_POINTS} and {MAX_ABS_POINTS}")]
    OutOfRange,
}

/// Points beyond a billion have no meaning on a scorecard; the bound also guarantees that adding
/// up the points of every characteristic can never overflow a decimal.
pub const MAX_ABS_POINTS: u32 = 1_000_000_000;

/// Parses points (of a bin, for a missing value, or base points).
pub fn parse_points(text: &str) -> Result<Decimal, PointsError> {
    check_points(parse_decimal(text)?)
}

pub(crate) fn check_points(points: Decimal) -> Result<Decimal, PointsError> {
    if points.abs() > Decimal::from(MAX_ABS_POINTS) {
        return Err(PointsError::OutOfRange);
    }
    Ok(points)
}

/// Parses points that may be absent: an empty string means zero.
fn parse_points_or_zero(text: &str) -> Result<Decimal, PointsError> {
    if text.trim().is_empty() {
        return Ok(Decimal::ZERO);
    }
    parse_points(text)
}

// ---------------------------------------------------------------------------------------------
// Bins and characteristics
// ---------------------------------------------------------------------------------------------

/// A numeric interval; `None` bounds are infinite. By default `[lower, upper)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumericRange {
    pub lower: Option<Decimal>,
    pub upper: Option<Decimal>,
    /// `(lower, ...` instead of `[lower, ...`.
    pub lower_exclusive: bool,
    /// `..., upper]` instead of `..., upper)`.
    pub upper_inclusive: bool,
}

impl NumericRange {
    /// The usual scorecard interval `[lower, upper)`.
    pub fn half_open(lower: Option<Decimal>, upper: Option<Decimal>) -> Self {
        Self {
            lower,
            upper,
            lower_exclusive: false,
            upper_inclusive: false,
        }
    }

    pub fn contains(&self, value: Decimal) -> bool {
        let above_lower = match self.lower {
            None => true,
            Some(lower) if self.lower_exclusive => value > lower,
            Some(lower) => value >= lower,
        };
        let below_upper = match self.upper {
            None => true,
            Some(upper) if self.upper_inclusive => value <= upper,
            Some(upper) => value < upper,
        };
        above_lower && below_upper
    }

    /// Where the range starts on the number line.
    fn start(&self) -> Cut {
        match self.lower {
            None => Cut::MinusInfinity,
            Some(lower) if self.lower_exclusive => Cut::JustAbove(lower),
            Some(lower) => Cut::JustBelow(lower),
        }
    }

    /// Where the range ends on the number line.
    fn end(&self) -> Cut {
        match self.upper {
            None => Cut::PlusInfinity,
            Some(upper) if self.upper_inclusive => Cut::JustAbove(upper),
            Some(upper) => Cut::JustBelow(upper),
        }
    }
}

impl fmt::Display for NumericRange {
    /// Interval notation, for example `[1.0, 1.5)` or `(-inf, 0)`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = if self.lower.is_some() && !self.lower_exclusive {
            '['
        } else {
            '('
        };
        let close = if self.upper.is_some() && self.upper_inclusive {
            ']'
        } else {
            ')'
        };
        let lower = self
            .lower
            .map_or("-inf".to_owned(), |lower| lower.to_string());
        let upper = self
            .upper
            .map_or("+inf".to_owned(), |upper| upper.to_string());
        write!(formatter, "{open}{lower}, {upper}{close}")
    }
}

/// A point between real numbers where a range starts or ends. Comparing cuts instead of bounds
/// and flags makes "gap" and "overlap" plain comparisons: `[a, b)` followed by `[b, c)` meet
/// exactly because both sides are the cut just below `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    MinusInfinity,
    JustBelow(Decimal),
    JustAbove(Decimal),
    PlusInfinity,
}

impl Cut {
    fn order_key(&self) -> (u8, Decimal, u8) {
        match *self {
            Cut::MinusInfinity => (0, Decimal::ZERO, 0),
            Cut::JustBelow(value) => (1, value, 0),
            Cut::JustAbove(value) => (1, value, 1),
            Cut::PlusInfinity => (2, Decimal::ZERO, 0),
        }
    }

    fn value(&self) -> Option<Decimal> {
        match *self {
            Cut::JustBelow(value) | Cut::JustAbove(value) => Some(value),
            Cut::MinusInfinity | Cut::PlusInfinity => None,
        }
    }

    fn describe(&self) -> String {
        match *self {
            Cut::MinusInfinity => "-inf".to_owned(),
            Cut::PlusInfinity => "+inf".to_owned(),
            Cut::JustBelow(value) | Cut::JustAbove(value) => value.to_string(),
        }
    }
}

impl Ord for Cut {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for Cut {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// "gap between 1.5 and 1.6", or "gap at 2" when only the single number 2 is uncovered.
fn describe_span(what: &str, from: Cut, to: Cut) -> String {
    match (from.value(), to.value()) {
        (Some(start), Some(end)) if start == end => format!("{what} at {start}"),
        _ => format!("{what} between {} and {}", from.describe(), to.describe()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumericBin {
    /// Shown in the breakdown, for example "[1.0, 1.5)".
    pub label: String,
    pub range: NumericRange,
    pub points: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryBin {
    /// Shown in the breakdown, for example "SLOW".
    pub label: String,
    pub values: Vec<String>,
    pub points: Decimal,
}

/// The bins of a characteristic; one enum so numeric and categorical bins cannot be mixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bins {
    Numeric(Vec<NumericBin>),
    Categorical(Vec<CategoryBin>),
}

impl Bins {
    pub fn value_type(&self) -> ValueType {
        match self {
            Bins::Numeric(_) => Numeric,
            Bins::Categorical(_) => Categorical,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Bins::Numeric(bins) => bins.len(),
            Bins::Categorical(bins) => bins.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The points of every bin, in bin order.
    pub(crate) fn points(&self) -> Vec<Decimal> {
        match self {
            Bins::Numeric(bins) => bins.iter().map(|bin| bin.points).collect(),
            Bins::Categorical(bins) => bins.iter().map(|bin| bin.points).collect(),
        }
    }

    fn labels(&self) -> Vec<&str> {
        match self {
            Bins::Numeric(bins) => bins.iter().map(|bin| bin.label.as_str()).collect(),
            Bins::Categorical(bins) => bins.iter().map(|bin| bin.label.as_str()).collect(),
        }
    }
}

/// One characteristic (variable) of a scorecard. Plain data: it is checked when it becomes part
/// of a [`ScorecardModel`], and a model only ever lends it out by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Characteristic {
    /// UPPER_SNAKE_CASE, unique in the model; also the reason code.
    pub code: String,
    pub display_name: String,
    pub source: CharacteristicSource,
    pub input_key: String,
    pub family: Option<IndicatorFamily>,
    pub bins: Bins,
    /// Points when the value is missing, or a category is in no bin.
    pub missing_points: Decimal,
    /// Shown when the characteristic is among a rating's reasons.
    pub reason_text: String,
}

impl Characteristic {
    pub fn value_type(&self) -> ValueType {
        self.bins.value_type()
    }

    /// Industry codes are hierarchical ("C35" contains "C3511"), so the contract matches a
    /// customer's industry code against category values as prefixes, longest first.
    pub fn categories_are_prefixes(&self) -> bool {
        self.source == CharacteristicSource::Customer && self.input_key == "industry_code"
    }

    /// The fewest points the characteristic can award, missing points included.
    pub fn min_points(&self) -> Decimal {
        self.bins
            .points()
            .into_iter()
            .fold(self.missing_points, Decimal::min)
    }

    /// The most points the characteristic can award, missing points included.
    pub fn max_points(&self) -> Decimal {
        self.bins
            .points()
            .into_iter()
            .fold(self.missing_points, Decimal::max)
    }
}

/// Checks of one characteristic that hold wherever it came from (proto or scorecard table).
fn check_characteristic(
    parsed: &ParsedCharacteristic,
    index: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) {
    let characteristic = &parsed.characteristic;
    let field = |name: &str| paths.characteristic_field(index, name);
    if !is_upper_snake_case(&characteristic.code) || characteristic.code.len() > MAX_CODE_LEN {
        violations.add(
            field("code"),
            format!(
                "'{}' is not an UPPER_SNAKE_CASE code of at most {MAX_CODE_LEN} characters",
                characteristic.code
            ),
        );
    }
    check_text(
        &characteristic.display_name,
        MAX_NAME_LEN,
        false,
        &field("display_name"),
        violations,
    );
    check_text(
        &characteristic.reason_text,
        MAX_REASON_TEXT_LEN,
        false,
        &field("reason_text"),
        violations,
    );
    check_input_key(characteristic, index, paths, violations);
    if !parsed.bins_parsed {
        // Bins that failed to parse are absent, so coverage would report false gaps.
        return;
    }
    if characteristic.bins.is_empty() {
        violations.add(field("bins"), "a characteristic needs at least one bin");
        return;
    }
    if characteristic.bins.len() > MAX_BINS {
        violations.add(
            field("bins"),
            format!("at most {MAX_BINS} bins are allowed"),
        );
        return;
    }
    for (bin, label) in characteristic.bins.labels().into_iter().enumerate() {
        let field = paths.bin_field(index, bin, "label");
        check_text(label, MAX_LABEL_LEN, false, &field, violations);
    }
    match &characteristic.bins {
        Bins::Numeric(bins) => check_numeric_coverage(bins, index, paths, violations),
        Bins::Categorical(bins) => check_categories(bins, index, paths, violations),
    }
}

/// The key must be one the source provides, and its values of the characteristic's type.
fn check_input_key(
    characteristic: &Characteristic,
    index: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) {
    let source = characteristic.source;
    let key = &characteristic.input_key;
    if source == CharacteristicSource::DataPoint {
        // The definitions live in intake: the use case checks the code and its type against
        // them ([`super::data_points::check_model_data_points`]).
        if !is_data_point_code(key) {
            violations.add(
                paths.characteristic_field(index, "input_key"),
                format!("'{key}' is not a data point code: lower_snake_case, such as housing"),
            );
        }
        return;
    }
    let Some(key_type) = source.value_type_of(key) else {
        let known: Vec<&str> = source.known_keys().iter().map(|(name, _)| *name).collect();
        violations.add(
            paths.characteristic_field(index, "input_key"),
            format!(
                "'{key}' is not a key of source {}; known keys: {}",
                source.contract_name(),
                known.join(", ")
            ),
        );
        return;
    };
    if key_type != characteristic.value_type() {
        violations.add(
            paths.characteristic_field(index, "value_type"),
            format!(
                "must be {}: the values of '{key}' are {}",
                key_type.name(),
                key_type.name().to_lowercase()
            ),
        );
    }
}

/// Numeric bins must cover the whole number line exactly once. Sorted by where they start, each
/// bin must start exactly where the bins before it stopped covering: later is a gap, earlier an
/// overlap. Every problem names the bin where it shows.
fn check_numeric_coverage(
    bins: &[NumericBin],
    characteristic: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) {
    let mut ordered = Vec::with_capacity(bins.len());
    for (index, bin) in bins.iter().enumerate() {
        let (start, end) = (bin.range.start(), bin.range.end());
        if start >= end {
            violations.add(
                paths.bin_field(characteristic, index, "range"),
                format!("range {} contains no number", bin.range),
            );
            continue;
        }
        ordered.push((start, index, end));
    }
    ordered.sort();

    let mut covered_until = Cut::MinusInfinity;
    let mut furthest_bin = None;
    for (start, index, end) in ordered {
        let field = paths.bin_field(characteristic, index, "range");
        if start > covered_until {
            violations.add(field, describe_span("gap", covered_until, start));
        } else if start < covered_until {
            let other = furthest_bin.map_or_else(String::new, |other| {
                format!(" {}", paths.bin_name(characteristic, other))
            });
            let overlap_end = end.min(covered_until);
            violations.add(
                field,
                describe_span(&format!("overlaps{other}"), start, overlap_end),
            );
        }
        if end > covered_until {
            covered_until = end;
            furthest_bin = Some(index);
        }
    }
    if covered_until < Cut::PlusInfinity {
        let field = match furthest_bin {
            Some(index) => paths.bin_field(characteristic, index, "range"),
            None => paths.characteristic_field(characteristic, "bins"),
        };
        violations.add(
            field,
            describe_span("gap", covered_until, Cut::PlusInfinity),
        );
    }
}

/// Each category value may sit in one bin only, and a bin must match something.
fn check_categories(
    bins: &[CategoryBin],
    characteristic: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) {
    let mut first_bin_of: HashMap<&str, usize> = HashMap::new();
    for (index, bin) in bins.iter().enumerate() {
        let field = paths.bin_field(characteristic, index, "categories");
        if bin.values.is_empty() {
            violations.add(&field, "a category bin needs at least one value");
        }
        if bin.values.len() > MAX_CATEGORIES_PER_BIN {
            violations.add(
                &field,
                format!("at most {MAX_CATEGORIES_PER_BIN} values are allowed"),
            );
        }
        for value in &bin.values {
            if value.is_empty() {
                violations.add(&field, "category values must not be empty");
                continue;
            }
            match first_bin_of.get(value.as_str()) {
                Some(&first) if first == index => {
                    violations.add(&field, format!("repeats the value '{value}'"));
                }
                Some(&first) => violations.add(
                    &field,
                    format!(
                        "the value '{value}' is also in {}",
                        paths.bin_name(characteristic, first)
                    ),
                ),
                None => {
                    first_bin_of.insert(value, index);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// A validated, possibly published scorecard model. Only [`TryFrom`] and the scorecard-table
/// import build one, both through the same checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScorecardModel {
    model_id: ModelId,
    version: u32,
    display_name: String,
    description: String,
    customer_kind: CustomerKind,
    industry_codes: Vec<String>,
    base_points: Decimal,
    characteristics: Vec<Characteristic>,
    master_scale: MasterScale,
    max_reasons: u32,
    change_note: String,
    min_score: Decimal,
    max_score: Decimal,
}

impl ScorecardModel {
    /// Parses and checks a submitted model found at `paths` (see [`ModelPaths`]). The version
    /// starts at 0.
    pub fn parse(proto: &UncheckedModel, paths: &dyn FieldPaths) -> Result<Self, ModelError> {
        if proto.characteristics.len() > MAX_CHARACTERISTICS {
            // Absurd input is refused before any work is spent on it.
            return Err(ModelError::Invalid(InvalidFields::one(
                paths.model_field("characteristics"),
                format!("at most {MAX_CHARACTERISTICS} characteristics are allowed"),
            )));
        }
        let mut violations = Violations::new();
        let mut draft = ModelDraft::from_header(
            &ModelHeader {
                model_id: &proto.model_id,
                display_name: &proto.display_name,
                description: &proto.description,
                change_note: &proto.change_note,
                customer_kind: proto.customer_kind,
                industry_codes: &proto.industry_codes,
                master_scale: proto.master_scale.as_ref(),
                max_reasons: proto.max_reasons,
            },
            paths,
            &mut violations,
        );
        draft.base_points = violations.check(
            &paths.model_field("base_points"),
            parse_points_or_zero(&proto.base_points),
        );
        draft.characteristics = proto
            .characteristics
            .iter()
            .enumerate()
            .map(|(index, wire)| parse_characteristic(wire, index, paths, &mut violations))
            .collect();
        draft.finish(paths, violations)
    }

    /// The same model as a later version (versions are assigned by the store on publish).
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    pub fn model_id(&self) -> &ModelId {
        &self.model_id
    }

    /// 0 until published.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn change_note(&self) -> &str {
        &self.change_note
    }

    pub fn customer_kind(&self) -> CustomerKind {
        self.customer_kind
    }

    /// Industry code prefixes (upper case); empty for the default model of its kind.
    pub fn industry_codes(&self) -> &[String] {
        &self.industry_codes
    }

    /// True for the model a customer of this kind gets when no industry-specific model fits.
    pub fn is_default_for_kind(&self) -> bool {
        self.industry_codes.is_empty()
    }

    pub fn base_points(&self) -> Decimal {
        self.base_points
    }

    pub fn characteristics(&self) -> &[Characteristic] {
        &self.characteristics
    }

    pub fn master_scale(&self) -> &MasterScale {
        &self.master_scale
    }

    pub fn max_reasons(&self) -> u32 {
        self.max_reasons
    }

    /// Lowest possible score: base points plus every characteristic's fewest points.
    pub fn min_score(&self) -> Decimal {
        self.min_score
    }

    /// Highest possible score: base points plus every characteristic's most points.
    pub fn max_score(&self) -> Decimal {
        self.max_score
    }
}

impl TryFrom<&UncheckedModel> for ScorecardModel {
    type Error = ModelError;

    /// As sent in PublishModelRequest: violations are named `model.<field>`.
    fn try_from(unchecked: &UncheckedModel) -> Result<Self, Self::Error> {
        Self::parse(unchecked, &ModelPaths::new("model"))
    }
}

impl TryFrom<UncheckedModel> for ScorecardModel {
    type Error = ModelError;

    fn try_from(unchecked: UncheckedModel) -> Result<Self, Self::Error> {
        Self::try_from(&unchecked)
    }
}

/// Why a submitted model was refused.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Something the submitter can fix; every problem is named.
    #[error(transparent)]
    Invalid(#[from] InvalidFields),
    /// Every part that failed to parse records a violation, so this is a bug.
    #[error("a model draft without violations lacks a part")]
    IncompleteDraft,
}

mod draft;

#[cfg(test)]
mod tests;
