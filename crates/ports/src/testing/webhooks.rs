//! The storage contract of webhooks (`WebhookStore`): endpoints, cursors over
//! each session's log, deliveries and leases. Run by every adapter through
//! `for_each_webhook_contract_test!`, against a fresh, migrated, empty database.

use chrono::{DateTime, TimeDelta, Utc};
use tandem_domain::{
    Comment, CommentId, CommentText, DeliveryStatus, DisabledReason, NewWebhook, Seq, SessionId,
    SessionSettings, Summary, TextLimits, WebhookDelivery, WebhookDeliveryId, WebhookDescription,
    WebhookEndpoint, WebhookEventTypes, WebhookFormat, WebhookId, WebhookPatch, WebhookSecret,
    WebhookUrl, WorkspaceId,
};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::fixtures::{NewSession, at, session_with};
use crate::{Change, Page, SessionStore, StoreError, WebhookProgress, Write};

fn endpoint(workspace: &str, session_id: Option<SessionId>, now: DateTime<Utc>) -> WebhookEndpoint {
    WebhookEndpoint::create(
        WebhookId::from_uuid(Uuid::now_v7()),
        WorkspaceId::parse(workspace).expect("workspace"),
        NewWebhook {
            url: WebhookUrl::parse("https://hooks.example.com/tandem").expect("url"),
            event_types: WebhookEventTypes::needs_you(),
            session_id,
            description: Some(WebhookDescription::parse("on-call").expect("description")),
            format: WebhookFormat::Standard,
            enabled: true,
        },
        WebhookSecret::new(format!("whsec_{}", Uuid::now_v7().simple())),
        now,
    )
}

/// A session of `workspace` created at `secs` (after the fixtures' t0), stored.
async fn new_session<S: SessionStore>(store: &S, workspace: &str, secs: i64) -> NewSession {
    let new = session_with(workspace, SessionSettings::default(), at(secs));
    store.apply(new.change()).await.expect("create a session");
    new
}

/// Appends a comment of the host at `secs`; returns the session's last seq.
async fn comment<S: SessionStore>(store: &S, new: &NewSession, secs: i64) -> Seq {
    let created = &new.created;
    let transition = Comment::post(
        CommentId::from_uuid(Uuid::now_v7()),
        &created.session,
        &created.host,
        CommentText::parse("hello", &TextLimits::DEFAULT).expect("text"),
        at(secs),
    )
    .expect("post");
    let events = store
        .apply(
            Change::new(created.session.id)
                .write(Write::InsertComment(transition.state))
                .events(transition.events),
        )
        .await
        .expect("comment");
    events.last().expect("an event").seq
}

async fn close<S: SessionStore>(store: &S, new: &NewSession, secs: i64) {
    let session = store.session(new.created.session.id).await.expect("read");
    let closed = session
        .close(
            &new.created.host,
            Some(Summary::parse("done", &TextLimits::DEFAULT).expect("summary")),
            at(secs),
        )
        .expect("close");
    store
        .apply(
            Change::new(session.id)
                .write(Write::UpdateSession(closed.state))
                .events(closed.events),
        )
        .await
        .expect("close");
}

/// The (session, delivered, last seq) of an endpoint's backlog at `secs`.
async fn backlog<S: SessionStore>(
    store: &S,
    id: WebhookId,
    secs: i64,
) -> Vec<(SessionId, u64, u64)> {
    store
        .webhook_backlog(id, at(secs), 100)
        .await
        .expect("backlog")
        .into_iter()
        .map(|entry| {
            (
                entry.session_id,
                entry.delivered.get(),
                entry.last_seq.get(),
            )
        })
        .collect()
}

fn delivery(
    webhook: &WebhookEndpoint,
    session_id: SessionId,
    seq: u64,
    status: DeliveryStatus,
    attempts: u32,
    secs: i64,
) -> WebhookDelivery {
    WebhookDelivery {
        id: WebhookDeliveryId::from_uuid(Uuid::now_v7()),
        webhook_id: webhook.id(),
        session_id,
        seq: Seq::new(seq),
        event_type: "prompt.failed".to_owned(),
        status,
        attempts,
        created_at: at(secs),
        last_attempt_at: Some(at(secs)),
        next_attempt_at: (status == DeliveryStatus::Pending).then(|| at(secs + 60)),
        response_status: Some(503),
        error: Some("the endpoint answered 503".to_owned()),
        latency_ms: Some(12),
    }
}

fn progress(
    webhook: &WebhookEndpoint,
    session_id: SessionId,
    delivered: u64,
    retry_at: Option<DateTime<Utc>>,
    delivery: Option<WebhookDelivery>,
) -> WebhookProgress {
    WebhookProgress {
        webhook_id: webhook.id(),
        since: webhook.since(),
        session_id,
        delivered: Seq::new(delivered),
        retry_at,
        delivery,
        give_up_at: None,
    }
}

/// Endpoints are stored and read back exactly, listed newest first per
/// workspace, updated only at the version read, and deleted.
pub async fn webhooks_round_trip_update_and_delete<S: SessionStore>(store: S) {
    let a1 = endpoint("team-a", None, at(0));
    let a2 = endpoint("team-a", None, at(1));
    let b1 = endpoint("team-b", None, at(2));
    for endpoint in [&a1, &a2, &b1] {
        store.insert_webhook(endpoint).await.expect("insert");
    }
    assert!(matches!(
        store.insert_webhook(&a1).await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(store.webhook(a1.id()).await.expect("read"), a1);
    let workspace = WorkspaceId::parse("team-a").expect("workspace");
    let all = store
        .webhooks(&workspace, Page::first(10))
        .await
        .expect("list");
    assert_eq!(all, vec![a2.clone(), a1.clone()]);
    let second = store
        .webhooks(
            &workspace,
            Page {
                after: Some(a2.id()),
                limit: 10,
            },
        )
        .await
        .expect("page");
    assert_eq!(second, vec![a1.clone()]);

    // Every field survives an update; the version moves on.
    let rotated = a1.rotate_secret(
        WebhookSecret::new("whsec_rotated".to_owned()),
        TimeDelta::hours(1),
        at(10),
    );
    let updated = rotated
        .update(
            WebhookPatch {
                url: Some(WebhookUrl::parse("https://elsewhere.example.com/x").expect("url")),
                event_types: Some(
                    WebhookEventTypes::parse(["session.closed", "comment.posted"]).expect("types"),
                ),
                description: Some(None),
                format: Some(WebhookFormat::Slack),
                enabled: Some(false),
                ..WebhookPatch::default()
            },
            at(11),
        )
        .endpoint;
    store.update_webhook(&updated, false).await.expect("update");
    let read = store.webhook(a1.id()).await.expect("read");
    assert_eq!(read.version(), 1);
    assert_eq!(read.url(), updated.url());
    assert_eq!(read.event_types(), updated.event_types());
    assert_eq!(read.description(), None);
    assert_eq!(read.format(), WebhookFormat::Slack);
    assert_eq!(read.secret().expose(), "whsec_rotated");
    assert_eq!(read.previous_secret(), updated.previous_secret());
    assert_eq!(
        read.disabled().map(|d| (d.at, d.reason)),
        Some((at(11), DisabledReason::Manual))
    );
    assert!(
        matches!(
            store.update_webhook(&updated, false).await,
            Err(StoreError::Conflict)
        ),
        "a stale version is a conflict"
    );

    store.delete_webhook(a1.id()).await.expect("delete");
    assert!(matches!(
        store.webhook(a1.id()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_webhook(a1.id()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_webhook(&read, false).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .webhook_delivery(WebhookDeliveryId::from_uuid(Uuid::now_v7()))
            .await,
        Err(StoreError::NotFound)
    ));
}

/// A new endpoint hears of what happens from its creation on: not of the
/// sessions' history, not of sessions that ended before; but of everything of
/// sessions begun since (a session stamped shortly before, committed after the
/// endpoint, included).
pub async fn new_webhooks_start_at_the_end_of_each_log<S: SessionStore>(store: S) {
    let active = new_session(&store, "team-a", 0).await;
    comment(&store, &active, 5).await;
    let ended = new_session(&store, "team-a", 1).await;
    close(&store, &ended, 6).await;
    let elsewhere = new_session(&store, "team-b", 2).await;
    let webhook = endpoint("team-a", None, at(3600));
    store.insert_webhook(&webhook).await.expect("insert");
    assert_eq!(backlog(&store, webhook.id(), 3600).await, vec![]);
    assert!(
        store
            .webhooks_due(at(3600), 10)
            .await
            .expect("due")
            .is_empty()
    );

    let last = comment(&store, &active, 3601).await;
    comment(&store, &elsewhere, 3601).await;
    // Stamped a minute before the endpoint, committed after it: delivered from
    // its start. Stamped an hour before and never seen: not a new session.
    let racing = new_session(&store, "team-a", 3540).await;
    let _stale = new_session(&store, "team-a", 10).await;
    let fresh = new_session(&store, "team-a", 3700).await;
    let mut expected = vec![
        (active.created.session.id, last.get() - 1, last.get()),
        (racing.created.session.id, 0, 2),
        (fresh.created.session.id, 0, 2),
    ];
    expected.sort();
    assert_eq!(backlog(&store, webhook.id(), 3700).await, expected);
    assert_eq!(
        store.webhooks_due(at(3700), 10).await.expect("due"),
        vec![webhook.id()]
    );

    // An endpoint of one session hears of that session only.
    let only = endpoint("team-a", Some(fresh.created.session.id), at(3800));
    store.insert_webhook(&only).await.expect("insert");
    let fresh_last = comment(&store, &fresh, 3801).await;
    assert_eq!(
        backlog(&store, only.id(), 3801).await,
        vec![(fresh.created.session.id, 2, fresh_last.get())]
    );
}

/// The cursor moves only with a recorded outcome, by the lease holder, while
/// the endpoint has not restarted; a pending delivery holds its session back
/// until it is due, and is kept as one row per event.
pub async fn progress_moves_the_cursor_with_its_delivery<S: SessionStore>(store: S) {
    let webhook = endpoint("team-a", None, at(0));
    store.insert_webhook(&webhook).await.expect("insert");
    let new = new_session(&store, "team-a", 1).await;
    let id = new.created.session.id;
    let last = comment(&store, &new, 2).await.get();
    assert!(
        store
            .acquire_webhook_lease(webhook.id(), "worker-1", at(2), at(32))
            .await
            .expect("lease")
    );

    // Event 2 failed and is due again at 62: the session waits till then.
    let first = delivery(&webhook, id, 2, DeliveryStatus::Pending, 1, 2);
    let pending = progress(&webhook, id, 1, Some(at(62)), Some(first.clone()));
    assert!(matches!(
        store.record_webhook_progress(&pending, "worker-2").await,
        Err(StoreError::LeaseLost)
    ));
    assert_eq!(backlog(&store, webhook.id(), 3).await, vec![(id, 0, last)]);
    store
        .record_webhook_progress(&pending, "worker-1")
        .await
        .expect("record");
    assert_eq!(backlog(&store, webhook.id(), 61).await, vec![]);
    assert!(
        store
            .webhooks_due(at(61), 10)
            .await
            .expect("due")
            .is_empty()
    );
    let due = store
        .webhook_backlog(webhook.id(), at(62), 10)
        .await
        .expect("backlog");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].delivered, Seq::new(1));
    assert_eq!(due[0].pending.as_ref(), Some(&first));

    // It succeeds on the next attempt: same row, cursor past it.
    let mut second = first.clone();
    second.id = WebhookDeliveryId::from_uuid(Uuid::now_v7()); // the stored id stays
    second.status = DeliveryStatus::Succeeded;
    second.attempts = 2;
    second.next_attempt_at = None;
    second.response_status = Some(204);
    second.error = None;
    store
        .record_webhook_progress(
            &progress(&webhook, id, last, None, Some(second)),
            "worker-1",
        )
        .await
        .expect("record");
    assert_eq!(backlog(&store, webhook.id(), 63).await, vec![]);
    let stored = store
        .webhook_deliveries(webhook.id(), None, Page::first(10))
        .await
        .expect("deliveries");
    assert_eq!(stored.len(), 1, "one delivery per event and endpoint");
    assert_eq!(stored[0].id, first.id);
    assert_eq!(stored[0].created_at, first.created_at);
    assert_eq!(stored[0].status, DeliveryStatus::Succeeded);
    assert_eq!(stored[0].attempts, 2);
    assert_eq!(stored[0].response_status, Some(204));
    assert_eq!(stored[0].next_attempt_at, None);
    assert_eq!(
        store.webhook_delivery(first.id).await.expect("read"),
        stored[0]
    );

    // A record from before a restart of the endpoint is refused.
    let restarted = webhook
        .update(
            WebhookPatch {
                session_id: Some(Some(id)),
                ..WebhookPatch::default()
            },
            at(70),
        )
        .endpoint;
    store
        .update_webhook(&restarted, true)
        .await
        .expect("update");
    assert!(matches!(
        store
            .record_webhook_progress(&progress(&webhook, id, last, None, None), "worker-1")
            .await,
        Err(StoreError::Conflict)
    ));
}

/// Giving up disables the endpoint with the failing delivery recorded; a
/// restart (enabled again) abandons pending deliveries and starts from the
/// current end of each log.
pub async fn giving_up_disables_and_a_restart_starts_afresh<S: SessionStore>(store: S) {
    let webhook = endpoint("team-a", None, at(0));
    store.insert_webhook(&webhook).await.expect("insert");
    let other = endpoint("team-a", None, at(0));
    store.insert_webhook(&other).await.expect("insert");
    let new = new_session(&store, "team-a", 1).await;
    let id = new.created.session.id;
    comment(&store, &new, 2).await;
    for endpoint in [&webhook, &other] {
        assert!(
            store
                .acquire_webhook_lease(endpoint.id(), "w", at(2), at(100))
                .await
                .expect("lease")
        );
    }
    // `other` has a delivery waiting for its retry.
    let waiting = delivery(&other, id, 2, DeliveryStatus::Pending, 1, 2);
    store
        .record_webhook_progress(
            &progress(&other, id, 1, Some(at(60)), Some(waiting.clone())),
            "w",
        )
        .await
        .expect("record");

    let mut gave_up = progress(
        &webhook,
        id,
        2,
        None,
        Some(delivery(&webhook, id, 2, DeliveryStatus::Failed, 9, 50)),
    );
    gave_up.give_up_at = Some(at(50));
    store
        .record_webhook_progress(&gave_up, "w")
        .await
        .expect("record");
    let disabled = store.webhook(webhook.id()).await.expect("read");
    assert_eq!(
        disabled.disabled().map(|d| (d.at, d.reason)),
        Some((at(50), DisabledReason::Failing))
    );
    assert_eq!(disabled.version(), 1);
    comment(&store, &new, 51).await;
    assert_eq!(backlog(&store, webhook.id(), 51).await, vec![]);
    assert_eq!(
        store.webhooks_due(at(60), 10).await.expect("due"),
        Vec::<WebhookId>::new(),
        "disabled, or leased"
    );
    assert_eq!(
        store.enabled_webhook_event_types().await.expect("types"),
        vec![WebhookEventTypes::needs_you()]
    );

    // `other` is disabled and enabled again: it starts from now.
    let off = store
        .webhook(other.id())
        .await
        .expect("read")
        .update(
            WebhookPatch {
                enabled: Some(false),
                ..WebhookPatch::default()
            },
            at(52),
        )
        .endpoint;
    store.update_webhook(&off, false).await.expect("disable");
    let on = store.webhook(other.id()).await.expect("read").update(
        WebhookPatch {
            enabled: Some(true),
            ..WebhookPatch::default()
        },
        at(53),
    );
    assert!(on.restarted);
    store
        .update_webhook(&on.endpoint, true)
        .await
        .expect("enable");
    let abandoned = store.webhook_delivery(waiting.id).await.expect("read");
    assert_eq!(abandoned.status, DeliveryStatus::Failed);
    assert_eq!(abandoned.next_attempt_at, None);
    assert_eq!(backlog(&store, other.id(), 60).await, vec![]);
    let last = comment(&store, &new, 61).await;
    assert_eq!(
        backlog(&store, other.id(), 61).await,
        vec![(id, last.get() - 1, last.get())]
    );
}

/// Deliveries list newest first, filter by status, page by id, and a delivery
/// retried by hand is updated in place.
pub async fn deliveries_page_filter_and_update<S: SessionStore>(store: S) {
    let webhook = endpoint("team-a", None, at(0));
    store.insert_webhook(&webhook).await.expect("insert");
    let new = new_session(&store, "team-a", 1).await;
    let id = new.created.session.id;
    for secs in 2..6 {
        comment(&store, &new, secs).await;
    }
    assert!(
        store
            .acquire_webhook_lease(webhook.id(), "w", at(2), at(100))
            .await
            .expect("lease")
    );
    let mut written = Vec::new();
    for (seq, status) in [
        (3, DeliveryStatus::Succeeded),
        (4, DeliveryStatus::Failed),
        (5, DeliveryStatus::Succeeded),
        (6, DeliveryStatus::Failed),
    ] {
        let d = delivery(&webhook, id, seq, status, 1, 10);
        store
            .record_webhook_progress(&progress(&webhook, id, seq, None, Some(d.clone())), "w")
            .await
            .expect("record");
        written.push(d);
    }
    let ids = |deliveries: Vec<WebhookDelivery>| -> Vec<WebhookDeliveryId> {
        deliveries.into_iter().map(|d| d.id).collect()
    };
    let all = store
        .webhook_deliveries(webhook.id(), None, Page::first(10))
        .await
        .expect("list");
    assert_eq!(
        ids(all),
        written.iter().rev().map(|d| d.id).collect::<Vec<_>>()
    );
    let failed = store
        .webhook_deliveries(webhook.id(), Some(DeliveryStatus::Failed), Page::first(1))
        .await
        .expect("list");
    assert_eq!(ids(failed), vec![written[3].id]);
    let older = store
        .webhook_deliveries(
            webhook.id(),
            Some(DeliveryStatus::Failed),
            Page {
                after: Some(written[3].id),
                limit: 10,
            },
        )
        .await
        .expect("list");
    assert_eq!(ids(older), vec![written[1].id]);

    let mut retried = written[1].clone();
    retried.status = DeliveryStatus::Succeeded;
    retried.attempts = 2;
    retried.response_status = Some(200);
    retried.error = None;
    retried.latency_ms = Some(7);
    retried.last_attempt_at = Some(at(90));
    store
        .update_webhook_delivery(&retried)
        .await
        .expect("update");
    assert_eq!(
        store.webhook_delivery(retried.id).await.expect("read"),
        retried
    );
    let mut missing = retried.clone();
    missing.id = WebhookDeliveryId::from_uuid(Uuid::now_v7());
    assert!(matches!(
        store.update_webhook_delivery(&missing).await,
        Err(StoreError::NotFound)
    ));

    // Deleting the endpoint deletes its deliveries.
    store.delete_webhook(webhook.id()).await.expect("delete");
    assert!(matches!(
        store.webhook_delivery(retried.id).await,
        Err(StoreError::NotFound)
    ));
}

/// One holder at a time per endpoint; a leased endpoint is not due for others
/// until the lease expires.
pub async fn webhook_leases_admit_one_holder_until_expiry<S: SessionStore + Clone>(store: S) {
    let webhook = endpoint("team-a", None, at(0));
    store.insert_webhook(&webhook).await.expect("insert");
    let new = new_session(&store, "team-a", 1).await;
    comment(&store, &new, 2).await;
    let id = webhook.id();
    assert_eq!(store.webhooks_due(at(3), 10).await.expect("due"), vec![id]);
    let acquire = |holder: &'static str, now: i64, until: i64| {
        let store = store.clone();
        async move {
            store
                .acquire_webhook_lease(id, holder, at(now), at(until))
                .await
                .expect("acquire")
        }
    };
    assert!(acquire("a", 3, 30).await, "a free lease is taken");
    assert!(store.webhooks_due(at(4), 10).await.expect("due").is_empty());
    assert!(!acquire("b", 10, 40).await, "a held lease is refused");
    assert!(acquire("a", 20, 50).await, "the holder renews");
    assert!(!acquire("b", 49, 80).await, "renewed until 50");
    assert_eq!(
        store.webhooks_due(at(50), 10).await.expect("due"),
        vec![id],
        "an expired lease leaves the endpoint due"
    );
    assert!(acquire("b", 50, 80).await, "an expired lease is taken over");
    assert!(!acquire("a", 51, 90).await, "the old holder lost it");
    store.release_webhook_lease(id, "a").await.expect("release");
    assert!(!acquire("c", 52, 90).await, "a non-holder cannot release");
    store.release_webhook_lease(id, "b").await.expect("release");
    assert!(acquire("c", 52, 90).await, "a released lease is free");
    store.release_webhook_lease(id, "c").await.expect("release");

    let mut tasks = JoinSet::new();
    for holder in ["r1", "r2", "r3", "r4", "r5"] {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .acquire_webhook_lease(id, holder, at(60), at(90))
                .await
                .expect("acquire")
        });
    }
    let mut won = 0;
    while let Some(result) = tasks.join_next().await {
        won += usize::from(result.expect("task"));
    }
    assert_eq!(won, 1, "exactly one racer takes a free lease");
    assert!(
        store
            .webhooks_due(at(61), 10)
            .await
            .expect("due")
            .is_empty()
    );
}
