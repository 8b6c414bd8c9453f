//! The live event stream (`text/event-stream`).
//!
//! One hub per watched session encodes each new event to its SSE frame once and
//! broadcasts the same bytes to every subscriber. Events committed by this
//! process are handed to it by the committing task itself (no read back, no
//! extra hop); everything else (other replicas' events, anything it missed) it
//! reads from the durable log when the event bus wakes it. A subscriber subscribes to its hub first, then
//! replays its backlog from the log, then takes frames from the broadcast, skipping
//! what it already sent and filling any gap (or a lag, when it was too slow for the
//! channel) from the log again: every event exactly once, in order. A stream ends
//! after `session.closed`, after its own participant's removal or departure, and
//! when the server shuts down (clients resume with `Last-Event-ID`).
//!
//! A subscriber is the response body itself, polled by its connection's task: no
//! task or channel of its own. Frames that are ready together (a replayed page, or
//! broadcast frames that queued while the connection was busy) go out as one
//! write, so a subscriber that falls behind catches up in fewer, larger writes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::{Body, Bytes};
use tandem_domain::{Event, ParticipantId, Seq, SessionId};
use tandem_service::{Caller, CommitObserver, ServiceError, Tandem};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use crate::dto::event::EventResponse;
use crate::metrics::OpenStream;

/// How often an idle stream sends a comment, so that proxies keep it open.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How many frames a hub buffers for slow subscribers before they must catch up
/// from the log.
const BROADCAST_CAPACITY: usize = 1024;
/// Events read from the log at a time.
const PAGE: u32 = 500;
/// What clients wait before reconnecting, announced on the first frame.
const RETRY_MS: u32 = 2000;
/// At most this many bytes of ready frames go out in one write.
const BATCH_BYTES: usize = 64 * 1024;

/// One event, encoded once, with what a subscriber needs to know about it.
#[derive(Debug)]
struct Frame {
    seq: Seq,
    bytes: Bytes,
    ends: Ending,
}

/// Whom an event ends the stream for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Nobody,
    Everyone,
    Participant(ParticipantId),
    /// Not an event: the server is shutting down, every stream ends now (its
    /// client resumes elsewhere with `Last-Event-ID`).
    Shutdown,
}

impl Frame {
    fn encode(event: &Event) -> Self {
        let data =
            serde_json::to_string(&EventResponse::from(event)).unwrap_or_else(|_| "{}".to_owned());
        let text = format!(
            "id: {}\nevent: {}\ndata: {data}\n\n",
            event.seq,
            event.payload.event_type()
        );
        let ends = if event.payload.ends_session() {
            Ending::Everyone
        } else {
            event
                .payload
                .departed_participant()
                .map_or(Ending::Nobody, Ending::Participant)
        };
        Self {
            seq: event.seq,
            bytes: Bytes::from(text),
            ends,
        }
    }

    /// The out-of-band frame that ends every stream at shutdown.
    fn shutdown() -> Self {
        Self {
            seq: Seq::ZERO,
            bytes: Bytes::new(),
            ends: Ending::Shutdown,
        }
    }

    fn ends_for(&self, me: Option<ParticipantId>) -> bool {
        match self.ends {
            Ending::Nobody => false,
            Ending::Everyone | Ending::Shutdown => true,
            Ending::Participant(id) => me == Some(id),
        }
    }
}

/// A session's broadcaster. Dropped (and its task stopped) with its last subscriber.
struct SessionHub {
    shared: Arc<HubShared>,
    task: JoinHandle<()>,
}

impl Drop for SessionHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a hub's log reader and the committing tasks share.
struct HubShared {
    frames: broadcast::Sender<Arc<Frame>>,
    /// The seq of the last event broadcast. Frames are sent under this lock, so
    /// they go out in seq order, each once, whoever offers them.
    last: Mutex<Seq>,
}

impl HubShared {
    /// The seq of the last event broadcast.
    fn last(&self) -> Seq {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seq> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Broadcasts the events that directly follow the last one broadcast; those
    /// already sent are skipped. A gap stops it: the log reader fills it.
    fn offer(&self, events: &[Event]) {
        let fresh: Vec<Frame> = {
            let last = self.last();
            events
                .iter()
                .filter(|event| event.seq > last)
                .map(Frame::encode)
                .collect()
        };
        if fresh.is_empty() {
            return;
        }
        let mut last = self.lock();
        for frame in fresh {
            if frame.seq == last.next() {
                *last = frame.seq;
                // Nobody listening is fine: subscribers read the log themselves.
                let _ = self.frames.send(Arc::new(frame));
            } else if frame.seq > last.next() {
                break;
            }
        }
    }
}

/// The hubs of the sessions watched on this server, and the shutdown switch.
pub(crate) struct Streams {
    tandem: Tandem,
    hubs: Mutex<HashMap<SessionId, Weak<SessionHub>>>,
    /// Set once the server shuts down, before the shutdown frames go out: a
    /// stream that missed its frame (too far behind, or reading the log) sees it
    /// here when it next reads the log.
    stopping: Arc<AtomicBool>,
    keep_alive: Duration,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").finish_non_exhaustive()
    }
}

impl Streams {
    /// The streams of a server; when `shutdown` turns true, every open stream
    /// ends and any later one ends at once.
    pub(crate) fn new(
        tandem: Tandem,
        shutdown: watch::Receiver<bool>,
        keep_alive: Duration,
    ) -> Arc<Self> {
        let streams = Arc::new(Self {
            tandem,
            hubs: Mutex::new(HashMap::new()),
            stopping: Arc::new(AtomicBool::new(false)),
            keep_alive,
        });
        let watching = Arc::downgrade(&streams);
        tokio::spawn(async move {
            let mut shutdown = shutdown;
            if shutdown.wait_for(|stop| *stop).await.is_ok()
                && let Some(streams) = watching.upgrade()
            {
                streams.end_all();
            }
        });
        streams
    }

    /// Ends every open stream: a shutdown frame through every hub, so that no
    /// stream has to watch for shutdown on every wake-up.
    fn end_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let hubs: Vec<Arc<SessionHub>> = self.hubs().values().filter_map(Weak::upgrade).collect();
        for hub in hubs {
            let _ = hub.shared.frames.send(Arc::new(Frame::shutdown()));
        }
    }

    fn hubs(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Weak<SessionHub>>> {
        self.hubs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The hub of a session, started if nobody watches it yet.
    ///
    /// A new hub broadcasts every event after the session's `last_seq` as read
    /// here, before anyone subscribes to it: a subscriber's own backlog read,
    /// which follows its subscription, covers everything up to that point, so no
    /// event falls between the two.
    async fn hub(&self, session: SessionId) -> Result<Arc<SessionHub>, ServiceError> {
        if let Some(hub) = self.hubs().get(&session).and_then(Weak::upgrade) {
            return Ok(hub);
        }
        // Subscribed before the read: every commit after it raises the bus.
        let wakeups = self.tandem.bus().subscribe(session);
        let start = self
            .tandem
            .store()
            .session(session)
            .await
            .map_err(ServiceError::Store)?
            .last_seq;
        let mut hubs = self.hubs();
        if let Some(hub) = hubs.get(&session).and_then(Weak::upgrade) {
            return Ok(hub);
        }
        hubs.retain(|_, hub| hub.strong_count() > 0);
        let (frames, _) = broadcast::channel(BROADCAST_CAPACITY);
        let shared = Arc::new(HubShared {
            frames,
            last: Mutex::new(start),
        });
        let task = tokio::spawn(read_the_log(
            self.tandem.clone(),
            session,
            Arc::clone(&shared),
            wakeups,
        ));
        let hub = Arc::new(SessionHub { shared, task });
        hubs.insert(session, Arc::downgrade(&hub));
        Ok(hub)
    }

    /// The response body of a stream for `caller`, resuming after `after`.
    pub(crate) async fn open(
        &self,
        caller: Caller,
        session: SessionId,
        after: Seq,
    ) -> Result<Body, ServiceError> {
        let hub = self.hub(session).await?;
        let frames = hub.shared.frames.subscribe();
        // Subscribed, then checked: a shutdown from now on reaches this stream
        // through its hub.
        let phase = if self.stopping.load(Ordering::SeqCst) {
            Phase::Done
        } else {
            Phase::Start
        };
        let me = match &caller {
            Caller::Participant(participant) => Some(participant.id),
            Caller::ApiKey(_) => None,
        };
        let subscriber = Subscriber {
            tandem: self.tandem.clone(),
            me,
            session,
            sent: after,
            phase,
            stopping: Arc::clone(&self.stopping),
            frames,
            _hub: hub,
            committed: self.tandem.bus().subscribe(session),
            keep_alive: self.keep_alive,
            tick: Box::pin(tokio::time::sleep(self.keep_alive)),
            last_sent: Instant::now(),
            // The stream counts as open until the connection lets go of the
            // body, whether the stream ended or the client left.
            _open: OpenStream::start(),
        };
        Ok(Body::from_stream(futures::stream::unfold(
            subscriber,
            |mut subscriber| async move {
                let chunk = subscriber.next_chunk().await?;
                Some((Ok::<_, Infallible>(chunk), subscriber))
            },
        )))
    }
}

/// Hands this process's commits to the hub of their session, if it has one.
impl CommitObserver for Streams {
    fn committed(&self, session_id: SessionId, events: &[Event]) {
        let hub = self.hubs().get(&session_id).and_then(Weak::upgrade);
        if let Some(hub) = hub {
            hub.shared.offer(events);
        }
    }
}

/// Whenever the bus announces events the hub has not broadcast (another
/// replica's, or ones it missed), reads them from the log and broadcasts them.
async fn read_the_log(
    tandem: Tandem,
    session: SessionId,
    hub: Arc<HubShared>,
    mut wakeups: watch::Receiver<Seq>,
) {
    // Once at the start, whatever the bus says: commits that landed while the
    // hub was being set up.
    let mut first = true;
    loop {
        loop {
            let after = hub.last();
            if !std::mem::take(&mut first) && *wakeups.borrow_and_update() <= after {
                break;
            }
            match tandem.store().events(session, after, PAGE).await {
                Ok(events) if events.is_empty() => break,
                Ok(events) => hub.offer(&events),
                Err(error) => {
                    tracing::warn!(%error, session_id = %session, "cannot read new events; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if wakeups.changed().await.is_err() {
            return;
        }
    }
}

/// Where a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing sent yet: the `retry:` frame is next.
    Start,
    /// Replaying the log after `sent`; `first` for the backlog the stream opened
    /// with, after which it may turn out that the session had already ended.
    CatchUp { first: bool },
    /// Taking frames from the hub.
    Live,
    /// Over: the stream has ended or the client must go.
    Done,
}

/// One client's stream: the state its body is polled with.
struct Subscriber {
    tandem: Tandem,
    /// The participant the stream is for (none for an API key): its own
    /// departure ends it.
    me: Option<ParticipantId>,
    session: SessionId,
    /// The seq of the last event sent.
    sent: Seq,
    phase: Phase,
    /// Whether the server is shutting down.
    stopping: Arc<AtomicBool>,
    frames: broadcast::Receiver<Arc<Frame>>,
    /// Holding the hub keeps the session's broadcaster alive.
    _hub: Arc<SessionHub>,
    /// The highest seq the bus has announced for the session.
    committed: watch::Receiver<Seq>,
    keep_alive: Duration,
    /// When to look whether a keep-alive is due; moved only when it fires, so
    /// that a busy stream does not touch the timer for every frame.
    tick: Pin<Box<Sleep>>,
    /// When the stream last sent something.
    last_sent: Instant,
    _open: OpenStream,
}

impl Subscriber {
    /// The next bytes for the client, or `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            let chunk = match self.phase {
                Phase::Start => {
                    self.phase = Phase::CatchUp { first: true };
                    Some(Bytes::from(format!("retry: {RETRY_MS}\n\n")))
                }
                Phase::CatchUp { first } => self.catch_up(first).await,
                Phase::Live => self.live().await,
                Phase::Done => return None,
            };
            if let Some(chunk) = chunk {
                self.last_sent = Instant::now();
                return Some(chunk);
            }
        }
    }

    /// One page of the log after `sent`, as one chunk (`None` when there was
    /// nothing to send). Moves on to live once the log is exhausted.
    async fn catch_up(&mut self, first: bool) -> Option<Bytes> {
        if self.stopping.load(Ordering::Relaxed) {
            self.phase = Phase::Done;
            return None;
        }
        // The caller was authorized when the stream opened; a participant who
        // left or was removed meanwhile meets that event in order and the stream
        // ends there. Boxed: the read's state is large and only needed while it
        // runs, so an idle stream does not carry it.
        let read = Box::pin(self.tandem.store().events(self.session, self.sent, PAGE));
        let events = match read.await {
            Ok(events) => events,
            Err(error) => {
                // The store failed: the stream ends and the client resumes later.
                tracing::debug!(%error, session_id = %self.session, "a stream stops: its events cannot be read");
                self.phase = Phase::Done;
                return None;
            }
        };
        let mut chunk = Vec::new();
        for event in &events {
            let frame = Frame::encode(event);
            chunk.extend_from_slice(&frame.bytes);
            self.sent = frame.seq;
            if frame.ends_for(self.me) {
                self.phase = Phase::Done;
                return Some(Bytes::from(chunk));
            }
        }
        if events.len() < PAGE as usize {
            self.phase = if first && self.already_over().await {
                Phase::Done
            } else {
                Phase::Live
            };
        }
        (!chunk.is_empty()).then(|| Bytes::from(chunk))
    }

    /// Whether the session ended before the point this client resumes from.
    async fn already_over(&self) -> bool {
        // The caller was authorized when the stream opened; only the row matters.
        match Box::pin(self.tandem.store().session(self.session)).await {
            Ok(session) => session.end.is_some() && self.sent >= session.last_seq,
            Err(_) => true,
        }
    }

    /// Waits for the hub's next frames (or a keep-alive) and returns every frame
    /// ready now that follows what was sent, as one chunk.
    async fn live(&mut self) -> Option<Bytes> {
        let woke = tokio::select! {
            biased;
            received = self.frames.recv() => Woke::Frame(received),
            () = self.tick.as_mut() => Woke::Tick,
        };
        let first = match woke {
            Woke::Frame(received) => received,
            Woke::Tick => return self.keep_alive_tick(),
        };
        let mut batch = Batch::default();
        match first {
            Ok(frame) => self.take(&frame, &mut batch),
            Err(RecvError::Lagged(_)) => {
                // Too slow for the broadcast: read what was missed from the log.
                self.phase = Phase::CatchUp { first: false };
            }
            Err(RecvError::Closed) => self.phase = Phase::Done,
        }
        while self.phase == Phase::Live && batch.len < BATCH_BYTES {
            match self.frames.try_recv() {
                Ok(frame) => self.take(&frame, &mut batch),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => self.phase = Phase::CatchUp { first: false },
                Err(TryRecvError::Closed) => self.phase = Phase::Done,
            }
        }
        batch.into_bytes()
    }

    /// Adds a broadcast frame to the batch if it is the next one; a gap (frames
    /// the hub broadcast before this stream caught up) is filled from the log.
    fn take(&mut self, frame: &Frame, batch: &mut Batch) {
        if frame.ends == Ending::Shutdown {
            self.phase = Phase::Done;
            return;
        }
        if frame.seq <= self.sent {
            return;
        }
        if frame.seq > self.sent.next() {
            self.phase = Phase::CatchUp { first: false };
            return;
        }
        batch.push(&frame.bytes);
        self.sent = frame.seq;
        if frame.ends_for(self.me) {
            self.phase = Phase::Done;
        }
    }

    /// The keep-alive timer fired: a comment if nothing was sent for the whole
    /// interval, and a look at the bus in case something committed never reached
    /// the hub (a safety net: the hub reads the log on every wake-up).
    fn keep_alive_tick(&mut self) -> Option<Bytes> {
        // Behind with nothing queued from the hub: read the log. (Merely behind,
        // with frames waiting, is a busy stream, not a stuck one.)
        if self.frames.is_empty() && *self.committed.borrow_and_update() > self.sent {
            self.phase = Phase::CatchUp { first: false };
            return None;
        }
        let due = self.last_sent + self.keep_alive;
        let now = Instant::now();
        if due > now {
            self.tick.as_mut().reset(due);
            return None;
        }
        self.tick.as_mut().reset(now + self.keep_alive);
        Some(Bytes::from_static(b": keep-alive\n\n"))
    }
}

/// What a live stream woke up for.
enum Woke {
    Frame(Result<Arc<Frame>, RecvError>),
    Tick,
}

/// Frames going out in one write: the first one as it is (shared with every
/// other subscriber), copied together only when there are more.
#[derive(Default)]
struct Batch {
    first: Option<Bytes>,
    more: Vec<u8>,
    len: usize,
}

impl Batch {
    fn push(&mut self, bytes: &Bytes) {
        self.len += bytes.len();
        match &self.first {
            None => self.first = Some(bytes.clone()),
            Some(first) => {
                if self.more.is_empty() {
                    self.more.reserve(BATCH_BYTES.min(first.len() * 8));
                    self.more.extend_from_slice(first);
                }
                self.more.extend_from_slice(bytes);
            }
        }
    }

    fn into_bytes(self) -> Option<Bytes> {
        if self.more.is_empty() {
            self.first
        } else {
            Some(Bytes::from(self.more))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_one_frame_shares_its_bytes_and_more_are_joined_in_order() {
        let one = Bytes::from_static(b"id: 1\n\n");
        let mut batch = Batch::default();
        assert_eq!(Batch::default().into_bytes(), None);
        batch.push(&one);
        let single = batch.into_bytes().expect("a chunk");
        assert_eq!(single.as_ptr(), one.as_ptr(), "not copied");

        let mut batch = Batch::default();
        for frame in ["id: 1\n\n", "id: 2\n\n", "id: 3\n\n"] {
            batch.push(&Bytes::from_static(frame.as_bytes()));
        }
        assert_eq!(batch.len, 21);
        assert_eq!(
            batch.into_bytes().expect("a chunk"),
            Bytes::from_static(b"id: 1\n\nid: 2\n\nid: 3\n\n")
        );
    }
}
