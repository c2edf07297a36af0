//! The customer credit file: what an enterprise or individual customer is, how a caller's
//! description of one is checked, its lifecycle, and what changed between two versions.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use credit_core::{Money, Principal, ServiceError, Violations};
use credit_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use super::uscc;

const MAX_NAME: usize = 200;
const MAX_SHORT_TEXT: usize = 100;
const MAX_CONTACTS: usize = 20;
const MAX_ADDRESS_LINES: usize = 4;
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

    pub fn to_proto(self) -> pb::CustomerKind {
        match self {
            CustomerKind::Enterprise => pb::CustomerKind::Enterprise,
            CustomerKind::Individual => pb::CustomerKind::Individual,
        }
    }

    pub fn from_proto(kind: pb::CustomerKind) -> Option<Self> {
        match kind {
            pb::CustomerKind::Enterprise => Some(CustomerKind::Enterprise),
            pb::CustomerKind::Individual => Some(CustomerKind::Individual),
            pb::CustomerKind::Unspecified => None,
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

    pub fn to_proto(self) -> pb::CustomerStatus {
        match self {
            CustomerStatus::Prospect => pb::CustomerStatus::Prospect,
            CustomerStatus::Active => pb::CustomerStatus::Active,
            CustomerStatus::Suspended => pb::CustomerStatus::Suspended,
            CustomerStatus::Closed => pb::CustomerStatus::Closed,
        }
    }

    pub fn from_proto(status: pb::CustomerStatus) -> Option<Self> {
        match status {
            pb::CustomerStatus::Prospect => Some(CustomerStatus::Prospect),
            pb::CustomerStatus::Active => Some(CustomerStatus::Active),
            pb::CustomerStatus::Suspended => Some(CustomerStatus::Suspended),
            pb::CustomerStatus::Closed => Some(CustomerStatus::Closed),
            pb::CustomerStatus::Unspecified => None,
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

/// Who did something, as audit trails show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRecord {
    pub principal: String,
    pub roles: Vec<String>,
}

impl ActorRecord {
    pub fn of(principal: &Principal) -> Self {
        Self {
            principal: principal.name.clone(),
            roles: principal
                .roles
                .iter()
                .map(|role| role.as_str().to_owned())
                .collect(),
        }
    }

    pub fn to_proto(&self) -> pb::Actor {
        pb::Actor {
            principal: self.principal.clone(),
            roles: self
                .roles
                .iter()
                .filter_map(|role| pb::Role::from_str_name(&format!("ROLE_{role}")))
                .map(|role| role as i32)
                .collect(),
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
    pub created_by: ActorRecord,
    pub updated_at: DateTime<Utc>,
    pub updated_by: ActorRecord,
}

impl Customer {
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }

    /// The wire form. National ids are masked unless `reveal_personal_data`.
    pub fn to_proto(&self, reveal_personal_data: bool) -> pb::Customer {
        let details = match &self.profile.details {
            Details::Enterprise(enterprise) => {
                pb::customer::Details::Enterprise(pb::EnterpriseDetails {
                    legal_name: enterprise.legal_name.clone(),
                    registration_number: enterprise.registration_number.clone(),
                    registered_capital: enterprise.registered_capital.map(Into::into),
                    legal_representative: enterprise.legal_representative.clone(),
                    industry_code: enterprise.industry_code.clone(),
                    founding_date: enterprise.founding_date.map(date_to_proto),
                })
            }
            Details::Individual(individual) => {
                pb::customer::Details::Individual(pb::IndividualDetails {
                    full_name: individual.full_name.clone(),
                    national_id: if reveal_personal_data {
                        individual.national_id.expose().to_owned()
                    } else {
                        individual.national_id.masked()
                    },
                    birth_date: individual.birth_date.map(date_to_proto),
                    occupation: individual.occupation.clone(),
                    employer: individual.employer.clone(),
                    annual_income: individual.annual_income.map(Into::into),
                })
            }
        };
        pb::Customer {
            customer_id: self.id.clone(),
            kind: self.profile.kind().to_proto() as i32,
            status: self.status.to_proto() as i32,
            country: self.country.clone(),
            display_name: self.profile.display_name().to_owned(),
            details: Some(details),
            address: self
                .profile
                .address
                .as_ref()
                .map(|address| pb::PostalAddress {
                    address_lines: address.lines.clone(),
                    locality: address.locality.clone(),
                    region: address.region.clone(),
                    postal_code: address.postal_code.clone(),
                    country: address.country.clone(),
                }),
            contacts: self
                .profile
                .contacts
                .iter()
                .map(|contact| pb::Contact {
                    contact_id: contact.contact_id.clone(),
                    name: contact.name.clone(),
                    role: contact.role.clone(),
                    phone: contact
                        .phone
                        .as_ref()
                        .map(|phone| phone.expose().to_owned())
                        .unwrap_or_default(),
                    email: contact
                        .email
                        .as_ref()
                        .map(|email| email.expose().to_owned())
                        .unwrap_or_default(),
                    primary: contact.primary,
                })
                .collect(),
            external_reference: self.profile.external_reference.clone(),
            group_id: self.group_id.clone().unwrap_or_default(),
            status_reason: self.status_reason.clone(),
            status_changed_at: Some(timestamp(self.status_changed_at)),
            etag: self.etag(),
            audit: Some(pb::AuditInfo {
                created_at: Some(timestamp(self.created_at)),
                created_by: Some(self.created_by.to_proto()),
                updated_at: Some(timestamp(self.updated_at)),
                updated_by: Some(self.updated_by.to_proto()),
            }),
        }
    }
}

pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn date_to_proto(date: NaiveDate) -> pb::Date {
    pb::Date {
        year: date.year(),
        month: i32::try_from(date.month()).unwrap_or(0),
        day: i32::try_from(date.day()).unwrap_or(0),
    }
}

/// A real calendar date, or why not.
pub fn date_from_proto(date: &pb::Date) -> Result<NaiveDate, &'static str> {
    let month = u32::try_from(date.month).map_err(|_| "month must be 1 to 12")?;
    let day = u32::try_from(date.day).map_err(|_| "day must be 1 to 31")?;
    NaiveDate::from_ymd_opt(date.year, month, day).ok_or("is not a calendar date")
}

/// What a caller described, checked: the country, and the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomer {
    pub country: String,
    pub profile: Profile,
}

/// Checks a caller's customer and reports every problem at once, with field paths under
/// `prefix` (`customer`, or `rows[3].customer` in an import).
pub fn parse_customer(
    wire: &pb::Customer,
    today: NaiveDate,
    prefix: &str,
) -> Result<NewCustomer, ServiceError> {
    let mut violations = Violations::new();
    let parsed = parse_customer_into(wire, today, prefix, &mut violations);
    violations.finish()?;
    parsed.ok_or_else(|| ServiceError::invalid(prefix, "is incomplete"))
}

fn parse_customer_into(
    wire: &pb::Customer,
    today: NaiveDate,
    prefix: &str,
    violations: &mut Violations,
) -> Option<NewCustomer> {
    let field = |name: &str| format!("{prefix}.{name}");
    let country = wire.country.trim().to_ascii_uppercase();
    if !is_country_code(&country) {
        violations.add(
            field("country"),
            "must be an ISO 3166-1 alpha-2 code such as CN",
        );
    }
    let declared_kind = pb::CustomerKind::try_from(wire.kind)
        .ok()
        .and_then(CustomerKind::from_proto);
    let details = match &wire.details {
        None => {
            violations.add(
                field("details"),
                "enterprise or individual details are required",
            );
            None
        }
        Some(pb::customer::Details::Enterprise(enterprise)) => {
            if declared_kind == Some(CustomerKind::Individual) {
                violations.add(
                    field("kind"),
                    "is INDIVIDUAL but enterprise details were given",
                );
            }
            parse_enterprise(
                enterprise,
                &country,
                today,
                &field("enterprise"),
                violations,
            )
            .map(Details::Enterprise)
        }
        Some(pb::customer::Details::Individual(individual)) => {
            if declared_kind == Some(CustomerKind::Enterprise) {
                violations.add(
                    field("kind"),
                    "is ENTERPRISE but individual details were given",
                );
            }
            parse_individual(individual, today, &field("individual"), violations)
                .map(Details::Individual)
        }
    };
    let address = wire
        .address
        .as_ref()
        .map(|address| parse_address(address, &field("address"), violations));
    if wire.contacts.len() > MAX_CONTACTS {
        violations.add(
            field("contacts"),
            format!("at most {MAX_CONTACTS} contacts"),
        );
    }
    let contacts: Vec<Contact> = wire
        .contacts
        .iter()
        .enumerate()
        .map(|(index, contact)| {
            parse_contact(
                contact,
                index,
                &field(&format!("contacts[{index}]")),
                violations,
            )
        })
        .collect();
    let external_reference = wire.external_reference.trim().to_owned();
    check_length(
        &external_reference,
        MAX_SHORT_TEXT,
        &field("external_reference"),
        violations,
    );
    Some(NewCustomer {
        country,
        profile: Profile {
            details: details?,
            address,
            contacts,
            external_reference,
        },
    })
}

fn parse_enterprise(
    wire: &pb::EnterpriseDetails,
    country: &str,
    today: NaiveDate,
    prefix: &str,
    violations: &mut Violations,
) -> Option<Enterprise> {
    let field = |name: &str| format!("{prefix}.{name}");
    let legal_name = required_text(&wire.legal_name, MAX_NAME, &field("legal_name"), violations);
    let registration_number = wire.registration_number.trim().to_ascii_uppercase();
    if registration_number.is_empty() {
        violations.add(field("registration_number"), "is required");
    } else if country == "CN" {
        // In China the registration number is the unified social credit code (GB 32100-2015).
        violations.check(
            &field("registration_number"),
            uscc::validate(&registration_number),
        );
    } else if registration_number.chars().count() > 50
        || !registration_number
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-./ ".contains(character))
    {
        violations.add(
            field("registration_number"),
            "must be at most 50 letters, digits, spaces, dots, dashes or slashes",
        );
    }
    let registered_capital = optional_money(
        wire.registered_capital.as_ref(),
        &field("registered_capital"),
        violations,
    );
    let legal_representative = wire.legal_representative.trim().to_owned();
    check_length(
        &legal_representative,
        MAX_SHORT_TEXT,
        &field("legal_representative"),
        violations,
    );
    let industry_code = wire.industry_code.trim().to_ascii_uppercase();
    if industry_code.chars().count() > 20
        || !industry_code
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || ".-".contains(character))
    {
        violations.add(
            field("industry_code"),
            "must be at most 20 letters, digits, dots or dashes",
        );
    }
    let founding_date = optional_past_date(
        wire.founding_date.as_ref(),
        today,
        &field("founding_date"),
        violations,
    );
    Some(Enterprise {
        legal_name: legal_name?,
        registration_number,
        registered_capital,
        legal_representative,
        industry_code,
        founding_date,
    })
}

fn parse_individual(
    wire: &pb::IndividualDetails,
    today: NaiveDate,
    prefix: &str,
    violations: &mut Violations,
) -> Option<Individual> {
    let field = |name: &str| format!("{prefix}.{name}");
    let full_name = required_text(
        &wire.full_name,
        MAX_SHORT_TEXT,
        &field("full_name"),
        violations,
    );
    let national_id = wire.national_id.trim().to_ascii_uppercase();
    // Never echo the value in a violation: the message reaches the caller and maybe a log.
    if national_id.is_empty() {
        violations.add(field("national_id"), "is required");
    } else if !(4..=32).contains(&national_id.chars().count())
        || !national_id
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '-')
    {
        violations.add(
            field("national_id"),
            "must be 4 to 32 letters, digits or dashes",
        );
    }
    let birth_date = optional_past_date(
        wire.birth_date.as_ref(),
        today,
        &field("birth_date"),
        violations,
    );
    let occupation = wire.occupation.trim().to_owned();
    check_length(
        &occupation,
        MAX_SHORT_TEXT,
        &field("occupation"),
        violations,
    );
    let employer = wire.employer.trim().to_owned();
    check_length(&employer, MAX_NAME, &field("employer"), violations);
    let annual_income = optional_money(
        wire.annual_income.as_ref(),
        &field("annual_income"),
        violations,
    );
    Some(Individual {
        full_name: full_name?,
        national_id: PersonalData::new(national_id),
        birth_date,
        occupation,
        employer,
        annual_income,
    })
}

fn parse_address(wire: &pb::PostalAddress, prefix: &str, violations: &mut Violations) -> Address {
    let field = |name: &str| format!("{prefix}.{name}");
    let lines: Vec<String> = wire
        .address_lines
        .iter()
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect();
    if lines.len() > MAX_ADDRESS_LINES {
        violations.add(
            field("address_lines"),
            format!("at most {MAX_ADDRESS_LINES} lines"),
        );
    }
    for (index, line) in lines.iter().enumerate() {
        check_length(
            line,
            MAX_NAME,
            &field(&format!("address_lines[{index}]")),
            violations,
        );
    }
    let country = wire.country.trim().to_ascii_uppercase();
    if !country.is_empty() && !is_country_code(&country) {
        violations.add(
            field("country"),
            "must be an ISO 3166-1 alpha-2 code such as CN",
        );
    }
    let address = Address {
        lines,
        locality: wire.locality.trim().to_owned(),
        region: wire.region.trim().to_owned(),
        postal_code: wire.postal_code.trim().to_owned(),
        country,
    };
    check_length(
        &address.locality,
        MAX_SHORT_TEXT,
        &field("locality"),
        violations,
    );
    check_length(
        &address.region,
        MAX_SHORT_TEXT,
        &field("region"),
        violations,
    );
    check_length(&address.postal_code, 20, &field("postal_code"), violations);
    address
}

fn parse_contact(
    wire: &pb::Contact,
    index: usize,
    prefix: &str,
    violations: &mut Violations,
) -> Contact {
    let field = |name: &str| format!("{prefix}.{name}");
    let name =
        required_text(&wire.name, MAX_SHORT_TEXT, &field("name"), violations).unwrap_or_default();
    let role = wire.role.trim().to_owned();
    check_length(&role, MAX_SHORT_TEXT, &field("role"), violations);
    let phone = wire.phone.trim();
    if !phone.is_empty() && !is_phone(phone) {
        violations.add(
            field("phone"),
            "must be 6 to 20 digits, optionally with a leading +, spaces, dashes or parentheses",
        );
    }
    let email = wire.email.trim();
    if !email.is_empty() && !is_email(email) {
        violations.add(field("email"), "is not an email address");
    }
    let contact_id = if wire.contact_id.trim().is_empty() {
        format!("con_{}", index + 1)
    } else {
        wire.contact_id.trim().to_owned()
    };
    Contact {
        contact_id,
        name,
        role,
        phone: (!phone.is_empty()).then(|| PersonalData::new(phone.to_owned())),
        email: (!email.is_empty()).then(|| PersonalData::new(email.to_ascii_lowercase())),
        primary: wire.primary,
    }
}

fn required_text(
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

fn check_length(text: &str, max: usize, field: &str, violations: &mut Violations) {
    if text.chars().count() > max {
        violations.add(field, format!("must be at most {max} characters"));
    }
    if text.chars().any(char::is_control) {
        violations.add(field, "must not contain control characters");
    }
}

fn optional_money(
    wire: Option<&pb::Money>,
    field: &str,
    violations: &mut Violations,
) -> Option<Money> {
    let wire = wire?;
    violations.check(field, Money::try_from(wire).and_then(Money::non_negative))
}

fn optional_past_date(
    wire: Option<&pb::Date>,
    today: NaiveDate,
    field: &str,
    violations: &mut Violations,
) -> Option<NaiveDate> {
    let date = violations.check(field, date_from_proto(wire?))?;
    if date > today {
        violations.add(field, "must not be in the future");
        return None;
    }
    if date.year() < 1800 {
        violations.add(field, "is implausibly early");
        return None;
    }
    Some(date)
}

fn is_country_code(code: &str) -> bool {
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
pub fn parse_reason(reason: &str, field: &str) -> Result<String, ServiceError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ServiceError::invalid(field, "a reason is required"));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(ServiceError::invalid(
            field,
            format!("must be at most {MAX_REASON} characters"),
        ));
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

/// Applies the masked fields of `patch` to `current` and checks the result as a whole.
pub fn apply_update(
    current: &Customer,
    patch: &pb::Customer,
    paths: &[String],
    today: NaiveDate,
) -> Result<Profile, ServiceError> {
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
    violations.finish()?;

    let mut merged = current.to_proto(true);
    for path in paths {
        copy_field(&mut merged, patch, path);
    }
    let parsed = parse_customer(&merged, today, "customer")?;
    Ok(parsed.profile)
}

fn copy_field(target: &mut pb::Customer, source: &pb::Customer, path: &str) {
    use pb::customer::Details::{Enterprise as E, Individual as I};
    match (path, &mut target.details, &source.details) {
        ("address", _, _) => target.address = source.address.clone(),
        ("contacts", _, _) => target.contacts = source.contacts.clone(),
        ("external_reference", _, _) => {
            target.external_reference = source.external_reference.clone()
        }
        (path, Some(E(target)), source) => {
            let empty = pb::EnterpriseDetails::default();
            let source = match source {
                Some(E(source)) => source,
                _ => &empty,
            };
            match path {
                "enterprise.legal_name" => target.legal_name = source.legal_name.clone(),
                "enterprise.registered_capital" => {
                    target.registered_capital = source.registered_capital.clone()
                }
                "enterprise.legal_representative" => {
                    target.legal_representative = source.legal_representative.clone()
                }
                "enterprise.industry_code" => target.industry_code = source.industry_code.clone(),
                "enterprise.founding_date" => target.founding_date = source.founding_date,
                _ => {}
            }
        }
        (path, Some(I(target)), source) => {
            let empty = pb::IndividualDetails::default();
            let source = match source {
                Some(I(source)) => source,
                _ => &empty,
            };
            match path {
                "individual.full_name" => target.full_name = source.full_name.clone(),
                "individual.national_id" => target.national_id = source.national_id.clone(),
                "individual.birth_date" => target.birth_date = source.birth_date,
                "individual.occupation" => target.occupation = source.occupation.clone(),
                "individual.employer" => target.employer = source.employer.clone(),
                "individual.annual_income" => target.annual_income = source.annual_income.clone(),
                _ => {}
            }
        }
        _ => {}
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

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    fn valid_uscc() -> String {
        let first = "91350100M000100Y4";
        format!("{first}{}", uscc::check_character(first).unwrap())
    }

    fn enterprise(registration_number: &str) -> pb::Customer {
        pb::Customer {
            kind: pb::CustomerKind::Enterprise as i32,
            country: "CN".into(),
            details: Some(pb::customer::Details::Enterprise(pb::EnterpriseDetails {
                legal_name: "Xiamen Harbour Trading Co., Ltd.".into(),
                registration_number: registration_number.into(),
                registered_capital: Some(pb::Money {
                    amount: "5000000.00".into(),
                    currency: "CNY".into(),
                }),
                legal_representative: "Chen Wei".into(),
                industry_code: "F51".into(),
                founding_date: Some(pb::Date {
                    year: 2009,
                    month: 4,
                    day: 1,
                }),
            })),
            contacts: vec![pb::Contact {
                name: "Lin Fang".into(),
                role: "finance".into(),
                phone: "+86 592 555 0100".into(),
                email: "Lin.Fang@example.cn".into(),
                primary: true,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn individual() -> pb::Customer {
        pb::Customer {
            kind: pb::CustomerKind::Individual as i32,
            country: "CN".into(),
            details: Some(pb::customer::Details::Individual(pb::IndividualDetails {
                full_name: "Wang Lei".into(),
                national_id: "11010519491231002X".into(),
                birth_date: Some(pb::Date {
                    year: 1949,
                    month: 12,
                    day: 31,
                }),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn violated_fields(error: ServiceError) -> Vec<String> {
        match error {
            ServiceError::InvalidArgument(violations) => violations
                .into_iter()
                .map(|violation| violation.field)
                .collect(),
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_complete_enterprise_and_normalises_it() {
        let parsed = parse_customer(
            &enterprise(&valid_uscc().to_lowercase()),
            today(),
            "customer",
        )
        .unwrap();
        assert_eq!(parsed.country, "CN");
        assert_eq!(
            parsed.profile.registration_number(),
            Some(valid_uscc().as_str())
        );
        assert_eq!(
            parsed.profile.contacts[0].email.as_ref().unwrap().expose(),
            "lin.fang@example.cn"
        );
    }

    #[test]
    fn a_wrong_uscc_check_character_is_a_violation_of_that_field() {
        let mut code = valid_uscc();
        let last = code.pop().unwrap();
        code.push(if last == '0' { '1' } else { '0' });
        let fields =
            violated_fields(parse_customer(&enterprise(&code), today(), "customer").unwrap_err());
        assert_eq!(fields, ["customer.enterprise.registration_number"]);
    }

    #[test]
    fn other_countries_take_a_plain_registration_number() {
        let mut customer = enterprise("HRB 12345");
        customer.country = "DE".into();
        assert!(parse_customer(&customer, today(), "customer").is_ok());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut customer = enterprise("");
        customer.country = "China".into();
        if let Some(pb::customer::Details::Enterprise(details)) = &mut customer.details {
            details.legal_name = " ".into();
            details.registered_capital = Some(pb::Money {
                amount: "-1".into(),
                currency: "CNY".into(),
            });
            details.founding_date = Some(pb::Date {
                year: 2099,
                month: 1,
                day: 1,
            });
        }
        customer.contacts[0].email = "not-an-email".into();
        customer.contacts[0].phone = "12".into();
        let fields = violated_fields(parse_customer(&customer, today(), "customer").unwrap_err());
        for expected in [
            "customer.country",
            "customer.enterprise.legal_name",
            "customer.enterprise.registration_number",
            "customer.enterprise.registered_capital",
            "customer.enterprise.founding_date",
            "customer.contacts[0].phone",
            "customer.contacts[0].email",
        ] {
            assert!(
                fields.contains(&expected.to_owned()),
                "{expected} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn kind_must_match_the_details() {
        let mut customer = individual();
        customer.kind = pb::CustomerKind::Enterprise as i32;
        assert_eq!(
            violated_fields(parse_customer(&customer, today(), "customer").unwrap_err()),
            ["customer.kind"]
        );
    }

    #[test]
    fn national_ids_are_redacted_in_debug_and_masked_on_request() {
        let parsed = parse_customer(&individual(), today(), "customer").unwrap();
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("11010519491231002X"), "{debug}");
        let Details::Individual(person) = &parsed.profile.details else {
            unreachable!()
        };
        assert_eq!(person.national_id.masked(), "**************002X");
    }

    #[test]
    fn invalid_national_ids_are_not_echoed() {
        let mut customer = individual();
        if let Some(pb::customer::Details::Individual(details)) = &mut customer.details {
            details.national_id = "secret value with spaces".into();
        }
        let ServiceError::InvalidArgument(violations) =
            parse_customer(&customer, today(), "customer").unwrap_err()
        else {
            unreachable!()
        };
        assert!(
            violations
                .iter()
                .all(|violation| !violation.description.contains("secret"))
        );
    }

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

    fn stored(profile: Profile) -> Customer {
        let now = Utc::now();
        let actor = ActorRecord {
            principal: "ana".into(),
            roles: vec!["ANALYST".into()],
        };
        Customer {
            id: "cus_1".into(),
            country: "CN".into(),
            status: CustomerStatus::Prospect,
            status_reason: String::new(),
            status_changed_at: now,
            group_id: None,
            group_joined_at: None,
            profile,
            version: 1,
            created_at: now,
            created_by: actor.clone(),
            updated_at: now,
            updated_by: actor,
        }
    }

    #[test]
    fn updates_touch_only_masked_fields_and_the_diff_names_them() {
        let current = stored(
            parse_customer(&enterprise(&valid_uscc()), today(), "customer")
                .unwrap()
                .profile,
        );
        let mut patch = enterprise("IGNORED");
        if let Some(pb::customer::Details::Enterprise(details)) = &mut patch.details {
            details.legal_name = "Xiamen Harbour Group".into();
            details.industry_code = "IGNORED-NOT-IN-MASK".into();
        }
        let profile = apply_update(
            &current,
            &patch,
            &["enterprise.legal_name".to_owned()],
            today(),
        )
        .unwrap();
        assert_eq!(profile.display_name(), "Xiamen Harbour Group");
        assert_eq!(profile.industry_code(), "F51");
        let changes = diff(&current.profile, &profile);
        assert_eq!(
            changes,
            [FieldChange {
                field: "enterprise.legal_name".into(),
                old_value: "Xiamen Harbour Trading Co., Ltd.".into(),
                new_value: "Xiamen Harbour Group".into(),
            }]
        );
    }

    #[test]
    fn identity_fields_cannot_be_updated() {
        let current = stored(
            parse_customer(&enterprise(&valid_uscc()), today(), "customer")
                .unwrap()
                .profile,
        );
        for path in [
            "enterprise.registration_number",
            "country",
            "kind",
            "status",
            "individual.full_name",
        ] {
            let error = apply_update(
                &current,
                &enterprise(&valid_uscc()),
                &[path.to_owned()],
                today(),
            )
            .unwrap_err();
            assert_eq!(violated_fields(error), ["update_mask"], "{path}");
        }
    }

    #[test]
    fn personal_data_is_masked_in_the_audit_diff() {
        let current = stored(
            parse_customer(&individual(), today(), "customer")
                .unwrap()
                .profile,
        );
        let mut patch = individual();
        if let Some(pb::customer::Details::Individual(details)) = &mut patch.details {
            details.national_id = "110105194912310011".into();
        }
        let profile = apply_update(
            &current,
            &patch,
            &["individual.national_id".to_owned()],
            today(),
        )
        .unwrap();
        let changes = diff(&current.profile, &profile);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].old_value, "**************002X");
        assert_eq!(changes[0].new_value, "**************0011");
    }

    /// Issue #19: the diff compared masked values, so these changes were dropped.
    #[test]
    fn personal_data_that_keeps_its_last_four_characters_still_changes() {
        let current = stored(
            parse_customer(&enterprise(&valid_uscc()), today(), "customer")
                .unwrap()
                .profile,
        );
        let mut patch = enterprise(&valid_uscc());
        patch.contacts[0].phone = "+86 593 555 0100".into();
        patch.contacts[0].email = "lin.feng@example.cn".into();
        let profile = apply_update(&current, &patch, &["contacts".to_owned()], today()).unwrap();
        let changes = diff(&current.profile, &profile);
        let fields: Vec<&str> = changes.iter().map(|change| change.field.as_str()).collect();
        assert_eq!(fields, ["contacts[0].email", "contacts[0].phone"]);
        for change in &changes {
            assert!(change.old_value.starts_with('*'), "{change:?}");
            assert!(change.new_value.starts_with('*'), "{change:?}");
        }
        assert!(!format!("{changes:?}").contains("555"));

        let individual_now = stored(
            parse_customer(&individual(), today(), "customer")
                .unwrap()
                .profile,
        );
        let mut patch = individual();
        if let Some(pb::customer::Details::Individual(details)) = &mut patch.details {
            details.national_id = "11010519500101002X".into();
        }
        let profile = apply_update(
            &individual_now,
            &patch,
            &["individual.national_id".to_owned()],
            today(),
        )
        .unwrap();
        let changes = diff(&individual_now.profile, &profile);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "individual.national_id");
    }

    #[test]
    fn the_same_values_again_are_no_change() {
        let current = stored(
            parse_customer(&individual(), today(), "customer")
                .unwrap()
                .profile,
        );
        // A lower-case id normalises to the stored one: still no change.
        let mut patch = individual();
        if let Some(pb::customer::Details::Individual(details)) = &mut patch.details {
            details.national_id = "11010519491231002x".into();
        }
        let profile = apply_update(
            &current,
            &patch,
            &["individual.national_id".to_owned(), "contacts".to_owned()],
            today(),
        )
        .unwrap();
        assert_eq!(diff(&current.profile, &profile), []);
    }
}
