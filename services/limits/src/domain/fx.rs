//! FX rates: the table that converts an order in one currency into the currency of the
//! customer's limit. A rate is exact (a decimal, never a float); the newest rate effective at
//! an instant applies, and a pair without a direct rate uses its inverse (1 / rate).

use chrono::{DateTime, Utc};
use credit_core::{Currency, ServiceError, Violations};
use credit_proto::v1 as pb;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::limits::{Person, timestamp, to_timestamp};

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
    pub set_by: Person,
    pub set_at: DateTime<Utc>,
}

impl FxRate {
    /// A checked rate from SetFxRate: both currencies known and different, the rate a
    /// positive decimal, the effective time `now` when unset.
    pub fn from_request(
        wire: Option<&pb::FxRate>,
        set_by: Person,
        now: DateTime<Utc>,
    ) -> Result<Self, ServiceError> {
        let Some(wire) = wire else {
            return Err(ServiceError::invalid("fx_rate", "is required"));
        };
        let mut violations = Violations::new();
        let base = violations.check(
            "fx_rate.base_currency",
            Currency::parse(wire.base_currency.trim()),
        );
        let quote = violations.check(
            "fx_rate.quote_currency",
            Currency::parse(wire.quote_currency.trim()),
        );
        if let (Some(base), Some(quote)) = (base, quote)
            && base == quote
        {
            violations.add(
                "fx_rate.quote_currency",
                "must differ from the base currency",
            );
        }
        let rate = match wire.rate.trim().parse::<Decimal>() {
            Ok(rate) if rate > Decimal::ZERO && rate.scale() <= RATE_SCALE => Some(rate),
            Ok(_) => {
                violations.add(
                    "fx_rate.rate",
                    format!("must be positive, with at most {RATE_SCALE} decimal places"),
                );
                None
            }
            Err(_) => {
                violations.add(
                    "fx_rate.rate",
                    "must be a decimal number such as \"7.1234\"",
                );
                None
            }
        };
        let effective_at = match &wire.effective_at {
            None => Some(now),
            Some(time) => violations.check("fx_rate.effective_at", timestamp(time)),
        };
        violations.finish()?;
        match (base, quote, rate, effective_at) {
            (Some(base), Some(quote), Some(rate), Some(effective_at)) => Ok(Self {
                base,
                quote,
                rate: rate.normalize(),
                effective_at,
                set_by,
                set_at: now,
            }),
            _ => Err(ServiceError::invalid("fx_rate", "is incomplete")),
        }
    }

    pub fn to_proto(&self) -> pb::FxRate {
        pb::FxRate {
            base_currency: self.base.code().to_owned(),
            quote_currency: self.quote.code().to_owned(),
            rate: self.rate.to_string(),
            effective_at: Some(to_timestamp(self.effective_at)),
            set_by: Some(self.set_by.to_proto()),
            set_at: Some(to_timestamp(self.set_at)),
        }
    }
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

    fn person() -> Person {
        Person {
            principal_id: "p1".to_owned(),
            name: "treasury".to_owned(),
            roles: vec!["ADMIN".to_owned()],
        }
    }

    fn wire(base: &str, quote: &str, rate: &str) -> pb::FxRate {
        pb::FxRate {
            base_currency: base.to_owned(),
            quote_currency: quote.to_owned(),
            rate: rate.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn a_rate_is_checked_field_by_field() {
        let error = FxRate::from_request(Some(&wire("EUR", "EUR", "-1")), person(), Utc::now())
            .unwrap_err();
        let text = format!("{error:?}");
        assert!(text.contains("fx_rate.quote_currency"), "{text}");
        assert!(text.contains("fx_rate.rate"), "{text}");
        let error = FxRate::from_request(Some(&wire("EUR", "XYZ", "abc")), person(), Utc::now())
            .unwrap_err();
        let text = format!("{error:?}");
        assert!(text.contains("fx_rate.quote_currency") && text.contains("fx_rate.rate"));
    }

    #[test]
    fn an_unset_effective_time_is_now() {
        let now = Utc::now();
        let rate =
            FxRate::from_request(Some(&wire("EUR", "CNY", "7.8500")), person(), now).unwrap();
        assert_eq!(rate.effective_at, now);
        assert_eq!(rate.rate, dec!(7.85));
    }

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
