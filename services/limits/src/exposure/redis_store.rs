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
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use credit_runtime::RedisHandle;
use redis::Script;
use tokio::sync::oneshot;

use super::model::{
    Adjustment, AuthorizeInput, AuthorizeOutcome, CustomerProfile, CustomerUpdate, Decision, Fence,
    GroupPosition, GroupProfile, GroupUpdate, Level, Limit, Outcome, ProfileStatus, ReasonCode,
    RuleFigures, UpdateOutcome, check_adjustment, check_authorize_input, check_customer_profile,
    check_customer_update, check_group_profile, check_group_update, check_id,
};
use super::{ExposureCache, ExposureError};

/// The rules, the checks and the reservation in one atomic call (see the script's header for
/// its keys, arguments and reply).
static AUTHORIZE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/authorize.lua")));
/// Add or release at both levels, both or neither, never on a cold key.
static ADJUST: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/adjust.lua")));
/// Field changes on a hash that exists, never creating one.
static UPDATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/update.lua")));

// Hash fields, shared by the writers here and the Lua scripts (which spell them the same).
/// How long a generation outlives its last change: far longer than any rebuild takes.
const GENERATION_TTL_SECONDS: i64 = 3_600;
const CUSTOMER_ID: &str = "customer_id";
const GROUP_ID: &str = "group_id";
const STATUS: &str = "status";
const LIMIT_AMOUNT: &str = "limit_amount";
const LIMIT_VALID_UNTIL: &str = "limit_valid_until";
const LIMIT_CURRENCY: &str = "limit_currency";
const BLOCKED: &str = "blocked";
const OLDEST_OVERDUE_DAYS: &str = "oldest_overdue_days";
const OVERDUE_TOLERANCE_DAYS: &str = "overdue_tolerance_days";
const RATING_REQUIRED: &str = "rating_required";
const RATING_VALID_UNTIL: &str = "rating_valid_until";
const ORDER_CAP: &str = "order_cap";
const TOLERANCE_BPS: &str = "tolerance_bps";
const EXPOSURE: &str = "exposure";
const EPOCH: &str = "epoch";

/// The scripts' refusals: `["ERROR", code, subject, detail]` replies (not Redis errors, to
/// which Redis appends script details).
const REFUSED: &str = "ERROR";
const OUT_OF_RANGE: &str = "RANGE";
const CORRUPT: &str = "CORRUPT";
const CURRENCY: &str = "CURRENCY";

/// The exposure cache on Redis, under the key prefix of the [`RedisHandle`]. Cheap to clone:
/// the connection is multiplexed and shared.
#[derive(Debug, Clone)]
pub struct RedisExposureCache {
    redis: RedisHandle,
    tags: TagMemo,
    coalescer: Coalescer,
}

/// The most orders one authorize script call decides; more wait for the next call.
const MAX_ORDERS_PER_CALL: usize = 64;

type Decided = Result<AuthorizeOutcome, ExposureError>;

/// An order waiting for the script call in flight for its customer to finish.
struct Waiting {
    input: AuthorizeInput,
    done: oneshot::Sender<Decided>,
}

/// Natural batching of the authorize script per customer, as group commit does for the
/// ledger: while one call for a customer is in flight, further orders for that customer wait
/// in its queue, and when the call returns, everything queued goes in one call. No timer: a
/// lone order never waits, and a batch holds what arrived during one round trip.
///
/// Redis spends most of a call reading the two hashes and setting up the script; decided in
/// one call, orders share that (measured with redis-benchmark on the benchmark machine: about
/// 30 µs of Redis for a call alone, 12–15 µs per order in calls of 20). The decisions are those of separate
/// calls in the queue's order, so the rules and the limits hold exactly as before.
#[derive(Clone, Default)]
struct Coalescer {
    /// For each customer key with a call in flight, the orders that wait for the next call.
    queues: Arc<Mutex<HashMap<String, Vec<Waiting>>>>,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Coalescer").finish_non_exhaustive()
    }
}

impl Coalescer {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Waiting>>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Either queues the order behind the call in flight for `customer_key` (returning the
    /// receiver of its outcome) or, when there is none, marks one as in flight (returning
    /// `None`: the caller makes the call).
    fn join(
        &self,
        customer_key: &str,
        input: &AuthorizeInput,
    ) -> Option<oneshot::Receiver<Decided>> {
        let mut queues = self.lock();
        match queues.get_mut(customer_key) {
            Some(waiting) => {
                let (done, outcome) = oneshot::channel();
                waiting.push(Waiting {
                    input: input.clone(),
                    done,
                });
                Some(outcome)
            }
            None => {
                queues.insert(customer_key.to_owned(), Vec::new());
                None
            }
        }
    }

    /// The next batch of orders waiting for `customer_key`; `None` (and the customer no longer
    /// in flight) when nobody waits.
    fn next_batch(&self, customer_key: &str) -> Option<Vec<Waiting>> {
        let mut queues = self.lock();
        let waiting = queues.get_mut(customer_key)?;
        if waiting.is_empty() {
            queues.remove(customer_key);
            return None;
        }
        let take = waiting.len().min(MAX_ORDERS_PER_CALL);
        Some(waiting.drain(..take).collect())
    }
}

/// Held by the caller whose call is in flight. When it is done, or dropped because its caller
/// went away mid-call, the orders that queued meanwhile are decided by a task of their own, so
/// no order ever waits for a call that nobody makes.
struct InFlight<'a> {
    cache: &'a RedisExposureCache,
    tag: &'a str,
    customer_key: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let Some(batch) = self.cache.coalescer.next_batch(self.customer_key) else {
            return;
        };
        let cache = self.cache.clone();
        let tag = self.tag.to_owned();
        let customer_key = self.customer_key.to_owned();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { cache.decide_queued(tag, customer_key, batch).await });
            }
            // Only when the runtime itself is going away: nobody could make the call.
            Err(_) => {
                let stopped = ExposureError::Redis(redis::RedisError::from(std::io::Error::other(
                    "the runtime stopped before the call was made",
                )));
                for waiting in batch {
                    let _ = waiting.done.send(Err(stopped.clone()));
                }
                cache.coalescer.lock().remove(&customer_key);
            }
        }
    }
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

fn flag(value: bool) -> String {
    if value { "1" } else { "0" }.to_owned()
}

/// The limit's fields to set, or to delete when there is no limit (or no expiry).
fn limit_fields(
    limit: Option<&Limit>,
    set: &mut Vec<(&'static str, String)>,
    delete: &mut Vec<&'static str>,
) {
    match limit {
        Some(limit) => {
            set.push((LIMIT_AMOUNT, limit.amount.to_string()));
            match limit.valid_until {
                Some(valid_until) => set.push((LIMIT_VALID_UNTIL, valid_until.to_string())),
                None => delete.push(LIMIT_VALID_UNTIL),
            }
        }
        None => delete.extend([LIMIT_AMOUNT, LIMIT_VALID_UNTIL]),
    }
}

fn customer_fields(profile: &CustomerProfile) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        (CUSTOMER_ID, profile.customer_id.clone()),
        (STATUS, profile.status.as_str().to_owned()),
        (BLOCKED, flag(profile.blocked)),
        (OLDEST_OVERDUE_DAYS, profile.oldest_overdue_days.to_string()),
        (
            OVERDUE_TOLERANCE_DAYS,
            profile.overdue_tolerance_days.to_string(),
        ),
        (RATING_REQUIRED, flag(profile.rating_required)),
        (TOLERANCE_BPS, profile.tolerance_bps.to_string()),
        (EXPOSURE, profile.exposure.to_string()),
        (EPOCH, profile.epoch.to_string()),
    ];
    if let Some(group_id) = &profile.group_id {
        fields.push((GROUP_ID, group_id.clone()));
    }
    if let Some(currency) = &profile.limit_currency {
        fields.push((LIMIT_CURRENCY, currency.clone()));
    }
    let mut not_stored = Vec::new();
    limit_fields(profile.limit.as_ref(), &mut fields, &mut not_stored);
    if let Some(valid_until) = profile.rating_valid_until {
        fields.push((RATING_VALID_UNTIL, valid_until.to_string()));
    }
    if let Some(order_cap) = profile.order_cap {
        fields.push((ORDER_CAP, order_cap.to_string()));
    }
    fields
}

fn group_fields(profile: &GroupProfile) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        (GROUP_ID, profile.group_id.clone()),
        (TOLERANCE_BPS, profile.tolerance_bps.to_string()),
        (EXPOSURE, profile.exposure.to_string()),
        (EPOCH, profile.epoch.to_string()),
    ];
    let mut not_stored = Vec::new();
    limit_fields(profile.limit.as_ref(), &mut fields, &mut not_stored);
    fields
}

/// The fields a [`CustomerUpdate`] sets and deletes; exposure and epoch are never among them.
fn customer_update_fields(
    update: &CustomerUpdate,
) -> (Vec<(&'static str, String)>, Vec<&'static str>) {
    let mut set = Vec::new();
    let mut delete = Vec::new();
    if let Some(status) = update.status {
        set.push((STATUS, status.as_str().to_owned()));
    }
    if let Some(limit) = &update.limit {
        limit_fields(limit.as_ref(), &mut set, &mut delete);
    }
    if let Some(blocked) = update.blocked {
        set.push((BLOCKED, flag(blocked)));
    }
    if let Some(days) = update.oldest_overdue_days {
        set.push((OLDEST_OVERDUE_DAYS, days.to_string()));
    }
    if let Some(days) = update.overdue_tolerance_days {
        set.push((OVERDUE_TOLERANCE_DAYS, days.to_string()));
    }
    if let Some(required) = update.rating_required {
        set.push((RATING_REQUIRED, flag(required)));
    }
    match update.rating_valid_until {
        Some(Some(valid_until)) => set.push((RATING_VALID_UNTIL, valid_until.to_string())),
        Some(None) => delete.push(RATING_VALID_UNTIL),
        None => {}
    }
    match update.order_cap {
        Some(Some(order_cap)) => set.push((ORDER_CAP, order_cap.to_string())),
        Some(None) => delete.push(ORDER_CAP),
        None => {}
    }
    if let Some(tolerance_bps) = update.tolerance_bps {
        set.push((TOLERANCE_BPS, tolerance_bps.to_string()));
    }
    (set, delete)
}

// ---- decoding --------------------------------------------------------------------------

fn corrupt(key: &str, detail: String) -> ExposureError {
    ExposureError::CorruptEntry {
        key: key.to_owned(),
        detail,
    }
}

fn unexpected_reply(key: &str, reply: &[String]) -> ExposureError {
    corrupt(key, format!("unexpected script reply {reply:?}"))
}

fn parse_number<T: std::str::FromStr>(
    key: &str,
    field: &str,
    text: &str,
) -> Result<T, ExposureError> {
    text.parse()
        .map_err(|_| corrupt(key, format!("{field} {text:?} is not a valid number")))
}

/// An optional number in a script reply: the empty string stands for "none".
fn optional_number<T: std::str::FromStr>(
    key: &str,
    field: &str,
    text: &str,
) -> Result<Option<T>, ExposureError> {
    if text.is_empty() {
        return Ok(None);
    }
    parse_number(key, field, text).map(Some)
}

fn required<'a>(
    key: &str,
    fields: &'a HashMap<String, String>,
    field: &str,
) -> Result<&'a str, ExposureError> {
    fields
        .get(field)
        .map(String::as_str)
        .ok_or_else(|| corrupt(key, format!("{field} is missing")))
}

fn required_number<T: std::str::FromStr>(
    key: &str,
    fields: &HashMap<String, String>,
    field: &str,
) -> Result<T, ExposureError> {
    parse_number(key, field, required(key, fields, field)?)
}

fn stored_number<T: std::str::FromStr>(
    key: &str,
    fields: &HashMap<String, String>,
    field: &str,
) -> Result<Option<T>, ExposureError> {
    fields
        .get(field)
        .map(|text| parse_number(key, field, text))
        .transpose()
}

fn stored_limit(
    key: &str,
    fields: &HashMap<String, String>,
) -> Result<Option<Limit>, ExposureError> {
    let Some(amount) = stored_number(key, fields, LIMIT_AMOUNT)? else {
        return Ok(None);
    };
    Ok(Some(Limit {
        amount,
        valid_until: stored_number(key, fields, LIMIT_VALID_UNTIL)?,
    }))
}

fn parse_customer(
    key: &str,
    fields: &HashMap<String, String>,
) -> Result<CustomerProfile, ExposureError> {
    Ok(CustomerProfile {
        customer_id: required(key, fields, CUSTOMER_ID)?.to_owned(),
        group_id: fields.get(GROUP_ID).cloned(),
        status: ProfileStatus::parse(required(key, fields, STATUS)?),
        limit: stored_limit(key, fields)?,
        limit_currency: fields.get(LIMIT_CURRENCY).cloned(),
        blocked: required(key, fields, BLOCKED)? == "1",
        oldest_overdue_days: required_number(key, fields, OLDEST_OVERDUE_DAYS)?,
        overdue_tolerance_days: required_number(key, fields, OVERDUE_TOLERANCE_DAYS)?,
        rating_required: required(key, fields, RATING_REQUIRED)? == "1",
        rating_valid_until: stored_number(key, fields, RATING_VALID_UNTIL)?,
        order_cap: stored_number(key, fields, ORDER_CAP)?,
        tolerance_bps: required_number(key, fields, TOLERANCE_BPS)?,
        exposure: required_number(key, fields, EXPOSURE)?,
        epoch: required_number(key, fields, EPOCH)?,
    })
}

fn parse_group(key: &str, fields: &HashMap<String, String>) -> Result<GroupProfile, ExposureError> {
    Ok(GroupProfile {
        group_id: required(key, fields, GROUP_ID)?.to_owned(),
        limit: stored_limit(key, fields)?,
        tolerance_bps: required_number(key, fields, TOLERANCE_BPS)?,
        exposure: required_number(key, fields, EXPOSURE)?,
        epoch: required_number(key, fields, EPOCH)?,
    })
}

/// What the authorize script reports once per call: the epochs the reservations were made in
/// and the profile's figures the rules compared (see the script's header).
#[derive(Debug, Clone)]
struct CallProfile {
    epoch: u64,
    group: Option<CallGroup>,
    figures: RuleFigures,
}

#[derive(Debug, Clone)]
struct CallGroup {
    group_id: String,
    epoch: u64,
    tolerance_bps: u32,
}

/// Decodes the profile the authorize script sends before its orders' replies. It is empty
/// when the script decided no order, and then no order's reply asks for it.
fn parse_call_profile(key: &str, reply: &[String]) -> Result<CallProfile, ExposureError> {
    let [
        epoch,
        group_id,
        group_epoch,
        group_tolerance_bps,
        status,
        oldest_overdue_days,
        overdue_tolerance_days,
        order_cap,
        tolerance_bps,
    ] = reply
    else {
        return Err(unexpected_reply(key, reply));
    };
    let group = if group_id.is_empty() {
        None
    } else {
        Some(CallGroup {
            group_id: group_id.clone(),
            epoch: parse_number(key, EPOCH, group_epoch)?,
            tolerance_bps: parse_number(key, TOLERANCE_BPS, group_tolerance_bps)?,
        })
    };
    Ok(CallProfile {
        epoch: parse_number(key, EPOCH, epoch)?,
        group,
        figures: RuleFigures {
            status: ProfileStatus::parse(status),
            oldest_overdue_days: parse_number(key, OLDEST_OVERDUE_DAYS, oldest_overdue_days)?,
            overdue_tolerance_days: parse_number(
                key,
                OVERDUE_TOLERANCE_DAYS,
                overdue_tolerance_days,
            )?,
            order_cap: optional_number(key, ORDER_CAP, order_cap)?,
            tolerance_bps: parse_number(key, TOLERANCE_BPS, tolerance_bps)?,
        },
    })
}

/// One order's reply of the authorize script (see the script's header), with the call's
/// profile.
fn parse_authorize_reply(
    customer_key: &str,
    profile: &Result<CallProfile, ExposureError>,
    reply: &[String],
) -> Decided {
    match reply {
        [status, code, subject, detail] if status == REFUSED => {
            Err(refusal(customer_key, code, subject, detail))
        }
        [status, customer, group] if status == "COLD" => Ok(AuthorizeOutcome::Cold {
            customer: customer == "1",
            group: group == "1",
        }),
        [status, rest @ ..] if status == "DECIDED" => {
            let profile = profile.as_ref().map_err(Clone::clone)?;
            Ok(AuthorizeOutcome::Decided(parse_decision(
                customer_key,
                profile,
                rest,
            )?))
        }
        _ => Err(unexpected_reply(customer_key, reply)),
    }
}

/// Decodes the `DECIDED` reply of `lua/authorize.lua` (after its first element).
fn parse_decision(
    key: &str,
    profile: &CallProfile,
    reply: &[String],
) -> Result<Decision, ExposureError> {
    let [
        outcome,
        reasons,
        reserved,
        exposure_after,
        limit,
        group_limit,
        group_exposure_after,
    ] = reply
    else {
        return Err(unexpected_reply(key, reply));
    };
    let outcome = Outcome::parse(outcome)
        .ok_or_else(|| corrupt(key, format!("unknown outcome {outcome:?} in script reply")))?;
    let reasons = reasons
        .split(',')
        .filter(|reason| !reason.is_empty())
        .map(|reason| {
            ReasonCode::parse(reason)
                .ok_or_else(|| corrupt(key, format!("unknown reason {reason:?} in script reply")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let exposure_after: i64 = parse_number(key, EXPOSURE, exposure_after)?;
    let limit: Option<i64> = optional_number(key, LIMIT_AMOUNT, limit)?;
    let group = match &profile.group {
        None => None,
        Some(group) => {
            let limit: Option<i64> = optional_number(key, LIMIT_AMOUNT, group_limit)?;
            let exposure_after: i64 = parse_number(key, EXPOSURE, group_exposure_after)?;
            Some(GroupPosition {
                group_id: group.group_id.clone(),
                limit,
                exposure_after,
                available_after: limit.map(|limit| limit.saturating_sub(exposure_after)),
                epoch: group.epoch,
                tolerance_bps: group.tolerance_bps,
            })
        }
    };
    Ok(Decision {
        outcome,
        reasons,
        limit,
        exposure_after,
        available_after: limit.map(|limit| limit.saturating_sub(exposure_after)),
        group,
        reserved: reserved == "1",
        epoch: profile.epoch,
        figures: profile.figures.clone(),
    })
}

/// The error for a script's `["ERROR", code, subject, detail]` refusal.
fn refusal(key: &str, code: &str, subject: &str, detail: &str) -> ExposureError {
    match code {
        OUT_OF_RANGE => ExposureError::ExposureOutOfRange {
            level: if subject == Level::Group.as_str() {
                Level::Group
            } else {
                Level::Customer
            },
            id: detail.to_owned(),
        },
        CURRENCY => ExposureError::CurrencyMismatch {
            limit_currency: subject.to_owned(),
        },
        CORRUPT => ExposureError::CorruptEntry {
            key: subject.to_owned(),
            detail: detail.to_owned(),
        },
        _ => corrupt(
            key,
            format!("unknown refusal {code:?} {subject:?} {detail:?}"),
        ),
    }
}
