//! `LocalEventBus`: wake-ups within one process, one watch channel per session.

use std::collections::HashMap;
use std::sync::Mutex;

use tandem_domain::{Seq, SessionId};
use tandem_ports::EventBus;
use tokio::sync::watch;

/// An in-process `EventBus`. A session's channel exists while someone subscribes;
/// publishing to a session nobody watches costs one map lookup.
#[derive(Debug, Default)]
pub struct LocalEventBus {
    channels: Mutex<HashMap<SessionId, watch::Sender<Seq>>>,
}

impl LocalEventBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sessions someone currently subscribes to (for polling fallbacks).
    pub fn watched_sessions(&self) -> Vec<SessionId> {
        let mut channels = self.channels();
        channels.retain(|_, sender| sender.receiver_count() > 0);
        channels.keys().copied().collect()
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, watch::Sender<Seq>>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl EventBus for LocalEventBus {
    fn publish(&self, session: SessionId, seq: Seq) {
        let mut channels = self.channels();
        if let Some(sender) = channels.get(&session) {
            if sender.receiver_count() == 0 {
                channels.remove(&session);
                return;
            }
            sender.send_if_modified(|current| {
                let newer = seq > *current;
                if newer {
                    *current = seq;
                }
                newer
            });
        }
    }

    fn subscribe(&self, session: SessionId) -> watch::Receiver<Seq> {
        self.channels()
            .entry(session)
            .or_insert_with(|| watch::channel(Seq::ZERO).0)
            .subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[tokio::test]
    async fn subscribers_see_the_highest_seq_published() {
        let bus = LocalEventBus::new();
        let session = SessionId::from_uuid(Uuid::now_v7());
        let mut rx = bus.subscribe(session);
        bus.publish(session, Seq::new(3));
        rx.changed().await.expect("changed");
        assert_eq!(*rx.borrow_and_update(), Seq::new(3));
        bus.publish(session, Seq::new(2));
        assert!(!rx.has_changed().expect("open"), "an older seq is not news");
        bus.publish(SessionId::from_uuid(Uuid::now_v7()), Seq::new(9));
        assert!(
            !rx.has_changed().expect("open"),
            "other sessions do not wake us"
        );
    }

    #[test]
    fn watched_sessions_are_those_with_subscribers() {
        let bus = LocalEventBus::new();
        let watched = SessionId::from_uuid(Uuid::now_v7());
        let dropped = SessionId::from_uuid(Uuid::now_v7());
        let _rx = bus.subscribe(watched);
        drop(bus.subscribe(dropped));
        assert_eq!(bus.watched_sessions(), vec![watched]);
    }

    #[test]
    fn channels_without_subscribers_are_dropped() {
        let bus = LocalEventBus::new();
        let session = SessionId::from_uuid(Uuid::now_v7());
        drop(bus.subscribe(session));
        bus.publish(session, Seq::new(1));
        assert!(bus.channels().is_empty());
    }
}
