//! The live event stream (`text/event-stream`).
//!
//! One hub per watched session reads new events from the durable log when the
//! event bus wakes it, encodes each event to its SSE frame once, and broadcasts the
//! same bytes to every subscriber. A subscriber subscribes to its hub first, then
//! replays its backlog from the log, then takes frames from the broadcast, skipping
//! what it already sent and filling any gap (or a lag, when it was too slow for the
//! channel) from the log again: every event exactly once, in order. A stream ends
//! after `session.closed`, after its own participant's removal or departure, and
//! when the server shuts down (clients resume with `Last-Event-ID`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::{Body, Bytes};
use tandem_domain::{Event, ParticipantId, Seq, SessionId};
use tandem_service::{Caller, ServiceError, Tandem};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::dto::event::EventResponse;
use crate::metrics::OpenStream;

/// How often an idle stream sends a comment, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How many frames a hub buffers for slow subscribers before they must catch up
/// from the log.
const BROADCAST_CAPACITY: usize = 1024;
/// Events read from the log at a time.
const PAGE: u32 = 500;
/// What clients wait before reconnecting, announced on the first frame.
const RETRY_MS: u32 = 2000;
/// Frames buffered between a subscriber's task and its connection.
const OUTBOX: usize = 64;

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

    fn ends_for(&self, me: Option<ParticipantId>) -> bool {
        match self.ends {
            Ending::Nobody => false,
            Ending::Everyone => true,
            Ending::Participant(id) => me == Some(id),
        }
    }
}

/// A session's broadcaster. Dropped (and its task stopped) with its last subscriber.
struct SessionHub {
    frames: broadcast::Sender<Arc<Frame>>,
    task: JoinHandle<()>,
}

impl Drop for SessionHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The hubs of the sessions watched on this server, and the shutdown switch.
pub(crate) struct Streams {
    tandem: Tandem,
    hubs: Mutex<HashMap<SessionId, Weak<SessionHub>>>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").finish_non_exhaustive()
    }
}

impl Streams {
    pub(crate) fn new(tandem: Tandem, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            tandem,
            hubs: Mutex::new(HashMap::new()),
            shutdown,
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
        let task = tokio::spawn(broadcast_loop(
            self.tandem.clone(),
            session,
            start,
            frames.clone(),
        ));
        let hub = Arc::new(SessionHub { frames, task });
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
        let receiver = hub.frames.subscribe();
        let (outbox, inbox) = mpsc::channel::<Bytes>(OUTBOX);
        let subscriber = Subscriber {
            tandem: self.tandem.clone(),
            caller,
            session,
            sent: after,
            outbox,
            committed: self.tandem.bus().subscribe(session),
        };
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = subscriber.run(hub, receiver) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
        // The body owns the gauge's guard: the stream counts as open until the
        // connection lets go of it, whether it ended or the client left.
        let open = OpenStream::start();
        Ok(Body::from_stream(futures::stream::unfold(
            (inbox, open),
            |(mut inbox, open)| async move {
                inbox
                    .recv()
                    .await
                    .map(|bytes| (Ok::<_, Infallible>(bytes), (inbox, open)))
            },
        )))
    }
}

/// Reads what the bus announces from the log and broadcasts it, encoded once:
/// every event after `last`, in order.
async fn broadcast_loop(
    tandem: Tandem,
    session: SessionId,
    mut last: Seq,
    frames: broadcast::Sender<Arc<Frame>>,
) {
    let mut wakeups = tandem.bus().subscribe(session);
    loop {
        loop {
            let events = match tandem.store().events(session, last, PAGE).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(%error, session_id = %session, "cannot read new events; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(newest) = events.last().map(|event| event.seq) else {
                break;
            };
            for event in &events {
                // Nobody listening is fine: subscribers read the log themselves.
                let _ = frames.send(Arc::new(Frame::encode(event)));
            }
            last = newest;
        }
        if wakeups.changed().await.is_err() {
            return;
        }
    }
}

/// One client's stream.
struct Subscriber {
    tandem: Tandem,
    caller: Caller,
    session: SessionId,
    sent: Seq,
    outbox: mpsc::Sender<Bytes>,
    /// The highest seq the bus has announced for the session.
    committed: watch::Receiver<Seq>,
}

/// The client went away (or must stop): nothing more to send.
struct Gone;

impl Subscriber {
    fn me(&self) -> Option<ParticipantId> {
        match &self.caller {
            Caller::Participant(participant) => Some(participant.id),
            Caller::ApiKey(_) => None,
        }
    }

    /// Streams until the client goes away or the stream ends; holding `hub`
    /// keeps the session's broadcaster alive meanwhile.
    async fn run(mut self, hub: Arc<SessionHub>, mut frames: broadcast::Receiver<Arc<Frame>>) {
        let _ = self.stream(&mut frames).await;
        drop(hub);
    }

    async fn stream(&mut self, frames: &mut broadcast::Receiver<Arc<Frame>>) -> Result<(), Gone> {
        self.send(Bytes::from(format!("retry: {RETRY_MS}\n\n")))
            .await?;
        // Backlog from the log, up to now; ends the stream if it holds the end.
        if self.catch_up(None).await? {
            return Ok(());
        }
        if self.already_over().await {
            return Ok(());
        }
        loop {
            let next = tokio::time::timeout(KEEP_ALIVE, frames.recv()).await;
            match next {
                Err(_) => {
                    // Quiet for a while: make sure nothing committed was missed
                    // (the hub reads the log on every wake-up, so this is a
                    // safety net, not the path events take).
                    let committed = *self.committed.borrow_and_update();
                    if committed > self.sent && self.catch_up(None).await? {
                        return Ok(());
                    }
                    self.send(Bytes::from_static(b": keep-alive\n\n")).await?;
                }
                Ok(Ok(frame)) => {
                    if frame.seq <= self.sent {
                        continue;
                    }
                    if frame.seq > self.sent.next() && self.catch_up(Some(frame.seq)).await? {
                        return Ok(());
                    }
                    if frame.seq == self.sent.next() {
                        self.send(frame.bytes.clone()).await?;
                        self.sent = frame.seq;
                        if frame.ends_for(self.me()) {
                            return Ok(());
                        }
                    }
                }
                // Too slow for the broadcast: read what was missed from the log.
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    if self.catch_up(None).await? {
                        return Ok(());
                    }
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(()),
            }
        }
    }

    /// Sends events from the log after `sent`, below `until` if given (else up to
    /// the end of the log). Returns whether one of them ended the stream.
    async fn catch_up(&mut self, until: Option<Seq>) -> Result<bool, Gone> {
        loop {
            let events = self
                .tandem
                .events(&self.caller, self.session, self.sent, PAGE)
                .await
                .map_err(|error| {
                    // Refused (removed meanwhile, session gone) or the store
                    // failed: the stream ends and the client resumes later.
                    tracing::debug!(%error, session_id = %self.session, "a stream stops: its events cannot be read");
                    Gone
                })?;
            if events.is_empty() {
                return Ok(false);
            }
            for event in &events {
                if until.is_some_and(|until| event.seq >= until) {
                    return Ok(false);
                }
                let frame = Frame::encode(event);
                self.send(frame.bytes.clone()).await?;
                self.sent = frame.seq;
                if frame.ends_for(self.me()) {
                    return Ok(true);
                }
            }
        }
    }

    /// Whether the session ended before the point this client resumes from.
    async fn already_over(&self) -> bool {
        // The caller was authorized when the stream opened; only the row matters.
        match self.tandem.store().session(self.session).await {
            Ok(session) => session.end.is_some() && self.sent >= session.last_seq,
            Err(_) => true,
        }
    }

    async fn send(&self, bytes: Bytes) -> Result<(), Gone> {
        self.outbox.send(bytes).await.map_err(|_| Gone)
    }
}
