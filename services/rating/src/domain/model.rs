//! Scorecard models as the rating service understands them, and the one gate every model passes
//! before it may score anyone.
//!
//! A model is data that a credit department publishes and revises, so nothing in it is trusted
//! until it is checked. A [`ScorecardModel`] can only be built by that check (from the proto with
//! `TryFrom`, or from a scorecard table in [`super::table`]), which reports every problem at
//! once, each at its exact place in the request. Scoring code can then rely on what the check
//! guarantees: every number falls in exactly one bin of a numeric characteristic, no category
//! sits in two bins, and every score the model can produce maps to exactly one grade.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use credit_core::{ServiceError, Violations};
use credit_proto::v1 as pb;
use rust_decimal::Decimal;

use super::scale::MasterScale;

/// Reasons a rating returns when the model does not say (`max_reasons` = 0).
pub const DEFAULT_MAX_REASONS: u32 = 4;

const MAX_ID_LEN: usize = 63;
const MAX_CODE_LEN: usize = 64;
const MAX_NAME_LEN: usize = 200;
const MAX_LABEL_LEN: usize = 200;
const MAX_REASON_TEXT_LEN: usize = 500;
const MAX_DESCRIPTION_LEN: usize = 20_000;
const MAX_INDUSTRY_CODE_LEN: usize = 20;
/// Longest decimal accepted; far beyond any real bound or points, short enough to parse cheaply.
const MAX_DECIMAL_LEN: usize = 40;
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

/// What is wrong with a model or scale id; the text is safe to show callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("is required")]
    Missing,
    #[error("must be at most {MAX_ID_LEN} characters")]
    TooLong,
    #[error("must contain only lower-case letters, digits and \"-\"")]
    NotASlug,
}

/// Model ids and scale ids share one format, so both read well in URLs and logs.
pub(crate) fn check_slug(text: &str) -> Result<(), SlugError> {
    if text.is_empty() {
        return Err(SlugError::Missing);
    }
    if text.chars().count() > MAX_ID_LEN {
        return Err(SlugError::TooLong);
    }
    let allowed = |character: char| {
        character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-'
    };
    if !text.chars().all(allowed) {
        return Err(SlugError::NotASlug);
    }
    Ok(())
}

/// The kind of customer a model rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CustomerKind {
    Enterprise,
    Individual,
}

impl CustomerKind {
    /// `None` for UNSPECIFIED and for values this build does not know.
    pub fn from_proto(value: i32) -> Option<Self> {
        match pb::CustomerKind::try_from(value).ok()? {
            pb::CustomerKind::Enterprise => Some(Self::Enterprise),
            pb::CustomerKind::Individual => Some(Self::Individual),
            pb::CustomerKind::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> pb::CustomerKind {
        match self {
            Self::Enterprise => pb::CustomerKind::Enterprise,
            Self::Individual => pb::CustomerKind::Individual,
        }
    }
}

/// Where a characteristic's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CharacteristicSource {
    FinancialStatement,
    BureauReport,
    TradeReferences,
    PaymentBehaviour,
    Qualitative,
    Customer,
}

/// Whether a characteristic is binned by numeric ranges or by category sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    Numeric,
    Categorical,
}

use ValueType::{Categorical, Numeric};

/// The keys each source provides, as listed on `CharacteristicSource` in the contract. A key
/// outside this list could never receive a value, so a model naming one has a typo.
const FINANCIAL_STATEMENT_KEYS: &[(&str, ValueType)] = &[
    ("current_ratio", Numeric),
    ("debt_to_assets", Numeric),
    ("net_margin", Numeric),
    ("return_on_assets", Numeric),
    ("interest_coverage", Numeric),
    ("operating_cash_flow_to_total_liabilities", Numeric),
    ("working_capital_to_total_assets", Numeric),
    ("retained_earnings_to_total_assets", Numeric),
    ("ebit_to_total_assets", Numeric),
    ("equity_to_total_liabilities", Numeric),
    ("altman_z_score", Numeric),
    ("revenue", Numeric),
    ("equity", Numeric),
    ("total_assets", Numeric),
];
const BUREAU_REPORT_KEYS: &[(&str, ValueType)] = &[
    ("score", Numeric),
    ("lawsuits_count", Numeric),
    ("agency_rating", Categorical),
    ("tax_compliance_status", Categorical),
];
const TRADE_REFERENCE_KEYS: &[(&str, ValueType)] = &[
    ("trade_reference_count", Numeric),
    ("average_days_beyond_terms", Numeric),
    ("worst_payment_experience", Categorical),
];
const PAYMENT_BEHAVIOUR_KEYS: &[(&str, ValueType)] = &[
    ("max_days_overdue_12m", Numeric),
    ("on_time_payment_ratio", Numeric),
    ("average_days_to_pay", Numeric),
    ("broken_promises_12m", Numeric),
];
const QUALITATIVE_KEYS: &[(&str, ValueType)] = &[
    ("management_quality", Numeric),
    ("market_position", Numeric),
    ("industry_outlook", Numeric),
    ("collateral_coverage", Numeric),
];
const CUSTOMER_KEYS: &[(&str, ValueType)] = &[
    ("years_in_business", Numeric),
    ("age_years", Numeric),
    ("annual_income", Numeric),
    ("industry_code", Categorical),
    ("country", Categorical),
];

impl CharacteristicSource {
    /// `None` for UNSPECIFIED and for values this build does not know.
    pub fn from_proto(value: i32) -> Option<Self> {
        match pb::CharacteristicSource::try_from(value).ok()? {
            pb::CharacteristicSource::FinancialStatement => Some(Self::FinancialStatement),
            pb::CharacteristicSource::BureauReport => Some(Self::BureauReport),
            pb::CharacteristicSource::TradeReferences => Some(Self::TradeReferences),
            pb::CharacteristicSource::PaymentBehaviour => Some(Self::PaymentBehaviour),
            pb::CharacteristicSource::Qualitative => Some(Self::Qualitative),
            pb::CharacteristicSource::Customer => Some(Self::Customer),
            pb::CharacteristicSource::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> pb::CharacteristicSource {
        match self {
            Self::FinancialStatement => pb::CharacteristicSource::FinancialStatement,
            Self::BureauReport => pb::CharacteristicSource::BureauReport,
            Self::TradeReferences => pb::CharacteristicSource::TradeReferences,
            Self::PaymentBehaviour => pb::CharacteristicSource::PaymentBehaviour,
            Self::Qualitative => pb::CharacteristicSource::Qualitative,
            Self::Customer => pb::CharacteristicSource::Customer,
        }
    }

    /// The keys the contract lists for this source, with the type of their values.
    pub fn known_keys(self) -> &'static [(&'static str, ValueType)] {
        match self {
            Self::FinancialStatement => FINANCIAL_STATEMENT_KEYS,
            Self::BureauReport => BUREAU_REPORT_KEYS,
            Self::TradeReferences => TRADE_REFERENCE_KEYS,
            Self::PaymentBehaviour => PAYMENT_BEHAVIOUR_KEYS,
            Self::Qualitative => QUALITATIVE_KEYS,
            Self::Customer => CUSTOMER_KEYS,
        }
    }

    /// The type of the values `key` carries, or `None` when this source has no such key.
    /// Qualitative inputs are open-ended (models may define more), always on the 1-5 scale.
    pub fn value_type_of(self, key: &str) -> Option<ValueType> {
        if let Some((_, value_type)) = self.known_keys().iter().find(|(known, _)| *known == key) {
            return Some(*value_type);
        }
        (self == Self::Qualitative && is_lower_snake_case(key)).then_some(Numeric)
    }
}

impl ValueType {
    pub fn from_proto(value: i32) -> Option<Self> {
        match pb::CharacteristicValueType::try_from(value).ok()? {
            pb::CharacteristicValueType::Numeric => Some(Numeric),
            pb::CharacteristicValueType::Categorical => Some(Categorical),
            pb::CharacteristicValueType::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> pb::CharacteristicValueType {
        match self {
            Numeric => pb::CharacteristicValueType::Numeric,
            Categorical => pb::CharacteristicValueType::Categorical,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Numeric => "NUMERIC",
            Categorical => "CATEGORICAL",
        }
    }
}

/// The indicator family a characteristic belongs to; groups the breakdown in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndicatorFamily {
    FinancialStrength,
    Operations,
    Solvency,
    Collateral,
    PaymentBehaviour,
}

impl IndicatorFamily {
    /// `Ok(None)` for UNSPECIFIED (a family is optional), `Err` for values this build does not know.
    pub fn from_proto(value: i32) -> Result<Option<Self>, UnknownEnumValue> {
        let family = pb::IndicatorFamily::try_from(value).map_err(|_| UnknownEnumValue(value))?;
        Ok(match family {
            pb::IndicatorFamily::Unspecified => None,
            pb::IndicatorFamily::FinancialStrength => Some(Self::FinancialStrength),
            pb::IndicatorFamily::Operations => Some(Self::Operations),
            pb::IndicatorFamily::Solvency => Some(Self::Solvency),
            pb::IndicatorFamily::Collateral => Some(Self::Collateral),
            pb::IndicatorFamily::PaymentBehaviour => Some(Self::PaymentBehaviour),
        })
    }

    /// Takes the `Option` a characteristic holds: `None` is UNSPECIFIED.
    pub fn to_proto(family: Option<Self>) -> pb::IndicatorFamily {
        match family {
            None => pb::IndicatorFamily::Unspecified,
            Some(Self::FinancialStrength) => pb::IndicatorFamily::FinancialStrength,
            Some(Self::Operations) => pb::IndicatorFamily::Operations,
            Some(Self::Solvency) => pb::IndicatorFamily::Solvency,
            Some(Self::Collateral) => pb::IndicatorFamily::Collateral,
            Some(Self::PaymentBehaviour) => pb::IndicatorFamily::PaymentBehaviour,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0}")]
pub struct UnknownEnumValue(pub i32);

// ---------------------------------------------------------------------------------------------
// Decimals and text
// ---------------------------------------------------------------------------------------------

/// What is wrong with a decimal a caller sent; the text is safe to show callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("is required")]
    Missing,
    #[error("'{0}' is not a decimal number such as 1.25 or -3")]
    NotADecimal(String),
}

/// Parses a plain decimal ("12", "-0.5", "1.250"). Scientific notation and digit separators are
/// refused so that the figure a person reads is the figure the model uses.
pub fn parse_decimal(text: &str) -> Result<Decimal, DecimalError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DecimalError::Missing);
    }
    let shown: String = text.chars().take(MAX_DECIMAL_LEN).collect();
    let plain = text
        .chars()
        .all(|character| character.is_ascii_digit() || ".+-".contains(character));
    if text.len() > MAX_DECIMAL_LEN || !plain {
        return Err(DecimalError::NotADecimal(shown));
    }
    Decimal::from_str(text).map_err(|_| DecimalError::NotADecimal(shown))
}

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

pub(crate) fn is_upper_snake_case(text: &str) -> bool {
    is_snake_case(text, |character| character.is_ascii_uppercase())
}

pub(crate) fn is_lower_snake_case(text: &str) -> bool {
    is_snake_case(text, |character| character.is_ascii_lowercase())
}

/// Letters of one case, digits and single underscores between words; starts with a letter.
fn is_snake_case(text: &str, is_letter: impl Fn(char) -> bool) -> bool {
    let starts_with_letter = text.chars().next().is_some_and(&is_letter);
    let allowed = text
        .chars()
        .all(|character| is_letter(character) || character.is_ascii_digit() || character == '_');
    starts_with_letter && allowed && !text.ends_with('_') && !text.contains("__")
}

/// Names and labels are one line; descriptions may span several.
pub(crate) fn check_text(
    text: &str,
    max_chars: usize,
    multi_line: bool,
    field: &str,
    violations: &mut Violations,
) {
    if text.chars().count() > max_chars {
        violations.add(field, format!("must be at most {max_chars} characters"));
    }
    let forbidden = |character: char| {
        character.is_control() && !(multi_line && (character == '\n' || character == '\t'))
    };
    if text.chars().any(forbidden) {
        violations.add(field, "must not contain control characters");
    }
}

// ---------------------------------------------------------------------------------------------
// Field paths
// ---------------------------------------------------------------------------------------------

/// Names the place of each part of a model in the request that carried it, so the same checks
/// report `model.characteristics[2].bins[3].range` for PublishModel and `rows[17].bin` for a
/// scorecard table import.
pub(crate) trait FieldPaths {
    /// A field of the model itself, for example `model_id` or `master_scale.grades[2].pd`.
    fn model_field(&self, field: &str) -> String;

    /// A field of one characteristic (`code`, `input_key`, `bins`, `missing_points`, ...).
    fn characteristic_field(&self, characteristic: usize, field: &str) -> String {
        self.model_field(&format!("characteristics[{characteristic}].{field}"))
    }

    /// A field of one bin (`range`, `categories`, `points`).
    fn bin_field(&self, characteristic: usize, bin: usize, field: &str) -> String {
        self.characteristic_field(characteristic, &format!("bins[{bin}].{field}"))
    }

    /// How a description refers to another bin of the same characteristic.
    fn bin_name(&self, _characteristic: usize, bin: usize) -> String {
        format!("bins[{bin}]")
    }

    fn grade_field(&self, grade: usize, field: &str) -> String {
        self.model_field(&format!("master_scale.grades[{grade}].{field}"))
    }
}

/// Paths inside a proto `ScorecardModel` that sits at `prefix` of the request ("model" in
/// PublishModelRequest; empty when the model is the whole message).
#[derive(Debug, Clone)]
pub struct ProtoPaths {
    prefix: String,
}

impl ProtoPaths {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
}

impl FieldPaths for ProtoPaths {
    fn model_field(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }
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

    fn to_proto(&self) -> pb::NumericRange {
        pb::NumericRange {
            lower_bound: self.lower.map(|lower| lower.to_string()),
            upper_bound: self.upper.map(|upper| upper.to_string()),
            lower_exclusive: self.lower_exclusive,
            upper_inclusive: self.upper_inclusive,
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

    fn to_proto(&self) -> pb::Characteristic {
        let bins = match &self.bins {
            Bins::Numeric(bins) => bins
                .iter()
                .map(|bin| pb::ScorecardBin {
                    label: bin.label.clone(),
                    condition: Some(pb::scorecard_bin::Condition::Range(bin.range.to_proto())),
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
            code: self.code.clone(),
            display_name: self.display_name.clone(),
            source: self.source.to_proto().into(),
            input_key: self.input_key.clone(),
            value_type: self.value_type().to_proto().into(),
            family: IndicatorFamily::to_proto(self.family).into(),
            bins,
            missing_points: self.missing_points.to_string(),
            reason_text: self.reason_text.clone(),
        }
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
    let Some(key_type) = source.value_type_of(key) else {
        let known: Vec<&str> = source.known_keys().iter().map(|(name, _)| *name).collect();
        violations.add(
            paths.characteristic_field(index, "input_key"),
            format!(
                "'{key}' is not a key of source {}; known keys: {}",
                source.to_proto().as_str_name(),
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
    /// Parses and checks a proto model found at `paths` (see [`ProtoPaths`]). Output-only fields
    /// (version, score range, ranks, publication) are ignored; the version starts at 0.
    pub fn parse(proto: &pb::ScorecardModel, paths: &ProtoPaths) -> Result<Self, ServiceError> {
        if proto.characteristics.len() > MAX_CHARACTERISTICS {
            // Absurd input is refused before any work is spent on it.
            return Err(ServiceError::invalid(
                paths.model_field("characteristics"),
                format!("at most {MAX_CHARACTERISTICS} characteristics are allowed"),
            ));
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

impl TryFrom<&pb::ScorecardModel> for ScorecardModel {
    type Error = ServiceError;

    /// As sent in PublishModelRequest: violations are named `model.<field>`.
    fn try_from(proto: &pb::ScorecardModel) -> Result<Self, Self::Error> {
        Self::parse(proto, &ProtoPaths::new("model"))
    }
}

impl TryFrom<pb::ScorecardModel> for ScorecardModel {
    type Error = ServiceError;

    fn try_from(proto: pb::ScorecardModel) -> Result<Self, Self::Error> {
        Self::try_from(&proto)
    }
}

impl From<&ScorecardModel> for pb::ScorecardModel {
    /// Everything but the publication time and publisher, which the store keeps.
    fn from(model: &ScorecardModel) -> Self {
        pb::ScorecardModel {
            model_id: model.model_id.to_string(),
            version: i32::try_from(model.version).unwrap_or(i32::MAX),
            display_name: model.display_name.clone(),
            description: model.description.clone(),
            customer_kind: model.customer_kind.to_proto().into(),
            industry_codes: model.industry_codes.clone(),
            base_points: model.base_points.to_string(),
            characteristics: model
                .characteristics
                .iter()
                .map(Characteristic::to_proto)
                .collect(),
            master_scale: Some(model.master_scale.to_proto()),
            max_reasons: i32::try_from(model.max_reasons).unwrap_or(i32::MAX),
            min_score: model.min_score.normalize().to_string(),
            max_score: model.max_score.normalize().to_string(),
            change_note: model.change_note.clone(),
            published_at: None,
            published_by: None,
        }
    }
}

/// The fields a model shares with an ImportScorecardTableRequest, parsed the same way for both.
#[derive(Debug)]
pub(crate) struct ModelHeader<'a> {
    pub model_id: &'a str,
    pub display_name: &'a str,
    pub description: &'a str,
    pub change_note: &'a str,
    pub customer_kind: i32,
    pub industry_codes: &'a [String],
    pub master_scale: Option<&'a pb::MasterScale>,
    pub max_reasons: i32,
}

/// A characteristic as parsed, possibly with parts missing because they failed to parse (their
/// violations are recorded). It is still checked as far as it can be, so a caller learns about
/// a bad code and a bad bin in one answer.
#[derive(Debug)]
pub(crate) struct ParsedCharacteristic {
    pub characteristic: Characteristic,
    /// False when a bin failed to parse: the bins are incomplete and coverage is not checked.
    pub bins_parsed: bool,
    /// False when anything failed to parse: the model's score range is then unknown.
    pub fully_parsed: bool,
}

/// A model while it is being parsed: every part that parsed, `None` for parts that did not (their
/// violations are already recorded). [`ModelDraft::finish`] runs the checks that span parts.
#[derive(Debug, Default)]
pub(crate) struct ModelDraft {
    pub model_id: Option<ModelId>,
    pub display_name: String,
    pub description: String,
    pub change_note: String,
    pub customer_kind: Option<CustomerKind>,
    pub industry_codes: Option<Vec<String>>,
    pub base_points: Option<Decimal>,
    pub characteristics: Vec<Option<ParsedCharacteristic>>,
    pub master_scale: Option<MasterScale>,
    pub max_reasons: Option<u32>,
}

impl ModelDraft {
    pub(crate) fn from_header(
        header: &ModelHeader<'_>,
        paths: &dyn FieldPaths,
        violations: &mut Violations,
    ) -> Self {
        let field = |name: &str| paths.model_field(name);
        let model_id = violations.check(&field("model_id"), ModelId::parse(header.model_id));
        check_text(
            header.display_name,
            MAX_NAME_LEN,
            false,
            &field("display_name"),
            violations,
        );
        check_text(
            header.description,
            MAX_DESCRIPTION_LEN,
            true,
            &field("description"),
            violations,
        );
        check_text(
            header.change_note,
            MAX_DESCRIPTION_LEN,
            true,
            &field("change_note"),
            violations,
        );
        let customer_kind = CustomerKind::from_proto(header.customer_kind);
        if customer_kind.is_none() {
            violations.add(
                field("customer_kind"),
                "is required: CUSTOMER_KIND_ENTERPRISE or CUSTOMER_KIND_INDIVIDUAL",
            );
        }
        let max_reasons = parse_max_reasons(header.max_reasons);
        if max_reasons.is_none() {
            violations.add(
                field("max_reasons"),
                format!(
                    "must be between 0 (meaning {DEFAULT_MAX_REASONS}) and {MAX_REASONS_LIMIT}"
                ),
            );
        }
        Self {
            model_id,
            display_name: header.display_name.trim().to_owned(),
            description: header.description.to_owned(),
            change_note: header.change_note.to_owned(),
            customer_kind,
            industry_codes: parse_industry_codes(header.industry_codes, paths, violations),
            base_points: None,
            characteristics: Vec::new(),
            master_scale: MasterScale::parse(header.master_scale, paths, violations),
            max_reasons,
        }
    }

    /// Runs the checks that span parts and builds the model, or refuses it with every violation
    /// found so far and here.
    pub(crate) fn finish(
        self,
        paths: &dyn FieldPaths,
        mut violations: Violations,
    ) -> Result<ScorecardModel, ServiceError> {
        if self.characteristics.is_empty() {
            violations.add(
                paths.model_field("characteristics"),
                "a model needs at least one characteristic",
            );
        }
        for (index, parsed) in self.characteristics.iter().enumerate() {
            if let Some(parsed) = parsed {
                check_characteristic(parsed, index, paths, &mut violations);
            }
        }
        check_codes_are_unique(&self.characteristics, paths, &mut violations);
        let score_range = self.score_range();
        if let (Some(scale), Some((lowest, highest))) = (&self.master_scale, score_range) {
            scale.check_reachable(lowest, highest, paths, &mut violations);
        }
        violations.finish()?;

        let (
            Some(model_id),
            Some(customer_kind),
            Some(industry_codes),
            Some(base_points),
            Some(characteristics),
            Some(master_scale),
            Some(max_reasons),
            Some((min_score, max_score)),
        ) = (
            self.model_id,
            self.customer_kind,
            self.industry_codes,
            self.base_points,
            self.characteristics
                .into_iter()
                .map(|parsed| parsed.map(|parsed| parsed.characteristic))
                .collect::<Option<Vec<_>>>(),
            self.master_scale,
            self.max_reasons,
            score_range,
        )
        else {
            // Every part that failed to parse recorded a violation, so this is a bug.
            return Err(ServiceError::internal(IncompleteDraft));
        };
        Ok(ScorecardModel {
            model_id,
            version: 0,
            display_name: self.display_name,
            description: self.description,
            customer_kind,
            industry_codes,
            base_points,
            characteristics,
            master_scale,
            max_reasons,
            change_note: self.change_note,
            min_score,
            max_score,
        })
    }

    /// The lowest and highest possible score, once base points and every characteristic parsed.
    /// `None` without characteristics: that model is refused anyway, and grades unreachable by
    /// its base points alone would only add noise to the answer.
    fn score_range(&self) -> Option<(Decimal, Decimal)> {
        if self.characteristics.is_empty() {
            return None;
        }
        let base_points = self.base_points?;
        let mut lowest = base_points;
        let mut highest = base_points;
        for parsed in &self.characteristics {
            let parsed = parsed.as_ref().filter(|parsed| parsed.fully_parsed)?;
            let characteristic = &parsed.characteristic;
            lowest += characteristic.min_points();
            highest += characteristic.max_points();
        }
        Some((lowest, highest))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a model draft without violations lacks a part")]
struct IncompleteDraft;

fn parse_max_reasons(wire: i32) -> Option<u32> {
    match u32::try_from(wire) {
        Ok(0) => Some(DEFAULT_MAX_REASONS),
        Ok(count) if count <= MAX_REASONS_LIMIT => Some(count),
        _ => None,
    }
}

/// Industry prefixes are compared with intake's industry codes, which intake stores trimmed and
/// upper-case; the same normalisation here makes "c35" and "C35" the same claim.
fn parse_industry_codes(
    wire: &[String],
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> Option<Vec<String>> {
    let mut codes: Vec<String> = Vec::with_capacity(wire.len());
    let mut valid = true;
    for (index, code) in wire.iter().enumerate() {
        let field = paths.model_field(&format!("industry_codes[{index}]"));
        let code = code.trim().to_ascii_uppercase();
        let allowed =
            |character: char| character.is_ascii_alphanumeric() || ".-".contains(character);
        if code.is_empty() || code.len() > MAX_INDUSTRY_CODE_LEN || !code.chars().all(allowed) {
            violations.add(
                field,
                format!(
                    "must be 1 to {MAX_INDUSTRY_CODE_LEN} letters, digits, dots or dashes, \
                     like the industry codes of customers"
                ),
            );
            valid = false;
        } else if codes.contains(&code) {
            violations.add(field, format!("repeats the industry code '{code}'"));
            valid = false;
        } else {
            codes.push(code);
        }
    }
    valid.then_some(codes)
}

fn check_codes_are_unique(
    characteristics: &[Option<ParsedCharacteristic>],
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) {
    let mut first_index_of: HashMap<&str, usize> = HashMap::new();
    for (index, parsed) in characteristics.iter().enumerate() {
        let Some(ParsedCharacteristic { characteristic, .. }) = parsed else {
            continue;
        };
        if let Some(first) = first_index_of.get(characteristic.code.as_str()) {
            violations.add(
                paths.characteristic_field(index, "code"),
                format!(
                    "'{}' is already the code of characteristics[{first}]",
                    characteristic.code
                ),
            );
        } else {
            first_index_of.insert(&characteristic.code, index);
        }
    }
}

/// Parses one proto characteristic. Checks that hold for every origin run later, in
/// [`check_characteristic`]; here only what can go wrong in the proto form. `None` only when the
/// source or value type is unknown, without which nothing else can be checked.
fn parse_characteristic(
    wire: &pb::Characteristic,
    index: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> Option<ParsedCharacteristic> {
    let field = |name: &str| paths.characteristic_field(index, name);
    let source = CharacteristicSource::from_proto(wire.source);
    if source.is_none() {
        violations.add(field("source"), "is required");
    }
    let value_type = ValueType::from_proto(wire.value_type);
    if value_type.is_none() {
        violations.add(field("value_type"), "is required: NUMERIC or CATEGORICAL");
    }
    let family = violations.check(&field("family"), IndicatorFamily::from_proto(wire.family));
    let missing_points =
        violations.check(&field("missing_points"), parse_points(&wire.missing_points));
    let (bins, bins_parsed) = match value_type? {
        Numeric => {
            let (bins, all_parsed) = parse_numeric_bins(&wire.bins, index, paths, violations);
            (Bins::Numeric(bins), all_parsed)
        }
        Categorical => {
            let (bins, all_parsed) = parse_category_bins(&wire.bins, index, paths, violations);
            (Bins::Categorical(bins), all_parsed)
        }
    };
    let code = wire.code.trim().to_owned();
    let display_name = label_or(&wire.display_name, || code.clone());
    let characteristic = Characteristic {
        code,
        display_name,
        source: source?,
        input_key: wire.input_key.trim().to_owned(),
        family: family.flatten(),
        bins,
        missing_points: missing_points.unwrap_or_default(),
        reason_text: wire.reason_text.trim().to_owned(),
    };
    Some(ParsedCharacteristic {
        characteristic,
        bins_parsed,
        fully_parsed: bins_parsed && family.is_some() && missing_points.is_some(),
    })
}

/// The bins that parsed, and whether all did (each failure is recorded).
fn parse_numeric_bins(
    wire: &[pb::ScorecardBin],
    characteristic: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> (Vec<NumericBin>, bool) {
    let parsed: Vec<Option<NumericBin>> = wire
        .iter()
        .enumerate()
        .map(|(index, bin)| {
            let field = |name: &str| paths.bin_field(characteristic, index, name);
            let points = violations.check(&field("points"), parse_points(&bin.points));
            let Some(pb::scorecard_bin::Condition::Range(range)) = &bin.condition else {
                violations.add(
                    field("range"),
                    "a NUMERIC characteristic's bins need a range",
                );
                return None;
            };
            let range = parse_range(range, &field("range"), violations)?;
            Some(NumericBin {
                label: label_or(&bin.label, || range.to_string()),
                range,
                points: points?,
            })
        })
        .collect();
    all_that_parsed(parsed)
}

fn parse_range(
    wire: &pb::NumericRange,
    field: &str,
    violations: &mut Violations,
) -> Option<NumericRange> {
    let parse_bound = |bound: &Option<String>, violations: &mut Violations, name: &str| match bound
    {
        None => Some(None),
        Some(text) => violations
            .check(&format!("{field}.{name}"), parse_decimal(text))
            .map(Some),
    };
    let lower = parse_bound(&wire.lower_bound, violations, "lower_bound");
    let upper = parse_bound(&wire.upper_bound, violations, "upper_bound");
    Some(NumericRange {
        lower: lower?,
        upper: upper?,
        lower_exclusive: wire.lower_exclusive,
        upper_inclusive: wire.upper_inclusive,
    })
}

/// The bins that parsed, and whether all did (each failure is recorded).
fn parse_category_bins(
    wire: &[pb::ScorecardBin],
    characteristic: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> (Vec<CategoryBin>, bool) {
    let parsed: Vec<Option<CategoryBin>> = wire
        .iter()
        .enumerate()
        .map(|(index, bin)| {
            let field = |name: &str| paths.bin_field(characteristic, index, name);
            let points = violations.check(&field("points"), parse_points(&bin.points));
            let Some(pb::scorecard_bin::Condition::Categories(categories)) = &bin.condition else {
                violations.add(
                    field("categories"),
                    "a CATEGORICAL characteristic's bins need categories",
                );
                return None;
            };
            let values = categories.values.clone();
            Some(CategoryBin {
                label: label_or(&bin.label, || values.join(", ")),
                values,
                points: points?,
            })
        })
        .collect();
    all_that_parsed(parsed)
}

/// The items that parsed, and whether every one did.
pub(crate) fn all_that_parsed<T>(items: Vec<Option<T>>) -> (Vec<T>, bool) {
    let count = items.len();
    let parsed: Vec<T> = items.into_iter().flatten().collect();
    let all_parsed = parsed.len() == count;
    (parsed, all_parsed)
}

/// A bin without a label is shown by its condition, so the breakdown never has a blank.
pub(crate) fn label_or(label: &str, describe: impl FnOnce() -> String) -> String {
    match label.trim() {
        "" => describe(),
        label => label.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scale;
    use credit_core::FieldViolation;
    use proptest::prelude::*;

    fn numeric_bin(lower: Option<&str>, upper: Option<&str>, points: &str) -> pb::ScorecardBin {
        pb::ScorecardBin {
            label: String::new(),
            condition: Some(pb::scorecard_bin::Condition::Range(pb::NumericRange {
                lower_bound: lower.map(str::to_owned),
                upper_bound: upper.map(str::to_owned),
                lower_exclusive: false,
                upper_inclusive: false,
            })),
            points: points.to_owned(),
        }
    }

    fn category_bin(values: &[&str], points: &str) -> pb::ScorecardBin {
        pb::ScorecardBin {
            label: String::new(),
            condition: Some(pb::scorecard_bin::Condition::Categories(pb::CategorySet {
                values: values.iter().map(|value| (*value).to_owned()).collect(),
            })),
            points: points.to_owned(),
        }
    }

    fn current_ratio(bins: Vec<pb::ScorecardBin>) -> pb::Characteristic {
        pb::Characteristic {
            code: "CURRENT_RATIO".into(),
            display_name: "Current ratio".into(),
            source: pb::CharacteristicSource::FinancialStatement.into(),
            input_key: "current_ratio".into(),
            value_type: pb::CharacteristicValueType::Numeric.into(),
            family: pb::IndicatorFamily::Solvency.into(),
            bins,
            missing_points: "0".into(),
            reason_text: "Liquidity is weak (current ratio)".into(),
        }
    }

    fn trade_experience() -> pb::Characteristic {
        pb::Characteristic {
            code: "WORST_PAYMENT_EXPERIENCE".into(),
            display_name: "Worst payment experience".into(),
            source: pb::CharacteristicSource::TradeReferences.into(),
            input_key: "worst_payment_experience".into(),
            value_type: pb::CharacteristicValueType::Categorical.into(),
            family: pb::IndicatorFamily::PaymentBehaviour.into(),
            bins: vec![
                category_bin(&["PROMPT"], "300"),
                category_bin(&["SLOW"], "150"),
                category_bin(&["VERY_SLOW"], "0"),
            ],
            missing_points: "100".into(),
            reason_text: "Other suppliers report late payment".into(),
        }
    }

    /// A small valid model scoring 0..=900 with agency-8 (D below 380, AAA from 850).
    fn valid_model() -> pb::ScorecardModel {
        pb::ScorecardModel {
            model_id: "test-model".into(),
            display_name: "Test".into(),
            customer_kind: pb::CustomerKind::Enterprise.into(),
            base_points: "0".into(),
            characteristics: vec![
                current_ratio(vec![
                    numeric_bin(None, Some("1.0"), "0"),
                    numeric_bin(Some("1.0"), Some("1.5"), "300"),
                    numeric_bin(Some("1.5"), None, "600"),
                ]),
                trade_experience(),
            ],
            master_scale: Some(scale::agency_8()),
            ..Default::default()
        }
    }

    fn violations_of(proto: &pb::ScorecardModel) -> Vec<FieldViolation> {
        match ScorecardModel::try_from(proto) {
            Err(ServiceError::InvalidArgument(violations)) => violations,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    fn has_violation(violations: &[FieldViolation], field: &str, description: &str) -> bool {
        violations
            .iter()
            .any(|violation| violation.field == field && violation.description == description)
    }

    #[test]
    fn a_valid_model_parses_and_computes_its_score_range() {
        let model = ScorecardModel::try_from(valid_model()).unwrap();
        assert_eq!(model.model_id().as_str(), "test-model");
        assert_eq!(model.version(), 0);
        assert_eq!(model.min_score(), Decimal::ZERO);
        assert_eq!(model.max_score(), Decimal::from(900));
        assert_eq!(model.max_reasons(), DEFAULT_MAX_REASONS);
        assert!(model.is_default_for_kind());
    }

    #[test]
    fn the_proto_form_carries_the_output_only_fields() {
        let model = ScorecardModel::try_from(valid_model())
            .unwrap()
            .with_version(3);
        let proto = pb::ScorecardModel::from(&model);
        assert_eq!(proto.version, 3);
        assert_eq!(proto.min_score, "0");
        assert_eq!(proto.max_score, "900");
        assert_eq!(proto.max_reasons, 4);
        let ranks: Vec<i32> = proto
            .master_scale
            .unwrap()
            .grades
            .iter()
            .map(|g| g.rank)
            .collect();
        assert_eq!(ranks, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(proto.characteristics[0].bins[1].label, "[1.0, 1.5)");
    }

    #[test]
    fn a_model_survives_the_round_trip_through_its_proto_form() {
        let model = ScorecardModel::try_from(valid_model()).unwrap();
        let again = ScorecardModel::try_from(pb::ScorecardModel::from(&model)).unwrap();
        assert_eq!(model, again);
    }

    #[test]
    fn a_gap_between_bins_is_named_at_the_bin_after_it() {
        let mut proto = valid_model();
        proto.characteristics[0].bins[2] = numeric_bin(Some("1.6"), None, "600");
        let violations = violations_of(&proto);
        assert_eq!(
            violations,
            [FieldViolation::new(
                "model.characteristics[0].bins[2].range",
                "gap between 1.5 and 1.6"
            )]
        );
    }

    #[test]
    fn an_overlap_names_the_bin_it_overlaps() {
        let mut proto = valid_model();
        proto.characteristics[0].bins[2] = numeric_bin(Some("1.2"), None, "600");
        let violations = violations_of(&proto);
        assert_eq!(
            violations,
            [FieldViolation::new(
                "model.characteristics[0].bins[2].range",
                "overlaps bins[1] between 1.2 and 1.5"
            )]
        );
    }

    #[test]
    fn bins_may_come_in_any_order_and_with_either_bracket() {
        let mut proto = valid_model();
        let mut middle = numeric_bin(Some("1.0"), Some("1.5"), "300");
        if let Some(pb::scorecard_bin::Condition::Range(range)) = &mut middle.condition {
            range.lower_exclusive = true;
            range.upper_inclusive = true;
        }
        let mut low = numeric_bin(None, Some("1.0"), "0");
        if let Some(pb::scorecard_bin::Condition::Range(range)) = &mut low.condition {
            range.upper_inclusive = true;
        }
        let mut high = numeric_bin(Some("1.5"), None, "600");
        if let Some(pb::scorecard_bin::Condition::Range(range)) = &mut high.condition {
            range.lower_exclusive = true;
        }
        proto.characteristics[0].bins = vec![high, low, middle];
        assert!(ScorecardModel::try_from(proto).is_ok());
    }

    #[test]
    fn a_single_uncovered_number_is_a_gap_at_that_number() {
        let mut proto = valid_model();
        let mut high = numeric_bin(Some("1.5"), None, "600");
        if let Some(pb::scorecard_bin::Condition::Range(range)) = &mut high.condition {
            range.lower_exclusive = true;
        }
        proto.characteristics[0].bins[2] = high;
        let violations = violations_of(&proto);
        assert_eq!(
            violations,
            [FieldViolation::new(
                "model.characteristics[0].bins[2].range",
                "gap at 1.5"
            )]
        );
    }

    #[test]
    fn uncovered_ends_of_the_number_line_are_gaps() {
        let mut proto = valid_model();
        proto.characteristics[0].bins = vec![numeric_bin(Some("0"), Some("10"), "5")];
        let violations = violations_of(&proto);
        let field = "model.characteristics[0].bins[0].range";
        assert!(has_violation(&violations, field, "gap between -inf and 0"));
        assert!(has_violation(&violations, field, "gap between 10 and +inf"));
    }

    #[test]
    fn an_empty_range_is_refused() {
        let mut proto = valid_model();
        proto.characteristics[0]
            .bins
            .push(numeric_bin(Some("2"), Some("2"), "1"));
        let violations = violations_of(&proto);
        assert!(has_violation(
            &violations,
            "model.characteristics[0].bins[3].range",
            "range [2, 2) contains no number"
        ));
    }

    #[test]
    fn a_category_in_two_bins_is_refused() {
        let mut proto = valid_model();
        proto.characteristics[1].bins[2] = category_bin(&["VERY_SLOW", "SLOW"], "0");
        let violations = violations_of(&proto);
        assert_eq!(
            violations,
            [FieldViolation::new(
                "model.characteristics[1].bins[2].categories",
                "the value 'SLOW' is also in bins[1]"
            )]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut proto = valid_model();
        proto.model_id = "Not An Id".into();
        proto.customer_kind = 0;
        proto.characteristics[0].code = "current ratio".into();
        proto.characteristics[0].bins[1].points = "lots".into();
        proto.characteristics[1].input_key = "worst_experience".into();
        proto.characteristics.push(trade_experience());
        let violations = violations_of(&proto);
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "model.model_id",
                "model.customer_kind",
                "model.characteristics[0].bins[1].points",
                "model.characteristics[0].code",
                "model.characteristics[1].input_key",
                "model.characteristics[2].code",
            ]
        );
        assert_eq!(
            violations[5].description,
            "'WORST_PAYMENT_EXPERIENCE' is already the code of characteristics[1]"
        );
    }

    #[test]
    fn a_key_must_exist_in_its_source_with_the_right_type() {
        let mut proto = valid_model();
        proto.characteristics[1].source = pb::CharacteristicSource::PaymentBehaviour.into();
        proto.characteristics[1].input_key = "max_days_overdue_12m".into();
        let violations = violations_of(&proto);
        assert_eq!(
            violations,
            [FieldViolation::new(
                "model.characteristics[1].value_type",
                "must be NUMERIC: the values of 'max_days_overdue_12m' are numeric"
            )]
        );
    }

    #[test]
    fn qualitative_sources_accept_new_keys() {
        assert_eq!(
            CharacteristicSource::Qualitative.value_type_of("supplier_dependence"),
            Some(ValueType::Numeric)
        );
        assert_eq!(
            CharacteristicSource::FinancialStatement.value_type_of("supplier_dependence"),
            None
        );
    }

    #[test]
    fn a_bin_of_the_wrong_kind_is_refused() {
        let mut proto = valid_model();
        proto.characteristics[0].bins[0] = category_bin(&["LOW"], "0");
        let violations = violations_of(&proto);
        assert_eq!(
            violations,
            [FieldViolation::new(
                "model.characteristics[0].bins[0].range",
                "a NUMERIC characteristic's bins need a range"
            )]
        );
    }

    #[test]
    fn industry_codes_are_normalised_and_unique() {
        let mut proto = valid_model();
        proto.industry_codes = vec![" c35".into(), "C36".into()];
        let model = ScorecardModel::try_from(&proto).unwrap();
        assert_eq!(model.industry_codes(), ["C35", "C36"]);
        proto.industry_codes.push("c35".into());
        let violations = violations_of(&proto);
        assert_eq!(
            violations,
            [FieldViolation::new(
                "model.industry_codes[2]",
                "repeats the industry code 'C35'"
            )]
        );
    }

    #[test]
    fn a_grade_the_model_cannot_reach_is_refused() {
        let mut proto = valid_model();
        // Scores now range from 0 to 600: AAA..BBB (620 and up) cannot be reached.
        proto.characteristics[0].bins[2].points = "200".into();
        let violations = violations_of(&proto);
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "model.master_scale.grades[0]",
                "model.master_scale.grades[1]",
                "model.master_scale.grades[2]",
                "model.master_scale.grades[3]",
            ]
        );
        assert_eq!(
            violations[3].description,
            "grade BBB (scores from 620 below 700) is unreachable: the model scores from 0 to 600"
        );
    }

    #[test]
    fn decimals_are_plain_and_max_reasons_is_bounded() {
        let mut proto = valid_model();
        proto.base_points = "1e3".into();
        proto.max_reasons = -1;
        let violations = violations_of(&proto);
        assert!(has_violation(
            &violations,
            "model.base_points",
            "'1e3' is not a decimal number such as 1.25 or -3"
        ));
        assert!(violations.iter().any(|v| v.field == "model.max_reasons"));
    }

    #[test]
    fn cuts_order_the_number_line() {
        let one = Decimal::ONE;
        let two = Decimal::TWO;
        let ordered = [
            Cut::MinusInfinity,
            Cut::JustBelow(one),
            Cut::JustAbove(one),
            Cut::JustBelow(two),
            Cut::PlusInfinity,
        ];
        assert!(ordered.windows(2).all(|pair| pair[0] < pair[1]));
    }

    /// Arbitrary cut points, as sorted distinct decimals with one decimal place.
    fn cut_points() -> impl Strategy<Value = Vec<Decimal>> {
        proptest::collection::btree_set(-1000i64..1000, 1..8).prop_map(|set| {
            set.into_iter()
                .map(|tenths| Decimal::new(tenths, 1))
                .collect()
        })
    }

    fn bins_from_cuts(cuts: &[Decimal]) -> Vec<NumericBin> {
        let mut bounds: Vec<Option<Decimal>> = vec![None];
        bounds.extend(cuts.iter().copied().map(Some));
        bounds.push(None);
        bounds
            .windows(2)
            .map(|pair| NumericBin {
                label: String::new(),
                range: NumericRange::half_open(pair[0], pair[1]),
                points: Decimal::ZERO,
            })
            .collect()
    }

    fn coverage_violations(bins: &[NumericBin]) -> Vec<FieldViolation> {
        let mut violations = Violations::new();
        check_numeric_coverage(bins, 0, &ProtoPaths::new("model"), &mut violations);
        match violations.finish() {
            Ok(()) => Vec::new(),
            Err(ServiceError::InvalidArgument(found)) => found,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    proptest! {
        #[test]
        fn bins_cut_at_any_points_cover_the_line_in_any_order(
            cuts in cut_points(),
            rotation in 0usize..8,
        ) {
            let mut bins = bins_from_cuts(&cuts);
            let len = bins.len();
            bins.rotate_left(rotation % len);
            prop_assert!(coverage_violations(&bins).is_empty());
        }

        #[test]
        fn removing_an_inner_bin_always_leaves_a_gap(cuts in cut_points(), pick in 0usize..8) {
            prop_assume!(cuts.len() >= 2);
            let mut bins = bins_from_cuts(&cuts);
            let removed = 1 + pick % (bins.len() - 2);
            bins.remove(removed);
            let violations = coverage_violations(&bins);
            prop_assert_eq!(violations.len(), 1);
            prop_assert!(violations[0].description.starts_with("gap between"));
        }

        #[test]
        fn every_number_falls_in_exactly_one_bin(cuts in cut_points(), tenths in -1100i64..1100) {
            let value = Decimal::new(tenths, 1);
            let bins = bins_from_cuts(&cuts);
            let matching = bins.iter().filter(|bin| bin.range.contains(value)).count();
            prop_assert_eq!(matching, 1);
        }
    }
}
