//! Group commit of Authorize's durable writes on PostgreSQL (DESIGN.md: "Commits may be
//! batched (group commit) to raise throughput; they are never skipped").
//!
//! Each Authorize hands its write (a hold with its answer, or an answer with its referral and
//! ReferralCreated event) to a writer and waits for the commit. A writer takes whatever is
//! queued when it becomes free — never waiting for more, so one caller alone pays no delay —
//! and writes it in one transaction: a handful of statements for the whole batch instead of a
//! commit per order. Under load, batches grow by themselves.
//!
//! Every write keeps its own outcome: a duplicate idempotency key or a moved epoch refuses
//! that write alone, as the single-statement path does; only a failure of the transaction
//! itself (the database went away) fails the batch, and each caller then undoes its
//! reservation and answers UNAVAILABLE.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use credit_proto::v1::Event;
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::ledger::{
    Hold, LedgerError, LedgerResult, Referral, StoredAnswer, answer_statement,
    fenced_hold_statement,
};

/// The most writes one transaction takes; more wait for the next one.
const MAX_BATCH: usize = 128;
/// Writers work in turn: while one commits, the next gathers what arrived meanwhile.
const WRITERS: usize = 2;
/// Writes queued beyond this make callers wait to hand theirs over (back pressure).
const QUEUE: usize = 1024;

/// One durable write of Authorize.
#[derive(Debug)]
pub enum Write {
    /// An approval: the hold and the answer, fenced by the epochs the reservation was made in.
    Hold {
        hold: Box<Hold>,
        group_epoch: Option<(String, u64)>,
        answer: StoredAnswer,
    },
    /// A referred or declined answer, with the referral and its event when referred.
    Answer {
        answer: StoredAnswer,
        referral: Option<Box<(Referral, Event)>>,
    },
}

impl Write {
    fn answer(&self) -> &StoredAnswer {
        match self {
            Write::Hold { answer, .. } | Write::Answer { answer, .. } => answer,
        }
    }
}

struct Pending {
    write: Write,
    done: oneshot::Sender<LedgerResult<()>>,
}

/// The handle the ledger hands writes to.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writers on `pool`; they stop when the last handle is dropped.
    pub fn start(pool: PgPool) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(run_writer(pool.clone(), receiver.clone()));
        }
        Self { queue }
    }

    /// Writes `write` in the next batch and returns its own outcome once committed.
    pub async fn write(&self, write: Write) -> LedgerResult<()> {
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Pending { write, done })
            .await
            .map_err(|_| LedgerError::WriterStopped)?;
        outcome.await.map_err(|_| LedgerError::WriterStopped)?
    }
}

async fn run_writer(pool: PgPool, receiver: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let mut batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        if batch.len() == 1
            && let Some(alone) = batch.pop()
        {
            // Alone, the single statement commits in one round trip, a transaction in five.
            let _ = alone.done.send(write_alone(&pool, &alone.write).await);
            continue;
        }
        let (writes, waiting): (Vec<Write>, Vec<oneshot::Sender<LedgerResult<()>>>) = batch
            .into_iter()
            .map(|pending| (pending.write, pending.done))
            .unzip();
        tracing::debug!(writes = writes.len(), "group commit");
        match write_batch(&pool, &writes).await {
            Ok(outcomes) => {
                for (done, outcome) in waiting.into_iter().zip(outcomes) {
                    let _ = done.send(outcome);
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, writes = writes.len(), "a group commit failed; its orders are answered UNAVAILABLE");
                let shared = Arc::new(error);
                for done in waiting {
                    let _ = done.send(Err(LedgerError::Batch(shared.clone())));
                }
            }
        }
    }
}

async fn write_alone(pool: &PgPool, write: &Write) -> LedgerResult<()> {
    match write {
        Write::Hold {
            hold,
            group_epoch,
            answer,
        } => {
            let customer_key = format!("customer:{}", hold.customer_id);
            let group_key = group_epoch
                .as_ref()
                .map(|(group_id, epoch)| (format!("group:{group_id}"), *epoch));
            fenced_hold_statement(pool, hold, &customer_key, group_key.as_ref(), answer).await
        }
        Write::Answer { answer, referral } => {
            let referral = referral
                .as_deref()
                .map(|(referral, event)| (referral, event));
            answer_statement(pool, answer, referral).await
        }
    }
}

/// Writes the batch in one transaction; the outcome of each write, in order.
async fn write_batch(
    pool: &PgPool,
    writes: &[Write],
) -> Result<Vec<LedgerResult<()>>, sqlx::Error> {
    let mut outcomes: Vec<LedgerResult<()>> = writes.iter().map(|_| Ok(())).collect();
    let mut tx = pool.begin().await?;

    // The fence, for every scope a hold of the batch was reserved in: share-locked until the
    // commit, so a rebuild either waits for it or has moved the epoch and the hold is refused.
    let mut scope_keys = Vec::new();
    for write in writes {
        if let Write::Hold {
            hold, group_epoch, ..
        } = write
        {
            scope_keys.push(format!("customer:{}", hold.customer_id));
            if let Some((group_id, _)) = group_epoch {
                scope_keys.push(format!("group:{group_id}"));
            }
        }
    }
    let epochs: HashMap<String, i64> = if scope_keys.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT scope_key, epoch FROM exposure_epochs WHERE scope_key = ANY($1) FOR SHARE",
        )
        .bind(&scope_keys)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect()
    };
    for (write, outcome) in writes.iter().zip(outcomes.iter_mut()) {
        if let Write::Hold {
            hold, group_epoch, ..
        } = write
        {
            let customer_current = epochs.get(&format!("customer:{}", hold.customer_id));
            let group_current = group_epoch.as_ref().map(|(group_id, expected)| {
                (epochs.get(&format!("group:{group_id}")).copied(), *expected)
            });
            let customer_ok = customer_current == Some(&hold.epoch);
            let group_ok = group_current.is_none_or(|(current, expected)| {
                current.and_then(|epoch| u64::try_from(epoch).ok()) == Some(expected)
            });
            if !(customer_ok && group_ok) {
                *outcome = Err(LedgerError::EpochMoved);
            }
        }
    }

    // The answers of the writes still standing; a key answered before (or twice in this
    // batch) is not inserted, and that write is a duplicate.
    let standing: Vec<usize> = (0..writes.len())
        .filter(|&index| outcomes[index].is_ok())
        .collect();
    let answers: Vec<&StoredAnswer> = standing
        .iter()
        .map(|&index| writes[index].answer())
        .collect();
    let inserted: HashSet<String> = if answers.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar::<_, String>(
            "INSERT INTO authorizations (customer_id, idempotency_key, fingerprint, decision_id, decision, response, created_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::timestamptz[]) \
             ON CONFLICT DO NOTHING RETURNING decision_id",
        )
        .bind(answers.iter().map(|answer| answer.customer_id.clone()).collect::<Vec<_>>())
        .bind(answers.iter().map(|answer| answer.idempotency_key.clone()).collect::<Vec<_>>())
        .bind(answers.iter().map(|answer| answer.fingerprint.clone()).collect::<Vec<_>>())
        .bind(answers.iter().map(|answer| answer.decision_id.clone()).collect::<Vec<_>>())
        .bind(answers.iter().map(|answer| answer.decision.clone()).collect::<Vec<_>>())
        .bind(answers.iter().map(|answer| answer.response.clone()).collect::<Vec<_>>())
        .bind(answers.iter().map(|answer| answer.created_at).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect()
    };
    // Each decision has its own id: a write whose answer was not inserted found its key
    // answered already (before, or by another write of this batch).
    for &index in &standing {
        if !inserted.contains(&writes[index].answer().decision_id) {
            outcomes[index] = Err(LedgerError::Duplicate);
        }
    }

    let written = |index: &usize| outcomes[*index].is_ok();
    let holds: Vec<&Hold> = standing
        .iter()
        .filter(|index| written(index))
        .filter_map(|&index| match &writes[index] {
            Write::Hold { hold, .. } => Some(hold.as_ref()),
            Write::Answer { .. } => None,
        })
        .collect();
    if !holds.is_empty() {
        let documents = holds
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
        sqlx::query(
            "INSERT INTO holds (id, customer_id, group_id, status, amount_minor, open_minor, epoch, expires_at, created_at, document, order_id) \
             SELECT id, customer_id, group_id, status, amount_minor, amount_minor, epoch, expires_at, created_at, document::jsonb, order_id \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[]) \
             AS batch(id, customer_id, group_id, status, amount_minor, epoch, expires_at, created_at, document, order_id)",
        )
        .bind(holds.iter().map(|hold| hold.id.clone()).collect::<Vec<_>>())
        .bind(holds.iter().map(|hold| hold.customer_id.clone()).collect::<Vec<_>>())
        .bind(holds.iter().map(|hold| hold.group_id.clone()).collect::<Vec<_>>())
        .bind(holds.iter().map(|hold| hold.status.as_str().to_owned()).collect::<Vec<_>>())
        .bind(holds.iter().map(|hold| hold.amount_minor).collect::<Vec<_>>())
        .bind(holds.iter().map(|hold| hold.epoch).collect::<Vec<_>>())
        .bind(holds.iter().map(|hold| hold.expires_at).collect::<Vec<_>>())
        .bind(holds.iter().map(|hold| hold.created_at).collect::<Vec<_>>())
        .bind(documents)
        .bind(holds.iter().map(|hold| hold.order_id.clone()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }

    let referrals: Vec<&(Referral, Event)> = standing
        .iter()
        .filter(|index| written(index))
        .filter_map(|&index| match &writes[index] {
            Write::Answer { referral, .. } => referral.as_deref(),
            Write::Hold { .. } => None,
        })
        .collect();
    if !referrals.is_empty() {
        let documents = referrals
            .iter()
            .map(|(referral, _)| serde_json::to_string(referral))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
        sqlx::query(
            "INSERT INTO referrals (id, customer_id, status, document, created_at) \
             SELECT id, customer_id, status, document::jsonb, created_at \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) \
             AS batch(id, customer_id, status, document, created_at)",
        )
        .bind(
            referrals
                .iter()
                .map(|(referral, _)| referral.id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            referrals
                .iter()
                .map(|(referral, _)| referral.customer_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            referrals
                .iter()
                .map(|(referral, _)| referral.status.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(documents)
        .bind(
            referrals
                .iter()
                .map(|(referral, _)| referral.created_at)
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
        // In the order of the batch, so the relay publishes them as they were decided.
        sqlx::query(
            "INSERT INTO outbox (event_id, event_type, payload) \
             SELECT event_id, event_type, payload \
             FROM UNNEST($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY AS batch(event_id, event_type, payload, n) ORDER BY n",
        )
        .bind(referrals.iter().map(|(_, event)| event.event_id.clone()).collect::<Vec<_>>())
        .bind(referrals.iter().map(|(_, event)| credit_runtime::events::event_type(event).to_owned()).collect::<Vec<_>>())
        .bind(referrals.iter().map(|(_, event)| prost::Message::encode_to_vec(event)).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }

    tx.commit().await?;
    Ok(outcomes)
}
