//! Group commit on the single writer connection. One-trip changes (see
//! `single`) are queued to a writer task on a thread of its own; it takes every
//! change waiting, writes each in its own savepoint inside one transaction and
//! commits them together: one fsync for the group instead of one per change.
//! A change that is refused is undone alone (its savepoint) and the others are
//! still committed. Each caller hears back only once its change is durable.
//!
//! The task has its own thread and runtime so that, however busy the server's
//! runtimes are (thousands of event streams), the writer is never queued
//! behind them: SQLite writes one change at a time anyway.

use sqlx::SqlitePool;
use tandem_domain::Event;
use tandem_ports::{Change, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::map_err;
use crate::single::{self, Bracket};

/// How many changes one group holds at most.
const MAX_GROUP: usize = 128;
/// How many changes may wait for the writer.
const QUEUE: usize = 4096;

/// One change waiting, and whom to tell how it went.
struct Job {
    change: Change,
    done: oneshot::Sender<Result<Vec<Event>, StoreError>>,
}

/// The queue to the writer task. The task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct GroupWriter {
    jobs: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts the writer task on its own thread, writing through `pool` (the
    /// store's one writer connection).
    pub(crate) fn start(pool: SqlitePool) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::backend)?;
        std::thread::Builder::new()
            .name("tandem-sqlite-writer".to_owned())
            .spawn(move || runtime.block_on(write_groups(pool, queue)))
            .map_err(StoreError::backend)?;
        Ok(Self { jobs })
    }

    /// Writes `change` with the next group; returns once it is committed.
    pub(crate) async fn apply(&self, change: Change) -> Result<Vec<Event>, StoreError> {
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job { change, done })
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?
    }
}

/// Takes every waiting change, writes them as one group, and again.
async fn write_groups(pool: SqlitePool, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut jobs, MAX_GROUP).await > 0 {
        let group = std::mem::take(&mut jobs);
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                let error = error.to_string();
                for job in group {
                    let _ = job
                        .done
                        .send(Err(StoreError::Backend(error.clone().into())));
                }
                continue;
            }
        };
        if let [_] = group.as_slice() {
            // Alone: its own transaction, one trip.
            for job in group {
                let written = single::apply(&mut conn, &job.change, Bracket::Transaction).await;
                let _ = job.done.send(written);
            }
            continue;
        }
        commit_group(&mut conn, group).await;
    }
}

/// One transaction for the group, one savepoint per change.
async fn commit_group(conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>, group: Vec<Job>) {
    if let Err(error) = sqlx::query("BEGIN IMMEDIATE").execute(&mut **conn).await {
        let error = error.to_string();
        for job in group {
            let _ = job
                .done
                .send(Err(StoreError::Backend(error.clone().into())));
        }
        return;
    }
    let mut written = Vec::with_capacity(group.len());
    for job in group {
        match single::apply(conn, &job.change, Bracket::Savepoint).await {
            Ok(events) => written.push((job.done, events)),
            // Undone alone; the group goes on.
            Err(error) => {
                let _ = job.done.send(Err(error));
            }
        }
    }
    match sqlx::query("COMMIT").execute(&mut **conn).await {
        Ok(_) => {
            for (done, events) in written {
                let _ = done.send(Ok(events));
            }
        }
        Err(error) => {
            // Nothing of the group is durable: say so to everyone in it.
            let _ = sqlx::query("ROLLBACK").execute(&mut **conn).await;
            let error = map_err(error);
            let message = error.to_string();
            for (done, _) in written {
                let _ = done.send(Err(StoreError::Backend(message.clone().into())));
            }
        }
    }
}
