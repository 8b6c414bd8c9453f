//! `PostgresEventBus`: wake-ups across replicas through LISTEN/NOTIFY.
//!
//! Publishing wakes local subscribers at once, then queues a small NOTIFY that a
//! background task sends after a few milliseconds of batching — after the commit
//! and never inside the write transaction, where NOTIFY's global lock would cap
//! write throughput. Every replica LISTENs and wakes its own subscribers. A lost
//! notification only delays: every second the sessions that have subscribers here
//! are polled for a higher `last_seq`, and a reconnected listener catches up the
//! same way.
//!
//! At a graceful shutdown, [`EventBus::close`] sends what is still queued before
//! the pool closes, and stops listening and polling first, so that the last
//! writes (prompts recorded as ended at shutdown) reach the other replicas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tandem_domain::{Seq, SessionId};
use tandem_ports::{EventBus, StoreError};
use tandem_service::LocalEventBus;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The channel every replica listens on.
const CHANNEL: &str = "tandem_events";
/// How long the notifier gathers wake-ups before sending them in one NOTIFY.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// How often watched sessions are polled, covering any lost notification.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// NOTIFY payloads must stay under 8000 bytes; each entry is at most 58 bytes.
const MAX_ENTRIES_PER_NOTIFY: usize = 120;
/// How long closing waits for the queued NOTIFYs to be sent (a database that
/// does not answer must not hold a shutdown forever).
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// What the notifier is asked to do, in order.
#[derive(Debug)]
enum Outgoing {
    /// Tell the other replicas that a session's log grew to `seq`.
    WakeUp(SessionId, Seq),
    /// Send everything queued before this at once, answer, and stop.
    Close(oneshot::Sender<()>),
}

/// An `EventBus` shared by every replica on one Postgres database.
#[derive(Debug)]
pub struct PostgresEventBus {
    local: Arc<LocalEventBus>,
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// The notifier, listener and poller; taken by `close`.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl PostgresEventBus {
    /// Starts listening (and the notifier and poller) on `pool`'s database. Fails
    /// if the first LISTEN fails; later connection losses are retried forever.
    pub async fn start(pool: PgPool) -> Result<Self, StoreError> {
        let local = Arc::new(LocalEventBus::new());
        let mut listener = PgListener::connect_with(&pool)
            .await
            .map_err(StoreError::backend)?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(StoreError::backend)?;
        let (outbox, inbox) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(notify_loop(pool.clone(), inbox)),
            tokio::spawn(listen_loop(listener, pool.clone(), Arc::clone(&local))),
            tokio::spawn(poll_loop(pool, Arc::clone(&local))),
        ];
        Ok(Self {
            local,
            outbox,
            tasks: Mutex::new(tasks),
        })
    }

    fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Drop for PostgresEventBus {
    fn drop(&mut self) {
        for task in self.take_tasks() {
            task.abort();
        }
    }
}

#[async_trait]
impl EventBus for PostgresEventBus {
    fn publish(&self, session: SessionId, seq: Seq) {
        self.local.publish(session, seq);
        // The notifier stops only when the bus is closed or dropped; after
        // that, wake-ups are local.
        let _ = self.outbox.send(Outgoing::WakeUp(session, seq));
    }

    fn subscribe(&self, session: SessionId) -> watch::Receiver<Seq> {
        self.local.subscribe(session)
    }

    async fn close(&self) {
        let (sent, all_sent) = oneshot::channel();
        if self.outbox.send(Outgoing::Close(sent)).is_ok()
            && tokio::time::timeout(CLOSE_WITHIN, all_sent).await.is_err()
        {
            tracing::warn!(
                seconds = CLOSE_WITHIN.as_secs(),
                "the last NOTIFYs were not sent in time; other replicas will catch up by polling"
            );
        }
        // Stop listening and polling before the pool closes (the listener's
        // connection goes back to it), so that neither fails on a closed pool.
        for task in self.take_tasks() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Sends queued wake-ups as batched NOTIFYs: one per few milliseconds, carrying
/// the highest `seq` of each session as `uuid:seq` entries separated by spaces.
/// Asked to close, it sends what it holds at once and stops.
async fn notify_loop(pool: PgPool, mut inbox: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(first) = inbox.recv().await {
        let mut batch = HashMap::new();
        let mut closed = None;
        match first {
            Outgoing::WakeUp(session, seq) => {
                batch.insert(session, seq);
                let deadline = tokio::time::sleep(BATCH_WINDOW);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        () = &mut deadline => break,
                        next = inbox.recv() => match next {
                            Some(Outgoing::WakeUp(session, seq)) => {
                                let highest = batch.entry(session).or_insert(seq);
                                *highest = (*highest).max(seq);
                            }
                            Some(Outgoing::Close(done)) => {
                                closed = Some(done);
                                break;
                            }
                            None => break,
                        },
                    }
                }
            }
            Outgoing::Close(done) => closed = Some(done),
        }
        notify(&pool, &batch).await;
        if let Some(done) = closed {
            let _ = done.send(());
            return;
        }
    }
}

/// Sends one batch of wake-ups, in as few NOTIFYs as fit.
async fn notify(pool: &PgPool, batch: &HashMap<SessionId, Seq>) {
    let entries: Vec<String> = batch
        .iter()
        .map(|(session, seq)| format!("{session}:{seq}"))
        .collect();
    for chunk in entries.chunks(MAX_ENTRIES_PER_NOTIFY) {
        let payload = chunk.join(" ");
        if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&payload)
            .execute(pool)
            .await
        {
            // Subscribers elsewhere catch up by polling; nothing is lost.
            tracing::warn!(%error, "could not send a NOTIFY; other replicas will catch up by polling");
        }
    }
}

/// Wakes local subscribers on every notification. `PgListener` reconnects by
/// itself after a connection loss; notifications sent meanwhile are lost, so a
/// reconnect triggers an immediate poll.
async fn listen_loop(mut listener: PgListener, pool: PgPool, local: Arc<LocalEventBus>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                for entry in notification.payload().split_whitespace() {
                    if let Some((session, seq)) = parse_entry(entry) {
                        local.publish(session, seq);
                    }
                }
            }
            Ok(None) => {
                tracing::warn!(
                    "the LISTEN connection was lost and is reconnecting; catching up by polling"
                );
                poll_once(&pool, &local).await;
            }
            Err(error) => {
                tracing::warn!(%error, "LISTEN failed; retrying in a second");
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }
}

/// Every second, reads `last_seq` of the sessions watched here.
async fn poll_loop(pool: PgPool, local: Arc<LocalEventBus>) {
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        poll_once(&pool, &local).await;
    }
}

async fn poll_once(pool: &PgPool, local: &LocalEventBus) {
    let watched: Vec<Uuid> = local
        .watched_sessions()
        .iter()
        .map(SessionId::as_uuid)
        .collect();
    if watched.is_empty() {
        return;
    }
    let rows: Result<Vec<(Uuid, i64)>, _> =
        sqlx::query_as("SELECT id, last_seq FROM sessions WHERE id = ANY($1)")
            .bind(&watched)
            .fetch_all(pool)
            .await;
    match rows {
        Ok(rows) => {
            for (id, last_seq) in rows {
                if let Ok(seq) = u64::try_from(last_seq) {
                    local.publish(SessionId::from_uuid(id), Seq::new(seq));
                }
            }
        }
        Err(error) => tracing::warn!(%error, "could not poll watched sessions"),
    }
}

fn parse_entry(entry: &str) -> Option<(SessionId, Seq)> {
    let (session, seq) = entry.split_once(':')?;
    Some((session.parse().ok()?, Seq::new(seq.parse().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_garbage_is_ignored() {
        let session = SessionId::from_uuid(Uuid::now_v7());
        assert_eq!(
            parse_entry(&format!("{session}:42")),
            Some((session, Seq::new(42)))
        );
        assert_eq!(parse_entry("nonsense"), None);
        assert_eq!(parse_entry(&format!("{session}:-1")), None);
    }

    #[test]
    fn a_full_batch_fits_one_notify() {
        let longest = format!("{}:{}", Uuid::max(), u64::MAX);
        assert!(longest.len() * MAX_ENTRIES_PER_NOTIFY + MAX_ENTRIES_PER_NOTIFY < 8000);
    }
}
