//! Dunning policies, actions and runs, on both backends.
//!
//! Policies are kept as published (encoded `credit.v1.DunningPolicy`) and checked again by the
//! domain when read. An action is unique per invoice and level in the table itself, so two
//! runs at the same time still create each level once.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use credit_core::ServiceError;
use credit_proto::v1 as pb;
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, KeyReused, retry_once_on_race};
use credit_runtime::{insert_outbox_event, on_database};
use prost::Message;

use super::receivables::SqlReceivableStore;
use super::{Outcome, StoreError, StoreResult};

/// Checks a policy about to be published against the latest version of every policy, inside
/// the write: returns it as it will be stored (with its version and publication).
pub type PolicyAdmission<'a> = &'a (
        dyn Fn(&[pb::DunningPolicy], u32) -> Result<pb::DunningPolicy, ServiceError> + Send + Sync
    );

/// An action taken before: its invoice, level and the run's as-of date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenLevel {
    pub invoice_id: String,
    pub level: u32,
    pub as_of: NaiveDate,
}

/// Which actions ListDunningActions returns.
#[derive(Debug, Clone, Default)]
pub struct ActionFilter {
    pub customer_id: String,
    pub case_id: String,
    pub invoice_id: String,
}

#[async_trait]
pub trait DunningStore: DunningProposalStore + Send + Sync + std::fmt::Debug {
    /// Publishes the next version of `policy_id` once per idempotency key (the publisher's
    /// request id).
    async fn publish_policy(
        &self,
        policy_id: &str,
        key: &IdempotencyKey,
        admit: PolicyAdmission<'_>,
    ) -> StoreResult<Outcome<pb::DunningPolicy>>;

    /// The latest version of every policy, by policy id.
    async fn latest_policies(&self) -> StoreResult<Vec<pb::DunningPolicy>>;

    /// Policies by id then version descending, after the key "<policy id>/<version>".
    async fn policies(
        &self,
        all_versions: bool,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<pb::DunningPolicy>>;

    /// Every action taken on the customers' invoices (all customers when `None`).
    async fn taken_levels(&self, customer_ids: Option<&[String]>) -> StoreResult<Vec<TakenLevel>>;

    /// Stores the actions a run created, with their events; an action whose invoice already
    /// has its level (a concurrent run) is left out. Returns those stored.
    async fn record_actions(
        &self,
        actions: &[(pb::DunningAction, Event)],
    ) -> StoreResult<Vec<pb::DunningAction>>;

    async fn list_actions(
        &self,
        filter: &ActionFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<pb::DunningAction>>;

    /// The answer of an earlier RunDunning with this request id; `KeyReused` for other
    /// content.
    async fn dunning_run(
        &self,
        key: &IdempotencyKey,
    ) -> StoreResult<Option<pb::RunDunningResponse>>;

    async fn save_dunning_run(
        &self,
        key: &IdempotencyKey,
        response: &pb::RunDunningResponse,
    ) -> StoreResult<()>;
}

fn now() -> DateTime<Utc> {
    super::stored_time(Utc::now())
}

fn decode_policy(document: &[u8]) -> StoreResult<pb::DunningPolicy> {
    pb::DunningPolicy::decode(document)
        .map_err(|error| StoreError::Corrupt(format!("dunning policy: {error}")))
}

fn decode_action(document: &[u8]) -> StoreResult<pb::DunningAction> {
    pb::DunningAction::decode(document)
        .map_err(|error| StoreError::Corrupt(format!("dunning action: {error}")))
}

/// The latest version of every policy.
const LATEST_POLICIES: &str = "SELECT document FROM dunning_policies AS p \
     WHERE p.version = (SELECT MAX(newer.version) FROM dunning_policies AS newer WHERE newer.policy_id = p.policy_id) \
     ORDER BY p.policy_id";

/// Publishes the next version of `$policy_id` inside `$tx` (which holds the policy lock), as
/// `$admit` returns it from the latest version of every policy; evaluates to the policy
/// stored. Shared by the direct publication (the shipped policy) and a proposal's approval.
macro_rules! publish_policy_version {
    ($tx:expr, $sql:ident, $policy_id:expr, $request_id:expr, $fingerprint:expr, $publisher:expr, $admit:expr) => {
        async {
            let policy_id: &str = $policy_id;
            let latest: Vec<Vec<u8>> = sqlx::query_scalar(&$sql(LATEST_POLICIES))
                .fetch_all(&mut *$tx)
                .await?;
            let latest = latest
                .iter()
                .map(|document| decode_policy(document))
                .collect::<StoreResult<Vec<_>>>()?;
            let version: i64 = sqlx::query_scalar(&$sql(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM dunning_policies WHERE policy_id = $1",
            ))
            .bind(policy_id)
            .fetch_one(&mut *$tx)
            .await?;
            let version_number = u32::try_from(version)
                .map_err(|_| StoreError::Corrupt(format!("policy {policy_id} version {version}")))?;
            let policy = ($admit)(&latest, version_number).map_err(StoreError::refused)?;
            sqlx::query(&$sql(
                "INSERT INTO dunning_policies (policy_id, version, document, request_id, fingerprint, published_at, published_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            ))
            .bind(policy_id)
            .bind(version)
            .bind(policy.encode_to_vec())
            .bind($request_id)
            .bind($fingerprint)
            .bind(now())
            .bind($publisher)
            .execute(&mut *$tx)
            .await?;
            Ok::<pb::DunningPolicy, StoreError>(policy)
        }
        .await
    };
}

mod proposals;

pub use proposals::{DunningProposalStore, PolicyDecider, PolicyProposal, PolicyProposalFilter};

#[async_trait]
impl DunningStore for SqlReceivableStore {
    async fn publish_policy(
        &self,
        policy_id: &str,
        key: &IdempotencyKey,
        admit: PolicyAdmission<'_>,
    ) -> StoreResult<Outcome<pb::DunningPolicy>> {
        retry_once_on_race(|| async {
            on_database!(self.database(), |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                sqlx::query(&sql(
                    "UPDATE dunning_policy_lock SET publications = publications + 1 WHERE id = 1",
                ))
                .execute(&mut *tx)
                .await?;
                let existing: Option<(String, Vec<u8>)> =
                    sqlx::query_as(&sql("SELECT fingerprint, document FROM dunning_policies \
                     WHERE published_by = $1 AND request_id = $2"))
                    .bind(&key.caller)
                    .bind(&key.request_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some((stored, document)) = existing {
                    if stored != key.fingerprint {
                        return Err(StoreError::KeyReused(KeyReused));
                    }
                    return Ok(Outcome::Replayed(decode_policy(&document)?));
                }
                let policy = publish_policy_version!(
                    tx,
                    sql,
                    policy_id,
                    &key.request_id,
                    &key.fingerprint,
                    // The publisher is the key's caller: its request ids are its own.
                    &key.caller,
                    admit
                )?;
                tx.commit().await?;
                Ok(Outcome::New(policy))
            })
        })
        .await
    }

    async fn latest_policies(&self) -> StoreResult<Vec<pb::DunningPolicy>> {
        let documents: Vec<Vec<u8>> = on_database!(self.database(), |pool, sql| {
            sqlx::query_scalar(&sql(LATEST_POLICIES))
                .fetch_all(pool)
                .await?
        });
        documents
            .iter()
            .map(|document| decode_policy(document))
            .collect()
    }

    async fn policies(
        &self,
        all_versions: bool,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<pb::DunningPolicy>> {
        let (after_id, after_version) = after
            .and_then(|key| key.rsplit_once('/'))
            .and_then(|(id, version)| Some((id.to_owned(), version.parse::<i64>().ok()?)))
            .unwrap_or_default();
        let documents: Vec<Vec<u8>> = on_database!(self.database(), |pool, sql| {
            sqlx::query_scalar(&sql(
                "SELECT document FROM dunning_policies AS p \
                 WHERE ($1 OR p.version = (SELECT MAX(newer.version) FROM dunning_policies AS newer WHERE newer.policy_id = p.policy_id)) \
                 AND ($2 = '' OR p.policy_id > $2 OR (p.policy_id = $2 AND p.version < $3)) \
                 ORDER BY p.policy_id, p.version DESC LIMIT $4",
            ))
            .bind(all_versions)
            .bind(&after_id)
            .bind(after_version)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        documents
            .iter()
            .map(|document| decode_policy(document))
            .collect()
    }

    async fn taken_levels(&self, customer_ids: Option<&[String]>) -> StoreResult<Vec<TakenLevel>> {
        // Per customer through its index (GetInvoice and ListInvoices ask for one); every
        // customer only for a run over the whole portfolio.
        let scopes: Vec<&str> = match customer_ids {
            Some(customers) => customers.iter().map(String::as_str).collect(),
            None => vec![""],
        };
        let mut taken = Vec::new();
        for customer in scopes {
            let rows: Vec<(String, i32, NaiveDate)> = on_database!(self.database(), |pool, sql| {
                sqlx::query_as(&sql(
                    "SELECT invoice_id, level, as_of_date FROM dunning_actions \
                     WHERE ($1 = '' OR customer_id = $1)",
                ))
                .bind(customer)
                .fetch_all(pool)
                .await?
            });
            taken.extend(
                rows.into_iter()
                    .map(|(invoice_id, level, as_of)| TakenLevel {
                        invoice_id,
                        level: u32::try_from(level).unwrap_or(0),
                        as_of,
                    }),
            );
        }
        Ok(taken)
    }

    async fn record_actions(
        &self,
        actions: &[(pb::DunningAction, Event)],
    ) -> StoreResult<Vec<pb::DunningAction>> {
        on_database!(self.database(), |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let mut stored = Vec::new();
            for (action, event) in actions {
                let as_of = action
                    .as_of_date
                    .as_ref()
                    .and_then(|date| {
                        NaiveDate::from_ymd_opt(
                            date.year,
                            u32::try_from(date.month).ok()?,
                            u32::try_from(date.day).ok()?,
                        )
                    })
                    .ok_or_else(|| {
                        StoreError::Corrupt("a dunning action without its date".into())
                    })?;
                let inserted = sqlx::query(&sql(
                    "INSERT INTO dunning_actions (action_id, customer_id, invoice_id, level, as_of_date, document) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (invoice_id, level) DO NOTHING",
                ))
                .bind(&action.action_id)
                .bind(&action.customer_id)
                .bind(&action.invoice_id)
                .bind(action.level)
                .bind(as_of)
                .bind(action.encode_to_vec())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if inserted {
                    insert_outbox_event!(tx, sql, event)?;
                    stored.push(action.clone());
                }
            }
            tx.commit().await?;
            Ok(stored)
        })
    }

    async fn list_actions(
        &self,
        filter: &ActionFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<pb::DunningAction>> {
        let after = after.unwrap_or("");
        let documents: Vec<Vec<u8>> = on_database!(self.database(), |pool, sql| {
            sqlx::query_scalar(&sql("SELECT document FROM dunning_actions \
                 WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR invoice_id = $2) \
                 AND ($3 = '' OR action_id < $3) ORDER BY action_id DESC LIMIT $4"))
            .bind(&filter.customer_id)
            .bind(&filter.invoice_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        documents
            .iter()
            .map(|document| decode_action(document))
            .filter(|action| {
                action.as_ref().map_or(true, |action| {
                    filter.case_id.is_empty() || action.case_id == filter.case_id
                })
            })
            .collect()
    }

    async fn dunning_run(
        &self,
        key: &IdempotencyKey,
    ) -> StoreResult<Option<pb::RunDunningResponse>> {
        let request_id = &key.request_id;
        let row: Option<(String, Vec<u8>)> = on_database!(self.database(), |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT fingerprint, response FROM dunning_runs WHERE caller = $1 AND request_id = $2",
            ))
            .bind(&key.caller)
            .bind(request_id)
            .fetch_optional(pool)
            .await?
        });
        let Some((stored, response)) = row else {
            return Ok(None);
        };
        if stored != key.fingerprint {
            return Err(StoreError::KeyReused(KeyReused));
        }
        pb::RunDunningResponse::decode(response.as_slice())
            .map(Some)
            .map_err(|error| StoreError::Corrupt(format!("dunning run {request_id}: {error}")))
    }

    async fn save_dunning_run(
        &self,
        key: &IdempotencyKey,
        response: &pb::RunDunningResponse,
    ) -> StoreResult<()> {
        on_database!(self.database(), |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO dunning_runs (caller, request_id, fingerprint, response, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (caller, request_id) DO NOTHING",
            ))
            .bind(&key.caller)
            .bind(&key.request_id)
            .bind(&key.fingerprint)
            .bind(response.encode_to_vec())
            .bind(now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
