//! `Debug` for the messages that carry personal data (national ids, phones, emails): the
//! values are replaced by a marker, the other fields print as usual.

use std::fmt;

use crate::v1::{Contact, IndividualDetails};

const REDACTED: &str = "[personal data]";

fn redacted(value: &str) -> &'static str {
    if value.is_empty() { "" } else { REDACTED }
}

impl fmt::Debug for IndividualDetails {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("IndividualDetails")
            .field("full_name", &self.full_name)
            .field("national_id", &redacted(&self.national_id))
            .field("birth_date", &self.birth_date)
            .field("occupation", &self.occupation)
            .field("employer", &self.employer)
            .field("annual_income", &self.annual_income)
            .finish()
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Contact")
            .field("contact_id", &self.contact_id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("phone", &redacted(&self.phone))
            .field("email", &redacted(&self.email))
            .field("primary", &self.primary)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_personal_data() {
        let person = IndividualDetails {
            full_name: "Wang Lei".into(),
            national_id: "11010519491231002X".into(),
            ..Default::default()
        };
        let contact = Contact {
            name: "Lin Fang".into(),
            phone: "+86 592 555 0100".into(),
            email: "lin.fang@example.cn".into(),
            ..Default::default()
        };
        let shown = format!("{person:?} {contact:?}");
        for secret in ["11010519491231002X", "555 0100", "lin.fang@"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("Wang Lei") && shown.contains("[personal data]"));
    }
}
