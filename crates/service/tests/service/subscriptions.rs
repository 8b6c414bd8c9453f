//! Subscribing to a session's events, without HTTP: the backlog from the log,
//! then live events, every event exactly once and in `seq` order, through the
//! races (commits between catch-up and live, a subscriber too slow for the hub,
//! a removal while a backlog is being sent) and until the right end (the
//! session closed, the subscriber removed or departed, shutdown). Each scenario
//! runs on SQLite and on Postgres.

use std::sync::Arc;
use std::time::Duration;

use tandem_domain::{Event, EventPayload, Seq, SessionMode};
use tandem_ports::SessionStore;
use tandem_service::{Caller, Next, ServiceConfig, Subscription};

use crate::common::{Harness, comment};

/// Where a scenario's service stores its sessions.
enum Backend {
    Sqlite,
    Postgres(sqlx::PgPool),
}

impl Backend {
    async fn harness(self, config: ServiceConfig) -> Harness {
        let harness = match self {
            Self::Sqlite => Harness::sqlite(config).await,
            Self::Postgres(pool) => {
                let store = tandem_postgres::PostgresStore::from_pool(pool);
                store.migrate().await.expect("migrate");
                let store: Arc<dyn SessionStore> = Arc::new(store);
                Harness::over(store, config, None)
            }
        };
        harness.with_admin().await
    }
}

/// What a subscription yields until it ends, or until it has delivered `until`
/// (heartbeats skipped); panics after 10 s without either.
async fn read(subscription: &mut Subscription, until: Option<Seq>) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        if until.is_some_and(|until| subscription.last_delivered() >= until) {
            return events;
        }
        let next = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .unwrap_or_else(|_| panic!("nothing within 10 s after {events:?}"));
        match next {
            Some(Next::Events(batch)) => {
                assert!(!batch.is_empty(), "a batch has events");
                events.extend(batch.iter().map(|delivery| delivery.event().clone()));
            }
            Some(Next::Idle) => {}
            None => return events,
        }
    }
}

/// Asserts that `events` are exactly the log's events after `after`, up to
/// the last one received: none missing, none twice, in order.
async fn assert_exactly_the_log(h: &Harness, events: &[Event], after: u64) {
    let last = events.last().expect("events").seq.get();
    let log: Vec<Event> = h
        .log(events[0].session_id)
        .await
        .into_iter()
        .filter(|event| event.seq.get() > after && event.seq.get() <= last)
        .collect();
    let seqs: Vec<u64> = events.iter().map(|event| event.seq.get()).collect();
    assert_eq!(
        seqs,
        (after + 1..=last).collect::<Vec<_>>(),
        "every seq once, in order"
    );
    assert_eq!(events, log.as_slice(), "the events are the log's");
}

async fn post(h: &Harness, caller: &Caller, session: tandem_domain::SessionId, count: usize) {
    for n in 0..count {
        h.tandem
            .post_comment(caller, session, comment(&format!("comment {n}")))
            .await
            .expect("comment");
    }
}

async fn the_backlog_then_live_events_each_once_in_order(backend: Backend) {
    let h = backend.harness(ServiceConfig::default()).await;
    let party = h.party(SessionMode::PromptDirect).await;
    post(&h, &party.host, party.id, 3).await;
    let backlog_end = h.stored(party.id).await.last_seq;

    let mut subscription = h
        .tandem
        .subscribe(&party.collaborator.caller, party.id, Seq::ZERO)
        .await
        .expect("subscribe");
    let mut events = read(&mut subscription, Some(backlog_end)).await;
    post(&h, &party.host, party.id, 5).await;
    let end = h.stored(party.id).await.last_seq;
    events.extend(read(&mut subscription, Some(end)).await);
    assert_exactly_the_log(&h, &events, 0).await;

    // Resuming after a seq delivers only what follows it.
    let mut resumed = h
        .tandem
        .subscribe(&party.collaborator.caller, party.id, backlog_end)
        .await
        .expect("subscribe");
    let rest = read(&mut resumed, Some(end)).await;
    assert_exactly_the_log(&h, &rest, backlog_end.get()).await;
}

async fn commits_between_catch_up_and_live_come_once(backend: Backend) {
    let h = backend.harness(ServiceConfig::default()).await;
    let party = h.party(SessionMode::PromptDirect).await;
    let mut subscription = h
        .tandem
        .subscribe(&party.host, party.id, Seq::ZERO)
        .await
        .expect("subscribe");
    // Committed after the subscription joined the hub and before it read its
    // backlog: in the log and in the hub both.
    post(&h, &party.host, party.id, 5).await;
    // And commits racing the reader, from another task.
    let writer = {
        let tandem = h.tandem.clone();
        let host = party.host.clone();
        let id = party.id;
        tokio::spawn(async move {
            for n in 0..100 {
                tandem
                    .post_comment(&host, id, comment(&format!("racing {n}")))
                    .await
                    .expect("comment");
                if n % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut events = read(&mut subscription, Some(Seq::new(3))).await;
    writer.await.expect("the writer");
    let end = h.stored(party.id).await.last_seq;
    events.extend(read(&mut subscription, Some(end)).await);
    assert_exactly_the_log(&h, &events, 0).await;
}

async fn a_subscriber_too_slow_for_the_hub_catches_up_from_the_log(backend: Backend) {
    let h = backend
        .harness(ServiceConfig {
            stream_buffer: 4,
            ..ServiceConfig::default()
        })
        .await;
    let party = h.party(SessionMode::PromptDirect).await;
    let mut subscription = h
        .tandem
        .subscribe(&party.host, party.id, Seq::ZERO)
        .await
        .expect("subscribe");
    let start = h.stored(party.id).await.last_seq;
    let mut events = read(&mut subscription, Some(start)).await;
    // Live now; far more events than the hub keeps arrive while it reads none.
    post(&h, &party.host, party.id, 40).await;
    let end = h.stored(party.id).await.last_seq;
    events.extend(read(&mut subscription, Some(end)).await);
    assert_exactly_the_log(&h, &events, 0).await;
}

async fn a_removal_while_the_backlog_is_sent_ends_the_stream_there(backend: Backend) {
    let h = backend.harness(ServiceConfig::default()).await;
    let party = h.party(SessionMode::PromptDirect).await;
    // More than one page of backlog.
    post(&h, &party.host, party.id, 520).await;
    let mut subscription = h
        .tandem
        .subscribe(&party.collaborator.caller, party.id, Seq::ZERO)
        .await
        .expect("subscribe");
    let first_page = match subscription.next().await {
        Some(Next::Events(batch)) => batch.len(),
        other => panic!("a page of the backlog, got {other:?}"),
    };
    assert!(first_page < 520, "the backlog comes in pages");
    h.tandem
        .remove_participant(&party.host, party.id, party.collaborator.participant.id)
        .await
        .expect("remove");
    post(&h, &party.host, party.id, 2).await;

    let rest = read(&mut subscription, None).await;
    let last = rest.last().expect("the rest of the backlog");
    assert!(
        matches!(&last.payload, EventPayload::ParticipantRemoved { participant_id, .. }
            if *participant_id == party.collaborator.participant.id),
        "the stream ends with the removal, got {:?}",
        last.payload
    );
    assert_exactly_the_log(&h, &rest, first_page as u64).await;
    assert!(subscription.next().await.is_none(), "and stays over");
}

async fn streams_end_with_the_session_or_their_participant(backend: Backend) {
    let h = backend.harness(ServiceConfig::default()).await;
    let party = h.party(SessionMode::PromptDirect).await;
    let mut viewer = h
        .tandem
        .subscribe(&party.viewer.caller, party.id, Seq::ZERO)
        .await
        .expect("subscribe");
    let mut admin = h
        .tandem
        .subscribe(h.admin(), party.id, Seq::ZERO)
        .await
        .expect("subscribe");

    h.tandem
        .leave(&party.viewer.caller, party.id)
        .await
        .expect("leave");
    let seen = read(&mut viewer, None).await;
    assert!(
        matches!(seen.last().map(|event| &event.payload), Some(EventPayload::ParticipantLeft { participant_id })
            if *participant_id == party.viewer.participant.id),
        "the viewer's stream ends with its departure"
    );
    assert_exactly_the_log(&h, &seen, 0).await;

    post(&h, &party.host, party.id, 1).await;
    h.tandem
        .close_session(&party.host, party.id, None)
        .await
        .expect("close");
    let seen = read(&mut admin, None).await;
    assert!(
        matches!(
            seen.last().map(|event| &event.payload),
            Some(EventPayload::SessionClosed { .. })
        ),
        "others go on until the session closes"
    );
    assert_exactly_the_log(&h, &seen, 0).await;

    // Resuming a closed session: what is left, then the end; nothing at all
    // when nothing is left.
    let last = h.stored(party.id).await.last_seq;
    let mut late = h
        .tandem
        .subscribe(h.admin(), party.id, Seq::new(last.get() - 1))
        .await
        .expect("subscribe");
    assert_eq!(read(&mut late, None).await.len(), 1);
    let mut after_the_end = h
        .tandem
        .subscribe(h.admin(), party.id, last)
        .await
        .expect("subscribe");
    assert!(after_the_end.next().await.is_none());
}

async fn shutdown_ends_every_subscription(backend: Backend) {
    let h = backend.harness(ServiceConfig::default()).await;
    let party = h.party(SessionMode::PromptDirect).await;
    let mut subscription = h
        .tandem
        .subscribe(&party.host, party.id, Seq::ZERO)
        .await
        .expect("subscribe");
    let start = h.stored(party.id).await.last_seq;
    read(&mut subscription, Some(start)).await;
    h.tandem.end_subscriptions();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), subscription.next())
            .await
            .expect("at once")
            .is_none()
    );
    let mut later = h
        .tandem
        .subscribe(&party.host, party.id, Seq::ZERO)
        .await
        .expect("subscribe");
    assert!(later.next().await.is_none(), "a later one ends at once");
}

async fn a_quiet_subscription_reports_heartbeats(backend: Backend) {
    let h = backend.harness(ServiceConfig::default()).await;
    let party = h.party(SessionMode::PromptDirect).await;
    let mut subscription = h
        .tandem
        .subscribe(&party.host, party.id, Seq::ZERO)
        .await
        .expect("subscribe")
        .with_heartbeat(Duration::from_millis(50));
    let start = h.stored(party.id).await.last_seq;
    read(&mut subscription, Some(start)).await;
    let next = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("a heartbeat");
    assert!(matches!(next, Some(Next::Idle)), "got {next:?}");
}

async fn refused_callers_get_an_error_not_a_subscription(backend: Backend) {
    let h = backend.harness(ServiceConfig::default()).await;
    let party = h.party(SessionMode::PromptDirect).await;
    let other = h
        .key("elsewhere", &[tandem_domain::Scope::SessionsRead])
        .await;
    let refused = h.tandem.subscribe(&other, party.id, Seq::ZERO).await;
    assert!(
        matches!(refused, Err(tandem_service::ServiceError::NotFound(_))),
        "another workspace's key: {refused:?}"
    );
}

/// Runs each scenario on a fresh SQLite file and on a fresh Postgres database
/// (`#[sqlx::test]` makes one per test).
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Backend::Sqlite).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[sqlx::test(migrations = false)]
                async fn $scenario(pool: sqlx::PgPool) {
                    super::$scenario(super::Backend::Postgres(pool)).await;
                }
            )*
        }
    };
}

on_both_stores!(
    the_backlog_then_live_events_each_once_in_order,
    commits_between_catch_up_and_live_come_once,
    a_subscriber_too_slow_for_the_hub_catches_up_from_the_log,
    a_removal_while_the_backlog_is_sent_ends_the_stream_there,
    streams_end_with_the_session_or_their_participant,
    shutdown_ends_every_subscription,
    a_quiet_subscription_reports_heartbeats,
    refused_callers_get_an_error_not_a_subscription,
);
