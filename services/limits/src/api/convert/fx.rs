//! FX rates on the wire: SetFxRate's rate checked field by field, ListFxRates' filter, and
//! the table's rates shown as `FxRate`.

use chrono::{DateTime, Utc};
use credit_core::{Currency, ServiceError, Violations};
use credit_proto::v1 as pb;
use rust_decimal::Decimal;

use crate::domain::fx::{FxRate, RATE_SCALE};
use crate::domain::limits::Actor;

use super::{timestamp, to_timestamp};

/// A checked rate from SetFxRate: both currencies known and different, the rate a positive
/// decimal, the effective time `now` when unset.
pub fn parse_fx_rate(
    wire: Option<&pb::FxRate>,
    set_by: Actor,
    now: DateTime<Utc>,
) -> Result<FxRate, ServiceError> {
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
        (Some(base), Some(quote), Some(rate), Some(effective_at)) => Ok(FxRate {
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

pub fn fx_rate_to_proto(rate: &FxRate) -> pb::FxRate {
    pb::FxRate {
        base_currency: rate.base.code().to_owned(),
        quote_currency: rate.quote.code().to_owned(),
        rate: rate.rate.to_string(),
        effective_at: Some(to_timestamp(rate.effective_at)),
        set_by: Some(pb::Actor::from(&rate.set_by)),
        set_at: Some(to_timestamp(rate.set_at)),
    }
}

/// ListFxRates' optional base and quote currencies; an empty code filters nothing.
pub fn parse_fx_filter(
    wire: &pb::ListFxRatesRequest,
) -> Result<(Option<Currency>, Option<Currency>), ServiceError> {
    let mut violations = Violations::new();
    let currency = |field: &str, code: &str, violations: &mut Violations| {
        let code = code.trim();
        if code.is_empty() {
            None
        } else {
            violations.check(field, Currency::parse(code))
        }
    };
    let base = currency("base_currency", &wire.base_currency, &mut violations);
    let quote = currency("quote_currency", &wire.quote_currency, &mut violations);
    violations.finish()?;
    Ok((base, quote))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn person() -> Actor {
        Actor {
            principal_id: "p1".to_owned(),
            person_id: String::new(),
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
        let error =
            parse_fx_rate(Some(&wire("EUR", "EUR", "-1")), person(), Utc::now()).unwrap_err();
        let text = format!("{error:?}");
        assert!(text.contains("fx_rate.quote_currency"), "{text}");
        assert!(text.contains("fx_rate.rate"), "{text}");
        let error =
            parse_fx_rate(Some(&wire("EUR", "XYZ", "abc")), person(), Utc::now()).unwrap_err();
        let text = format!("{error:?}");
        assert!(text.contains("fx_rate.quote_currency") && text.contains("fx_rate.rate"));
    }

    #[test]
    fn an_unset_effective_time_is_now() {
        let now = Utc::now();
        let rate = parse_fx_rate(Some(&wire("EUR", "CNY", "7.8500")), person(), now).unwrap();
        assert_eq!(rate.effective_at, now);
        assert_eq!(rate.rate, dec!(7.85));
    }
}
