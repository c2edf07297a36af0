//! Customers between the contract and the domain: `pb::Customer` read and checked into a
//! [`NewCustomer`] (every problem named by its field path), a stored [`Customer`] shown as
//! `pb::Customer`, and the masked merge of an `UpdateCustomer`.

use chrono::{Datelike, NaiveDate};
use credit_core::{Money, ServiceError, Violations};
use credit_proto::v1 as pb;

use super::{date_from_proto, date_to_proto, timestamp};
use crate::domain::customer::{
    Address, Contact, Customer, CustomerKind, CustomerStatus, Details, Enterprise, Individual,
    MAX_ADDRESS_LINES, MAX_CONTACTS, MAX_NAME, MAX_SHORT_TEXT, NewCustomer, PersonalData, Profile,
    check_length, check_update_paths, is_country_code, is_email, is_phone, required_text,
};
use crate::domain::uscc;
use crate::store::CustomerFilter;

#[cfg(test)]
mod tests;

pub fn kind_to_proto(kind: CustomerKind) -> pb::CustomerKind {
    match kind {
        CustomerKind::Enterprise => pb::CustomerKind::Enterprise,
        CustomerKind::Individual => pb::CustomerKind::Individual,
    }
}

/// The domain kind; `None` for UNSPECIFIED.
pub fn kind_from_proto(kind: pb::CustomerKind) -> Option<CustomerKind> {
    match kind {
        pb::CustomerKind::Enterprise => Some(CustomerKind::Enterprise),
        pb::CustomerKind::Individual => Some(CustomerKind::Individual),
        pb::CustomerKind::Unspecified => None,
    }
}

pub fn status_to_proto(status: CustomerStatus) -> pb::CustomerStatus {
    match status {
        CustomerStatus::Prospect => pb::CustomerStatus::Prospect,
        CustomerStatus::Active => pb::CustomerStatus::Active,
        CustomerStatus::Suspended => pb::CustomerStatus::Suspended,
        CustomerStatus::Closed => pb::CustomerStatus::Closed,
    }
}

/// The domain status; `None` for UNSPECIFIED.
pub fn status_from_proto(status: pb::CustomerStatus) -> Option<CustomerStatus> {
    match status {
        pb::CustomerStatus::Prospect => Some(CustomerStatus::Prospect),
        pb::CustomerStatus::Active => Some(CustomerStatus::Active),
        pb::CustomerStatus::Suspended => Some(CustomerStatus::Suspended),
        pb::CustomerStatus::Closed => Some(CustomerStatus::Closed),
        pb::CustomerStatus::Unspecified => None,
    }
}

/// The wire form. National ids are masked unless `reveal_personal_data`.
pub fn customer_to_proto(customer: &Customer, reveal_personal_data: bool) -> pb::Customer {
    let details = match &customer.profile.details {
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
        customer_id: customer.id.clone(),
        kind: kind_to_proto(customer.profile.kind()) as i32,
        status: status_to_proto(customer.status) as i32,
        country: customer.country.clone(),
        display_name: customer.profile.display_name().to_owned(),
        details: Some(details),
        address: customer
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
        contacts: customer
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
                    .map(|phone| {
                        if reveal_personal_data {
                            phone.expose().to_owned()
                        } else {
                            phone.masked()
                        }
                    })
                    .unwrap_or_default(),
                email: contact
                    .email
                    .as_ref()
                    .map(|email| {
                        if reveal_personal_data {
                            email.expose().to_owned()
                        } else {
                            email.masked_email()
                        }
                    })
                    .unwrap_or_default(),
                primary: contact.primary,
            })
            .collect(),
        external_reference: customer.profile.external_reference.clone(),
        group_id: customer.group_id.clone().unwrap_or_default(),
        status_reason: customer.status_reason.clone(),
        status_changed_at: Some(timestamp(customer.status_changed_at)),
        etag: customer.etag(),
        audit: Some(pb::AuditInfo {
            created_at: Some(timestamp(customer.created_at)),
            created_by: Some(pb::Actor::from(&customer.created_by)),
            updated_at: Some(timestamp(customer.updated_at)),
            updated_by: Some(pb::Actor::from(&customer.updated_by)),
        }),
    }
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
        .and_then(kind_from_proto);
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

/// Applies the masked fields of `patch` to `current` and checks the result as a whole.
pub fn apply_update(
    current: &Customer,
    patch: &pb::Customer,
    paths: &[String],
    today: NaiveDate,
) -> Result<Profile, ServiceError> {
    check_update_paths(current, paths)?;
    let mut merged = customer_to_proto(current, true);
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

/// The filters of a `ListCustomers` request, normalised as the store keeps the columns.
pub fn customer_filter(request: &pb::ListCustomersRequest) -> Result<CustomerFilter, ServiceError> {
    let mut statuses = Vec::new();
    for (index, status) in request.statuses.iter().enumerate() {
        let status = pb::CustomerStatus::try_from(*status)
            .ok()
            .and_then(status_from_proto)
            .ok_or_else(|| {
                ServiceError::invalid(format!("statuses[{index}]"), "is not a customer status")
            })?;
        statuses.push(status);
    }
    let kind = match pb::CustomerKind::try_from(request.kind) {
        Ok(kind) => kind_from_proto(kind),
        Err(_) => return Err(ServiceError::invalid("kind", "is not a customer kind")),
    };
    Ok(CustomerFilter {
        statuses,
        kind,
        industry_code: request.industry_code.trim().to_ascii_uppercase(),
        country: request.country.trim().to_ascii_uppercase(),
        group_id: request.group_id.trim().to_owned(),
        name_prefix: request.name_prefix.trim().to_owned(),
        registration_number: request.registration_number.trim().to_ascii_uppercase(),
        external_reference: request.external_reference.trim().to_owned(),
    })
}
