//! Property tests of intake's request decoders (issue #19): whatever a caller sends — any
//! text, unicode or huge, any number, any field missing — checking it never panics, and a
//! request that is refused is refused as INVALID_ARGUMENT with field violations under the
//! request's own field, never as another error. What passes is stable: checked again, a
//! stored customer reads the same (UpdateCustomer re-checks the stored customer).

use chrono::NaiveDate;
use credit_core::{Actor, ServiceError};
use credit_proto::v1 as pb;
use proptest::option;
use proptest::prelude::*;

use crate::api::convert::{
    apply_update, check_import_row, customer_to_proto, parse_bureau_report, parse_customer,
    parse_group, parse_statement, parse_trade_reference,
};
use crate::domain::customer::{Customer, CustomerStatus, UPDATABLE_PATHS};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default()
}

/// Text as callers send it: mostly plausible, sometimes any unicode, control characters,
/// or hundreds of kilobytes.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[ -~]{0,24}",
        2 => "\\PC{0,40}",
        1 => any::<String>(),
        1 => (0usize..200_000).prop_map(|length| "9".repeat(length)),
        1 => (1usize..3_000).prop_map(|length| "數".repeat(length)),
    ]
    .boxed()
}

/// Amounts: decimals of any length and sign, exponents, and plain text.
fn amount() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "-?[0-9]{0,32}(\\.[0-9]{0,32})?",
        1 => "[0-9]{1,30}[eE][+-]?[0-9]{1,4}",
        1 => text(),
    ]
    .boxed()
}

fn money() -> BoxedStrategy<Option<pb::Money>> {
    option::of(
        (amount(), prop_oneof!["CNY", "USD", "[A-Z]{3}", text()])
            .prop_map(|(amount, currency)| pb::Money { amount, currency }),
    )
    .boxed()
}

/// Any numbers, with real dates among them.
fn date() -> BoxedStrategy<Option<pb::Date>> {
    let year = prop_oneof![1700..2100i32, any::<i32>()];
    let month = prop_oneof![1..13i32, any::<i32>()];
    let day = prop_oneof![1..32i32, any::<i32>()];
    option::of((year, month, day).prop_map(|(year, month, day)| pb::Date { year, month, day }))
        .boxed()
}

fn country() -> BoxedStrategy<String> {
    prop_oneof!["CN", "DE", "[a-zA-Z]{2}", text()].boxed()
}

fn enterprise() -> BoxedStrategy<pb::EnterpriseDetails> {
    (
        text(),
        prop_oneof![text(), "[0-9A-Z]{18}", "91350100M000100Y4[0-9A-Z]"],
        money(),
        text(),
        prop_oneof!["F51", text()],
        date(),
    )
        .prop_map(
            |(
                legal_name,
                registration_number,
                registered_capital,
                legal_representative,
                industry_code,
                founding_date,
            )| pb::EnterpriseDetails {
                legal_name,
                registration_number,
                registered_capital,
                legal_representative,
                industry_code,
                founding_date,
            },
        )
        .boxed()
}

fn individual() -> BoxedStrategy<pb::IndividualDetails> {
    (
        text(),
        prop_oneof!["[0-9X-]{4,32}", text()],
        date(),
        text(),
        text(),
        money(),
    )
        .prop_map(
            |(full_name, national_id, birth_date, occupation, employer, annual_income)| {
                pb::IndividualDetails {
                    full_name,
                    national_id,
                    birth_date,
                    occupation,
                    employer,
                    annual_income,
                }
            },
        )
        .boxed()
}

fn contact() -> BoxedStrategy<pb::Contact> {
    (
        text(),
        text(),
        text(),
        prop_oneof!["\\+?[0-9 ()-]{0,24}", text()],
        prop_oneof!["[a-z.]{1,10}@[a-z]{1,8}\\.[a-z]{2,3}", text()],
        any::<bool>(),
    )
        .prop_map(
            |(contact_id, name, role, phone, email, primary)| pb::Contact {
                contact_id,
                name,
                role,
                phone,
                email,
                primary,
            },
        )
        .boxed()
}

fn address() -> BoxedStrategy<Option<pb::PostalAddress>> {
    option::of(
        (
            proptest::collection::vec(text(), 0..7),
            text(),
            text(),
            text(),
            country(),
        )
            .prop_map(|(address_lines, locality, region, postal_code, country)| {
                pb::PostalAddress {
                    address_lines,
                    locality,
                    region,
                    postal_code,
                    country,
                }
            }),
    )
    .boxed()
}

fn customer() -> BoxedStrategy<pb::Customer> {
    let details = option::of(prop_oneof![
        enterprise().prop_map(pb::customer::Details::Enterprise),
        individual().prop_map(pb::customer::Details::Individual),
    ]);
    (
        prop_oneof![0..3i32, any::<i32>()],
        country(),
        details,
        address(),
        proptest::collection::vec(contact(), 0..24),
        text(),
    )
        .prop_map(
            |(kind, country, details, address, contacts, external_reference)| pb::Customer {
                kind,
                country,
                details,
                address,
                contacts,
                external_reference,
                ..Default::default()
            },
        )
        .boxed()
}

/// Customers that are mostly valid, with any unicode in their free text, so that the
/// property on accepted customers is exercised on many of them.
fn plausible_customer() -> BoxedStrategy<pb::Customer> {
    let valid_date = (1900..2020i32, 1..13i32, 1..29i32)
        .prop_map(|(year, month, day)| Some(pb::Date { year, month, day }));
    let capital = option::of("[0-9]{1,12}\\.[0-9]{2}".prop_map(|amount| pb::Money {
        amount,
        currency: "EUR".into(),
    }));
    let enterprise = (
        "\\PC{1,60}",
        "[A-Z0-9]{1,20}",
        capital.clone(),
        "\\PC{0,30}",
        "[A-Z0-9]{0,5}",
        valid_date.clone(),
    )
        .prop_map(
            |(
                legal_name,
                registration_number,
                registered_capital,
                legal_representative,
                industry_code,
                founding_date,
            )| {
                pb::customer::Details::Enterprise(pb::EnterpriseDetails {
                    legal_name,
                    registration_number,
                    registered_capital,
                    legal_representative,
                    industry_code,
                    founding_date,
                })
            },
        );
    let individual = (
        "\\PC{1,50}",
        "[0-9A-Za-z]{4,20}",
        valid_date,
        "\\PC{0,30}",
        capital,
    )
        .prop_map(
            |(full_name, national_id, birth_date, employer, annual_income)| {
                pb::customer::Details::Individual(pb::IndividualDetails {
                    full_name,
                    national_id,
                    birth_date,
                    employer,
                    annual_income,
                    ..Default::default()
                })
            },
        );
    let contact = (
        "\\PC{1,20}",
        "(\\+?[0-9]{6,15})?",
        "([a-zA-Z]{1,8}@[a-z]{1,8}\\.de)?",
        any::<bool>(),
    )
        .prop_map(|(name, phone, email, primary)| pb::Contact {
            name,
            phone,
            email,
            primary,
            ..Default::default()
        });
    let address = option::of(
        (proptest::collection::vec("\\PC{0,30}", 0..4), "\\PC{0,20}").prop_map(
            |(address_lines, locality)| pb::PostalAddress {
                address_lines,
                locality,
                country: "DE".into(),
                ..Default::default()
            },
        ),
    );
    (
        prop_oneof![enterprise, individual],
        address,
        proptest::collection::vec(contact, 0..4),
        "\\PC{0,20}",
    )
        .prop_map(
            |(details, address, contacts, external_reference)| pb::Customer {
                country: "DE".into(),
                details: Some(details),
                address,
                contacts,
                external_reference,
                ..Default::default()
            },
        )
        .boxed()
}

/// The refusal is INVALID_ARGUMENT, names at least one field, and only fields under `prefix`.
fn assert_refused_under(error: ServiceError, prefix: &str) -> Result<(), TestCaseError> {
    let ServiceError::InvalidArgument(violations) = error else {
        return Err(TestCaseError::fail(format!(
            "refused as {error:?}, not INVALID_ARGUMENT"
        )));
    };
    prop_assert!(!violations.is_empty());
    for violation in &violations {
        prop_assert!(
            violation.field.starts_with(prefix),
            "{} is not under {prefix}",
            violation.field
        );
        prop_assert!(!violation.description.is_empty());
    }
    Ok(())
}

fn stored(country: String, profile: crate::domain::customer::Profile) -> Customer {
    let now = chrono::Utc::now();
    let actor = Actor {
        principal_id: "ana-id".into(),
        person_id: String::new(),
        name: "ana".into(),
        roles: vec!["ANALYST".into()],
    };
    Customer {
        id: "cus_1".into(),
        country,
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_customer_is_checked_without_a_panic_and_what_passes_reads_back_the_same(
        wire in prop_oneof![customer(), plausible_customer()],
    ) {
        match parse_customer(&wire, today(), "customer") {
            Err(error) => assert_refused_under(error, "customer")?,
            Ok(parsed) => {
                // UpdateCustomer checks the stored customer again with the patch applied:
                // what was accepted once must be accepted again, unchanged.
                let customer = stored(parsed.country.clone(), parsed.profile.clone());
                let again = parse_customer(&customer_to_proto(&customer, true), today(), "customer");
                prop_assert!(again.is_ok(), "{again:?}");
                if let Ok(again) = again {
                    prop_assert_eq!(again, parsed);
                }
            }
        }
    }

    #[test]
    fn a_control_character_in_a_name_is_refused_at_that_field(
        mut wire in customer(),
        name in "[A-Za-z ]{1,20}",
        control in proptest::char::range('\u{0}', '\u{1f}'),
    ) {
        // Leading and trailing control characters such as '\n' are trimmed away: put it inside.
        let name = format!("A{control}{name}Z");
        let field = match &mut wire.details {
            Some(pb::customer::Details::Enterprise(details)) => {
                details.legal_name = name;
                "customer.enterprise.legal_name"
            }
            Some(pb::customer::Details::Individual(details)) => {
                details.full_name = name;
                "customer.individual.full_name"
            }
            None => return Ok(()),
        };
        let Err(ServiceError::InvalidArgument(violations)) =
            parse_customer(&wire, today(), "customer")
        else {
            return Err(TestCaseError::fail("a control character was accepted"));
        };
        prop_assert!(violations.iter().any(|violation| violation.field == field));
    }

    #[test]
    fn any_update_of_a_valid_customer_is_checked_without_a_panic(
        base in customer(),
        patch in customer(),
        paths in proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(UPDATABLE_PATHS).prop_map(str::to_owned),
                text(),
            ],
            0..5,
        ),
    ) {
        let Ok(parsed) = parse_customer(&base, today(), "customer") else {
            return Ok(());
        };
        let current = stored(parsed.country, parsed.profile);
        if let Err(error) = apply_update(&current, &patch, &paths, today()) {
            let ServiceError::InvalidArgument(violations) = error else {
                return Err(TestCaseError::fail(format!("refused as {error:?}")));
            };
            prop_assert!(!violations.is_empty());
        }
    }

    #[test]
    fn any_import_row_is_answered_without_a_panic(
        row_number in any::<i64>(),
        request_id in text(),
        customer in option::of(customer()),
        import_id in text(),
    ) {
        let row = pb::ImportCustomerRow { row_number, request_id, customer, data_points: Vec::new() };
        match check_import_row(&row, &import_id, "caller-1") {
            Ok(_) => prop_assert!(row.customer.is_some()),
            Err(result) => {
                prop_assert_eq!(result.row_number, row_number);
                prop_assert_eq!(result.outcome(), pb::ImportRowOutcome::Invalid);
                prop_assert!(!result.violations.is_empty());
                prop_assert!(
                    result.violations.iter().all(|violation| violation.field.starts_with("customer"))
                );
            }
        }
    }

    #[test]
    fn any_statement_is_checked_without_a_panic(
        (period_type, fiscal_year, fiscal_quarter) in (any::<i32>(), prop_oneof![1990..2030i32, any::<i32>()], any::<i32>()),
        period_end_date in date(),
        currency in prop_oneof!["CNY", text()],
        (cash, current_assets, total_assets, current_liabilities) in (money(), money(), money(), money()),
        (total_liabilities, retained_earnings, equity) in (money(), money(), money()),
        (revenue, gross_profit, ebit, interest_expense, net_income) in (money(), money(), money(), money(), money()),
        operating_cash_flow in money(),
    ) {
        let statement = pb::FinancialStatement {
            period_type,
            fiscal_year,
            fiscal_quarter,
            period_end_date,
            currency,
            balance_sheet: Some(pb::BalanceSheet {
                cash,
                current_assets,
                total_assets,
                current_liabilities,
                total_liabilities,
                retained_earnings,
                equity,
            }),
            income_statement: Some(pb::IncomeStatement {
                revenue,
                gross_profit,
                ebit,
                interest_expense,
                net_income,
            }),
            cash_flow_statement: Some(pb::CashFlowStatement {
                operating_cash_flow,
            }),
            ..Default::default()
        };
        if let Err(error) = parse_statement(&statement, today()) {
            assert_refused_under(error, "statement")?;
        }
        // The same with every part missing.
        let bare = pb::FinancialStatement { balance_sheet: None, income_statement: None, cash_flow_statement: None, ..statement };
        if let Err(error) = parse_statement(&bare, today()) {
            assert_refused_under(error, "statement")?;
        }
    }

    #[test]
    fn any_bureau_report_trade_reference_and_group_is_checked_without_a_panic(
        (agency, report_date, score, agency_rating) in (text(), date(), amount(), text()),
        (lawsuits_count, tax_compliance_status, summary) in (any::<i32>(), any::<i32>(), text()),
        (supplier_name, relationship_months, typical_credit_line) in (text(), any::<i32>(), money()),
        (payment_experience, days_beyond_terms, reference_date, notes) in (any::<i32>(), any::<i32>(), date(), text()),
        (group_name, parent_customer_id, description) in (text(), text(), text()),
    ) {
        let report = pb::BureauReport {
            agency,
            report_date,
            score,
            agency_rating,
            lawsuits_count,
            tax_compliance_status,
            summary,
            ..Default::default()
        };
        if let Err(error) = parse_bureau_report(&report, today()) {
            assert_refused_under(error, "report")?;
        }
        let reference = pb::TradeReference {
            supplier_name,
            relationship_months,
            typical_credit_line,
            payment_experience,
            days_beyond_terms,
            reference_date,
            notes,
            ..Default::default()
        };
        if let Err(error) = parse_trade_reference(&reference, today()) {
            assert_refused_under(error, "reference")?;
        }
        let group = pb::CustomerGroup {
            name: group_name,
            parent_customer_id,
            description,
            ..Default::default()
        };
        if let Err(error) = parse_group(&group) {
            assert_refused_under(error, "group")?;
        }
    }
}

/// The round-trip property above says something only about accepted customers: most of the
/// plausible ones must be accepted, or it would hold vacuously.
#[test]
fn most_plausible_customers_are_accepted() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = plausible_customer();
    let accepted = (0..200)
        .filter(|_| {
            let wire = strategy.new_tree(&mut runner).unwrap().current();
            parse_customer(&wire, today(), "customer").is_ok()
        })
        .count();
    assert!(accepted >= 100, "only {accepted} of 200 accepted");
}
