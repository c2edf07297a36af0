//! The rating report as one self-contained HTML page for a credit committee
//! (`GetRatingReportResponse.html`).
//!
//! The page carries everything inline — styles included, no scripts, no links to fetch — so it
//! can be mailed, archived with the committee minutes and printed as it is. Every text that
//! comes from the report goes through [`escape`]: names, justifications and notes are user
//! input. Decimals are shown as the contract gives them (exact strings); only the PD is turned
//! into a percentage, with `rust_decimal`, and subtotals are summed with it.

use std::fmt::{self, Write};

use credit_proto::v1::{
    ApprovalStatus, BureauReport, CharacteristicScore, CustomerKind, CustomerStatus, DecisionKind,
    FinancialStatement, GradeHistoryEntry, IndicatorFamily, PaymentExperience, Rating,
    RatingOverride, RatingReport, RatingTrigger, Role, TaxComplianceStatus, TradeReference,
};

use format::{
    Column, Table, actor, altman_zone, balance, characteristic_value, customer_display_name, date,
    date_key, decimal_or_not_available, enum_words, escape, income, money, money_with_currency,
    or_not_available, parse_decimal, pd_percent, period_label, ratio, signed_notches, sum_decimals,
    timestamp, timestamp_key, yes_no,
};

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
.warning { color: #8a1c1c; font-weight: bold; }
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
    write_freshness(html, report.rating.as_ref())?;
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
        let override_note = if !rating.override_id.is_empty() {
            format!("overridden by override {}", rating.override_id)
        } else if !rating.grade_approval_id.is_empty() {
            format!(
                "not in force: waits for approval {}",
                rating.grade_approval_id
            )
        } else {
            "overridden".to_owned()
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

/// The inputs stale at rating, and when the next one goes stale (the credit policy's
/// freshness rules).
fn write_freshness(html: &mut String, rating: Option<&Rating>) -> fmt::Result {
    let Some(rating) = rating else {
        return Ok(());
    };
    html.push_str("<section>\n<h2>Credit file freshness</h2>\n");
    if rating.stale_inputs.is_empty() {
        html.push_str("<p>Every input was current when the customer was rated.</p>\n");
    } else {
        html.push_str("<p class=\"warning\">Rated on stale inputs:</p>\n<ul>\n");
        for stale in &rating.stale_inputs {
            writeln!(
                html,
                "<li><strong>{}</strong>: {}</li>",
                escape(&stale.code),
                escape(&stale.message)
            )?;
        }
        html.push_str("</ul>\n");
    }
    if rating.inputs_stale_on.is_some() {
        writeln!(
            html,
            "<p>The next input goes stale on {}: collect a fresh one and rate again before then.</p>",
            date(rating.inputs_stale_on.as_ref())
        )?;
    }
    html.push_str("</section>\n");
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

const OVERRIDE_COLUMNS: [Column<'static>; 13] = [
    Column::text("Override id"),
    Column::text("Kind"),
    Column::text("Model grade"),
    Column::text("Proposed grade"),
    Column::figure("Notches"),
    Column::text("Justification"),
    Column::text("Status"),
    Column::text("Approved by role"),
    Column::text("Proposed by"),
    Column::text("Proposed at"),
    Column::text("Decided by"),
    Column::text("Decided at"),
    Column::text("Decision comment"),
];

/// Who approves: the roles of the chain's approving steps in order ("CREDIT MANAGER, then
/// GENERAL MANAGER"), or the one checker's role of an override made before chains.
fn approving_roles(proposal: &RatingOverride) -> String {
    let Some(chain) = &proposal.approval_chain else {
        return enum_words(proposal.required_role, "ROLE_", Role::as_str_name);
    };
    chain
        .steps
        .iter()
        .filter(|step| !step.inform_only)
        .map(|step| {
            step.roles
                .iter()
                .map(|role| enum_words(*role, "ROLE_", Role::as_str_name))
                .collect::<Vec<_>>()
                .join(" or ")
        })
        .collect::<Vec<_>>()
        .join(", then ")
}

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
            // Overrides recorded before grade approvals existed carry no kind: overrides.
            &enum_words(
                if proposal.decision_kind == DecisionKind::Unspecified as i32 {
                    DecisionKind::RatingOverride as i32
                } else {
                    proposal.decision_kind
                },
                "DECISION_KIND_",
                DecisionKind::as_str_name,
            ),
            &proposal.model_grade,
            &proposal.proposed_grade,
            &signed_notches(proposal.notches),
            &proposal.justification,
            &enum_words(
                proposal.status,
                "APPROVAL_STATUS_",
                ApprovalStatus::as_str_name,
            ),
            &approving_roles(proposal),
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

mod format;
mod gather;

pub use gather::gather_report;

#[cfg(test)]
mod tests;
