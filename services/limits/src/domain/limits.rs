//! Credit limits and their four-eyes approval.
//!
//! A maker requests a limit for a customer, a corporate group, or the portfolio cap (the total
//! of granted customer limits, 总体授信额度); a checker — another person whose approval
//! authority covers the amount — approves or rejects it. A granted permanent limit replaces
//! the scope's previous one; a temporary limit overrides it until it expires.

use chrono::{DateTime, Utc};
use credit_core::approval::{Chain, ChainRule, Conditions, DecisionKind, StepRule};
use credit_core::{Money, Role};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What a limit applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    Customer(String),
    Group(String),
    /// The cap on the total of granted customer limits.
    Portfolio,
}

impl Scope {
    /// The stored key: `customer:<id>`, `group:<id>`, `portfolio`.
    pub fn key(&self) -> String {
        match self {
            Scope::Customer(id) => format!("customer:{id}"),
            Scope::Group(id) => format!("group:{id}"),
            Scope::Portfolio => "portfolio".to_owned(),
        }
    }
}

/// Who did something, as approval records show it: the suite's one actor record. The id
/// decides maker-checker; the name is what people read.
pub use credit_core::Actor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStatus {
    Pending,
    Approved,
    Rejected,
}

impl RequestStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestStatus::Pending => "PENDING",
            RequestStatus::Approved => "APPROVED",
            RequestStatus::Rejected => "REJECTED",
        }
    }
}

/// A maker's request for a limit, and its decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitRequest {
    pub id: String,
    pub scope: Scope,
    pub amount: Money,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub temporary: bool,
    pub reason: String,
    pub status: RequestStatus,
    /// The scope's effective limit when the request was made.
    pub current_amount: Option<Money>,
    pub requested_by: Actor,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<Actor>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: String,
    /// The limit granted by the approval.
    pub limit_id: Option<String>,
    /// The policy rule that approved it without a checker.
    #[serde(default)]
    pub auto_approval_rule_id: Option<String>,
    /// The approval chain the matrix chose; `None` for requests an auto-approval rule
    /// approved and for requests stored before chains were kept ([`LimitRequest::chain`]).
    #[serde(default, rename = "chain", skip_serializing_if = "Option::is_none")]
    pub approval_chain: Option<Chain>,
}

impl LimitRequest {
    /// The request's chain; a pending request stored before chains were kept gets the one
    /// step it had then: a credit manager whose authority covers the amount.
    pub fn chain(&self) -> Chain {
        self.approval_chain.clone().unwrap_or_else(|| {
            let rule = ChainRule {
                rule_id: "before-approval-chains".to_owned(),
                kind: DecisionKind::LimitRequest,
                description: "a request made before approval chains: one checker".to_owned(),
                conditions: Conditions::default(),
                steps: vec![StepRule {
                    name: "a credit manager approves within authority".to_owned(),
                    roles: [Role::CreditManager].into_iter().collect(),
                    needs_authority: true,
                    inform_only: false,
                    escalate_after_seconds: None,
                    escalate_to: Default::default(),
                }],
            };
            Chain::start(&rule, 0, self.requested_by.clone(), Some(self.amount))
        })
    }

    /// How many verdicts its chain holds: the stored revision a decision must still find.
    pub fn chain_revision(&self) -> i64 {
        self.approval_chain.as_ref().map_or(0, |chain| {
            i64::try_from(chain.trail.len()).unwrap_or(i64::MAX)
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitStatus {
    Active,
    /// Replaced by a later permanent limit of the same scope.
    Superseded,
}

/// A granted limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditLimit {
    pub id: String,
    pub scope: Scope,
    pub amount: Money,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub temporary: bool,
    pub status: LimitStatus,
    pub limit_request_id: String,
    pub requested_by: Actor,
    pub approved_by: Actor,
    pub granted_at: DateTime<Utc>,
    pub reason: String,
    /// The policy rule that approved it without a checker.
    #[serde(default)]
    pub auto_approval_rule_id: Option<String>,
}

impl CreditLimit {
    /// In force at `now`: active, started, not expired.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.status == LimitStatus::Active
            && self.valid_from <= now
            && self.valid_until.is_none_or(|until| until > now)
    }
}

/// The limit that applies to a scope at `now`: the newest temporary limit in force, else the
/// newest permanent one.
pub fn effective_limit(limits: &[CreditLimit], now: DateTime<Utc>) -> Option<&CreditLimit> {
    let newest = |temporary: bool| {
        limits
            .iter()
            .filter(|limit| limit.temporary == temporary && limit.in_force(now))
            .max_by_key(|limit| limit.granted_at)
    };
    newest(true).or_else(|| newest(false))
}

/// One line of the limit change log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: String,
    pub scope: Scope,
    pub limit_id: String,
    pub limit_request_id: String,
    pub previous_amount: Option<Money>,
    pub amount: Money,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub temporary: bool,
    pub requested_by: Actor,
    pub approved_by: Actor,
    pub reason: String,
    pub decision_reason: String,
    pub changed_at: DateTime<Utc>,
    /// The policy rule that approved it without a checker.
    #[serde(default)]
    pub auto_approval_rule_id: Option<String>,
}

/// A limit as a maker asks for it, checked (see `api::convert::parse_limit_request`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewLimitRequest {
    pub scope: Scope,
    pub amount: Money,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub temporary: bool,
    pub reason: String,
}

/// A checker's decision on a limit request, as DecideLimitRequest states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitDecision {
    pub limit_request_id: String,
    pub approving: bool,
    pub reason: String,
}

/// Why a decision on a limit may not be taken (the API answers each with its own reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionRefused {
    /// Granting would take the customer limits past the portfolio cap.
    #[error(
        "granting it would bring the customer limits to {total} {currency}, above the portfolio cap of {cap}"
    )]
    PortfolioCapExceeded {
        total: Decimal,
        currency: credit_core::Currency,
        cap: Money,
    },
}

/// The limit in force at `now` of each scope among `limits`.
pub fn limits_in_force(limits: Vec<CreditLimit>, now: DateTime<Utc>) -> Vec<CreditLimit> {
    let mut by_scope: std::collections::HashMap<Scope, Vec<CreditLimit>> =
        std::collections::HashMap::new();
    for limit in limits {
        by_scope.entry(limit.scope.clone()).or_default().push(limit);
    }
    by_scope
        .values()
        .filter_map(|limits| effective_limit(limits, now).cloned())
        .collect()
}

/// Checks granting `amount` to `scope` against the portfolio cap in force at `now`, from the
/// portfolio's limits and every customer limit not superseded (each scope's limit in force
/// counts). The decision's transaction calls it again under the portfolio lock, so two
/// approvals at once cannot both pass a cap that has room for one.
pub fn check_portfolio(
    portfolio: &[CreditLimit],
    customer_limits: Vec<CreditLimit>,
    scope: &Scope,
    amount: &Money,
    now: DateTime<Utc>,
) -> Result<(), DecisionRefused> {
    let Some(cap) = effective_limit(portfolio, now) else {
        return Ok(());
    };
    let in_force = limits_in_force(customer_limits, now);
    let in_cap_currency: Vec<&CreditLimit> = in_force
        .iter()
        .filter(|limit| limit.amount.currency() == cap.amount.currency())
        .collect();
    let total = in_cap_currency
        .iter()
        .try_fold(Decimal::ZERO, |total, limit| {
            total.checked_add(limit.amount.amount())
        })
        .unwrap_or(Decimal::MAX);
    let current = in_cap_currency
        .iter()
        .find(|limit| &limit.scope == scope)
        .map(|limit| &limit.amount);
    check_portfolio_cap(Some(cap), total, current, scope, amount)
}

/// The total of granted customer limits after replacing `scope`'s current limit with
/// `amount`, against the portfolio cap. Limits in another currency than the cap are outside
/// the cap's total (the FX rates table of limits converts them once it lands).
pub fn check_portfolio_cap(
    cap: Option<&CreditLimit>,
    granted_customer_total: Decimal,
    current_of_scope: Option<&Money>,
    scope: &Scope,
    amount: &Money,
) -> Result<(), DecisionRefused> {
    let (Some(cap), Scope::Customer(_)) = (cap, scope) else {
        return Ok(());
    };
    if cap.amount.currency() != amount.currency() {
        return Ok(());
    }
    let replaced = current_of_scope
        .filter(|current| current.currency() == cap.amount.currency())
        .map_or(Decimal::ZERO, Money::amount);
    // Checked: a total beyond Decimal's range is certainly above any cap.
    let after = granted_customer_total
        .checked_sub(replaced)
        .and_then(|total| total.checked_add(amount.amount()))
        .unwrap_or(Decimal::MAX);
    if after > cap.amount.amount() {
        return Err(DecisionRefused::PortfolioCapExceeded {
            total: after,
            currency: cap.amount.currency(),
            cap: cap.amount,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)] // fixed test figures
mod tests {
    use super::*;
    use chrono::Duration;
    use credit_core::Principal;
    use credit_core::approval::{StepRefused, Verdict};

    fn money(amount: &str) -> Money {
        Money::parse(amount, "CNY").unwrap()
    }

    fn person(id: &str) -> Actor {
        Actor {
            principal_id: id.into(),
            person_id: String::new(),
            name: id.into(),
            roles: vec!["CREDIT_MANAGER".into()],
        }
    }

    fn limit(
        amount: &str,
        temporary: bool,
        granted_minutes_ago: i64,
        valid_for_minutes: Option<i64>,
    ) -> CreditLimit {
        let now = Utc::now();
        CreditLimit {
            id: format!("lim-{amount}"),
            scope: Scope::Customer("c1".into()),
            amount: money(amount),
            valid_from: now - Duration::minutes(granted_minutes_ago),
            valid_until: valid_for_minutes.map(|minutes| now + Duration::minutes(minutes)),
            temporary,
            status: LimitStatus::Active,
            limit_request_id: "req".into(),
            requested_by: person("maker"),
            approved_by: person("checker"),
            granted_at: now - Duration::minutes(granted_minutes_ago),
            reason: String::new(),
            auto_approval_rule_id: None,
        }
    }

    #[test]
    fn a_temporary_limit_overrides_the_permanent_one_until_it_expires() {
        let now = Utc::now();
        let permanent = limit("100000", false, 60, None);
        let temporary = limit("150000", true, 10, Some(30));
        let expired = limit("999999", true, 120, Some(-5));
        let limits = [permanent.clone(), temporary.clone(), expired];
        assert_eq!(
            effective_limit(&limits, now).unwrap().amount,
            money("150000")
        );
        let later = now + Duration::minutes(31);
        assert_eq!(
            effective_limit(&limits, later).unwrap().amount,
            money("100000")
        );
    }

    #[test]
    fn four_eyes_and_authority() {
        let request = LimitRequest {
            id: "lr1".into(),
            scope: Scope::Customer("c1".into()),
            amount: money("500000"),
            valid_from: Utc::now(),
            valid_until: None,
            temporary: false,
            reason: "new customer".into(),
            status: RequestStatus::Pending,
            current_amount: None,
            requested_by: person("maker"),
            requested_at: Utc::now(),
            decided_by: None,
            decided_at: None,
            decision_reason: String::new(),
            limit_id: None,
            auto_approval_rule_id: None,
            approval_chain: None,
        };
        // A request stored before chains were kept: one checker, as then.
        let decide = |checker: &Principal, verdict: Verdict| {
            request
                .chain()
                .decide(checker, 0, verdict, "", Utc::now())
                .map(drop)
        };
        let principal = |id: &str, authority: &str, roles: &[Role]| Principal {
            id: id.into(),
            person_id: format!("psn_{id}"),
            name: id.into(),
            roles: roles.iter().copied().collect(),
            approval_authority: Some(money(authority)),
        };
        let maker = principal("maker", "10000000", &[Role::CreditManager]);
        let small = principal("small", "100000", &[Role::CreditManager]);
        let big = principal("big", "1000000", &[Role::CreditManager]);
        let admin = principal("maker", "0", &[Role::Admin]);
        assert!(matches!(
            decide(&maker, Verdict::Approve),
            Err(StepRefused::SamePerson)
        ));
        assert!(matches!(
            decide(&admin, Verdict::Approve),
            Err(StepRefused::SamePerson)
        ));
        // The maker's second token is the same person.
        let second_token = Principal {
            id: "maker-phone".into(),
            ..principal("maker", "10000000", &[Role::CreditManager])
        };
        assert!(matches!(
            decide(&second_token, Verdict::Approve),
            Err(StepRefused::SamePerson)
        ));
        assert!(matches!(
            decide(&small, Verdict::Approve),
            Err(StepRefused::AuthorityInsufficient { .. })
        ));
        assert!(
            decide(&small, Verdict::Reject).is_ok(),
            "rejecting needs no authority"
        );
        assert!(decide(&big, Verdict::Approve).is_ok());
    }

    #[test]
    fn the_portfolio_cap_counts_customer_limits_with_the_replaced_one_taken_out() {
        let cap = CreditLimit {
            scope: Scope::Portfolio,
            ..limit("1000000", false, 60, None)
        };
        let customer = Scope::Customer("c1".into());
        let total = Decimal::new(900_000, 0);
        // Raising c1 from 100,000 to 200,000: 900,000 − 100,000 + 200,000 = 1,000,000 — at the cap.
        assert!(
            check_portfolio_cap(
                Some(&cap),
                total,
                Some(&money("100000")),
                &customer,
                &money("200000")
            )
            .is_ok()
        );
        let over = check_portfolio_cap(
            Some(&cap),
            total,
            Some(&money("100000")),
            &customer,
            &money("200000.01"),
        );
        assert!(matches!(
            over,
            Err(DecisionRefused::PortfolioCapExceeded { .. })
        ));
        assert!(check_portfolio_cap(None, total, None, &customer, &money("5000000")).is_ok());
        assert!(
            check_portfolio_cap(
                Some(&cap),
                total,
                None,
                &Scope::Group("g".into()),
                &money("5000000")
            )
            .is_ok()
        );
    }
}

/// A credit block on a customer: while any is set, every order is referred (CREDIT_BLOCK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditBlock {
    pub customer_id: String,
    /// MANUAL, OVERDUE or CUSTOMER_STATUS (the CreditBlockType names without prefix).
    pub block_type: String,
    /// The person's text for a manual block; the days or status for the others.
    pub reason: String,
    pub set_at: DateTime<Utc>,
    pub set_by: Actor,
    /// The event that set an event-driven block; empty for a manual one.
    pub source_event_id: String,
}

impl CreditBlock {
    pub const MANUAL: &'static str = "MANUAL";
    pub const OVERDUE: &'static str = "OVERDUE";
    /// A receivable waits for an FX rate (see `receivables`); set and lifted by limits.
    pub const FX_RATE_MISSING: &'static str = "FX_RATE_MISSING";
}
