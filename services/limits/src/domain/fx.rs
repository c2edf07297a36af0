//! FX rates: the table that converts an order in one currency into the currency of the
//! customer's limit. A rate is exact (a decimal, never a float); the newest rate effective at
//! an instant applies, and a pair without a direct rate uses its inverse (1 / rate).

use chrono::{DateTime, Utc};
use credit_core::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::limits::Actor;

/// Rates are kept to this many decimal places; more would be noise, and the division that
/// inverts a rate is cut here too.
pub const RATE_SCALE: u32 = 10;

/// One rate: 1 unit of `base` costs `rate` units of `quote`, from `effective_at` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FxRate {
    pub base: Currency,
    pub quote: Currency,
    pub rate: Decimal,
    pub effective_at: DateTime<Utc>,
    pub set_by: Actor,
    pub set_at: DateTime<Utc>,
}

/// The rate from `base` to `quote` given the newest direct and inverse rates in force: the
/// direct one when there is one, else 1 / inverse, cut to [`RATE_SCALE`] places.
pub fn conversion_rate(direct: Option<Decimal>, inverse: Option<Decimal>) -> Option<Decimal> {
    direct.or_else(|| {
        inverse
            .filter(|rate| !rate.is_zero())
            .and_then(|rate| Decimal::ONE.checked_div(rate))
            .map(|rate| {
                rate.round_dp_with_strategy(
                    RATE_SCALE,
                    rust_decimal::RoundingStrategy::MidpointNearestEven,
                )
                .normalize()
            })
    })
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)] // fixed test figures
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn the_inverse_rate_serves_a_pair_without_a_direct_one() {
        assert_eq!(
            conversion_rate(Some(dec!(7.85)), Some(dec!(0.2))),
            Some(dec!(7.85))
        );
        assert_eq!(conversion_rate(None, Some(dec!(8))), Some(dec!(0.125)));
        assert_eq!(
            conversion_rate(None, Some(dec!(3))),
            Some(dec!(0.3333333333))
        );
        assert_eq!(conversion_rate(None, None), None);
    }
}
