//! From a customer's credit file to the input snapshot of a rating.
//!
//! The facts come from the services that own them (intake: customer, statements, bureau
//! reports, trade references; collections: payment behaviour) and from the analyst
//! (qualitative inputs). Every key the contract lists for a source is in the snapshot, missing
//! ones included, so a credit committee sees what the rating did *not* know as well as what
//! it knew, and re-scoring the snapshot with any model version gives a defined answer.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use credit_core::FieldViolation;
use rust_decimal::Decimal;

use super::CustomerKind;
use super::fields::InvalidFields;
use super::model::{CharacteristicSource, ValueType};
use super::scoring::{InputValue, RatingInput, RatingInputs};

/// Qualitative inputs are on a 1..5 scale, 5 the best.
pub const QUALITATIVE_RANGE: std::ops::RangeInclusive<i32> = 1..=5;
/// Origin of an analyst's qualitative input.
pub const ANALYST_ORIGIN: &str = "analyst";
/// How many qualitative inputs one request may carry.
const MAX_QUALITATIVE_INPUTS: usize = 50;

/// What the rating knows about a customer when it is rated.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditFacts {
    pub kind: CustomerKind,
    pub industry_code: String,
    pub country: String,
    /// Founding date of an enterprise.
    pub founding_date: Option<NaiveDate>,
    /// Birth date of an individual.
    pub birth_date: Option<NaiveDate>,
    /// Annual income of an individual.
    pub annual_income: Option<Decimal>,
    /// The latest statement in force.
    pub statement: Option<StatementFacts>,
    /// The latest bureau report.
    pub bureau_report: Option<BureauFacts>,
    pub trade_references: Vec<TradeReferenceFacts>,
    /// `None` when collections has no history of the customer (or does not run).
    pub payment_behaviour: Option<PaymentFacts>,
    /// The customer's company-defined data points that have a value.
    pub data_points: Vec<DataPointFact>,
}

/// The current value of one of the customer's data points (intake).
#[derive(Debug, Clone, PartialEq)]
pub struct DataPointFact {
    pub code: String,
    pub reading: DataPointReading,
    /// The day the value was set.
    pub set_at: Option<NaiveDate>,
    /// Past the validity its definition gives.
    pub stale: bool,
}

/// A data point's value as a scorecard reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum DataPointReading {
    /// NUMBER, and MONEY's amount (always in the definition's one currency).
    Number(Decimal),
    /// CATEGORY, and YES_NO as "yes" or "no".
    Category(String),
    /// DATE: scored as the days from it to the rating.
    Date(NaiveDate),
}

/// The figures of one statement version the models read.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementFacts {
    pub statement_id: String,
    /// Ratios and amounts by their contract key ("current_ratio", "revenue"); a ratio with a
    /// zero denominator is absent.
    pub figures: BTreeMap<&'static str, Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BureauFacts {
    pub report_id: String,
    pub score: Option<Decimal>,
    pub lawsuits_count: u32,
    /// Empty when the agency gave none.
    pub agency_rating: String,
    /// "COMPLIANT", "MINOR_ISSUES", "NON_COMPLIANT" or "UNKNOWN".
    pub tax_compliance_status: &'static str,
}

/// How one supplier reports being paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PaymentExperience {
    Prompt,
    Slow,
    VerySlow,
}

impl PaymentExperience {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentExperience::Prompt => "PROMPT",
            PaymentExperience::Slow => "SLOW",
            PaymentExperience::VerySlow => "VERY_SLOW",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeReferenceFacts {
    pub days_beyond_terms: u32,
    /// `None` when the reference did not say.
    pub experience: Option<PaymentExperience>,
}

/// Payment behaviour towards us over the 12 months before `as_of` (collections).
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentFacts {
    pub as_of: NaiveDate,
    pub max_days_overdue_12m: u32,
    pub on_time_payment_ratio: Option<Decimal>,
    pub average_days_to_pay: Option<Decimal>,
    pub broken_promises_12m: u32,
}

/// Checked qualitative inputs of a RateCustomer request, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QualitativeInputs(BTreeMap<String, i32>);

impl QualitativeInputs {
    /// Keys must be lower_snake_case, values 1..5; every problem is reported, each under
    /// `qualitative_inputs[<key>]`.
    pub fn parse(wire: &std::collections::BTreeMap<String, i32>) -> Result<Self, InvalidFields> {
        if wire.len() > MAX_QUALITATIVE_INPUTS {
            return Err(InvalidFields::one(
                "qualitative_inputs",
                format!("at most {MAX_QUALITATIVE_INPUTS} inputs"),
            ));
        }
        let mut violations = Vec::new();
        let mut inputs = BTreeMap::new();
        for (key, value) in wire {
            let field = format!("qualitative_inputs[{key}]");
            if CharacteristicSource::Qualitative.value_type_of(key) != Some(ValueType::Numeric) {
                violations.push(FieldViolation::new(
                    field,
                    "is not a qualitative key: lower_snake_case, such as management_quality",
                ));
            } else if !QUALITATIVE_RANGE.contains(value) {
                violations.push(FieldViolation::new(
                    field,
                    format!("{value} is outside the 1-5 scale (5 = best)"),
                ));
            } else {
                inputs.insert(key.clone(), *value);
            }
        }
        if !violations.is_empty() {
            violations.sort_by(|left, right| left.field.cmp(&right.field));
            return Err(InvalidFields(violations));
        }
        Ok(Self(inputs))
    }
}

/// The input snapshot of a rating as of `as_of`.
///
/// Qualitative inputs not given in the request carry over from `previous` (the customer's
/// current rating), keeping their origin, so re-rating after a new statement does not forget
/// the analyst's assessment; the ones never given are missing.
pub fn gather(
    facts: &CreditFacts,
    qualitative: &QualitativeInputs,
    previous: Option<&RatingInputs>,
    as_of: NaiveDate,
) -> RatingInputs {
    let mut inputs = RatingInputs::new();
    let mut put = |source: CharacteristicSource, key: &str, value: InputValue, origin: &str| {
        inputs.insert(RatingInput::new(source, key, value, origin));
    };

    // The statement: every listed key, a missing ratio (no statement, zero denominator) as
    // missing.
    let statement_origin = facts
        .statement
        .as_ref()
        .map(|statement| format!("statement:{}", statement.statement_id))
        .unwrap_or_default();
    for (key, _) in CharacteristicSource::FinancialStatement.known_keys() {
        let value = facts
            .statement
            .as_ref()
            .and_then(|statement| statement.figures.get(key))
            .map_or(InputValue::Missing, |figure| InputValue::Number(*figure));
        put(
            CharacteristicSource::FinancialStatement,
            key,
            value,
            &statement_origin,
        );
    }

    let bureau = facts.bureau_report.as_ref();
    let bureau_origin = bureau
        .map(|report| format!("bureau_report:{}", report.report_id))
        .unwrap_or_default();
    let bureau_values = [
        (
            "score",
            bureau
                .and_then(|report| report.score)
                .map(InputValue::Number),
        ),
        (
            "lawsuits_count",
            bureau.map(|report| InputValue::Number(report.lawsuits_count.into())),
        ),
        (
            "agency_rating",
            bureau
                .filter(|report| !report.agency_rating.is_empty())
                .map(|report| InputValue::Category(report.agency_rating.clone())),
        ),
        (
            "tax_compliance_status",
            bureau.map(|report| InputValue::Category(report.tax_compliance_status.to_owned())),
        ),
    ];
    for (key, value) in bureau_values {
        put(
            CharacteristicSource::BureauReport,
            key,
            value.unwrap_or(InputValue::Missing),
            &bureau_origin,
        );
    }

    // Trade references: a count of zero is a fact; the average and the worst experience of
    // no references are missing.
    let references = &facts.trade_references;
    let references_origin = format!("trade_references:{}", references.len());
    let average_days = (!references.is_empty()).then(|| {
        let total: Decimal = references
            .iter()
            .map(|reference| Decimal::from(reference.days_beyond_terms))
            .sum();
        (total / Decimal::from(references.len())).round_dp(2)
    });
    let worst = references
        .iter()
        .filter_map(|reference| reference.experience)
        .max();
    put(
        CharacteristicSource::TradeReferences,
        "trade_reference_count",
        InputValue::Number(Decimal::from(references.len())),
        &references_origin,
    );
    put(
        CharacteristicSource::TradeReferences,
        "average_days_beyond_terms",
        average_days.map_or(InputValue::Missing, InputValue::Number),
        &references_origin,
    );
    put(
        CharacteristicSource::TradeReferences,
        "worst_payment_experience",
        worst.map_or(InputValue::Missing, |worst| {
            InputValue::Category(worst.as_str().to_owned())
        }),
        &references_origin,
    );

    let payment = facts.payment_behaviour.as_ref();
    let payment_origin = payment
        .map(|payment| format!("payment_behaviour:{}", payment.as_of))
        .unwrap_or_default();
    let payment_values = [
        (
            "max_days_overdue_12m",
            payment.map(|payment| Decimal::from(payment.max_days_overdue_12m)),
        ),
        (
            "on_time_payment_ratio",
            payment.and_then(|payment| payment.on_time_payment_ratio),
        ),
        (
            "average_days_to_pay",
            payment.and_then(|payment| payment.average_days_to_pay),
        ),
        (
            "broken_promises_12m",
            payment.map(|payment| Decimal::from(payment.broken_promises_12m)),
        ),
    ];
    for (key, value) in payment_values {
        put(
            CharacteristicSource::PaymentBehaviour,
            key,
            value.map_or(InputValue::Missing, InputValue::Number),
            &payment_origin,
        );
    }

    let customer_values = [
        (
            "years_in_business",
            facts
                .founding_date
                .and_then(|founded| full_years(founded, as_of))
                .map(|years| InputValue::Number(years.into())),
        ),
        (
            "age_years",
            facts
                .birth_date
                .and_then(|born| full_years(born, as_of))
                .map(|years| InputValue::Number(years.into())),
        ),
        ("annual_income", facts.annual_income.map(InputValue::Number)),
        (
            "industry_code",
            (!facts.industry_code.is_empty())
                .then(|| InputValue::Category(facts.industry_code.clone())),
        ),
        (
            "country",
            (!facts.country.is_empty()).then(|| InputValue::Category(facts.country.clone())),
        ),
    ];
    for (key, value) in customer_values {
        put(
            CharacteristicSource::Customer,
            key,
            value.unwrap_or(InputValue::Missing),
            "customer",
        );
    }

    // Data points: each value the customer has, a date as the days from it to the rating. A
    // data point the model reads and the customer lacks is missing, as any absent key.
    for fact in &facts.data_points {
        let value = match &fact.reading {
            DataPointReading::Number(number) => InputValue::Number(*number),
            DataPointReading::Category(category) => InputValue::Category(category.clone()),
            DataPointReading::Date(date) => {
                InputValue::Number(Decimal::from((as_of - *date).num_days()))
            }
        };
        let origin = match (fact.set_at, fact.stale) {
            (Some(set_at), true) => format!("data_point:{} (set {set_at}, stale)", fact.code),
            (Some(set_at), false) => format!("data_point:{} (set {set_at})", fact.code),
            (None, _) => format!("data_point:{}", fact.code),
        };
        put(CharacteristicSource::DataPoint, &fact.code, value, &origin);
    }

    // Qualitative: given now, else carried over, else missing for the listed keys.
    let carried = previous
        .into_iter()
        .flat_map(RatingInputs::iter)
        .filter(|input| {
            input.source == CharacteristicSource::Qualitative && input.value != InputValue::Missing
        });
    for input in carried {
        put(
            CharacteristicSource::Qualitative,
            &input.key,
            input.value.clone(),
            &input.origin,
        );
    }
    for (key, value) in &qualitative.0 {
        put(
            CharacteristicSource::Qualitative,
            key,
            InputValue::Number((*value).into()),
            ANALYST_ORIGIN,
        );
    }
    for (key, _) in CharacteristicSource::Qualitative.known_keys() {
        if inputs.get(CharacteristicSource::Qualitative, key).is_none() {
            inputs.insert(RatingInput::new(
                CharacteristicSource::Qualitative,
                *key,
                InputValue::Missing,
                "",
            ));
        }
    }
    inputs
}

/// Whole years from `start` to `end` (a birthday or anniversary counts on its day); `None`
/// when `start` is after `end`.
pub fn full_years(start: NaiveDate, end: NaiveDate) -> Option<u32> {
    if start > end {
        return None;
    }
    let mut years = end.year() - start.year();
    if (end.month(), end.day()) < (start.month(), start.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

#[cfg(test)]
mod tests;
