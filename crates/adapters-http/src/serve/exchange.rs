//! What the parts of one connection tell each other about its exchanges: the
//! requests dispatched and not yet answered (so that the wire knows which
//! response heads are answers), where the next request head begins, and
//! whether the connection must close after its current response.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The shared state of one connection's exchanges.
#[derive(Debug, Default)]
pub(crate) struct Exchanges {
    /// Requests handed to the service whose response head has not been written
    /// yet, oldest first: whether each asked for `HEAD` (a response without body).
    awaiting: Mutex<VecDeque<bool>>,
    /// Counts the points where the next bytes read start a new request head.
    head_starts: AtomicU64,
    /// A request body timed out: the connection ends after its response.
    closing: AtomicBool,
}

impl Exchanges {
    /// A request was handed to the service; with no body, what follows it on
    /// the wire is the next request head.
    pub(crate) fn dispatched(&self, head: bool, has_body: bool) {
        self.awaiting().push_back(head);
        if !has_body {
            self.next_head_starts();
        }
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
}
