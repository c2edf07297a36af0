//! Tests that the shipped models pass every check and rate typical profiles as documented.

use super::*;
use crate::domain::model::ScorecardModel;
use crate::domain::scoring::{InputValue, RatingInput, RatingInputs, ScoreResult, score};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::str::FromStr;

fn enterprise() -> ScorecardModel {
    ScorecardModel::try_from(enterprise_default()).unwrap()
}

fn individual() -> ScorecardModel {
    ScorecardModel::try_from(individual_default()).unwrap()
}

/// Inputs keyed like the model's characteristics: (characteristic code, value).
fn profile(model: &ScorecardModel, values: &[(&str, &str)]) -> RatingInputs {
    let mut inputs = RatingInputs::new();
    for (code, value) in values {
        let characteristic = model
            .characteristics()
            .iter()
            .find(|characteristic| characteristic.code == *code)
            .unwrap();
        let value = match Decimal::from_str(value) {
            Ok(number) => InputValue::Number(number),
            Err(_) => InputValue::Category((*value).to_owned()),
        };
        inputs.insert(RatingInput::new(
            characteristic.source,
            characteristic.input_key.clone(),
            value,
            "test",
        ));
    }
    inputs
}

fn rank(model: &ScorecardModel, result: &ScoreResult) -> u32 {
    model.master_scale().grade(&result.grade).unwrap().rank
}

#[test]
fn both_shipped_models_validate() {
    let enterprise = enterprise();
    assert_eq!(enterprise.model_id().as_str(), ENTERPRISE_DEFAULT);
    assert_eq!(
        (enterprise.min_score(), enterprise.max_score()),
        (dec!(255), dec!(1000))
    );
    let individual = individual();
    assert_eq!(individual.model_id().as_str(), INDIVIDUAL_DEFAULT);
    assert_eq!(
        (individual.min_score(), individual.max_score()),
        (dec!(300), dec!(1000))
    );
    assert_eq!(shipped_models().len(), 2);
    for model in [&enterprise, &individual] {
        assert_eq!(model.master_scale().scale_id(), scale::AGENCY_8);
        assert!(model.is_default_for_kind());
    }
}

#[test]
fn the_shipped_models_also_fit_the_five_tier_scale() {
    for mut proto in shipped_models() {
        proto.master_scale = Some(scale::five_tier());
        assert!(ScorecardModel::try_from(proto).is_ok());
    }
}

#[test]
fn every_family_is_covered_by_the_enterprise_model() {
    use crate::domain::model::IndicatorFamily::*;
    let model = enterprise();
    for family in [
        FinancialStrength,
        Operations,
        Solvency,
        Collateral,
        PaymentBehaviour,
    ] {
        assert!(
            model
                .characteristics()
                .iter()
                .any(|c| c.family == Some(family))
        );
    }
}

#[test]
fn a_strong_enterprise_rates_a_or_better() {
    let model = enterprise();
    let inputs = profile(
        &model,
        &[
            ("ALTMAN_Z_SCORE", "3.1"),
            ("NET_MARGIN", "0.06"),
            ("REVENUE", "80000000"),
            ("YEARS_IN_BUSINESS", "15"),
            ("MANAGEMENT_QUALITY", "4"),
            ("MARKET_POSITION", "4"),
            ("INDUSTRY_OUTLOOK", "3"),
            ("CURRENT_RATIO", "1.8"),
            ("DEBT_TO_ASSETS", "0.45"),
            ("INTEREST_COVERAGE", "5"),
            ("COLLATERAL_COVERAGE", "2"),
            ("MAX_DAYS_OVERDUE_12M", "3"),
            ("ON_TIME_PAYMENT_RATIO", "0.92"),
            ("AVERAGE_DAYS_TO_PAY", "38"),
            ("BROKEN_PROMISES_12M", "0"),
            ("BUREAU_SCORE", "76"),
            ("WORST_PAYMENT_EXPERIENCE", "PROMPT"),
        ],
    );
    let result = score(&model, &inputs).unwrap();
    // 250 + 65+40+35 + 35+30+22+14 + 50+45+40 + 10 + 55+35+20+25+30+25 = 826
    assert_eq!(result.score, dec!(826));
    assert_eq!(result.grade, "AA");
    assert!(
        rank(&model, &result) <= 3,
        "strong profile got {}",
        result.grade
    );
}

#[test]
fn a_weak_enterprise_rates_b_or_worse() {
    let model = enterprise();
    let inputs = profile(
        &model,
        &[
            ("ALTMAN_Z_SCORE", "0.9"),
            ("NET_MARGIN", "0.01"),
            ("REVENUE", "4000000"),
            ("YEARS_IN_BUSINESS", "3"),
            ("MANAGEMENT_QUALITY", "3"),
            ("MARKET_POSITION", "2"),
            ("INDUSTRY_OUTLOOK", "2"),
            ("CURRENT_RATIO", "0.9"),
            ("DEBT_TO_ASSETS", "0.8"),
            ("INTEREST_COVERAGE", "1.2"),
            ("MAX_DAYS_OVERDUE_12M", "45"),
            ("ON_TIME_PAYMENT_RATIO", "0.6"),
            ("AVERAGE_DAYS_TO_PAY", "70"),
            ("BROKEN_PROMISES_12M", "2"),
            ("BUREAU_SCORE", "50"),
            ("WORST_PAYMENT_EXPERIENCE", "SLOW"),
        ],
    );
    let result = score(&model, &inputs).unwrap();
    // 250 + 15+10+15 + 10+20+8+7 + 15+10+10 + 0 + 15+10+5+5+10+10 = 425
    assert_eq!(result.score, dec!(425));
    assert_eq!(result.grade, "CCC");
    assert!(
        rank(&model, &result) >= 6,
        "weak profile got {}",
        result.grade
    );
    let codes: Vec<&str> = result.reasons.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "ALTMAN_Z_SCORE",
            "MAX_DAYS_OVERDUE_12M",
            "DEBT_TO_ASSETS",
            "CURRENT_RATIO"
        ]
    );
}

#[test]
fn an_enterprise_without_any_data_rates_middling_to_poor() {
    let model = enterprise();
    let result = score(&model, &RatingInputs::new()).unwrap();
    // 250 + the missing points (226) = 476: B.
    assert_eq!(result.score, dec!(476));
    assert_eq!(result.grade, "B");
    let rank = rank(&model, &result);
    assert!((4..=7).contains(&rank), "no data got {}", result.grade);
    assert_eq!(result.reasons.len(), 4);
}

#[test]
fn individuals_rate_by_payment_behaviour_and_bureau_first() {
    let model = individual();
    let strong = profile(
        &model,
        &[
            ("ANNUAL_INCOME", "150000"),
            ("AGE_YEARS", "41"),
            ("LAWSUITS_COUNT", "0"),
            ("BUREAU_SCORE", "760"),
            ("MAX_DAYS_OVERDUE_12M", "0"),
            ("ON_TIME_PAYMENT_RATIO", "1"),
            ("BROKEN_PROMISES_12M", "0"),
            ("AVERAGE_DAYS_TO_PAY", "20"),
        ],
    );
    let result = score(&model, &strong).unwrap();
    // 280 + 65 + 45 + 60 + 0 + 150 + 120 + 80 + 50 + 40 = 890
    assert_eq!((result.score, result.grade.as_str()), (dec!(890), "AAA"));
    let empty = score(&model, &RatingInputs::new()).unwrap();
    // 280 + 15+15+30+0+50+55+35+25+18 = 523
    assert_eq!((empty.score, empty.grade.as_str()), (dec!(523), "B"));
    let late = profile(
        &model,
        &[
            ("BUREAU_SCORE", "540"),
            ("MAX_DAYS_OVERDUE_12M", "75"),
            ("ON_TIME_PAYMENT_RATIO", "0.55"),
            ("BROKEN_PROMISES_12M", "3"),
        ],
    );
    let result = score(&model, &late).unwrap();
    assert!(
        rank(&model, &result) >= 7,
        "late payer got {}",
        result.grade
    );
}

/// docs/rating-models.md is what credit managers read; it must not drift from the code.
#[test]
fn every_shipped_characteristic_is_documented_with_its_points() {
    let doc = include_str!("../../../../../docs/rating-models.md");
    for proto in shipped_models() {
        let model = ScorecardModel::try_from(proto).unwrap();
        for characteristic in model.characteristics() {
            let code = &characteristic.code;
            assert!(
                doc.contains(&format!("**{code}**")),
                "{code} is not documented"
            );
            let mut points = characteristic.bins.points();
            points.push(characteristic.missing_points);
            let row_end: String = points.iter().map(|p| format!(" {p} |")).collect();
            assert!(
                doc.lines().any(|line| line.ends_with(&row_end)),
                "no table row of the doc ends with the points of {code}:{row_end}"
            );
        }
    }
}

#[test]
fn input_keys_are_those_the_contract_lists() {
    for proto in shipped_models() {
        let model = ScorecardModel::try_from(proto).unwrap();
        for characteristic in model.characteristics() {
            let listed = characteristic
                .source
                .known_keys()
                .iter()
                .any(|(key, _)| *key == characteristic.input_key);
            assert!(listed, "{} reads an unlisted key", characteristic.code);
        }
    }
}
