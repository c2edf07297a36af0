//! Tests of the report page: every section, escaping, and what shows when data is missing.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use credit_proto::v1::{
    Actor, AltmanZone, ApprovalChain, ApprovalStep, BalanceSheet, CashFlowStatement, Date,
    FinancialRatios, FiscalPeriodType, IncomeStatement, Money, RatedCustomerSummary, RatingInput,
    Reason, rating_input,
};
use prost_types::Timestamp;

use super::*;

const HOSTILE_NAME: &str = "ACME <b>\"&' Trading GmbH";
const HOSTILE_NAME_ESCAPED: &str = "ACME &lt;b&gt;&quot;&amp;&#39; Trading GmbH";

fn at(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> Timestamp {
    let instant = Utc
        .with_ymd_and_hms(year, month, day, hour, minute, 0)
        .single()
        .expect("a valid UTC instant");
    Timestamp {
        seconds: instant.timestamp(),
        nanos: 0,
    }
}

fn civil(year: i32, month: i32, day: i32) -> Date {
    Date { year, month, day }
}

fn eur(amount: &str) -> Option<Money> {
    Some(Money {
        amount: amount.to_owned(),
        currency: "EUR".to_owned(),
    })
}

fn person(principal: &str, role: Role) -> Option<Actor> {
    Some(Actor {
        principal: principal.to_owned(),
        roles: vec![role as i32],
    })
}

enum Value<'v> {
    Number(&'v str),
    Category(&'v str),
    Missing,
}

/// `points` are the points, max points and points lost, as the scorer writes them.
fn scored(
    (code, display_name): (&str, &str),
    family: IndicatorFamily,
    value: Value<'_>,
    bin_label: &str,
    [points, max_points, points_lost]: [&str; 3],
) -> CharacteristicScore {
    let (value, missing) = match value {
        Value::Number(number) => (Some(rating_input::Value::Number(number.to_owned())), false),
        Value::Category(category) => (
            Some(rating_input::Value::Category(category.to_owned())),
            false,
        ),
        Value::Missing => (None, true),
    };
    CharacteristicScore {
        code: code.to_owned(),
        display_name: display_name.to_owned(),
        family: family as i32,
        input: Some(RatingInput {
            key: code.to_lowercase(),
            value,
            ..RatingInput::default()
        }),
        missing,
        bin_label: bin_label.to_owned(),
        points: points.to_owned(),
        max_points: max_points.to_owned(),
        points_lost: points_lost.to_owned(),
        ..CharacteristicScore::default()
    }
}

/// Families and points chosen so the subtotals are easy to check by hand:
/// financial strength 60 / 70 / 10, operations 40 / 45 / 5, solvency 27.5 / 75 / 47.5,
/// collateral 10 / 20 / 10, payment behaviour 38 / 60 / 22; characteristics 175.5,
/// base points 100.0, score 275.5.
fn breakdown() -> Vec<CharacteristicScore> {
    use IndicatorFamily::*;
    vec![
        scored(
            ("CURRENT_RATIO", "Current ratio"),
            Solvency,
            Value::Number("1.18"),
            "[1.0, 1.5)",
            ["12.5", "30", "17.5"],
        ),
        scored(
            ("DEBT_TO_ASSETS", "Debt-to-assets"),
            Solvency,
            Value::Number("0.6200"),
            "[0.6, 0.7)",
            ["10", "25", "15"],
        ),
        scored(
            ("INTEREST_COVERAGE", "Interest coverage"),
            Solvency,
            Value::Missing,
            "MISSING",
            ["5", "20", "15"],
        ),
        scored(
            ("ALTMAN_Z_SCORE", "Altman Z''-score"),
            FinancialStrength,
            Value::Number("3.1234"),
            "[2.6, +inf)",
            ["40", "40", "0"],
        ),
        scored(
            ("NET_MARGIN", "Net margin"),
            FinancialStrength,
            Value::Number("0.0412"),
            "[0.03, 0.08)",
            ["20", "30", "10"],
        ),
        scored(
            ("YEARS_IN_BUSINESS", "Years in business"),
            Operations,
            Value::Number("27"),
            "[20, +inf)",
            ["25", "25", "0"],
        ),
        scored(
            ("MANAGEMENT_QUALITY", "Management quality"),
            Operations,
            Value::Number("4"),
            "4",
            ["15", "20", "5"],
        ),
        scored(
            ("COLLATERAL_COVERAGE", "Collateral coverage"),
            Collateral,
            Value::Number("3"),
            "3",
            ["10", "20", "10"],
        ),
        scored(
            ("MAX_DAYS_OVERDUE_12M", "Max days overdue (12 months)"),
            PaymentBehaviour,
            Value::Number("18"),
            "[15, 30)",
            ["20", "35", "15"],
        ),
        scored(
            ("WORST_PAYMENT_EXPERIENCE", "Worst payment experience"),
            PaymentBehaviour,
            Value::Category("SLOW"),
            "SLOW",
            ["8", "15", "7"],
        ),
        scored(
            ("TAX_COMPLIANCE", "Tax compliance"),
            PaymentBehaviour,
            Value::Category("COMPLIANT"),
            "COMPLIANT",
            ["10", "10", "0"],
        ),
    ]
}

fn reason(code: &str, message: &str, points_lost: &str) -> Reason {
    Reason {
        code: code.to_owned(),
        message: message.to_owned(),
        metadata: BTreeMap::from([("points_lost".to_owned(), points_lost.to_owned())]),
    }
}

fn statement(
    year: i32,
    revenue: &str,
    net_income: &str,
    current_ratio: &str,
) -> FinancialStatement {
    FinancialStatement {
        statement_id: format!("stmt-{year}"),
        customer_id: "cus-1042".to_owned(),
        period_type: FiscalPeriodType::Annual as i32,
        fiscal_year: year,
        period_end_date: Some(civil(year, 12, 31)),
        currency: "EUR".to_owned(),
        audited: true,
        balance_sheet: Some(BalanceSheet {
            cash: eur("1250000.00"),
            current_assets: eur("8260000.00"),
            total_assets: eur("21400000.00"),
            current_liabilities: eur("7000000.00"),
            total_liabilities: eur("13268000.00"),
            retained_earnings: eur("4100000.00"),
            equity: eur("8132000.00"),
        }),
        income_statement: Some(IncomeStatement {
            revenue: eur(revenue),
            gross_profit: eur("9800000.00"),
            ebit: eur("2150000.00"),
            interest_expense: None,
            net_income: eur(net_income),
        }),
        cash_flow_statement: Some(CashFlowStatement {
            operating_cash_flow: eur("1900000.00"),
        }),
        version: 1,
        ratios: Some(FinancialRatios {
            current_ratio: Some(current_ratio.to_owned()),
            debt_to_assets: Some("0.6200".to_owned()),
            net_margin: Some("0.0412".to_owned()),
            return_on_assets: Some("0.0656".to_owned()),
            // No interest expense: the ratio has no denominator.
            interest_coverage: None,
            altman_z_score: Some("3.1234".to_owned()),
            altman_zone: AltmanZone::Safe as i32,
            ..FinancialRatios::default()
        }),
        ..FinancialStatement::default()
    }
}

fn full_report() -> RatingReport {
    RatingReport {
        customer: Some(RatedCustomerSummary {
            customer_id: "cus-1042".to_owned(),
            kind: CustomerKind::Enterprise as i32,
            display_name: HOSTILE_NAME.to_owned(),
            country: "DE".to_owned(),
            industry_code: "C25.1".to_owned(),
            status: CustomerStatus::Active as i32,
            group_id: "grp-7".to_owned(),
            group_name: "Acme Holding".to_owned(),
            founding_date: Some(civil(1998, 4, 1)),
        }),
        rating: Some(Rating {
            rating_id: "rat-311".to_owned(),
            customer_id: "cus-1042".to_owned(),
            model_id: "enterprise-default".to_owned(),
            model_version: 3,
            master_scale_id: "agency-8".to_owned(),
            score: "275.5".to_owned(),
            model_grade: "BB".to_owned(),
            model_pd: "0.0090".to_owned(),
            grade: "BBB".to_owned(),
            grade_rank: 4,
            pd: "0.0030".to_owned(),
            override_id: "ovr-19".to_owned(),
            breakdown: breakdown(),
            reasons: vec![
                reason("CURRENT_RATIO", "Liquidity is weak (current ratio)", "17.5"),
                reason("DEBT_TO_ASSETS", "Leverage is high (debt-to-assets)", "15"),
                reason("INTEREST_COVERAGE", "Interest coverage unknown", "15"),
                reason(
                    "MAX_DAYS_OVERDUE_12M",
                    "Paid us late in the last 12 months",
                    "15",
                ),
            ],
            trigger: RatingTrigger::FinancialStatement as i32,
            rated_at: Some(at(2026, 3, 31, 14, 5)),
            rated_by: person("system:rating", Role::Admin),
            next_review_date: Some(civil(2026, 9, 30)),
            current: true,
            note: "Re-rated on the FY 2025 statement".to_owned(),
            ..Rating::default()
        }),
        model_display_name: "Enterprise default".to_owned(),
        statements: vec![
            // Deliberately oldest first: the page must still put the newest first.
            statement(2022, "45100000.00", "1500000.00", "1.31"),
            statement(2025, "52300000.00", "2154760.00", "1.18"),
            statement(2023, "47800000.00", "1750000.00", "1.25"),
            statement(2024, "50100000.00", "1980000.00", "1.22"),
        ],
        bureau_report: Some(BureauReport {
            report_id: "bur-88".to_owned(),
            customer_id: "cus-1042".to_owned(),
            agency: "Dun & Bradstreet".to_owned(),
            report_date: Some(civil(2026, 2, 15)),
            score: "72".to_owned(),
            agency_rating: "3A2".to_owned(),
            lawsuits_count: 1,
            tax_compliance_status: TaxComplianceStatus::Compliant as i32,
            summary: "One pending supplier claim".to_owned(),
            ..BureauReport::default()
        }),
        trade_references: vec![TradeReference {
            reference_id: "tr-5".to_owned(),
            customer_id: "cus-1042".to_owned(),
            supplier_name: "Stahlwerk Nord AG".to_owned(),
            relationship_months: 60,
            typical_credit_line: eur("250000.00"),
            payment_experience: PaymentExperience::Slow as i32,
            days_beyond_terms: 12,
            reference_date: Some(civil(2026, 1, 20)),
            notes: "Pays after reminders".to_owned(),
            ..TradeReference::default()
        }],
        grade_history: vec![
            GradeHistoryEntry {
                rating_id: "rat-311".to_owned(),
                rated_at: Some(at(2026, 3, 31, 14, 5)),
                score: "275.5".to_owned(),
                model_grade: "BB".to_owned(),
                grade: "BBB".to_owned(),
                pd: "0.0030".to_owned(),
                overridden: true,
                trigger: RatingTrigger::FinancialStatement as i32,
            },
            GradeHistoryEntry {
                rating_id: "rat-207".to_owned(),
                rated_at: Some(at(2025, 9, 30, 8, 0)),
                score: "281".to_owned(),
                model_grade: "BBB".to_owned(),
                grade: "BBB".to_owned(),
                pd: "0.0030".to_owned(),
                overridden: false,
                trigger: RatingTrigger::ScheduledReview as i32,
            },
        ],
        overrides: vec![RatingOverride {
            override_id: "ovr-19".to_owned(),
            rating_id: "rat-311".to_owned(),
            customer_id: "cus-1042".to_owned(),
            model_grade: "BB".to_owned(),
            proposed_grade: "BBB".to_owned(),
            notches: 1,
            justification: "Parent guarantee <script>alert(1)</script> signed 2026-03-20"
                .to_owned(),
            status: ApprovalStatus::Approved as i32,
            required_role: Role::CreditManager as i32,
            proposed_by: person("alice", Role::Analyst),
            proposed_at: Some(at(2026, 3, 31, 15, 0)),
            decided_by: person("bob", Role::CreditManager),
            decided_at: Some(at(2026, 4, 1, 9, 30)),
            decision_comment: "Guarantee checked".to_owned(),
            ..RatingOverride::default()
        }],
        generated_at: Some(at(2026, 4, 2, 10, 15)),
    }
}

/// The `<tr>...</tr>` that contains `needle`.
fn row_containing<'h>(html: &'h str, needle: &str) -> &'h str {
    let at = html
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the page"));
    let start = html[..at].rfind("<tr").expect("the needle is inside a row");
    let end = at + html[at..].find("</tr>").expect("the row is closed") + "</tr>".len();
    &html[start..end]
}

/// The row of a labelled value (the header, summary and bureau tables).
fn fact_row<'h>(html: &'h str, label: &str) -> &'h str {
    row_containing(html, &format!("<th scope=\"row\">{label}</th>"))
}

#[test]
fn page_is_self_contained_html() {
    let html = render_html(&full_report());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("<style>"));
    assert!(html.contains("@media print"));
    for forbidden in ["http://", "https://", "<script", "src=", "<link", "url("] {
        assert!(!html.contains(forbidden), "page contains {forbidden:?}");
    }
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn user_text_is_escaped_everywhere() {
    let html = render_html(&full_report());
    assert!(html.contains(HOSTILE_NAME_ESCAPED));
    assert!(html.contains(&format!("<h1>{HOSTILE_NAME_ESCAPED}</h1>")));
    assert!(html.contains(&format!(
        "<title>Rating report: {HOSTILE_NAME_ESCAPED}</title>"
    )));
    assert!(!html.contains(HOSTILE_NAME));
    assert!(!html.contains("<b>"));
    assert!(html.contains("Parent guarantee &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("Dun &amp; Bradstreet"));
}

#[test]
fn escape_handles_the_five_special_characters() {
    assert_eq!(
        escape(r#"<a href="x">Tom & Jerry's</a>"#),
        "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
    );
    assert_eq!(escape("优秀 Excellent"), "优秀 Excellent");
}

#[test]
fn sections_appear_in_order() {
    let html = render_html(&full_report());
    let headings = [
        "<h1>",
        "<h2>Rating summary</h2>",
        "<h2>Reasons</h2>",
        "<h2>Scorecard breakdown</h2>",
        "<h2>Financial statements</h2>",
        "<h2>Bureau report</h2>",
        "<h3>Trade references</h3>",
        "<h2>Grade history</h2>",
        "<h2>Overrides</h2>",
    ];
    let positions: Vec<usize> = headings
        .iter()
        .map(|heading| {
            html.find(heading)
                .unwrap_or_else(|| panic!("{heading} missing"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "{positions:?}"
    );
}

#[test]
fn header_shows_the_customer() {
    let html = render_html(&full_report());
    for expected in [
        "<td>cus-1042</td>",
        "<td>Enterprise</td>",
        "<td>DE</td>",
        "<td>C25.1</td>",
        "<td>Active</td>",
        "<td>Acme Holding (grp-7)</td>",
        "<td>1998-04-01</td>",
        "<td>2026-04-02 10:15 UTC</td>",
    ] {
        assert!(html.contains(expected), "{expected} missing");
    }
}

#[test]
fn summary_shows_both_grades_of_an_overridden_rating() {
    let html = render_html(&full_report());
    assert!(fact_row(&html, "Effective grade").contains("<td>BBB</td>"));
    assert!(fact_row(&html, "Probability of default").contains("<td>0.30 %</td>"));
    assert_eq!(
        fact_row(&html, "Model grade"),
        "<tr><th scope=\"row\">Model grade</th><td>BB (PD 0.90 %), overridden by override ovr-19</td></tr>"
    );
    assert!(fact_row(&html, "Trigger").contains("<td>Financial statement</td>"));
    assert!(fact_row(&html, "Rated at").contains("<td>2026-03-31 14:05 UTC</td>"));
    assert!(fact_row(&html, "Rated by").contains("<td>system:rating (Admin)</td>"));
    assert!(fact_row(&html, "Next review").contains("<td>2026-09-30</td>"));
    assert!(fact_row(&html, "Model").contains("Enterprise default: enterprise-default version 3"));
    assert!(fact_row(&html, "In force").contains("Current rating"));
    assert!(fact_row(&html, "Score").contains("<td>275.5</td>"));
}

#[test]
fn summary_leaves_out_the_model_grade_when_not_overridden() {
    let mut report = full_report();
    let rating = report
        .rating
        .as_mut()
        .expect("the full report has a rating");
    rating.override_id.clear();
    rating.grade = "BB".to_owned();
    rating.pd = "0.0090".to_owned();
    rating.current = false;
    let html = render_html(&report);
    assert!(!html.contains("scope=\"row\">Model grade</th>"));
    assert!(!html.contains("overridden"));
    assert!(fact_row(&html, "In force").contains("Superseded"));
}

#[test]
fn reasons_are_an_ordered_list_with_points_lost() {
    let html = render_html(&full_report());
    let list_start = html.find("<ol>").expect("reasons list");
    let list = &html[list_start..html.find("</ol>").expect("closed list")];
    assert_eq!(list.matches("<li>").count(), 4);
    assert!(list.contains(
        "<li><strong>CURRENT_RATIO</strong>: Liquidity is weak (current ratio) (points lost: 17.5)</li>"
    ));
    assert!(list.find("CURRENT_RATIO") < list.find("MAX_DAYS_OVERDUE_12M"));
}

#[test]
fn breakdown_shows_every_characteristic_with_its_points() {
    let html = render_html(&full_report());
    assert_eq!(
        row_containing(&html, "<td>Current ratio</td>"),
        "<tr><td>Current ratio</td><td>1.18</td><td>[1.0, 1.5)</td>\
         <td class=\"num\">12.5</td><td class=\"num\">30</td><td class=\"num\">17.5</td></tr>"
    );
    let interest = row_containing(&html, "<td>Interest coverage</td>");
    assert!(interest.contains("<td>missing</td><td>MISSING</td><td class=\"num\">5</td>"));
    let experience = row_containing(&html, "<td>Worst payment experience</td>");
    assert!(experience.contains("<td>SLOW</td><td>SLOW</td><td class=\"num\">8</td>"));
    for score in breakdown() {
        let row = row_containing(&html, &format!("<td>{}</td>", escape(&score.display_name)));
        assert!(
            row.contains(&format!("<td class=\"num\">{}</td>", score.points)),
            "{row}"
        );
    }
}

#[test]
fn breakdown_groups_by_family_with_hand_computed_subtotals() {
    let html = render_html(&full_report());
    let subtotal = |family: &str, points: &str, max: &str, lost: &str| {
        format!(
            "<tr class=\"subtotal\"><td>Subtotal {family}</td><td></td><td></td>\
             <td class=\"num\">{points}</td><td class=\"num\">{max}</td><td class=\"num\">{lost}</td></tr>"
        )
    };
    let expected = [
        (
            "Financial strength",
            subtotal("Financial strength", "60", "70", "10"),
        ),
        ("Operations", subtotal("Operations", "40", "45", "5")),
        ("Solvency", subtotal("Solvency", "27.5", "75", "47.5")),
        ("Collateral", subtotal("Collateral", "10", "20", "10")),
        (
            "Payment behaviour",
            subtotal("Payment behaviour", "38", "60", "22"),
        ),
    ];
    let mut previous = 0;
    for (family, subtotal_row) in &expected {
        let heading = html
            .find(&format!(
                "<tr class=\"family\"><th colspan=\"6\">{family}</th></tr>"
            ))
            .unwrap_or_else(|| panic!("no heading for {family}"));
        let subtotal_at = html
            .find(subtotal_row)
            .unwrap_or_else(|| panic!("no {subtotal_row}"));
        assert!(
            previous < heading && heading < subtotal_at,
            "{family} out of order"
        );
        previous = subtotal_at;
    }
    // Solvency's characteristics sit between its heading and its subtotal, in model order.
    let solvency = &html[html.find(">Solvency</th>").expect("solvency")
        ..html.find(&expected[2].1).expect("subtotal")];
    assert!(solvency.find("Current ratio") < solvency.find("Debt-to-assets"));
    assert!(solvency.contains("Interest coverage"));
    assert!(!solvency.contains("Net margin"));

    assert!(html.contains(
        "<tr class=\"total\"><td>Characteristics total</td><td></td><td></td>\
         <td class=\"num\">175.5</td><td class=\"num\">270</td><td class=\"num\">94.5</td></tr>"
    ));
    assert!(row_containing(&html, "<td>Base points</td>").contains("<td class=\"num\">100.0</td>"));
    assert!(row_containing(&html, "<td>Score</td>").contains("<td class=\"num\">275.5</td>"));
}

#[test]
fn breakdown_subtotal_is_not_available_when_points_do_not_parse() {
    let mut report = full_report();
    let rating = report
        .rating
        .as_mut()
        .expect("the full report has a rating");
    rating.breakdown[0].points = "twelve".to_owned();
    let html = render_html(&report);
    assert!(row_containing(&html, "Subtotal Solvency").contains("<td class=\"num\">n/a</td>"));
    assert!(row_containing(&html, "Subtotal Operations").contains("<td class=\"num\">40</td>"));
}

#[test]
fn statements_show_the_three_newest_with_ratios() {
    let html = render_html(&full_report());
    let fy2025 = html
        .find("<th class=\"num\">FY 2025</th>")
        .expect("FY 2025 column");
    let fy2024 = html
        .find("<th class=\"num\">FY 2024</th>")
        .expect("FY 2024 column");
    let fy2023 = html
        .find("<th class=\"num\">FY 2023</th>")
        .expect("FY 2023 column");
    assert!(fy2025 < fy2024 && fy2024 < fy2023);
    assert!(!html.contains("FY 2022"));
    assert_eq!(
        row_containing(&html, "<td>Current ratio</td><td class=\"num\">1.18"),
        "<tr><td>Current ratio</td><td class=\"num\">1.18</td>\
         <td class=\"num\">1.22</td><td class=\"num\">1.25</td></tr>"
    );
    assert!(
        row_containing(&html, "<td>Interest coverage</td><td class=\"num\">n/a").contains("n/a")
    );
    assert!(row_containing(&html, "<td>Revenue</td>").contains(">52300000.00<"));
    assert!(
        row_containing(&html, "<td>Altman Z&#39;&#39;-score</td><td class=\"num\">")
            .contains(">3.1234<")
    );
    assert!(row_containing(&html, "<td>Altman zone</td>").contains(">Safe<"));
    assert!(row_containing(&html, "<td>Period end</td>").contains(">2025-12-31<"));
    for label in [
        "Debt-to-assets",
        "Net margin",
        "Return on assets",
        "Currency",
    ] {
        assert!(
            html.contains(&format!("<tr><td>{label}</td><td class=\"num\">")),
            "{label}"
        );
    }
}

#[test]
fn bureau_report_and_trade_references_are_shown() {
    let html = render_html(&full_report());
    assert!(fact_row(&html, "Agency").contains("Dun &amp; Bradstreet"));
    assert!(fact_row(&html, "Report date").contains("2026-02-15"));
    assert!(fact_row(&html, "Agency rating").contains("3A2"));
    assert!(fact_row(&html, "Lawsuits").contains("<td>1</td>"));
    assert!(fact_row(&html, "Tax compliance").contains("<td>Compliant</td>"));
    let reference = row_containing(&html, "Stahlwerk Nord AG");
    assert!(reference.contains("250000.00 EUR"));
    assert!(reference.contains("<td>Slow</td>"));
    assert!(reference.contains("<td class=\"num\">12</td>"));
}

#[test]
fn grade_history_and_overrides_are_shown() {
    let html = render_html(&full_report());
    let newest = html.find("<td>rat-311</td>").expect("newest rating");
    let older = html.find("<td>rat-207</td>").expect("older rating");
    assert!(newest < older);
    assert!(row_containing(&html, "<td>rat-207</td>").contains("<td>Scheduled review</td>"));
    let proposal = row_containing(&html, "<td>ovr-19</td>");
    for expected in [
        "<td>BB</td><td>BBB</td><td class=\"num\">+1</td>",
        "<td>Approved</td>",
        "<td>Credit manager</td>",
        "<td>alice (Analyst)</td>",
        "<td>2026-03-31 15:00 UTC</td>",
        "<td>bob (Credit manager)</td>",
        "<td>2026-04-01 09:30 UTC</td>",
        "<td>Guarantee checked</td>",
    ] {
        assert!(
            proposal.contains(expected),
            "{expected} missing from {proposal}"
        );
    }
}

#[test]
fn a_grade_waiting_for_approval_is_shown_as_not_in_force_with_its_chain() {
    let mut report = full_report();
    let rating = report
        .rating
        .as_mut()
        .expect("the full report has a rating");
    rating.override_id.clear();
    rating.grade_approval_id = "ovr-20".to_owned();
    let step = |roles: Vec<Role>, inform_only: bool| ApprovalStep {
        roles: roles.into_iter().map(|role| role as i32).collect(),
        inform_only,
        ..ApprovalStep::default()
    };
    report.overrides.push(RatingOverride {
        override_id: "ovr-20".to_owned(),
        decision_kind: DecisionKind::RatingApproval as i32,
        model_grade: "BB".to_owned(),
        proposed_grade: "BB".to_owned(),
        status: ApprovalStatus::Pending as i32,
        approval_chain: Some(ApprovalChain {
            steps: vec![
                step(vec![Role::CreditManager], false),
                step(vec![Role::GeneralManager], false),
                step(vec![Role::Board], true),
            ],
            ..ApprovalChain::default()
        }),
        ..RatingOverride::default()
    });
    let html = render_html(&report);
    assert!(
        fact_row(&html, "Model grade").contains("not in force: waits for approval ovr-20"),
        "{html}"
    );
    let waiting = row_containing(&html, "<td>ovr-20</td>");
    assert!(waiting.contains("<td>Rating approval</td>"), "{waiting}");
    assert!(
        waiting.contains("<td>Credit manager, then General manager</td>"),
        "{waiting}"
    );
    let earlier = row_containing(&html, "<td>ovr-19</td>");
    assert!(earlier.contains("<td>Rating override</td>"), "{earlier}");
}

#[test]
fn empty_report_renders_and_says_there_is_no_rating() {
    let html = render_html(&RatingReport::default());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("There is no rating for this customer."));
    assert!(html.contains("No rating, so no reasons."));
    assert!(html.contains("<h2>Scorecard breakdown</h2>"));
    assert!(html.contains("No financial statements on file."));
    assert!(html.contains("No bureau report was used."));
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn pd_is_a_percentage_with_two_decimals() {
    assert_eq!(pd_percent("0.0030"), "0.30 %");
    assert_eq!(pd_percent("0.25"), "25.00 %");
    assert_eq!(pd_percent("1"), "100.00 %");
    // Half-even at the third decimal of the percentage.
    assert_eq!(pd_percent("0.00125"), "0.12 %");
    assert_eq!(pd_percent("0.00135"), "0.14 %");
    assert_eq!(pd_percent("0.001251"), "0.13 %");
    assert_eq!(pd_percent("not a number"), "not a number");
    assert_eq!(pd_percent(""), "n/a");
}

#[test]
fn dates_and_times_are_iso_like() {
    assert_eq!(date(Some(&civil(2026, 3, 31))), "2026-03-31");
    assert_eq!(date(Some(&Date::default())), "n/a");
    assert_eq!(date(None), "n/a");
    assert_eq!(
        timestamp(Some(&at(2026, 3, 31, 14, 5))),
        "2026-03-31 14:05 UTC"
    );
    assert_eq!(timestamp(None), "n/a");
}

#[test]
fn enum_values_read_as_words() {
    let trigger = |value| enum_words(value, "RATING_TRIGGER_", RatingTrigger::as_str_name);
    assert_eq!(
        trigger(RatingTrigger::FinancialStatement as i32),
        "Financial statement"
    );
    assert_eq!(trigger(RatingTrigger::Manual as i32), "Manual");
    assert_eq!(trigger(0), "not set");
    assert_eq!(trigger(99), "unknown");
    assert_eq!(altman_zone(AltmanZone::Distress as i32), "Distress");
    assert_eq!(altman_zone(AltmanZone::Unspecified as i32), "n/a");
    assert_eq!(signed_notches(-2), "-2");
    assert_eq!(signed_notches(0), "0");
}

#[test]
fn stale_inputs_and_the_next_stale_day_are_shown() {
    let mut report = full_report();
    let fresh = render_html(&report);
    assert!(fresh.contains("<h2>Credit file freshness</h2>"));
    assert!(fresh.contains("Every input was current when the customer was rated."));
    if let Some(rating) = report.rating.as_mut() {
        rating.stale_inputs = vec![Reason {
            code: "EXPIRED_DOCUMENT".into(),
            message: "the guarantee is valid until 2026-11-30: stale since 2026-12-01".into(),
            metadata: [("input".to_owned(), "doc_1".to_owned())]
                .into_iter()
                .collect(),
        }];
        rating.inputs_stale_on = Some(civil(2027, 1, 6));
    }
    let stale = render_html(&report);
    assert!(stale.contains("Rated on stale inputs:"));
    assert!(stale.contains(
        "<li><strong>EXPIRED_DOCUMENT</strong>: the guarantee is valid until 2026-11-30: stale since 2026-12-01</li>"
    ));
    assert!(
        stale.contains("The next input goes stale on 2027-01-06"),
        "{stale}"
    );
}
