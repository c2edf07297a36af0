//! GetExposure: the scope's exposure as the cache and the ledger see it.

use chrono::Utc;
use credit_core::{Money, ServiceError};
use credit_proto::v1 as pb;

use crate::api::convert::{credit_block_to_proto, scope_to_proto, to_timestamp};
use crate::domain::limits::{self, Scope};
use crate::exposure::ExposureError;

use super::{HotPath, cache_error, from_minor, ledger_error};

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
        let available =
            limit.map(|limit| Money::new(limit.amount.amount() - exposure.amount(), currency));
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
