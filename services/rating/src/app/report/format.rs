//! The report's table writer and the formatting of single values: escaping, percentages,
//! dates, actors and the contract's enums as words.

use std::fmt::{self, Write};
use std::str::FromStr;

use chrono::DateTime;
use credit_proto::v1::{
    Actor, AltmanZone, CharacteristicScore, Date, FinancialStatement, FiscalPeriodType, Money,
    RatedCustomerSummary, Role, rating_input,
};
use prost_types::Timestamp;

use super::NOT_AVAILABLE;
use rust_decimal::{Decimal, RoundingStrategy};

// ---------------------------------------------------------------------------------------------
// Table writer
// ---------------------------------------------------------------------------------------------

/// A column of a [`Table`]: its heading, and whether its cells are figures (right-aligned so
/// decimals line up).
#[derive(Debug, Clone, Copy)]
pub(super) struct Column<'t> {
    title: &'t str,
    figure: bool,
}

impl<'t> Column<'t> {
    pub(super) const fn text(title: &'t str) -> Self {
        Column {
            title,
            figure: false,
        }
    }

    pub(super) const fn figure(title: &'t str) -> Self {
        Column {
            title,
            figure: true,
        }
    }
}

/// Writes one HTML table. Every cell is escaped here, so sections never build markup from
/// report text themselves.
#[derive(Debug)]
pub(super) struct Table<'a> {
    html: &'a mut String,
    figure_columns: Vec<bool>,
}

impl<'a> Table<'a> {
    /// A table with a heading row.
    pub(super) fn start(html: &'a mut String, columns: &[Column<'_>]) -> Result<Self, fmt::Error> {
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
    pub(super) fn key_values(html: &'a mut String) -> Result<Self, fmt::Error> {
        html.push_str("<table class=\"facts\">\n<tbody>\n");
        Ok(Table {
            html,
            figure_columns: Vec::new(),
        })
    }

    pub(super) fn pair(&mut self, label: &str, value: &str) -> fmt::Result {
        writeln!(
            self.html,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            escape(label),
            escape(value)
        )
    }

    pub(super) fn row(&mut self, cells: &[&str]) -> fmt::Result {
        self.row_with_class("", cells)
    }

    pub(super) fn row_with_class(&mut self, class: &str, cells: &[&str]) -> fmt::Result {
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
    pub(super) fn group_heading(&mut self, title: &str) -> fmt::Result {
        writeln!(
            self.html,
            "<tr class=\"family\"><th colspan=\"{}\">{}</th></tr>",
            self.figure_columns.len().max(1),
            escape(title)
        )
    }

    pub(super) fn finish(self) -> fmt::Result {
        self.html.push_str("</tbody>\n</table>\n");
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting of single values
// ---------------------------------------------------------------------------------------------

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn escape(text: &str) -> String {
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

pub(super) fn or_not_available(text: &str) -> &str {
    if text.is_empty() { NOT_AVAILABLE } else { text }
}

pub(super) fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

pub(super) fn customer_display_name(customer: Option<&RatedCustomerSummary>) -> String {
    match customer {
        Some(customer) if !customer.display_name.is_empty() => customer.display_name.clone(),
        Some(customer) if !customer.customer_id.is_empty() => customer.customer_id.clone(),
        _ => "Unknown customer".to_owned(),
    }
}

/// A PD fraction as a percentage with two decimals ("0.0030" → "0.30 %"), computed exactly.
/// A string that is not a decimal is shown as it is, so the reader still sees what was stored.
pub(super) fn pd_percent(pd: &str) -> String {
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

pub(super) fn parse_decimal(text: &str) -> Option<Decimal> {
    Decimal::from_str(text.trim()).ok()
}

/// The exact sum of decimal strings; `None` when one of them is not a decimal, because a
/// subtotal that silently skips a value would be wrong.
pub(super) fn sum_decimals<'s>(mut values: impl Iterator<Item = &'s str>) -> Option<Decimal> {
    values.try_fold(Decimal::ZERO, |sum, value| {
        sum.checked_add(parse_decimal(value)?)
    })
}

pub(super) fn decimal_or_not_available(value: Option<Decimal>) -> String {
    value.map_or_else(|| NOT_AVAILABLE.to_owned(), |decimal| decimal.to_string())
}

pub(super) fn characteristic_value(score: &CharacteristicScore) -> String {
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
pub(super) fn date(value: Option<&Date>) -> String {
    match value {
        Some(date) if (date.year, date.month, date.day) != (0, 0, 0) => {
            format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
        }
        _ => NOT_AVAILABLE.to_owned(),
    }
}

pub(super) fn date_key(value: Option<&Date>) -> (i32, i32, i32) {
    value.map_or((0, 0, 0), |date| (date.year, date.month, date.day))
}

/// An instant in UTC to the minute ("2026-03-31 14:05 UTC"); committees do not need seconds.
pub(super) fn timestamp(value: Option<&Timestamp>) -> String {
    let Some(value) = value else {
        return NOT_AVAILABLE.to_owned();
    };
    let nanos = u32::try_from(value.nanos).unwrap_or(0);
    match DateTime::from_timestamp(value.seconds, nanos) {
        Some(instant) => instant.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "invalid time".to_owned(),
    }
}

pub(super) fn timestamp_key(value: Option<&Timestamp>) -> (i64, i32) {
    value.map_or((i64::MIN, 0), |value| (value.seconds, value.nanos))
}

pub(super) fn actor(value: Option<&Actor>) -> String {
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

pub(super) fn signed_notches(notches: i32) -> String {
    if notches == 0 {
        "0".to_owned()
    } else {
        format!("{notches:+}")
    }
}

pub(super) fn altman_zone(zone: i32) -> String {
    // UNSPECIFIED means the score could not be computed, not that someone forgot to set it.
    if zone == AltmanZone::Unspecified as i32 {
        return NOT_AVAILABLE.to_owned();
    }
    enum_words(zone, "ALTMAN_ZONE_", AltmanZone::as_str_name)
}

/// Human words for a value of a generated enum: `RATING_TRIGGER_FINANCIAL_STATEMENT` with
/// prefix `RATING_TRIGGER_` reads "Financial statement". A number this build does not know (a
/// newer server) reads "unknown" rather than failing the report.
pub(super) fn enum_words<E: TryFrom<i32>>(
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

pub(super) fn period_label(statement: &FinancialStatement) -> String {
    match FiscalPeriodType::try_from(statement.period_type) {
        Ok(FiscalPeriodType::Quarterly) => {
            format!("{} Q{}", statement.fiscal_year, statement.fiscal_quarter)
        }
        _ => format!("FY {}", statement.fiscal_year),
    }
}

pub(super) fn income<'s>(
    statement: &'s FinancialStatement,
    line: fn(&'s credit_proto::v1::IncomeStatement) -> Option<&'s Money>,
) -> Option<&'s Money> {
    statement.income_statement.as_ref().and_then(line)
}

pub(super) fn balance<'s>(
    statement: &'s FinancialStatement,
    line: fn(&'s credit_proto::v1::BalanceSheet) -> Option<&'s Money>,
) -> Option<&'s Money> {
    statement.balance_sheet.as_ref().and_then(line)
}

pub(super) fn ratio<'s>(
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
pub(super) fn money(value: Option<&Money>) -> String {
    match value {
        Some(money) if !money.amount.is_empty() => money.amount.clone(),
        _ => NOT_AVAILABLE.to_owned(),
    }
}

pub(super) fn money_with_currency(value: Option<&Money>) -> String {
    match value {
        Some(money) if !money.amount.is_empty() => format!("{} {}", money.amount, money.currency)
            .trim_end()
            .to_owned(),
        _ => NOT_AVAILABLE.to_owned(),
    }
}
