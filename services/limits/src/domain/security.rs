//! The security register (担保登记): what a customer has put up so that we sell to it on credit
//! — cash deposits (保证金), bank guarantees and standby letters of credit, guarantees of a third
//! party (担保, the guarantor itself a customer), pledges and mortgages (质押/抵押) and credit
//! insurance (信用保险).
//!
//! Each item is valued once, here: its **eligible value** is what it would bring if the
//! customer defaulted, after the haircut the credit manager set for it (and, for insurance,
//! after the deductible and the insurer's share). A customer's eligible values, in force on a
//! day, make its **cover**: depending on its grade's policy the cover extends the credit
//! capacity (limit + cover) or only lowers the loss given default.
//!
//! Registration, release and a revaluation upwards raise (or keep) what an order may use, so
//! each is a change walked through the approval matrix's SECURITY_CHANGE chain (maker-checker):
//! it takes effect when the chain approves it. A revaluation downwards and an expiry only
//! lower the cover and take effect at once.
//!
//! Pure: the caller converts eligible values into the limit's currency.

use chrono::{DateTime, NaiveDate, Utc};
use credit_core::approval::Chain;
use credit_core::{Actor, Money, Violations};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The kinds of security the register holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityKind {
    /// Cash the customer deposited with us (保证金).
    Deposit,
    /// A bank's guarantee in our favour (银行保函).
    BankGuarantee,
    /// A standby letter of credit (备用信用证).
    StandbyLetterOfCredit,
    /// Another customer guarantees this customer's debt (第三方担保); the guaranteed amount is
    /// the guarantor's contingent exposure.
    ThirdPartyGuarantee,
    /// A movable asset pledged to us (质押).
    Pledge,
    /// Real estate mortgaged to us (抵押).
    Mortgage,
    /// A credit insurance policy covering this customer (信用保险).
    CreditInsurance,
}

impl SecurityKind {
    pub const ALL: [Self; 7] = [
        Self::Deposit,
        Self::BankGuarantee,
        Self::StandbyLetterOfCredit,
        Self::ThirdPartyGuarantee,
        Self::Pledge,
        Self::Mortgage,
        Self::CreditInsurance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => "DEPOSIT",
            Self::BankGuarantee => "BANK_GUARANTEE",
            Self::StandbyLetterOfCredit => "STANDBY_LETTER_OF_CREDIT",
            Self::ThirdPartyGuarantee => "THIRD_PARTY_GUARANTEE",
            Self::Pledge => "PLEDGE",
            Self::Mortgage => "MORTGAGE",
            Self::CreditInsurance => "CREDIT_INSURANCE",
        }
    }

    /// Collateral whose value is an estimate: it needs a valuation date.
    pub fn is_valued_asset(self) -> bool {
        matches!(self, Self::Pledge | Self::Mortgage)
    }
}

/// Where a security stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityStatus {
    /// Registered by its maker; its chain has not approved it yet. Not counted.
    Pending,
    /// Approved and counted on the days of its validity.
    Active,
    /// Its registration was rejected.
    Rejected,
    /// Given back to the customer (release approved).
    Released,
    /// Its validity ended.
    Expired,
}

impl SecurityStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Active => "ACTIVE",
            Self::Rejected => "REJECTED",
            Self::Released => "RELEASED",
            Self::Expired => "EXPIRED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Active,
            Self::Rejected,
            Self::Released,
            Self::Expired,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A change of the register that waits for (or went through) its chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeAction {
    /// The security is registered: counted once approved.
    Register,
    /// The security is given back: no longer counted once approved.
    Release,
    /// A new valuation (a pledge's or mortgage's appraisal, a guarantee's amended amount).
    Revalue {
        amount: Money,
        valuation_date: NaiveDate,
    },
}

impl ChangeAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Register => "REGISTER",
            Self::Release => "RELEASE",
            Self::Revalue { .. } => "REVALUE",
        }
    }
}

/// One change and its chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityChange {
    pub action: ChangeAction,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    /// Its maker is who asked for the change.
    pub chain: Chain,
}

/// A valuation in the security's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Valuation {
    pub amount: Money,
    pub valuation_date: Option<NaiveDate>,
    pub recorded_by: Actor,
    pub recorded_at: DateTime<Utc>,
    pub note: String,
}

/// One item of the register.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Security {
    pub security_id: String,
    /// The customer whose debt it secures.
    pub customer_id: String,
    pub kind: SecurityKind,
    /// The face amount: cash held, the amount guaranteed, the asset's valuation or the insured
    /// limit for this customer.
    pub amount: Money,
    /// Percent taken off the face amount before it counts (a pledge's price risk, a weak
    /// guarantor), 0–100.
    pub haircut_percent: Decimal,
    /// For pledges and mortgages: the day of the valuation `amount` comes from.
    pub valuation_date: Option<NaiveDate>,
    /// Who provides it: the bank, the insurer, the guarantor's name, the asset described.
    pub provider: String,
    /// The guarantor, for a third-party guarantee: a customer of ours.
    pub guarantor_customer_id: Option<String>,
    /// The guarantee's, policy's or deed's number.
    pub reference: String,
    /// Credit insurance: what the insurer does not pay of a loss (免赔额); zero otherwise.
    pub deductible: Option<Money>,
    /// Credit insurance: the insurer's share of the loss above the deductible (赔付比例),
    /// 0–100; 100 for every other kind.
    pub share_covered_percent: Decimal,
    /// First day it may count.
    pub valid_from: NaiveDate,
    /// Last day it counts; `None`: until released (a deposit).
    pub valid_until: Option<NaiveDate>,
    /// Intake's credit documents that evidence it (the guarantee letter, the deed, the policy).
    pub document_ids: Vec<String>,
    pub status: SecurityStatus,
    /// The change that waits for its chain: the registration, a release or a revaluation.
    pub pending: Option<SecurityChange>,
    /// Every change decided, oldest first.
    pub decided: Vec<SecurityChange>,
    /// Every valuation, the first one the registration's.
    pub valuations: Vec<Valuation>,
    pub registered_by: Actor,
    pub registered_at: DateTime<Utc>,
    /// When it stopped counting (released, rejected, expired).
    pub ended_at: Option<DateTime<Utc>>,
    /// Bumped by every change, to fence concurrent ones.
    pub revision: i64,
}

/// One hundred, for percentages.
fn hundred() -> Decimal {
    Decimal::ONE_HUNDRED
}

impl Security {
    /// What it would bring if the customer defaulted, in its own currency, rounded once:
    /// `amount × (1 − haircut)`, and for credit insurance
    /// `max(0, amount − deductible) × share covered × (1 − haircut)`.
    pub fn eligible_value(&self) -> Money {
        let currency = self.amount.currency();
        let zero = Money::zero(currency);
        let mut base = self.amount.amount();
        if let Some(deductible) = self.deductible {
            base = base
                .checked_sub(deductible.amount())
                .unwrap_or(Decimal::ZERO)
                .max(Decimal::ZERO);
        }
        // Percentages are checked to lie in 0–100 on entry, so none of this can overflow; an
        // overflow would count nothing rather than panic.
        let factor = hundred()
            .checked_sub(self.haircut_percent)
            .and_then(|kept| kept.checked_mul(self.share_covered_percent))
            .and_then(|product| product.checked_div(Decimal::from(10_000)));
        match factor {
            Some(factor) if factor > Decimal::ZERO => {
                Money::new(base, currency).times(factor).unwrap_or(zero)
            }
            _ => zero,
        }
    }

    /// Whether it counts on `day`: active, and `valid_from <= day <= valid_until`.
    pub fn counts_on(&self, day: NaiveDate) -> bool {
        self.status == SecurityStatus::Active
            && self.valid_from <= day
            && self.valid_until.is_none_or(|until| day <= until)
    }

    /// The first instant it no longer counts: the start (UTC) of the day after `valid_until`.
    pub fn counts_until(&self) -> Option<DateTime<Utc>> {
        let until = self.valid_until?;
        let next = until.succ_opt()?;
        Some(next.and_hms_opt(0, 0, 0)?.and_utc())
    }
}

/// What a caller asks to register, checked by [`NewSecurity::check`].
#[derive(Debug, Clone)]
pub struct NewSecurity {
    pub customer_id: String,
    pub kind: Option<SecurityKind>,
    pub amount: Option<Money>,
    pub haircut_percent: Decimal,
    pub valuation_date: Option<NaiveDate>,
    pub provider: String,
    pub guarantor_customer_id: Option<String>,
    pub reference: String,
    pub deductible: Option<Money>,
    pub share_covered_percent: Option<Decimal>,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub document_ids: Vec<String>,
    pub reason: String,
}

/// A registration that passed its checks: everything but the chain and the ids.
#[derive(Debug, Clone)]
pub struct CheckedSecurity {
    pub customer_id: String,
    pub kind: SecurityKind,
    pub amount: Money,
    pub haircut_percent: Decimal,
    pub valuation_date: Option<NaiveDate>,
    pub provider: String,
    pub guarantor_customer_id: Option<String>,
    pub reference: String,
    pub deductible: Option<Money>,
    pub share_covered_percent: Decimal,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub document_ids: Vec<String>,
    pub reason: String,
}

/// A percentage in 0–100.
fn check_percent(violations: &mut Violations, field: &str, value: Decimal) {
    if value < Decimal::ZERO || value > hundred() {
        violations.add(field, "must be a percentage from 0 to 100");
    }
}

impl NewSecurity {
    /// Every field checked at once (INVALID_ARGUMENT with each violation, named `prefix` +
    /// field), `today` the day the register is asked on.
    pub fn check(
        self,
        today: NaiveDate,
        prefix: &str,
    ) -> Result<CheckedSecurity, credit_core::ServiceError> {
        let field = |name: &str| format!("{prefix}{name}");
        let mut violations = Violations::new();
        if self.customer_id.trim().is_empty() || self.customer_id.len() > 100 {
            violations.add(field("customer_id"), "is required, at most 100 characters");
        }
        if self.kind.is_none() {
            violations.add(field("kind"), "is required");
        }
        match self.amount {
            None => violations.add(field("amount"), "is required"),
            Some(amount) if !amount.is_positive() => {
                violations.add(field("amount"), "must be positive")
            }
            Some(_) => {}
        }
        check_percent(
            &mut violations,
            &field("haircut_percent"),
            self.haircut_percent,
        );
        if self.provider.trim().is_empty() || self.provider.len() > 200 {
            violations.add(
                field("provider"),
                "is required (the bank, insurer, guarantor or asset), at most 200 characters",
            );
        }
        if self.reference.len() > 100 {
            violations.add(field("reference"), "must be at most 100 characters");
        }
        if self.reason.len() > 1000 {
            violations.add("reason", "must be at most 1000 characters");
        }
        if self.document_ids.len() > 20
            || self
                .document_ids
                .iter()
                .any(|id| id.trim().is_empty() || id.len() > 100)
        {
            violations.add(
                field("document_ids"),
                "at most 20 ids, each non-empty and at most 100 characters",
            );
        }
        let kind = self.kind;
        let is = |wanted: SecurityKind| kind == Some(wanted);
        let guarantor = self
            .guarantor_customer_id
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty());
        if is(SecurityKind::ThirdPartyGuarantee) {
            match &guarantor {
                None => violations.add(
                    field("guarantor_customer_id"),
                    "is required for a third-party guarantee (the guarantor is a customer)",
                ),
                Some(id) if *id == self.customer_id.trim() => violations.add(
                    field("guarantor_customer_id"),
                    "a customer cannot guarantee its own debt",
                ),
                Some(_) => {}
            }
        } else if guarantor.is_some() {
            violations.add(
                field("guarantor_customer_id"),
                "is only for a third-party guarantee",
            );
        }
        if kind.is_some_and(SecurityKind::is_valued_asset) {
            match self.valuation_date {
                None => violations.add(
                    field("valuation_date"),
                    "is required for a pledge or mortgage (the day of the appraisal)",
                ),
                Some(date) if date > today => {
                    violations.add(field("valuation_date"), "must not be in the future")
                }
                Some(_) => {}
            }
        }
        let share = if is(SecurityKind::CreditInsurance) {
            let share = self.share_covered_percent.unwrap_or(hundred());
            check_percent(&mut violations, &field("share_covered_percent"), share);
            if share.is_zero() {
                violations.add(field("share_covered_percent"), "must be above 0");
            }
            match (self.deductible, self.amount) {
                (Some(deductible), Some(amount)) => {
                    if deductible.is_negative() {
                        violations.add(field("deductible"), "must not be negative");
                    } else if deductible.currency() != amount.currency() {
                        violations.add(
                            field("deductible"),
                            "must be in the insured limit's currency",
                        );
                    }
                }
                (Some(deductible), None) if deductible.is_negative() => {
                    violations.add(field("deductible"), "must not be negative")
                }
                _ => {}
            }
            share
        } else {
            if self.deductible.is_some() {
                violations.add(field("deductible"), "is only for credit insurance");
            }
            if self.share_covered_percent.is_some() {
                violations.add(
                    field("share_covered_percent"),
                    "is only for credit insurance",
                );
            }
            hundred()
        };
        let valid_from = self.valid_from.unwrap_or(today);
        if let Some(until) = self.valid_until {
            if until < valid_from {
                violations.add(field("valid_until"), "must not be before valid_from");
            } else if until < today {
                violations.add(field("valid_until"), "must not be in the past");
            }
        } else if kind.is_some()
            && !is(SecurityKind::Deposit)
            && !kind.is_some_and(SecurityKind::is_valued_asset)
        {
            violations.add(
                field("valid_until"),
                "is required: a guarantee, letter of credit or insurance policy has an expiry",
            );
        }
        violations.finish()?;
        let (Some(kind), Some(amount)) = (kind, self.amount) else {
            return Err(credit_core::ServiceError::invalid("kind", "is required"));
        };
        Ok(CheckedSecurity {
            customer_id: self.customer_id.trim().to_owned(),
            kind,
            amount,
            haircut_percent: self.haircut_percent,
            valuation_date: self.valuation_date,
            provider: self.provider.trim().to_owned(),
            guarantor_customer_id: guarantor,
            reference: self.reference.trim().to_owned(),
            deductible: self.deductible,
            share_covered_percent: share,
            valid_from,
            valid_until: self.valid_until,
            document_ids: self.document_ids,
            reason: self.reason,
        })
    }
}

impl CheckedSecurity {
    /// The register's new item, pending its chain.
    pub fn into_security(
        self,
        security_id: String,
        chain: Chain,
        maker: Actor,
        now: DateTime<Utc>,
    ) -> Security {
        Security {
            security_id,
            customer_id: self.customer_id,
            kind: self.kind,
            amount: self.amount,
            haircut_percent: self.haircut_percent,
            valuation_date: self.valuation_date,
            provider: self.provider,
            guarantor_customer_id: self.guarantor_customer_id,
            reference: self.reference,
            deductible: self.deductible,
            share_covered_percent: self.share_covered_percent,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            document_ids: self.document_ids,
            status: SecurityStatus::Pending,
            pending: Some(SecurityChange {
                action: ChangeAction::Register,
                reason: self.reason,
                requested_at: now,
                chain,
            }),
            decided: Vec::new(),
            valuations: vec![Valuation {
                amount: self.amount,
                valuation_date: self.valuation_date,
                recorded_by: maker.clone(),
                recorded_at: now,
                note: "registered".to_owned(),
            }],
            registered_by: maker,
            registered_at: now,
            ended_at: None,
            revision: 0,
        }
    }
}

/// Why a change of the register is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefused {
    #[error("the security is {0}; only an active one can be changed")]
    NotActive(&'static str),
    #[error("another change of this security waits for its approval chain")]
    ChangePending,
    #[error("the new valuation must be in the security's currency {0}")]
    CurrencyChanged(&'static str),
}

impl From<ChangeRefused> for credit_core::ServiceError {
    fn from(refused: ChangeRefused) -> Self {
        let message = refused.to_string();
        match refused {
            ChangeRefused::NotActive(_) => {
                credit_core::ServiceError::failed_precondition("SECURITY_NOT_ACTIVE", message)
            }
            ChangeRefused::ChangePending => {
                credit_core::ServiceError::failed_precondition("SECURITY_CHANGE_PENDING", message)
            }
            ChangeRefused::CurrencyChanged(_) => {
                credit_core::ServiceError::invalid("amount", message)
            }
        }
    }
}

/// What a change asked of an active security does.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeEffect {
    /// It waits for its chain (a release, a revaluation upwards).
    Pending,
    /// It took effect at once (a revaluation that lowers the value: only less is counted).
    Applied,
}

impl Security {
    /// Asks for `action` on an active security with no other change pending. A revaluation
    /// that does not raise the face amount applies at once; anything else waits for `chain`.
    pub fn request_change(
        &mut self,
        action: ChangeAction,
        reason: String,
        chain: Chain,
        now: DateTime<Utc>,
    ) -> Result<ChangeEffect, ChangeRefused> {
        if self.status != SecurityStatus::Active {
            return Err(ChangeRefused::NotActive(self.status.as_str()));
        }
        if self.pending.is_some() {
            return Err(ChangeRefused::ChangePending);
        }
        if let ChangeAction::Revalue { amount, .. } = &action {
            if amount.currency() != self.amount.currency() {
                return Err(ChangeRefused::CurrencyChanged(
                    self.amount.currency().code(),
                ));
            }
            if amount.amount() <= self.amount.amount() {
                let maker = chain.maker.clone();
                self.apply(&action, &maker, &reason, now);
                self.revision = self.revision.saturating_add(1);
                return Ok(ChangeEffect::Applied);
            }
        }
        self.pending = Some(SecurityChange {
            action,
            reason,
            requested_at: now,
            chain,
        });
        self.revision = self.revision.saturating_add(1);
        Ok(ChangeEffect::Pending)
    }

    /// Applies an approved change (or one that needs no approval).
    fn apply(&mut self, action: &ChangeAction, by: &Actor, note: &str, now: DateTime<Utc>) {
        match action {
            ChangeAction::Register => self.status = SecurityStatus::Active,
            ChangeAction::Release => {
                self.status = SecurityStatus::Released;
                self.ended_at = Some(now);
            }
            ChangeAction::Revalue {
                amount,
                valuation_date,
            } => {
                self.amount = *amount;
                self.valuation_date = Some(*valuation_date);
                self.valuations.push(Valuation {
                    amount: *amount,
                    valuation_date: Some(*valuation_date),
                    recorded_by: by.clone(),
                    recorded_at: now,
                    note: note.to_owned(),
                });
            }
        }
    }

    /// Settles the pending change after its chain approved (`approved`) or rejected it.
    pub fn settle_pending(&mut self, approved: bool, now: DateTime<Utc>) {
        let Some(change) = self.pending.take() else {
            return;
        };
        if approved {
            let maker = change.chain.maker.clone();
            self.apply(&change.action, &maker, &change.reason, now);
        } else if change.action == ChangeAction::Register {
            self.status = SecurityStatus::Rejected;
            self.ended_at = Some(now);
        }
        self.decided.push(change);
        self.revision = self.revision.saturating_add(1);
    }

    /// Ends an active security whose validity ran out by `today`; `false` when it still
    /// counts (or is not active). A change still pending is dropped with it.
    pub fn expire(&mut self, today: NaiveDate, now: DateTime<Utc>) -> bool {
        if self.status != SecurityStatus::Active
            || self.valid_until.is_none_or(|until| until >= today)
        {
            return false;
        }
        self.status = SecurityStatus::Expired;
        self.ended_at = Some(now);
        if let Some(change) = self.pending.take() {
            self.decided.push(change);
        }
        self.revision = self.revision.saturating_add(1);
        true
    }

    /// What the approver reads in the queue.
    pub fn summary(&self) -> String {
        let action = self
            .pending
            .as_ref()
            .map_or("change", |change| change.action.as_str());
        let guarantor = self
            .guarantor_customer_id
            .as_ref()
            .map(|id| format!(", guaranteed by customer {id}"))
            .unwrap_or_default();
        format!(
            "{} {} of customer {}: {} {} from {} ({}% haircut, eligible {} {}){guarantor}",
            action.to_lowercase(),
            self.kind.as_str().to_lowercase().replace('_', " "),
            self.customer_id,
            self.amount.amount_string(),
            self.amount.currency().code(),
            self.provider,
            self.haircut_percent,
            self.eligible_value().amount_string(),
            self.amount.currency().code(),
        )
    }
}

/// The securities of `securities` that count on `today`, and the first instant one of them
/// stops counting (`None` when none of them ends).
pub fn counted(
    securities: &[Security],
    today: NaiveDate,
) -> (Vec<&Security>, Option<DateTime<Utc>>) {
    let counted: Vec<&Security> = securities
        .iter()
        .filter(|security| security.counts_on(today))
        .collect();
    let first_end = counted
        .iter()
        .filter_map(|security| security.counts_until())
        .min();
    (counted, first_end)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
    }

    fn cny(amount: &str) -> Money {
        Money::parse(amount, "CNY").unwrap()
    }

    fn request(kind: SecurityKind) -> NewSecurity {
        NewSecurity {
            customer_id: "C1".to_owned(),
            kind: Some(kind),
            amount: Some(cny("100000")),
            haircut_percent: Decimal::ZERO,
            valuation_date: None,
            provider: "Bank of Ningbo".to_owned(),
            guarantor_customer_id: None,
            reference: "LG-1".to_owned(),
            deductible: None,
            share_covered_percent: None,
            valid_from: None,
            valid_until: Some(day(31)),
            document_ids: Vec::new(),
            reason: String::new(),
        }
    }

    fn registered(new: NewSecurity) -> Security {
        let maker = Actor::named("ana");
        let chain = Chain {
            steps: Vec::new(),
            ..test_chain(maker.clone())
        };
        new.check(day(1), "")
            .unwrap()
            .into_security("sec1".to_owned(), chain, maker, now())
    }

    fn test_chain(maker: Actor) -> Chain {
        let rule =
            credit_core::approval::shipped_matrix(credit_core::Currency::parse("CNY").unwrap())
                .chain_rule(
                    credit_core::approval::DecisionKind::SecurityChange,
                    &credit_core::approval::Figures::default(),
                )
                .unwrap()
                .clone();
        Chain::start(&rule, 0, maker, None)
    }

    #[test]
    fn the_eligible_value_takes_off_the_haircut_and_for_insurance_the_deductible_and_share() {
        let mut pledge = request(SecurityKind::Pledge);
        pledge.haircut_percent = Decimal::from(30);
        pledge.valuation_date = Some(day(1));
        assert_eq!(registered(pledge).eligible_value(), cny("70000"));

        let mut insurance = request(SecurityKind::CreditInsurance);
        insurance.deductible = Some(cny("10000"));
        insurance.share_covered_percent = Some(Decimal::from(90));
        // (100,000 − 10,000) × 90 % = 81,000.
        assert_eq!(registered(insurance).eligible_value(), cny("81000"));

        let mut small = request(SecurityKind::CreditInsurance);
        small.deductible = Some(cny("150000"));
        assert_eq!(registered(small).eligible_value(), cny("0"));
    }

    #[test]
    fn a_registration_is_checked_field_by_field() {
        let mut guarantee = request(SecurityKind::ThirdPartyGuarantee);
        guarantee.amount = Some(cny("-1"));
        guarantee.haircut_percent = Decimal::from(120);
        guarantee.provider = String::new();
        guarantee.deductible = Some(cny("1"));
        let error = guarantee.check(day(1), "").unwrap_err();
        let text = format!("{error:?}");
        for field in [
            "amount",
            "haircut_percent",
            "provider",
            "guarantor_customer_id",
            "deductible",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }

        let mut mortgage = request(SecurityKind::Mortgage);
        mortgage.valid_until = None;
        assert!(
            format!("{:?}", mortgage.check(day(1), "").unwrap_err()).contains("valuation_date")
        );

        let mut insurance = request(SecurityKind::CreditInsurance);
        insurance.valid_until = None;
        assert!(format!("{:?}", insurance.check(day(1), "").unwrap_err()).contains("valid_until"));

        let mut own = request(SecurityKind::ThirdPartyGuarantee);
        own.guarantor_customer_id = Some("C1".to_owned());
        assert!(format!("{:?}", own.check(day(1), "").unwrap_err()).contains("its own debt"));
    }

    #[test]
    fn a_security_counts_while_active_and_valid_and_stops_the_day_after_its_end() {
        let mut security = registered(request(SecurityKind::BankGuarantee));
        assert!(!security.counts_on(day(2)), "pending");
        security.settle_pending(true, now());
        assert_eq!(security.status, SecurityStatus::Active);
        assert!(security.counts_on(day(1)));
        assert!(security.counts_on(day(31)));
        assert!(!security.counts_on(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()));
        assert_eq!(
            security.counts_until(),
            Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap())
        );
        assert!(
            !security.expire(day(31), now()),
            "still valid on its last day"
        );
        assert!(security.expire(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(), now()));
        assert_eq!(security.status, SecurityStatus::Expired);
    }

    #[test]
    fn a_lower_valuation_applies_at_once_and_a_higher_one_or_a_release_waits() {
        let mut security = registered(request(SecurityKind::BankGuarantee));
        security.settle_pending(true, now());
        let chain = test_chain(Actor::named("ana"));
        let lower = ChangeAction::Revalue {
            amount: cny("80000"),
            valuation_date: day(2),
        };
        assert_eq!(
            security.request_change(lower, "amended".to_owned(), chain.clone(), now()),
            Ok(ChangeEffect::Applied)
        );
        assert_eq!(security.amount, cny("80000"));
        assert_eq!(security.valuations.len(), 2);

        let higher = ChangeAction::Revalue {
            amount: cny("90000"),
            valuation_date: day(3),
        };
        assert_eq!(
            security.request_change(higher, String::new(), chain.clone(), now()),
            Ok(ChangeEffect::Pending)
        );
        assert_eq!(security.amount, cny("80000"), "not before approval");
        assert_eq!(
            security.request_change(ChangeAction::Release, String::new(), chain.clone(), now()),
            Err(ChangeRefused::ChangePending)
        );
        security.settle_pending(true, now());
        assert_eq!(security.amount, cny("90000"));

        security
            .request_change(ChangeAction::Release, String::new(), chain, now())
            .unwrap();
        assert_eq!(
            security.status,
            SecurityStatus::Active,
            "counts until approved"
        );
        security.settle_pending(false, now());
        assert_eq!(
            security.status,
            SecurityStatus::Active,
            "a rejected release keeps it"
        );
    }
}
