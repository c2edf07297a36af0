//! The story's orders: checked, authorized (approved, referred and released, declined), and the
//! customer's position read back from limits.

use std::io::Write;
use std::time::Instant;

use credit_proto::v1 as pb;
use rust_decimal::Decimal;
use tonic::Code;

use super::{
    DEMO_CURRENCY, DemoError, EVENT_DEADLINE, Order, OrderOutcome, Position, Story, customer_scope,
    decision_name, figures, optional, reason_codes, share, show,
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
        let (_, declined) = self.authorize(customer_id, 3, far_beyond).await?;
        if declined.decision != pb::AuthorizationDecision::Declined {
            return Err(self.unexpected(format!(
                "expected DECLINED, got {} {:?}",
                decision_name(declined.decision),
                declined.reasons
            )));
        }
        Ok([
            approved,
            referred,
            Order {
                hold_id: String::new(),
                outcome: declined,
            },
        ])
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
