//! Data points: company-defined, typed attributes of a customer (住房情况, 现场尽职调查评分,
//! 营业执照到期日 …) that analysts set, imports fill and scorecards read.
//!
//! A [`Definition`] says what a data point is: its code, labels, type, the kind of customer it
//! describes, the values it allows, who may set it and how long a value stays valid. A
//! [`DataPointRecord`] is one value as recorded, with where it came from, who set it and when;
//! the customer's current value is the newest record of each code, and the older ones are its
//! history. Everything here is pure: checking a definition, checking a value against its
//! definition, and working out until when a value is valid.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, NaiveDate, Utc};
use credit_core::{Actor, Currency, Money, Role, Violations};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::customer::CustomerKind;

/// Longest code; codes are also scorecard input keys.
pub const MAX_CODE_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 200;
const MAX_DESCRIPTION_LEN: usize = 2_000;
/// Allowed values of one category data point, and the length of each.
pub const MAX_ALLOWED_VALUES: usize = 200;
const MAX_CATEGORY_LEN: usize = 200;
/// Ten years: a value valid longer than that is better defined as not expiring.
const MAX_VALID_DAYS: i32 = 3_650;
/// Values one SetDataPoints (or one import row) may carry.
pub const MAX_VALUES_PER_CHANGE: usize = 200;
/// Definitions a company may keep: every rating reads a customer's values whole, so their
/// number stays bounded.
pub const MAX_DEFINITIONS: usize = 1_000;
const MAX_NOTE_LEN: usize = 500;

/// Who may set a data point when its definition names nobody.
pub const DEFAULT_SETTERS: &[Role] = &[Role::Analyst, Role::CreditManager];

/// The type of a data point's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataPointType {
    Number,
    Category,
    Date,
    YesNo,
    Money,
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataPointSource {
    Api,
    Import,
    Investigation,
}

/// What a data point is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub code: String,
    pub label_zh: String,
    pub label_en: String,
    pub value_type: DataPointType,
    /// `None`: customers of both kinds.
    pub customer_kind: Option<CustomerKind>,
    /// CATEGORY only, in the order the company listed them.
    pub allowed_values: Vec<String>,
    /// Roles that may set values besides ADMIN; empty means [`DEFAULT_SETTERS`].
    pub setter_roles: Vec<Role>,
    /// 0: values do not expire.
    pub valid_days: i32,
    /// MONEY only.
    pub currency: Option<Currency>,
    pub description: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Actor,
}

/// A definition as a caller sent it, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct DefinitionDraft {
    pub code: String,
    pub label_zh: String,
    pub label_en: String,
    pub value_type: Option<DataPointType>,
    pub customer_kind: Option<CustomerKind>,
    pub allowed_values: Vec<String>,
    pub setter_roles: Vec<Role>,
    pub valid_days: i32,
    pub currency: String,
    pub description: String,
}

/// A data point value, checked against its definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataPointValue {
    Number(Decimal),
    Category(String),
    Date(NaiveDate),
    YesNo(bool),
    Money(Money),
}

/// A value as a caller sent it: each variant still unchecked.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Number(String),
    Category(String),
    Date(Result<NaiveDate, &'static str>),
    YesNo(bool),
    Money {
        amount: String,
        currency: String,
    },
    /// Any type written as text (a CSV cell), read by the definition's type.
    Text(String),
}

/// One value to set (`Some`) or clear (`None`).
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    pub code: String,
    pub value: Option<RawValue>,
}

/// One value of a customer's data point as recorded; the newest record of a code is the
/// current value (a record without a value cleared it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPointRecord {
    pub id: String,
    /// Shared by the records one change wrote (a SetDataPoints, an import row): a retried
    /// request answers with them.
    pub change_id: String,
    pub customer_id: String,
    pub code: String,
    pub value: Option<DataPointValue>,
    pub source: DataPointSource,
    /// The import or investigation id.
    #[serde(default)]
    pub source_reference: String,
    pub set_by: Actor,
    pub set_at: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub definition_version: i64,
    #[serde(default)]
    pub note: String,
}

impl DataPointRecord {
    /// Whether the value has passed its validity at `now`.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        self.valid_until.is_some_and(|until| until <= now)
    }
}

/// Where a change of values comes from, and who makes it.
#[derive(Debug, Clone)]
pub struct ChangeOrigin<'a> {
    pub change_id: &'a str,
    pub source: DataPointSource,
    pub source_reference: &'a str,
    pub actor: &'a Actor,
    pub note: &'a str,
    pub at: DateTime<Utc>,
}

/// Whether `code` is a usable data point code: lower_snake_case (letters, digits, single
/// underscores between words), starting with a letter. Scorecards name data points by code, and
/// rating applies the same rule.
pub fn is_code(code: &str) -> bool {
    credit_core::names::is_snake_code(code, MAX_CODE_LEN)
}

impl DefinitionDraft {
    /// The definition this draft makes as version `version`, or every problem at once (each at
    /// `definition.<field>`). `current` is the version it replaces: code, type and currency
    /// may not change, because stored values and published scorecards rely on them.
    pub fn check(
        self,
        current: Option<&Definition>,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<Definition, Violations> {
        let mut violations = Violations::new();
        let field = |name: &str| format!("definition.{name}");
        let code = self.code.trim().to_owned();
        if !is_code(&code) {
            violations.add(
                field("code"),
                format!(
                    "must be lower_snake_case starting with a letter, 1 to {MAX_CODE_LEN} characters"
                ),
            );
        }
        let label_zh = self.label_zh.trim().to_owned();
        let label_en = self.label_en.trim().to_owned();
        if label_zh.is_empty() && label_en.is_empty() {
            violations.add(
                field("label_en"),
                "a label in Chinese or English is required",
            );
        }
        for (name, label) in [("label_zh", &label_zh), ("label_en", &label_en)] {
            if label.chars().count() > MAX_LABEL_LEN {
                violations.add(field(name), format!("at most {MAX_LABEL_LEN} characters"));
            }
        }
        let description = self.description.trim().to_owned();
        if description.chars().count() > MAX_DESCRIPTION_LEN {
            violations.add(
                field("description"),
                format!("at most {MAX_DESCRIPTION_LEN} characters"),
            );
        }
        if !(0..=MAX_VALID_DAYS).contains(&self.valid_days) {
            violations.add(
                field("valid_days"),
                format!("must be 0 (does not expire) to {MAX_VALID_DAYS} days"),
            );
        }
        let mut setters: Vec<Role> = Vec::new();
        for role in self.setter_roles {
            if role == Role::Service {
                violations.add(
                    field("setter_roles"),
                    "SERVICE never writes a customer's file",
                );
            } else if !setters.contains(&role) {
                setters.push(role);
            }
        }
        let value_type = self.value_type;
        if value_type.is_none() {
            violations.add(field("type"), "is required");
        }
        let allowed_values = check_allowed_values(
            value_type,
            self.allowed_values,
            &field("allowed_values"),
            &mut violations,
        );
        let currency = check_currency(
            value_type,
            &self.currency,
            &field("currency"),
            &mut violations,
        );
        if let (Some(current), Some(value_type)) = (current, value_type) {
            if current.value_type != value_type {
                violations.add(
                    field("type"),
                    "a data point's type never changes once defined: define a new code",
                );
            }
            if current.currency != currency {
                violations.add(
                    field("currency"),
                    "a data point's currency never changes once defined: define a new code",
                );
            }
        }
        let Some(value_type) = value_type.filter(|_| violations.is_empty()) else {
            return Err(violations);
        };
        Ok(Definition {
            code,
            label_zh,
            label_en,
            value_type,
            customer_kind: self.customer_kind,
            allowed_values,
            setter_roles: setters,
            valid_days: self.valid_days,
            currency,
            description,
            version: current.map_or(1, |current| current.version + 1),
            updated_at: at,
            updated_by: actor.clone(),
        })
    }
}

fn check_allowed_values(
    value_type: Option<DataPointType>,
    values: Vec<String>,
    field: &str,
    violations: &mut Violations,
) -> Vec<String> {
    if value_type != Some(DataPointType::Category) {
        if !values.is_empty() {
            violations.add(field, "only a CATEGORY data point lists allowed values");
        }
        return Vec::new();
    }
    if values.is_empty() {
        violations.add(
            field,
            "a CATEGORY data point needs at least one allowed value",
        );
    }
    if values.len() > MAX_ALLOWED_VALUES {
        violations.add(field, format!("at most {MAX_ALLOWED_VALUES} values"));
    }
    let mut seen = BTreeSet::new();
    let mut kept = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        let value = value.trim().to_owned();
        let at = format!("{field}[{index}]");
        if value.is_empty() || value.chars().count() > MAX_CATEGORY_LEN {
            violations.add(at, format!("must be 1 to {MAX_CATEGORY_LEN} characters"));
        } else if !seen.insert(value.clone()) {
            violations.add(at, format!("'{value}' is listed twice"));
        } else {
            kept.push(value);
        }
    }
    kept
}

fn check_currency(
    value_type: Option<DataPointType>,
    code: &str,
    field: &str,
    violations: &mut Violations,
) -> Option<Currency> {
    let code = code.trim();
    if value_type == Some(DataPointType::Money) {
        if code.is_empty() {
            violations.add(field, "a MONEY data point names its currency");
            return None;
        }
        return violations.check(field, Currency::parse(code));
    }
    if !code.is_empty() {
        violations.add(field, "only a MONEY data point has a currency");
    }
    None
}

impl Definition {
    /// Whether `roles` may set values of this data point (ADMIN always may).
    pub fn may_be_set_by(&self, roles: &[String]) -> bool {
        let setters: &[Role] = if self.setter_roles.is_empty() {
            DEFAULT_SETTERS
        } else {
            &self.setter_roles
        };
        roles.iter().any(|role| {
            role == Role::Admin.as_str() || setters.iter().any(|setter| setter.as_str() == role)
        })
    }

    /// Whether the data point describes customers of `kind`.
    pub fn applies_to(&self, kind: CustomerKind) -> bool {
        self.customer_kind.is_none_or(|own| own == kind)
    }

    /// When a value set at `set_at` stops being valid; `None` when values do not expire.
    pub fn valid_until(&self, set_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let days = u64::try_from(self.valid_days)
            .ok()
            .filter(|days| *days > 0)?;
        set_at.checked_add_days(Days::new(days))
    }

    /// The value `raw` checked against this definition, or why not (safe to show: it names
    /// the definition's rules, never echoes the value).
    pub fn check_value(&self, raw: RawValue) -> Result<DataPointValue, String> {
        let expected = self.value_type;
        if let RawValue::Text(text) = raw {
            return self.check_value(self.read_text(text.trim())?);
        }
        let wrong_type = || format!("'{}' takes a {} value", self.code, type_name(expected));
        match (expected, raw) {
            (DataPointType::Number, RawValue::Number(text)) => {
                credit_core::money::parse_decimal(text.trim())
                    .map(DataPointValue::Number)
                    .map_err(|_| "must be a plain decimal number such as 12.5".to_owned())
            }
            (DataPointType::Category, RawValue::Category(value)) => {
                let value = value.trim();
                if self.allowed_values.iter().any(|allowed| allowed == value) {
                    Ok(DataPointValue::Category(value.to_owned()))
                } else {
                    Err(format!(
                        "is not one of the {} values '{}' allows",
                        self.allowed_values.len(),
                        self.code
                    ))
                }
            }
            (DataPointType::Date, RawValue::Date(date)) => {
                date.map(DataPointValue::Date).map_err(str::to_owned)
            }
            (DataPointType::YesNo, RawValue::YesNo(yes)) => Ok(DataPointValue::YesNo(yes)),
            (DataPointType::Money, RawValue::Money { amount, currency }) => {
                let money = Money::parse(amount.trim(), currency.trim())
                    .map_err(|error| error.to_string())?;
                if Some(money.currency()) != self.currency {
                    return Err(format!(
                        "'{}' is kept in {}; convert the amount first",
                        self.code,
                        self.currency
                            .map_or("its currency", |currency| currency.code())
                    ));
                }
                Ok(DataPointValue::Money(money.round()))
            }
            _ => Err(wrong_type()),
        }
    }
}

impl Definition {
    /// A value written as text, read as this definition's type.
    fn read_text(&self, text: &str) -> Result<RawValue, String> {
        Ok(match self.value_type {
            DataPointType::Number => RawValue::Number(text.to_owned()),
            DataPointType::Category => RawValue::Category(text.to_owned()),
            DataPointType::Date => RawValue::Date(
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map_err(|_| "must be a date written YYYY-MM-DD"),
            ),
            DataPointType::YesNo => RawValue::YesNo(read_yes_no(text).ok_or_else(|| {
                "must be yes or no (also true/false, y/n, 1/0, 是/否)".to_owned()
            })?),
            DataPointType::Money => RawValue::Money {
                amount: text.to_owned(),
                currency: self
                    .currency
                    .map(|currency| currency.code().to_owned())
                    .unwrap_or_default(),
            },
        })
    }
}

fn read_yes_no(text: &str) -> Option<bool> {
    match text.to_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "是" => Some(true),
        "no" | "n" | "false" | "0" | "否" => Some(false),
        _ => None,
    }
}

/// The name of a type as the contract spells it.
pub fn type_name(value_type: DataPointType) -> &'static str {
    match value_type {
        DataPointType::Number => "NUMBER",
        DataPointType::Category => "CATEGORY",
        DataPointType::Date => "DATE",
        DataPointType::YesNo => "YES_NO",
        DataPointType::Money => "MONEY",
    }
}

/// Checks a change of a customer's values against the definitions (`definition_of`), all at
/// once: each problem at `<field>[i]` (or `<field>[i].value`), and the records to store when
/// there is none. `kind` is the customer's.
pub fn check_change<'d>(
    entries: Vec<RawEntry>,
    definition_of: impl Fn(&str) -> Option<&'d Definition>,
    kind: CustomerKind,
    customer_id: &str,
    origin: &ChangeOrigin<'_>,
    field: &str,
    new_id: &mut dyn FnMut() -> String,
) -> Result<Vec<DataPointRecord>, ChangeRefused> {
    let mut violations = Violations::new();
    let mut not_allowed = Vec::new();
    if entries.len() > MAX_VALUES_PER_CHANGE {
        violations.add(
            field,
            format!("at most {MAX_VALUES_PER_CHANGE} values in one change"),
        );
    }
    if origin.note.chars().count() > MAX_NOTE_LEN {
        violations.add("note", format!("at most {MAX_NOTE_LEN} characters"));
    }
    let mut seen = BTreeSet::new();
    let mut records = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let at = format!("{field}[{index}]");
        let code = entry.code.trim().to_owned();
        let Some(definition) = definition_of(&code) else {
            violations.add(format!("{at}.code"), "is not a defined data point");
            continue;
        };
        if !seen.insert(code.clone()) {
            violations.add(format!("{at}.code"), format!("'{code}' is set twice"));
            continue;
        }
        if !definition.applies_to(kind) {
            violations.add(
                format!("{at}.code"),
                format!(
                    "'{code}' describes {} customers only",
                    definition.customer_kind.map_or("", |kind| kind.as_str())
                ),
            );
            continue;
        }
        if !definition.may_be_set_by(&origin.actor.roles) {
            not_allowed.push(code.clone());
            continue;
        }
        let value = match entry.value {
            None => None,
            Some(raw) => match definition.check_value(raw) {
                Ok(value) => Some(value),
                Err(problem) => {
                    violations.add(format!("{at}.value"), problem);
                    continue;
                }
            },
        };
        records.push(DataPointRecord {
            id: new_id(),
            change_id: origin.change_id.to_owned(),
            customer_id: customer_id.to_owned(),
            code,
            valid_until: value
                .as_ref()
                .and_then(|_| definition.valid_until(origin.at)),
            value,
            source: origin.source,
            source_reference: origin.source_reference.to_owned(),
            set_by: origin.actor.clone(),
            set_at: origin.at,
            definition_version: definition.version,
            note: origin.note.trim().to_owned(),
        });
    }
    if !violations.is_empty() {
        return Err(ChangeRefused::Invalid(violations));
    }
    if !not_allowed.is_empty() {
        return Err(ChangeRefused::SetterRoleRequired(not_allowed));
    }
    Ok(records)
}

/// Why a change of values was refused.
#[derive(Debug)]
pub enum ChangeRefused {
    Invalid(Violations),
    /// The codes the caller may not set.
    SetterRoleRequired(Vec<String>),
}

#[cfg(test)]
mod tests;
