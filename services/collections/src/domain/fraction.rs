//! A fraction between 0 and 1 inclusive: a probability of default, a loss given default.

use std::fmt;

use rust_decimal::Decimal;

/// Loss given default used when none is configured: 45 %, the Basel foundation-IRB figure for
/// senior unsecured claims, a common default for trade receivables.
pub const DEFAULT_LGD: Fraction = Fraction(Decimal::from_parts(45, 0, 0, false, 2));

/// Why a fraction was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FractionError {
    #[error("must be between 0 and 1 inclusive, got {0}")]
    OutOfRange(Decimal),
}

/// A decimal in `[0, 1]`, built only through [`Fraction::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fraction(Decimal);

impl Fraction {
    pub const ZERO: Fraction = Fraction(Decimal::ZERO);
    pub const ONE: Fraction = Fraction(Decimal::ONE);

    pub fn parse(value: Decimal) -> Result<Self, FractionError> {
        if value < Decimal::ZERO || value > Decimal::ONE {
            return Err(FractionError::OutOfRange(value));
        }
        Ok(Self(value))
    }

    /// A percentage in `[0, 100]` as a fraction ("25" → 0.25).
    pub fn from_percent(percent: Decimal) -> Result<Self, FractionError> {
        let hundred = Decimal::ONE_HUNDRED;
        if percent < Decimal::ZERO || percent > hundred {
            return Err(FractionError::OutOfRange(percent));
        }
        Ok(Self(percent / hundred))
    }

    pub fn value(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn fractions_outside_zero_to_one_are_refused() {
        assert!(Fraction::parse(dec!(-0.01)).is_err());
        assert!(Fraction::parse(dec!(1.01)).is_err());
        assert_eq!(Fraction::parse(dec!(1)).unwrap(), Fraction::ONE);
        assert_eq!(
            Fraction::from_percent(dec!(25)).unwrap().value(),
            dec!(0.25)
        );
        assert!(Fraction::from_percent(dec!(100.5)).is_err());
        assert_eq!(DEFAULT_LGD.value(), dec!(0.45));
    }
}
