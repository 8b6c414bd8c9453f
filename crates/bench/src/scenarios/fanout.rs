//! Fan-out: sessions watched by many SSE subscribers while their hosts post
//! comments at a set rate. Every comment carries the moment it was sent, so each
//! subscriber measures publish→deliver itself; each also checks that it received
//! every event after its cursor exactly once, in order.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};

use crate::api::Session;
use crate::server::Server;
use crate::sse::Stream;
use crate::stats::{Latencies, micros};

/// How many setup requests run at once.
const SETUP_CONCURRENCY: usize = 64;
/// How many streams open at once.
const OPEN_CONCURRENCY: usize = 256;
/// The prefix of a benchmark comment, followed by its send time in µs.
const MARK: &[u8] = b"bench:";
/// How long after the last publish a subscriber may still be waiting for it.
const DELIVER_WITHIN: Duration = Duration::from_secs(30);

/// A session with participants ready to watch it.
pub(crate) struct Prepared {
    session: Session,
    /// The session's last seq before the benchmark's comments.
    after: u64,
    watchers: Vec<String>,
}

/// One session and its open streams.
pub(crate) struct Watched {
    session: Session,
    after: u64,
    streams: Vec<Stream>,
}

/// Creates `sessions` sessions and joins `per_session` participants to each.
pub(crate) async fn prepare(
    server: &Server,
    sessions: usize,
    per_session: usize,
) -> anyhow::Result<Vec<Prepared>> {
    let api = &server.api;
    let created: Vec<Session> = futures::stream::iter(0..sessions)
        .map(|_| api.create_session(&server.admin))
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .context("creating sessions")?;
    let joins = created
        .iter()
        .enumerate()
        .flat_map(|(index, session)| (0..per_session).map(move |n| (index, session, n)));
    let tokens: Vec<(usize, String)> = futures::stream::iter(joins)
        .map(|(index, session, n)| async move {
            api.join(session, &format!("watcher {n}"))
                .await
                .map(|token| (index, token))
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .context("joining sessions")?;
    let mut prepared = Vec::with_capacity(created.len());
    for session in created {
        let after = api.last_seq(&session.id, &session.host).await?;
        prepared.push(Prepared {
            session,
            after,
            watchers: Vec::with_capacity(per_session),
        });
    }
    for (index, token) in tokens {
        prepared[index].watchers.push(token);
    }
    Ok(prepared)
}

/// Opens one stream per participant, each resuming after its session's end.
pub(crate) async fn open(server: &Server, prepared: Vec<Prepared>) -> anyhow::Result<Vec<Watched>> {
    let addr = server.addr;
    let opens = prepared.iter().enumerate().flat_map(|(index, prepared)| {
        prepared.watchers.iter().map(move |token| async move {
            Stream::open(addr, &prepared.session.id, token, prepared.after)
                .await
                .map(|stream| (index, stream))
        })
    });
    let mut streams: Vec<Vec<Stream>> = prepared.iter().map(|_| Vec::new()).collect();
    let mut opened = futures::stream::iter(opens).buffer_unordered(OPEN_CONCURRENCY);
    while let Some(opened) = opened.next().await {
        let (index, stream) = opened.context("opening a stream")?;
        streams[index].push(stream);
    }
    drop(opened);
    Ok(prepared
        .into_iter()
        .zip(streams)
        .map(|(prepared, streams)| Watched {
            session: prepared.session,
            after: prepared.after,
            streams,
        })
        .collect())
}

/// What the subscribers saw.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) subscribers: usize,
    /// Subscribers that received every event exactly once, in order.
    pub(crate) complete: usize,
    pub(crate) deliveries: u64,
    pub(crate) expected: u64,
    /// From the first publish to the last delivery.
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Latencies,
    /// Comments the hosts posted per second.
    pub(crate) published_per_second: f64,
}

/// Each session's host posts `events` comments at `rate` per second while every
/// stream watches; returns what the subscribers received.
pub(crate) async fn publish_and_watch(
    server: &Server,
    watched: Vec<Watched>,
    events: u64,
    rate: f64,
) -> anyhow::Result<Outcome> {
    let period = Duration::from_secs_f64(1.0 / rate);
    let planned = period.mul_f64(crate::stats::float(events));
    let epoch = Instant::now();
    let deadline = tokio::time::Instant::now() + planned * 2 + DELIVER_WITHIN;
    let mut subscribers = Vec::new();
    let mut publishers = Vec::new();
    let count = watched.len();
    for (index, watched) in watched.into_iter().enumerate() {
        let until = watched.after + events;
        for stream in watched.streams {
            subscribers.push(tokio::spawn(watch(
                stream,
                watched.after,
                until,
                epoch,
                deadline,
            )));
        }
        // Spread the sessions' publishes evenly over one period.
        let offset =
            period.mul_f64(crate::stats::float(index as u64) / crate::stats::float(count as u64));
        publishers.push(tokio::spawn(publish(
            server.api.clone(),
            watched.session,
            events,
            period,
            offset,
            epoch,
        )));
    }
    for publisher in publishers {
        publisher.await.context("a publisher panicked")??;
    }
    let published = epoch.elapsed();
    let mut outcome = Outcome {
        subscribers: subscribers.len(),
        complete: 0,
        deliveries: 0,
        expected: events * subscribers.len() as u64,
        elapsed: Duration::ZERO,
        latencies: Latencies::default(),
        published_per_second: crate::stats::per_second(events * count as u64, published),
    };
    let mut samples = Vec::with_capacity(usize::try_from(outcome.expected).unwrap_or(0));
    for subscriber in subscribers {
        let tally = subscriber.await.context("a subscriber panicked")?;
        outcome.deliveries += tally.received;
        if tally.in_order && tally.received == events {
            outcome.complete += 1;
        }
        if let Some(at) = tally.last_at {
            outcome.elapsed = outcome.elapsed.max(at.duration_since(epoch));
        }
        samples.extend(tally.latencies);
    }
    outcome.latencies = Latencies::new(samples);
    Ok(outcome)
}

/// Posts `events` comments, one every `period`, starting after `offset`.
async fn publish(
    api: crate::api::Api,
    session: Session,
    events: u64,
    period: Duration,
    offset: Duration,
    epoch: Instant,
) -> anyhow::Result<()> {
    tokio::time::sleep(offset).await;
    let mut ticks = tokio::time::interval(period);
    for _ in 0..events {
        ticks.tick().await;
        let sent = epoch.elapsed().as_micros();
        api.comment(&session.id, &session.host, &format!("bench:{sent}"))
            .await?;
    }
    Ok(())
}

/// What one subscriber received.
#[derive(Debug, Default)]
struct Tally {
    received: u64,
    in_order: bool,
    latencies: Vec<u32>,
    last_at: Option<Instant>,
}

/// Reads a stream until it has seen seq `until` (or the deadline passes).
async fn watch(
    mut stream: Stream,
    after: u64,
    until: u64,
    epoch: Instant,
    deadline: tokio::time::Instant,
) -> Tally {
    let mut tally = Tally {
        in_order: true,
        latencies: Vec::with_capacity(usize::try_from(until - after).unwrap_or(0)),
        ..Tally::default()
    };
    let mut last = after;
    while last < until {
        let read = stream.next(|frame| {
            let now = Instant::now();
            if frame.seq != last + 1 {
                tally.in_order = false;
            }
            last = frame.seq;
            tally.received += 1;
            tally.last_at = Some(now);
            if let Some(sent) = sent_at(frame.data) {
                let at = now.duration_since(epoch);
                tally
                    .latencies
                    .push(micros(at.saturating_sub(Duration::from_micros(sent))));
            }
        });
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false) | Err(_)) | Err(_) => break,
        }
    }
    tally
}

/// The send time (µs after the epoch) a benchmark comment carries.
fn sent_at(data: &[u8]) -> Option<u64> {
    let start = memchr::memmem::find(data, MARK)? + MARK.len();
    let digits = data[start..]
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    std::str::from_utf8(&data[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_time_is_read_from_the_comment() {
        let data = br#"{"seq":9,"data":{"comment":{"text":"bench:123456","id":"x"}}}"#;
        assert_eq!(sent_at(data), Some(123_456));
        assert_eq!(sent_at(br#"{"text":"hello"}"#), None);
    }
}
