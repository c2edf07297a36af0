//! The story's orders: checked, authorized (approved, referred and released, declined), and the
//! customer's position read back from limits.

use std::io::Write;
use std::time::Instant;

use credit_proto::v1 as pb;
use rust_decimal::Decimal;
use tonic::Code;

use credit_proto::v1::approval_service_client::ApprovalServiceClient;

use super::{
    DEMO_CURRENCY, DemoError, EVENT_DEADLINE, Order, OrderOutcome, Position, Story, bearer,
    customer_scope, decision_name, figures, optional, reason_codes, share, show,
};

impl<W: Write> Story<'_, W> {
    pub(super) async fn check(
        &mut self,
        customer_id: &str,
        amount: Decimal,
    ) -> Result<pb::CheckCreditResponse, tonic::Status> {
        self.orders
            .check_credit(pb::CheckCreditRequest {
                customer_id: customer_id.into(),
                amount: self.money(amount),
                order_id: "demo-what-if".into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Waits until CheckCredit for `amount` satisfies `ready` (reason codes of the answer).
    pub(super) async fn wait_for_check(
        &mut self,
        customer_id: &str,
        amount: Decimal,
        waiting_for: &'static str,
        ready: impl Fn(pb::AuthorizationDecision, &[String]) -> bool,
    ) -> Result<pb::CheckCreditResponse, DemoError> {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            let last = match self.check(customer_id, amount).await {
                Ok(answer) => {
                    let codes = reason_codes(&answer.reasons);
                    if ready(answer.decision(), &codes) {
                        return Ok(answer);
                    }
                    format!("{} {codes:?}", decision_name(answer.decision()))
                }
                Err(status) if status.code() == Code::NotFound => status.message().to_owned(),
                Err(status) => return Err(self.call_error("CheckCredit", &status)),
            };
            self.pause(deadline, waiting_for, || last).await?;
        }
    }

    pub(super) async fn authorize(
        &mut self,
        customer_id: &str,
        number: u32,
        amount: Decimal,
    ) -> Result<(pb::AuthorizeResponse, OrderOutcome), DemoError> {
        let order_id = format!("SO-{}-{number}", self.run_id);
        let result = self
            .orders
            .authorize(pb::AuthorizeRequest {
                customer_id: customer_id.into(),
                order_id: order_id.clone(),
                amount: self.money(amount),
                idempotency_key: order_id.clone(),
                hold_ttl: None,
            })
            .await;
        let answer = self.failed("Authorize", result)?;
        let outcome = OrderOutcome {
            order_id: order_id.clone(),
            amount,
            decision: answer.decision(),
            reasons: reason_codes(&answer.reasons),
            released: false,
        };
        let mut text = format!(
            "{order_id} for {:.2} {DEMO_CURRENCY}: {}",
            amount,
            decision_name(answer.decision())
        );
        match answer.decision() {
            pb::AuthorizationDecision::Approved => {
                text.push_str(&format!(", hold {}", answer.hold_id));
            }
            pb::AuthorizationDecision::Referred => {
                text.push_str(&format!(", referral {}", answer.referral_id));
            }
            _ => {}
        }
        text.push_str(&format!(
            "; exposure {}, available {}",
            show(answer.exposure.as_ref()),
            show(answer.available.as_ref())
        ));
        self.line(&text)?;
        for reason in &answer.reasons {
            self.detail(&format!("{}: {}", reason.code, figures(reason)))?;
        }
        Ok((answer, outcome))
    }

    pub(super) async fn authorize_three(
        &mut self,
        customer_id: &str,
        limit: Decimal,
    ) -> Result<[Order; 3], DemoError> {
        let within = share(limit, 60);
        let over_within_band = share(limit, 45);
        let far_beyond = share(limit, 50);

        self.begin("order within limit");
        // The customer's ACTIVE status reaches limits as intake's event.
        self.wait_for_check(
            customer_id,
            within,
            "limits to approve the first order",
            |decision, _| decision == pb::AuthorizationDecision::Approved,
        )
        .await?;
        let (answer, outcome) = self.authorize(customer_id, 1, within).await?;
        if outcome.decision != pb::AuthorizationDecision::Approved {
            return Err(self.unexpected(format!("expected APPROVED, got {:?}", outcome.reasons)));
        }
        let approved = Order {
            hold_id: answer.hold_id,
            outcome,
        };

        self.begin("order over limit");
        let (answer, mut outcome) = self.authorize(customer_id, 2, over_within_band).await?;
        if outcome.decision != pb::AuthorizationDecision::Referred {
            return Err(self.unexpected(format!(
                "expected REFERRED, got {} {:?}",
                decision_name(outcome.decision),
                outcome.reasons
            )));
        }
        self.begin("referral release");
        let request_id = self.key("referral-release");
        let result = self
            .checker
            .decide_referral(pb::DecideReferralRequest {
                request_id,
                referral_id: answer.referral_id.clone(),
                outcome: pb::ReferralOutcome::Release.into(),
                reason: "demo: long-standing customer, seasonal peak".into(),
                hold_ttl: None,
                conditions: Vec::new(),
            })
            .await;
        let released = self.failed("DecideReferral", result)?;
        let hold = released
            .hold
            .ok_or_else(|| self.unexpected("DecideReferral RELEASE answered no hold"))?;
        let checker = released
            .referral
            .and_then(|referral| referral.decided_by)
            .map(|actor| actor.principal)
            .unwrap_or_default();
        outcome.released = true;
        let position = self.position(customer_id).await?;
        self.line(&format!(
            "{} released by {checker}: hold {} for {}, recorded as an override; exposure {}, available {}",
            answer.referral_id,
            hold.hold_id,
            show(hold.amount.as_ref()),
            position.exposure,
            optional(position.available),
        ))?;
        let referred = Order {
            hold_id: hold.hold_id,
            outcome,
        };

        self.begin("order far beyond");
        let (answer, far) = self.authorize(customer_id, 3, far_beyond).await?;
        match far.decision {
            // A grade whose policy declines beyond the tolerance.
            pb::AuthorizationDecision::Declined => {}
            // A grade whose policy refers it to people: step 7.2.
            pb::AuthorizationDecision::Referred => {
                self.walk_referral_chain(
                    customer_id,
                    &answer.referral_id,
                    "not beyond the credit terms without a deposit: to be placed again as prepaid",
                )
                .await?;
            }
            other => {
                return Err(self.unexpected(format!(
                    "expected DECLINED or REFERRED, got {} {:?}",
                    decision_name(other),
                    far.reasons
                )));
            }
        }
        Ok([
            approved,
            referred,
            Order {
                hold_id: String::new(),
                outcome: far,
            },
        ])
    }

    /// Step 7.2 for an order far beyond the limit: the chain the approval matrix chose, each
    /// step decided by the person of the cast who holds its role — finance verifies the
    /// figures, the general manager decides not to trade on credit beyond the terms without a
    /// deposit. A step nobody in the cast may decide is left waiting, and said so.
    pub(super) async fn walk_referral_chain(
        &mut self,
        customer_id: &str,
        referral_id: &str,
        refusal: &str,
    ) -> Result<(), DemoError> {
        let referral = self.referral_with_chain(customer_id, referral_id).await?;
        let chain = referral
            .approval_chain
            .clone()
            .ok_or_else(|| self.unexpected("the referral has no approval chain"))?;
        let names: Vec<String> = chain.steps.iter().map(|step| step.name.clone()).collect();
        self.detail(&format!(
            "approval chain (rule {}): {}",
            chain.rule_id,
            names.join(" -> ")
        ))?;
        self.detail(&format!(
            "finance's figures: overshoot {}, oldest overdue days {}, exposure {} against limit {}",
            show(referral.overshoot.as_ref()),
            referral.oldest_overdue_days,
            show(
                referral
                    .customer_position
                    .as_ref()
                    .and_then(|position| position.exposure.as_ref())
            ),
            show(
                referral
                    .customer_position
                    .as_ref()
                    .and_then(|position| position.limit.as_ref())
            ),
        ))?;
        let last = chain.steps.len().saturating_sub(1);
        for (index, step) in chain.steps.iter().enumerate() {
            let Some(decider) = self.decider_for(&step.roles) else {
                self.detail(&format!(
                    "step {index} ({}) waits: nobody in this run's cast holds its role",
                    step.name
                ))?;
                return Ok(());
            };
            let (verdict, note) = if index == last {
                (pb::ApprovalVerdict::Reject, refusal)
            } else {
                (
                    pb::ApprovalVerdict::Approve,
                    "verified: owed, overdue amount and days as shown",
                )
            };
            let request_id = self.key(&format!("step-7-2-{referral_id}-{index}"));
            let step_index = i32::try_from(index).unwrap_or(i32::MAX);
            let mut desk =
                ApprovalServiceClient::with_interceptor(self.channel.clone(), bearer(&decider)?);
            let result = desk
                .decide_approval_step(pb::DecideApprovalStepRequest {
                    request_id,
                    decision_kind: pb::DecisionKind::OrderReferral.into(),
                    record_id: referral_id.to_owned(),
                    step_index,
                    verdict: verdict.into(),
                    note: note.to_owned(),
                    release_conditions: Vec::new(),
                })
                .await;
            self.failed("DecideApprovalStep", result)?;
            self.detail(&format!(
                "step {index} {} by {}: {note}",
                if verdict == pb::ApprovalVerdict::Approve {
                    "approved"
                } else {
                    "rejected"
                },
                decider.name
            ))?;
        }
        Ok(())
    }

    /// The person of the cast who may decide a step naming `roles` (as the contract's ints).
    fn decider_for(&self, roles: &[i32]) -> Option<super::Actor> {
        let holds = |role: pb::Role| roles.contains(&(role as i32));
        if holds(pb::Role::Finance) {
            return self.cast.finance.clone();
        }
        if holds(pb::Role::GeneralManager) {
            return self.cast.general_manager.clone();
        }
        holds(pb::Role::CreditManager).then(|| self.cast.manager.clone())
    }

    /// The referral, once limits has opened its approval chain (a moment after the order).
    async fn referral_with_chain(
        &mut self,
        customer_id: &str,
        referral_id: &str,
    ) -> Result<pb::Referral, DemoError> {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            let result = self
                .checker
                .list_referrals(pb::ListReferralsRequest {
                    customer_id: customer_id.to_owned(),
                    ..Default::default()
                })
                .await;
            let referral = self
                .failed("ListReferrals", result)?
                .referrals
                .into_iter()
                .find(|referral| referral.referral_id == referral_id);
            if let Some(referral) = referral.filter(|referral| referral.approval_chain.is_some()) {
                return Ok(referral);
            }
            self.pause(
                deadline,
                "limits to open the referral's approval chain",
                || referral_id.to_owned(),
            )
            .await?;
        }
    }

    pub(super) async fn position(&mut self, customer_id: &str) -> Result<Position, DemoError> {
        let result = self
            .orders
            .get_exposure(pb::GetExposureRequest {
                scope: customer_scope(customer_id),
            })
            .await;
        let exposure = self
            .failed("GetExposure", result)?
            .exposure
            .ok_or_else(|| self.unexpected("GetExposure answered no exposure"))?;
        Ok(Position {
            holds: self.amount_of("open_holds", exposure.open_holds.as_ref())?,
            receivables: self.amount_of("open_receivables", exposure.open_receivables.as_ref())?,
            exposure: self.amount_of("exposure", exposure.exposure.as_ref())?,
            available: match exposure.available.as_ref() {
                Some(money) => Some(self.amount_of("available", Some(money))?),
                None => None,
            },
            oldest_overdue_days: exposure.oldest_overdue_days,
            grade: exposure.grade.clone(),
            blocks: exposure
                .blocks
                .iter()
                .map(|block| {
                    pb::CreditBlockType::try_from(block.block_type)
                        .map(|kind| {
                            kind.as_str_name()
                                .trim_start_matches("CREDIT_BLOCK_TYPE_")
                                .to_owned()
                        })
                        .unwrap_or_else(|_| "UNKNOWN".into())
                })
                .collect(),
        })
    }

    /// Waits until limits shows `holds` and `receivables` (events from collections).
    pub(super) async fn wait_for_position(
        &mut self,
        customer_id: &str,
        holds: Decimal,
        receivables: Decimal,
    ) -> Result<Position, DemoError> {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            let position = self.position(customer_id).await?;
            if position.holds == holds && position.receivables == receivables {
                return Ok(position);
            }
            self.pause(deadline, "limits to apply collections' events", || {
                format!(
                    "holds {} and receivables {} (expected {holds} and {receivables})",
                    position.holds, position.receivables
                )
            })
            .await?;
        }
    }
}
