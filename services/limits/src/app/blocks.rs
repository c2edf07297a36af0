//! Credit blocks: set and cleared by credit managers, or by overdue receivables past the
//! grade's tolerance; a blocked customer's orders are declined.

use crate::app::system_actor;
use chrono::Utc;
use credit_core::{Principal, ServiceError};
use credit_proto::v1 as pb;

use crate::api::convert::credit_block_to_proto;
use crate::domain::limits::{Actor, CreditBlock, Scope};
use credit_proto::service_names::LIMITS;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;

use super::HotPath;

fn block_event(principal: &Principal, customer_id: &str, blocked: bool, reason: &str) -> pb::Event {
    credit_block_event(
        &Actor::of(principal),
        customer_id,
        pb::CreditBlockType::Manual,
        blocked,
        reason,
    )
}

pub(crate) fn credit_block_event(
    actor: &Actor,
    customer_id: &str,
    block_type: pb::CreditBlockType,
    blocked: bool,
    reason: &str,
) -> pb::Event {
    let code = match block_type {
        pb::CreditBlockType::Overdue => CreditBlock::OVERDUE,
        pb::CreditBlockType::FxRateMissing => CreditBlock::FX_RATE_MISSING,
        _ => CreditBlock::MANUAL,
    };
    pb::Event {
        aggregate_id: customer_id.to_owned(),
        customer_id: customer_id.to_owned(),
        actor: Some(pb::Actor::from(actor)),
        ..new_event(
            LIMITS,
            Payload::CreditBlockChanged(pb::CreditBlockChanged {
                customer_id: customer_id.to_owned(),
                block_type: block_type as i32,
                blocked,
                reason: Some(pb::Reason {
                    code: code.to_owned(),
                    message: reason.to_owned(),
                    metadata: Default::default(),
                }),
            }),
        )
    }
}

impl HotPath {
    /// Sets the customer's manual credit block (a no-op when it is set); every order of the
    /// customer is referred (CREDIT_BLOCK) from the next decision on.
    pub async fn set_block(
        &self,
        principal: &Principal,
        request: &pb::SetCreditBlockRequest,
    ) -> Result<pb::SetCreditBlockResponse, ServiceError> {
        let (customer_id, reason) = self
            .block_request(&request.customer_id, &request.reason)
            .await?;
        let block = CreditBlock {
            customer_id: customer_id.clone(),
            block_type: CreditBlock::MANUAL.to_owned(),
            reason: reason.clone(),
            set_at: Utc::now(),
            set_by: Actor::of(principal),
            source_event_id: String::new(),
        };
        let event = block_event(principal, &customer_id, true, &reason);
        self.limits
            .set_block(&block, &event)
            .await
            .map_err(ServiceError::from)?;
        // The cached profile carries the old flag; the next decision rebuilds it.
        self.invalidate(&Scope::Customer(customer_id.clone())).await;
        Ok(pb::SetCreditBlockResponse {
            blocks: self.block_list(&customer_id).await?,
        })
    }

    /// Clears the customer's manual credit block (a no-op when none is set). Other kinds are
    /// cleared by the events that set them.
    pub async fn clear_block(
        &self,
        principal: &Principal,
        request: &pb::ClearCreditBlockRequest,
    ) -> Result<pb::ClearCreditBlockResponse, ServiceError> {
        match pb::CreditBlockType::try_from(request.block_type) {
            Ok(pb::CreditBlockType::Unspecified | pb::CreditBlockType::Manual) => {}
            Ok(other) => {
                return Err(ServiceError::failed_precondition(
                    "BLOCK_NOT_MANUAL",
                    format!(
                        "{} blocks are cleared by the events that set them",
                        other.as_str_name()
                    ),
                ));
            }
            Err(_) => {
                return Err(ServiceError::invalid(
                    "block_type",
                    "is not a credit block type",
                ));
            }
        }
        let (customer_id, reason) = self
            .block_request(&request.customer_id, &request.reason)
            .await?;
        let event = block_event(principal, &customer_id, false, &reason);
        self.limits
            .clear_block(&customer_id, CreditBlock::MANUAL, &event)
            .await
            .map_err(ServiceError::from)?;
        self.invalidate(&Scope::Customer(customer_id.clone())).await;
        self.referrals_may_have_cleared(&customer_id, "the credit block was lifted");
        Ok(pb::ClearCreditBlockResponse {
            blocks: self.block_list(&customer_id).await?,
        })
    }

    async fn block_request(
        &self,
        customer_id: &str,
        reason: &str,
    ) -> Result<(String, String), ServiceError> {
        let mut violations = credit_core::Violations::new();
        let customer_id = customer_id.trim();
        if customer_id.is_empty() || customer_id.len() > 100 {
            violations.add("customer_id", "is required, at most 100 characters");
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 1000 {
            violations.add("reason", "is required, at most 1000 characters");
        }
        violations.finish()?;
        self.limits
            .customer(customer_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))?;
        Ok((customer_id.to_owned(), reason.to_owned()))
    }

    async fn block_list(&self, customer_id: &str) -> Result<Vec<pb::CreditBlock>, ServiceError> {
        Ok(self
            .limits
            .blocks(customer_id)
            .await
            .map_err(ServiceError::from)?
            .iter()
            .map(credit_block_to_proto)
            .collect())
    }

    /// After an InvoiceOverdue: sets the OVERDUE block when the customer's oldest overdue days
    /// pass the tolerance of its grade, clears it when they are back within, and rebuilds the
    /// cached profile (which carries the days and the block).
    pub async fn overdue_changed(
        &self,
        customer_id: &str,
        source_event_id: &str,
    ) -> Result<(), ServiceError> {
        let Some(facts) = self
            .limits
            .customer(customer_id)
            .await
            .map_err(ServiceError::from)?
        else {
            return Ok(());
        };
        let policy = self.stored_policy().await?;
        let grade = facts.rating.as_ref().map(|rating| rating.grade.as_str());
        let tolerance = policy.for_grade(grade).0.overdue_tolerance_days;
        let system = system_actor();
        let days = facts.oldest_overdue_days;
        if days > tolerance {
            let reason = format!("{days} days overdue, beyond the tolerance of {tolerance} days");
            let block = CreditBlock {
                customer_id: customer_id.to_owned(),
                block_type: CreditBlock::OVERDUE.to_owned(),
                reason: reason.clone(),
                set_at: Utc::now(),
                set_by: system.clone(),
                source_event_id: source_event_id.to_owned(),
            };
            let event = credit_block_event(
                &system,
                customer_id,
                pb::CreditBlockType::Overdue,
                true,
                &reason,
            );
            self.limits
                .set_block(&block, &event)
                .await
                .map_err(ServiceError::from)?;
        } else {
            let reason = format!("{days} days overdue, within the tolerance of {tolerance} days");
            let event = credit_block_event(
                &system,
                customer_id,
                pb::CreditBlockType::Overdue,
                false,
                &reason,
            );
            self.limits
                .clear_block(customer_id, CreditBlock::OVERDUE, &event)
                .await
                .map_err(ServiceError::from)?;
        }
        self.invalidate(&Scope::Customer(customer_id.to_owned()))
            .await;
        Ok(())
    }
}
