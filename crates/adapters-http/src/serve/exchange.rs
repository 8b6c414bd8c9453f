//! What the parts of one connection tell each other about its exchanges: the
//! requests dispatched and not yet answered (so that the wire knows which
//! response heads are answers), whether the connection waits for a request
//! and since when (for its deadlines), where the next request head begins,
//! and whether the connection must close after its current response.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The shared state of one connection's exchanges.
#[derive(Debug)]
pub(crate) struct Exchanges {
    /// Requests handed to the service whose response head has not been written
    /// yet, oldest first: whether each asked for `HEAD` (a response without body).
    awaiting: Mutex<VecDeque<bool>>,
    /// Requests handed to the service whose response was not written to its end.
    unfinished: AtomicUsize,
    /// While no request is unfinished: what the connection is waiting for.
    waiting: Mutex<Waiting>,
    /// Counts the points where the next bytes read start a new request head.
    head_starts: AtomicU64,
    /// A request body timed out: the connection ends after its response.
    closing: AtomicBool,
}

/// How long a connection has been waiting for its next request.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    /// When it opened, or when its last response was written.
    since: Instant,
    /// Whether it has had a response (else it is new).
    served: bool,
    /// When the first bytes of the next request arrived.
    started: Option<Instant>,
}

/// What a connection waiting for a request is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A request head: the first on a new connection, or one that began.
    Head,
    /// Any byte of the next request, on a kept-alive connection.
    Idle,
}

impl Default for Exchanges {
    fn default() -> Self {
        Self {
            awaiting: Mutex::default(),
            unfinished: AtomicUsize::new(0),
            waiting: Mutex::new(Waiting {
                since: Instant::now(),
                served: false,
                started: None,
            }),
            head_starts: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        }
    }
}

impl Exchanges {
    /// A request was handed to the service; with no body, what follows it on
    /// the wire is the next request head.
    pub(crate) fn dispatched(&self, head: bool, has_body: bool) {
        self.awaiting().push_back(head);
        self.unfinished.fetch_add(1, Ordering::AcqRel);
        if !has_body {
            self.next_head_starts();
        }
    }

    /// A response was written to its end.
    pub(crate) fn finished(&self) {
        let before = self
            .unfinished
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if before == Ok(1) {
            *self.waiting() = Waiting {
                since: Instant::now(),
                served: true,
                started: None,
            };
        }
    }

    /// Bytes arrived from the client.
    pub(crate) fn received(&self) {
        if self.unfinished.load(Ordering::Acquire) == 0 {
            let mut waiting = self.waiting();
            if waiting.started.is_none() {
                waiting.started = Some(Instant::now());
            }
        }
    }

    /// When the connection must be closed for sending too slowly, and what it
    /// waits for then; `None` while a request is being answered. A new
    /// connection has `head` to send its first request head; a kept-alive one
    /// may stay silent for `idle`, then has `head` from the first byte.
    pub(crate) fn deadline(&self, head: Duration, idle: Duration) -> Option<(Instant, Wait)> {
        if self.unfinished.load(Ordering::Acquire) > 0 {
            return None;
        }
        let waiting = *self.waiting();
        Some(match (waiting.served, waiting.started) {
            (false, _) => (waiting.since + head, Wait::Head),
            (true, Some(started)) => (started + head, Wait::Head),
            (true, None) => (waiting.since + idle, Wait::Idle),
        })
    }

    /// The current request's body was read to its end.
    pub(crate) fn body_read(&self) {
        self.next_head_starts();
    }

    /// The current request's body did not arrive in time.
    pub(crate) fn body_timed_out(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Whether the connection must close after the current response.
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Whether any dispatched request still waits for its response head.
    pub(crate) fn any_awaiting(&self) -> bool {
        !self.awaiting().is_empty()
    }

    /// A response head was written: the oldest waiting request's. `None` if no
    /// request waits; otherwise whether it asked for `HEAD`.
    pub(crate) fn answered(&self) -> Option<bool> {
        self.awaiting().pop_front()
    }

    /// Whether the oldest waiting request asked for `HEAD`.
    pub(crate) fn oldest_is_head(&self) -> bool {
        self.awaiting().front().copied().unwrap_or(false)
    }

    /// Changes each time a new request head begins.
    pub(crate) fn head_generation(&self) -> u64 {
        self.head_starts.load(Ordering::Acquire)
    }

    fn next_head_starts(&self) {
        self.head_starts.fetch_add(1, Ordering::Release);
    }

    fn awaiting(&self) -> MutexGuard<'_, VecDeque<bool>> {
        self.awaiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
