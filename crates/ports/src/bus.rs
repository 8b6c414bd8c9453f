//! The event bus port: wake-ups after commit. The bus carries no events, only the
//! news that a session's log grew; subscribers read the log for the events.

use async_trait::async_trait;
use tandem_domain::{Seq, SessionId};
use tokio::sync::watch;

/// Wakes the subscribers of a session after its events were committed.
///
/// Implementations may be local (one process) or cross-replica (Postgres
/// LISTEN/NOTIFY). A lost wake-up may delay delivery but never lose an event,
/// because subscribers always read from the durable log, and also poll it.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Announces that `session`'s log holds events up to `seq`, committed. Never
    /// blocks and never fails: delivery of the wake-up is best effort.
    fn publish(&self, session: SessionId, seq: Seq);

    /// Subscribes to wake-ups of `session`. The receiver's value is the highest
    /// committed `seq` the bus has heard of (it only grows); it changes after
    /// every `publish` with a higher `seq`.
    fn subscribe(&self, session: SessionId) -> watch::Receiver<Seq>;

    /// Stops the bus at a graceful shutdown, after the last write and before the
    /// store closes: every wake-up published so far has been sent to the other
    /// replicas when it returns (or could not be, and was logged). Publishing
    /// afterwards wakes local subscribers only. A local bus has nothing to send.
    async fn close(&self) {}
}
