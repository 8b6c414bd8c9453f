//! Durable writes: writers post comments as fast as the server takes them, each
//! waiting for its answer (so every counted comment is committed), spread over
//! several sessions or all on one. Each writer is one keep-alive connection.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};

use crate::post::Poster;
use crate::server::Server;
use crate::stats::{Latencies, micros};

/// What the writers achieved.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) written: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Latencies,
    /// The sessions written to (their ids), for the database's ceiling run.
    pub(crate) sessions: Vec<String>,
}

/// `writers` writers post comments for `duration`, each going round the
/// `sessions` sessions in turn (so that every session is written to whatever
/// the number of writers).
pub(crate) async fn run(
    server: &Server,
    sessions: usize,
    writers: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let created: Vec<_> = futures::stream::iter(0..sessions)
        .map(|_| server.api.create_session(&server.admin))
        .buffer_unordered(32)
        .try_collect()
        .await
        .context("creating sessions")?;
    let began = Instant::now();
    let stop_at = began + duration;
    let addr = server.addr;
    let targets: std::sync::Arc<Vec<(String, String)>> = std::sync::Arc::new(
        created
            .iter()
            .map(|session| {
                (
                    format!("/v1/sessions/{}/comments", session.id),
                    session.host.clone(),
                )
            })
            .collect(),
    );
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let targets = std::sync::Arc::clone(&targets);
            tokio::spawn(async move {
                let mut poster = Poster::connect(addr).await?;
                let mut latencies = Vec::new();
                // Each writer goes round the sessions, starting at its own.
                let mut next = writer;
                let mut n = 0u64;
                while Instant::now() < stop_at {
                    let (path, token) = &targets[next % targets.len()];
                    next += writers;
                    let body = format!(r#"{{"text":"writer {writer} comment {n}"}}"#);
                    let sent = Instant::now();
                    let status = poster.post(path, token, &body).await?;
                    anyhow::ensure!(status == 201, "a comment was answered {status}");
                    latencies.push(micros(sent.elapsed()));
                    n += 1;
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.context("a writer panicked")??);
    }
    Ok(Outcome {
        written: samples.len() as u64,
        elapsed: began.elapsed(),
        latencies: Latencies::new(samples),
        sessions: created.into_iter().map(|session| session.id).collect(),
    })
}
