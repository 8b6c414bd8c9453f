//! Fan-out: sessions watched by many SSE subscribers while their hosts post
//! comments at a set rate. Each subscriber measures, for every event, publish→
//! deliver (from the event's `createdAt`, stamped by the server as it commits,
//! to the moment the subscriber has read it) and send→deliver (from the moment
//! the host's request was sent, which the comment carries); each also checks
//! that it received every event after its cursor exactly once, in order.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};

use crate::api::Session;
use crate::post::Poster;
use crate::server::Server;
use crate::sse::Stream;
use crate::stats::{Latencies, micros};

/// How many setup requests run at once.
const SETUP_CONCURRENCY: usize = 64;
/// How many streams open at once.
const OPEN_CONCURRENCY: usize = 256;
/// The prefix of a benchmark comment, followed by its send time in µs.
const MARK: &[u8] = b"bench:";
/// How many comments may be on their way at once, over all sessions.
const IN_FLIGHT: usize = 256;
/// How long after the last comment was posted a subscriber may still be
/// waiting for one.
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
    /// From the event's `createdAt` to its delivery.
    pub(crate) latencies: Latencies,
    /// From the host's request to the delivery.
    pub(crate) send_latencies: Latencies,
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
    let epoch = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut subscribers = Vec::new();
    let mut publishers = Vec::new();
    let count = watched.len();
    let posters = std::sync::Arc::new(Posters::new(server.addr));
    for (index, watched) in watched.into_iter().enumerate() {
        let until = watched.after + events;
        for stream in watched.streams {
            subscribers.push(tokio::spawn(watch(
                stream,
                watched.after,
                until,
                epoch,
                stopped.clone(),
            )));
        }
        // Spread the sessions' publishes evenly over one period.
        let offset =
            period.mul_f64(crate::stats::float(index as u64) / crate::stats::float(count as u64));
        publishers.push(tokio::spawn(publish(
            std::sync::Arc::clone(&posters),
            watched.session,
            Schedule {
                events,
                period,
                offset,
            },
            epoch,
        )));
    }
    for publisher in publishers {
        publisher.await.context("a publisher panicked")??;
    }
    let published = epoch.elapsed();
    // Everything is posted: what has not arrived within DELIVER_WITHIN is lost.
    tokio::spawn(async move {
        tokio::time::sleep(DELIVER_WITHIN).await;
        let _ = stop.send(true);
    });
    let mut outcome = Outcome {
        subscribers: subscribers.len(),
        complete: 0,
        deliveries: 0,
        expected: events * subscribers.len() as u64,
        elapsed: Duration::ZERO,
        latencies: Latencies::default(),
        send_latencies: Latencies::default(),
        published_per_second: crate::stats::per_second(events * count as u64, published),
    };
    let mut samples = Vec::with_capacity(usize::try_from(outcome.expected).unwrap_or(0));
    let mut send_samples = Vec::with_capacity(samples.capacity());
    // Streams are closed together once all are done: a subscriber that hangs up
    // as soon as it has its last event would make the server tear connections
    // down while it still delivers the last events to the others.
    let mut open = Vec::with_capacity(subscribers.len());
    for subscriber in subscribers {
        let (tally, stream) = subscriber.await.context("a subscriber panicked")?;
        open.push(stream);
        outcome.deliveries += tally.received;
        if tally.in_order && tally.received == events {
            outcome.complete += 1;
        }
        if let Some(at) = tally.last_at {
            outcome.elapsed = outcome.elapsed.max(at.duration_since(epoch));
        }
        samples.extend(tally.latencies);
        send_samples.extend(tally.send_latencies);
    }
    drop(open);
    outcome.latencies = Latencies::new(samples);
    outcome.send_latencies = Latencies::new(send_samples);
    Ok(outcome)
}

/// When a host posts: `events` comments, one every `period`, from `offset`.
struct Schedule {
    events: u64,
    period: Duration,
    offset: Duration,
}

/// The hosts' connections, shared: at most `IN_FLIGHT` comments on their way.
struct Posters {
    addr: std::net::SocketAddr,
    idle: std::sync::Mutex<Vec<Poster>>,
    in_flight: tokio::sync::Semaphore,
}

impl Posters {
    fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            addr,
            idle: std::sync::Mutex::default(),
            in_flight: tokio::sync::Semaphore::new(IN_FLIGHT),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Poster>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Posts one comment on an idle connection (or a new one).
    async fn post(&self, path: &str, token: &str, body: &str) -> anyhow::Result<()> {
        let _permit = self.in_flight.acquire().await?;
        let idle = self.idle().pop();
        let mut poster = match idle {
            Some(poster) => poster,
            None => Poster::connect(self.addr).await?,
        };
        let status = poster.post(path, token, body).await?;
        anyhow::ensure!(status == 201, "a comment was answered {status}");
        self.idle().push(poster);
        Ok(())
    }
}

/// Posts a session's comments on schedule. Open loop: each comment is sent on its
/// tick whether or not the previous one was answered (up to `IN_FLIGHT` at once
/// over all hosts), so that a slow answer does not lower the rate offered.
async fn publish(
    posters: std::sync::Arc<Posters>,
    session: Session,
    schedule: Schedule,
    epoch: Instant,
) -> anyhow::Result<()> {
    let path: std::sync::Arc<str> = format!("/v1/sessions/{}/comments", session.id).into();
    let token: std::sync::Arc<str> = session.host.into();
    let mut sent = tokio::task::JoinSet::new();
    tokio::time::sleep(schedule.offset).await;
    let mut ticks = tokio::time::interval(schedule.period);
    for _ in 0..schedule.events {
        ticks.tick().await;
        let (posters, path, token) = (
            std::sync::Arc::clone(&posters),
            std::sync::Arc::clone(&path),
            std::sync::Arc::clone(&token),
        );
        sent.spawn(async move {
            let at = epoch.elapsed().as_micros();
            posters
                .post(&path, &token, &format!(r#"{{"text":"bench:{at}"}}"#))
                .await
        });
    }
    while let Some(posted) = sent.join_next().await {
        posted.context("a publisher task panicked")??;
    }
    Ok(())
}

/// What one subscriber received.
#[derive(Debug, Default)]
struct Tally {
    received: u64,
    in_order: bool,
    latencies: Vec<u32>,
    send_latencies: Vec<u32>,
    last_at: Option<Instant>,
}

/// Reads a stream until it has seen seq `until` (or it is told to stop); gives
/// the stream back, still open.
async fn watch(
    mut stream: Stream,
    after: u64,
    until: u64,
    epoch: Instant,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Tally, Stream) {
    let expected = usize::try_from(until - after).unwrap_or(0);
    let mut tally = Tally {
        in_order: true,
        latencies: Vec::with_capacity(expected),
        send_latencies: Vec::with_capacity(expected),
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
                    .send_latencies
                    .push(micros(at.saturating_sub(Duration::from_micros(sent))));
            }
            if let Some(created) = created_at(frame.data) {
                let wall = unix_micros(std::time::SystemTime::now());
                tally
                    .latencies
                    .push(u32::try_from(wall.saturating_sub(created)).unwrap_or(u32::MAX));
            }
        });
        tokio::select! {
            biased;
            read = read => match read {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    (tally, stream)
}

/// The send time (µs after the epoch) a benchmark comment carries.
fn sent_at(data: &[u8]) -> Option<u64> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(MARK));
    let start = FINDER.find(data)? + MARK.len();
    let digits = data[start..]
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    std::str::from_utf8(&data[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

/// The event's `createdAt`, in µs since the Unix epoch.
fn created_at(data: &[u8]) -> Option<i64> {
    const FIELD: &[u8] = b"\"createdAt\":\"";
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(FIELD));
    let start = FINDER.find(data)? + FIELD.len();
    let end = start + memchr::memchr(b'"', &data[start..])?;
    let text = std::str::from_utf8(&data[start..end]).ok()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.timestamp_micros())
}

/// A wall-clock time in µs since the Unix epoch.
fn unix_micros(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|since| i64::try_from(since.as_micros()).ok())
        .unwrap_or(0)
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

    #[test]
    fn the_creation_time_is_read_from_the_event() {
        let data = br#"{"seq":9,"type":"comment.posted","createdAt":"2026-12-01T18:00:00.000250Z","actor":{}}"#;
        assert_eq!(created_at(data), Some(1_796_148_000_000_250));
        assert_eq!(created_at(br#"{"seq":9}"#), None);
    }
}
