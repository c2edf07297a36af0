#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use chrono::{TimeZone, Utc};

use super::*;

fn analyst() -> Actor {
    let mut actor = Actor::named("ana");
    actor.roles = vec!["ANALYST".to_owned()];
    actor
}

fn draft(code: &str, value_type: DataPointType) -> DefinitionDraft {
    DefinitionDraft {
        code: code.to_owned(),
        label_en: "Housing".to_owned(),
        value_type: Some(value_type),
        ..DefinitionDraft::default()
    }
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn housing() -> Definition {
    let mut draft = draft("housing", DataPointType::Category);
    draft.allowed_values = vec!["own".into(), "rent".into(), "for free".into()];
    draft.valid_days = 365;
    draft.check(None, &analyst(), at()).unwrap()
}

fn fields(violations: Violations) -> Vec<String> {
    match violations.finish() {
        Err(credit_core::ServiceError::InvalidArgument(list)) => {
            list.into_iter().map(|violation| violation.field).collect()
        }
        other => panic!("expected violations, got {other:?}"),
    }
}

#[test]
fn a_definition_names_every_problem_at_once() {
    let bad = DefinitionDraft {
        code: "Bad Code".into(),
        value_type: Some(DataPointType::Category),
        valid_days: -1,
        currency: "EUR".into(),
        ..DefinitionDraft::default()
    };
    let problems = fields(bad.check(None, &analyst(), at()).unwrap_err());
    assert_eq!(
        problems,
        [
            "definition.code",
            "definition.label_en",
            "definition.valid_days",
            "definition.allowed_values",
            "definition.currency"
        ]
    );
}

#[test]
fn type_and_currency_never_change_and_versions_count_up() {
    let first = housing();
    assert_eq!(first.version, 1);
    let mut same = draft("housing", DataPointType::Category);
    same.allowed_values = vec!["own".into(), "rent".into()];
    assert_eq!(
        same.check(Some(&first), &analyst(), at()).unwrap().version,
        2
    );
    let mut retyped = draft("housing", DataPointType::Number);
    retyped.allowed_values.clear();
    let problems = fields(retyped.check(Some(&first), &analyst(), at()).unwrap_err());
    assert_eq!(problems, ["definition.type"]);
}

#[test]
fn values_are_checked_against_their_definition() {
    let housing = housing();
    assert_eq!(
        housing.check_value(RawValue::Category("rent".into())),
        Ok(DataPointValue::Category("rent".into()))
    );
    assert!(
        housing
            .check_value(RawValue::Category("castle".into()))
            .is_err()
    );
    assert!(housing.check_value(RawValue::Number("3".into())).is_err());

    let mut income = draft("other_income", DataPointType::Money);
    income.currency = "CNY".into();
    let income = income.check(None, &analyst(), at()).unwrap();
    let money = |amount: &str, currency: &str| RawValue::Money {
        amount: amount.into(),
        currency: currency.into(),
    };
    assert_eq!(
        income.check_value(money("1200.5", "CNY")),
        Ok(DataPointValue::Money(
            Money::parse("1200.50", "CNY").unwrap()
        ))
    );
    let refused = income.check_value(money("1200", "EUR")).unwrap_err();
    assert!(refused.contains("CNY"), "{refused}");
}

#[test]
fn a_value_is_valid_for_the_definitions_days() {
    let housing = housing();
    let until = housing.valid_until(at()).unwrap();
    assert_eq!(until, Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap());
    let mut forever = draft("years_at_address", DataPointType::Number);
    forever.valid_days = 0;
    assert_eq!(
        forever
            .check(None, &analyst(), at())
            .unwrap()
            .valid_until(at()),
        None
    );
}

#[test]
fn a_change_is_refused_whole_and_setters_are_respected() {
    let housing = housing();
    let mut gm_only = draft("site_visit_score", DataPointType::Number);
    gm_only.setter_roles = vec![Role::GeneralManager];
    let gm_only = gm_only.check(None, &analyst(), at()).unwrap();
    let definitions = [housing, gm_only];
    let definition_of = |code: &str| {
        definitions
            .iter()
            .find(|definition| definition.code == code)
    };
    let actor = analyst();
    let origin = ChangeOrigin {
        change_id: "dpc_1",
        source: DataPointSource::Api,
        source_reference: "",
        actor: &actor,
        note: "",
        at: at(),
    };
    let mut ids = 0;
    let mut new_id = || {
        ids += 1;
        format!("dpv_{ids}")
    };
    let entry = |code: &str, value: Option<RawValue>| RawEntry {
        code: code.into(),
        value,
    };
    let bad = check_change(
        vec![
            entry("housing", Some(RawValue::Category("castle".into()))),
            entry("unknown", None),
        ],
        definition_of,
        CustomerKind::Individual,
        "cus_1",
        &origin,
        "values",
        &mut new_id,
    );
    let Err(ChangeRefused::Invalid(violations)) = bad else {
        panic!("expected violations")
    };
    assert_eq!(fields(violations), ["values[0].value", "values[1].code"]);

    let refused = check_change(
        vec![entry(
            "site_visit_score",
            Some(RawValue::Number("4".into())),
        )],
        definition_of,
        CustomerKind::Individual,
        "cus_1",
        &origin,
        "values",
        &mut new_id,
    );
    assert!(
        matches!(refused, Err(ChangeRefused::SetterRoleRequired(codes)) if codes == ["site_visit_score"])
    );

    let records = check_change(
        vec![entry("housing", Some(RawValue::Category("own".into())))],
        definition_of,
        CustomerKind::Individual,
        "cus_1",
        &origin,
        "values",
        &mut new_id,
    )
    .unwrap();
    assert_eq!(
        records[0].value,
        Some(DataPointValue::Category("own".into()))
    );
    assert!(!records[0].is_stale(at()));
    assert!(records[0].is_stale(at() + chrono::Duration::days(365)));
}

#[test]
fn a_value_written_as_text_is_read_by_the_definitions_type() {
    let housing = housing();
    assert_eq!(
        housing.check_value(RawValue::Text(" rent ".into())),
        Ok(DataPointValue::Category("rent".into()))
    );
    let visited = draft("site_visited", DataPointType::YesNo)
        .check(None, &analyst(), at())
        .unwrap();
    assert_eq!(
        visited.check_value(RawValue::Text("是".into())),
        Ok(DataPointValue::YesNo(true))
    );
    assert!(visited.check_value(RawValue::Text("maybe".into())).is_err());
    let licence = draft("licence_expiry", DataPointType::Date)
        .check(None, &analyst(), at())
        .unwrap();
    assert_eq!(
        licence.check_value(RawValue::Text("2027-06-30".into())),
        Ok(DataPointValue::Date(
            NaiveDate::from_ymd_opt(2027, 6, 30).unwrap()
        ))
    );
    let mut capital = draft("paid_in_capital", DataPointType::Money);
    capital.currency = "CNY".into();
    let capital = capital.check(None, &analyst(), at()).unwrap();
    assert_eq!(
        capital.check_value(RawValue::Text("5000000".into())),
        Ok(DataPointValue::Money(
            Money::parse("5000000.00", "CNY").unwrap()
        ))
    );
}
