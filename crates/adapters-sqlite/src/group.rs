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
use crate::single::{self, Bracket, Failed};

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
                let _ = job.done.send(written.map_err(Failed::into_error));
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
    let mut jobs = group.into_iter();
    while let Some(job) = jobs.next() {
        match single::apply(conn, &job.change, Bracket::Savepoint).await {
            Ok(events) => written.push((job.done, events)),
            // Undone alone; the group goes on.
            Err(Failed::Undone(error)) => {
                let _ = job.done.send(Err(error));
            }
            // The transaction may be gone already (SQLite rolls it all back on
            // some errors), and the rest would then commit one by one: stop, undo
            // whatever is left of it, and fail the whole group.
            Err(Failed::Broken(error)) => {
                let message = error.to_string();
                let _ = job.done.send(Err(error));
                let waiting = written.into_iter().map(|(done, _)| done);
                abandon(conn, waiting.chain(jobs.map(|job| job.done)), &message).await;
                return;
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
            let message = map_err(error).to_string();
            abandon(conn, written.into_iter().map(|(done, _)| done), &message).await;
        }
    }
}

/// Rolls back the group's transaction and tells everyone in it that nothing of
/// it is durable. A writer whose rollback fails may still be inside a
/// transaction: it is closed rather than given back to the pool.
async fn abandon(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    waiting: impl Iterator<Item = oneshot::Sender<Result<Vec<Event>, StoreError>>>,
    message: &str,
) {
    if sqlx::query("ROLLBACK").execute(&mut **conn).await.is_err() {
        conn.close_on_drop();
    }
    for done in waiting {
        let _ = done.send(Err(StoreError::Backend(message.to_owned().into())));
    }
}

#[cfg(test)]
mod tests {
    use crate::SqliteStore;

    /// The database capped a little above its size (`max_page_count`, which holds
    /// for the writer's connection), then filled by concurrent groups: whatever
    /// the writer reports is exactly what is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_fails_only_what_was_not_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open_file(&dir.path().join("tandem.db"))
            .await
            .expect("open");
        tandem_ports::testing::contract::a_full_store_fails_only_what_it_did_not_store(
            store,
            async |store: &SqliteStore| {
                let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                    .fetch_one(&store.writer)
                    .await
                    .expect("page count");
                sqlx::query(&format!("PRAGMA max_page_count = {}", pages + 60))
                    .execute(&store.writer)
                    .await
                    .expect("cap the size");
            },
        )
        .await;
    }
}
