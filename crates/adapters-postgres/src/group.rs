//! Group commit. Changes made only of plain inserts and events (comments,
//! prompts, agent output: what people and agents write most) are queued to a
//! few writer tasks; each takes every change waiting and writes them together:
//! one transaction, a handful of statements whatever their number, one commit
//! (so one WAL flush) for the group instead of one per change.
//!
//! Within a group:
//! - the sessions' rows are locked first, in the order of their ids, so that
//!   groups written at the same moment (by these tasks, or another replica's)
//!   and single-session transactions never wait on each other in a cycle;
//! - each change is then checked under those locks as it would be alone (its
//!   session exists and is active; a runner's change needs the lease, read
//!   afresh once the lock is held), and a refused change fails alone, with its
//!   own error, before anything is written;
//! - `seq` numbers are handed out in the order the changes arrived, from the
//!   locked `last_seq`, so each session's log stays gapless;
//! - the accepted changes are written by one statement. Should it fail (an
//!   insert refused: a duplicate id, a dangling reference), the transaction is
//!   rolled back and each change is written again alone, in its own
//!   transaction, so that only the failing one fails.
//!
//! Each caller hears back once its change is committed (or refused), exactly
//! as if it had been written alone: one change is still one transaction with
//! its events, never split, never half written.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tandem_domain::{Event, Seq};
use tandem_ports::{Change, StoreError};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::map_err;
use crate::single::{self, Insert};

/// How many changes one group holds at most.
const MAX_GROUP: usize = 256;
/// How many changes may wait for a writer.
const QUEUE: usize = 4096;
/// Writer tasks, so that a group is gathered (and sent) while the previous one
/// waits for its WAL flush.
const WRITERS: usize = 2;

/// One change waiting, and whom to tell how it went.
struct Job {
    change: Change,
    done: oneshot::Sender<Result<Vec<Event>, StoreError>>,
}

type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

/// The queue to the writer tasks, started on first use (on the runtime of the
/// first change). The tasks end when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct GroupWriter {
    pool: PgPool,
    jobs: Arc<OnceLock<mpsc::Sender<Job>>>,
}

/// Whether `change` is written by a group commit.
pub(crate) fn fits(change: &Change) -> bool {
    single::inserts_only(change)
}

impl GroupWriter {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            jobs: Arc::new(OnceLock::new()),
        }
    }

    /// Writes `change` with the next group; returns once it is committed.
    pub(crate) async fn apply(&self, change: Change) -> Result<Vec<Event>, StoreError> {
        let jobs = self.jobs.get_or_init(|| {
            let (jobs, queue) = mpsc::channel(QUEUE);
            let queue: Queue = Arc::new(Mutex::new(queue));
            for _ in 0..WRITERS {
                tokio::spawn(write_groups(self.pool.clone(), Arc::clone(&queue)));
            }
            jobs
        });
        let (done, outcome) = oneshot::channel();
        jobs.send(Job { change, done })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Backend("the PostgreSQL group writer has stopped".into())
}

/// Takes every waiting change, writes them as one group, and again.
async fn write_groups(pool: PgPool, queue: Queue) {
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    loop {
        let received = queue.lock().await.recv_many(&mut jobs, MAX_GROUP).await;
        if received == 0 {
            return;
        }
        let group = std::mem::take(&mut jobs);
        if let [_] = group.as_slice() {
            for job in group {
                let written = crate::apply_alone(&pool, &job.change).await;
                let _ = job.done.send(written);
            }
            continue;
        }
        commit_group(&pool, group).await;
    }
}

/// A change of the group that passed its checks, with its first `seq`.
struct Accepted {
    job: Job,
    first: i64,
}

/// One transaction for the group; see the module's documentation.
async fn commit_group(pool: &PgPool, group: Vec<Job>) {
    let mut jobs = Vec::with_capacity(group.len());
    for job in group {
        match job.change.ensure_single_session() {
            Ok(()) => jobs.push(job),
            Err(error) => {
                let _ = job.done.send(Err(error));
            }
        }
    }
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(error) => {
            let message = map_err(error).to_string();
            for job in jobs {
                let _ = job
                    .done
                    .send(Err(StoreError::Backend(message.clone().into())));
            }
            return;
        }
    };
    let accepted = match check(&mut tx, jobs).await {
        Ok(accepted) => accepted,
        Err((error, jobs)) => {
            // Nothing was written; each change is tried alone.
            let _ = tx.rollback().await;
            tracing::debug!(%error, "a group could not be checked; writing its changes alone");
            write_alone(pool, jobs).await;
            return;
        }
    };
    if accepted.is_empty() {
        let _ = tx.rollback().await;
        return;
    }
    if let Err(error) = write(&mut tx, &accepted).await {
        let _ = tx.rollback().await;
        tracing::debug!(%error, "a group was refused; writing its changes alone");
        write_alone(pool, accepted.into_iter().map(|a| a.job).collect()).await;
        return;
    }
    match tx.commit().await {
        Ok(()) => {
            for Accepted { job, first } in accepted {
                let _ = job.done.send(events(&job.change, first));
            }
        }
        Err(error) => {
            // Whether it is durable is unknown: no change of it is retried.
            let message = map_err(error).to_string();
            for Accepted { job, .. } in accepted {
                let _ = job
                    .done
                    .send(Err(StoreError::Backend(message.clone().into())));
            }
        }
    }
}

/// Each change in its own transaction, one after another.
async fn write_alone(pool: &PgPool, jobs: Vec<Job>) {
    for job in jobs {
        let written = crate::apply_alone(pool, &job.change).await;
        let _ = job.done.send(written);
    }
}

/// Locks the group's sessions in id order, answers every change that is
/// refused, and numbers the others' events. On a database error nothing is
/// answered and every change comes back.
async fn check(
    tx: &mut sqlx::PgConnection,
    jobs: Vec<Job>,
) -> Result<Vec<Accepted>, (sqlx::Error, Vec<Job>)> {
    let mut ids: Vec<Uuid> = jobs
        .iter()
        .map(|job| job.change.session_id.as_uuid())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let locked: Result<Vec<(Uuid, String, i64)>, _> = sqlx::query_as(
        "SELECT id, status, last_seq FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await;
    let locked = match locked {
        Ok(rows) => rows,
        Err(error) => return Err((error, jobs)),
    };
    let mut leased: Vec<Uuid> = jobs
        .iter()
        .filter(|job| job.change.lease_holder.is_some())
        .map(|job| job.change.session_id.as_uuid())
        .collect();
    let mut holders = BTreeMap::new();
    if !leased.is_empty() {
        leased.sort_unstable();
        leased.dedup();
        // Read after the locks are held: a statement of its own sees every
        // lease committed before (as `write::apply` does).
        let rows: Result<Vec<(Uuid, String)>, _> = sqlx::query_as(
            "SELECT session_id, holder FROM agent_leases WHERE session_id = ANY($1)",
        )
        .bind(&leased)
        .fetch_all(&mut *tx)
        .await;
        match rows {
            Ok(rows) => holders.extend(rows),
            Err(error) => return Err((error, jobs)),
        }
    }
    let mut sessions: BTreeMap<Uuid, (String, i64)> = locked
        .into_iter()
        .map(|(id, status, last_seq)| (id, (status, last_seq)))
        .collect();
    let mut accepted = Vec::with_capacity(jobs.len());
    for job in jobs {
        let id = job.change.session_id.as_uuid();
        let count = i64::try_from(job.change.events.len()).unwrap_or(i64::MAX);
        let lease_lost = job
            .change
            .lease_holder
            .as_ref()
            .is_some_and(|holder| holders.get(&id) != Some(holder));
        let numbered = match sessions.get_mut(&id) {
            None => Err(StoreError::NotFound),
            Some((status, _)) if status != "active" => Err(StoreError::SessionInactive),
            Some(_) if lease_lost => Err(StoreError::LeaseLost),
            Some((_, last_seq)) => {
                let first = *last_seq + 1;
                *last_seq += count;
                Ok(first)
            }
        };
        match numbered {
            Ok(first) => accepted.push(Accepted { job, first }),
            Err(error) => {
                let _ = job.done.send(Err(error));
            }
        }
    }
    Ok(accepted)
}

/// The statement that writes a group: the sessions' new `last_seq` and
/// activity, then every comment, prompt and event, each table from arrays.
const WRITE_GROUP: &str = "
WITH s AS (UPDATE sessions AS s
              SET last_seq = x.last_seq,
                  last_activity_at = GREATEST(s.last_activity_at, COALESCE(x.at, s.last_activity_at))
             FROM unnest($1::uuid[], $2::int8[], $3::timestamptz[]) AS x(id, last_seq, at)
            WHERE s.id = x.id),
     c AS (INSERT INTO comments (id, session_id, author_participant_id, text, created_at)
           SELECT * FROM unnest($4::uuid[], $5::uuid[], $6::uuid[], $7::text[], $8::timestamptz[])),
     p AS (INSERT INTO prompts (id, session_id, author_participant_id, text, status, created_at,
                                queued_at, resolved_at, resolved_by, started_at, finished_at,
                                stop_reason, error, retry_of)
           SELECT * FROM unnest($9::uuid[], $10::uuid[], $11::uuid[], $12::text[], $13::text[],
                                $14::timestamptz[], $15::timestamptz[], $16::timestamptz[],
                                $17::uuid[], $18::timestamptz[], $19::timestamptz[], $20::text[],
                                $21::text[], $22::uuid[]))
INSERT INTO events (session_id, seq, type, actor_kind, actor_id, data, created_at)
SELECT x.session_id, x.seq, x.type, x.actor_kind, x.actor_id, x.data::jsonb, x.created_at
  FROM unnest($23::uuid[], $24::int8[], $25::text[], $26::text[], $27::uuid[], $28::text[],
              $29::timestamptz[])
       AS x(session_id, seq, type, actor_kind, actor_id, data, created_at)";

#[derive(Default)]
struct CommentColumns {
    id: Vec<Uuid>,
    session_id: Vec<Uuid>,
    author: Vec<Uuid>,
    text: Vec<String>,
    created_at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct PromptColumns {
    id: Vec<Uuid>,
    session_id: Vec<Uuid>,
    author: Vec<Uuid>,
    text: Vec<String>,
    status: Vec<&'static str>,
    created_at: Vec<DateTime<Utc>>,
    queued_at: Vec<Option<DateTime<Utc>>>,
    resolved_at: Vec<Option<DateTime<Utc>>>,
    resolved_by: Vec<Option<Uuid>>,
    started_at: Vec<Option<DateTime<Utc>>>,
    finished_at: Vec<Option<DateTime<Utc>>>,
    stop_reason: Vec<Option<&'static str>>,
    error: Vec<Option<String>>,
    retry_of: Vec<Option<Uuid>>,
}

#[derive(Default)]
struct EventColumns {
    session_id: Vec<Uuid>,
    seq: Vec<i64>,
    event_type: Vec<&'static str>,
    actor_kind: Vec<&'static str>,
    actor_id: Vec<Option<Uuid>>,
    data: Vec<String>,
    created_at: Vec<DateTime<Utc>>,
}

/// Writes the accepted changes in one statement.
async fn write(tx: &mut sqlx::PgConnection, accepted: &[Accepted]) -> Result<(), sqlx::Error> {
    // Each session's last `seq` and latest activity once the group is written.
    let mut sessions: BTreeMap<Uuid, (i64, Option<DateTime<Utc>>)> = BTreeMap::new();
    let mut comments = CommentColumns::default();
    let mut prompts = PromptColumns::default();
    let mut events = EventColumns::default();
    for Accepted { job, first } in accepted {
        let change = &job.change;
        let session_id = change.session_id.as_uuid();
        let count = i64::try_from(change.events.len()).unwrap_or(i64::MAX);
        let entry = sessions.entry(session_id).or_insert((0, None));
        entry.0 = entry.0.max(first + count - 1);
        entry.1 = entry.1.max(change.activity_at);
        for write in &change.writes {
            match single::insert(write) {
                Some(Insert::Comment(c)) => {
                    comments.id.push(c.id.as_uuid());
                    comments.session_id.push(c.session_id.as_uuid());
                    comments.author.push(c.author.as_uuid());
                    comments.text.push(c.text.as_str().to_owned());
                    comments.created_at.push(c.created_at);
                }
                Some(Insert::Prompt(p)) => {
                    prompts.id.push(p.id.as_uuid());
                    prompts.session_id.push(p.session_id.as_uuid());
                    prompts.author.push(p.author.as_uuid());
                    prompts.text.push(p.text.as_str().to_owned());
                    prompts.status.push(p.status.as_str());
                    prompts.created_at.push(p.created_at);
                    prompts.queued_at.push(p.queued_at);
                    prompts.resolved_at.push(p.resolved_at);
                    prompts
                        .resolved_by
                        .push(p.resolved_by.map(|id| id.as_uuid()));
                    prompts.started_at.push(p.started_at);
                    prompts.finished_at.push(p.finished_at);
                    prompts
                        .stop_reason
                        .push(p.stop_reason.map(tandem_domain::StopReason::as_str));
                    prompts.error.push(p.error.clone());
                    prompts.retry_of.push(p.retry_of.map(|id| id.as_uuid()));
                }
                None => {
                    return Err(sqlx::Error::Protocol(format!(
                        "{write:?} is not a group-commit write"
                    )));
                }
            }
        }
        for (seq, event) in (*first..).zip(&change.events) {
            events.session_id.push(session_id);
            events.seq.push(seq);
            events.event_type.push(event.payload.event_type());
            events.actor_kind.push(event.actor.kind());
            events.actor_id.push(event.actor.id());
            events.data.push(event.payload.data().to_string());
            events.created_at.push(event.at);
        }
    }
    let ids: Vec<Uuid> = sessions.keys().copied().collect();
    let last_seqs: Vec<i64> = sessions.values().map(|(last_seq, _)| *last_seq).collect();
    let activity: Vec<Option<DateTime<Utc>>> = sessions.values().map(|(_, at)| *at).collect();
    sqlx::query(WRITE_GROUP)
        .bind(ids)
        .bind(last_seqs)
        .bind(activity)
        .bind(comments.id)
        .bind(comments.session_id)
        .bind(comments.author)
        .bind(comments.text)
        .bind(comments.created_at)
        .bind(prompts.id)
        .bind(prompts.session_id)
        .bind(prompts.author)
        .bind(prompts.text)
        .bind(prompts.status)
        .bind(prompts.created_at)
        .bind(prompts.queued_at)
        .bind(prompts.resolved_at)
        .bind(prompts.resolved_by)
        .bind(prompts.started_at)
        .bind(prompts.finished_at)
        .bind(prompts.stop_reason)
        .bind(prompts.error)
        .bind(prompts.retry_of)
        .bind(events.session_id)
        .bind(events.seq)
        .bind(events.event_type)
        .bind(events.actor_kind)
        .bind(events.actor_id)
        .bind(events.data)
        .bind(events.created_at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The events of a committed change, numbered from `first`.
fn events(change: &Change, first: i64) -> Result<Vec<Event>, StoreError> {
    (first..)
        .zip(&change.events)
        .map(|(seq, event)| {
            Ok(Event {
                session_id: change.session_id,
                seq: Seq::new(u64::try_from(seq).map_err(StoreError::backend)?),
                at: event.at,
                actor: event.actor,
                payload: event.payload.clone(),
            })
        })
        .collect()
}
