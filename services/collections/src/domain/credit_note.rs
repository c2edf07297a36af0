//! Credit notes under four eyes.
//!
//! A credit note clears receivables as surely as a write-off, so it follows the same rule: it
//! needs approval authority covering its amount and, above the four-eyes threshold, a second
//! person. A poster whose authority covers the amount and whose credit note is within the
//! threshold (in the threshold's currency: an amount in another currency cannot be compared
//! without conversion and always takes a second person) posts it at once. Any other credit
//! note waits, changing nothing, until another person with enough authority approves it.

use credit_core::{Actor, Money};

/// Where a credit note that needed a second person stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditNoteApproval {
    Pending,
    Approved,
    Rejected,
}

impl CreditNoteApproval {
    /// Upper-snake name as stored and in the contract.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|state| state.name() == name)
    }
}

/// Whether the poster may post `amount` alone: authority covering it, and within the
/// four-eyes threshold `four_eyes_above` (same currency; another currency never is).
pub fn may_post_alone(
    authority_covers_amount: bool,
    amount: Money,
    four_eyes_above: Money,
) -> bool {
    authority_covers_amount
        && amount.currency() == four_eyes_above.currency()
        && amount.amount() <= four_eyes_above.amount()
}

/// Why a decision on a waiting credit note is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreditNoteDecisionError {
    #[error("the credit note is not waiting for a decision")]
    NotPending,
    #[error("the maker of a credit note cannot decide it; another person must")]
    SelfApproval,
    #[error("the amount is beyond the checker's approval authority")]
    AuthorityInsufficient,
}

impl CreditNoteDecisionError {
    /// The stable reason code the caller sees.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotPending => "CREDIT_NOTE_NOT_PENDING",
            Self::SelfApproval => "SELF_APPROVAL",
            Self::AuthorityInsufficient => "AUTHORITY_INSUFFICIENT",
        }
    }
}

/// Decides a waiting credit note: only a pending one; never by its maker (approval or
/// rejection); approval only within the checker's authority.
pub fn decide_credit_note(
    status: CreditNoteApproval,
    maker: &Actor,
    checker: &Actor,
    checker_authority_covers_amount: bool,
    approve: bool,
) -> Result<CreditNoteApproval, CreditNoteDecisionError> {
    if status != CreditNoteApproval::Pending {
        return Err(CreditNoteDecisionError::NotPending);
    }
    if checker.same_person_as(maker) {
        return Err(CreditNoteDecisionError::SelfApproval);
    }
    if !approve {
        return Ok(CreditNoteApproval::Rejected);
    }
    if !checker_authority_covers_amount {
        return Err(CreditNoteDecisionError::AuthorityInsufficient);
    }
    Ok(CreditNoteApproval::Approved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny(amount: &str) -> Money {
        Money::parse(amount, "CNY").unwrap()
    }

    fn person(name: &str, token: &str) -> Actor {
        Actor {
            principal_id: format!("prn_{token}"),
            person_id: format!("psn_{name}"),
            name: name.to_owned(),
            roles: vec![],
        }
    }

    #[test]
    fn only_covered_amounts_within_the_threshold_post_alone() {
        let threshold = cny("10000.00");
        assert!(may_post_alone(true, cny("10000.00"), threshold));
        assert!(!may_post_alone(true, cny("10000.01"), threshold));
        assert!(!may_post_alone(false, cny("1.00"), threshold));
        assert!(!may_post_alone(
            true,
            Money::parse("1.00", "USD").unwrap(),
            threshold
        ));
    }

    #[test]
    fn the_maker_never_decides_and_approval_needs_authority() {
        use CreditNoteApproval::*;
        let maker = person("erp", "first");
        let boss = person("boss", "b");
        assert_eq!(
            decide_credit_note(Pending, &maker, &person("erp", "second"), true, true),
            Err(CreditNoteDecisionError::SelfApproval)
        );
        assert_eq!(
            decide_credit_note(Pending, &maker, &person("erp", "second"), true, false),
            Err(CreditNoteDecisionError::SelfApproval)
        );
        assert_eq!(
            decide_credit_note(Pending, &maker, &boss, false, true),
            Err(CreditNoteDecisionError::AuthorityInsufficient)
        );
        assert_eq!(
            decide_credit_note(Pending, &maker, &boss, false, false),
            Ok(Rejected)
        );
        assert_eq!(
            decide_credit_note(Pending, &maker, &boss, true, true),
            Ok(Approved)
        );
        assert_eq!(
            decide_credit_note(Approved, &maker, &boss, true, true),
            Err(CreditNoteDecisionError::NotPending)
        );
        for state in [Pending, Approved, Rejected] {
            assert_eq!(CreditNoteApproval::parse(state.name()), Some(state));
        }
    }
}
