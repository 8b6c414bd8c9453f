//! The database's own ceiling for Tandem's durable append, measured in the same
//! run as the `writes` scenario, on the same database and the same sessions,
//! with the same number of concurrent clients: each client is one PostgreSQL
//! connection (no HTTP, no server) appending comments as fast as the database
//! commits them, each waiting for its commit.
//!
//! One append is what a comment costs the database at the least: the session's
//! row locked and its `last_seq` bumped (only while the session is active), the
//! comment row and its `comment.posted` event row inserted, one commit (so one
//! durable WAL flush per comment, with the server's own settings). It is one
//! statement (data-modifying CTEs, prepared once per connection), as Tandem
//! writes one comment on its own, into Tandem's own tables, with time-ordered
//! ids as Tandem makes them.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::Connection;
use uuid::Uuid;

use crate::stats::{Latencies, micros};

/// The append: one statement, one transaction, one commit.
const APPEND: &str = "
WITH s AS (UPDATE sessions
              SET last_seq = last_seq + 1,
                  last_activity_at = GREATEST(last_activity_at, $5)
            WHERE id = $1 AND status = 'active'
        RETURNING last_seq),
     c AS (INSERT INTO comments (id, session_id, author_participant_id, text, created_at)
           SELECT $2, $1, $3, $4, $5 FROM s)
INSERT INTO events (session_id, seq, type, actor_kind, actor_id, data, created_at)
SELECT $1, s.last_seq, 'comment.posted', 'participant', $3, $6, $5 FROM s
RETURNING seq";

/// What the clients achieved.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) written: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Latencies,
}

/// `clients` connections to `database_url` append comments for `duration`,
/// each going round `sessions` (ids as the API gives them) as the writers of
/// the `writes` scenario do, as one of each session's participants.
pub(crate) async fn run(
    database_url: &str,
    sessions: &[String],
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let targets = authors(database_url, sessions).await?;
    let targets = std::sync::Arc::new(targets);
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(
            sqlx::PgConnection::connect(database_url)
                .await
                .context("cannot connect to the benchmark's database")?,
        );
    }
    let began = Instant::now();
    let stop_at = began + duration;
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(client, mut conn)| {
            let targets = std::sync::Arc::clone(&targets);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut next = client;
                let mut n = 0u64;
                while Instant::now() < stop_at {
                    let (session, author) = targets[next % targets.len()];
                    next += clients;
                    let id = Uuid::now_v7();
                    let text = format!("client {client} comment {n}");
                    let now = chrono::Utc::now();
                    let data = serde_json::json!({
                        "id": id,
                        "authorParticipantId": author,
                        "text": text,
                        "createdAt": now,
                    });
                    let sent = Instant::now();
                    let seq: Option<i64> = sqlx::query_scalar(APPEND)
                        .bind(session)
                        .bind(id)
                        .bind(author)
                        .bind(&text)
                        .bind(now)
                        .bind(sqlx::types::Json(&data))
                        .fetch_optional(&mut conn)
                        .await
                        .context("an append failed")?;
                    anyhow::ensure!(seq.is_some(), "a session of the ceiling run is not active");
                    latencies.push(micros(sent.elapsed()));
                    n += 1;
                }
                conn.close().await.ok();
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.context("a ceiling client panicked")??);
    }
    Ok(Outcome {
        written: samples.len() as u64,
        elapsed: began.elapsed(),
        latencies: Latencies::new(samples),
    })
}

/// Each session with one of its participants (its host), in the given order.
async fn authors(database_url: &str, sessions: &[String]) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let ids: Vec<Uuid> = sessions
        .iter()
        .map(|id| Uuid::parse_str(id).context("a session id that is not a UUID"))
        .collect::<anyhow::Result<_>>()?;
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .context("cannot connect to the benchmark's database")?;
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT DISTINCT ON (session_id) session_id, id FROM participants
          WHERE session_id = ANY($1) AND left_at IS NULL
          ORDER BY session_id, joined_at",
    )
    .bind(&ids)
    .fetch_all(&mut conn)
    .await
    .context("cannot read the sessions' participants")?;
    conn.close().await.ok();
    ids.iter()
        .map(|session| {
            rows.iter()
                .find(|(id, _)| id == session)
                .copied()
                .with_context(|| format!("session {session} has no participant"))
        })
        .collect()
}
