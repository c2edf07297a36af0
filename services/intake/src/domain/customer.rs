//! The customer credit file: what an enterprise or individual customer is, the rules a
//! description of one must follow, its lifecycle, and what changed between two versions.
//! Reading a caller's message into these types is the API's work (`api::convert`).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use credit_core::{Actor, Money, Violations};
use serde::{Deserialize, Serialize};

/// Longest legal or employer name, and longest address line.
pub const MAX_NAME: usize = 200;
/// Longest short text: a person's name, a role, an occupation, a reference.
pub const MAX_SHORT_TEXT: usize = 100;
/// Contacts one customer may list.
pub const MAX_CONTACTS: usize = 20;
/// Lines of one postal address.
pub const MAX_ADDRESS_LINES: usize = 4;
const MAX_REASON: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerKind {
    Enterprise,
    Individual,
}

impl CustomerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CustomerKind::Enterprise => "ENTERPRISE",
            CustomerKind::Individual => "INDIVIDUAL",
        }
    }
}

/// Where a customer stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerStatus {
    /// Registered, not yet approved to trade on credit.
    Prospect,
    Active,
    /// Temporarily not trading (for example during a dispute or review).
    Suspended,
    /// No longer a customer; final.
    Closed,
}

impl CustomerStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            CustomerStatus::Prospect => "PROSPECT",
            CustomerStatus::Active => "ACTIVE",
            CustomerStatus::Suspended => "SUSPENDED",
            CustomerStatus::Closed => "CLOSED",
        }
    }

    /// The lifecycle: PROSPECT → ACTIVE ⇄ SUSPENDED, and any status but CLOSED → CLOSED.
    pub fn may_become(self, next: CustomerStatus) -> bool {
        use CustomerStatus::*;
        matches!(
            (self, next),
            (Prospect, Active)
                | (Active, Suspended)
                | (Suspended, Active)
                | (Prospect | Active | Suspended, Closed)
        )
    }
}

/// A value that identifies or reaches a person (national id, phone, email). Its `Debug`
/// output is redacted so it cannot leak into logs or traces through a `{:?}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonalData(String);

impl PersonalData {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// All but the last four characters hidden, for callers who may not see the value.
    pub fn masked(&self) -> String {
        let characters: Vec<char> = self.0.chars().collect();
        let shown = characters.len().saturating_sub(4);
        characters
            .iter()
            .enumerate()
            .map(|(index, character)| if index < shown { '*' } else { *character })
            .collect()
    }

    /// An e-mail address with its mailbox hidden but the first character, the domain kept:
    /// `z***@example.com` says which company without saying whom.
    pub fn masked_email(&self) -> String {
        match self.0.split_once('@') {
            Some((mailbox, domain)) => {
                let first: String = mailbox.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => self.masked(),
        }
    }
}

impl fmt::Debug for PersonalData {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[personal data]")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enterprise {
    pub legal_name: String,
    /// Normalised: trimmed and upper-case. On `CN` the unified social credit code.
    pub registration_number: String,
    pub registered_capital: Option<Money>,
    pub legal_representative: String,
    pub industry_code: String,
    pub founding_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Individual {
    pub full_name: String,
    pub national_id: PersonalData,
    pub birth_date: Option<NaiveDate>,
    pub occupation: String,
    pub employer: String,
    pub annual_income: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Details {
    Enterprise(Enterprise),
    Individual(Individual),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Address {
    pub lines: Vec<String>,
    pub locality: String,
    pub region: String,
    pub postal_code: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub contact_id: String,
    pub name: String,
    pub role: String,
    pub phone: Option<PersonalData>,
    pub email: Option<PersonalData>,
    pub primary: bool,
}

/// The part of a customer that callers describe and may update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub details: Details,
    pub address: Option<Address>,
    pub contacts: Vec<Contact>,
    pub external_reference: String,
}

impl Profile {
    pub fn kind(&self) -> CustomerKind {
        match self.details {
            Details::Enterprise(_) => CustomerKind::Enterprise,
            Details::Individual(_) => CustomerKind::Individual,
        }
    }

    pub fn display_name(&self) -> &str {
        match &self.details {
            Details::Enterprise(enterprise) => &enterprise.legal_name,
            Details::Individual(individual) => &individual.full_name,
        }
    }

    pub fn registration_number(&self) -> Option<&str> {
        match &self.details {
            Details::Enterprise(enterprise) => Some(&enterprise.registration_number),
            Details::Individual(_) => None,
        }
    }

    pub fn industry_code(&self) -> &str {
        match &self.details {
            Details::Enterprise(enterprise) => &enterprise.industry_code,
            Details::Individual(_) => "",
        }
    }
}

/// A registered customer as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    /// ISO 3166-1 alpha-2 country of registration or residence.
    pub country: String,
    pub status: CustomerStatus,
    pub status_reason: String,
    pub status_changed_at: DateTime<Utc>,
    pub group_id: Option<String>,
    /// When the customer joined its current group.
    #[serde(default)]
    pub group_joined_at: Option<DateTime<Utc>>,
    pub profile: Profile,
    /// Increases with every change; the `etag` callers send back for optimistic concurrency.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: Actor,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Actor,
}

impl Customer {
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }
}

/// What a caller described, checked: the country, and the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomer {
    pub country: String,
    pub profile: Profile,
}

/// `text` trimmed, or a violation when it is empty; its length and characters checked.
pub fn required_text(
    text: &str,
    max: usize,
    field: &str,
    violations: &mut Violations,
) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        violations.add(field, "is required");
        return None;
    }
    check_length(text, max, field, violations);
    Some(text.to_owned())
}

/// Records a violation when `text` is longer than `max` characters or holds control
/// characters.
pub fn check_length(text: &str, max: usize, field: &str, violations: &mut Violations) {
    if text.chars().count() > max {
        violations.add(field, format!("must be at most {max} characters"));
    }
    if text.chars().any(char::is_control) {
        violations.add(field, "must not contain control characters");
    }
}

/// An ISO 3166-1 alpha-2 code in its normal form (two upper-case letters).
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|byte| byte.is_ascii_uppercase())
}

/// An email address of the ordinary shape: one `@`, a local part, a domain with a dot.
pub fn is_email(email: &str) -> bool {
    if email.len() > 254
        || email
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
    {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|character| character.is_alphanumeric() || character == '-' || character == '.')
}

/// A phone number as people write it: digits with an optional leading `+`, spaces, dashes
/// and parentheses; 6 to 20 digits in all.
pub fn is_phone(phone: &str) -> bool {
    let body = phone.strip_prefix('+').unwrap_or(phone);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    (6..=20).contains(&digits)
        && body
            .chars()
            .all(|character| character.is_ascii_digit() || " -()".contains(character))
}

/// A reason a person gives for a change: required, bounded.
pub fn parse_reason(reason: &str, field: &str) -> Result<String, Violations> {
    let reason = reason.trim();
    let mut violations = Violations::new();
    if reason.is_empty() {
        violations.add(field, "a reason is required");
    } else if reason.chars().count() > MAX_REASON {
        violations.add(field, format!("must be at most {MAX_REASON} characters"));
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(reason.to_owned())
}

/// The fields an `UpdateCustomer` mask may name. Kind, country and registration number are
/// the customer's identity and never change; status and group have their own RPCs.
pub const UPDATABLE_PATHS: &[&str] = &[
    "enterprise.legal_name",
    "enterprise.registered_capital",
    "enterprise.legal_representative",
    "enterprise.industry_code",
    "enterprise.founding_date",
    "individual.full_name",
    "individual.national_id",
    "individual.birth_date",
    "individual.occupation",
    "individual.employer",
    "individual.annual_income",
    "address",
    "contacts",
    "external_reference",
];

/// Checks the paths of an `UpdateCustomer` mask against [`UPDATABLE_PATHS`] and the
/// customer's kind, reporting every path that cannot be applied.
pub fn check_update_paths(current: &Customer, paths: &[String]) -> Result<(), Violations> {
    let mut violations = Violations::new();
    if paths.is_empty() {
        violations.add("update_mask", "names no field to update");
    }
    for path in paths {
        if !UPDATABLE_PATHS.contains(&path.as_str()) {
            violations.add(
                "update_mask",
                format!(
                    "'{path}' cannot be updated; updatable: {}",
                    UPDATABLE_PATHS.join(", ")
                ),
            );
        }
    }
    let kind_prefix = match current.profile.kind() {
        CustomerKind::Enterprise => "enterprise.",
        CustomerKind::Individual => "individual.",
    };
    for path in paths {
        if (path.starts_with("enterprise.") || path.starts_with("individual."))
            && !path.starts_with(kind_prefix)
        {
            violations.add(
                "update_mask",
                format!(
                    "'{path}' does not apply to a {} customer",
                    current.profile.kind().as_str()
                ),
            );
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// One changed field for the audit trail. Personal data appears masked: the trail says that
/// a national id changed without spreading it further. A change that keeps the last four
/// characters therefore shows the same masked value on both sides; the entry itself is the
/// record that the field changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old_value: String,
    pub new_value: String,
}

/// One field of a profile: the value it holds, and the value the audit trail shows.
/// They differ only for personal data, which is shown masked.
struct FieldValue {
    raw: String,
    shown: String,
}

/// Every field that differs between two profiles. Fields are compared on their raw values:
/// comparing the masked form would take a new phone number with the same last four digits
/// for no change, and the update would be silently dropped.
pub fn diff(old: &Profile, new: &Profile) -> Vec<FieldChange> {
    let before = fields_of(old);
    let after = fields_of(new);
    let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter_map(|field| {
            let old_value = before.get(field);
            let new_value = after.get(field);
            if old_value.map(|value| &value.raw) == new_value.map(|value| &value.raw) {
                return None;
            }
            let shown = |value: Option<&FieldValue>| {
                value.map(|value| value.shown.clone()).unwrap_or_default()
            };
            Some(FieldChange {
                field: field.clone(),
                old_value: shown(old_value),
                new_value: shown(new_value),
            })
        })
        .collect()
}

/// The profile as field path → shown value (personal data masked), as the audit trail of a
/// new customer lists it.
pub fn flatten(profile: &Profile) -> BTreeMap<String, String> {
    fields_of(profile)
        .into_iter()
        .map(|(field, value)| (field, value.shown))
        .collect()
}

/// The profile as field path → value; empty fields are left out, so a field that is cleared
/// and one that was never set compare alike.
fn fields_of(profile: &Profile) -> BTreeMap<String, FieldValue> {
    let mut fields = BTreeMap::new();
    let mut put = |field: String, raw: String| {
        if !raw.is_empty() {
            fields.insert(
                field,
                FieldValue {
                    shown: raw.clone(),
                    raw,
                },
            );
        }
    };
    let money = |money: &Option<Money>| money.map(|money| money.to_string()).unwrap_or_default();
    let date = |date: &Option<NaiveDate>| date.map(|date| date.to_string()).unwrap_or_default();
    // Personal data is kept raw for the comparison and masked for the trail.
    let mut personal = Vec::new();
    match &profile.details {
        Details::Enterprise(enterprise) => {
            put(
                "enterprise.legal_name".into(),
                enterprise.legal_name.clone(),
            );
            put(
                "enterprise.registration_number".into(),
                enterprise.registration_number.clone(),
            );
            put(
                "enterprise.registered_capital".into(),
                money(&enterprise.registered_capital),
            );
            put(
                "enterprise.legal_representative".into(),
                enterprise.legal_representative.clone(),
            );
            put(
                "enterprise.industry_code".into(),
                enterprise.industry_code.clone(),
            );
            put(
                "enterprise.founding_date".into(),
                date(&enterprise.founding_date),
            );
        }
        Details::Individual(individual) => {
            put("individual.full_name".into(), individual.full_name.clone());
            personal.push(("individual.national_id".to_owned(), &individual.national_id));
            put("individual.birth_date".into(), date(&individual.birth_date));
            put(
                "individual.occupation".into(),
                individual.occupation.clone(),
            );
            put("individual.employer".into(), individual.employer.clone());
            put(
                "individual.annual_income".into(),
                money(&individual.annual_income),
            );
        }
    }
    if let Some(address) = &profile.address {
        put("address.address_lines".into(), address.lines.join(" / "));
        put("address.locality".into(), address.locality.clone());
        put("address.region".into(), address.region.clone());
        put("address.postal_code".into(), address.postal_code.clone());
        put("address.country".into(), address.country.clone());
    }
    for (index, contact) in profile.contacts.iter().enumerate() {
        let prefix = format!("contacts[{index}]");
        put(format!("{prefix}.name"), contact.name.clone());
        put(format!("{prefix}.role"), contact.role.clone());
        if let Some(phone) = &contact.phone {
            personal.push((format!("{prefix}.phone"), phone));
        }
        if let Some(email) = &contact.email {
            personal.push((format!("{prefix}.email"), email));
        }
        put(
            format!("{prefix}.primary"),
            if contact.primary {
                "true".into()
            } else {
                String::new()
            },
        );
    }
    put(
        "external_reference".into(),
        profile.external_reference.clone(),
    );
    for (field, value) in personal {
        if !value.expose().is_empty() {
            fields.insert(
                field,
                FieldValue {
                    raw: value.expose().to_owned(),
                    shown: value.masked(),
                },
            );
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_allows_only_the_documented_transitions() {
        use CustomerStatus::*;
        let all = [Prospect, Active, Suspended, Closed];
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|from| all.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.may_become(*to))
            .collect();
        assert_eq!(
            allowed,
            [
                (Prospect, Active),
                (Prospect, Closed),
                (Active, Suspended),
                (Active, Closed),
                (Suspended, Active),
                (Suspended, Closed)
            ]
        );
    }

    #[test]
    fn email_and_phone_shapes() {
        assert!(is_email("a.b@example.com"));
        assert!(!is_email("a@b"));
        assert!(!is_email("a b@example.com"));
        assert!(!is_email("@example.com"));
        assert!(is_phone("+86 (592) 555-0100"));
        assert!(!is_phone("12345"));
        assert!(!is_phone("call me"));
    }
}
