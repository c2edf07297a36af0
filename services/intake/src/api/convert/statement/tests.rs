//! Statements read from the wire: every check with its field path and message, the ratios
//! of a hand-computed statement, and the figures as the wire shows them.

use super::*;
use crate::domain::statement::{
    AltmanZone, PeriodType, Ratios, StatementFigures, StatementPeriod, ratios,
};
use chrono::NaiveDate;
use credit_core::FieldViolation;
use rust_decimal::Decimal;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn cny(amount: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.to_owned(),
        currency: "CNY".to_owned(),
    })
}

/// A line that leaves its currency to the statement.
fn bare(amount: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.to_owned(),
        currency: String::new(),
    })
}

/// The hand-computed statement (CNY, fiscal year 2024):
///
/// balance sheet: cash 80,000; current assets 500,000; total assets 1,200,000;
///   current liabilities 250,000; total liabilities 700,000; retained earnings 200,000;
///   equity 500,000 — and 700,000 + 500,000 = 1,200,000, so it balances.
/// income statement: revenue 2,000,000; gross profit 600,000; EBIT 150,000;
///   interest expense 30,000; net income 90,000.
/// cash flow: operating cash flow 140,000.
fn hand_computed_statement() -> pb::FinancialStatement {
    pb::FinancialStatement {
        period_type: i32::from(pb::FiscalPeriodType::Annual),
        fiscal_year: 2024,
        fiscal_quarter: 0,
        period_end_date: Some(pb::Date {
            year: 2024,
            month: 12,
            day: 31,
        }),
        currency: "CNY".to_owned(),
        audited: true,
        balance_sheet: Some(pb::BalanceSheet {
            cash: cny("80000"),
            current_assets: cny("500000.00"),
            total_assets: cny("1200000"),
            current_liabilities: bare("250000"),
            total_liabilities: cny("700000"),
            retained_earnings: cny("200000"),
            equity: cny("500000"),
        }),
        income_statement: Some(pb::IncomeStatement {
            revenue: cny("2000000"),
            gross_profit: cny("600000"),
            ebit: cny("150000"),
            interest_expense: cny("30000"),
            net_income: cny("90000"),
        }),
        cash_flow_statement: Some(pb::CashFlowStatement {
            operating_cash_flow: cny("140000"),
        }),
        ..Default::default()
    }
}

fn hand_computed_figures() -> StatementFigures {
    parse_statement(&hand_computed_statement(), today())
        .unwrap()
        .figures
}

fn violations_of(result: Result<NewStatement, ServiceError>) -> Vec<FieldViolation> {
    match result {
        Err(ServiceError::InvalidArgument(violations)) => violations,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn fields_of(violations: &[FieldViolation]) -> Vec<&str> {
    violations
        .iter()
        .map(|violation| violation.field.as_str())
        .collect()
}

fn sheet(statement: &mut pb::FinancialStatement) -> &mut pb::BalanceSheet {
    statement.balance_sheet.as_mut().unwrap()
}

fn income(statement: &mut pb::FinancialStatement) -> &mut pb::IncomeStatement {
    statement.income_statement.as_mut().unwrap()
}

#[test]
fn hand_computed_statement_gives_every_ratio_and_the_z_score_exactly() {
    let ratios = ratios(&hand_computed_figures());
    // current ratio     = 500,000 / 250,000       = 2
    assert_eq!(ratios.current_ratio, Some(dec("2.0000")));
    // debt to assets    = 700,000 / 1,200,000     = 0.58333… -> 0.5833
    assert_eq!(ratios.debt_to_assets, Some(dec("0.5833")));
    // net margin        = 90,000 / 2,000,000      = 0.045
    assert_eq!(ratios.net_margin, Some(dec("0.0450")));
    // return on assets  = 90,000 / 1,200,000      = 0.075
    assert_eq!(ratios.return_on_assets, Some(dec("0.0750")));
    // interest coverage = 150,000 / 30,000        = 5
    assert_eq!(ratios.interest_coverage, Some(dec("5.0000")));
    // OCF / TL          = 140,000 / 700,000       = 0.2
    assert_eq!(ratios.ocf_to_total_liabilities, Some(dec("0.2000")));
    // X1 = (500,000 − 250,000) / 1,200,000 = 5/24  = 0.208333… -> 0.2083
    assert_eq!(ratios.working_capital_to_total_assets, Some(dec("0.2083")));
    // X2 = 200,000 / 1,200,000           = 1/6   = 0.166666… -> 0.1667
    assert_eq!(
        ratios.retained_earnings_to_total_assets,
        Some(dec("0.1667"))
    );
    // X3 = 150,000 / 1,200,000           = 1/8   = 0.125
    assert_eq!(ratios.ebit_to_total_assets, Some(dec("0.1250")));
    // X4 = 500,000 / 700,000             = 5/7   = 0.714285… -> 0.7143
    assert_eq!(ratios.equity_to_total_liabilities, Some(dec("0.7143")));
    // Z'' = 6.56·5/24 + 3.26·1/6 + 6.72·1/8 + 1.05·5/7
    //     = 32.8/24 + 13.04/24 + 0.84 + 0.75 = 45.84/24 + 1.59 = 1.91 + 1.59 = 3.5
    // (from the rounded X's it would be 1.366448 + 0.543442 + 0.84 + 0.750015 = 3.499905
    // -> 3.4999, which is how this test tells the two apart)
    assert_eq!(ratios.altman_z_score, Some(dec("3.5000")));
    // 3.5 > 2.60
    assert_eq!(ratios.altman_zone, Some(AltmanZone::Safe));
}

#[test]
fn ratios_reach_the_wire_as_four_place_strings_with_their_zone() {
    let wire = pb::FinancialRatios::from(&ratios(&hand_computed_figures()));
    assert_eq!(wire.current_ratio.as_deref(), Some("2.0000"));
    assert_eq!(wire.debt_to_assets.as_deref(), Some("0.5833"));
    assert_eq!(wire.net_margin.as_deref(), Some("0.0450"));
    assert_eq!(wire.return_on_assets.as_deref(), Some("0.0750"));
    assert_eq!(wire.interest_coverage.as_deref(), Some("5.0000"));
    assert_eq!(
        wire.operating_cash_flow_to_total_liabilities.as_deref(),
        Some("0.2000")
    );
    assert_eq!(
        wire.working_capital_to_total_assets.as_deref(),
        Some("0.2083")
    );
    assert_eq!(
        wire.retained_earnings_to_total_assets.as_deref(),
        Some("0.1667")
    );
    assert_eq!(wire.ebit_to_total_assets.as_deref(), Some("0.1250"));
    assert_eq!(wire.equity_to_total_liabilities.as_deref(), Some("0.7143"));
    assert_eq!(wire.altman_z_score.as_deref(), Some("3.5000"));
    assert_eq!(wire.altman_zone, i32::from(pb::AltmanZone::Safe));

    let absent = pb::FinancialRatios::from(&Ratios::default());
    assert_eq!(absent.altman_z_score, None);
    assert_eq!(absent.altman_zone, i32::from(pb::AltmanZone::Unspecified));
}

#[test]
fn zero_denominators_give_absent_ratios() {
    let figures = StatementFigures {
        current_liabilities: Some(Decimal::ZERO),
        total_liabilities: Decimal::ZERO,
        equity: dec("1200000"),
        revenue: Decimal::ZERO,
        interest_expense: Some(Decimal::ZERO),
        ..hand_computed_figures()
    };
    let ratios = ratios(&figures);
    assert_eq!(ratios.current_ratio, None);
    assert_eq!(ratios.net_margin, None);
    assert_eq!(ratios.interest_coverage, None);
    assert_eq!(ratios.ocf_to_total_liabilities, None);
    assert_eq!(ratios.equity_to_total_liabilities, None);
    assert_eq!(ratios.altman_z_score, None);
    assert_eq!(ratios.altman_zone, None);
    // Ratios over total assets are still there; zero liabilities are a fine numerator.
    assert_eq!(ratios.debt_to_assets, Some(dec("0.0000")));
    assert_eq!(ratios.working_capital_to_total_assets, Some(dec("0.4167")));

    let empty_company = StatementFigures {
        total_assets: Decimal::ZERO,
        total_liabilities: Decimal::ZERO,
        equity: Decimal::ZERO,
        ..figures
    };
    let ratios = crate::domain::statement::ratios(&empty_company);
    assert_eq!(ratios.debt_to_assets, None);
    assert_eq!(ratios.return_on_assets, None);
    assert_eq!(ratios.working_capital_to_total_assets, None);
    assert_eq!(ratios.retained_earnings_to_total_assets, None);
    assert_eq!(ratios.ebit_to_total_assets, None);
}

#[test]
fn absent_lines_give_absent_ratios() {
    let figures = StatementFigures {
        cash: None,
        current_assets: None,
        current_liabilities: None,
        retained_earnings: None,
        gross_profit: None,
        ebit: None,
        interest_expense: None,
        net_income: None,
        operating_cash_flow: None,
        ..hand_computed_figures()
    };
    let ratios = ratios(&figures);
    assert_eq!(
        ratios,
        Ratios {
            debt_to_assets: Some(dec("0.5833")),
            equity_to_total_liabilities: Some(dec("0.7143")),
            ..Ratios::default()
        }
    );
}

#[test]
fn overflowing_ratios_are_absent_not_a_panic() {
    let huge = Decimal::MAX;
    let figures = StatementFigures {
        current_assets: Some(huge),
        current_liabilities: Some(dec("0.01")),
        total_assets: huge,
        total_liabilities: dec("0.01"),
        equity: huge,
        ebit: Some(huge),
        interest_expense: Some(dec("0.01")),
        ..hand_computed_figures()
    };
    let ratios = ratios(&figures);
    assert_eq!(ratios.current_ratio, None);
    assert_eq!(ratios.interest_coverage, None);
    assert_eq!(ratios.equity_to_total_liabilities, None);
    assert_eq!(ratios.altman_z_score, None);
    assert_eq!(ratios.altman_zone, None);
}

#[test]
fn accepts_the_hand_computed_statement_exactly() {
    let parsed = parse_statement(&hand_computed_statement(), today()).unwrap();
    assert_eq!(
        parsed.period,
        StatementPeriod {
            period_type: PeriodType::Annual,
            fiscal_year: 2024,
            fiscal_quarter: None,
            period_end: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        }
    );
    assert!(parsed.audited);
    let figures = parsed.figures;
    assert_eq!(figures.currency, "CNY");
    assert_eq!(figures.total_assets, dec("1200000"));
    // A line without a currency takes the statement's.
    assert_eq!(figures.current_liabilities, Some(dec("250000")));
    assert_eq!(figures.operating_cash_flow, Some(dec("140000")));
}

#[test]
fn accepts_a_quarterly_statement_with_negative_equity_and_losses() {
    let mut statement = hand_computed_statement();
    statement.period_type = i32::from(pb::FiscalPeriodType::Quarterly);
    statement.fiscal_year = 2025;
    statement.fiscal_quarter = 1;
    statement.period_end_date = Some(pb::Date {
        year: 2025,
        month: 3,
        day: 31,
    });
    // 1,200,000 = 1,500,000 + (−300,000): a company whose deficit exceeds its capital.
    sheet(&mut statement).total_liabilities = cny("1500000");
    sheet(&mut statement).equity = cny("-300000");
    sheet(&mut statement).retained_earnings = cny("-800000");
    income(&mut statement).gross_profit = cny("-10000");
    income(&mut statement).ebit = cny("-50000");
    income(&mut statement).net_income = cny("-80000");
    statement.cash_flow_statement = Some(pb::CashFlowStatement {
        operating_cash_flow: cny("-20000"),
    });
    let parsed = parse_statement(&statement, today()).unwrap();
    assert_eq!(parsed.period.period_type, PeriodType::Quarterly);
    assert_eq!(parsed.period.period_type.months(), 3);
    assert_eq!(PeriodType::Annual.months(), 12);
    assert_eq!(parsed.period.fiscal_quarter, Some(1));
    assert_eq!(parsed.figures.equity, dec("-300000"));
    assert_eq!(parsed.figures.net_income, Some(dec("-80000")));
}

#[test]
fn unbalanced_statement_is_refused_with_only_the_balance_violation() {
    let mut statement = hand_computed_statement();
    // 700,000 + 490,000 = 1,190,000: 10,000 short of total assets; the tolerance is
    // max(1, 0.01 % × 1,200,000) = 120.
    sheet(&mut statement).equity = cny("490000");
    let violations = violations_of(parse_statement(&statement, today()));
    assert_eq!(
        violations,
        [FieldViolation::new(
            "statement.balance_sheet",
            "does not balance: total assets exceed total liabilities plus equity by \
             10000.00 (at most 120.00 allowed)"
        )]
    );
}

#[test]
fn statement_within_the_balance_tolerance_is_accepted() {
    // Large company: 0.01 % of 1,200,000 is 120.
    let mut statement = hand_computed_statement();
    sheet(&mut statement).equity = cny("499880");
    assert!(parse_statement(&statement, today()).is_ok());
    sheet(&mut statement).equity = cny("500120");
    assert!(parse_statement(&statement, today()).is_ok());
    sheet(&mut statement).equity = cny("499879.99");
    let violations = violations_of(parse_statement(&statement, today()));
    assert_eq!(fields_of(&violations), ["statement.balance_sheet"]);
    assert!(violations[0].description.contains("by 120.01"));
    assert!(!violations[0].description.contains("fall short of"));

    // Small company: one currency unit beats 0.01 % of 5,000 (0.50).
    let mut small = hand_computed_statement();
    *sheet(&mut small) = pb::BalanceSheet {
        total_assets: cny("5000"),
        total_liabilities: cny("3000"),
        equity: cny("2001"),
        ..Default::default()
    };
    assert!(parse_statement(&small, today()).is_ok());
    sheet(&mut small).equity = cny("2001.01");
    let violations = violations_of(parse_statement(&small, today()));
    assert_eq!(
        violations[0].description,
        "does not balance: total assets fall short of total liabilities plus equity by \
         1.01 (at most 1.00 allowed)"
    );
}

#[test]
fn parts_exceeding_their_totals_are_refused() {
    let mut statement = hand_computed_statement();
    sheet(&mut statement).cash = cny("500000.01");
    sheet(&mut statement).current_liabilities = cny("700001");
    income(&mut statement).gross_profit = cny("2000001");
    let violations = violations_of(parse_statement(&statement, today()));
    assert_eq!(
        violations,
        [
            FieldViolation::new(
                "statement.balance_sheet.cash",
                "must not exceed current assets"
            ),
            FieldViolation::new(
                "statement.balance_sheet.current_liabilities",
                "must not exceed total liabilities"
            ),
            FieldViolation::new(
                "statement.income_statement.gross_profit",
                "must not exceed revenue"
            ),
        ]
    );

    let mut statement = hand_computed_statement();
    sheet(&mut statement).current_assets = cny("1200000.01");
    let violations = violations_of(parse_statement(&statement, today()));
    assert_eq!(
        violations,
        [FieldViolation::new(
            "statement.balance_sheet.current_assets",
            "must not exceed total assets"
        )]
    );

    // Without current assets, cash is still bounded by total assets.
    let mut statement = hand_computed_statement();
    sheet(&mut statement).current_assets = None;
    sheet(&mut statement).cash = cny("1300000");
    let violations = violations_of(parse_statement(&statement, today()));
    assert_eq!(
        violations,
        [FieldViolation::new(
            "statement.balance_sheet.cash",
            "must not exceed total assets"
        )]
    );
}

#[test]
fn every_problem_is_reported_together() {
    let mut statement = hand_computed_statement();
    statement.fiscal_quarter = 2;
    statement.fiscal_year = 1899;
    statement.period_end_date = Some(pb::Date {
        year: 2025,
        month: 7,
        day: 1,
    });
    sheet(&mut statement).total_assets = None;
    sheet(&mut statement).cash = cny("-1");
    sheet(&mut statement).retained_earnings = cny("12,000");
    income(&mut statement).revenue = cny("-5");
    income(&mut statement).interest_expense = cny("10.005");
    statement.cash_flow_statement = None;
    let violations = violations_of(parse_statement(&statement, today()));
    assert_eq!(
        violations,
        [
            FieldViolation::new(
                "statement.fiscal_quarter",
                "must be 0 for an annual statement"
            ),
            FieldViolation::new("statement.fiscal_year", "must be between 1900 and 2026"),
            FieldViolation::new("statement.period_end_date", "must not be in the future"),
            FieldViolation::new(
                "statement.balance_sheet.cash",
                "amount must not be negative"
            ),
            FieldViolation::new("statement.balance_sheet.total_assets", "is required"),
            FieldViolation::new(
                "statement.balance_sheet.retained_earnings",
                "amount must be a plain decimal number such as 1250.00"
            ),
            FieldViolation::new(
                "statement.income_statement.revenue",
                "amount must not be negative"
            ),
            FieldViolation::new(
                "statement.income_statement.interest_expense",
                "amount has more than 2 decimal places, the minor units of CNY"
            ),
            FieldViolation::new("statement.cash_flow_statement", "is required"),
        ]
    );
}

#[test]
fn period_rules_are_checked() {
    let refused = |change: &dyn Fn(&mut pb::FinancialStatement)| {
        let mut statement = hand_computed_statement();
        change(&mut statement);
        violations_of(parse_statement(&statement, today()))
    };
    assert_eq!(
        refused(&|statement| statement.period_type = 0),
        [FieldViolation::new("statement.period_type", "is required")]
    );
    assert_eq!(
        refused(&|statement| statement.period_type = 7),
        [FieldViolation::new(
            "statement.period_type",
            "is not a known period type"
        )]
    );
    for quarter in [0, 5, -1, 256 + 1] {
        assert_eq!(
            refused(&|statement| {
                statement.period_type = i32::from(pb::FiscalPeriodType::Quarterly);
                statement.fiscal_quarter = quarter;
            }),
            [FieldViolation::new(
                "statement.fiscal_quarter",
                "must be 1 to 4 for a quarterly statement"
            )],
            "quarter {quarter}"
        );
    }
    assert_eq!(
        fields_of(&refused(&|statement| statement.fiscal_year = 2027)),
        ["statement.fiscal_year"]
    );
    assert_eq!(
        refused(&|statement| statement.period_end_date = None),
        [FieldViolation::new(
            "statement.period_end_date",
            "is required"
        )]
    );
    for (year, month, day) in [(2024, 2, 30), (2024, 13, 1), (2024, 0, 1), (0, 12, 31)] {
        assert_eq!(
            refused(&|statement| {
                statement.period_end_date = Some(pb::Date { year, month, day })
            }),
            [FieldViolation::new(
                "statement.period_end_date",
                "is not a valid calendar date"
            )]
        );
    }
    // Next year's label is accepted, and a period may end today.
    let mut statement = hand_computed_statement();
    statement.fiscal_year = 2026;
    statement.period_end_date = Some(pb::Date {
        year: 2025,
        month: 6,
        day: 30,
    });
    assert!(parse_statement(&statement, today()).is_ok());
}

#[test]
fn a_line_in_another_currency_is_refused() {
    let mut statement = hand_computed_statement();
    sheet(&mut statement).total_liabilities = Some(pb::Money {
        amount: "700000".to_owned(),
        currency: "USD".to_owned(),
    });
    income(&mut statement).ebit = Some(pb::Money {
        amount: "150000".to_owned(),
        currency: "XYZ".to_owned(),
    });
    let violations = violations_of(parse_statement(&statement, today()));
    assert_eq!(
        violations,
        [
            FieldViolation::new(
                "statement.balance_sheet.total_liabilities",
                "currency USD differs from the statement currency CNY"
            ),
            FieldViolation::new(
                "statement.income_statement.ebit",
                "currency 'XYZ' is not an ISO 4217 code"
            ),
        ]
    );
}

#[test]
fn a_missing_or_unknown_statement_currency_is_refused_and_amounts_still_checked() {
    let mut statement = hand_computed_statement();
    statement.currency = String::new();
    income(&mut statement).revenue = cny("lots");
    let violations = violations_of(parse_statement(&statement, today()));
    assert_eq!(
        violations,
        [
            FieldViolation::new("statement.currency", "currency is required"),
            FieldViolation::new(
                "statement.income_statement.revenue",
                "amount must be a plain decimal number such as 1250.00"
            ),
        ]
    );

    let mut statement = hand_computed_statement();
    statement.currency = "cny".to_owned();
    assert_eq!(
        fields_of(&violations_of(parse_statement(&statement, today()))),
        ["statement.currency"]
    );
}

#[test]
fn missing_sections_are_reported_once_each() {
    let statement = pb::FinancialStatement {
        period_type: i32::from(pb::FiscalPeriodType::Annual),
        fiscal_year: 2024,
        period_end_date: Some(pb::Date {
            year: 2024,
            month: 12,
            day: 31,
        }),
        currency: "CNY".to_owned(),
        ..Default::default()
    };
    let violations = violations_of(parse_statement(&statement, today()));
    assert_eq!(
        fields_of(&violations),
        [
            "statement.balance_sheet",
            "statement.income_statement",
            "statement.cash_flow_statement",
        ]
    );
}

#[test]
fn figures_reach_the_wire_at_the_currency_minor_units() {
    let figures = StatementFigures {
        cash: None,
        ..hand_computed_figures()
    };
    let (balance_sheet, income_statement, cash_flow) = figures_to_proto(&figures);
    assert_eq!(balance_sheet.total_assets, cny("1200000.00"));
    assert_eq!(balance_sheet.current_liabilities, cny("250000.00"));
    assert_eq!(balance_sheet.cash, None);
    assert_eq!(income_statement.revenue, cny("2000000.00"));
    assert_eq!(income_statement.net_income, cny("90000.00"));
    assert_eq!(cash_flow.operating_cash_flow, cny("140000.00"));

    let yen = StatementFigures {
        currency: "JPY".to_owned(),
        ..hand_computed_figures()
    };
    let (balance_sheet, _, _) = figures_to_proto(&yen);
    assert_eq!(
        balance_sheet.equity,
        Some(pb::Money {
            amount: "500000".to_owned(),
            currency: "JPY".to_owned(),
        })
    );
}

#[test]
fn figures_round_trip_through_the_wire_and_back() {
    let figures = hand_computed_figures();
    let (balance_sheet, income_statement, cash_flow_statement) = figures_to_proto(&figures);
    let statement = pb::FinancialStatement {
        balance_sheet: Some(balance_sheet),
        income_statement: Some(income_statement),
        cash_flow_statement: Some(cash_flow_statement),
        ..hand_computed_statement()
    };
    assert_eq!(
        parse_statement(&statement, today()).unwrap().figures,
        figures
    );
}

#[test]
fn stored_json_keeps_amounts_exact_as_strings() {
    let statement = parse_statement(&hand_computed_statement(), today()).unwrap();
    let json = serde_json::to_value(&statement).unwrap();
    assert_eq!(json["figures"]["current_assets"], "500000.00");
    assert_eq!(json["figures"]["total_assets"], "1200000");
    assert_eq!(json["period"]["period_type"], "annual");
    assert_eq!(json["period"]["period_end"], "2024-12-31");
    let back: NewStatement = serde_json::from_value(json).unwrap();
    assert_eq!(back, statement);

    // Lines a stored record lacks read back as absent.
    let mut json = serde_json::to_value(&statement.figures).unwrap();
    json.as_object_mut().unwrap().remove("cash");
    let figures: StatementFigures = serde_json::from_value(json).unwrap();
    assert_eq!(figures.cash, None);
}
