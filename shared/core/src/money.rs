//! Money: an exact decimal amount in an ISO 4217 currency.
//!
//! Amounts cross the wire as decimal strings ("1250.00") and live in Rust as
//! [`rust_decimal::Decimal`]; floating point never touches money. Rounding happens in exactly
//! one place, [`Money::round`], half-even to the currency's minor units, so every figure a
//! user checks by hand is rounded the same way.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// Longest amount string accepted from a caller; far beyond any real invoice, short enough
/// that parsing cost is bounded.
const MAX_AMOUNT_LEN: usize = 40;

/// The largest amount the suite accepts from a caller, in the major units of any currency:
/// a caller's amount must be below 10^15 (one quadrillion) in magnitude. Far beyond any
/// real invoice, limit or statement line, and small enough that every figure the suite
/// derives from amounts stays exact: one amount is at most 10^18 minor units (three decimal
/// places), which fits an `i64`, and sums of them are computed with checked arithmetic
/// that refuses rather than wraps.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);

/// An ISO 4217 currency with its number of minor units (2 for CNY, 0 for JPY, 3 for KWD).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses an upper-case ISO 4217 code such as `CNY`.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        if code.is_empty() {
            return Err(MoneyError::MissingCurrency);
        }
        // `from_code` is case-sensitive already; we require the canonical upper-case form so
        // that stored codes compare equal byte for byte.
        iso_currency::Currency::from_code(code)
            .filter(|currency| currency.exponent().is_some())
            .map(Currency)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(8).collect()))
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point in this currency's smallest unit.
    pub fn minor_units(&self) -> u32 {
        // `parse` only admits currencies that have an exponent.
        u32::from(self.0.exponent().unwrap_or(2))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::parse(code)
    }
}

/// What is wrong with an amount or currency a caller sent; the text is safe to show callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is required")]
    MissingAmount,
    #[error("amount must be a plain decimal number such as 1250.00")]
    NotADecimal,
    #[error("amount has more than {allowed} decimal places, the minor units of {currency}")]
    TooPrecise { allowed: u32, currency: Currency },
    #[error("amount must not be negative")]
    Negative,
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("currency is required")]
    MissingCurrency,
    #[error("currency '{0}' is not an ISO 4217 code")]
    UnknownCurrency(String),
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount must be below 1000000000000000 (10^15) in magnitude")]
    TooLarge,
    #[error("amount is out of range")]
    Overflow,
}

/// An exact amount of one currency, held at the currency's minor units or finer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Parses a caller's amount string exactly. More decimal places than the currency has are
    /// refused rather than rounded: a caller who sends "10.005 CNY" has made a mistake that
    /// silent rounding would hide.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        let currency = Currency::parse(currency)?;
        let amount = parse_decimal(amount)?;
        if amount.normalize().scale() > currency.minor_units() {
            return Err(MoneyError::TooPrecise {
                allowed: currency.minor_units(),
                currency,
            });
        }
        Ok(Self::new(amount, currency))
    }

    /// An amount already computed in Rust (for example a sum of stored amounts).
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(Decimal::ZERO, currency)
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    pub fn is_positive(&self) -> bool {
        self.amount > Decimal::ZERO
    }

    /// Refuses a negative amount (zero is allowed).
    pub fn non_negative(self) -> Result<Self, MoneyError> {
        if self.is_negative() {
            return Err(MoneyError::Negative);
        }
        Ok(self)
    }

    /// Refuses zero and negative amounts.
    pub fn positive(self) -> Result<Self, MoneyError> {
        if !self.is_positive() {
            return Err(MoneyError::NotPositive);
        }
        Ok(self)
    }

    /// The one rounding rule of the suite: half-even ("banker's rounding") to the currency's
    /// minor units. Every computed amount (FX conversion, discount, provision, interest) goes
    /// through here before it is stored or shown.
    pub fn round(self) -> Self {
        let rounded = self.amount.round_dp_with_strategy(
            self.currency.minor_units(),
            RoundingStrategy::MidpointNearestEven,
        );
        Self::new(rounded, self.currency)
    }

    /// `self × factor`, rounded by [`Money::round`]. Used for rates (FX, provision, discount).
    pub fn times(self, factor: Decimal) -> Result<Self, MoneyError> {
        let product = self
            .amount
            .checked_mul(factor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(product, self.currency).round())
    }

    pub fn checked_add(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(&other)?;
        let sum = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(sum, self.currency))
    }

    pub fn checked_sub(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(&other)?;
        let difference = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(difference, self.currency))
    }

    fn same_currency(&self, other: &Self) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        Ok(())
    }

    /// The amount as the wire shows it: exactly the currency's minor units ("1250.00").
    pub fn amount_string(&self) -> String {
        let mut shown = self.round().amount;
        shown.rescale(self.currency.minor_units());
        shown.to_string()
    }

    /// The amount in whole minor units of its currency (cents, fen), as the exposure ledger
    /// and cache count: exact for a parsed amount, which has at most the minor units; a
    /// finer computed amount is cut towards zero. `Overflow` when it does not fit an `i64`.
    pub fn to_minor_units(&self) -> Result<i64, MoneyError> {
        let scale = Decimal::from(10_i64.pow(self.currency.minor_units()));
        let minor = self
            .amount
            .checked_mul(scale)
            .ok_or(MoneyError::Overflow)?
            .trunc();
        i64::try_from(minor).map_err(|_| MoneyError::Overflow)
    }

    /// `minor` minor units of `currency` as money: the inverse of [`Money::to_minor_units`].
    pub fn from_minor_units(minor: i64, currency: Currency) -> Self {
        Self::new(Decimal::new(minor, currency.minor_units()), currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.amount_string(), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Money({} {})", self.amount, self.currency)
    }
}

/// Parses a plain decimal: optional minus, digits, optional point and digits. No exponent,
/// no plus sign, no separators, no surrounding space: what a machine sends and a person can
/// read back unambiguously.
pub fn parse_decimal(text: &str) -> Result<Decimal, MoneyError> {
    if text.is_empty() {
        return Err(MoneyError::MissingAmount);
    }
    if text.len() > MAX_AMOUNT_LEN {
        return Err(MoneyError::NotADecimal);
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits =
        |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|fraction| !all_digits(fraction)) {
        return Err(MoneyError::NotADecimal);
    }
    let amount = Decimal::from_str_exact(text).map_err(|_| MoneyError::TooLarge)?;
    if amount.abs() >= MAX_AMOUNT {
        return Err(MoneyError::TooLarge);
    }
    Ok(amount)
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// Stored form of money: `{"amount": "1250.00", "currency": "CNY"}`; the amount stays a
/// string so no JSON reader turns it into a float.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredMoney {
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    currency: Currency,
}

impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredMoney {
            amount: self.amount,
            currency: self.currency,
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredMoney::deserialize(deserializer)?;
        Ok(Money::new(stored.amount, stored.currency))
    }
}

impl From<Money> for credit_proto::v1::Money {
    fn from(money: Money) -> Self {
        Self {
            amount: money.amount_string(),
            currency: money.currency.code().to_owned(),
        }
    }
}

impl TryFrom<&credit_proto::v1::Money> for Money {
    type Error = MoneyError;
    fn try_from(wire: &credit_proto::v1::Money) -> Result<Self, Self::Error> {
        Money::parse(&wire.amount, &wire.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn cny() -> Currency {
        Currency::parse("CNY").unwrap()
    }

    #[test]
    fn parses_exact_amounts() {
        let money = Money::parse("1250.50", "CNY").unwrap();
        assert_eq!(money.amount(), dec!(1250.50));
        assert_eq!(money.currency().code(), "CNY");
        assert_eq!(money.amount_string(), "1250.50");
        assert_eq!(Money::parse("7", "CNY").unwrap().amount_string(), "7.00");
    }

    #[test]
    fn minor_units_follow_the_currency() {
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), 3);
        assert_eq!(Money::parse("100", "JPY").unwrap().amount_string(), "100");
        assert_eq!(
            Money::parse("100.5", "JPY"),
            Err(MoneyError::TooPrecise {
                allowed: 0,
                currency: Currency::parse("JPY").unwrap()
            })
        );
        // Trailing zeros beyond the minor units carry no extra precision.
        assert_eq!(
            Money::parse("100.000", "CNY").unwrap().amount_string(),
            "100.00"
        );
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for bad in [
            "", "1e5", "+5", " 5", "5 ", "1,000.00", "1.", ".5", "--1", "abc", "NaN", "1.2.3",
        ] {
            assert!(Money::parse(bad, "CNY").is_err(), "{bad:?} must be refused");
        }
        assert_eq!(Money::parse("", "CNY"), Err(MoneyError::MissingAmount));
    }

    #[test]
    fn refuses_unknown_or_malformed_currencies() {
        assert_eq!(Money::parse("1", ""), Err(MoneyError::MissingCurrency));
        assert!(matches!(
            Money::parse("1", "cny"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(matches!(
            Money::parse("1", "ABC"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        // Gold has no minor units; it is not a currency one invoices in.
        assert!(matches!(
            Money::parse("1", "XAU"),
            Err(MoneyError::UnknownCurrency(_))
        ));
    }

    #[test]
    fn rounds_half_to_even_in_one_place() {
        let round = |amount| Money::new(amount, cny()).round().amount();
        assert_eq!(round(dec!(2.345)), dec!(2.34));
        assert_eq!(round(dec!(2.355)), dec!(2.36));
        assert_eq!(round(dec!(-2.345)), dec!(-2.34));
        assert_eq!(
            Money::parse("100.00", "CNY")
                .unwrap()
                .times(dec!(0.025))
                .unwrap()
                .amount(),
            dec!(2.50)
        );
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies() {
        let cny = Money::parse("1", "CNY").unwrap();
        let usd = Money::parse("1", "USD").unwrap();
        assert!(matches!(
            cny.checked_add(usd),
            Err(MoneyError::CurrencyMismatch(_, _))
        ));
        assert_eq!(cny.checked_add(cny).unwrap().amount(), dec!(2));
    }

    #[test]
    fn amounts_of_10_to_the_15_or_more_are_refused_in_any_currency() {
        assert_eq!(MAX_AMOUNT, dec!(1_000_000_000_000_000));
        for code in ["CNY", "JPY", "KWD"] {
            let largest = Money::parse("999999999999999", code).unwrap();
            assert!(largest.to_minor_units().is_ok());
            assert_eq!(
                Money::parse("1000000000000000", code),
                Err(MoneyError::TooLarge)
            );
            assert_eq!(
                Money::parse("-1000000000000000", code),
                Err(MoneyError::TooLarge)
            );
        }
        assert_eq!(
            Money::parse("100000000000000000.00", "CNY"),
            Err(MoneyError::TooLarge)
        );
        // Beyond what a Decimal holds at all: refused the same way, not an overflow panic.
        assert_eq!(
            Money::parse("9999999999999999999999999999999", "CNY"),
            Err(MoneyError::TooLarge)
        );
    }

    #[test]
    fn minor_units_are_exact_and_refuse_what_does_not_fit() {
        let kwd = Money::parse("999999999999999.999", "KWD").unwrap();
        assert_eq!(kwd.to_minor_units(), Ok(999_999_999_999_999_999));
        assert_eq!(
            Money::from_minor_units(123_456, cny()).amount(),
            dec!(1234.56)
        );
        assert_eq!(
            Money::new(Decimal::MAX, cny()).to_minor_units(),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(dec!(100_000_000_000_000_000), cny()).to_minor_units(),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn sign_checks() {
        assert_eq!(
            Money::parse("-1", "CNY").unwrap().non_negative(),
            Err(MoneyError::Negative)
        );
        assert!(Money::parse("0", "CNY").unwrap().non_negative().is_ok());
        assert_eq!(
            Money::parse("0", "CNY").unwrap().positive(),
            Err(MoneyError::NotPositive)
        );
    }

    #[test]
    fn stored_form_keeps_the_amount_a_string() {
        let money = Money::parse("1250.10", "CNY").unwrap();
        let json = serde_json::to_string(&money).unwrap();
        assert_eq!(json, r#"{"amount":"1250.10","currency":"CNY"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1","currency":"XYZ"}"#).is_err());
    }

    proptest! {
        #[test]
        fn wire_round_trip_is_exact(units in -1_000_000_000_000i64..1_000_000_000_000i64) {
            let money = Money::new(Decimal::new(units, 2), cny());
            let wire = credit_proto::v1::Money::from(money);
            let back = Money::try_from(&wire).unwrap();
            prop_assert_eq!(back.amount(), money.amount());
        }

        #[test]
        fn parsed_amounts_are_below_the_maximum_and_fit_minor_units(
            whole in "[0-9]{1,30}",
            fraction in "[0-9]{0,3}",
            code in prop::sample::select(vec!["CNY", "JPY", "KWD", "USD"]),
        ) {
            let text = if fraction.is_empty() { whole.clone() } else { format!("{whole}.{fraction}") };
            if let Ok(money) = Money::parse(&text, code) {
                prop_assert!(money.amount().abs() < MAX_AMOUNT);
                let minor = money.to_minor_units();
                prop_assert!(minor.is_ok());
                prop_assert_eq!(Money::from_minor_units(minor.unwrap(), money.currency()).amount(), money.amount());
            }
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,50}", code in "[A-Za-z]{0,4}") {
            let _ = Money::parse(&text, &code);
        }
    }
}
