//! Who is calling, and what each role may call.
//!
//! Every request carries a bearer token; the runtime turns it into a [`Principal`] and checks
//! the service's [`AccessPolicy`] before a handler runs. Handlers read the principal for the
//! rules that need a person: maker-checker and approval authority.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use crate::money::Money;

/// The roles of the credit process. A principal may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Order-entry systems: authorize, capture and release orders.
    OrderEntry,
    /// Credit analysts: maintain credit files, rate customers, propose limits and overrides.
    Analyst,
    /// Credit managers: approve limits, overrides, referrals and write-offs within authority.
    CreditManager,
    /// Collectors: work the worklist, log contacts, record promises and disputes.
    Collector,
    /// Administrators: everything, including models, policies and tokens.
    Admin,
    /// The suite's services calling each other: the few reads a peer needs, nothing else.
    Service,
    /// The business unit (业务部门): applies for limits, reads its customers' position.
    Sales,
    /// Finance (财务部门): sizes limits and verifies the figures as an approval step.
    Finance,
    /// Risk management (风险管理部门): reviews requests as an approval step.
    Risk,
    /// The general manager (总经理): approves within their authority.
    GeneralManager,
    /// The board (董事会): informed of the decisions filed with it (备案).
    Board,
}

impl Role {
    pub const ALL: [Role; 11] = [
        Role::OrderEntry,
        Role::Analyst,
        Role::CreditManager,
        Role::Collector,
        Role::Admin,
        Role::Service,
        Role::Sales,
        Role::Finance,
        Role::Risk,
        Role::GeneralManager,
        Role::Board,
    ];

    /// The people who decide steps of approval chains (every role but systems').
    pub const DECIDERS: [Role; 8] = [
        Role::Analyst,
        Role::CreditManager,
        Role::Collector,
        Role::Sales,
        Role::Finance,
        Role::Risk,
        Role::GeneralManager,
        Role::Board,
    ];

    /// The stored and displayed name, as in the contract's `Role` enum without its prefix.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::OrderEntry => "ORDER_ENTRY",
            Role::Analyst => "ANALYST",
            Role::CreditManager => "CREDIT_MANAGER",
            Role::Collector => "COLLECTOR",
            Role::Admin => "ADMIN",
            Role::Service => "SERVICE",
            Role::Sales => "SALES",
            Role::Finance => "FINANCE",
            Role::Risk => "RISK",
            Role::GeneralManager => "GENERAL_MANAGER",
            Role::Board => "BOARD",
        }
    }
}

/// Stored by name, so that records read the same whatever the enum's order.
impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role '{0}'; expected one of ORDER_ENTRY, ANALYST, CREDIT_MANAGER, COLLECTOR, ADMIN, SERVICE, SALES, FINANCE, RISK, GENERAL_MANAGER, BOARD"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_uppercase().replace('-', "_");
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == wanted)
            .ok_or_else(|| UnknownRole(text.to_owned()))
    }
}

/// An authenticated caller: a person or a system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Id of the token this call presented (`prn_…`); each token has its own.
    pub id: String,
    /// The person (or system) behind the token (`psn_…`, `system:…`): the same for every
    /// token of one person, so that a second or rotated token is still the same pair of eyes.
    pub person_id: String,
    /// Who it is, as shown in audit trails ("alice", "erp-order-entry").
    pub name: String,
    pub roles: BTreeSet<Role>,
    /// The largest amount this principal may approve (limits, referrals, write-offs), in the
    /// suite's base currency; `None` means no approval authority.
    pub approval_authority: Option<Money>,
}

impl Principal {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }

    /// Whether this principal may approve `amount`. ADMIN has no ceiling. Amounts in another
    /// currency than the authority must be converted by the caller first; a mismatch is refused.
    pub fn may_approve(&self, amount: &Money) -> bool {
        if self.is_admin() {
            return true;
        }
        match &self.approval_authority {
            Some(authority) => {
                authority.currency() == amount.currency() && amount.amount() <= authority.amount()
            }
            None => false,
        }
    }
}

/// Which roles may call which RPC of a service, by method name (`Authorize`). ADMIN may call
/// everything. A method missing from the table is refused to everyone but ADMIN, so a new RPC
/// is closed until somebody decides who may use it.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    /// Full service name, `credit.v1.LimitService`.
    service: &'static str,
    methods: HashMap<&'static str, &'static [Role]>,
}

impl AccessPolicy {
    pub fn new(service: &'static str, rules: &[(&'static str, &'static [Role])]) -> Self {
        Self {
            service,
            methods: rules.iter().copied().collect(),
        }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The method names the table lists.
    pub fn methods(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.methods.keys().copied()
    }

    pub fn allows(&self, principal: &Principal, method: &str) -> bool {
        if principal.is_admin() {
            return true;
        }
        self.methods
            .get(method)
            .is_some_and(|roles| roles.iter().any(|role| principal.has_role(*role)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role], authority: Option<&str>) -> Principal {
        Principal {
            id: "p1".into(),
            person_id: "psn_1".into(),
            name: "alice".into(),
            roles: roles.iter().copied().collect(),
            approval_authority: authority.map(|amount| Money::parse(amount, "CNY").unwrap()),
        }
    }

    #[test]
    fn roles_parse_from_their_names() {
        assert_eq!("credit_manager".parse::<Role>(), Ok(Role::CreditManager));
        assert_eq!("ORDER-ENTRY".parse::<Role>(), Ok(Role::OrderEntry));
        assert!("superuser".parse::<Role>().is_err());
    }

    #[test]
    fn policy_admits_listed_roles_and_admin_only() {
        const ORDER_ROLES: &[Role] = &[Role::OrderEntry];
        let policy = AccessPolicy::new("credit.v1.LimitService", &[("Authorize", ORDER_ROLES)]);
        assert!(policy.allows(&principal(&[Role::OrderEntry], None), "Authorize"));
        assert!(!policy.allows(&principal(&[Role::Collector], None), "Authorize"));
        assert!(policy.allows(&principal(&[Role::Admin], None), "Authorize"));
        assert!(!policy.allows(&principal(&[Role::OrderEntry], None), "NotInTheTable"));
        assert!(policy.allows(&principal(&[Role::Admin], None), "NotInTheTable"));
    }

    #[test]
    fn approval_authority_covers_amounts_up_to_it() {
        let manager = principal(&[Role::CreditManager], Some("100000.00"));
        assert!(manager.may_approve(&Money::parse("100000.00", "CNY").unwrap()));
        assert!(!manager.may_approve(&Money::parse("100000.01", "CNY").unwrap()));
        assert!(!manager.may_approve(&Money::parse("10", "USD").unwrap()));
        assert!(!principal(&[Role::Analyst], None).may_approve(&Money::parse("1", "CNY").unwrap()));
        assert!(
            principal(&[Role::Admin], None)
                .may_approve(&Money::parse("1000000000", "CNY").unwrap())
        );
    }
}
