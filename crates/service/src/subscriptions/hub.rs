//! A session's hub: one per session with subscribers on this server. It hands
//! each new event, in `seq` order and once, to every subscriber through a
//! broadcast channel, as one shared [`Delivery`] that is encoded once for all.
//!
//! Events committed by this process are offered by the committing task itself
//! (no read back, no extra hop); everything else (other replicas' events,
//! anything it missed) the hub's task reads from the durable log when the event
//! bus wakes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use tandem_domain::{Event, ParticipantId, Seq, SessionId};
use tandem_ports::{EventBus, SessionStore, StoreError};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// Events read from the log at a time.
pub(super) const PAGE: u32 = 500;

/// One event on its way to subscribers, with its encoding for the wire made
/// once, by whichever subscriber needs it first, and shared by all the others.
#[derive(Debug)]
pub struct Delivery {
    event: Event,
    ends: Ending,
    encoded: OnceLock<Bytes>,
}

impl Delivery {
    pub(super) fn new(event: Event) -> Self {
        let ends = if event.payload.ends_session() {
            Ending::Everyone
        } else {
            event
                .payload
                .departed_participant()
                .map_or(Ending::Nobody, Ending::Participant)
        };
        Self {
            event,
            ends,
            encoded: OnceLock::new(),
        }
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The event as the transport sends it: `encode` runs once per delivery,
    /// for the first subscriber that asks; every other one gets the same bytes.
    pub fn encoded(&self, encode: impl FnOnce(&Event) -> Bytes) -> Bytes {
        self.encoded.get_or_init(|| encode(&self.event)).clone()
    }

    pub(super) fn seq(&self) -> Seq {
        self.event.seq
    }

    /// Whether the stream of participant `me` (none for an API key) ends with
    /// this event.
    pub(super) fn ends_for(&self, me: Option<ParticipantId>) -> bool {
        match self.ends {
            Ending::Nobody => false,
            Ending::Everyone => true,
            Ending::Participant(id) => me == Some(id),
        }
    }
}

/// Whom an event ends the stream for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Nobody,
    Everyone,
    Participant(ParticipantId),
}

/// What a hub broadcasts.
#[derive(Debug, Clone)]
pub(super) enum Signal {
    /// The next event of the session.
    Event(Arc<Delivery>),
    /// The server is shutting down: every subscription ends now (its client
    /// resumes elsewhere from the last `seq` it got).
    Shutdown,
}

/// A session's broadcaster. Dropped (and its task stopped) with its last
/// subscription.
#[derive(Debug)]
pub(super) struct SessionHub {
    pub(super) shared: Arc<HubShared>,
    task: JoinHandle<()>,
}

impl Drop for SessionHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a hub's log reader and the committing tasks share.
#[derive(Debug)]
pub(super) struct HubShared {
    pub(super) signals: broadcast::Sender<Signal>,
    /// The seq of the last event broadcast. Events are sent under this lock, so
    /// they go out in seq order, each once, whoever offers them.
    last: Mutex<Seq>,
}

impl HubShared {
    /// The seq of the last event broadcast.
    fn last(&self) -> Seq {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, Seq> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Broadcasts the events that directly follow the last one broadcast; those
    /// already sent are skipped. A gap stops it: the log reader fills it.
    fn offer(&self, events: &[Event]) {
        let fresh: Vec<Delivery> = {
            let last = self.last();
            events
                .iter()
                .filter(|event| event.seq > last)
                .cloned()
                .map(Delivery::new)
                .collect()
        };
        if fresh.is_empty() {
            return;
        }
        let mut last = self.lock();
        for delivery in fresh {
            if delivery.seq() == last.next() {
                *last = delivery.seq();
                // Nobody listening is fine: subscribers read the log themselves.
                let _ = self.signals.send(Signal::Event(Arc::new(delivery)));
            } else if delivery.seq() > last.next() {
                break;
            }
        }
    }
}

/// The hubs of the sessions watched on this server, and the shutdown switch.
pub(crate) struct Hubs {
    by_session: Mutex<HashMap<SessionId, Weak<SessionHub>>>,
    /// Set once the server shuts down, before the shutdown signals go out: a
    /// subscription that missed its signal (too far behind, or reading the log)
    /// sees it here when it next reads the log.
    pub(super) stopping: Arc<AtomicBool>,
    /// How many events a hub buffers for slow subscribers before they must
    /// catch up from the log.
    capacity: usize,
}

impl std::fmt::Debug for Hubs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hubs")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Hubs {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            by_session: Mutex::new(HashMap::new()),
            stopping: Arc::new(AtomicBool::new(false)),
            capacity: capacity.max(1),
        }
    }

    fn hubs(&self) -> MutexGuard<'_, HashMap<SessionId, Weak<SessionHub>>> {
        self.by_session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends every subscription: a shutdown signal through every hub, so that no
    /// subscription has to watch for shutdown on every wake-up.
    pub(crate) fn end_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let hubs: Vec<Arc<SessionHub>> = self.hubs().values().filter_map(Weak::upgrade).collect();
        for hub in hubs {
            let _ = hub.shared.signals.send(Signal::Shutdown);
        }
    }

    /// Hands this process's commits to the hub of their session, if it has one.
    pub(crate) fn committed(&self, session: SessionId, events: &[Event]) {
        let hub = self.hubs().get(&session).and_then(Weak::upgrade);
        if let Some(hub) = hub {
            hub.shared.offer(events);
        }
    }

    /// The hub of a session, started if nobody watches it yet.
    ///
    /// A new hub broadcasts every event after the session's `last_seq` as read
    /// here, before anyone subscribes to it: a subscriber's own backlog read,
    /// which follows its subscription, covers everything up to that point, so no
    /// event falls between the two.
    pub(super) async fn hub(
        &self,
        store: &Arc<dyn SessionStore>,
        bus: &Arc<dyn EventBus>,
        session: SessionId,
    ) -> Result<Arc<SessionHub>, StoreError> {
        if let Some(hub) = self.hubs().get(&session).and_then(Weak::upgrade) {
            return Ok(hub);
        }
        // Subscribed before the read: every commit after it raises the bus.
        let wakeups = bus.subscribe(session);
        let start = store.session(session).await?.last_seq;
        let mut hubs = self.hubs();
        if let Some(hub) = hubs.get(&session).and_then(Weak::upgrade) {
            return Ok(hub);
        }
        hubs.retain(|_, hub| hub.strong_count() > 0);
        let (signals, _) = broadcast::channel(self.capacity);
        let shared = Arc::new(HubShared {
            signals,
            last: Mutex::new(start),
        });
        let task = tokio::spawn(read_the_log(
            Arc::clone(store),
            session,
            Arc::clone(&shared),
            wakeups,
        ));
        let hub = Arc::new(SessionHub { shared, task });
        hubs.insert(session, Arc::downgrade(&hub));
        Ok(hub)
    }
}

/// Whenever the bus announces events the hub has not broadcast (another
/// replica's, or ones it missed), reads them from the log and broadcasts them.
async fn read_the_log(
    store: Arc<dyn SessionStore>,
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
            match store.events(session, after, PAGE).await {
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
