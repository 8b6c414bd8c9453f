//! Resume: a subscriber comes back after missing many events and is replayed
//! all of them from the durable log.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use crate::server::Server;
use crate::sse::Stream;

/// How long the replay may take before the scenario gives up.
const REPLAY_WITHIN: Duration = Duration::from_secs(120);

/// What the returning subscriber got.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) missed: u64,
    pub(crate) replayed: u64,
    pub(crate) in_order: bool,
    /// From sending the request to receiving the last missed event.
    pub(crate) took: Duration,
}

/// Writes `missed` comments to a session nobody watches, then opens a stream from
/// before them and times the replay.
pub(crate) async fn run(server: &Server, missed: u64) -> anyhow::Result<Outcome> {
    let api = &server.api;
    let session = api.create_session(&server.admin).await?;
    let after = api.last_seq(&session.id, &session.host).await?;
    futures::stream::iter(0..missed)
        .map(|n| {
            let session = &session;
            async move {
                api.comment(&session.id, &session.host, &format!("missed {n}"))
                    .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    let until = api.last_seq(&session.id, &session.host).await?;
    let began = Instant::now();
    let mut stream = Stream::open(server.addr, &session.id, &session.host, after).await?;
    let mut last = after;
    let mut replayed = 0;
    let mut in_order = true;
    let deadline = tokio::time::Instant::now() + REPLAY_WITHIN;
    while last < until {
        let read = stream.next(|frame| {
            in_order &= frame.seq == last + 1;
            last = frame.seq;
            replayed += 1;
        });
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false) | Err(_)) | Err(_) => break,
        }
    }
    Ok(Outcome {
        missed: until - after,
        replayed,
        in_order: in_order && last == until,
        took: began.elapsed(),
    })
}
