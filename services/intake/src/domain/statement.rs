//! Financial statements: turning what a caller submits into checked figures, and the ratios
//! (with the Altman Z''-score) that analysts and the rating service read from them.
//!
//! [`parse_statement`] refuses a statement with every problem listed at once, as field
//! violations, so an analyst keying a statement from paper fixes it in one pass. What it
//! accepts is internally consistent: non-negative where the accounts cannot be negative, parts
//! within their totals, and a balance sheet that balances. [`ratios`] then derives the figures
//! of the glossary; a ratio that cannot be computed is absent, never infinite.

use chrono::{Datelike, NaiveDate};
use credit_core::money::parse_decimal;
use credit_core::{Currency, Money, MoneyError, ServiceError, Violations};
use credit_proto::v1 as pb;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// No statement the suite will ever see predates this; earlier years are typing mistakes.
const EARLIEST_FISCAL_YEAR: i32 = 1900;

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

impl From<PeriodType> for pb::FiscalPeriodType {
    fn from(period_type: PeriodType) -> Self {
        match period_type {
            PeriodType::Annual => Self::Annual,
            PeriodType::Quarterly => Self::Quarterly,
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

/// A statement that passed every check of [`parse_statement`], ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewStatement {
    pub period: StatementPeriod,
    pub audited: bool,
    pub figures: StatementFigures,
}

/// Whether a line must be sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    Required,
    Optional,
}

/// Whether a line may be negative.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sign {
    NonNegative,
    AnySign,
}

/// Parses the Money lines of one statement against its currency, recording every problem.
struct LineParser<'a> {
    violations: &'a mut Violations,
    /// `None` when the statement's currency is missing or unknown (already reported).
    statement_currency: Option<Currency>,
}

impl LineParser<'_> {
    /// The amount of one line, or `None` when it is absent or refused (a refusal and a missing
    /// required line are recorded).
    fn line(
        &mut self,
        field: &str,
        line: Option<&pb::Money>,
        presence: Presence,
        sign: Sign,
    ) -> Option<Decimal> {
        let Some(line) = line else {
            if presence == Presence::Required {
                self.violations.add(field, "is required");
            }
            return None;
        };
        let amount = match self.statement_currency {
            Some(statement_currency) => {
                // An empty currency on a line means "the statement's".
                let line_currency = if line.currency.is_empty() {
                    statement_currency.code()
                } else {
                    line.currency.as_str()
                };
                let money = self
                    .violations
                    .check(field, Money::parse(&line.amount, line_currency))?;
                if money.currency() != statement_currency {
                    self.violations.add(
                        field,
                        format!(
                            "currency {} differs from the statement currency {statement_currency}",
                            money.currency()
                        ),
                    );
                    return None;
                }
                money.amount()
            }
            // Without a statement currency the amount's form can still be checked, so the
            // caller learns of every problem in one answer.
            None => self.violations.check(field, parse_decimal(&line.amount))?,
        };
        if sign == Sign::NonNegative && amount < Decimal::ZERO {
            self.violations.add(field, MoneyError::Negative.to_string());
            return None;
        }
        Some(amount)
    }
}

/// The balance-sheet lines that parsed; `None` where absent or refused.
#[derive(Default)]
struct BalanceSheetLines {
    cash: Option<Decimal>,
    current_assets: Option<Decimal>,
    total_assets: Option<Decimal>,
    current_liabilities: Option<Decimal>,
    total_liabilities: Option<Decimal>,
    retained_earnings: Option<Decimal>,
    equity: Option<Decimal>,
}

/// The income-statement lines that parsed; `None` where absent or refused.
#[derive(Default)]
struct IncomeStatementLines {
    revenue: Option<Decimal>,
    gross_profit: Option<Decimal>,
    ebit: Option<Decimal>,
    interest_expense: Option<Decimal>,
    net_income: Option<Decimal>,
}

const BALANCE_SHEET: &str = "statement.balance_sheet";
const INCOME_STATEMENT: &str = "statement.income_statement";
const CASH_FLOW_STATEMENT: &str = "statement.cash_flow_statement";

fn parse_balance_sheet(
    lines: &mut LineParser<'_>,
    sheet: Option<&pb::BalanceSheet>,
) -> BalanceSheetLines {
    use Presence::{Optional, Required};
    use Sign::{AnySign, NonNegative};
    let Some(sheet) = sheet else {
        // One violation for the section, not one per missing line.
        lines.violations.add(BALANCE_SHEET, "is required");
        return BalanceSheetLines::default();
    };
    let mut line = |name: &str, money: &Option<pb::Money>, presence, sign| {
        lines.line(
            &format!("{BALANCE_SHEET}.{name}"),
            money.as_ref(),
            presence,
            sign,
        )
    };
    BalanceSheetLines {
        cash: line("cash", &sheet.cash, Optional, NonNegative),
        current_assets: line(
            "current_assets",
            &sheet.current_assets,
            Optional,
            NonNegative,
        ),
        total_assets: line("total_assets", &sheet.total_assets, Required, NonNegative),
        current_liabilities: line(
            "current_liabilities",
            &sheet.current_liabilities,
            Optional,
            NonNegative,
        ),
        total_liabilities: line(
            "total_liabilities",
            &sheet.total_liabilities,
            Required,
            NonNegative,
        ),
        // An accumulated deficit makes retained earnings negative, and a deficit larger than
        // the paid-in capital makes equity negative.
        retained_earnings: line(
            "retained_earnings",
            &sheet.retained_earnings,
            Optional,
            AnySign,
        ),
        equity: line("equity", &sheet.equity, Required, AnySign),
    }
}

fn parse_income_statement(
    lines: &mut LineParser<'_>,
    income: Option<&pb::IncomeStatement>,
) -> IncomeStatementLines {
    use Presence::{Optional, Required};
    use Sign::{AnySign, NonNegative};
    let Some(income) = income else {
        lines.violations.add(INCOME_STATEMENT, "is required");
        return IncomeStatementLines::default();
    };
    let mut line = |name: &str, money: &Option<pb::Money>, presence, sign| {
        lines.line(
            &format!("{INCOME_STATEMENT}.{name}"),
            money.as_ref(),
            presence,
            sign,
        )
    };
    IncomeStatementLines {
        revenue: line("revenue", &income.revenue, Required, NonNegative),
        // Gross profit is negative when goods are sold below cost.
        gross_profit: line("gross_profit", &income.gross_profit, Optional, AnySign),
        ebit: line("ebit", &income.ebit, Optional, AnySign),
        interest_expense: line(
            "interest_expense",
            &income.interest_expense,
            Optional,
            NonNegative,
        ),
        net_income: line("net_income", &income.net_income, Optional, AnySign),
    }
}

/// The operating cash flow, if sent. The section itself is required by the contract even
/// though its only line is optional, so a caller states "no cash flow figures" explicitly.
fn parse_operating_cash_flow(
    lines: &mut LineParser<'_>,
    cash_flow: Option<&pb::CashFlowStatement>,
) -> Option<Decimal> {
    let Some(cash_flow) = cash_flow else {
        lines.violations.add(CASH_FLOW_STATEMENT, "is required");
        return None;
    };
    lines.line(
        &format!("{CASH_FLOW_STATEMENT}.operating_cash_flow"),
        cash_flow.operating_cash_flow.as_ref(),
        Presence::Optional,
        Sign::AnySign,
    )
}

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

fn check_parts_within_totals(
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

/// Total assets must equal total liabilities plus equity, within [`balance_tolerance`].
fn check_balance(
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

/// A civil date from the wire, or `None` when it is not a real date of years 1..=9999.
fn civil_date(date: &pb::Date) -> Option<NaiveDate> {
    if !(1..=9999).contains(&date.year) {
        return None;
    }
    NaiveDate::from_ymd_opt(
        date.year,
        u32::try_from(date.month).ok()?,
        u32::try_from(date.day).ok()?,
    )
}

fn parse_period(
    violations: &mut Violations,
    statement: &pb::FinancialStatement,
    today: NaiveDate,
) -> Option<StatementPeriod> {
    let period_type = match pb::FiscalPeriodType::try_from(statement.period_type) {
        Ok(pb::FiscalPeriodType::Annual) => Some(PeriodType::Annual),
        Ok(pb::FiscalPeriodType::Quarterly) => Some(PeriodType::Quarterly),
        Ok(pb::FiscalPeriodType::Unspecified) => {
            violations.add("statement.period_type", "is required");
            None
        }
        Err(_) => {
            violations.add("statement.period_type", "is not a known period type");
            None
        }
    };

    // `Some(quarter)` when the quarter fits the period type; unchecked without a period type.
    let fiscal_quarter = match period_type {
        Some(PeriodType::Annual) if statement.fiscal_quarter == 0 => Some(None),
        Some(PeriodType::Annual) => {
            violations.add(
                "statement.fiscal_quarter",
                "must be 0 for an annual statement",
            );
            None
        }
        Some(PeriodType::Quarterly) => match u8::try_from(statement.fiscal_quarter) {
            Ok(quarter @ 1..=4) => Some(Some(quarter)),
            _ => {
                violations.add(
                    "statement.fiscal_quarter",
                    "must be 1 to 4 for a quarterly statement",
                );
                None
            }
        },
        None => None,
    };

    // Next year is allowed: some companies name a fiscal year after the calendar year in
    // which it ends.
    let latest_fiscal_year = today.year() + 1;
    let fiscal_year =
        if (EARLIEST_FISCAL_YEAR..=latest_fiscal_year).contains(&statement.fiscal_year) {
            Some(statement.fiscal_year)
        } else {
            violations.add(
                "statement.fiscal_year",
                format!("must be between {EARLIEST_FISCAL_YEAR} and {latest_fiscal_year}"),
            );
            None
        };

    let period_end = match statement.period_end_date.as_ref().map(civil_date) {
        None => {
            violations.add("statement.period_end_date", "is required");
            None
        }
        Some(None) => {
            violations.add("statement.period_end_date", "is not a valid calendar date");
            None
        }
        Some(Some(period_end)) if period_end > today => {
            violations.add("statement.period_end_date", "must not be in the future");
            None
        }
        Some(Some(period_end)) => Some(period_end),
    };

    Some(StatementPeriod {
        period_type: period_type?,
        fiscal_year: fiscal_year?,
        fiscal_quarter: fiscal_quarter?,
        period_end: period_end?,
    })
}

/// Checks a submitted statement and returns it as domain values, or `InvalidArgument` with one
/// field violation per problem found. `today` is the caller's current civil date; periods may
/// not end after it. Output-only fields of `statement` (ids, version, ratios) are ignored.
pub fn parse_statement(
    statement: &pb::FinancialStatement,
    today: NaiveDate,
) -> Result<NewStatement, ServiceError> {
    let mut violations = Violations::new();
    let period = parse_period(&mut violations, statement, today);
    let currency = violations.check("statement.currency", Currency::parse(&statement.currency));

    let mut lines = LineParser {
        violations: &mut violations,
        statement_currency: currency,
    };
    let sheet = parse_balance_sheet(&mut lines, statement.balance_sheet.as_ref());
    let income = parse_income_statement(&mut lines, statement.income_statement.as_ref());
    let operating_cash_flow =
        parse_operating_cash_flow(&mut lines, statement.cash_flow_statement.as_ref());

    check_parts_within_totals(&mut violations, &sheet, &income);
    check_balance(&mut violations, &sheet, currency);
    violations.finish()?;

    let (
        Some(period),
        Some(currency),
        Some(total_assets),
        Some(total_liabilities),
        Some(equity),
        Some(revenue),
    ) = (
        period,
        currency,
        sheet.total_assets,
        sheet.total_liabilities,
        sheet.equity,
        income.revenue,
    )
    else {
        // Every `None` here recorded a violation, so `finish` has refused the statement above.
        return Err(ServiceError::internal(
            "statement passed its checks with a required part missing",
        ));
    };
    Ok(NewStatement {
        period,
        audited: statement.audited,
        figures: StatementFigures {
            currency: currency.code().to_owned(),
            cash: sheet.cash,
            current_assets: sheet.current_assets,
            total_assets,
            current_liabilities: sheet.current_liabilities,
            total_liabilities,
            retained_earnings: sheet.retained_earnings,
            equity,
            revenue,
            gross_profit: income.gross_profit,
            ebit: income.ebit,
            interest_expense: income.interest_expense,
            net_income: income.net_income,
            operating_cash_flow,
        },
    })
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

impl From<AltmanZone> for pb::AltmanZone {
    fn from(zone: AltmanZone) -> Self {
        match zone {
            AltmanZone::Safe => Self::Safe,
            AltmanZone::Grey => Self::Grey,
            AltmanZone::Distress => Self::Distress,
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

impl From<&Ratios> for pb::FinancialRatios {
    fn from(ratios: &Ratios) -> Self {
        let text = |ratio: Option<Decimal>| ratio.map(|ratio| ratio.to_string());
        Self {
            current_ratio: text(ratios.current_ratio),
            debt_to_assets: text(ratios.debt_to_assets),
            net_margin: text(ratios.net_margin),
            return_on_assets: text(ratios.return_on_assets),
            interest_coverage: text(ratios.interest_coverage),
            operating_cash_flow_to_total_liabilities: text(ratios.ocf_to_total_liabilities),
            working_capital_to_total_assets: text(ratios.working_capital_to_total_assets),
            retained_earnings_to_total_assets: text(ratios.retained_earnings_to_total_assets),
            ebit_to_total_assets: text(ratios.ebit_to_total_assets),
            equity_to_total_liabilities: text(ratios.equity_to_total_liabilities),
            altman_z_score: text(ratios.altman_z_score),
            // No score, no zone: UNSPECIFIED is the contract's "could not be computed".
            altman_zone: i32::from(
                ratios
                    .altman_zone
                    .map_or(pb::AltmanZone::Unspecified, pb::AltmanZone::from),
            ),
        }
    }
}

/// The figures as the wire shows them: each line a Money at the currency's minor units
/// ("1200000.00" CNY, "1200000" JPY); optional lines left unset when absent.
pub fn figures_to_proto(
    figures: &StatementFigures,
) -> (pb::BalanceSheet, pb::IncomeStatement, pb::CashFlowStatement) {
    // Figures from `parse_statement` always carry a known currency. Should a stored record
    // hold anything else, its amounts are shown exactly as stored rather than dropped.
    let currency = Currency::parse(&figures.currency).ok();
    let money = |amount: Decimal| match currency {
        Some(currency) => pb::Money::from(Money::new(amount, currency)),
        None => pb::Money {
            amount: amount.to_string(),
            currency: figures.currency.clone(),
        },
    };
    let optional_money = |amount: Option<Decimal>| amount.map(money);
    (
        pb::BalanceSheet {
            cash: optional_money(figures.cash),
            current_assets: optional_money(figures.current_assets),
            total_assets: Some(money(figures.total_assets)),
            current_liabilities: optional_money(figures.current_liabilities),
            total_liabilities: Some(money(figures.total_liabilities)),
            retained_earnings: optional_money(figures.retained_earnings),
            equity: Some(money(figures.equity)),
        },
        pb::IncomeStatement {
            revenue: Some(money(figures.revenue)),
            gross_profit: optional_money(figures.gross_profit),
            ebit: optional_money(figures.ebit),
            interest_expense: optional_money(figures.interest_expense),
            net_income: optional_money(figures.net_income),
        },
        pb::CashFlowStatement {
            operating_cash_flow: optional_money(figures.operating_cash_flow),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use credit_core::FieldViolation;

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
        let ratios = super::ratios(&empty_company);
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
}
