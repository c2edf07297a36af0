//! Financial statements: the checked figures a statement holds, the rules they obey, and the
//! ratios (with the Altman Z''-score) that analysts and the rating service read from them.
//!
//! A statement is refused with every problem listed at once, as field violations, so an
//! analyst keying a statement from paper fixes it in one pass (the API reads the lines;
//! [`check_parts_within_totals`] and [`check_balance`] here judge them). What is accepted is
//! internally consistent: non-negative where the accounts cannot be negative, parts within
//! their totals, and a balance sheet that balances. [`ratios`] then derives the figures of the
//! glossary; a ratio that cannot be computed is absent, never infinite.

use chrono::NaiveDate;
use credit_core::{Currency, Money, Violations};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// No statement the suite will ever see predates this; earlier years are typing mistakes.
pub const EARLIEST_FISCAL_YEAR: i32 = 1900;

/// Decimal places of every published ratio (see [`round_ratio`]).
const RATIO_DECIMAL_PLACES: u32 = 4;

/// Share of total assets by which a balance sheet may miss balancing: 0.01 %. Large companies
/// publish figures rounded to thousands, so their lines may not add up to the unit.
const BALANCE_TOLERANCE_SHARE: Decimal = Decimal::from_parts(1, 0, 0, false, 4);

// Coefficients of Altman's Z''-score for non-manufacturers and emerging markets (1995).
const Z_WEIGHT_WORKING_CAPITAL: Decimal = Decimal::from_parts(656, 0, 0, false, 2); // 6.56
const Z_WEIGHT_RETAINED_EARNINGS: Decimal = Decimal::from_parts(326, 0, 0, false, 2); // 3.26
const Z_WEIGHT_EBIT: Decimal = Decimal::from_parts(672, 0, 0, false, 2); // 6.72
const Z_WEIGHT_EQUITY: Decimal = Decimal::from_parts(105, 0, 0, false, 2); // 1.05

/// Above this Z'' a company is in the safe zone.
const Z_SAFE_ABOVE: Decimal = Decimal::from_parts(260, 0, 0, false, 2); // 2.60
/// Below this Z'' a company is in the distress zone.
const Z_DISTRESS_BELOW: Decimal = Decimal::from_parts(110, 0, 0, false, 2); // 1.10

/// Length of the period a statement covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodType {
    Annual,
    Quarterly,
}

impl PeriodType {
    /// Months the period covers, to turn its revenue into an average month's (limits
    /// proposes a multiple of it).
    pub fn months(self) -> u8 {
        match self {
            PeriodType::Annual => 12,
            PeriodType::Quarterly => 3,
        }
    }
}

/// The period a statement covers. `fiscal_quarter` is `Some(1..=4)` exactly when the period is
/// quarterly. `fiscal_year` is the company's own label for its fiscal year and is not tied to
/// `period_end`: fiscal years ending in March or June are named differently from company to
/// company, so no rule between the two would hold for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatementPeriod {
    pub period_type: PeriodType,
    pub fiscal_year: i32,
    pub fiscal_quarter: Option<u8>,
    pub period_end: NaiveDate,
}

/// The lines of a statement, all in `currency`, exact as submitted. Decimals are stored as
/// strings so that the JSON the store keeps is exact. Optional lines are `None` when the
/// caller did not send them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementFigures {
    /// ISO 4217 code, validated on parse.
    pub currency: String,

    // Balance sheet, at the period end.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub cash: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub current_assets: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_assets: Decimal,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub current_liabilities: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_liabilities: Decimal,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub retained_earnings: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str")]
    pub equity: Decimal,

    // Income statement, for the period.
    #[serde(with = "rust_decimal::serde::str")]
    pub revenue: Decimal,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub gross_profit: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub ebit: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub interest_expense: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub net_income: Option<Decimal>,

    // Cash flow statement, for the period.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub operating_cash_flow: Option<Decimal>,
}

/// A statement that passed every check (the API reads one from a request), ready to be
/// stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewStatement {
    pub period: StatementPeriod,
    pub audited: bool,
    pub figures: StatementFigures,
}

/// The balance-sheet lines that parsed; `None` where absent or refused.
#[derive(Debug, Default)]
pub struct BalanceSheetLines {
    pub cash: Option<Decimal>,
    pub current_assets: Option<Decimal>,
    pub total_assets: Option<Decimal>,
    pub current_liabilities: Option<Decimal>,
    pub total_liabilities: Option<Decimal>,
    pub retained_earnings: Option<Decimal>,
    pub equity: Option<Decimal>,
}

/// The income-statement lines that parsed; `None` where absent or refused.
#[derive(Debug, Default)]
pub struct IncomeStatementLines {
    pub revenue: Option<Decimal>,
    pub gross_profit: Option<Decimal>,
    pub ebit: Option<Decimal>,
    pub interest_expense: Option<Decimal>,
    pub net_income: Option<Decimal>,
}

/// Field path of the balance sheet, where a violation of the sheet as a whole is reported.
pub const BALANCE_SHEET: &str = "statement.balance_sheet";
pub const INCOME_STATEMENT: &str = "statement.income_statement";
pub const CASH_FLOW_STATEMENT: &str = "statement.cash_flow_statement";

/// Records a violation on `part_field` when `part` exceeds `total`; silent when either is
/// absent (its own problem, if any, is recorded already).
fn check_part_within_total(
    violations: &mut Violations,
    part_field: &str,
    part: Option<Decimal>,
    total_name: &str,
    total: Option<Decimal>,
) {
    if let (Some(part), Some(total)) = (part, total)
        && part > total
    {
        violations.add(part_field, format!("must not exceed {total_name}"));
    }
}

/// Records a violation for every part that exceeds its total (cash, current assets, current
/// liabilities, gross profit).
pub fn check_parts_within_totals(
    violations: &mut Violations,
    sheet: &BalanceSheetLines,
    income: &IncomeStatementLines,
) {
    // Cash is part of current assets, which are part of total assets. Without current assets
    // cash is still bounded by total assets.
    match sheet.current_assets {
        Some(_) => check_part_within_total(
            violations,
            "statement.balance_sheet.cash",
            sheet.cash,
            "current assets",
            sheet.current_assets,
        ),
        None => check_part_within_total(
            violations,
            "statement.balance_sheet.cash",
            sheet.cash,
            "total assets",
            sheet.total_assets,
        ),
    }
    check_part_within_total(
        violations,
        "statement.balance_sheet.current_assets",
        sheet.current_assets,
        "total assets",
        sheet.total_assets,
    );
    check_part_within_total(
        violations,
        "statement.balance_sheet.current_liabilities",
        sheet.current_liabilities,
        "total liabilities",
        sheet.total_liabilities,
    );
    check_part_within_total(
        violations,
        "statement.income_statement.gross_profit",
        income.gross_profit,
        "revenue",
        income.revenue,
    );
}

/// How far total assets may be from total liabilities plus equity: one whole currency unit,
/// which absorbs lines rounded to units, or 0.01 % of total assets when that is more.
fn balance_tolerance(total_assets: Decimal) -> Decimal {
    // Multiplying by 0.0001 shrinks the value, so it cannot overflow.
    let proportional = total_assets
        .checked_mul(BALANCE_TOLERANCE_SHARE)
        .unwrap_or(Decimal::ONE);
    proportional.max(Decimal::ONE)
}

/// An amount for a message: at the currency's minor units when the currency is known.
fn amount_for_message(amount: Decimal, currency: Option<Currency>) -> String {
    match currency {
        Some(currency) => Money::new(amount, currency).amount_string(),
        None => amount.to_string(),
    }
}

/// Total assets must equal total liabilities plus equity, within the balance tolerance: one
/// currency unit, or 0.01 % of total assets when that is more.
pub fn check_balance(
    violations: &mut Violations,
    sheet: &BalanceSheetLines,
    currency: Option<Currency>,
) {
    let (Some(total_assets), Some(total_liabilities), Some(equity)) =
        (sheet.total_assets, sheet.total_liabilities, sheet.equity)
    else {
        return;
    };
    let Some(difference) = total_liabilities
        .checked_add(equity)
        .and_then(|liabilities_and_equity| total_assets.checked_sub(liabilities_and_equity))
    else {
        violations.add(
            BALANCE_SHEET,
            "total liabilities plus equity is out of range",
        );
        return;
    };
    let tolerance = balance_tolerance(total_assets);
    if difference.abs() <= tolerance {
        return;
    }
    let direction = if difference.is_sign_positive() {
        "exceed"
    } else {
        "fall short of"
    };
    violations.add(
        BALANCE_SHEET,
        format!(
            "does not balance: total assets {direction} total liabilities plus equity by {} \
             (at most {} allowed)",
            amount_for_message(difference.abs(), currency),
            amount_for_message(tolerance, currency),
        ),
    );
}

/// Zone of an Altman Z''-score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AltmanZone {
    /// Z'' > 2.60.
    Safe,
    /// 1.10 ≤ Z'' ≤ 2.60.
    Grey,
    /// Z'' < 1.10.
    Distress,
}

impl AltmanZone {
    /// The zone of a published (already rounded) score. Zoning the rounded score keeps zone
    /// and shown score consistent: a score shown as 2.6000 is never called safe.
    pub fn of_score(score: Decimal) -> Self {
        if score > Z_SAFE_ABOVE {
            Self::Safe
        } else if score < Z_DISTRESS_BELOW {
            Self::Distress
        } else {
            Self::Grey
        }
    }
}

/// Ratios derived from a statement, each rounded by [`round_ratio`]; `None` when a denominator
/// is zero, an input line is absent, or the arithmetic would overflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ratios {
    /// Current assets / current liabilities.
    pub current_ratio: Option<Decimal>,
    /// Total liabilities / total assets.
    pub debt_to_assets: Option<Decimal>,
    /// Net income / revenue.
    pub net_margin: Option<Decimal>,
    /// Net income / total assets.
    pub return_on_assets: Option<Decimal>,
    /// EBIT / interest expense.
    pub interest_coverage: Option<Decimal>,
    /// Operating cash flow / total liabilities.
    pub ocf_to_total_liabilities: Option<Decimal>,
    /// X1 = (current assets − current liabilities) / total assets.
    pub working_capital_to_total_assets: Option<Decimal>,
    /// X2 = retained earnings / total assets.
    pub retained_earnings_to_total_assets: Option<Decimal>,
    /// X3 = EBIT / total assets.
    pub ebit_to_total_assets: Option<Decimal>,
    /// X4 = equity / total liabilities.
    pub equity_to_total_liabilities: Option<Decimal>,
    /// Z'' = 6.56·X1 + 3.26·X2 + 6.72·X3 + 1.05·X4, from the unrounded X's.
    pub altman_z_score: Option<Decimal>,
    /// Zone of `altman_z_score`; `None` exactly when the score is.
    pub altman_zone: Option<AltmanZone>,
}

/// THE single rounding of ratios: half-even to 4 decimal places, and always shown with 4
/// places ("2.0000") so every ratio reads the same. Every ratio [`ratios`] returns passes
/// through here exactly once, after all arithmetic on unrounded values.
fn round_ratio(ratio: Decimal) -> Decimal {
    let mut rounded =
        ratio.round_dp_with_strategy(RATIO_DECIMAL_PLACES, RoundingStrategy::MidpointNearestEven);
    // Only widens the scale after rounding, so it cannot change the value.
    rounded.rescale(RATIO_DECIMAL_PLACES);
    // A tiny negative ratio rounds to zero; "-0.0000" would puzzle a reader.
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded
}

/// `numerator / denominator`, unrounded; `None` when either is absent, the denominator is
/// zero, or the quotient overflows.
fn quotient(numerator: Option<Decimal>, denominator: Option<Decimal>) -> Option<Decimal> {
    let denominator = denominator.filter(|denominator| !denominator.is_zero())?;
    numerator?.checked_div(denominator)
}

/// Altman's Z'' from unrounded X1..X4, unrounded; `None` when any is absent or on overflow.
fn altman_z_double_prime(
    working_capital_to_total_assets: Option<Decimal>,
    retained_earnings_to_total_assets: Option<Decimal>,
    ebit_to_total_assets: Option<Decimal>,
    equity_to_total_liabilities: Option<Decimal>,
) -> Option<Decimal> {
    let terms = [
        Z_WEIGHT_WORKING_CAPITAL.checked_mul(working_capital_to_total_assets?)?,
        Z_WEIGHT_RETAINED_EARNINGS.checked_mul(retained_earnings_to_total_assets?)?,
        Z_WEIGHT_EBIT.checked_mul(ebit_to_total_assets?)?,
        Z_WEIGHT_EQUITY.checked_mul(equity_to_total_liabilities?)?,
    ];
    terms
        .into_iter()
        .try_fold(Decimal::ZERO, |sum, term| sum.checked_add(term))
}

/// The ratios of the glossary and Altman's Z''-score with its zone.
pub fn ratios(figures: &StatementFigures) -> Ratios {
    let total_assets = Some(figures.total_assets);
    let total_liabilities = Some(figures.total_liabilities);
    let working_capital = figures
        .current_assets
        .zip(figures.current_liabilities)
        .and_then(|(current_assets, current_liabilities)| {
            current_assets.checked_sub(current_liabilities)
        });

    // Unrounded: Z'' is computed from these, and only the published values are rounded.
    let x1_working_capital = quotient(working_capital, total_assets);
    let x2_retained_earnings = quotient(figures.retained_earnings, total_assets);
    let x3_ebit = quotient(figures.ebit, total_assets);
    let x4_equity = quotient(Some(figures.equity), total_liabilities);
    let altman_z_score =
        altman_z_double_prime(x1_working_capital, x2_retained_earnings, x3_ebit, x4_equity)
            .map(round_ratio);

    Ratios {
        current_ratio: quotient(figures.current_assets, figures.current_liabilities)
            .map(round_ratio),
        debt_to_assets: quotient(total_liabilities, total_assets).map(round_ratio),
        net_margin: quotient(figures.net_income, Some(figures.revenue)).map(round_ratio),
        return_on_assets: quotient(figures.net_income, total_assets).map(round_ratio),
        interest_coverage: quotient(figures.ebit, figures.interest_expense).map(round_ratio),
        ocf_to_total_liabilities: quotient(figures.operating_cash_flow, total_liabilities)
            .map(round_ratio),
        working_capital_to_total_assets: x1_working_capital.map(round_ratio),
        retained_earnings_to_total_assets: x2_retained_earnings.map(round_ratio),
        ebit_to_total_assets: x3_ebit.map(round_ratio),
        equity_to_total_liabilities: x4_equity.map(round_ratio),
        altman_z_score,
        altman_zone: altman_z_score.map(AltmanZone::of_score),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn z_score_zones_have_inclusive_grey_bounds() {
        assert_eq!(AltmanZone::of_score(dec("2.6001")), AltmanZone::Safe);
        assert_eq!(AltmanZone::of_score(dec("2.6000")), AltmanZone::Grey);
        assert_eq!(AltmanZone::of_score(dec("1.1000")), AltmanZone::Grey);
        assert_eq!(AltmanZone::of_score(dec("1.0999")), AltmanZone::Distress);
        assert_eq!(AltmanZone::of_score(dec("-3")), AltmanZone::Distress);
    }

    #[test]
    fn ratios_round_half_even_to_four_places_once() {
        assert_eq!(round_ratio(dec("0.00005")).to_string(), "0.0000");
        assert_eq!(round_ratio(dec("0.00015")).to_string(), "0.0002");
        assert_eq!(round_ratio(dec("0.00025")).to_string(), "0.0002");
        assert_eq!(round_ratio(dec("-0.00015")).to_string(), "-0.0002");
        assert_eq!(round_ratio(dec("-0.00001")).to_string(), "0.0000");
        assert_eq!(round_ratio(dec("3")).to_string(), "3.0000");
    }
}
