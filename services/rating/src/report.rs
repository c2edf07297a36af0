//! The rating report as one self-contained HTML page for a credit committee
//! (`GetRatingReportResponse.html`).
//!
//! The page carries everything inline — styles included, no scripts, no links to fetch — so it
//! can be mailed, archived with the committee minutes and printed as it is. Every text that
//! comes from the report goes through [`escape`]: names, justifications and notes are user
//! input. Decimals are shown as the contract gives them (exact strings); only the PD is turned
//! into a percentage, with `rust_decimal`, and subtotals are summed with it.

use std::fmt::{self, Write};
use std::str::FromStr;

use chrono::DateTime;
use credit_proto::v1::{
    Actor, AltmanZone, ApprovalStatus, BureauReport, CharacteristicScore, CustomerKind,
    CustomerStatus, Date, FinancialStatement, FiscalPeriodType, GradeHistoryEntry, IndicatorFamily,
    Money, PaymentExperience, RatedCustomerSummary, Rating, RatingOverride, RatingReport,
    RatingTrigger, Role, TaxComplianceStatus, TradeReference, rating_input,
};
use prost_types::Timestamp;
use rust_decimal::{Decimal, RoundingStrategy};

/// Shown for a value the report does not have (an absent optional field, an underivable ratio).
const NOT_AVAILABLE: &str = "n/a";

/// How many statement periods the committee compares side by side.
const MAX_STATEMENTS: usize = 3;

/// Inline styles: readable on screen, compact and black-on-white on paper.
const STYLE: &str = r#"
body { font-family: "Helvetica Neue", Arial, sans-serif; font-size: 14px; color: #1a1a1a;
       max-width: 1100px; margin: 24px auto; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 24px; margin: 0 0 4px 0; }
h2 { font-size: 18px; margin: 28px 0 8px 0; border-bottom: 2px solid #1f3a5f; color: #1f3a5f; }
h3 { font-size: 15px; margin: 18px 0 6px 0; }
.kicker { text-transform: uppercase; letter-spacing: 0.08em; color: #555; font-size: 12px; }
.none { color: #555; font-style: italic; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px 0; }
th, td { border: 1px solid #c8c8c8; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #eef2f7; }
tbody th { background: #f7f7f7; width: 30%; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.family th { background: #dde5ef; text-align: left; }
tr.subtotal td { font-weight: 600; background: #f7f7f7; }
tr.total td { font-weight: 700; border-top: 2px solid #1a1a1a; }
.grade { font-size: 20px; font-weight: 700; }
@page { size: A4; margin: 15mm; }
@media print {
  body { font-size: 10pt; margin: 0; max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table { break-inside: auto; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  thead th, tbody th, tr.family th, tr.subtotal td { background: none; }
}
"#;

/// Renders `report` as one self-contained HTML page (UTF-8).
pub fn render_html(report: &RatingReport) -> String {
    let mut html = String::with_capacity(32 * 1024);
    // `fmt::Write` for `String` never fails; the `Result` only exists because the trait is
    // generic over writers that can.
    let _ = write_page(&mut html, report);
    html
}

fn write_page(html: &mut String, report: &RatingReport) -> fmt::Result {
    let customer_name = customer_display_name(report.customer.as_ref());
    write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Rating report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&customer_name)
    )?;
    write_header(html, report, &customer_name)?;
    write_rating_summary(html, report)?;
    write_reasons(html, report.rating.as_ref())?;
    write_breakdown(html, report.rating.as_ref())?;
    write_statements(html, &report.statements)?;
    write_bureau_report(html, report.bureau_report.as_ref())?;
    write_trade_references(html, &report.trade_references)?;
    write_grade_history(html, &report.grade_history)?;
    write_overrides(html, &report.overrides)?;
    html.push_str("</body>\n</html>\n");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

fn write_header(html: &mut String, report: &RatingReport, customer_name: &str) -> fmt::Result {
    write!(
        html,
        "<header>\n<div class=\"kicker\">Credit rating report</div>\n<h1>{}</h1>\n",
        escape(customer_name)
    )?;
    let mut table = Table::key_values(html)?;
    match report.customer.as_ref() {
        Some(customer) => {
            table.pair("Customer id", &customer.customer_id)?;
            table.pair(
                "Kind",
                &enum_words(customer.kind, "CUSTOMER_KIND_", CustomerKind::as_str_name),
            )?;
            table.pair("Country", or_not_available(&customer.country))?;
            table.pair("Industry", or_not_available(&customer.industry_code))?;
            table.pair(
                "Status",
                &enum_words(
                    customer.status,
                    "CUSTOMER_STATUS_",
                    CustomerStatus::as_str_name,
                ),
            )?;
            if !customer.group_id.is_empty() {
                table.pair(
                    "Group",
                    &format!("{} ({})", customer.group_name, customer.group_id),
                )?;
            }
            table.pair("Founded", &date(customer.founding_date.as_ref()))?;
        }
        None => table.pair("Customer", "No customer data in the report")?,
    }
    table.pair("Report generated", &timestamp(report.generated_at.as_ref()))?;
    table.finish()?;
    html.push_str("</header>\n");
    Ok(())
}

fn write_rating_summary(html: &mut String, report: &RatingReport) -> fmt::Result {
    html.push_str("<section>\n<h2>Rating summary</h2>\n");
    let Some(rating) = report.rating.as_ref() else {
        html.push_str("<p class=\"none\">There is no rating for this customer.</p>\n</section>\n");
        return Ok(());
    };
    writeln!(
        html,
        "<p><span class=\"grade\">{}</span> &nbsp; PD {}</p>",
        escape(or_not_available(&rating.grade)),
        escape(&pd_percent(&rating.pd))
    )?;
    let mut table = Table::key_values(html)?;
    table.pair("Effective grade", or_not_available(&rating.grade))?;
    table.pair("Probability of default", &pd_percent(&rating.pd))?;
    // The model grade is only worth a line when a person moved the grade away from it.
    let overridden = !rating.override_id.is_empty() || rating.model_grade != rating.grade;
    if overridden {
        let override_note = if rating.override_id.is_empty() {
            "overridden".to_owned()
        } else {
            format!("overridden by override {}", rating.override_id)
        };
        table.pair(
            "Model grade",
            &format!(
                "{} (PD {}), {override_note}",
                rating.model_grade,
                pd_percent(&rating.model_pd)
            ),
        )?;
    }
    table.pair("Score", or_not_available(&rating.score))?;
    let model_name = if report.model_display_name.is_empty() {
        String::new()
    } else {
        format!("{}: ", report.model_display_name)
    };
    table.pair(
        "Model",
        &format!(
            "{model_name}{} version {}",
            rating.model_id, rating.model_version
        ),
    )?;
    table.pair("Master scale", or_not_available(&rating.master_scale_id))?;
    table.pair("Rated at", &timestamp(rating.rated_at.as_ref()))?;
    table.pair("Rated by", &actor(rating.rated_by.as_ref()))?;
    table.pair(
        "Trigger",
        &enum_words(
            rating.trigger,
            "RATING_TRIGGER_",
            RatingTrigger::as_str_name,
        ),
    )?;
    table.pair("Next review", &date(rating.next_review_date.as_ref()))?;
    table.pair(
        "In force",
        if rating.current {
            "Current rating"
        } else {
            "Superseded"
        },
    )?;
    table.pair("Rating id", &rating.rating_id)?;
    if !rating.note.is_empty() {
        table.pair("Note", &rating.note)?;
    }
    table.finish()?;
    html.push_str("</section>\n");
    Ok(())
}

fn write_reasons(html: &mut String, rating: Option<&Rating>) -> fmt::Result {
    html.push_str("<section>\n<h2>Reasons</h2>\n");
    let Some(rating) = rating else {
        html.push_str("<p class=\"none\">No rating, so no reasons.</p>\n</section>\n");
        return Ok(());
    };
    let reasons = &rating.reasons;
    if reasons.is_empty() {
        html.push_str(
            "<p class=\"none\">No reasons: no characteristic lost points.</p>\n</section>\n",
        );
        return Ok(());
    }
    html.push_str("<ol>\n");
    for reason in reasons {
        let points_lost = reason
            .metadata
            .get("points_lost")
            .map_or(NOT_AVAILABLE, String::as_str);
        writeln!(
            html,
            "<li><strong>{}</strong>: {} (points lost: {})</li>",
            escape(&reason.code),
            escape(&reason.message),
            escape(points_lost)
        )?;
    }
    html.push_str("</ol>\n</section>\n");
    Ok(())
}

/// Families in the order the committee reads them, with their titles.
const FAMILIES: [(IndicatorFamily, &str); 5] = [
    (IndicatorFamily::FinancialStrength, "Financial strength"),
    (IndicatorFamily::Operations, "Operations"),
    (IndicatorFamily::Solvency, "Solvency"),
    (IndicatorFamily::Collateral, "Collateral"),
    (IndicatorFamily::PaymentBehaviour, "Payment behaviour"),
];

const BREAKDOWN_COLUMNS: [Column<'static>; 6] = [
    Column::text("Characteristic"),
    Column::text("Value"),
    Column::text("Bin"),
    Column::figure("Points"),
    Column::figure("Max points"),
    Column::figure("Points lost"),
];

fn write_breakdown(html: &mut String, rating: Option<&Rating>) -> fmt::Result {
    html.push_str("<section>\n<h2>Scorecard breakdown</h2>\n");
    let breakdown = rating
        .map(|rating| rating.breakdown.as_slice())
        .unwrap_or_default();
    if breakdown.is_empty() {
        html.push_str("<p class=\"none\">No scorecard breakdown.</p>\n</section>\n");
        return Ok(());
    }
    let mut table = Table::start(html, &BREAKDOWN_COLUMNS)?;
    for (family, title) in FAMILIES {
        let members: Vec<&CharacteristicScore> = breakdown
            .iter()
            .filter(|score| score.family == family as i32)
            .collect();
        write_family(&mut table, title, &members)?;
    }
    // A characteristic without a known family must still count: it is part of the score.
    let others: Vec<&CharacteristicScore> = breakdown
        .iter()
        .filter(|score| {
            !FAMILIES
                .iter()
                .any(|(family, _)| score.family == *family as i32)
        })
        .collect();
    write_family(&mut table, "Other", &others)?;

    let characteristic_points = sum_decimals(breakdown.iter().map(|score| score.points.as_str()));
    table.row_with_class(
        "total",
        &[
            "Characteristics total",
            "",
            "",
            &decimal_or_not_available(characteristic_points),
            &decimal_or_not_available(sum_decimals(
                breakdown.iter().map(|score| score.max_points.as_str()),
            )),
            &decimal_or_not_available(sum_decimals(
                breakdown.iter().map(|score| score.points_lost.as_str()),
            )),
        ],
    )?;
    // The score is base points plus the characteristics; base points are not in the report,
    // so they are derived to let the reader check the sum.
    let score_text = rating.map_or("", |rating| rating.score.as_str());
    let base_points = parse_decimal(score_text)
        .zip(characteristic_points)
        .and_then(|(score, points)| score.checked_sub(points));
    table.row(&[
        "Base points",
        "",
        "",
        &decimal_or_not_available(base_points),
        "",
        "",
    ])?;
    table.row_with_class(
        "total",
        &["Score", "", "", or_not_available(score_text), "", ""],
    )?;
    table.finish()?;
    html.push_str("</section>\n");
    Ok(())
}

/// One family of the breakdown: a heading row, its characteristics and a subtotal row.
fn write_family(
    table: &mut Table<'_>,
    title: &str,
    members: &[&CharacteristicScore],
) -> fmt::Result {
    if members.is_empty() {
        return Ok(());
    }
    table.group_heading(title)?;
    for score in members {
        let display_name = if score.display_name.is_empty() {
            &score.code
        } else {
            &score.display_name
        };
        table.row(&[
            display_name,
            &characteristic_value(score),
            &score.bin_label,
            &score.points,
            &score.max_points,
            &score.points_lost,
        ])?;
    }
    table.row_with_class(
        "subtotal",
        &[
            &format!("Subtotal {title}"),
            "",
            "",
            &decimal_or_not_available(sum_decimals(members.iter().map(|s| s.points.as_str()))),
            &decimal_or_not_available(sum_decimals(members.iter().map(|s| s.max_points.as_str()))),
            &decimal_or_not_available(sum_decimals(members.iter().map(|s| s.points_lost.as_str()))),
        ],
    )
}

/// One row of the statements comparison: a label and how to read it from a statement.
type StatementLine = (&'static str, fn(&FinancialStatement) -> String);

/// Key figures and ratios, in the order an analyst reads a statement.
const STATEMENT_LINES: [StatementLine; 26] = [
    ("Period end", |s| date(s.period_end_date.as_ref())),
    ("Audited", |s| yes_no(s.audited).to_owned()),
    ("Version", |s| s.version.to_string()),
    ("Currency", |s| or_not_available(&s.currency).to_owned()),
    ("Revenue", |s| money(income(s, |i| i.revenue.as_ref()))),
    ("Gross profit", |s| {
        money(income(s, |i| i.gross_profit.as_ref()))
    }),
    ("EBIT", |s| money(income(s, |i| i.ebit.as_ref()))),
    ("Interest expense", |s| {
        money(income(s, |i| i.interest_expense.as_ref()))
    }),
    ("Net income", |s| {
        money(income(s, |i| i.net_income.as_ref()))
    }),
    ("Operating cash flow", |s| {
        money(
            s.cash_flow_statement
                .as_ref()
                .and_then(|c| c.operating_cash_flow.as_ref()),
        )
    }),
    ("Cash", |s| money(balance(s, |b| b.cash.as_ref()))),
    ("Current assets", |s| {
        money(balance(s, |b| b.current_assets.as_ref()))
    }),
    ("Total assets", |s| {
        money(balance(s, |b| b.total_assets.as_ref()))
    }),
    ("Current liabilities", |s| {
        money(balance(s, |b| b.current_liabilities.as_ref()))
    }),
    ("Total liabilities", |s| {
        money(balance(s, |b| b.total_liabilities.as_ref()))
    }),
    ("Retained earnings", |s| {
        money(balance(s, |b| b.retained_earnings.as_ref()))
    }),
    ("Equity", |s| money(balance(s, |b| b.equity.as_ref()))),
    ("Current ratio", |s| {
        ratio(s, |r| r.current_ratio.as_deref())
    }),
    ("Debt-to-assets", |s| {
        ratio(s, |r| r.debt_to_assets.as_deref())
    }),
    ("Net margin", |s| ratio(s, |r| r.net_margin.as_deref())),
    ("Return on assets", |s| {
        ratio(s, |r| r.return_on_assets.as_deref())
    }),
    ("Interest coverage", |s| {
        ratio(s, |r| r.interest_coverage.as_deref())
    }),
    ("Operating cash flow / total liabilities", |s| {
        ratio(s, |r| r.operating_cash_flow_to_total_liabilities.as_deref())
    }),
    ("Equity / total liabilities", |s| {
        ratio(s, |r| r.equity_to_total_liabilities.as_deref())
    }),
    ("Altman Z''-score", |s| {
        ratio(s, |r| r.altman_z_score.as_deref())
    }),
    ("Altman zone", |s| {
        altman_zone(s.ratios.as_ref().map_or(0, |r| r.altman_zone))
    }),
];

fn write_statements(html: &mut String, statements: &[FinancialStatement]) -> fmt::Result {
    html.push_str("<section>\n<h2>Financial statements</h2>\n");
    if statements.is_empty() {
        html.push_str("<p class=\"none\">No financial statements on file.</p>\n</section>\n");
        return Ok(());
    }
    // The contract already sends them newest first; sorting again keeps the columns right
    // even if a caller builds the report differently.
    let mut newest_first: Vec<&FinancialStatement> = statements.iter().collect();
    newest_first.sort_by_key(|statement| {
        std::cmp::Reverse((
            date_key(statement.period_end_date.as_ref()),
            statement.version,
        ))
    });
    newest_first.truncate(MAX_STATEMENTS);

    let periods: Vec<String> = newest_first.iter().map(|s| period_label(s)).collect();
    let mut columns = vec![Column::text("")];
    columns.extend(periods.iter().map(|period| Column::figure(period)));
    let mut table = Table::start(html, &columns)?;
    for (label, read) in STATEMENT_LINES {
        let values: Vec<String> = newest_first.iter().map(|s| read(s)).collect();
        let mut cells: Vec<&str> = vec![label];
        cells.extend(values.iter().map(String::as_str));
        table.row(&cells)?;
    }
    table.finish()?;
    html.push_str("</section>\n");
    Ok(())
}

fn write_bureau_report(html: &mut String, bureau_report: Option<&BureauReport>) -> fmt::Result {
    html.push_str("<section>\n<h2>Bureau report</h2>\n");
    let Some(bureau) = bureau_report else {
        html.push_str("<p class=\"none\">No bureau report was used.</p>\n</section>\n");
        return Ok(());
    };
    let mut table = Table::key_values(html)?;
    table.pair("Agency", or_not_available(&bureau.agency))?;
    table.pair("Report date", &date(bureau.report_date.as_ref()))?;
    table.pair("Score", or_not_available(&bureau.score))?;
    table.pair("Agency rating", or_not_available(&bureau.agency_rating))?;
    table.pair("Lawsuits", &bureau.lawsuits_count.to_string())?;
    table.pair(
        "Tax compliance",
        &enum_words(
            bureau.tax_compliance_status,
            "TAX_COMPLIANCE_STATUS_",
            TaxComplianceStatus::as_str_name,
        ),
    )?;
    if !bureau.summary.is_empty() {
        table.pair("Summary", &bureau.summary)?;
    }
    if !bureau.external_reference.is_empty() {
        table.pair("Agency reference", &bureau.external_reference)?;
    }
    table.finish()?;
    html.push_str("</section>\n");
    Ok(())
}

const TRADE_REFERENCE_COLUMNS: [Column<'static>; 7] = [
    Column::text("Supplier"),
    Column::figure("Relationship (months)"),
    Column::figure("Typical credit line"),
    Column::text("Payment experience"),
    Column::figure("Days beyond terms"),
    Column::text("Date"),
    Column::text("Notes"),
];

fn write_trade_references(html: &mut String, references: &[TradeReference]) -> fmt::Result {
    html.push_str("<section>\n<h3>Trade references</h3>\n");
    if references.is_empty() {
        html.push_str("<p class=\"none\">No trade references on file.</p>\n</section>\n");
        return Ok(());
    }
    let mut table = Table::start(html, &TRADE_REFERENCE_COLUMNS)?;
    for reference in references {
        table.row(&[
            &reference.supplier_name,
            &reference.relationship_months.to_string(),
            &money_with_currency(reference.typical_credit_line.as_ref()),
            &enum_words(
                reference.payment_experience,
                "PAYMENT_EXPERIENCE_",
                PaymentExperience::as_str_name,
            ),
            &reference.days_beyond_terms.to_string(),
            &date(reference.reference_date.as_ref()),
            &reference.notes,
        ])?;
    }
    table.finish()?;
    html.push_str("</section>\n");
    Ok(())
}

const GRADE_HISTORY_COLUMNS: [Column<'static>; 8] = [
    Column::text("Rated at"),
    Column::text("Rating id"),
    Column::figure("Score"),
    Column::text("Model grade"),
    Column::text("Effective grade"),
    Column::figure("PD"),
    Column::text("Overridden"),
    Column::text("Trigger"),
];

fn write_grade_history(html: &mut String, history: &[GradeHistoryEntry]) -> fmt::Result {
    html.push_str("<section>\n<h2>Grade history</h2>\n");
    if history.is_empty() {
        html.push_str("<p class=\"none\">No ratings in the history.</p>\n</section>\n");
        return Ok(());
    }
    let mut newest_first: Vec<&GradeHistoryEntry> = history.iter().collect();
    newest_first.sort_by_key(|entry| std::cmp::Reverse(timestamp_key(entry.rated_at.as_ref())));
    let mut table = Table::start(html, &GRADE_HISTORY_COLUMNS)?;
    for entry in newest_first {
        table.row(&[
            &timestamp(entry.rated_at.as_ref()),
            &entry.rating_id,
            &entry.score,
            &entry.model_grade,
            &entry.grade,
            &pd_percent(&entry.pd),
            yes_no(entry.overridden),
            &enum_words(entry.trigger, "RATING_TRIGGER_", RatingTrigger::as_str_name),
        ])?;
    }
    table.finish()?;
    html.push_str("</section>\n");
    Ok(())
}

const OVERRIDE_COLUMNS: [Column<'static>; 12] = [
    Column::text("Override id"),
    Column::text("Model grade"),
    Column::text("Proposed grade"),
    Column::figure("Notches"),
    Column::text("Justification"),
    Column::text("Status"),
    Column::text("Checker role"),
    Column::text("Proposed by"),
    Column::text("Proposed at"),
    Column::text("Decided by"),
    Column::text("Decided at"),
    Column::text("Decision comment"),
];

fn write_overrides(html: &mut String, overrides: &[RatingOverride]) -> fmt::Result {
    html.push_str("<section>\n<h2>Overrides</h2>\n");
    if overrides.is_empty() {
        html.push_str("<p class=\"none\">No overrides.</p>\n</section>\n");
        return Ok(());
    }
    let mut newest_first: Vec<&RatingOverride> = overrides.iter().collect();
    newest_first.sort_by_key(|o| std::cmp::Reverse(timestamp_key(o.proposed_at.as_ref())));
    let mut table = Table::start(html, &OVERRIDE_COLUMNS)?;
    for proposal in newest_first {
        let decided = proposal.decided_by.is_some() || proposal.decided_at.is_some();
        table.row(&[
            &proposal.override_id,
            &proposal.model_grade,
            &proposal.proposed_grade,
            &signed_notches(proposal.notches),
            &proposal.justification,
            &enum_words(
                proposal.status,
                "APPROVAL_STATUS_",
                ApprovalStatus::as_str_name,
            ),
            &enum_words(proposal.required_role, "ROLE_", Role::as_str_name),
            &actor(proposal.proposed_by.as_ref()),
            &timestamp(proposal.proposed_at.as_ref()),
            // A pending proposal has no checker yet; "n/a" would read like missing data.
            &if decided {
                actor(proposal.decided_by.as_ref())
            } else {
                "pending".to_owned()
            },
            &if decided {
                timestamp(proposal.decided_at.as_ref())
            } else {
                "pending".to_owned()
            },
            &proposal.decision_comment,
        ])?;
    }
    table.finish()?;
    html.push_str("</section>\n");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Table writer
// ---------------------------------------------------------------------------------------------

/// A column of a [`Table`]: its heading, and whether its cells are figures (right-aligned so
/// decimals line up).
#[derive(Debug, Clone, Copy)]
struct Column<'t> {
    title: &'t str,
    figure: bool,
}

impl<'t> Column<'t> {
    const fn text(title: &'t str) -> Self {
        Column {
            title,
            figure: false,
        }
    }

    const fn figure(title: &'t str) -> Self {
        Column {
            title,
            figure: true,
        }
    }
}

/// Writes one HTML table. Every cell is escaped here, so sections never build markup from
/// report text themselves.
#[derive(Debug)]
struct Table<'a> {
    html: &'a mut String,
    figure_columns: Vec<bool>,
}

impl<'a> Table<'a> {
    /// A table with a heading row.
    fn start(html: &'a mut String, columns: &[Column<'_>]) -> Result<Self, fmt::Error> {
        html.push_str("<table>\n<thead><tr>");
        for column in columns {
            let class = if column.figure { " class=\"num\"" } else { "" };
            write!(html, "<th{class}>{}</th>", escape(column.title))?;
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        Ok(Table {
            html,
            figure_columns: columns.iter().map(|column| column.figure).collect(),
        })
    }

    /// A two-column table of labelled values, filled with [`Table::pair`].
    fn key_values(html: &'a mut String) -> Result<Self, fmt::Error> {
        html.push_str("<table class=\"facts\">\n<tbody>\n");
        Ok(Table {
            html,
            figure_columns: Vec::new(),
        })
    }

    fn pair(&mut self, label: &str, value: &str) -> fmt::Result {
        writeln!(
            self.html,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            escape(label),
            escape(value)
        )
    }

    fn row(&mut self, cells: &[&str]) -> fmt::Result {
        self.row_with_class("", cells)
    }

    fn row_with_class(&mut self, class: &str, cells: &[&str]) -> fmt::Result {
        if class.is_empty() {
            self.html.push_str("<tr>");
        } else {
            write!(self.html, "<tr class=\"{}\">", escape(class))?;
        }
        for (index, cell) in cells.iter().enumerate() {
            let figure = self.figure_columns.get(index).copied().unwrap_or(false);
            let class = if figure { " class=\"num\"" } else { "" };
            write!(self.html, "<td{class}>{}</td>", escape(cell))?;
        }
        self.html.push_str("</tr>\n");
        Ok(())
    }

    /// A row spanning the whole table that opens a group (an indicator family).
    fn group_heading(&mut self, title: &str) -> fmt::Result {
        writeln!(
            self.html,
            "<tr class=\"family\"><th colspan=\"{}\">{}</th></tr>",
            self.figure_columns.len().max(1),
            escape(title)
        )
    }

    fn finish(self) -> fmt::Result {
        self.html.push_str("</tbody>\n</table>\n");
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting of single values
// ---------------------------------------------------------------------------------------------

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn or_not_available(text: &str) -> &str {
    if text.is_empty() { NOT_AVAILABLE } else { text }
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

fn customer_display_name(customer: Option<&RatedCustomerSummary>) -> String {
    match customer {
        Some(customer) if !customer.display_name.is_empty() => customer.display_name.clone(),
        Some(customer) if !customer.customer_id.is_empty() => customer.customer_id.clone(),
        _ => "Unknown customer".to_owned(),
    }
}

/// A PD fraction as a percentage with two decimals ("0.0030" → "0.30 %"), computed exactly.
/// A string that is not a decimal is shown as it is, so the reader still sees what was stored.
fn pd_percent(pd: &str) -> String {
    if pd.is_empty() {
        return NOT_AVAILABLE.to_owned();
    }
    let Some(percent) =
        parse_decimal(pd).and_then(|fraction| fraction.checked_mul(Decimal::ONE_HUNDRED))
    else {
        return pd.to_owned();
    };
    // Half-even, the suite's one rounding rule for decimals.
    let mut rounded = percent.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(2);
    format!("{rounded} %")
}

fn parse_decimal(text: &str) -> Option<Decimal> {
    Decimal::from_str(text.trim()).ok()
}

/// The exact sum of decimal strings; `None` when one of them is not a decimal, because a
/// subtotal that silently skips a value would be wrong.
fn sum_decimals<'s>(mut values: impl Iterator<Item = &'s str>) -> Option<Decimal> {
    values.try_fold(Decimal::ZERO, |sum, value| {
        sum.checked_add(parse_decimal(value)?)
    })
}

fn decimal_or_not_available(value: Option<Decimal>) -> String {
    value.map_or_else(|| NOT_AVAILABLE.to_owned(), |decimal| decimal.to_string())
}

fn characteristic_value(score: &CharacteristicScore) -> String {
    if score.missing {
        return "missing".to_owned();
    }
    match score.input.as_ref().and_then(|input| input.value.as_ref()) {
        Some(rating_input::Value::Number(number)) => number.clone(),
        Some(rating_input::Value::Category(category)) => category.clone(),
        None => "missing".to_owned(),
    }
}

/// A civil date as ISO 8601 ("2026-03-31"). An all-zero date is proto3's "not set".
fn date(value: Option<&Date>) -> String {
    match value {
        Some(date) if (date.year, date.month, date.day) != (0, 0, 0) => {
            format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
        }
        _ => NOT_AVAILABLE.to_owned(),
    }
}

fn date_key(value: Option<&Date>) -> (i32, i32, i32) {
    value.map_or((0, 0, 0), |date| (date.year, date.month, date.day))
}

/// An instant in UTC to the minute ("2026-03-31 14:05 UTC"); committees do not need seconds.
fn timestamp(value: Option<&Timestamp>) -> String {
    let Some(value) = value else {
        return NOT_AVAILABLE.to_owned();
    };
    let nanos = u32::try_from(value.nanos).unwrap_or(0);
    match DateTime::from_timestamp(value.seconds, nanos) {
        Some(instant) => instant.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "invalid time".to_owned(),
    }
}

fn timestamp_key(value: Option<&Timestamp>) -> (i64, i32) {
    value.map_or((i64::MIN, 0), |value| (value.seconds, value.nanos))
}

fn actor(value: Option<&Actor>) -> String {
    let Some(actor) = value else {
        return NOT_AVAILABLE.to_owned();
    };
    let principal = or_not_available(&actor.principal);
    if actor.roles.is_empty() {
        return principal.to_owned();
    }
    let roles: Vec<String> = actor
        .roles
        .iter()
        .map(|role| enum_words(*role, "ROLE_", Role::as_str_name))
        .collect();
    format!("{principal} ({})", roles.join(", "))
}

fn signed_notches(notches: i32) -> String {
    if notches == 0 {
        "0".to_owned()
    } else {
        format!("{notches:+}")
    }
}

fn altman_zone(zone: i32) -> String {
    // UNSPECIFIED means the score could not be computed, not that someone forgot to set it.
    if zone == AltmanZone::Unspecified as i32 {
        return NOT_AVAILABLE.to_owned();
    }
    enum_words(zone, "ALTMAN_ZONE_", AltmanZone::as_str_name)
}

/// Human words for a value of a generated enum: `RATING_TRIGGER_FINANCIAL_STATEMENT` with
/// prefix `RATING_TRIGGER_` reads "Financial statement". A number this build does not know (a
/// newer server) reads "unknown" rather than failing the report.
fn enum_words<E: TryFrom<i32>>(
    value: i32,
    prefix: &str,
    name_of: fn(&E) -> &'static str,
) -> String {
    let Ok(known) = E::try_from(value) else {
        return "unknown".to_owned();
    };
    let name = name_of(&known);
    let words = name.strip_prefix(prefix).unwrap_or(name);
    if words == "UNSPECIFIED" {
        return "not set".to_owned();
    }
    let lower = words.replace('_', " ").to_lowercase();
    let mut characters = lower.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

fn period_label(statement: &FinancialStatement) -> String {
    match FiscalPeriodType::try_from(statement.period_type) {
        Ok(FiscalPeriodType::Quarterly) => {
            format!("{} Q{}", statement.fiscal_year, statement.fiscal_quarter)
        }
        _ => format!("FY {}", statement.fiscal_year),
    }
}

fn income<'s>(
    statement: &'s FinancialStatement,
    line: fn(&'s credit_proto::v1::IncomeStatement) -> Option<&'s Money>,
) -> Option<&'s Money> {
    statement.income_statement.as_ref().and_then(line)
}

fn balance<'s>(
    statement: &'s FinancialStatement,
    line: fn(&'s credit_proto::v1::BalanceSheet) -> Option<&'s Money>,
) -> Option<&'s Money> {
    statement.balance_sheet.as_ref().and_then(line)
}

fn ratio<'s>(
    statement: &'s FinancialStatement,
    value: fn(&'s credit_proto::v1::FinancialRatios) -> Option<&'s str>,
) -> String {
    statement
        .ratios
        .as_ref()
        .and_then(value)
        .map_or_else(|| NOT_AVAILABLE.to_owned(), str::to_owned)
}

/// An amount as given; the statement's currency is its own row.
fn money(value: Option<&Money>) -> String {
    match value {
        Some(money) if !money.amount.is_empty() => money.amount.clone(),
        _ => NOT_AVAILABLE.to_owned(),
    }
}

fn money_with_currency(value: Option<&Money>) -> String {
    match value {
        Some(money) if !money.amount.is_empty() => format!("{} {}", money.amount, money.currency)
            .trim_end()
            .to_owned(),
        _ => NOT_AVAILABLE.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use credit_proto::v1::{
        BalanceSheet, CashFlowStatement, FinancialRatios, IncomeStatement, RatingInput, Reason,
    };

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
        assert!(
            fact_row(&html, "Model").contains("Enterprise default: enterprise-default version 3")
        );
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
        assert!(
            row_containing(&html, "<td>Base points</td>").contains("<td class=\"num\">100.0</td>")
        );
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
            row_containing(&html, "<td>Interest coverage</td><td class=\"num\">n/a")
                .contains("n/a")
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
}
