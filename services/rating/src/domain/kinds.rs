//! The closed sets a scorecard model is written in: customer kinds, characteristic sources with
//! the keys each provides, value types and indicator families.
//!
//! They mirror enums of the contract, but the domain owns them: the api converts at the edge,
//! and a number the contract may add later is refused there or named in a violation here.

use super::fields::is_lower_snake_case;

/// The kind of customer a model rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CustomerKind {
    Enterprise,
    Individual,
}

impl CustomerKind {
    /// The name the contract gives this kind, as messages show it.
    pub fn contract_name(self) -> &'static str {
        match self {
            Self::Enterprise => "CUSTOMER_KIND_ENTERPRISE",
            Self::Individual => "CUSTOMER_KIND_INDIVIDUAL",
        }
    }
}

/// Where a characteristic's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CharacteristicSource {
    FinancialStatement,
    BureauReport,
    TradeReferences,
    PaymentBehaviour,
    Qualitative,
    Customer,
    /// A company-defined data point (intake); the key is its code, and its type comes from
    /// the definition ([`super::data_points::DataPointCatalog`]).
    DataPoint,
}

/// Whether a characteristic is binned by numeric ranges or by category sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    Numeric,
    Categorical,
}

use ValueType::{Categorical, Numeric};

/// The keys each source provides, as listed on `CharacteristicSource` in the contract. A key
/// outside this list could never receive a value, so a model naming one has a typo.
const FINANCIAL_STATEMENT_KEYS: &[(&str, ValueType)] = &[
    ("current_ratio", Numeric),
    ("debt_to_assets", Numeric),
    ("net_margin", Numeric),
    ("return_on_assets", Numeric),
    ("interest_coverage", Numeric),
    ("operating_cash_flow_to_total_liabilities", Numeric),
    ("working_capital_to_total_assets", Numeric),
    ("retained_earnings_to_total_assets", Numeric),
    ("ebit_to_total_assets", Numeric),
    ("equity_to_total_liabilities", Numeric),
    ("altman_z_score", Numeric),
    ("revenue", Numeric),
    ("equity", Numeric),
    ("total_assets", Numeric),
];
const BUREAU_REPORT_KEYS: &[(&str, ValueType)] = &[
    ("score", Numeric),
    ("lawsuits_count", Numeric),
    ("agency_rating", Categorical),
    ("tax_compliance_status", Categorical),
];
const TRADE_REFERENCE_KEYS: &[(&str, ValueType)] = &[
    ("trade_reference_count", Numeric),
    ("average_days_beyond_terms", Numeric),
    ("worst_payment_experience", Categorical),
];
const PAYMENT_BEHAVIOUR_KEYS: &[(&str, ValueType)] = &[
    ("max_days_overdue_12m", Numeric),
    ("on_time_payment_ratio", Numeric),
    ("average_days_to_pay", Numeric),
    ("broken_promises_12m", Numeric),
];
const QUALITATIVE_KEYS: &[(&str, ValueType)] = &[
    ("management_quality", Numeric),
    ("market_position", Numeric),
    ("industry_outlook", Numeric),
    ("collateral_coverage", Numeric),
];
const CUSTOMER_KEYS: &[(&str, ValueType)] = &[
    ("years_in_business", Numeric),
    ("age_years", Numeric),
    ("annual_income", Numeric),
    ("industry_code", Categorical),
    ("country", Categorical),
];

impl CharacteristicSource {
    /// The name the contract gives this source, as messages show it.
    pub fn contract_name(self) -> &'static str {
        match self {
            Self::FinancialStatement => "CHARACTERISTIC_SOURCE_FINANCIAL_STATEMENT",
            Self::BureauReport => "CHARACTERISTIC_SOURCE_BUREAU_REPORT",
            Self::TradeReferences => "CHARACTERISTIC_SOURCE_TRADE_REFERENCES",
            Self::PaymentBehaviour => "CHARACTERISTIC_SOURCE_PAYMENT_BEHAVIOUR",
            Self::Qualitative => "CHARACTERISTIC_SOURCE_QUALITATIVE",
            Self::Customer => "CHARACTERISTIC_SOURCE_CUSTOMER",
            Self::DataPoint => "CHARACTERISTIC_SOURCE_DATA_POINT",
        }
    }

    /// The keys the contract lists for this source, with the type of their values.
    pub fn known_keys(self) -> &'static [(&'static str, ValueType)] {
        match self {
            Self::FinancialStatement => FINANCIAL_STATEMENT_KEYS,
            Self::BureauReport => BUREAU_REPORT_KEYS,
            Self::TradeReferences => TRADE_REFERENCE_KEYS,
            Self::PaymentBehaviour => PAYMENT_BEHAVIOUR_KEYS,
            Self::Qualitative => QUALITATIVE_KEYS,
            Self::Customer => CUSTOMER_KEYS,
            // Defined by each company: the catalog knows them.
            Self::DataPoint => &[],
        }
    }

    /// The type of the values `key` carries, or `None` when this source has no such key.
    /// Qualitative inputs are open-ended (models may define more), always on the 1-5 scale.
    /// Data points are typed by their definitions, so this answers `None` for them.
    pub fn value_type_of(self, key: &str) -> Option<ValueType> {
        if let Some((_, value_type)) = self.known_keys().iter().find(|(known, _)| *known == key) {
            return Some(*value_type);
        }
        (self == Self::Qualitative && is_lower_snake_case(key)).then_some(Numeric)
    }
}

impl ValueType {
    /// The name the contract gives this type, as messages show it.
    pub fn name(self) -> &'static str {
        match self {
            Numeric => "NUMERIC",
            Categorical => "CATEGORICAL",
        }
    }
}

/// The indicator family a characteristic belongs to; groups the breakdown in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndicatorFamily {
    FinancialStrength,
    Operations,
    Solvency,
    Collateral,
    PaymentBehaviour,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0}")]
pub struct UnknownEnumValue(pub i32);
