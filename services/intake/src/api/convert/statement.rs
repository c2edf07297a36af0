//! Financial statements between the contract and the domain: a submitted
//! `pb::FinancialStatement` read line by line into a [`NewStatement`] (every problem named by
//! its field path), and stored figures and ratios shown on the wire.

use chrono::{Datelike, NaiveDate};
use credit_core::money::parse_decimal;
use credit_core::{Currency, Money, MoneyError, ServiceError, Violations};
use credit_proto::v1 as pb;
use rust_decimal::Decimal;

use crate::domain::statement::{
    AltmanZone, BALANCE_SHEET, BalanceSheetLines, CASH_FLOW_STATEMENT, EARLIEST_FISCAL_YEAR,
    INCOME_STATEMENT, IncomeStatementLines, NewStatement, PeriodType, Ratios, StatementFigures,
    StatementPeriod, check_balance, check_parts_within_totals,
};

#[cfg(test)]
mod tests;

impl From<PeriodType> for pb::FiscalPeriodType {
    fn from(period_type: PeriodType) -> Self {
        match period_type {
            PeriodType::Annual => Self::Annual,
            PeriodType::Quarterly => Self::Quarterly,
        }
    }
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

impl From<AltmanZone> for pb::AltmanZone {
    fn from(zone: AltmanZone) -> Self {
        match zone {
            AltmanZone::Safe => Self::Safe,
            AltmanZone::Grey => Self::Grey,
            AltmanZone::Distress => Self::Distress,
        }
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

/// The period type a list asks for: `None` (UNSPECIFIED) for any.
pub fn period_type_filter(period_type: i32) -> Result<Option<PeriodType>, ServiceError> {
    match pb::FiscalPeriodType::try_from(period_type) {
        Ok(pb::FiscalPeriodType::Unspecified) => Ok(None),
        Ok(pb::FiscalPeriodType::Annual) => Ok(Some(PeriodType::Annual)),
        Ok(pb::FiscalPeriodType::Quarterly) => Ok(Some(PeriodType::Quarterly)),
        Err(_) => Err(ServiceError::invalid(
            "period_type",
            "is not a fiscal period type",
        )),
    }
}
