//! The collections service's business rules, pure: receivables and their open amount on any
//! date, aging, payment allocation, overdue detection, payment behaviour, five-level
//! classification and provisions, dunning policies and runs, promises to pay, the collector's
//! worklist and KPIs.
//!
//! No I/O here: no database, no network, no clock. The store reads the facts (invoices and
//! their movements, promises, actions already taken), these functions decide, and the
//! handlers write what they decided. Every figure a user may check by hand is computed here
//! and unit-tested against hand-computed numbers.
//!
//! Conventions:
//! - money is [`rust_decimal::Decimal`] in the currency carried alongside it; amounts of
//!   different currencies are never added up (totals are per currency);
//! - computed money is rounded once, by [`rounding::round_money`] (2 places, half-even), and
//!   ratios by [`rounding::round_ratio`] (4 places, half-even);
//! - dates are [`chrono::NaiveDate`]; "as of" a date means at the end of that day;
//! - the types here are the service's own; conversions from and to the contract's protobuf
//!   types live in `api::convert`.

/// A total of amounts that does not fit a `Decimal`: each amount is bounded on input, a sum of
/// many is not. Aggregates return it instead of panicking or wrapping; the handlers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a total of amounts is too large to compute")]
pub struct AmountOverflow;

pub mod aging;
pub mod allocation;
pub mod behaviour;
pub mod classification;
pub mod contact;
pub mod credit_note;
pub mod dunning;
pub mod fraction;
pub mod interest;
pub mod kpi;
pub mod overdue;
pub mod promise;
pub mod receivable;
pub mod rounding;
pub mod template;
pub mod worklist;
pub mod write_off;

pub use aging::{
    Aging, AgingBucket, AgingSummary, DueDateTotal, age, age_by_customer, summarize_due_dates,
};
pub use allocation::{
    AllocationError, AllocationInstruction, Application, Funds, OpenItem, allocate_payment,
    apply_unapplied_credit, early_payment_discount,
};
pub use behaviour::{PaymentBehaviour, payment_behaviour};
pub use classification::{
    AssetClassification, ClassificationPolicy, ClassificationRule, ProvisionMethod,
    ProvisionReport, compute_provisions, exposure_lines,
};
pub use contact::{ContactOutcome, default_next_contact};
pub use credit_note::{
    CreditNoteApproval, CreditNoteDecisionError, decide_credit_note, may_post_alone,
};
pub use dunning::{
    ContactChannel, DunningCandidate, DunningPlan, DunningPolicy, DunningPolicyDraft, TakenAction,
    check_publishable, plan_dunning, select_policy,
};
pub use fraction::{DEFAULT_LGD, Fraction};
pub use kpi::{KpiInputs, Kpis, Period, compute_kpis, kpi_inputs};
pub use overdue::{OverduePosition, overdue_positions};
pub use promise::{PromiseEvaluation, PromiseScope, PromiseStatus, PromiseToPay, evaluate_promise};
pub use receivable::{
    CaseId, Closure, CustomerId, IdError, Invoice, InvoiceHistory, InvoiceId, InvoiceStatus,
    Movement, MovementKind, PromiseId, days_past_due,
};
pub use rounding::{round_money, round_ratio};
pub use template::MessageTemplate;
pub use worklist::{CaseExposure, WorklistItem, WorklistParams, rank_worklist};
pub use write_off::{
    Checker, WriteOffDecision, WriteOffError, WriteOffStatus, decide_write_off, record_recovery,
    write_off_amount,
};
