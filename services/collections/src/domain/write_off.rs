//! Write-offs (坏账核销) under four eyes, and recoveries on them.
//!
//! A maker requests a write-off of (part of) an invoice's open amount; a checker — another
//! principal, whose approval authority covers the amount — approves or rejects it. Approval
//! reduces the invoice by a WRITE_OFF movement dated on the approval date. Money recovered
//! later is recorded against the approved write-off, at most what was written off in total;
//! a recovery is a memo: it does not reopen the invoice.

use credit_core::Actor;
use rust_decimal::Decimal;

/// State of a write-off (`ApprovalStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteOffStatus {
    Pending,
    Approved,
    Rejected,
}

impl WriteOffStatus {
    /// Upper-snake name as stored and in the contract ("APPROVED").
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PENDING" => Some(Self::Pending),
            "APPROVED" => Some(Self::Approved),
            "REJECTED" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// Why a write-off or recovery was refused; each maps to a stable reason of the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteOffError {
    #[error("the invoice has nothing open to write off")]
    InvoiceNotOpen,
    #[error("the write-off {requested} exceeds the invoice's open amount {open}")]
    ExceedsOpenAmount { requested: Decimal, open: Decimal },
    #[error("the write-off was already decided")]
    NotPending,
    #[error("the requester of a write-off cannot decide it")]
    SelfApproval,
    #[error("the approval authority does not cover the write-off amount")]
    AuthorityInsufficient,
    #[error("recoveries are recorded on approved write-offs only")]
    NotApproved,
    #[error("the recovery {requested} exceeds what is left to recover, {left}")]
    ExceedsUnrecovered { requested: Decimal, left: Decimal },
}

impl WriteOffError {
    /// The ErrorInfo reason of the contract.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvoiceNotOpen => "INVOICE_NOT_OPEN",
            // The recovery's "open amount" is what is still unrecovered of the write-off.
            Self::ExceedsOpenAmount { .. } | Self::ExceedsUnrecovered { .. } => {
                "AMOUNT_EXCEEDS_OPEN_AMOUNT"
            }
            Self::NotPending => "REQUEST_NOT_PENDING",
            Self::SelfApproval => "SELF_APPROVAL",
            Self::AuthorityInsufficient => "AUTHORITY_INSUFFICIENT",
            Self::NotApproved => "WRITE_OFF_NOT_APPROVED",
        }
    }

    /// Whether the refusal is about who asked (PERMISSION_DENIED) rather than the state of the
    /// receivable (FAILED_PRECONDITION).
    pub fn is_permission(&self) -> bool {
        matches!(self, Self::SelfApproval | Self::AuthorityInsufficient)
    }
}

/// The amount a maker may request: `requested` (unset = the whole open amount), which must
/// not exceed what is open now.
pub fn write_off_amount(
    open_amount: Decimal,
    requested: Option<Decimal>,
) -> Result<Decimal, WriteOffError> {
    if open_amount <= Decimal::ZERO {
        return Err(WriteOffError::InvoiceNotOpen);
    }
    let amount = requested.unwrap_or(open_amount);
    if amount > open_amount {
        return Err(WriteOffError::ExceedsOpenAmount {
            requested: amount,
            open: open_amount,
        });
    }
    Ok(amount)
}

/// What the checker may do with a write-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checker<'a> {
    pub actor: &'a Actor,
    /// Whether the checker's approval authority covers the amount.
    pub authority_covers_amount: bool,
}

/// The outcome of a checker's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOffDecision {
    /// Approved: write off `amount`; `open_after` is left open on the invoice (zero closes it
    /// as WRITTEN_OFF).
    Approve {
        amount: Decimal,
        open_after: Decimal,
    },
    Reject,
}

/// Decides a write-off: only a pending one; never by its requester (approval or rejection:
/// four eyes on both); approval only within the checker's authority and while the invoice
/// still has the amount open (a payment may have come in since the request).
pub fn decide_write_off(
    status: WriteOffStatus,
    requested_by: &Actor,
    amount: Decimal,
    approve: bool,
    checker: &Checker<'_>,
    open_amount_now: Decimal,
) -> Result<WriteOffDecision, WriteOffError> {
    if status != WriteOffStatus::Pending {
        return Err(WriteOffError::NotPending);
    }
    if checker.actor.same_person_as(requested_by) {
        return Err(WriteOffError::SelfApproval);
    }
    if !approve {
        return Ok(WriteOffDecision::Reject);
    }
    if !checker.authority_covers_amount {
        return Err(WriteOffError::AuthorityInsufficient);
    }
    if open_amount_now <= Decimal::ZERO {
        return Err(WriteOffError::InvoiceNotOpen);
    }
    if amount > open_amount_now {
        return Err(WriteOffError::ExceedsOpenAmount {
            requested: amount,
            open: open_amount_now,
        });
    }
    Ok(WriteOffDecision::Approve {
        amount,
        open_after: open_amount_now - amount,
    })
}

/// Checks a recovery of `amount` against an approved write-off of `written_off` of which
/// `recovered` was recovered before; returns the total recovered after it.
pub fn record_recovery(
    status: WriteOffStatus,
    written_off: Decimal,
    recovered: Decimal,
    amount: Decimal,
) -> Result<Decimal, WriteOffError> {
    if status != WriteOffStatus::Approved {
        return Err(WriteOffError::NotApproved);
    }
    let left = (written_off - recovered).max(Decimal::ZERO);
    if amount > left {
        return Err(WriteOffError::ExceedsUnrecovered {
            requested: amount,
            left,
        });
    }
    Ok(recovered + amount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn checker(actor: &Actor, covers: bool) -> Checker<'_> {
        Checker {
            actor,
            authority_covers_amount: covers,
        }
    }

    /// A person's token: `person` names the person, `token` the token.
    fn person(person: &str, token: &str) -> Actor {
        Actor {
            principal_id: format!("prn_{token}"),
            person_id: format!("psn_{person}"),
            name: person.to_owned(),
            roles: vec![],
        }
    }

    #[test]
    fn the_requested_amount_defaults_to_the_open_amount_and_never_exceeds_it() {
        assert_eq!(write_off_amount(dec!(700.00), None), Ok(dec!(700.00)));
        assert_eq!(
            write_off_amount(dec!(700.00), Some(dec!(250.00))),
            Ok(dec!(250.00))
        );
        assert_eq!(
            write_off_amount(dec!(700.00), Some(dec!(700.01))),
            Err(WriteOffError::ExceedsOpenAmount {
                requested: dec!(700.01),
                open: dec!(700.00)
            })
        );
        assert_eq!(
            write_off_amount(Decimal::ZERO, None),
            Err(WriteOffError::InvoiceNotOpen)
        );
    }

    #[test]
    fn four_eyes_and_authority_are_checked_in_order() {
        use WriteOffStatus::*;
        let amount = dec!(5000.00);
        let maker = person("maker", "first");
        let (boss, clerk) = (person("boss", "b"), person("clerk", "c"));
        // Already decided comes first, whoever asks.
        assert_eq!(
            decide_write_off(
                Approved,
                &maker,
                amount,
                true,
                &checker(&boss, true),
                amount
            ),
            Err(WriteOffError::NotPending)
        );
        // The maker cannot approve nor reject, even with authority.
        assert_eq!(
            decide_write_off(
                Pending,
                &maker,
                amount,
                true,
                &checker(&person("maker", "second"), true),
                amount
            ),
            Err(WriteOffError::SelfApproval)
        );
        assert_eq!(
            decide_write_off(
                Pending,
                &maker,
                amount,
                false,
                &checker(&person("maker", "second"), true),
                amount
            ),
            Err(WriteOffError::SelfApproval)
        );
        // Without authority a checker may reject but not approve.
        assert_eq!(
            decide_write_off(
                Pending,
                &maker,
                amount,
                true,
                &checker(&clerk, false),
                amount
            ),
            Err(WriteOffError::AuthorityInsufficient)
        );
        assert_eq!(
            decide_write_off(
                Pending,
                &maker,
                amount,
                false,
                &checker(&clerk, false),
                amount
            ),
            Ok(WriteOffDecision::Reject)
        );
        // 7000 open, 5000 written off: 2000 stays open.
        assert_eq!(
            decide_write_off(
                Pending,
                &maker,
                amount,
                true,
                &checker(&boss, true),
                dec!(7000.00)
            ),
            Ok(WriteOffDecision::Approve {
                amount,
                open_after: dec!(2000.00)
            })
        );
        // A payment since the request left only 4000 open.
        assert_eq!(
            decide_write_off(
                Pending,
                &maker,
                amount,
                true,
                &checker(&boss, true),
                dec!(4000.00)
            ),
            Err(WriteOffError::ExceedsOpenAmount {
                requested: amount,
                open: dec!(4000.00)
            })
        );
        assert_eq!(WriteOffError::SelfApproval.reason(), "SELF_APPROVAL");
        assert!(WriteOffError::AuthorityInsufficient.is_permission());
        assert!(!WriteOffError::NotPending.is_permission());
    }

    #[test]
    fn recoveries_add_up_to_at_most_the_written_off_amount() {
        use WriteOffStatus::*;
        assert_eq!(
            record_recovery(Pending, dec!(1000), Decimal::ZERO, dec!(1)),
            Err(WriteOffError::NotApproved)
        );
        assert_eq!(
            record_recovery(Rejected, dec!(1000), Decimal::ZERO, dec!(1)),
            Err(WriteOffError::NotApproved)
        );
        // 1000 written off, 600 recovered: 400 left.
        assert_eq!(
            record_recovery(Approved, dec!(1000.00), dec!(600.00), dec!(400.00)),
            Ok(dec!(1000.00))
        );
        assert_eq!(
            record_recovery(Approved, dec!(1000.00), dec!(600.00), dec!(400.01)),
            Err(WriteOffError::ExceedsUnrecovered {
                requested: dec!(400.01),
                left: dec!(400.00)
            })
        );
        assert_eq!(
            WriteOffError::NotApproved.reason(),
            "WRITE_OFF_NOT_APPROVED"
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in [
            WriteOffStatus::Pending,
            WriteOffStatus::Approved,
            WriteOffStatus::Rejected,
        ] {
            assert_eq!(WriteOffStatus::parse(status.name()), Some(status));
        }
        assert_eq!(WriteOffStatus::parse("pending"), None);
    }
}
