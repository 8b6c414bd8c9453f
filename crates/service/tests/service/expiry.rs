//! Lazy expiry, driven by the hand-moved clock: a session past its idle timeout or
//! its absolute expiry is ended by the first access that notices, exactly once.

use std::sync::Arc;

use chrono::TimeDelta;
use tandem_domain::{
    Actor, CloseReason, DomainError, EventPayload, InviteRole, PromptStatus, SessionId,
    SessionStatus,
};
use tandem_ports::Page;
use tandem_service::{Caller, NewSession, ServiceError};
use tokio::sync::Barrier;

use crate::common::{Harness, assert_err, closings, comment, invite, name, prompt, ttl};

/// The reason recorded by the one `session.closed` event of the log.
async fn closed_once(h: &Harness, id: SessionId) -> CloseReason {
    let log = h.log(id).await;
    let closings = closings(&log);
    assert_eq!(closings.len(), 1, "{closings:?}");
    let last = log.last().expect("events");
    assert!(
        last.payload.ends_session(),
        "session.closed is the last event"
    );
    assert_eq!(last.actor, Actor::System);
    let EventPayload::SessionClosed {
        status,
        reason,
        summary,
    } = &last.payload
    else {
        panic!("last event {:?}", last.payload);
    };
    assert_eq!(*status, SessionStatus::Expired);
    assert_eq!(*summary, None);
    *reason
}

#[tokio::test]
async fn an_idle_session_expires_on_the_next_read() {
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    let id = created.session.id;
    let host = h.caller(created.host_token.expose()).await;
    let queued = h
        .tandem
        .submit_prompt(&host, id, prompt("queued"))
        .await
        .expect("submit");

    h.advance(TimeDelta::hours(2) - TimeDelta::seconds(1));
    let before = h.tandem.session_details(&host, id).await.expect("read");
    assert_eq!(before.session.status(), SessionStatus::Active);
    assert_eq!(h.count(id, "session.closed").await, 0);

    h.advance(TimeDelta::seconds(1));
    let details = h.tandem.session_details(&host, id).await.expect("read");
    assert_eq!(details.session.status(), SessionStatus::Expired);
    let end = details.session.end.as_ref().expect("ended");
    assert_eq!(end.reason, CloseReason::IdleTimeout);
    assert_eq!(h.stored(id).await.status(), SessionStatus::Expired);
    assert_eq!(closed_once(&h, id).await, CloseReason::IdleTimeout);
    // Its queued prompt went with it.
    assert_eq!(
        h.store().prompt(queued.id).await.expect("read").status,
        PromptStatus::Cancelled
    );

    // Writes are refused from now on; reads go on without writing more.
    assert_err!(
        h.tandem.post_comment(&host, id, comment("anyone?")).await,
        ServiceError::Rule(DomainError::SessionInactive(SessionStatus::Expired))
    );
    h.tandem.session_details(&host, id).await.expect("read");
    assert_eq!(closed_once(&h, id).await, CloseReason::IdleTimeout);
}

#[tokio::test]
async fn writes_postpone_the_idle_timeout_and_reads_do_not() {
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    let id = created.session.id;
    let host = h.caller(created.host_token.expose()).await;

    h.advance(TimeDelta::minutes(90));
    h.tandem
        .post_comment(&host, id, comment("still here"))
        .await
        .expect("comment");
    let commented_at = h.now();
    assert_eq!(h.stored(id).await.last_activity_at, commented_at);
    h.advance(TimeDelta::minutes(90));
    // Three hours after creation, ninety minutes after the comment: active.
    let details = h.tandem.session_details(&host, id).await.expect("read");
    assert_eq!(details.session.status(), SessionStatus::Active);
    assert_eq!(details.session.last_activity_at, commented_at);

    // That read was no activity: two hours after the comment, the session is over.
    h.advance(TimeDelta::minutes(30));
    assert_err!(
        h.tandem.submit_prompt(&host, id, prompt("too late")).await,
        ServiceError::Rule(DomainError::SessionInactive(SessionStatus::Expired))
    );
    assert_eq!(closed_once(&h, id).await, CloseReason::IdleTimeout);
}

#[tokio::test]
async fn past_expires_at_a_busy_session_expires_anyway() {
    let h = Harness::new().await;
    let created = h
        .create(NewSession {
            expires_in: Some(ttl("1h")),
            ..NewSession::default()
        })
        .await;
    let id = created.session.id;
    let host = h.caller(created.host_token.expose()).await;
    for _ in 0..5 {
        h.advance(TimeDelta::minutes(11));
        h.tandem
            .post_comment(&host, id, comment("busy"))
            .await
            .expect("comment");
    }
    h.advance(TimeDelta::minutes(5));
    // Exactly one hour after creation.
    let details = h.tandem.session_details(&host, id).await.expect("read");
    assert_eq!(details.session.status(), SessionStatus::Expired);
    assert_eq!(
        details.session.end.as_ref().map(|e| e.reason),
        Some(CloseReason::Expired)
    );
    assert_eq!(closed_once(&h, id).await, CloseReason::Expired);
}

#[tokio::test]
async fn joins_lists_and_event_reads_settle_expiry() {
    let h = Harness::new().await;
    let joined = h.create(NewSession::default()).await;
    let read = h.create(NewSession::default()).await;
    let listed = h.create(NewSession::default()).await;
    let host_of_read = h.caller(read.host_token.expose()).await;
    h.advance(TimeDelta::hours(3));

    // Someone joining is the first to notice.
    assert_err!(
        h.tandem
            .join(joined.invite_token.expose(), name("Late"), None)
            .await,
        ServiceError::Rule(DomainError::SessionInactive(SessionStatus::Expired))
    );
    assert_eq!(
        closed_once(&h, joined.session.id).await,
        CloseReason::IdleTimeout
    );

    // A stream client reading the log sees the closing event on that very read.
    let events = h
        .tandem
        .events(
            &host_of_read,
            read.session.id,
            tandem_domain::Seq::ZERO,
            100,
        )
        .await
        .expect("read");
    assert!(events.last().expect("events").payload.ends_session());
    assert_eq!(
        closed_once(&h, read.session.id).await,
        CloseReason::IdleTimeout
    );

    // A list of the workspace shows (and settles) the rest.
    let sessions = h
        .tandem
        .list_sessions(h.admin(), None, Page::first(10))
        .await
        .expect("list");
    assert_eq!(sessions.len(), 3);
    assert!(
        sessions
            .iter()
            .all(|s| s.status() == SessionStatus::Expired)
    );
    assert_eq!(
        closed_once(&h, listed.session.id).await,
        CloseReason::IdleTimeout
    );
    assert_eq!(
        closed_once(&h, joined.session.id).await,
        CloseReason::IdleTimeout
    );
}

/// `terminate_session` reads the session and terminates it without settling lazy
/// expiry first (every other access does), so a session that has already run out
/// is recorded as `terminated` by the admin instead of `expired`: what the log says
/// depends on whether anything happened to look at the session before.
#[tokio::test]
async fn terminating_a_session_that_already_ran_out_finds_it_expired() {
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    h.advance(TimeDelta::hours(3));
    assert_err!(
        h.tandem
            .terminate_session(h.admin(), created.session.id)
            .await,
        ServiceError::Rule(DomainError::SessionInactive(SessionStatus::Expired))
    );
    assert_eq!(
        h.stored(created.session.id).await.status(),
        SessionStatus::Expired
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_reads_expire_a_session_exactly_once() {
    const READERS: usize = 4;
    let h = Harness::new().await;
    let mut sessions = Vec::new();
    for _ in 0..5 {
        let created = h.create(NewSession::default()).await;
        let host = h.caller(created.host_token.expose()).await;
        let collaborator = h.join(created.invite_token.expose(), "Reader").await;
        sessions.push((created.session.id, host, collaborator.caller));
    }
    h.advance(TimeDelta::hours(2) + TimeDelta::minutes(1));

    for (id, host, collaborator) in sessions {
        let barrier = Arc::new(Barrier::new(READERS));
        let mut tasks = Vec::new();
        for n in 0..READERS {
            let tandem = h.tandem.clone();
            let caller: Caller = if n % 2 == 0 {
                host.clone()
            } else {
                collaborator.clone()
            };
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                tandem.session_details(&caller, id).await
            }));
        }
        for task in tasks {
            let details = task.await.expect("task").expect("every read succeeds");
            assert_eq!(details.session.status(), SessionStatus::Expired);
            assert_eq!(
                details.session.end.as_ref().map(|e| e.reason),
                Some(CloseReason::IdleTimeout)
            );
        }
        assert_eq!(closed_once(&h, id).await, CloseReason::IdleTimeout);
    }
}

/// DESIGN.md §2: "Activity = any participant write". Creating (or revoking) an
/// invite is the host's write, but `create_invite` and `revoke_invite` commit their
/// change without `.activity(now)`, so the idle timer runs on as if the host had
/// done nothing.
#[tokio::test]
async fn managing_invites_is_activity() {
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    let id = created.session.id;
    let host = h.caller(created.host_token.expose()).await;
    h.advance(TimeDelta::minutes(110));
    let made = h
        .tandem
        .create_invite(&host, id, invite(InviteRole::Viewer, None))
        .await
        .expect("invite");
    assert_eq!(h.stored(id).await.last_activity_at, h.now());
    h.advance(TimeDelta::minutes(110));
    h.tandem
        .revoke_invite(&host, id, made.invite.id)
        .await
        .expect("revoke");
    assert_eq!(h.stored(id).await.last_activity_at, h.now());
    h.advance(TimeDelta::minutes(110));
    let details = h.tandem.session_details(&host, id).await.expect("read");
    assert_eq!(details.session.status(), SessionStatus::Active);
}
