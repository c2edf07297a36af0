//! The FX rates table's use cases: SetFxRate (amounts waiting for the rate enter exposure at
//! once) and ListFxRates, the rates in force or their history.

use chrono::Utc;
use credit_core::{Currency, ServiceError};
use credit_runtime::sql::{IdempotencyKey, Page};

use crate::domain::fx::FxRate;

use super::CreditAdmin;

impl CreditAdmin {
    /// Stores `rate` (once per idempotency key) and converts the receivables that waited
    /// for it; the stored rate is the answer.
    pub async fn set_fx_rate(
        &self,
        rate: &FxRate,
        key: &IdempotencyKey,
    ) -> Result<FxRate, ServiceError> {
        let stored = self
            .store
            .set_fx_rate(rate, key)
            .await
            .map_err(ServiceError::from)?
            .into_inner();
        // Amounts that waited for this rate enter exposure now rather than at the next
        // background pass; the rate is stored either way, so a failure here only delays them.
        if let Err(error) = crate::receivables::ReceivablesProjection::new(self.hot.clone())
            .convert_waiting()
            .await
        {
            tracing::warn!(error = %error, "could not convert the receivables waiting for a rate yet; the background sweep retries");
        }
        Ok(stored)
    }

    /// One page of rates of the pair(s) named, newest first per pair; only the rate in force
    /// of each pair unless `include_history`. The next page token comes with them.
    pub async fn list_fx_rates(
        &self,
        base: Option<Currency>,
        quote: Option<Currency>,
        include_history: bool,
        page: &Page,
    ) -> Result<(Vec<FxRate>, String), ServiceError> {
        let now = Utc::now();
        let mut rates = self
            .store
            .fx_rates(base, quote)
            .await
            .map_err(ServiceError::from)?;
        if !include_history {
            // Newest first per pair: the first one already effective is the one in force.
            let mut seen = std::collections::HashSet::new();
            rates.retain(|rate| rate.effective_at <= now && seen.insert((rate.base, rate.quote)));
        }
        let mut keyed: Vec<(String, FxRate)> = rates
            .into_iter()
            .map(|rate| (fx_page_key(&rate), rate))
            .filter(|(key, _)| page.after.as_ref().is_none_or(|after| key > after))
            .collect();
        keyed.truncate(usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX));
        let next_page_token = page.finish(&mut keyed, |(key, _)| key.as_str());
        Ok((
            keyed.into_iter().map(|(_, rate)| rate).collect(),
            next_page_token,
        ))
    }
}

/// Sorts like the store lists rates: by pair, newest effective time first.
fn fx_page_key(rate: &FxRate) -> String {
    let newest_first = i64::MAX - rate.effective_at.timestamp_micros().max(0);
    format!(
        "{}/{}/{newest_first:020}",
        rate.base.code(),
        rate.quote.code()
    )
}
