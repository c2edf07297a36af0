//! Dunning: policies as data (levels by days past due, each with a channel and a message
//! template; per grade, with one default), and runs that create the actions due as of a date.
//! The rules — which level is due, what is skipped, never a level twice — are
//! `domain::dunning::plan_dunning`; this module gathers its inputs and stores its answer.

use std::collections::BTreeMap;

use chrono::Utc;
use credit_core::{Principal, ServiceError};
use credit_proto::service_names::COLLECTIONS;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;
use credit_runtime::sql::{IdempotencyKey, Page};

use super::Collections;
use crate::api::convert::{as_of_date, money, required_id, timestamp, to_date};
use crate::domain::dunning::{DunningLevelDraft, PromiseState, SkipReason};
use crate::domain::{
    ContactChannel, DunningCandidate, DunningPolicy, DunningPolicyDraft, InvoiceId, TakenAction,
    plan_dunning,
};
use crate::domain::{PromiseEvaluation, PromiseStatus};
use crate::store::ActionFilter;

impl Collections {
    pub(crate) async fn dunning_policies_page(
        &self,
        request: &pb::ListDunningPoliciesRequest,
    ) -> Result<pb::ListDunningPoliciesResponse, ServiceError> {
        let page = Page::parse(request.page_size, &request.page_token)?;
        let policies = self
            .dunning()
            .policies(
                request.all_versions,
                page.after.as_deref(),
                page.fetch_limit(),
            )
            .await
            .map_err(ServiceError::from)?;
        let mut keyed: Vec<(String, pb::DunningPolicy)> = policies
            .into_iter()
            .map(|policy| (format!("{}/{}", policy.policy_id, policy.version), policy))
            .collect();
        let next_page_token = page.finish(&mut keyed, |(key, _)| key);
        Ok(pb::ListDunningPoliciesResponse {
            policies: keyed.into_iter().map(|(_, policy)| policy).collect(),
            next_page_token,
        })
    }

    pub(crate) async fn run_dunning_now(
        &self,
        principal: &Principal,
        request: pb::RunDunningRequest,
    ) -> Result<pb::RunDunningResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let (request_id, as_of) = credit_core::both(
            required_id("request_id", &request.request_id),
            as_of_date("as_of_date", request.as_of_date.as_ref(), today),
        )?;
        // A run is its caller's own: another principal's run with the same id is new work.
        let key = IdempotencyKey::new(&principal.name, request_id.clone(), "RunDunning", &request);
        if !request.dry_run
            && let Some(answer) = self
                .dunning()
                .dunning_run(&key)
                .await
                .map_err(ServiceError::from)?
        {
            return Ok(answer);
        }
        let only: Vec<String> = request
            .customer_ids
            .iter()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .collect();
        let only = (!only.is_empty()).then_some(only);

        let policies = self
            .dunning()
            .latest_policies()
            .await
            .map_err(ServiceError::from)?
            .iter()
            .map(stored_policy)
            .collect::<Result<Vec<_>, _>>()?;
        let histories = self
            .store
            .histories(None, as_of, as_of)
            .await
            .map_err(ServiceError::from)?;
        let grades = self
            .cases
            .customer_grades()
            .await
            .map_err(ServiceError::from)?;
        let disputed = self.open_disputed_amounts().await?;
        let case_of: BTreeMap<String, String> = self
            .cases
            .cases(None, true)
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .map(|case| (case.customer_id, case.case_id))
            .collect();
        let promises: Vec<PromiseState> = self
            .cases
            .dunning_promises()
            .await
            .map_err(ServiceError::from)?
            .iter()
            .filter_map(|record| {
                Some(PromiseState {
                    promise: super::cases::domain_promise(record)?,
                    evaluation: PromiseEvaluation {
                        status: match record.status.as_str() {
                            "KEPT" => PromiseStatus::Kept,
                            "BROKEN" => PromiseStatus::Broken,
                            _ => PromiseStatus::Open,
                        },
                        paid_amount: record.paid_amount,
                        decided_on: record.decided_on,
                    },
                })
            })
            .collect();
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut candidates = Vec::new();
        for history in &histories {
            let invoice = &history.invoice;
            let customer = invoice.customer_id.as_str();
            if only
                .as_ref()
                .is_some_and(|only| !only.iter().any(|id| id == customer))
            {
                continue;
            }
            let Some(open) = history.open_amount_as_of(as_of) else {
                continue;
            };
            if !names.contains_key(customer) {
                let name = self.customer_name(customer).await;
                names.insert(customer.to_owned(), name);
            }
            candidates.push(DunningCandidate {
                customer_id: invoice.customer_id.clone(),
                customer_name: names.get(customer).cloned().unwrap_or_default(),
                grade: grades.get(customer).cloned(),
                invoice_id: invoice.invoice_id.clone(),
                invoice_number: invoice.invoice_number.clone(),
                currency: invoice.currency,
                due_date: invoice.due_date,
                open_amount: open,
                disputed_amount: disputed
                    .get(invoice.invoice_id.as_str())
                    .copied()
                    .unwrap_or_default(),
            });
        }
        let taken = self
            .dunning()
            .taken_levels(only.as_deref())
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .filter_map(|taken| {
                Some(TakenAction {
                    invoice_id: InvoiceId::parse(&taken.invoice_id).ok()?,
                    level: taken.level,
                    as_of: taken.as_of,
                })
            })
            .collect::<Vec<_>>();
        let plan = plan_dunning(as_of, &policies, &candidates, &taken, &promises);

        let created_at = timestamp(Utc::now());
        let drafted: Vec<(pb::DunningAction, pb::Event)> = plan
            .actions
            .iter()
            .map(|draft| {
                let action = pb::DunningAction {
                    action_id: format!("dun_{}", uuid::Uuid::now_v7().simple()),
                    case_id: case_of
                        .get(draft.customer_id.as_str())
                        .cloned()
                        .unwrap_or_default(),
                    customer_id: draft.customer_id.to_string(),
                    invoice_id: draft.invoice_id.to_string(),
                    invoice_number: draft.invoice_number.clone(),
                    level: i32::try_from(draft.level).unwrap_or(i32::MAX),
                    channel: channel_to_proto(draft.channel).into(),
                    days_past_due: i32::try_from(draft.days_past_due).unwrap_or(i32::MAX),
                    amount: money(draft.amount, draft.currency),
                    template_id: draft.template_id.clone(),
                    message: draft.message.clone(),
                    policy_id: draft.policy_id.clone(),
                    policy_version: i32::try_from(draft.policy_version).unwrap_or(i32::MAX),
                    as_of_date: Some(to_date(draft.as_of)),
                    created_at: Some(created_at),
                };
                let event = pb::Event {
                    aggregate_id: action.action_id.clone(),
                    customer_id: action.customer_id.clone(),
                    request_id: request_id.clone(),
                    ..new_event(
                        COLLECTIONS,
                        Payload::DunningActionCreated(pb::DunningActionCreated {
                            action_id: action.action_id.clone(),
                            case_id: action.case_id.clone(),
                            customer_id: action.customer_id.clone(),
                            invoice_id: action.invoice_id.clone(),
                            level: action.level,
                            channel: action.channel,
                            amount: action.amount.clone(),
                            template_id: action.template_id.clone(),
                        }),
                    )
                };
                (action, event)
            })
            .collect();
        let actions = if request.dry_run {
            drafted.into_iter().map(|(action, _)| action).collect()
        } else {
            self.dunning()
                .record_actions(&drafted)
                .await
                .map_err(ServiceError::from)?
        };
        let count = |wanted: fn(&SkipReason) -> bool| {
            i32::try_from(
                plan.skipped
                    .iter()
                    .filter(|(_, reason)| wanted(reason))
                    .count(),
            )
            .unwrap_or(i32::MAX)
        };
        let response = pb::RunDunningResponse {
            actions,
            skipped_already_dunned: count(|reason| matches!(reason, SkipReason::AlreadyAtLevel(_))),
            skipped_disputed: count(|reason| matches!(reason, SkipReason::FullyDisputed)),
            skipped_promised: count(|reason| matches!(reason, SkipReason::PausedByPromise(_))),
        };
        if !request.dry_run {
            self.dunning()
                .save_dunning_run(&key, &response)
                .await
                .map_err(ServiceError::from)?;
            if !response.actions.is_empty() {
                tracing::info!(created = response.actions.len(), %as_of, "dunning run");
            }
        }
        Ok(response)
    }

    pub(crate) async fn dunning_actions_page(
        &self,
        request: &pb::ListDunningActionsRequest,
    ) -> Result<pb::ListDunningActionsResponse, ServiceError> {
        let page = Page::parse(request.page_size, &request.page_token)?;
        let filter = ActionFilter {
            customer_id: request.customer_id.trim().to_owned(),
            case_id: request.case_id.trim().to_owned(),
            invoice_id: request.invoice_id.trim().to_owned(),
        };
        let mut actions = self
            .dunning()
            .list_actions(&filter, page.after.as_deref(), page.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut actions, |action| &action.action_id);
        Ok(pb::ListDunningActionsResponse {
            actions,
            next_page_token,
        })
    }

    /// The amount under open disputes, by invoice: never dunned.
    async fn open_disputed_amounts(
        &self,
    ) -> Result<BTreeMap<String, rust_decimal::Decimal>, ServiceError> {
        let open = self
            .cases
            .disputes(
                &crate::store::DisputeFilter {
                    status: "OPEN".to_owned(),
                    ..Default::default()
                },
                None,
                i64::MAX,
            )
            .await
            .map_err(ServiceError::from)?;
        let mut amounts: BTreeMap<String, rust_decimal::Decimal> = BTreeMap::new();
        for dispute in open {
            *amounts.entry(dispute.invoice_id).or_default() += dispute.amount;
        }
        Ok(amounts)
    }

    /// The customer's name for letters and the worklist, from intake; its id when intake
    /// cannot say.
    pub(crate) async fn customer_name(&self, customer_id: &str) -> String {
        let Some(intake) = &self.intake else {
            return customer_id.to_owned();
        };
        let mut intake = intake.clone();
        match intake
            .get_customer(pb::GetCustomerRequest {
                customer_id: customer_id.to_owned(),
            })
            .await
        {
            Ok(response) => response
                .into_inner()
                .customer
                .map(|customer| customer.display_name)
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| customer_id.to_owned()),
            Err(status) => {
                tracing::debug!(%customer_id, code = ?status.code(), "customer name not available for dunning");
                customer_id.to_owned()
            }
        }
    }
}

pub(super) fn field_violations(violations: Vec<credit_core::FieldViolation>) -> ServiceError {
    ServiceError::InvalidArgument(
        violations
            .into_iter()
            .map(|violation| {
                credit_core::FieldViolation::new(
                    format!("policy.{}", violation.field),
                    violation.description,
                )
            })
            .collect(),
    )
}

/// A stored policy, checked again; a stored policy that no longer passes is an internal error.
pub(super) fn stored_policy(policy: &pb::DunningPolicy) -> Result<DunningPolicy, ServiceError> {
    DunningPolicy::parse(
        &policy_draft(policy),
        u32::try_from(policy.version).unwrap_or(0),
    )
    .map_err(|violations| {
        ServiceError::internal(format!(
            "stored dunning policy {} version {} is invalid: {violations:?}",
            policy.policy_id, policy.version
        ))
    })
}

pub(crate) fn policy_draft(policy: &pb::DunningPolicy) -> DunningPolicyDraft {
    DunningPolicyDraft {
        policy_id: policy.policy_id.trim().to_owned(),
        display_name: policy.display_name.clone(),
        grades: policy.grades.clone(),
        levels: policy
            .levels
            .iter()
            .map(|level| DunningLevelDraft {
                level: u32::try_from(level.level).unwrap_or(0),
                display_name: level.display_name.clone(),
                days_past_due: u32::try_from(level.days_past_due).unwrap_or(0),
                channel: channel_from_proto(level.channel),
                template_id: level.template_id.clone(),
                message_template: level.message_template.clone(),
            })
            .collect(),
    }
}

pub(super) fn policy_to_proto(policy: &DunningPolicy) -> pb::DunningPolicy {
    pb::DunningPolicy {
        policy_id: policy.policy_id().to_owned(),
        version: i32::try_from(policy.version()).unwrap_or(i32::MAX),
        display_name: policy.display_name().to_owned(),
        grades: policy.grades().to_vec(),
        levels: policy
            .levels()
            .iter()
            .map(|level| pb::DunningLevel {
                level: i32::try_from(level.level()).unwrap_or(i32::MAX),
                display_name: level.display_name().to_owned(),
                days_past_due: i32::try_from(level.days_past_due()).unwrap_or(i32::MAX),
                channel: channel_to_proto(level.channel()).into(),
                template_id: level.template_id().to_owned(),
                message_template: level.template().source().to_owned(),
            })
            .collect(),
        published_at: None,
        published_by: None,
    }
}

fn channel_from_proto(value: i32) -> Option<ContactChannel> {
    match pb::ContactChannel::try_from(value).ok()? {
        pb::ContactChannel::Email => Some(ContactChannel::Email),
        pb::ContactChannel::Letter => Some(ContactChannel::Letter),
        pb::ContactChannel::Phone => Some(ContactChannel::Phone),
        pb::ContactChannel::Visit => Some(ContactChannel::Visit),
        pb::ContactChannel::Legal => Some(ContactChannel::Legal),
        pb::ContactChannel::Unspecified => None,
    }
}

fn channel_to_proto(channel: ContactChannel) -> pb::ContactChannel {
    match channel {
        ContactChannel::Email => pb::ContactChannel::Email,
        ContactChannel::Letter => pb::ContactChannel::Letter,
        ContactChannel::Phone => pb::ContactChannel::Phone,
        ContactChannel::Visit => pb::ContactChannel::Visit,
        ContactChannel::Legal => pb::ContactChannel::Legal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_and_unspecified_is_none() {
        for channel in [
            ContactChannel::Email,
            ContactChannel::Letter,
            ContactChannel::Phone,
            ContactChannel::Visit,
            ContactChannel::Legal,
        ] {
            assert_eq!(
                channel_from_proto(channel_to_proto(channel).into()),
                Some(channel)
            );
        }
        assert_eq!(channel_from_proto(0), None);
    }
}
