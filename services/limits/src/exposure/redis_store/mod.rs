//! The production exposure cache on Redis: profiles as hashes, every decision one Lua script
//! call (EVALSHA, reloaded automatically after a Redis restart), so it stays atomic across all
//! replicas of the limits service.
//!
//! Orders for a customer that arrive while a script call for that customer is in flight wait
//! for it and then go together in the next call, which decides them one after the other (see
//! [`Coalescer`]). A lone order goes at once; a customer with many concurrent orders costs
//! Redis one script call per burst instead of one per order.
//!
//! # Key layout
//! All keys of a customer and of its group share one Redis Cluster hash tag — the group's id,
//! or the customer's own id when it has no group — so each script touches a single slot:
//! - `{prefix}{<tag>}:customer:<customer_id>`: hash of the customer's profile and exposure;
//! - `{prefix}{<group_id>}:group:<group_id>`: hash of the group's profile and exposure;
//! - `{prefix}customer-tag:<customer_id>`: string, the customer's tag, so a caller knowing only
//!   the customer id finds its keys (one GET before the script; it lives in another slot).
//!   Each process remembers the tags it has seen, so a warm customer costs the script alone.
//!
//! Optional fields (`group_id`, `limit_amount`, `limit_valid_until`, `rating_valid_until`,
//! `order_cap`) are absent from the hash when `None`; flags are `"1"`/`"0"`; numbers decimal.
//!
//! When a customer changes group its tag changes: the caller evicts it and loads it again
//! (loading also deletes a copy left under the old tag) and rebuilds both groups.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use credit_runtime::RedisHandle;
use redis::Script;

use super::model::{
    Adjustment, AuthorizeInput, AuthorizeOutcome, CustomerProfile, CustomerUpdate, Fence,
    GroupProfile, GroupUpdate, UpdateOutcome, check_adjustment, check_authorize_input,
    check_customer_profile, check_customer_update, check_group_profile, check_group_update,
    check_id,
};
use super::{ExposureCache, ExposureError};

mod coalesce;
mod encoding;

use coalesce::{Coalescer, InFlight, Waiting};
use encoding::{
    EXPOSURE, GENERATION_TTL_SECONDS, REFUSED, TOLERANCE_BPS, corrupt, customer_fields,
    customer_update_fields, group_fields, limit_fields, optional_number, parse_authorize_reply,
    parse_call_profile, parse_customer, parse_group, parse_number, refusal, unexpected_reply,
};

type Decided = Result<AuthorizeOutcome, ExposureError>;

/// The rules, the checks and the reservation in one atomic call (see the script's header for
/// its keys, arguments and reply).
static AUTHORIZE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/authorize.lua")));
/// Add or release at both levels, both or neither, never on a cold key.
static ADJUST: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/adjust.lua")));
/// Field changes on a hash that exists, never creating one.
static UPDATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/update.lua")));

// Hash fields, shared by the writers here and the Lua scripts (which spell them the same).
/// The exposure cache on Redis, under the key prefix of the [`RedisHandle`]. Cheap to clone:
/// the connection is multiplexed and shared.
#[derive(Debug, Clone)]
pub struct RedisExposureCache {
    redis: RedisHandle,
    tags: TagMemo,
    coalescer: Coalescer,
}

/// The hash tags this process has seen, so the hot path skips the index GET (a round trip)
/// for a customer it has served before. Only a hint: a tag that no longer finds the profile
/// is forgotten and the index asked, so a stale entry costs one extra call, never a wrong
/// decision. Bounded by clearing it when full, which only costs those GETs again.
#[derive(Debug, Clone, Default)]
struct TagMemo {
    tags: std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>,
}

impl TagMemo {
    const CAPACITY: usize = 100_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.tags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn recall(&self, customer_id: &str) -> Option<String> {
        self.lock().get(customer_id).cloned()
    }

    fn remember(&self, customer_id: &str, tag: &str) {
        let mut tags = self.lock();
        if tags.len() >= Self::CAPACITY {
            tags.clear();
        }
        tags.insert(customer_id.to_owned(), tag.to_owned());
    }

    fn forget(&self, customer_id: &str) {
        self.lock().remove(customer_id);
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

impl RedisExposureCache {
    /// A cache over `redis`; every key starts with its key prefix. The scripts are loaded on
    /// first use (and again after Redis forgets them).
    pub fn new(redis: RedisHandle) -> Self {
        Self {
            redis,
            tags: TagMemo::default(),
            coalescer: Coalescer::default(),
        }
    }

    fn customer_key(&self, tag: &str, customer_id: &str) -> String {
        self.redis.key(&format!("{{{tag}}}:customer:{customer_id}"))
    }

    fn group_key(&self, group_id: &str) -> String {
        self.redis.key(&format!("{{{group_id}}}:group:{group_id}"))
    }

    fn tag_index_key(&self, customer_id: &str) -> String {
        self.redis.key(&format!("customer-tag:{customer_id}"))
    }

    /// The count of a customer's (`kind` "customer") or group's evictions, and that of
    /// evictions of everything.
    fn generation_keys(&self, kind: &str, id: &str) -> [String; 2] {
        [
            self.redis.key(&format!("generation:{kind}:{id}")),
            self.redis.key("generation:all"),
        ]
    }

    async fn generation(&self, kind: &str, id: &str) -> Result<u64, ExposureError> {
        let mut connection = self.redis.connection();
        let counts: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&self.generation_keys(kind, id))
            .query_async(&mut connection)
            .await?;
        Ok(counts.into_iter().flatten().fold(0, u64::wrapping_add))
    }

    /// Moves a generation on. It lives long enough to outlast any rebuild in flight; one
    /// that expired reads as 0, which a rebuild that read it before compares unequal with.
    async fn bump_generation(&self, key: &str) -> Result<(), ExposureError> {
        let mut connection = self.redis.connection();
        redis::pipe()
            .incr(key, 1)
            .ignore()
            .expire(key, GENERATION_TTL_SECONDS)
            .ignore()
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    /// The customer's hash tag, `None` when the customer is not cached.
    async fn tag_of(&self, customer_id: &str) -> Result<Option<String>, ExposureError> {
        let mut connection = self.redis.connection();
        Ok(redis::cmd("GET")
            .arg(self.tag_index_key(customer_id))
            .query_async(&mut connection)
            .await?)
    }

    /// Whether the group the caller believes in is cold, reported along with a cold customer
    /// so that one rebuild warms both.
    async fn believed_group_is_cold(&self, group_id: Option<&str>) -> Result<bool, ExposureError> {
        let Some(group_id) = group_id else {
            return Ok(false);
        };
        let mut connection = self.redis.connection();
        let exists: bool = redis::cmd("EXISTS")
            .arg(self.group_key(group_id))
            .query_async(&mut connection)
            .await?;
        Ok(!exists)
    }

    /// The customer's profile hash under `tag`; `None` when there is none.
    async fn customer_under(
        &self,
        tag: &str,
        customer_id: &str,
    ) -> Result<Option<CustomerProfile>, ExposureError> {
        let key = self.customer_key(tag, customer_id);
        self.read_hash(&key, parse_customer).await
    }

    /// A profile hash, parsed; `None` when the key does not exist (an empty hash).
    async fn read_hash<T>(
        &self,
        key: &str,
        parse: fn(&str, &HashMap<String, String>) -> Result<T, ExposureError>,
    ) -> Result<Option<T>, ExposureError> {
        let mut connection = self.redis.connection();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut connection)
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        parse(key, &fields).map(Some)
    }

    /// The decision on one order with the customer's keys under `tag`: in a call of its own
    /// when none is in flight for the customer, otherwise in the next one (see [`Coalescer`]).
    async fn run_authorize(
        &self,
        tag: &str,
        input: &AuthorizeInput,
    ) -> Result<AuthorizeOutcome, ExposureError> {
        let customer_key = self.customer_key(tag, &input.customer_id);
        if let Some(outcome) = self.coalescer.join(&customer_key, input) {
            return outcome.await.unwrap_or_else(|_| {
                Err(ExposureError::Redis(redis::RedisError::from(
                    std::io::Error::other("the call deciding this order was dropped"),
                )))
            });
        }
        let _in_flight = InFlight {
            cache: self,
            tag,
            customer_key: &customer_key,
        };
        let mut outcomes = self.call_authorize(tag, &customer_key, &[input]).await?;
        outcomes
            .pop()
            .unwrap_or_else(|| Err(unexpected_reply(&customer_key, &[])))
    }

    /// Decides the orders that queued behind a call, batch after batch, until none wait.
    async fn decide_queued(self, tag: String, customer_key: String, mut batch: Vec<Waiting>) {
        loop {
            let inputs: Vec<&AuthorizeInput> = batch.iter().map(|waiting| &waiting.input).collect();
            match self.call_authorize(&tag, &customer_key, &inputs).await {
                Ok(outcomes) => {
                    for (waiting, outcome) in batch.into_iter().zip(outcomes) {
                        // A caller that went away leaves its reservation, if any, as one whose
                        // answer was lost: overstated exposure that reconciliation releases.
                        let _ = waiting.done.send(outcome);
                    }
                }
                Err(error) => {
                    for waiting in batch {
                        let _ = waiting.done.send(Err(error.clone()));
                    }
                }
            }
            match self.coalescer.next_batch(&customer_key) {
                Some(next) => batch = next,
                None => return,
            }
        }
    }

    /// One call of the authorize script for `inputs`, all of the customer under
    /// `customer_key`: the outcome of each, in order.
    async fn call_authorize(
        &self,
        tag: &str,
        customer_key: &str,
        inputs: &[&AuthorizeInput],
    ) -> Result<Vec<Decided>, ExposureError> {
        let mut invocation = AUTHORIZE.prepare_invoke();
        invocation
            .key(customer_key)
            .key(self.group_key(tag))
            .arg(tag);
        for input in inputs {
            invocation
                .arg(input.amount)
                .arg(input.now)
                .arg(if input.reserve { "1" } else { "0" })
                .arg(&input.currency);
        }
        let mut connection = self.redis.connection();
        let replies: Vec<Vec<String>> = invocation.invoke_async(&mut connection).await?;
        let Some((profile, orders)) = replies.split_first() else {
            return Err(unexpected_reply(customer_key, &[]));
        };
        if orders.len() != inputs.len() {
            return Err(corrupt(
                customer_key,
                format!(
                    "the script answered {} orders of {}",
                    orders.len(),
                    inputs.len()
                ),
            ));
        }
        // Parsed once for the call; an error in it concerns only the orders it decided.
        let profile = parse_call_profile(customer_key, profile);
        Ok(orders
            .iter()
            .map(|reply| parse_authorize_reply(customer_key, &profile, reply))
            .collect())
    }

    async fn adjust(
        &self,
        customer_id: &str,
        group_id: Option<&str>,
        change: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError> {
        let Some(tag) = self.tag_of(customer_id).await? else {
            return Ok(Adjustment::Cold {
                customer: true,
                group: self.believed_group_is_cold(group_id).await?,
            });
        };
        let customer_key = self.customer_key(&tag, customer_id);
        let mut connection = self.redis.connection();
        let reply: Vec<String> = ADJUST
            .key(&customer_key)
            .key(self.group_key(&tag))
            .arg(change)
            .arg(&tag)
            .arg(
                fence
                    .customer_epoch
                    .map(|epoch| epoch.to_string())
                    .unwrap_or_default(),
            )
            .arg(
                fence
                    .group_epoch
                    .map(|epoch| epoch.to_string())
                    .unwrap_or_default(),
            )
            .invoke_async(&mut connection)
            .await?;
        match reply.as_slice() {
            [status, code, subject, detail] if status == REFUSED => {
                Err(refusal(&customer_key, code, subject, detail))
            }
            [status, customer, group] if status == "COLD" => {
                if customer == "1" {
                    return Ok(Adjustment::Cold {
                        customer: true,
                        group: self.believed_group_is_cold(group_id).await?,
                    });
                }
                Ok(Adjustment::Cold {
                    customer: false,
                    group: group == "1",
                })
            }
            [status, customer_exposure, group_exposure] if status == "APPLIED" => {
                Ok(Adjustment::Applied {
                    customer_exposure: parse_number(&customer_key, EXPOSURE, customer_exposure)?,
                    group_exposure: optional_number(&customer_key, EXPOSURE, group_exposure)?,
                })
            }
            _ => Err(unexpected_reply(&customer_key, &reply)),
        }
    }

    /// Runs the update script on `key`: sets `set`, deletes `delete`, only if the hash exists.
    async fn update_hash(
        &self,
        key: &str,
        set: &[(&'static str, String)],
        delete: &[&'static str],
    ) -> Result<UpdateOutcome, ExposureError> {
        let mut invocation = UPDATE.key(key);
        invocation.arg(set.len());
        for (field, value) in set {
            invocation.arg(*field).arg(value);
        }
        for field in delete {
            invocation.arg(*field);
        }
        let mut connection = self.redis.connection();
        let updated: i64 = invocation.invoke_async(&mut connection).await?;
        Ok(if updated == 1 {
            UpdateOutcome::Updated
        } else {
            UpdateOutcome::NotCached
        })
    }
}

#[async_trait]
impl ExposureCache for RedisExposureCache {
    async fn authorize(&self, input: &AuthorizeInput) -> Result<AuthorizeOutcome, ExposureError> {
        check_authorize_input(input)?;
        let believed_group = input.group_id.as_deref();
        if let Some(tag) = self.tags.recall(&input.customer_id) {
            match self.run_authorize(&tag, input).await? {
                // The remembered tag may be stale (the customer was evicted or moved group):
                // ask the index before calling the customer cold.
                AuthorizeOutcome::Cold { customer: true, .. } => {
                    self.tags.forget(&input.customer_id);
                }
                outcome => return Ok(outcome),
            }
        }
        let Some(tag) = self.tag_of(&input.customer_id).await? else {
            return Ok(AuthorizeOutcome::Cold {
                customer: true,
                group: self.believed_group_is_cold(believed_group).await?,
            });
        };
        match self.run_authorize(&tag, input).await? {
            AuthorizeOutcome::Cold { customer: true, .. } => Ok(AuthorizeOutcome::Cold {
                customer: true,
                group: self.believed_group_is_cold(believed_group).await?,
            }),
            outcome => {
                self.tags.remember(&input.customer_id, &tag);
                Ok(outcome)
            }
        }
    }

    async fn release(
        &self,
        customer_id: &str,
        group_id: Option<&str>,
        amount: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError> {
        check_adjustment(customer_id, group_id, amount)?;
        self.adjust(customer_id, group_id, -amount, fence).await
    }

    async fn add(
        &self,
        customer_id: &str,
        group_id: Option<&str>,
        amount: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError> {
        check_adjustment(customer_id, group_id, amount)?;
        self.adjust(customer_id, group_id, amount, fence).await
    }

    async fn load_customer(&self, profile: &CustomerProfile) -> Result<(), ExposureError> {
        check_customer_profile(profile)?;
        let customer_id = &profile.customer_id;
        let tag = profile.group_id.as_deref().unwrap_or(customer_id);
        let key = self.customer_key(tag, customer_id);
        let previous_tag = self.tag_of(customer_id).await?;
        let mut connection = self.redis.connection();
        // Replace the whole hash in one transaction (one slot): no reader sees a mix of the
        // old and the new profile. Then point the index at it; a reader that still follows the
        // old index meanwhile sees the old profile, as it would have a moment earlier.
        let mut replace = redis::pipe();
        replace.atomic().del(&key).ignore();
        replace.cmd("HSET").arg(&key);
        for (field, value) in customer_fields(profile) {
            replace.arg(field).arg(value);
        }
        replace.ignore();
        replace.query_async::<()>(&mut connection).await?;
        redis::cmd("SET")
            .arg(self.tag_index_key(customer_id))
            .arg(tag)
            .query_async::<()>(&mut connection)
            .await?;
        if let Some(previous_tag) = previous_tag
            && previous_tag != tag
        {
            // The customer moved to another group: its old copy must not linger under the old
            // tag, where nothing would ever update it again.
            redis::cmd("DEL")
                .arg(self.customer_key(&previous_tag, customer_id))
                .query_async::<()>(&mut connection)
                .await?;
        }
        self.tags.remember(customer_id, tag);
        Ok(())
    }

    async fn load_group(&self, profile: &GroupProfile) -> Result<(), ExposureError> {
        check_group_profile(profile)?;
        let key = self.group_key(&profile.group_id);
        let mut connection = self.redis.connection();
        let mut replace = redis::pipe();
        replace.atomic().del(&key).ignore();
        replace.cmd("HSET").arg(&key);
        for (field, value) in group_fields(profile) {
            replace.arg(field).arg(value);
        }
        replace.ignore();
        replace.query_async::<()>(&mut connection).await?;
        Ok(())
    }

    async fn update_customer(
        &self,
        customer_id: &str,
        update: &CustomerUpdate,
    ) -> Result<UpdateOutcome, ExposureError> {
        check_id("customer_id", customer_id)?;
        check_customer_update(update)?;
        let Some(tag) = self.tag_of(customer_id).await? else {
            return Ok(UpdateOutcome::NotCached);
        };
        let (set, delete) = customer_update_fields(update);
        self.update_hash(&self.customer_key(&tag, customer_id), &set, &delete)
            .await
    }

    async fn update_group(
        &self,
        group_id: &str,
        update: &GroupUpdate,
    ) -> Result<UpdateOutcome, ExposureError> {
        check_id("group_id", group_id)?;
        check_group_update(update)?;
        let mut set = Vec::new();
        let mut delete = Vec::new();
        if let Some(limit) = &update.limit {
            limit_fields(limit.as_ref(), &mut set, &mut delete);
        }
        if let Some(tolerance_bps) = update.tolerance_bps {
            set.push((TOLERANCE_BPS, tolerance_bps.to_string()));
        }
        self.update_hash(&self.group_key(group_id), &set, &delete)
            .await
    }

    async fn get_customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<CustomerProfile>, ExposureError> {
        check_id("customer_id", customer_id)?;
        // The remembered tag first, as `authorize` does: a hash found there is the profile.
        if let Some(tag) = self.tags.recall(customer_id)
            && let Some(profile) = self.customer_under(&tag, customer_id).await?
        {
            return Ok(Some(profile));
        }
        let Some(tag) = self.tag_of(customer_id).await? else {
            return Ok(None);
        };
        self.customer_under(&tag, customer_id).await
    }

    async fn get_group(&self, group_id: &str) -> Result<Option<GroupProfile>, ExposureError> {
        check_id("group_id", group_id)?;
        let key = self.group_key(group_id);
        self.read_hash(&key, parse_group).await
    }

    async fn customer_generation(&self, customer_id: &str) -> Result<u64, ExposureError> {
        check_id("customer_id", customer_id)?;
        self.generation("customer", customer_id).await
    }

    async fn group_generation(&self, group_id: &str) -> Result<u64, ExposureError> {
        check_id("group_id", group_id)?;
        self.generation("group", group_id).await
    }

    async fn evict_customer(&self, customer_id: &str) -> Result<(), ExposureError> {
        check_id("customer_id", customer_id)?;
        let [generation, _] = self.generation_keys("customer", customer_id);
        self.bump_generation(&generation).await?;
        self.tags.forget(customer_id);
        let tag = self.tag_of(customer_id).await?;
        let mut connection = self.redis.connection();
        // The index first: from then on the customer reads as cold even if the hash deletion
        // below were lost.
        redis::cmd("DEL")
            .arg(self.tag_index_key(customer_id))
            .query_async::<()>(&mut connection)
            .await?;
        if let Some(tag) = tag {
            redis::cmd("DEL")
                .arg(self.customer_key(&tag, customer_id))
                .query_async::<()>(&mut connection)
                .await?;
        }
        Ok(())
    }

    async fn evict_group(&self, group_id: &str) -> Result<(), ExposureError> {
        check_id("group_id", group_id)?;
        let [generation, _] = self.generation_keys("group", group_id);
        self.bump_generation(&generation).await?;
        let mut connection = self.redis.connection();
        redis::cmd("DEL")
            .arg(self.group_key(group_id))
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    async fn evict_all(&self) -> Result<(), ExposureError> {
        let [_, generation] = self.generation_keys("all", "all");
        self.bump_generation(&generation).await?;
        self.tags.clear();
        let mut connection = self.redis.connection();
        // The index entries first: from then on every customer reads as cold. SCAN walks the
        // keyspace in steps, so a large cache is evicted without blocking Redis.
        for pattern in [
            self.tag_index_key("*"),
            self.redis.key("{*}:customer:*"),
            self.redis.key("{*}:group:*"),
        ] {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut connection)
                    .await?;
                if !keys.is_empty() {
                    redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async::<()>(&mut connection)
                        .await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }
}

// ---- encoding --------------------------------------------------------------------------
