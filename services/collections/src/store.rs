//! The collections service's persistence: the [`ReceivableStore`] trait and its SQL
//! implementation for PostgreSQL and the embedded SQLite file (one body for both, through
//! `on_database!`).
//!
//! A change to a customer's account is planned by a pure function the handler passes in
//! ([`Plan`]), inside the write transaction and after the account row is locked, so two
//! payments of one customer never allocate the same open amount and a replay by natural key
//! (invoice number, credit note number, payment reference) is recognised before anything is
//! planned.

/// The columns of `disputes` a [`cases::DisputeRow`] reads, for `concat!`.
macro_rules! dispute_columns {
    () => {
        "dispute_id, invoice_id, customer_id, currency, amount, reason, status, opened_at, opened_by, \
         resolved_at, resolved_by, resolution_notes, credit_note_id"
    };
}

/// Takes the customer's account row, on which all of the customer's writes queue, and
/// evaluates to the sequence number of this posting (`Result<i64, sqlx::Error>`). The first
/// statement of every transaction that changes a customer's account.
macro_rules! next_posting {
    ($tx:ident, $sql:ident, $customer_id:expr) => {
        sqlx::query_scalar::<_, i64>(&$sql(
            "INSERT INTO customer_accounts (customer_id, postings) VALUES ($1, 1) \
             ON CONFLICT (customer_id) DO UPDATE SET postings = customer_accounts.postings + 1 \
             RETURNING postings",
        ))
        .bind($customer_id)
        .fetch_one(&mut *$tx)
        .await
    };
}

mod balances;
mod cases;
mod dunning;
mod loss;
mod receivables;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use credit_core::{Currency, ServiceError};
use credit_proto::v1::Event;

use rust_decimal::Decimal;

use crate::domain::{CreditNoteApproval, Invoice, InvoiceHistory, MovementKind};

pub use cases::{
    CaseRecord, CaseStore, ContactRecord, DisputeFilter, DisputeRecord, PromiseDecision,
    PromiseRecord,
};
pub use dunning::{
    ActionFilter, DunningProposalStore, DunningStore, PolicyAdmission, PolicyDecider,
    PolicyProposal, PolicyProposalFilter, TakenLevel,
};
pub use loss::{
    DecisionChanges, DecisionPlan, InvoiceState, LossStore, RecoveryChanges, RecoveryPlan,
    RecoveryRecord, RequestPlan, SqlLossStore, WriteOffFilter, WriteOffRecord,
};
pub use receivables::SqlReceivableStore;

pub use credit_runtime::store::{Outcome, StoreError, StoreResult};

/// PostgreSQL keeps microseconds: what a write answers with is what a later read shows.
fn stored_time(time: DateTime<Utc>) -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(time, 6)
}

/// A stored decimal string; unreadable is a corrupt record (`place` says which).
fn decimal(place: &str, text: &str) -> StoreResult<Decimal> {
    <Decimal as std::str::FromStr>::from_str(text)
        .map_err(|error| StoreError::Corrupt(format!("{place}: {error}")))
}

/// A stored currency code; unreadable is a corrupt record.
fn currency(place: &str, code: &str) -> StoreResult<Currency> {
    Currency::parse(code).map_err(|error| StoreError::Corrupt(format!("{place}: {error}")))
}

/// The key a document is idempotent on, with the customer.
#[derive(Debug, Clone)]
pub enum NaturalKey {
    Invoice(String),
    CreditNote(String),
    Payment(String),
    /// A request_id-keyed change (OpenDispute, ResolveDispute): kept in `idempotency_keys`
    /// with the id of what it made.
    Request(credit_runtime::sql::IdempotencyKey),
}

/// Payment terms an invoice's due date came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub net_days: u32,
    pub discount_percent: String,
    pub discount_days: u32,
}

/// An invoice as posted, with what the domain does not need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRecord {
    pub invoice: Invoice,
    pub order_id: String,
    pub hold_id: String,
    pub terms: Option<Terms>,
    pub closed_date: Option<NaiveDate>,
    pub posted_at: DateTime<Utc>,
    pub posted_by: String,
}

/// An invoice with every movement that reduced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInvoice {
    pub record: InvoiceRecord,
    /// Movements in the order they were recorded.
    pub history: InvoiceHistory,
    /// The document (payment, credit note, write-off) of each movement, in the same order.
    pub movement_documents: Vec<String>,
    /// Part of the open amount under open disputes.
    pub disputed_amount: Decimal,
}

/// One reduction of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMovement {
    pub invoice_id: String,
    pub kind: MovementKind,
    pub amount: Decimal,
    pub date: NaiveDate,
    /// The payment, credit note or write-off.
    pub document_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub payment_id: String,
    pub customer_id: String,
    pub reference: String,
    pub currency: Currency,
    pub amount: Decimal,
    pub value_date: NaiveDate,
    /// Left unapplied when it was recorded.
    pub unapplied_at_recording: Decimal,
    /// Still available for later invoices.
    pub unapplied: Decimal,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteRecord {
    pub credit_note_id: String,
    pub customer_id: String,
    pub credit_note_number: String,
    pub invoice_id: String,
    pub currency: Currency,
    pub amount: Decimal,
    pub issue_date: NaiveDate,
    pub reason: String,
    pub dispute_id: String,
    pub posted_at: DateTime<Utc>,
    pub posted_by: String,
}

/// A credit note that needed a second person, from its request to its decision. Approval
/// posts it into the ledger as a [`CreditNoteRecord`] with the same id and number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteApprovalRecord {
    pub credit_note_id: String,
    pub customer_id: String,
    pub credit_note_number: String,
    pub invoice_id: String,
    pub currency: Currency,
    pub amount: Decimal,
    pub issue_date: NaiveDate,
    pub reason: String,
    /// The dispute whose VALID resolution it carries; '' for none.
    pub dispute_id: String,
    /// Digest of the request that made it: the posted credit note keeps it, so a retry of
    /// that request after the approval is still a replay.
    pub fingerprint: String,
    pub status: CreditNoteApproval,
    /// The maker, with what the four-eyes check compares.
    pub requested_by: credit_core::Actor,
    pub requested_at: DateTime<Utc>,
    /// Name of the checker; '' while pending.
    pub decided_by: String,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: String,
}

/// A checker's decision on a waiting credit note, as a change writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteDecision {
    pub credit_note_id: String,
    pub status: CreditNoteApproval,
    pub decided_by: String,
    pub decision_reason: String,
}

/// Which part of a customer's account a change is planned against. The store reads only
/// that part, so a change costs the same whether the customer has 10 or 100,000 open items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountScope {
    /// The payments holding unapplied credit in a currency (a new invoice takes it at once).
    Credit(Currency),
    /// These invoices, when open, with their open disputes (credit notes, disputes, explicit
    /// allocations).
    Invoices(Vec<String>),
    /// The open invoices in `currency`, oldest due first (the allocation order), until their
    /// undisputed open amounts cover `amount` — all an automatic allocation can touch.
    OldestOpen { currency: Currency, amount: Decimal },
}

/// The part of a customer's account an [`AccountScope`] selects, as a change is planned
/// against it.
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// Open invoices with their movements, in allocation order (due date, issue date,
    /// invoice number).
    pub open_invoices: Vec<StoredInvoice>,
    /// Payments with unapplied credit left, oldest value date first.
    pub credits: Vec<PaymentRecord>,
    /// The open disputes of `open_invoices`.
    pub open_disputes: Vec<DisputeRecord>,
}

/// A customer's running balances as stored (migration 0007).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerBalances {
    /// Per currency: open receivables and unapplied credit. Currencies the customer never
    /// used are absent.
    pub currencies: BTreeMap<Currency, CurrencyBalance>,
    /// Per currency and due date with an open invoice: the open amount and the count.
    pub due_dates: BTreeMap<(Currency, NaiveDate), DueBalance>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CurrencyBalance {
    pub open_receivables: Decimal,
    pub unapplied_credit: Decimal,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueBalance {
    pub open_amount: Decimal,
    pub open_invoices: u32,
}

/// Where a page of a customer's open invoices starts: after this (due date, invoice number,
/// invoice id), the order of an aging's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoiceKey {
    pub due_date: NaiveDate,
    pub invoice_number: String,
    pub invoice_id: String,
}

/// What a plan writes.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Id of the document the change is about (the response reads it back).
    pub document_id: String,
    pub invoice: Option<InvoiceRecord>,
    pub credit_note: Option<CreditNoteRecord>,
    pub payment: Option<PaymentRecord>,
    pub movements: Vec<NewMovement>,
    /// Payments whose unapplied credit was used: payment id -> what is left.
    pub credits_left: Vec<(String, Decimal)>,
    /// Invoices the change closed, with the closing date.
    pub closed: Vec<(String, NaiveDate)>,
    pub events: Vec<Event>,
    /// A dispute opened.
    pub new_dispute: Option<DisputeRecord>,
    /// A dispute resolved: the record as it is after the resolution.
    pub resolved_dispute: Option<DisputeRecord>,
    /// A credit note stored to wait for a second person (nothing else moves).
    pub credit_note_request: Option<CreditNoteApprovalRecord>,
    /// A decision on a waiting credit note; refused unless it is still pending when written.
    pub credit_note_decision: Option<CreditNoteDecision>,
    /// Digest of the request, stored with the document.
    pub fingerprint: String,
}

/// Plans a change against the account; refusals are the caller's errors.
pub type Plan<'a> = &'a (dyn Fn(&Account) -> Result<Changes, ServiceError> + Send + Sync);

/// A customer's oldest overdue days moving from `previous` to `days`, with its announcement.
#[derive(Debug, Clone)]
pub struct OverdueChange {
    pub customer_id: String,
    pub previous: u32,
    pub days: u32,
    pub event: Event,
}

/// Filter of ListInvoices.
#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    pub open_only: bool,
    pub closed_only: bool,
}

/// One document of a customer's ledger, in posting order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerDocument {
    Invoice(InvoiceRecord),
    CreditNote(CreditNoteRecord),
    Payment(PaymentRecord),
    /// An approved write-off, at its approval.
    WriteOff(WriteOffRecord),
    /// A recovery on a write-off (a memo: no balance change).
    Recovery(RecoveryRecord),
    /// An early-payment discount a payment earned on an invoice, beside the payment.
    Discount(DiscountRecord),
}

/// An early-payment discount (现金折扣): a payment within an invoice's discount window settled
/// it net of the discount, and the discount closed the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountRecord {
    pub payment_id: String,
    /// The payment's reference.
    pub reference: String,
    pub invoice_id: String,
    pub currency: Currency,
    pub amount: Decimal,
    /// The payment's value date.
    pub value_date: NaiveDate,
    pub recorded_at: DateTime<Utc>,
}

#[async_trait]
pub trait ReceivableStore: Send + Sync + std::fmt::Debug {
    /// Applies the plan to the part of the customer's account `scope` selects, once per
    /// natural key: a replay with the same fingerprint returns the id of the document the key
    /// made, other content is `KeyReused`. The running balances move in the same transaction.
    async fn commit(
        &self,
        customer_id: &str,
        key: &NaturalKey,
        fingerprint: &str,
        scope: &AccountScope,
        plan: Plan<'_>,
    ) -> StoreResult<Outcome<String>>;

    /// The customer's running balances.
    async fn balances(&self, customer_id: &str) -> StoreResult<CustomerBalances>;

    /// Up to `limit` of the customer's invoices open now (in `currency` when given), by due
    /// date, invoice number and id, after `after`: one page of an aging as of today, read by
    /// index whatever the customer's history.
    async fn open_invoice_page(
        &self,
        customer_id: &str,
        currency: Option<Currency>,
        after: Option<&OpenInvoiceKey>,
        limit: i64,
    ) -> StoreResult<Vec<StoredInvoice>>;

    /// The customer's oldest overdue days as last announced (0 when never).
    async fn overdue_position(&self, customer_id: &str) -> StoreResult<u32>;

    async fn invoice(&self, invoice_id: &str) -> StoreResult<Option<StoredInvoice>>;

    /// A customer's invoices by due date, then invoice number, after the key `after`
    /// ("<due date>|<invoice number>").
    async fn invoices(
        &self,
        customer_id: &str,
        filter: &InvoiceFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<StoredInvoice>>;

    async fn payment(&self, payment_id: &str) -> StoreResult<Option<PaymentRecord>>;

    /// The allocations of a payment: (invoice, amount), in the order they were made.
    async fn payment_allocations(&self, payment_id: &str) -> StoreResult<Vec<NewMovement>>;

    async fn credit_note(&self, credit_note_id: &str) -> StoreResult<Option<CreditNoteRecord>>;

    /// A credit note that needed a second person, whatever its state.
    async fn credit_note_approval(
        &self,
        credit_note_id: &str,
    ) -> StoreResult<Option<CreditNoteApprovalRecord>>;

    /// Credit notes that needed a second person (in `status` when given), newest first, after
    /// the id `after`.
    async fn credit_note_approvals(
        &self,
        status: Option<CreditNoteApproval>,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<CreditNoteApprovalRecord>>;

    /// Every document of the customer's ledger, in posting order.
    async fn ledger(&self, customer_id: &str) -> StoreResult<Vec<LedgerDocument>>;

    /// Invoices (with movements) issued on or before `issued_by` and not closed before
    /// `open_on` — what aging as of a date, overdue detection and payment behaviour read. One
    /// customer, or every customer.
    async fn histories(
        &self,
        customer_id: Option<&str>,
        issued_by: NaiveDate,
        open_on: NaiveDate,
    ) -> StoreResult<Vec<InvoiceHistory>>;

    /// Customers' oldest overdue days as last announced.
    async fn overdue_positions(&self) -> StoreResult<BTreeMap<String, u32>>;

    /// Records each change of position with its InvoiceOverdue event, in one transaction —
    /// only where the stored position is still the `previous` the change was computed from,
    /// so two detections running at once announce a change once. Returns the customers
    /// whose change was recorded.
    async fn save_overdue_positions(
        &self,
        changes: &[OverdueChange],
        as_of: NaiveDate,
    ) -> StoreResult<Vec<String>>;
}
