//! The limits store in SQL: one body for PostgreSQL and SQLite (`on_database!`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_core::Currency;
use credit_core::approval::DecisionKind;
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, Page, retry_once_on_race};
use credit_runtime::{
    Database, insert_idempotency_key, insert_outbox_event, lookup_idempotency_key, on_database,
};
use rust_decimal::Decimal;
use sqlx::types::Json;

use crate::domain::fx::{self, FxRate};
use crate::domain::limits::{
    CreditBlock, CreditLimit, HistoryEntry, LimitRequest, LimitStatus, RequestStatus, Scope,
};
use crate::domain::policy::CreditPolicy;
use crate::domain::proposal::LatestStatement;
use crate::domain::terms::CustomerTerms;

use super::rows::{CustomerIdsRow, CustomerRow, StatementRow};
use super::{
    Approval, CustomerFacts, LimitStore, Outcome, StoreError, StoreResult, WarmingFacts,
    not_pending,
};
use credit_runtime::store::DocumentRow;

#[derive(Debug, Clone)]
pub struct SqlLimitStore {
    pub(super) database: Database,
}

impl SqlLimitStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

#[async_trait]
impl LimitStore for SqlLimitStore {
    async fn apply_customer_event(&self, consumer: &str, event: &Event) -> StoreResult<()> {
        self.project_customer_event(consumer, event).await
    }

    async fn customer(&self, customer_id: &str) -> StoreResult<Option<CustomerFacts>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query_as::<_, CustomerRow>(&sql(
                "SELECT customer_id, status, group_id, rating_id, grade, next_review_date, pd, oldest_overdue_days FROM customer_profiles WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(CustomerRow::into_facts))
        })
    }

    async fn warming_facts(&self, customer_id: &str) -> StoreResult<Option<WarmingFacts>> {
        let Some(customer) = self.customer(customer_id).await? else {
            return Ok(None);
        };
        let limits = self
            .limits(&Scope::Customer(customer_id.to_owned()))
            .await?;
        let blocked = !self.blocks(customer_id).await?.is_empty();
        let own_terms = self.terms(customer_id).await?;
        let policy = self.policy().await?.unwrap_or_default();
        let securities = self
            .active_securities(super::SecurityParty::Customer(customer_id))
            .await?;
        let guarantees_given = self
            .active_securities(super::SecurityParty::Guarantor(customer_id))
            .await?;
        Ok(Some(WarmingFacts {
            customer,
            limits,
            blocked,
            own_terms,
            policy,
            securities,
            guarantees_given,
        }))
    }

    async fn latest_statement(&self, customer_id: &str) -> StoreResult<Option<LatestStatement>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query_as::<_, StatementRow>(&sql(
                "SELECT statement_id, period_end_date, period_months, currency, equity, revenue FROM customer_statements WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?;
            row.map(|row| row.into_statement(customer_id)).transpose()
        })
    }

    async fn completed_investigation(&self, customer_id: &str) -> StoreResult<Option<String>> {
        on_database!(&self.database, |pool, sql| {
            let found: Option<String> = sqlx::query_scalar(&sql(
                "SELECT investigation_id FROM customer_investigations WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?;
            Ok(found)
        })
    }

    async fn rating_freshness(
        &self,
        customer_id: &str,
    ) -> StoreResult<Option<(String, Option<chrono::NaiveDate>)>> {
        on_database!(&self.database, |pool, sql| {
            let found: Option<(String, Option<chrono::NaiveDate>)> = sqlx::query_as(&sql(
                "SELECT stale_inputs, inputs_stale_on FROM customer_freshness WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?;
            Ok(found)
        })
    }

    async fn group_known(&self, group_id: &str) -> StoreResult<bool> {
        on_database!(&self.database, |pool, sql| {
            let found: Option<String> = sqlx::query_scalar(&sql(
                "SELECT customer_id FROM customer_profiles WHERE group_id = $1 LIMIT 1",
            ))
            .bind(group_id)
            .fetch_optional(pool)
            .await?;
            Ok(found.is_some())
        })
    }

    async fn group_members(&self, group_id: &str) -> StoreResult<Vec<String>> {
        on_database!(&self.database, |pool, sql| {
            Ok(sqlx::query_scalar(&sql(
                "SELECT customer_id FROM customer_profiles WHERE group_id = $1 ORDER BY customer_id",
            ))
            .bind(group_id)
            .fetch_all(pool)
            .await?)
        })
    }

    async fn customers_after(
        &self,
        after_customer_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<CustomerFacts>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, CustomerIdsRow>(&sql(
                "SELECT customer_id, status, group_id FROM customer_profiles \
                 WHERE customer_id > $1 ORDER BY customer_id LIMIT $2",
            ))
            .bind(after_customer_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(CustomerIdsRow::into_facts).collect())
        })
    }

    async fn create_limit_request(
        &self,
        request: &LimitRequest,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<LimitRequest>> {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let existing = sqlx::query_as::<_, DocumentRow<LimitRequest>>(&sql(
                        "SELECT document FROM limit_requests WHERE id = $1",
                    ))
                    .bind(&existing_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    return Ok(Outcome::Replayed(existing.into_record()));
                }
                sqlx::query(&sql(
                    "INSERT INTO limit_requests (id, scope_key, status, document, requested_at) VALUES ($1, $2, $3, $4, $5)",
                ))
                .bind(&request.id)
                .bind(request.scope.key())
                .bind(request.status.as_str())
                .bind(Json(request))
                .bind(request.requested_at)
                .execute(&mut *tx)
                .await?;
                crate::replace_approval_tasks!(
                    tx,
                    sql,
                    DecisionKind::LimitRequest.as_str(),
                    &request.id,
                    request.approval_chain.as_ref(),
                    request.requested_at,
                    request.requested_at
                )
                .await?;
                insert_idempotency_key!(tx, sql, key, &request.id, request.requested_at)?;
                tx.commit().await?;
                Ok(Outcome::New(request.clone()))
            })
        })
        .await
    }

    async fn limit_request(&self, id: &str) -> StoreResult<Option<LimitRequest>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query_as::<_, DocumentRow<LimitRequest>>(&sql(
                "SELECT document FROM limit_requests WHERE id = $1",
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(DocumentRow::into_record))
        })
    }

    async fn recorded_under(&self, key: &IdempotencyKey) -> StoreResult<Option<String>> {
        on_database!(&self.database, |pool, sql| {
            let mut tx = pool.begin().await?;
            Ok(lookup_idempotency_key!(tx, sql, key)?.into_replay()?)
        })
    }

    async fn list_limit_requests(
        &self,
        scope: Option<&Scope>,
        status: Option<RequestStatus>,
        page: &Page,
    ) -> StoreResult<Vec<LimitRequest>> {
        let scope_key = scope.map(Scope::key).unwrap_or_default();
        let status = status.map(|status| status.as_str()).unwrap_or_default();
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, DocumentRow<LimitRequest>>(&sql(
                "SELECT document FROM limit_requests WHERE id > $1 AND ($2 = '' OR scope_key = $2) \
                 AND ($3 = '' OR status = $3) ORDER BY id LIMIT $4",
            ))
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(&scope_key)
            .bind(status)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn decide(
        &self,
        decided: &LimitRequest,
        expected_revision: i64,
        key: &IdempotencyKey,
        approval: Option<&Approval>,
        step_event: Option<&Event>,
    ) -> StoreResult<Outcome<LimitRequest>> {
        let now = decided.decided_at.unwrap_or_else(Utc::now);
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let existing = sqlx::query_as::<_, DocumentRow<LimitRequest>>(&sql(
                    "SELECT document FROM limit_requests WHERE id = $1",
                ))
                .bind(&existing_id)
                .fetch_one(&mut *tx)
                .await?;
                return Ok(Outcome::Replayed(existing.into_record()));
            }
            let updated = sqlx::query(&sql(
                "UPDATE limit_requests SET status = $1, document = $2, chain_revision = $3 \
                 WHERE id = $4 AND status = $5 AND chain_revision = $6",
            ))
            .bind(decided.status.as_str())
            .bind(Json(decided))
            .bind(decided.chain_revision())
            .bind(&decided.id)
            .bind(RequestStatus::Pending.as_str())
            .bind(expected_revision)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() != 1 {
                return Err(not_pending());
            }
            crate::replace_approval_tasks!(
                tx,
                sql,
                DecisionKind::LimitRequest.as_str(),
                &decided.id,
                decided.approval_chain.as_ref(),
                decided.requested_at,
                now
            )
            .await?;
            if let Some(step_event) = step_event {
                insert_outbox_event!(tx, sql, step_event)?;
            }
            let entry = serde_json::to_string(decided)
                .map_err(|error| StoreError::Corrupt(error.to_string()))?;
            credit_runtime::append_audit!(
                tx,
                sql,
                &credit_runtime::audit::AuditRecord {
                    kind: "limit_request.decided",
                    record_id: &decided.id,
                    actor: decided
                        .decided_by
                        .as_ref()
                        .map_or("", |actor| actor.name.as_str()),
                    entry,
                }
            )
            .await?;
            if let Some(approval) = approval
                && matches!(approval.limit.scope, Scope::Customer(_))
            {
                // Queue behind every other approval of a customer limit, then check the cap
                // against what they granted (see migration 0014).
                sqlx::query(&sql(
                    "UPDATE portfolio_cap_lock SET approvals = approvals + 1 WHERE id = 1",
                ))
                .execute(&mut *tx)
                .await?;
                // The cap and every customer limit, read under the lock (an approval is a
                // person's decision: reading them all is cheap at that pace).
                let limits: Vec<CreditLimit> = sqlx::query_as::<_, DocumentRow<CreditLimit>>(&sql(
                    "SELECT document FROM credit_limits WHERE status = $1 AND (scope_key = $2 OR scope_key LIKE 'customer:%')",
                ))
                .bind("ACTIVE")
                .bind(Scope::Portfolio.key())
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(DocumentRow::into_record)
                .collect();
                let (portfolio, customer_limits): (Vec<_>, Vec<_>) = limits
                    .into_iter()
                    .partition(|limit| limit.scope == Scope::Portfolio);
                crate::domain::limits::check_portfolio(
                    &portfolio,
                    customer_limits,
                    &approval.limit.scope,
                    &approval.limit.amount,
                    now,
                )
                // The refusal as callers hear it (the mapping lives with the API's conversions).
                .map_err(|refused| StoreError::refused(refused.into()))?;
            }
            if let Some(approval) = approval {
                for limit_id in &approval.superseded {
                    let mut old = sqlx::query_as::<_, DocumentRow<CreditLimit>>(&sql(
                        "SELECT document FROM credit_limits WHERE id = $1",
                    ))
                    .bind(limit_id)
                    .fetch_one(&mut *tx)
                    .await?
                    .into_record();
                    old.status = LimitStatus::Superseded;
                    sqlx::query(&sql(
                        "UPDATE credit_limits SET status = $1, document = $2 WHERE id = $3",
                    ))
                    .bind("SUPERSEDED")
                    .bind(Json(&old))
                    .bind(limit_id)
                    .execute(&mut *tx)
                    .await?;
                }
                let limit = &approval.limit;
                sqlx::query(&sql(
                    "INSERT INTO credit_limits (id, scope_key, status, temporary, document, granted_at) VALUES ($1, $2, $3, $4, $5, $6)",
                ))
                .bind(&limit.id)
                .bind(limit.scope.key())
                .bind("ACTIVE")
                .bind(limit.temporary)
                .bind(Json(limit))
                .bind(limit.granted_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&sql("INSERT INTO limit_history (id, scope_key, document, changed_at) VALUES ($1, $2, $3, $4)"))
                    .bind(&approval.history.id)
                    .bind(approval.history.scope.key())
                    .bind(Json(&approval.history))
                    .bind(approval.history.changed_at)
                    .execute(&mut *tx)
                    .await?;
                insert_outbox_event!(tx, sql, &approval.event)?;
            }
            insert_idempotency_key!(tx, sql, key, &decided.id, now)?;
            tx.commit().await?;
            Ok(Outcome::New(decided.clone()))
        })
    }

    async fn approval_tasks(
        &self,
        audiences: &[String],
        kind: Option<DecisionKind>,
        page: &Page,
    ) -> StoreResult<Vec<super::TaskRef>> {
        self.tasks_for(audiences, kind, page).await
    }

    async fn open_review(
        &self,
        review: &crate::domain::review::CreditReview,
        event_id: &str,
    ) -> StoreResult<crate::domain::review::CreditReview> {
        self.insert_review(review, event_id).await
    }

    async fn review(
        &self,
        review_id: &str,
    ) -> StoreResult<Option<crate::domain::review::CreditReview>> {
        self.stored_review(review_id).await
    }

    async fn decide_review(
        &self,
        decided: &crate::domain::review::CreditReview,
        expected_trail: usize,
        key: &IdempotencyKey,
        step_event: Option<&Event>,
        now: DateTime<Utc>,
    ) -> StoreResult<Outcome<crate::domain::review::CreditReview>> {
        self.update_review(decided, expected_trail, key, step_event, now)
            .await
    }

    async fn escalations_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<super::TaskRef>> {
        SqlLimitStore::escalations_due(self, now, limit).await
    }

    async fn expirations_due(
        &self,
        requested_by: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<super::TaskRef>> {
        SqlLimitStore::expirations_due(self, requested_by, limit).await
    }

    async fn clear_escalation(&self, kind: DecisionKind, record_id: &str) -> StoreResult<()> {
        on_database!(&self.database, |pool, sql| {
            sqlx::query(&sql(
                "UPDATE approval_tasks SET escalate_at = NULL WHERE kind = $1 AND record_id = $2",
            ))
            .bind(kind.as_str())
            .bind(record_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    async fn limits(&self, scope: &Scope) -> StoreResult<Vec<CreditLimit>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, DocumentRow<CreditLimit>>(&sql(
                "SELECT document FROM credit_limits WHERE scope_key = $1 AND status = $2 ORDER BY granted_at, id",
            ))
            .bind(scope.key())
            .bind("ACTIVE")
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn customer_limits(&self) -> StoreResult<Vec<CreditLimit>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, DocumentRow<CreditLimit>>(&sql(
                "SELECT document FROM credit_limits WHERE scope_key LIKE 'customer:%' AND status = $1 ORDER BY granted_at, id",
            ))
            .bind("ACTIVE")
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn history(&self, scope: &Scope, page: &Page) -> StoreResult<Vec<HistoryEntry>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, DocumentRow<HistoryEntry>>(&sql(
                "SELECT document FROM limit_history WHERE scope_key = $1 AND id > $2 ORDER BY id LIMIT $3",
            ))
            .bind(scope.key())
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn blocks(&self, customer_id: &str) -> StoreResult<Vec<CreditBlock>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, DocumentRow<CreditBlock>>(&sql(
                "SELECT document FROM credit_blocks WHERE customer_id = $1 ORDER BY set_at, block_type",
            ))
            .bind(customer_id)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn set_block(&self, block: &CreditBlock, event: &Event) -> StoreResult<bool> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let inserted = sqlx::query(&sql(
                "INSERT INTO credit_blocks (customer_id, block_type, document, set_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (customer_id, block_type) DO NOTHING",
            ))
            .bind(&block.customer_id)
            .bind(&block.block_type)
            .bind(Json(block))
            .bind(block.set_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                insert_outbox_event!(tx, sql, event)?;
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    async fn clear_block(
        &self,
        customer_id: &str,
        block_type: &str,
        event: &Event,
    ) -> StoreResult<bool> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let deleted = sqlx::query(&sql(
                "DELETE FROM credit_blocks WHERE customer_id = $1 AND block_type = $2",
            ))
            .bind(customer_id)
            .bind(block_type)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if deleted {
                insert_outbox_event!(tx, sql, event)?;
            }
            tx.commit().await?;
            Ok(deleted)
        })
    }

    async fn set_fx_rate(
        &self,
        rate: &FxRate,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<FxRate>> {
        // The key remembers the row by its primary key: pair and effective time.
        let row_id = format!(
            "{}/{}/{}",
            rate.base.code(),
            rate.quote.code(),
            rate.effective_at.to_rfc3339()
        );
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let mut parts = existing.splitn(3, '/');
                    let (Some(base), Some(quote), Some(effective_at)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(StoreError::Corrupt(format!("fx rate key {existing}")));
                    };
                    let effective_at = DateTime::parse_from_rfc3339(effective_at)
                        .map_err(|_| StoreError::Corrupt(format!("fx rate key {existing}")))?
                        .with_timezone(&Utc);
                    let row = sqlx::query_as::<_, DocumentRow<FxRate>>(&sql(
                        "SELECT document FROM fx_rates WHERE base_currency = $1 AND quote_currency = $2 AND effective_at = $3",
                    ))
                    .bind(base)
                    .bind(quote)
                    .bind(effective_at)
                    .fetch_one(&mut *tx)
                    .await?;
                    return Ok(Outcome::Replayed(row.into_record()));
                }
                sqlx::query(&sql(
                    "INSERT INTO fx_rates (base_currency, quote_currency, effective_at, document) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (base_currency, quote_currency, effective_at) DO UPDATE SET document = excluded.document",
                ))
                .bind(rate.base.code())
                .bind(rate.quote.code())
                .bind(rate.effective_at)
                .bind(Json(rate))
                .execute(&mut *tx)
                .await?;
                insert_idempotency_key!(tx, sql, key, &row_id, rate.set_at)?;
                tx.commit().await?;
                Ok(Outcome::New(rate.clone()))
            })
        })
        .await
    }

    async fn fx_rate(
        &self,
        base: Currency,
        quote: Currency,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Decimal>> {
        let newest = |from: Currency, to: Currency| async move {
            on_database!(&self.database, |pool, sql| {
                let row = sqlx::query_as::<_, DocumentRow<FxRate>>(&sql(
                    "SELECT document FROM fx_rates WHERE base_currency = $1 AND quote_currency = $2 \
                     AND effective_at <= $3 ORDER BY effective_at DESC LIMIT 1",
                ))
                .bind(from.code())
                .bind(to.code())
                .bind(at)
                .fetch_optional(pool)
                .await?;
                Ok::<_, StoreError>(row.map(|row| row.into_record().rate))
            })
        };
        let direct = newest(base, quote).await?;
        if direct.is_some() {
            return Ok(direct);
        }
        Ok(fx::conversion_rate(None, newest(quote, base).await?))
    }

    async fn fx_rates(
        &self,
        base: Option<Currency>,
        quote: Option<Currency>,
    ) -> StoreResult<Vec<FxRate>> {
        let base = base.map(|currency| currency.code()).unwrap_or_default();
        let quote = quote.map(|currency| currency.code()).unwrap_or_default();
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, DocumentRow<FxRate>>(&sql(
                "SELECT document FROM fx_rates WHERE ($1 = '' OR base_currency = $1) AND ($2 = '' OR quote_currency = $2) \
                 ORDER BY base_currency, quote_currency, effective_at DESC",
            ))
            .bind(base)
            .bind(quote)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn policy(&self) -> StoreResult<Option<CreditPolicy>> {
        // One read (every cold customer's warm-up makes it): the governed version in force
        // first, the policy stored before policies were governed second.
        #[derive(sqlx::FromRow)]
        struct PolicyRow {
            governed: i64,
            document: Json<serde_json::Value>,
        }
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, PolicyRow>(&sql(
                "SELECT governed, document FROM ( \
                   SELECT CAST(1 AS BIGINT) AS governed, document FROM governed_versions \
                   WHERE subject = $1 AND status = $2 AND effective_from <= $3 \
                   ORDER BY effective_from DESC, version DESC LIMIT 1) AS in_force \
                 UNION ALL SELECT CAST(0 AS BIGINT) AS governed, document FROM credit_policy WHERE id = 1 \
                 ORDER BY governed DESC LIMIT 1",
            ))
            .bind(<CreditPolicy as credit_core::governance::Governed>::SUBJECT)
            .bind(credit_core::governance::VersionStatus::Published.as_str())
            .bind(Utc::now())
            .fetch_optional(pool)
            .await
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let policy = if row.governed == 1 {
            serde_json::from_value::<credit_core::governance::Version<CreditPolicy>>(row.document.0)
                .map(|version| version.document)
        } else {
            serde_json::from_value::<CreditPolicy>(row.document.0)
        };
        policy
            .map(Some)
            .map_err(|error| StoreError::Corrupt(format!("credit policy: {error}")))
    }

    async fn ungoverned_policy(&self) -> StoreResult<Option<CreditPolicy>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query_as::<_, DocumentRow<CreditPolicy>>(&sql(
                "SELECT document FROM credit_policy WHERE id = 1",
            ))
            .fetch_optional(pool)
            .await?;
            Ok(row.map(DocumentRow::into_record))
        })
    }

    async fn terms(&self, customer_id: &str) -> StoreResult<Option<CustomerTerms>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query_as::<_, DocumentRow<CustomerTerms>>(&sql(
                "SELECT document FROM credit_terms WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(DocumentRow::into_record))
        })
    }

    async fn save_terms(&self, terms: &CustomerTerms) -> StoreResult<()> {
        on_database!(&self.database, |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO credit_terms (customer_id, document, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (customer_id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
            ))
            .bind(&terms.customer_id)
            .bind(Json(terms))
            .bind(terms.changed_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
