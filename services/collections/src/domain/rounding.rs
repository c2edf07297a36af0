//! The one place where collections rounds numbers.
//!
//! Amounts are kept exact ([`Decimal`]) through every sum and product and rounded only when a
//! figure is produced for a person: money to 2 decimal places, ratios and factors to 4, both
//! half-even ("banker's rounding", the rule of `credit_core::Money::round`). Rounding each
//! figure once, here, is what lets a user recompute a report by hand and get the same cents.

use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places of every computed money figure (provision, expected loss, priority).
pub const MONEY_DECIMAL_PLACES: u32 = 2;
/// Decimal places of every computed ratio, rate or factor (DSO in days, CEI in percent, PD×LGD
/// factors, on-time ratio, average days to pay).
pub const RATIO_DECIMAL_PLACES: u32 = 4;

/// Rounds a computed money amount to 2 decimal places, half-even: 0.125 → 0.12, 0.135 → 0.14.
pub fn round_money(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(MONEY_DECIMAL_PLACES, RoundingStrategy::MidpointNearestEven)
}

/// Rounds a computed ratio (a fraction, a percentage, a number of days or a factor) to 4
/// decimal places, half-even.
pub fn round_ratio(ratio: Decimal) -> Decimal {
    ratio.round_dp_with_strategy(RATIO_DECIMAL_PLACES, RoundingStrategy::MidpointNearestEven)
}

/// `numerator / denominator` rounded by [`round_ratio`]; `None` when the denominator is zero
/// (a KPI over an empty period is missing, not zero and not infinite).
pub fn ratio(numerator: Decimal, denominator: Decimal) -> Option<Decimal> {
    if denominator.is_zero() {
        return None;
    }
    numerator.checked_div(denominator).map(round_ratio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn money_rounds_half_even_to_cents() {
        // Half-even: a midpoint goes to the even cent.
        assert_eq!(round_money(dec!(0.125)), dec!(0.12));
        assert_eq!(round_money(dec!(0.135)), dec!(0.14));
        assert_eq!(round_money(dec!(10.004)), dec!(10.00));
        assert_eq!(round_money(dec!(-2.675)), dec!(-2.68));
    }

    #[test]
    fn ratios_round_to_four_places_and_division_by_zero_is_missing() {
        // 1 / 3 = 0.33333… → 0.3333; 2 / 3 = 0.6666… → 0.6667.
        assert_eq!(ratio(dec!(1), dec!(3)), Some(dec!(0.3333)));
        assert_eq!(ratio(dec!(2), dec!(3)), Some(dec!(0.6667)));
        // 0.00005 is a midpoint: half-even keeps 0.0000 … and 0.00015 goes to 0.0002.
        assert_eq!(round_ratio(dec!(0.00005)), dec!(0.0000));
        assert_eq!(round_ratio(dec!(0.00015)), dec!(0.0002));
        assert_eq!(ratio(dec!(5), Decimal::ZERO), None);
    }
}
