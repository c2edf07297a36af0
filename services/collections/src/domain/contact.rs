//! Contacts with a customer on a collection case: what each outcome means for the next
//! contact (`LogContact` schedules one whenever the collector does not).
//!
//! Defaults, from the contact's date:
//! - REACHED: +7 days (a week to act on what was agreed);
//! - NO_ANSWER: +2 days (try again soon);
//! - PROMISE_TO_PAY: the day after the promised date (when the promise is kept or broken);
//! - DISPUTE: +14 days (time for the dispute to be opened and worked);
//! - REFUSED: +3 days (the case needs a firmer follow-up quickly).

use chrono::{Days, NaiveDate};

/// Outcome of a contact (`ContactOutcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactOutcome {
    Reached,
    NoAnswer,
    PromiseToPay,
    Dispute,
    Refused,
}

/// The next contact date after a contact on `contacted_on` with `outcome`; `promised_date`
/// is the promise's date for PROMISE_TO_PAY.
pub fn default_next_contact(
    outcome: ContactOutcome,
    contacted_on: NaiveDate,
    promised_date: Option<NaiveDate>,
) -> NaiveDate {
    let plus = |date: NaiveDate, days: u64| date.checked_add_days(Days::new(days)).unwrap_or(date);
    match outcome {
        ContactOutcome::Reached => plus(contacted_on, 7),
        ContactOutcome::NoAnswer => plus(contacted_on, 2),
        ContactOutcome::PromiseToPay => plus(promised_date.unwrap_or(contacted_on), 1),
        ContactOutcome::Dispute => plus(contacted_on, 14),
        ContactOutcome::Refused => plus(contacted_on, 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn each_outcome_schedules_its_default_next_contact() {
        let on = date("2026-03-30");
        assert_eq!(
            default_next_contact(ContactOutcome::Reached, on, None),
            date("2026-04-06")
        );
        assert_eq!(
            default_next_contact(ContactOutcome::NoAnswer, on, None),
            date("2026-04-01")
        );
        assert_eq!(
            default_next_contact(ContactOutcome::PromiseToPay, on, Some(date("2026-04-10"))),
            date("2026-04-11")
        );
        assert_eq!(
            default_next_contact(ContactOutcome::Dispute, on, None),
            date("2026-04-13")
        );
        assert_eq!(
            default_next_contact(ContactOutcome::Refused, on, None),
            date("2026-04-02")
        );
    }
}
