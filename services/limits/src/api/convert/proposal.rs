//! ProposeLimit on the wire: the requested currency read, the proposal and its components
//! shown as the contract's response.

use credit_core::{Currency, ServiceError};
use credit_proto::v1 as pb;

use crate::app::ProposalView;
use crate::domain::proposal::{Component, ComponentType};

fn component_type_to_proto(kind: ComponentType) -> pb::LimitProposalComponentType {
    match kind {
        ComponentType::GradeCap => pb::LimitProposalComponentType::GradeCap,
        ComponentType::EquityShare => pb::LimitProposalComponentType::EquityShare,
        ComponentType::RevenueMultiple => pb::LimitProposalComponentType::RevenueMultiple,
    }
}

pub fn component_to_proto(component: &Component) -> pb::LimitProposalComponent {
    pb::LimitProposalComponent {
        component_type: component_type_to_proto(component.component_type) as i32,
        amount: component.amount.map(Into::into),
        basis: component.basis.map(Into::into),
        factor: component
            .factor
            .map(|factor| factor.normalize().to_string())
            .unwrap_or_default(),
        binding: component.binding,
        explanation: component.explanation.clone(),
    }
}

/// The currency the caller asks the proposal in; none when the request leaves it empty.
pub fn requested_currency(
    wire: &pb::ProposeLimitRequest,
) -> Result<Option<Currency>, ServiceError> {
    match wire.currency.trim() {
        "" => Ok(None),
        code => Ok(Some(Currency::parse(code).map_err(|error| {
            ServiceError::invalid("currency", error.to_string())
        })?)),
    }
}

pub fn proposal_to_proto(view: ProposalView) -> pb::ProposeLimitResponse {
    pb::ProposeLimitResponse {
        proposed_amount: view.proposal.proposed_amount.map(Into::into),
        components: view
            .proposal
            .components
            .iter()
            .map(component_to_proto)
            .collect(),
        rating_id: view.rating_id,
        grade: view.grade,
        statement_id: view.statement_id,
        current_limit: view.current_limit.map(Into::into),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::NaiveDate;
    use credit_core::Money;

    use super::*;
    use crate::domain::policy::CreditPolicy;
    use crate::domain::proposal::{LatestStatement, ProposalCurrency, propose};

    fn money(amount: &str, currency: &str) -> Money {
        Money::parse(amount, currency).unwrap()
    }

    /// An annual CNY statement ending 2025-12-31.
    fn statement(equity: &str, revenue: &str, months: u32) -> LatestStatement {
        LatestStatement {
            statement_id: "fst_1".into(),
            period_end: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
            period_months: months,
            equity: money(equity, "CNY"),
            revenue: money(revenue, "CNY"),
        }
    }

    fn in_cny() -> ProposalCurrency {
        ProposalCurrency::choose(Currency::parse("CNY").ok(), None, None, None)
    }

    #[test]
    fn the_wire_form_shows_every_component() {
        let policy = CreditPolicy::default();
        let figures = statement("-1.00", "1200.00", 12);
        let proposal = propose(&policy, "B", Some(&figures), &in_cny());
        let wire: Vec<pb::LimitProposalComponent> =
            proposal.components.iter().map(component_to_proto).collect();
        assert_eq!(wire[0].factor, "");
        assert_eq!(wire[1].factor, "20");
        assert_eq!(wire[1].amount, None);
        assert_eq!(wire[2].factor, "1.5");
        // 1,200 / 12 = 100 × 1.5 = 150.
        assert_eq!(wire[2].amount.as_ref().unwrap().amount, "150.00");
        assert!(wire[2].binding);
    }
}
