//! ProposeLimit, pure: a customer limit proposed from the credit policy and the customer's
//! latest financial statement. Three components, each with the figure it starts from, the
//! policy factor and a sentence an analyst can check by hand:
//!
//! - GRADE_CAP: the maximum limit of the customer's grade;
//! - EQUITY_SHARE: equity × equity_share_percent / 100, for positive equity only (a company
//!   whose losses ate its capital has no share of equity to lend against);
//! - REVENUE_MULTIPLE: revenue / months of the period (the average monthly revenue) ×
//!   revenue_multiple.
//!
//! The proposal is the smallest computable component, which is marked binding (the first in
//! that order when two are equal). Figures in another currency than the proposal's are
//! converted with a rate from the FX table; a figure no rate converts leaves its component
//! not computable, with the reason in its explanation.
//!
//! Rounding: every step is rounded by `Money::times` / `Money::round` (half-even to the
//! proposal currency's minor units) before the next step uses it, and the explanation shows
//! each rounded step, so basis × factor as the analyst reads them gives exactly the amount.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use credit_core::{Currency, Money};
use rust_decimal::Decimal;

use super::policy::CreditPolicy;

/// The customer's latest financial statement (from intake's FinancialStatementSubmitted): the
/// figures a proposal uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestStatement {
    pub statement_id: String,
    /// Last day of the period.
    pub period_end: NaiveDate,
    /// Months the period covers: 12 annual, 3 quarterly.
    pub period_months: u32,
    /// Equity at the period end; negative when losses exceed the paid-in capital.
    pub equity: Money,
    /// Revenue of the whole period.
    pub revenue: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentType {
    GradeCap,
    EquityShare,
    RevenueMultiple,
}

/// One component of a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub component_type: ComponentType,
    /// In the proposal currency; `None` when it cannot be computed, and then it takes no
    /// part in the minimum.
    pub amount: Option<Money>,
    /// The figure the factor applies to (grade cap, equity, average monthly revenue), in the
    /// proposal currency; `None` when there is none or no rate converts it.
    pub basis: Option<Money>,
    /// The policy's percent (EQUITY_SHARE) or multiple (REVENUE_MULTIPLE); `None` for
    /// GRADE_CAP.
    pub factor: Option<Decimal>,
    /// True for the component that sets the proposal.
    pub binding: bool,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The smallest computable component; `None` when none is computable (no grade cap and
    /// no usable statement): the policy then proposes nothing, and zero would read as "no
    /// credit".
    pub proposed_amount: Option<Money>,
    /// GRADE_CAP, EQUITY_SHARE and REVENUE_MULTIPLE, in this order, computable or not.
    pub components: Vec<Component>,
}

/// The currency a proposal is made in and the FX table's rates into it, looked up by the
/// caller (the store is I/O) for the currencies [`ProposalCurrency::rates_needed`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalCurrency {
    currency: Option<Currency>,
    rates_into: BTreeMap<Currency, Decimal>,
}

impl ProposalCurrency {
    /// The caller's currency, else the current limit's (so the two compare directly), else
    /// the grade cap's, else the statement's (so its figures need no rate). `None` only when
    /// there is none of them, and then no component is computable anyway.
    pub fn choose(
        requested: Option<Currency>,
        current_limit: Option<Currency>,
        grade_cap: Option<Currency>,
        statement: Option<Currency>,
    ) -> Self {
        Self {
            currency: requested.or(current_limit).or(grade_cap).or(statement),
            rates_into: BTreeMap::new(),
        }
    }

    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }

    /// The currencies of the figures `propose` will use that differ from the proposal
    /// currency, each once: the caller looks up a rate from each into [`Self::currency`].
    pub fn rates_needed(
        &self,
        policy: &CreditPolicy,
        grade: &str,
        statement: Option<&LatestStatement>,
    ) -> Vec<Currency> {
        let Some(into) = self.currency else {
            return Vec::new();
        };
        let cap = policy.for_grade(Some(grade)).0.max_limit;
        let mut needed: Vec<Currency> = [
            cap.map(|cap| cap.currency()),
            statement.map(|statement| statement.equity.currency()),
            statement.map(|statement| statement.revenue.currency()),
        ]
        .into_iter()
        .flatten()
        .filter(|currency| *currency != into)
        .collect();
        needed.sort();
        needed.dedup();
        needed
    }

    /// Records the FX table's rate from `from` into the proposal currency.
    pub fn add_rate(&mut self, from: Currency, rate: Decimal) {
        self.rates_into.insert(from, rate);
    }

    fn convert(&self, figure: Money) -> Conversion {
        let Some(into) = self.currency.filter(|into| *into != figure.currency()) else {
            return Conversion::Unchanged(figure);
        };
        let Some(rate) = self.rates_into.get(&figure.currency()).copied() else {
            return Conversion::NoRate { figure, into };
        };
        // Rounded once, half-even, in the proposal currency's minor units.
        match Money::new(figure.amount(), into).times(rate) {
            Ok(converted) => Conversion::Converted {
                figure,
                converted,
                rate,
            },
            Err(_) => Conversion::OutOfRange,
        }
    }
}

/// A figure in the proposal currency, or why it cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conversion {
    Unchanged(Money),
    Converted {
        figure: Money,
        converted: Money,
        rate: Decimal,
    },
    NoRate {
        figure: Money,
        into: Currency,
    },
    OutOfRange,
}

impl Conversion {
    /// The figure in the proposal currency and how an analyst reads it: "4,000,000.00 CNY",
    /// or "560,000.00 USD (4,000,000.00 CNY at 1 CNY = 0.14 USD)"; otherwise the reason it is
    /// not computable.
    fn described(self, what: &str) -> Result<(Money, String), String> {
        match self {
            Conversion::Unchanged(figure) => Ok((figure, readable(figure))),
            Conversion::Converted {
                figure,
                converted,
                rate,
            } => Ok((
                converted,
                format!(
                    "{} ({} at 1 {} = {} {})",
                    readable(converted),
                    readable(figure),
                    figure.currency(),
                    rate.normalize(),
                    converted.currency()
                ),
            )),
            Conversion::NoRate { figure, into } => Err(format!(
                "not computable: no FX rate converts the {what} {} into {into}",
                readable(figure)
            )),
            Conversion::OutOfRange => Err(out_of_range(what)),
        }
    }
}

fn out_of_range(what: &str) -> String {
    format!("not computable: the {what} is out of range")
}

/// The proposal for a customer of `grade` under `policy`, from its latest `statement` (if
/// any), in `currency`.
pub fn propose(
    policy: &CreditPolicy,
    grade: &str,
    statement: Option<&LatestStatement>,
    currency: &ProposalCurrency,
) -> Proposal {
    let mut components = vec![
        grade_cap(policy, grade, currency),
        equity_share(policy.equity_share_percent, statement, currency),
        revenue_multiple(policy.revenue_multiple, statement, currency),
    ];
    // Every computable amount is in the proposal currency, so the amounts compare directly;
    // `min_by_key` keeps the first of equal ones.
    let binding = components
        .iter()
        .enumerate()
        .filter_map(|(index, component)| component.amount.map(|amount| (index, amount)))
        .min_by_key(|(_, amount)| amount.amount());
    let proposed_amount = binding.map(|(index, amount)| {
        if let Some(component) = components.get_mut(index) {
            component.binding = true;
        }
        amount
    });
    Proposal {
        proposed_amount,
        components,
    }
}

fn computable(
    component_type: ComponentType,
    amount: Money,
    basis: Money,
    factor: Option<Decimal>,
    explanation: String,
) -> Component {
    Component {
        component_type,
        amount: Some(amount),
        basis: Some(basis),
        factor,
        binding: false,
        explanation,
    }
}

fn not_computable(
    component_type: ComponentType,
    basis: Option<Money>,
    factor: Option<Decimal>,
    explanation: String,
) -> Component {
    Component {
        component_type,
        amount: None,
        basis,
        factor,
        binding: false,
        explanation,
    }
}

const NO_STATEMENT: &str = "not computable: limits has no financial statement of the customer";

fn grade_cap(policy: &CreditPolicy, grade: &str, currency: &ProposalCurrency) -> Component {
    let kind = ComponentType::GradeCap;
    let (grade_policy, listed) = policy.for_grade(Some(grade));
    let whose = if listed {
        format!("grade {grade}")
    } else {
        format!("the policy default (grade {grade} is not in the credit policy)")
    };
    let Some(cap) = grade_policy.max_limit else {
        return not_computable(
            kind,
            None,
            None,
            format!("not computable: the credit policy sets no maximum limit for {whose}"),
        );
    };
    match currency
        .convert(cap)
        .described(&format!("maximum limit of {whose}"))
    {
        Ok((cap, shown)) => computable(
            kind,
            cap,
            cap,
            None,
            format!("maximum limit of {whose}: {shown}"),
        ),
        Err(reason) => not_computable(kind, None, None, reason),
    }
}

fn equity_share(
    percent: Decimal,
    statement: Option<&LatestStatement>,
    currency: &ProposalCurrency,
) -> Component {
    let kind = ComponentType::EquityShare;
    let factor = Some(percent);
    let Some(statement) = statement else {
        return not_computable(kind, None, factor, NO_STATEMENT.to_owned());
    };
    let (equity, shown) = match currency.convert(statement.equity).described("equity") {
        Ok(converted) => converted,
        Err(reason) => return not_computable(kind, None, factor, reason),
    };
    if !equity.is_positive() {
        return not_computable(
            kind,
            Some(equity),
            factor,
            format!(
                "not computable: equity {shown} is not positive, so there is no share of it to lend against"
            ),
        );
    }
    let share = percent
        .checked_div(Decimal::ONE_HUNDRED)
        .ok_or(credit_core::MoneyError::TooLarge)
        .and_then(|fraction| equity.times(fraction));
    match share {
        Ok(share) => computable(
            kind,
            share,
            equity,
            factor,
            format!("{} % of equity {shown}", percent.normalize()),
        ),
        Err(_) => not_computable(kind, Some(equity), factor, out_of_range("equity share")),
    }
}

fn revenue_multiple(
    multiple: Decimal,
    statement: Option<&LatestStatement>,
    currency: &ProposalCurrency,
) -> Component {
    let kind = ComponentType::RevenueMultiple;
    let factor = Some(multiple);
    let Some(statement) = statement else {
        return not_computable(kind, None, factor, NO_STATEMENT.to_owned());
    };
    if statement.period_months == 0 {
        return not_computable(
            kind,
            None,
            factor,
            "not computable: the statement does not say how many months its period covers"
                .to_owned(),
        );
    }
    let (revenue, shown) = match currency.convert(statement.revenue).described("revenue") {
        Ok(converted) => converted,
        Err(reason) => return not_computable(kind, None, factor, reason),
    };
    // Intake refuses negative revenue; a negative average would propose a negative limit.
    if revenue.is_negative() {
        return not_computable(
            kind,
            None,
            factor,
            format!("not computable: revenue {shown} is negative"),
        );
    }
    let Some(monthly) = revenue
        .amount()
        .checked_div(Decimal::from(statement.period_months))
        .map(|monthly| Money::new(monthly, revenue.currency()).round())
    else {
        return not_computable(kind, None, factor, out_of_range("average monthly revenue"));
    };
    match monthly.times(multiple) {
        Ok(amount) => computable(
            kind,
            amount,
            monthly,
            factor,
            format!(
                "{} x average monthly revenue {}: revenue {shown} / {} months to {}",
                multiple.normalize(),
                readable(monthly),
                statement.period_months,
                statement.period_end.format("%Y-%m-%d"),
            ),
        ),
        Err(_) => not_computable(
            kind,
            Some(monthly),
            factor,
            out_of_range("revenue multiple"),
        ),
    }
}

/// Money as an analyst reads it: thousands grouped, the currency's minor units, the code
/// ("4,000,000.00 CNY").
fn readable(money: Money) -> String {
    let text = money.amount_string();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(digits) => ("-", digits),
        None => ("", text.as_str()),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(whole.len().saturating_mul(2));
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && whole.len().saturating_sub(index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction} {}", money.currency()),
        None => format!("{sign}{grouped} {}", money.currency()),
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)] // fixed test figures
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn money(amount: &str, currency: &str) -> Money {
        Money::parse(amount, currency).unwrap()
    }

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    /// An annual CNY statement ending 2025-12-31.
    fn statement(equity: &str, revenue: &str, months: u32) -> LatestStatement {
        LatestStatement {
            statement_id: "fst_1".into(),
            period_end: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
            period_months: months,
            equity: money(equity, "CNY"),
            revenue: money(revenue, "CNY"),
        }
    }

    fn in_cny() -> ProposalCurrency {
        ProposalCurrency::choose(Some(currency("CNY")), None, None, None)
    }

    fn component(proposal: &Proposal, kind: ComponentType) -> &Component {
        proposal
            .components
            .iter()
            .find(|component| component.component_type == kind)
            .unwrap()
    }

    fn binding(proposal: &Proposal) -> Vec<ComponentType> {
        proposal
            .components
            .iter()
            .filter(|component| component.binding)
            .map(|component| component.component_type)
            .collect()
    }

    #[test]
    fn without_a_statement_only_the_grade_cap_is_computable() {
        let policy = CreditPolicy::default();
        let proposal = propose(&policy, "BBB", None, &in_cny());
        assert_eq!(proposal.proposed_amount, Some(money("10000000", "CNY")));
        let types: Vec<ComponentType> = proposal
            .components
            .iter()
            .map(|component| component.component_type)
            .collect();
        assert_eq!(
            types,
            [
                ComponentType::GradeCap,
                ComponentType::EquityShare,
                ComponentType::RevenueMultiple
            ]
        );
        let cap = component(&proposal, ComponentType::GradeCap);
        assert!(cap.binding);
        assert_eq!(cap.basis, Some(money("10000000", "CNY")));
        assert_eq!(cap.factor, None);
        assert_eq!(
            cap.explanation,
            "maximum limit of grade BBB: 10,000,000.00 CNY"
        );
        for kind in [ComponentType::EquityShare, ComponentType::RevenueMultiple] {
            let missing = component(&proposal, kind);
            assert_eq!(missing.amount, None);
            assert!(!missing.binding);
            assert_eq!(missing.explanation, NO_STATEMENT);
        }
        assert_eq!(
            component(&proposal, ComponentType::EquityShare).factor,
            Some(dec!(20))
        );
    }

    #[test]
    fn the_equity_share_binds_when_it_is_smallest() {
        // Shipped policy: 20 % of equity, 1.5 x average monthly revenue; BBB caps 10,000,000.
        // Equity 500,000 → 100,000. Revenue 2,400,000 / 12 = 200,000 → 300,000.
        let policy = CreditPolicy::default();
        let figures = statement("500000.00", "2400000.00", 12);
        let proposal = propose(&policy, "BBB", Some(&figures), &in_cny());
        assert_eq!(proposal.proposed_amount, Some(money("100000", "CNY")));
        assert_eq!(binding(&proposal), [ComponentType::EquityShare]);
        let equity = component(&proposal, ComponentType::EquityShare);
        assert_eq!(equity.basis, Some(money("500000", "CNY")));
        assert_eq!(equity.explanation, "20 % of equity 500,000.00 CNY");
        let revenue = component(&proposal, ComponentType::RevenueMultiple);
        assert_eq!(revenue.amount, Some(money("300000", "CNY")));
        assert_eq!(revenue.basis, Some(money("200000", "CNY")));
        assert_eq!(revenue.factor, Some(dec!(1.5)));
        assert_eq!(
            revenue.explanation,
            "1.5 x average monthly revenue 200,000.00 CNY: revenue 2,400,000.00 CNY / 12 months to 2025-12-31"
        );
    }

    #[test]
    fn the_revenue_multiple_of_a_quarter_binds_when_it_is_smallest() {
        // Quarterly revenue 100,000 / 3 = 33,333.333… → 33,333.33; × 1.5 = 49,999.995 →
        // 50,000.00 (half-even: the 9 before the 5 is odd, so up). Equity 4,000,000 → 800,000.
        let policy = CreditPolicy::default();
        let figures = statement("4000000.00", "100000.00", 3);
        let proposal = propose(&policy, "BBB", Some(&figures), &in_cny());
        assert_eq!(binding(&proposal), [ComponentType::RevenueMultiple]);
        let revenue = component(&proposal, ComponentType::RevenueMultiple);
        assert_eq!(revenue.basis, Some(money("33333.33", "CNY")));
        assert_eq!(revenue.amount, Some(money("50000.00", "CNY")));
        assert_eq!(proposal.proposed_amount, revenue.amount);
        assert_eq!(
            component(&proposal, ComponentType::EquityShare).amount,
            Some(money("800000", "CNY"))
        );
    }

    #[test]
    fn equity_that_is_not_positive_takes_no_part() {
        let policy = CreditPolicy::default();
        for equity in ["-300000.00", "0.00"] {
            let figures = statement(equity, "2400000.00", 12);
            let proposal = propose(&policy, "BBB", Some(&figures), &in_cny());
            let share = component(&proposal, ComponentType::EquityShare);
            assert_eq!(share.amount, None, "{equity}");
            assert_eq!(share.basis, Some(money(equity, "CNY")));
            assert!(share.explanation.contains("is not positive"), "{share:?}");
            // The revenue multiple (300,000) is the smallest that remains.
            assert_eq!(proposal.proposed_amount, Some(money("300000", "CNY")));
            assert_eq!(binding(&proposal), [ComponentType::RevenueMultiple]);
        }
        let negative = propose(
            &policy,
            "BBB",
            Some(&statement("-300000.00", "0.00", 12)),
            &in_cny(),
        );
        assert_eq!(
            component(&negative, ComponentType::EquityShare).explanation,
            "not computable: equity -300,000.00 CNY is not positive, so there is no share of it to lend against"
        );
        // No revenue is a figure, not a gap: it proposes zero.
        assert_eq!(negative.proposed_amount, Some(money("0", "CNY")));
    }

    #[test]
    fn figures_in_another_currency_are_converted_at_the_fx_table_rate() {
        // Proposal in USD; cap and statement in CNY at 1 CNY = 0.14 USD.
        // Cap BBB 10,000,000 CNY → 1,400,000.00 USD. Equity 4,000,000 CNY → 560,000.00 USD,
        // 20 % → 112,000.00. Revenue 2,000,000 CNY → 280,000.00 USD / 12 = 23,333.33 × 1.5
        // = 34,999.995 → 35,000.00 (half-even, the 9 is odd: up).
        let policy = CreditPolicy::default();
        let figures = statement("4000000.00", "2000000.00", 12);
        let mut usd = ProposalCurrency::choose(
            None,
            Some(currency("USD")),
            Some(currency("CNY")),
            Some(currency("CNY")),
        );
        assert_eq!(usd.currency(), Some(currency("USD")));
        assert_eq!(
            usd.rates_needed(&policy, "BBB", Some(&figures)),
            [currency("CNY")]
        );
        usd.add_rate(currency("CNY"), dec!(0.14));
        let proposal = propose(&policy, "BBB", Some(&figures), &usd);
        let cap = component(&proposal, ComponentType::GradeCap);
        assert_eq!(cap.amount, Some(money("1400000", "USD")));
        assert_eq!(
            cap.explanation,
            "maximum limit of grade BBB: 1,400,000.00 USD (10,000,000.00 CNY at 1 CNY = 0.14 USD)"
        );
        let equity = component(&proposal, ComponentType::EquityShare);
        assert_eq!(equity.basis, Some(money("560000", "USD")));
        assert_eq!(equity.amount, Some(money("112000", "USD")));
        let revenue = component(&proposal, ComponentType::RevenueMultiple);
        assert_eq!(revenue.basis, Some(money("23333.33", "USD")));
        assert_eq!(revenue.amount, Some(money("35000.00", "USD")));
        assert_eq!(proposal.proposed_amount, Some(money("35000", "USD")));
        assert_eq!(binding(&proposal), [ComponentType::RevenueMultiple]);
    }

    #[test]
    fn a_figure_no_rate_converts_is_not_computable() {
        let policy = CreditPolicy::default();
        let figures = statement("4000000.00", "2000000.00", 12);
        let usd = ProposalCurrency::choose(Some(currency("USD")), None, None, None);
        let proposal = propose(&policy, "BBB", Some(&figures), &usd);
        assert_eq!(proposal.proposed_amount, None);
        assert!(binding(&proposal).is_empty());
        for component in &proposal.components {
            assert_eq!(component.amount, None);
            assert!(
                component.explanation.contains("no FX rate converts"),
                "{component:?}"
            );
        }
        assert_eq!(
            component(&proposal, ComponentType::EquityShare).explanation,
            "not computable: no FX rate converts the equity 4,000,000.00 CNY into USD"
        );
    }

    #[test]
    fn a_grade_without_a_cap_leaves_the_statement_to_decide() {
        let mut policy = CreditPolicy::default();
        for grade in &mut policy.grade_policies {
            if grade.grade == "BBB" {
                grade.max_limit = None;
            }
        }
        let figures = statement("500000.00", "2400000.00", 12);
        let proposal = propose(&policy, "BBB", Some(&figures), &in_cny());
        assert_eq!(
            component(&proposal, ComponentType::GradeCap).explanation,
            "not computable: the credit policy sets no maximum limit for grade BBB"
        );
        assert_eq!(proposal.proposed_amount, Some(money("100000", "CNY")));
        // An unlisted grade falls back to the default grade policy, which has no cap.
        let unlisted = propose(&policy, "ZZ", None, &in_cny());
        assert_eq!(unlisted.proposed_amount, None);
        assert!(
            component(&unlisted, ComponentType::GradeCap)
                .explanation
                .contains("grade ZZ is not in the credit policy")
        );
    }

    #[test]
    fn equal_components_mark_only_the_first_binding() {
        // BB caps 5,000,000; 20 % of 25,000,000 equity is 5,000,000 too.
        let policy = CreditPolicy::default();
        let figures = statement("25000000.00", "100000000.00", 12);
        let proposal = propose(&policy, "BB", Some(&figures), &in_cny());
        assert_eq!(proposal.proposed_amount, Some(money("5000000", "CNY")));
        assert_eq!(binding(&proposal), [ComponentType::GradeCap]);
    }

    #[test]
    fn the_currency_is_the_callers_then_the_limits_then_the_caps_then_the_statements() {
        let (usd, eur, cny, jpy) = (
            Some(currency("USD")),
            Some(currency("EUR")),
            Some(currency("CNY")),
            Some(currency("JPY")),
        );
        assert_eq!(ProposalCurrency::choose(usd, eur, cny, jpy).currency(), usd);
        assert_eq!(
            ProposalCurrency::choose(None, eur, cny, jpy).currency(),
            eur
        );
        assert_eq!(
            ProposalCurrency::choose(None, None, cny, jpy).currency(),
            cny
        );
        assert_eq!(
            ProposalCurrency::choose(None, None, None, jpy).currency(),
            jpy
        );
        assert_eq!(
            ProposalCurrency::choose(None, None, None, None).currency(),
            None
        );
    }

    #[test]
    fn amounts_read_with_grouped_thousands() {
        assert_eq!(readable(money("4000000", "CNY")), "4,000,000.00 CNY");
        assert_eq!(readable(money("-300000.5", "CNY")), "-300,000.50 CNY");
        assert_eq!(readable(money("999", "CNY")), "999.00 CNY");
        assert_eq!(readable(money("1234567", "JPY")), "1,234,567 JPY");
        assert_eq!(readable(money("0", "CNY")), "0.00 CNY");
    }
}
