//! Subscribing to a session's events: the use case every transport (the SSE
//! stream, a WebSocket, a webhook deliverer, an export) reads a session through.
//!
//! A subscription joins its session's hub first, then replays its backlog from
//! the durable log, then takes events from the hub, skipping what it already
//! delivered and filling any gap (or a lag, when it was too slow for the hub's
//! buffer) from the log again: every event exactly once, in `seq` order. It
//! ends after `session.closed`, after its own participant's removal or
//! departure, and when the server shuts down (clients resume from the last
//! `seq` they got).
//!
//! A subscription is polled by its consumer (for HTTP, the response body, in its
//! connection's task): no task or channel of its own. Events that are ready
//! together (a page of the log, or hub events that queued while the consumer was
//! busy) come as one batch, so a consumer that falls behind catches up in fewer,
//! larger writes.

mod hub;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tandem_domain::{ParticipantId, Seq, SessionId};
use tandem_ports::SessionStore;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, Sleep};

pub use hub::Delivery;
pub(crate) use hub::Hubs;
use hub::{PAGE, SessionHub, Signal};

use crate::{Caller, ServiceError, Tandem};

/// How long a quiet subscription waits before it reports that it is idle
/// (unless its consumer sets another heartbeat).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// At most this many events ready in the hub go out in one batch.
const MAX_BATCH: usize = 256;

impl Tandem {
    /// Subscribes `caller` to a session's events after `after`: the backlog from
    /// the log, then every new event as it is committed, exactly once and in
    /// order, until the subscription ends (see [`Subscription::next`]).
    ///
    /// Authorizes (and settles expiry) first, so that a refusal is an error
    /// rather than an empty subscription. A cursor beyond the end of the log
    /// (from another database, say) counts as the end: the subscriber gets what
    /// comes next, endings included.
    #[tracing::instrument(skip_all, fields(session_id = %session_id, after = %after))]
    pub async fn subscribe(
        &self,
        caller: &Caller,
        session_id: SessionId,
        after: Seq,
    ) -> Result<Subscription, ServiceError> {
        let last = self.visible_session(caller, session_id).await?.last_seq;
        let hub = self
            .subscriptions
            .hub(&self.store, &self.bus, session_id)
            .await
            .map_err(ServiceError::Store)?;
        let signals = hub.shared.signals.subscribe();
        // Subscribed, then checked: a shutdown from now on reaches this
        // subscription through its hub.
        let stopping = Arc::clone(&self.subscriptions.stopping);
        let phase = if stopping.load(Ordering::SeqCst) {
            Phase::Done
        } else {
            Phase::CatchUp { first: true }
        };
        let me = match caller {
            Caller::Participant(participant) => Some(participant.id),
            Caller::ApiKey(_) => None,
        };
        Ok(Subscription {
            store: Arc::clone(&self.store),
            me,
            session: session_id,
            sent: after.min(last),
            phase,
            stopping,
            signals,
            _hub: hub,
            committed: self.bus.subscribe(session_id),
            heartbeat: DEFAULT_HEARTBEAT,
            tick: Box::pin(tokio::time::sleep(DEFAULT_HEARTBEAT)),
            last_sent: Instant::now(),
            batch: Vec::new(),
        })
    }

    /// Ends every subscription of this server (at shutdown), and any opened
    /// later at once.
    pub fn end_subscriptions(&self) {
        self.subscriptions.end_all();
    }
}

/// What a subscription has for its consumer next.
#[derive(Debug)]
pub enum Next<'a> {
    /// The next events, in `seq` order (at least one).
    Events(&'a [Arc<Delivery>]),
    /// Nothing happened for a heartbeat: a transport may send a keep-alive.
    Idle,
}

/// Where a subscription is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Replaying the log after `sent`; `first` for the backlog the subscription
    /// opened with, after which it may turn out that the session had already
    /// ended.
    CatchUp { first: bool },
    /// Taking events from the hub.
    Live,
    /// Over: the session ended, the subscriber departed or the server stops.
    Done,
}

/// One subscriber's view of a session's events; see [`Tandem::subscribe`].
pub struct Subscription {
    store: Arc<dyn SessionStore>,
    /// The participant subscribed (none for an API key): its own departure
    /// ends the subscription.
    me: Option<ParticipantId>,
    session: SessionId,
    /// The seq of the last event delivered.
    sent: Seq,
    phase: Phase,
    /// Whether the server is shutting down.
    stopping: Arc<AtomicBool>,
    signals: broadcast::Receiver<Signal>,
    /// Holding the hub keeps the session's broadcaster alive.
    _hub: Arc<SessionHub>,
    /// The highest seq the bus has announced for the session.
    committed: watch::Receiver<Seq>,
    heartbeat: Duration,
    /// When to look whether a heartbeat is due; moved only when it fires, so
    /// that a busy subscription does not touch the timer for every event.
    tick: Pin<Box<Sleep>>,
    /// When the subscription last delivered something.
    last_sent: Instant,
    /// The batch `next` lends out.
    batch: Vec<Arc<Delivery>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("session", &self.session)
            .field("sent", &self.sent)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Reports [`Next::Idle`] after `every` without events (default 15 s).
    #[must_use]
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self.tick = Box::pin(tokio::time::sleep(every));
        self
    }

    /// The seq of the last event delivered (the cursor a client resumes from).
    pub fn last_delivered(&self) -> Seq {
        self.sent
    }

    /// The next events, or an idle heartbeat; `None` once the subscription is
    /// over: after `session.closed`, after the subscribed participant's
    /// `participant.left` or `participant.removed` (both delivered), at
    /// shutdown, or when the log cannot be read (the client resumes later).
    pub async fn next(&mut self) -> Option<Next<'_>> {
        self.batch.clear();
        loop {
            match self.phase {
                Phase::CatchUp { first } => self.catch_up(first).await,
                Phase::Live => {
                    if self.live().await {
                        self.last_sent = Instant::now();
                        return Some(Next::Idle);
                    }
                }
                Phase::Done => {}
            }
            if !self.batch.is_empty() {
                self.last_sent = Instant::now();
                return Some(Next::Events(&self.batch));
            }
            if self.phase == Phase::Done {
                return None;
            }
        }
    }

    /// Reads one page of the log after `sent` into the batch; moves on to live
    /// once the log is exhausted.
    async fn catch_up(&mut self, first: bool) {
        if self.stopping.load(Ordering::Relaxed) {
            self.phase = Phase::Done;
            return;
        }
        // The caller was authorized when the subscription opened; a participant
        // who left or was removed meanwhile meets that event in order and the
        // subscription ends there. Boxed: the read's state is large and only
        // needed while it runs, so an idle subscription does not carry it.
        let read = Box::pin(self.store.events(self.session, self.sent, PAGE));
        let events = match read.await {
            Ok(events) => events,
            Err(error) => {
                tracing::debug!(%error, session_id = %self.session, "a subscription stops: its events cannot be read");
                self.phase = Phase::Done;
                return;
            }
        };
        let full = events.len() >= PAGE as usize;
        for event in events {
            let delivery = Delivery::new(event);
            self.sent = delivery.seq();
            let ends = delivery.ends_for(self.me);
            self.batch.push(Arc::new(delivery));
            if ends {
                self.phase = Phase::Done;
                return;
            }
        }
        if !full {
            self.phase = if first && self.already_over().await {
                Phase::Done
            } else {
                Phase::Live
            };
        }
    }

    /// Whether the session ended before the point this subscriber resumes from.
    async fn already_over(&self) -> bool {
        // The caller was authorized when the subscription opened; only the row
        // matters.
        match Box::pin(self.store.session(self.session)).await {
            Ok(session) => session.end.is_some() && self.sent >= session.last_seq,
            Err(_) => true,
        }
    }

    /// Waits for the hub's next events and takes every one ready now that
    /// follows what was delivered into the batch. `true` when a heartbeat is
    /// due instead.
    async fn live(&mut self) -> bool {
        let first = tokio::select! {
            biased;
            received = self.signals.recv() => received,
            () = self.tick.as_mut() => return self.heartbeat_tick(),
        };
        match first {
            Ok(signal) => self.take(signal),
            // Too slow for the hub: read what was missed from the log.
            Err(RecvError::Lagged(_)) => self.phase = Phase::CatchUp { first: false },
            Err(RecvError::Closed) => self.phase = Phase::Done,
        }
        while self.phase == Phase::Live && self.batch.len() < MAX_BATCH {
            match self.signals.try_recv() {
                Ok(signal) => self.take(signal),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => self.phase = Phase::CatchUp { first: false },
                Err(TryRecvError::Closed) => self.phase = Phase::Done,
            }
        }
        false
    }

    /// Adds a hub event to the batch if it is the next one; a gap (events the
    /// hub broadcast before this subscription caught up) is filled from the log.
    fn take(&mut self, signal: Signal) {
        let delivery = match signal {
            Signal::Event(delivery) => delivery,
            Signal::Shutdown => {
                self.phase = Phase::Done;
                return;
            }
        };
        if delivery.seq() <= self.sent {
            return;
        }
        if delivery.seq() > self.sent.next() {
            self.phase = Phase::CatchUp { first: false };
            return;
        }
        self.sent = delivery.seq();
        if delivery.ends_for(self.me) {
            self.phase = Phase::Done;
        }
        self.batch.push(delivery);
    }

    /// The heartbeat timer fired: idle if nothing was delivered for the whole
    /// interval, and a look at the bus in case something committed never
    /// reached the hub (a safety net: the hub reads the log on every wake-up).
    fn heartbeat_tick(&mut self) -> bool {
        // Behind with nothing queued from the hub: read the log. (Merely
        // behind, with events waiting, is a busy subscription, not a stuck one.)
        if self.signals.is_empty() && *self.committed.borrow_and_update() > self.sent {
            self.phase = Phase::CatchUp { first: false };
            return false;
        }
        let due = self.last_sent + self.heartbeat;
        let now = Instant::now();
        if due > now {
            self.tick.as_mut().reset(due);
            return false;
        }
        self.tick.as_mut().reset(now + self.heartbeat);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tandem_domain::{Event, Seq};
    use tandem_ports::SystemClock;
    use tandem_sqlite::SqliteStore;

    use super::hub::{Delivery, Signal};
    use super::{Phase, Subscription};
    use crate::{LocalEventBus, NewSession, ServiceConfig, Tandem};

    /// A subscription that has delivered the whole log of a new session, and
    /// that log's last event.
    async fn caught_up() -> (Subscription, Event, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open_file(&dir.path().join("tandem.db"))
            .await
            .expect("open the database");
        let tandem = Tandem::new(
            Arc::new(store),
            Arc::new(LocalEventBus::new()),
            Arc::new(SystemClock),
            ServiceConfig::default(),
        );
        let key = tandem
            .bootstrap_admin_key(None)
            .await
            .expect("bootstrap")
            .expect("a first key");
        let admin = tandem
            .authenticate(key.secret.expose())
            .await
            .expect("the admin key");
        let created = tandem
            .create_session(&admin, NewSession::default())
            .await
            .expect("a session");
        let last = created.session.last_seq;
        let log = tandem
            .events(&admin, created.session.id, Seq::ZERO, 100)
            .await
            .expect("the log");
        let event = log.last().expect("a created session has events").clone();
        assert_eq!(event.seq, last);
        let subscription = tandem
            .subscribe(&admin, created.session.id, last)
            .await
            .expect("a subscription");
        (subscription, event, dir)
    }

    fn signal(event: &Event, seq: u64) -> Signal {
        Signal::Event(Arc::new(Delivery::new(Event {
            seq: Seq::new(seq),
            ..event.clone()
        })))
    }

    /// The hub never skips an event, so no stream test meets a gap; the
    /// subscription must still not deliver past one: it reads the log instead.
    #[tokio::test]
    async fn an_event_past_the_next_one_is_read_from_the_log_not_delivered() {
        let (mut subscription, last, _dir) = caught_up().await;
        subscription.phase = Phase::Live;
        let sent = subscription.sent.get();
        subscription.take(signal(&last, sent + 2));
        assert!(
            subscription.batch.is_empty(),
            "nothing past a gap is delivered"
        );
        assert_eq!(subscription.sent.get(), sent);
        assert!(matches!(
            subscription.phase,
            Phase::CatchUp { first: false }
        ));

        subscription.phase = Phase::Live;
        subscription.take(signal(&last, sent));
        assert!(subscription.batch.is_empty(), "nothing is delivered twice");
        subscription.take(signal(&last, sent + 1));
        assert_eq!(subscription.batch.len(), 1, "the next event is delivered");
        assert_eq!(subscription.sent.get(), sent + 1);
    }
}
