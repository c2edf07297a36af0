//! Tests of gathering a rating's inputs from a credit file, and of the qualitative inputs.

use super::*;
use rust_decimal_macros::dec;

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

fn enterprise() -> CreditFacts {
    CreditFacts {
        kind: CustomerKind::Enterprise,
        industry_code: "C3311".into(),
        country: "CN".into(),
        founding_date: Some(date(2016, 7, 1)),
        birth_date: None,
        annual_income: None,
        statement: Some(StatementFacts {
            statement_id: "st_1".into(),
            figures: BTreeMap::from([("current_ratio", dec!(1.2500)), ("revenue", dec!(1000))]),
        }),
        bureau_report: None,
        trade_references: vec![
            TradeReferenceFacts {
                days_beyond_terms: 0,
                experience: Some(PaymentExperience::Prompt),
            },
            TradeReferenceFacts {
                days_beyond_terms: 15,
                experience: Some(PaymentExperience::Slow),
            },
            TradeReferenceFacts {
                days_beyond_terms: 4,
                experience: None,
            },
        ],
        payment_behaviour: None,
        data_points: Vec::new(),
    }
}

fn value(inputs: &RatingInputs, source: CharacteristicSource, key: &str) -> InputValue {
    inputs.get(source, key).unwrap().value.clone()
}

#[test]
fn every_listed_key_is_in_the_snapshot_and_absent_facts_are_missing() {
    let inputs = gather(
        &enterprise(),
        &QualitativeInputs::default(),
        None,
        date(2026, 6, 30),
    );
    use CharacteristicSource::*;
    for source in [
        FinancialStatement,
        BureauReport,
        TradeReferences,
        PaymentBehaviour,
        Customer,
        Qualitative,
    ] {
        for (key, _) in source.known_keys() {
            assert!(inputs.get(source, key).is_some(), "{source:?} {key}");
        }
    }
    assert_eq!(
        value(&inputs, FinancialStatement, "current_ratio"),
        InputValue::Number(dec!(1.25))
    );
    assert_eq!(
        inputs
            .get(FinancialStatement, "current_ratio")
            .unwrap()
            .origin,
        "statement:st_1"
    );
    assert_eq!(
        value(&inputs, FinancialStatement, "debt_to_assets"),
        InputValue::Missing
    );
    assert_eq!(value(&inputs, BureauReport, "score"), InputValue::Missing);
    assert_eq!(
        value(&inputs, PaymentBehaviour, "max_days_overdue_12m"),
        InputValue::Missing
    );
    assert_eq!(
        value(&inputs, Qualitative, "management_quality"),
        InputValue::Missing
    );
}

#[test]
fn trade_references_give_count_average_and_the_worst_experience() {
    let inputs = gather(
        &enterprise(),
        &QualitativeInputs::default(),
        None,
        date(2026, 6, 30),
    );
    use CharacteristicSource::TradeReferences;
    assert_eq!(
        value(&inputs, TradeReferences, "trade_reference_count"),
        InputValue::Number(dec!(3))
    );
    // (0 + 15 + 4) / 3 = 6.333... -> 6.33
    assert_eq!(
        value(&inputs, TradeReferences, "average_days_beyond_terms"),
        InputValue::Number(dec!(6.33))
    );
    assert_eq!(
        value(&inputs, TradeReferences, "worst_payment_experience"),
        InputValue::Category("SLOW".into())
    );
    let mut none = enterprise();
    none.trade_references.clear();
    let inputs = gather(
        &none,
        &QualitativeInputs::default(),
        None,
        date(2026, 6, 30),
    );
    assert_eq!(
        value(&inputs, TradeReferences, "trade_reference_count"),
        InputValue::Number(dec!(0))
    );
    assert_eq!(
        value(&inputs, TradeReferences, "average_days_beyond_terms"),
        InputValue::Missing
    );
}

#[test]
fn years_in_business_count_whole_years_to_the_rating_date() {
    let facts = enterprise();
    let before_anniversary = gather(
        &facts,
        &QualitativeInputs::default(),
        None,
        date(2026, 6, 30),
    );
    let on_anniversary = gather(
        &facts,
        &QualitativeInputs::default(),
        None,
        date(2026, 7, 1),
    );
    use CharacteristicSource::Customer;
    assert_eq!(
        value(&before_anniversary, Customer, "years_in_business"),
        InputValue::Number(dec!(9))
    );
    assert_eq!(
        value(&on_anniversary, Customer, "years_in_business"),
        InputValue::Number(dec!(10))
    );
    assert_eq!(full_years(date(2027, 1, 1), date(2026, 1, 1)), None);
    assert_eq!(full_years(date(2000, 2, 29), date(2026, 2, 28)), Some(25));
}

#[test]
fn qualitative_inputs_given_win_and_the_others_carry_over_with_their_origin() {
    let wire = std::collections::BTreeMap::from([("market_position".to_owned(), 4)]);
    let given = QualitativeInputs::parse(&wire).unwrap();
    let mut previous = RatingInputs::new();
    previous.insert(RatingInput::new(
        CharacteristicSource::Qualitative,
        "management_quality",
        InputValue::Number(dec!(2)),
        "analyst",
    ));
    previous.insert(RatingInput::new(
        CharacteristicSource::Qualitative,
        "market_position",
        InputValue::Number(dec!(1)),
        "analyst",
    ));
    let inputs = gather(&enterprise(), &given, Some(&previous), date(2026, 6, 30));
    use CharacteristicSource::Qualitative;
    assert_eq!(
        value(&inputs, Qualitative, "market_position"),
        InputValue::Number(dec!(4))
    );
    assert_eq!(
        value(&inputs, Qualitative, "management_quality"),
        InputValue::Number(dec!(2))
    );
    assert_eq!(
        value(&inputs, Qualitative, "industry_outlook"),
        InputValue::Missing
    );
}

#[test]
fn qualitative_inputs_off_the_scale_or_badly_named_are_refused_each_by_key() {
    let wire = std::collections::BTreeMap::from([
        ("management_quality".to_owned(), 6),
        ("Market Position".to_owned(), 3),
        ("industry_outlook".to_owned(), 0),
    ]);
    let Err(InvalidFields(violations)) = QualitativeInputs::parse(&wire) else {
        panic!("expected INVALID_ARGUMENT");
    };
    let fields: Vec<&str> = violations
        .iter()
        .map(|violation| violation.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "qualitative_inputs[Market Position]",
            "qualitative_inputs[industry_outlook]",
            "qualitative_inputs[management_quality]",
        ]
    );
}

#[test]
fn data_points_enter_the_snapshot_a_date_as_days_to_the_rating() {
    let mut facts = enterprise();
    facts.data_points = vec![
        DataPointFact {
            code: "housing".into(),
            reading: DataPointReading::Category("own".into()),
            set_at: Some(date(2026, 1, 5)),
            stale: false,
        },
        DataPointFact {
            code: "licence_expiry".into(),
            reading: DataPointReading::Date(date(2026, 3, 31)),
            set_at: Some(date(2025, 4, 1)),
            stale: true,
        },
    ];
    let inputs = gather(
        &facts,
        &QualitativeInputs::default(),
        None,
        date(2026, 3, 1),
    );
    let housing = inputs
        .get(CharacteristicSource::DataPoint, "housing")
        .unwrap();
    assert_eq!(housing.value, InputValue::Category("own".into()));
    assert_eq!(housing.origin, "data_point:housing (set 2026-01-05)");
    let expiry = inputs
        .get(CharacteristicSource::DataPoint, "licence_expiry")
        .unwrap();
    assert_eq!(expiry.value, InputValue::Number(dec!(-30)));
    assert!(expiry.origin.ends_with("stale)"), "{}", expiry.origin);
    assert!(
        inputs
            .get(CharacteristicSource::DataPoint, "tenure")
            .is_none()
    );
}
