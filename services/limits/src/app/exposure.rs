//! GetExposure: the scope's exposure as the cache and the ledger see it.

use chrono::Utc;
use credit_core::{Money, ServiceError};
use credit_proto::v1 as pb;

use crate::api::convert::{credit_block_to_proto, scope_to_proto, to_timestamp};
use crate::domain::limits::{self, Scope};
use crate::exposure::{Cover, ExposureError};

use super::{HotPath, cache_error, from_minor, ledger_error, to_minor};

/// A customer's exposure and what security and guarantees do to it, in minor units.
#[derive(Debug, Clone, Copy)]
pub(super) struct SecuredFigures {
    pub exposure: i64,
    /// The security counted now.
    pub secured: i64,
    pub limit: Option<i64>,
    /// The limit plus the security that extends it.
    pub capacity: Option<i64>,
    pub contingent: i64,
}

impl SecuredFigures {
    /// The figures of `cover` at `now` (unix seconds).
    fn of(exposure: i64, limit: Option<i64>, cover: &Cover, now: i64) -> Self {
        Self {
            exposure,
            secured: cover.secured_at(now),
            limit,
            capacity: limit.map(|limit| limit.saturating_add(cover.extension_at(now))),
            contingent: cover.contingent,
        }
    }
}

/// The secured and unsecured parts of the exposure (the secured part is what the security
/// covers of it, never more than the exposure), the capacity and the contingent exposure, as
/// Authorize, CheckCredit and GetExposure report them.
pub(super) fn position_of(
    figures: SecuredFigures,
    currency: credit_core::Currency,
) -> pb::SecuredPosition {
    let secured_exposure = figures.exposure.clamp(0, figures.secured.max(0));
    let money = |minor: i64| Some(from_minor(minor, currency).into());
    pb::SecuredPosition {
        secured_cover: money(figures.secured),
        extends_capacity: figures
            .capacity
            .zip(figures.limit)
            .is_some_and(|(capacity, limit)| capacity > limit),
        capacity: figures.capacity.and_then(money),
        secured_exposure: money(secured_exposure),
        unsecured_exposure: money(figures.exposure.saturating_sub(secured_exposure)),
        contingent_exposure: money(figures.contingent),
    }
}

impl HotPath {
    /// Exposure from the ledger (the truth the cache is rebuilt from).
    pub async fn exposure(&self, scope: &Scope) -> Result<pb::Exposure, ServiceError> {
        let (scope_key, facts) = match scope {
            Scope::Customer(id) => {
                let facts = self
                    .limits
                    .customer(id)
                    .await
                    .map_err(ServiceError::from)?
                    .ok_or_else(|| ServiceError::not_found("customer", id.clone()))?;
                (scope.key(), Some(facts))
            }
            Scope::Group(_) => (scope.key(), None),
            Scope::Portfolio => {
                return Err(ServiceError::invalid(
                    "scope",
                    "must be a customer or a group",
                ));
            }
        };
        let now = Utc::now();
        let limits = self
            .limits
            .limits(scope)
            .await
            .map_err(ServiceError::from)?;
        let limit = limits::effective_limit(&limits, now);
        let currency = self.exposure_currency(scope).await?;
        let ledger = self
            .ledger
            .exposure(&scope_key)
            .await
            .map_err(ledger_error)?;
        let blocks = match scope {
            Scope::Customer(id) => self.limits.blocks(id).await.map_err(ServiceError::from)?,
            _ => Vec::new(),
        };
        let exposure = from_minor(ledger.total(), currency);
        // A customer's security and the guarantees it gave, as its cache profile counts them.
        let (cover, secured_position) = match scope {
            Scope::Customer(id) => {
                let facts = self
                    .limits
                    .warming_facts(id)
                    .await
                    .map_err(ServiceError::from)?
                    .ok_or_else(|| ServiceError::not_found("customer", id.clone()))?;
                let grade = facts
                    .customer
                    .rating
                    .as_ref()
                    .map(|rating| rating.grade.as_str());
                let cover = Cover {
                    extends_capacity: facts.policy.for_grade(grade).0.security_extends_capacity,
                    ..self.cover(&facts, currency).await?
                };
                let limit_minor = limit.map(|limit| to_minor(&limit.amount)).transpose()?;
                let position = position_of(
                    SecuredFigures::of(ledger.total(), limit_minor, &cover, now.timestamp()),
                    currency,
                );
                (cover, Some(position))
            }
            _ => (Cover::default(), None),
        };
        let extension = from_minor(cover.extension_at(now.timestamp()), currency);
        let contingent = from_minor(cover.contingent, currency);
        let available = limit.map(|limit| {
            Money::new(
                limit.amount.amount() + extension.amount()
                    - contingent.amount()
                    - exposure.amount(),
                currency,
            )
        });
        let utilization = limit
            .filter(|limit| !limit.amount.amount().is_zero())
            .map(|limit| {
                // A ratio, shown like every ratio of the suite: four places, half-even.
                let mut ratio = (exposure.amount() / limit.amount.amount())
                    .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointNearestEven);
                ratio.rescale(4);
                ratio.to_string()
            });
        Ok(pb::Exposure {
            scope: Some(scope_to_proto(scope)),
            currency: currency.code().to_owned(),
            limit: limit.map(|limit| limit.amount.into()),
            open_holds: Some(from_minor(ledger.open_holds, currency).into()),
            open_receivables: Some(from_minor(ledger.receivables, currency).into()),
            exposure: Some(exposure.into()),
            available: available.map(Into::into),
            utilization,
            blocks: blocks.iter().map(credit_block_to_proto).collect(),
            oldest_overdue_days: facts.as_ref().map_or(0, |facts| {
                i32::try_from(facts.oldest_overdue_days).unwrap_or(i32::MAX)
            }),
            grade: facts
                .and_then(|facts| facts.rating)
                .map(|rating| rating.grade)
                .unwrap_or_default(),
            as_of: Some(to_timestamp(now)),
            secured_position,
            ..Default::default()
        })
    }

    /// The cache incarnations (epochs) of the customer's profile and of its group's, warming
    /// cold ones first: a hold written with them is either counted by the cache (the caller
    /// adds it) or refused because a rebuild came in between (and then read the ledger).
    pub(super) async fn cached_epochs(
        &self,
        customer_id: &str,
    ) -> Result<(u64, Option<(String, u64)>), ServiceError> {
        for _ in 0..3 {
            let Some(customer) = self
                .cache
                .get_customer(customer_id)
                .await
                .map_err(cache_error)?
            else {
                self.warm_customer(customer_id).await?;
                continue;
            };
            let Some(group_id) = customer.group_id else {
                return Ok((customer.epoch, None));
            };
            match self.cache.get_group(&group_id).await.map_err(cache_error)? {
                Some(group) => return Ok((customer.epoch, Some((group_id, group.epoch)))),
                None => self.warm_group(&group_id).await?,
            }
        }
        Err(ServiceError::unavailable(
            "the customer's exposure is being rebuilt; retry",
            ExposureError::InvalidId {
                field: "customer_id",
                value: customer_id.to_owned(),
            },
        ))
    }
}
