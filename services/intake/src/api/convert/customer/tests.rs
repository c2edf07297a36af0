//! The customer conversions and checks, exercised through the wire messages callers send.

use super::*;
use crate::domain::customer::{FieldChange, diff};
use crate::domain::uscc;
use chrono::Utc;
use credit_core::Actor;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
}

fn valid_uscc() -> String {
    let first = "91350100M000100Y4";
    format!("{first}{}", uscc::check_character(first).unwrap())
}

fn enterprise(registration_number: &str) -> pb::Customer {
    pb::Customer {
        kind: pb::CustomerKind::Enterprise as i32,
        country: "CN".into(),
        details: Some(pb::customer::Details::Enterprise(pb::EnterpriseDetails {
            legal_name: "Xiamen Harbour Trading Co., Ltd.".into(),
            registration_number: registration_number.into(),
            registered_capital: Some(pb::Money {
                amount: "5000000.00".into(),
                currency: "CNY".into(),
            }),
            legal_representative: "Chen Wei".into(),
            industry_code: "F51".into(),
            founding_date: Some(pb::Date {
                year: 2009,
                month: 4,
                day: 1,
            }),
        })),
        contacts: vec![pb::Contact {
            name: "Lin Fang".into(),
            role: "finance".into(),
            phone: "+86 592 555 0100".into(),
            email: "Lin.Fang@example.cn".into(),
            primary: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn individual() -> pb::Customer {
    pb::Customer {
        kind: pb::CustomerKind::Individual as i32,
        country: "CN".into(),
        details: Some(pb::customer::Details::Individual(pb::IndividualDetails {
            full_name: "Wang Lei".into(),
            national_id: "11010519491231002X".into(),
            birth_date: Some(pb::Date {
                year: 1949,
                month: 12,
                day: 31,
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn violated_fields(error: ServiceError) -> Vec<String> {
    match error {
        ServiceError::InvalidArgument(violations) => violations
            .into_iter()
            .map(|violation| violation.field)
            .collect(),
        other => panic!("expected invalid argument, got {other:?}"),
    }
}

#[test]
fn accepts_a_complete_enterprise_and_normalises_it() {
    let parsed = parse_customer(
        &enterprise(&valid_uscc().to_lowercase()),
        today(),
        "customer",
    )
    .unwrap();
    assert_eq!(parsed.country, "CN");
    assert_eq!(
        parsed.profile.registration_number(),
        Some(valid_uscc().as_str())
    );
    assert_eq!(
        parsed.profile.contacts[0].email.as_ref().unwrap().expose(),
        "lin.fang@example.cn"
    );
}

#[test]
fn a_wrong_uscc_check_character_is_a_violation_of_that_field() {
    let mut code = valid_uscc();
    let last = code.pop().unwrap();
    code.push(if last == '0' { '1' } else { '0' });
    let fields =
        violated_fields(parse_customer(&enterprise(&code), today(), "customer").unwrap_err());
    assert_eq!(fields, ["customer.enterprise.registration_number"]);
}

#[test]
fn other_countries_take_a_plain_registration_number() {
    let mut customer = enterprise("HRB 12345");
    customer.country = "DE".into();
    assert!(parse_customer(&customer, today(), "customer").is_ok());
}

#[test]
fn reports_every_problem_at_once() {
    let mut customer = enterprise("");
    customer.country = "China".into();
    if let Some(pb::customer::Details::Enterprise(details)) = &mut customer.details {
        details.legal_name = " ".into();
        details.registered_capital = Some(pb::Money {
            amount: "-1".into(),
            currency: "CNY".into(),
        });
        details.founding_date = Some(pb::Date {
            year: 2099,
            month: 1,
            day: 1,
        });
    }
    customer.contacts[0].email = "not-an-email".into();
    customer.contacts[0].phone = "12".into();
    let fields = violated_fields(parse_customer(&customer, today(), "customer").unwrap_err());
    for expected in [
        "customer.country",
        "customer.enterprise.legal_name",
        "customer.enterprise.registration_number",
        "customer.enterprise.registered_capital",
        "customer.enterprise.founding_date",
        "customer.contacts[0].phone",
        "customer.contacts[0].email",
    ] {
        assert!(
            fields.contains(&expected.to_owned()),
            "{expected} missing from {fields:?}"
        );
    }
}

#[test]
fn kind_must_match_the_details() {
    let mut customer = individual();
    customer.kind = pb::CustomerKind::Enterprise as i32;
    assert_eq!(
        violated_fields(parse_customer(&customer, today(), "customer").unwrap_err()),
        ["customer.kind"]
    );
}

#[test]
fn national_ids_are_redacted_in_debug_and_masked_on_request() {
    let parsed = parse_customer(&individual(), today(), "customer").unwrap();
    let debug = format!("{parsed:?}");
    assert!(!debug.contains("11010519491231002X"), "{debug}");
    let Details::Individual(person) = &parsed.profile.details else {
        unreachable!()
    };
    assert_eq!(person.national_id.masked(), "**************002X");
}

#[test]
fn invalid_national_ids_are_not_echoed() {
    let mut customer = individual();
    if let Some(pb::customer::Details::Individual(details)) = &mut customer.details {
        details.national_id = "secret value with spaces".into();
    }
    let ServiceError::InvalidArgument(violations) =
        parse_customer(&customer, today(), "customer").unwrap_err()
    else {
        unreachable!()
    };
    assert!(
        violations
            .iter()
            .all(|violation| !violation.description.contains("secret"))
    );
}

fn stored(profile: Profile) -> Customer {
    let now = Utc::now();
    let actor = Actor {
        principal_id: "ana-id".into(),
        person_id: String::new(),
        name: "ana".into(),
        roles: vec!["ANALYST".into()],
    };
    Customer {
        id: "cus_1".into(),
        country: "CN".into(),
        status: CustomerStatus::Prospect,
        status_reason: String::new(),
        status_changed_at: now,
        group_id: None,
        group_joined_at: None,
        profile,
        version: 1,
        created_at: now,
        created_by: actor.clone(),
        updated_at: now,
        updated_by: actor,
    }
}

#[test]
fn updates_touch_only_masked_fields_and_the_diff_names_them() {
    let current = stored(
        parse_customer(&enterprise(&valid_uscc()), today(), "customer")
            .unwrap()
            .profile,
    );
    let mut patch = enterprise("IGNORED");
    if let Some(pb::customer::Details::Enterprise(details)) = &mut patch.details {
        details.legal_name = "Xiamen Harbour Group".into();
        details.industry_code = "IGNORED-NOT-IN-MASK".into();
    }
    let profile = apply_update(
        &current,
        &patch,
        &["enterprise.legal_name".to_owned()],
        today(),
    )
    .unwrap();
    assert_eq!(profile.display_name(), "Xiamen Harbour Group");
    assert_eq!(profile.industry_code(), "F51");
    let changes = diff(&current.profile, &profile);
    assert_eq!(
        changes,
        [FieldChange {
            field: "enterprise.legal_name".into(),
            old_value: "Xiamen Harbour Trading Co., Ltd.".into(),
            new_value: "Xiamen Harbour Group".into(),
        }]
    );
}

#[test]
fn identity_fields_cannot_be_updated() {
    let current = stored(
        parse_customer(&enterprise(&valid_uscc()), today(), "customer")
            .unwrap()
            .profile,
    );
    for path in [
        "enterprise.registration_number",
        "country",
        "kind",
        "status",
        "individual.full_name",
    ] {
        let error = apply_update(
            &current,
            &enterprise(&valid_uscc()),
            &[path.to_owned()],
            today(),
        )
        .unwrap_err();
        assert_eq!(violated_fields(error), ["update_mask"], "{path}");
    }
}

#[test]
fn personal_data_is_masked_in_the_audit_diff() {
    let current = stored(
        parse_customer(&individual(), today(), "customer")
            .unwrap()
            .profile,
    );
    let mut patch = individual();
    if let Some(pb::customer::Details::Individual(details)) = &mut patch.details {
        details.national_id = "110105194912310011".into();
    }
    let profile = apply_update(
        &current,
        &patch,
        &["individual.national_id".to_owned()],
        today(),
    )
    .unwrap();
    let changes = diff(&current.profile, &profile);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].old_value, "**************002X");
    assert_eq!(changes[0].new_value, "**************0011");
}

/// Issue #19: the diff compared masked values, so these changes were dropped.
#[test]
fn personal_data_that_keeps_its_last_four_characters_still_changes() {
    let current = stored(
        parse_customer(&enterprise(&valid_uscc()), today(), "customer")
            .unwrap()
            .profile,
    );
    let mut patch = enterprise(&valid_uscc());
    patch.contacts[0].phone = "+86 593 555 0100".into();
    patch.contacts[0].email = "lin.feng@example.cn".into();
    let profile = apply_update(&current, &patch, &["contacts".to_owned()], today()).unwrap();
    let changes = diff(&current.profile, &profile);
    let fields: Vec<&str> = changes.iter().map(|change| change.field.as_str()).collect();
    assert_eq!(fields, ["contacts[0].email", "contacts[0].phone"]);
    for change in &changes {
        assert!(change.old_value.starts_with('*'), "{change:?}");
        assert!(change.new_value.starts_with('*'), "{change:?}");
    }
    assert!(!format!("{changes:?}").contains("555"));

    let individual_now = stored(
        parse_customer(&individual(), today(), "customer")
            .unwrap()
            .profile,
    );
    let mut patch = individual();
    if let Some(pb::customer::Details::Individual(details)) = &mut patch.details {
        details.national_id = "11010519500101002X".into();
    }
    let profile = apply_update(
        &individual_now,
        &patch,
        &["individual.national_id".to_owned()],
        today(),
    )
    .unwrap();
    let changes = diff(&individual_now.profile, &profile);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].field, "individual.national_id");
}

#[test]
fn the_same_values_again_are_no_change() {
    let current = stored(
        parse_customer(&individual(), today(), "customer")
            .unwrap()
            .profile,
    );
    // A lower-case id normalises to the stored one: still no change.
    let mut patch = individual();
    if let Some(pb::customer::Details::Individual(details)) = &mut patch.details {
        details.national_id = "11010519491231002x".into();
    }
    let profile = apply_update(
        &current,
        &patch,
        &["individual.national_id".to_owned(), "contacts".to_owned()],
        today(),
    )
    .unwrap();
    assert_eq!(diff(&current.profile, &profile), []);
}
