//! A session's life as its host and admins steer it: updates, closing, termination,
//! and what is refused once it has ended.

use std::sync::Arc;

use chrono::TimeDelta;
use tandem_domain::{
    Action, Actor, CloseReason, DomainError, EventPayload, InviteRole, PromptStatus, Role, Scope,
    SessionMode, SessionPatch, SessionStatus, Summary,
};
use tandem_ports::{Page, PromptFilter};
use tandem_service::{Caller, NewSession, Resource, ServiceError};

use crate::common::{
    Harness, assert_err, closings, comment, invite, name, prompt, summary, title, ttl,
};

fn mode(mode: SessionMode) -> SessionPatch {
    SessionPatch {
        mode: Some(mode),
        ..SessionPatch::default()
    }
}

#[tokio::test]
async fn the_mode_decides_what_collaborators_may_do_from_the_next_action_on() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let collaborator = &party.collaborator.caller;
    let pending = h
        .tandem
        .submit_prompt(collaborator, party.id, prompt("before"))
        .await
        .expect("submit");
    assert_eq!(pending.status, PromptStatus::PendingApproval);

    let updated = h
        .tandem
        .update_session(&party.host, party.id, mode(SessionMode::CommentOnly))
        .await
        .expect("update");
    assert_eq!(updated.mode, SessionMode::CommentOnly);
    assert_eq!(h.stored(party.id).await.mode, SessionMode::CommentOnly);
    let logged = h.log(party.id).await.pop().expect("events").payload;
    let EventPayload::SessionUpdated {
        mode: logged_mode,
        title: logged_title,
        ..
    } = logged
    else {
        panic!("the update logged {logged:?}");
    };
    assert_eq!(logged_mode, SessionMode::CommentOnly);
    assert_eq!(logged_title, party.created.session.title);
    assert_err!(
        h.tandem
            .submit_prompt(collaborator, party.id, prompt("now?"))
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::SubmitPrompt,
            role: Role::Collaborator
        })
    );
    h.tandem
        .post_comment(collaborator, party.id, comment("I can still talk"))
        .await
        .expect("comment");

    h.tandem
        .update_session(&party.host, party.id, mode(SessionMode::ViewOnly))
        .await
        .expect("update");
    assert_err!(
        h.tandem
            .post_comment(collaborator, party.id, comment("and now?"))
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::Comment,
            role: Role::Collaborator
        })
    );

    h.tandem
        .update_session(&party.host, party.id, mode(SessionMode::PromptDirect))
        .await
        .expect("update");
    let direct = h
        .tandem
        .submit_prompt(collaborator, party.id, prompt("straight in"))
        .await
        .expect("submit");
    assert_eq!(direct.status, PromptStatus::Queued);
    // The prompt that was pending stays pending for the host to answer.
    assert_eq!(
        h.store().prompt(pending.id).await.expect("read").status,
        PromptStatus::PendingApproval
    );
    assert_eq!(h.count(party.id, "session.updated").await, 3);
}

#[tokio::test]
async fn only_the_host_updates_and_titles_change_too() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    for member in [&party.collaborator, &party.viewer] {
        assert_err!(
            h.tandem
                .update_session(&member.caller, party.id, mode(SessionMode::PromptDirect))
                .await,
            ServiceError::Rule(DomainError::Forbidden {
                action: Action::ManageSession,
                ..
            })
        );
    }
    assert_err!(
        h.tandem
            .update_session(h.admin(), party.id, mode(SessionMode::PromptDirect))
            .await,
        ServiceError::ParticipantRequired
    );
    assert_eq!(
        h.stored(party.id).await.mode,
        SessionMode::PromptWithApproval
    );

    let renamed = h
        .tandem
        .update_session(
            &party.host,
            party.id,
            SessionPatch {
                title: Some(title("Bisecting the flaky test")),
                ..SessionPatch::default()
            },
        )
        .await
        .expect("rename");
    assert_eq!(renamed.title.as_str(), "Bisecting the flaky test");
    assert_eq!(renamed.mode, SessionMode::PromptWithApproval);
    assert_eq!(
        h.stored(party.id).await.title.as_str(),
        "Bisecting the flaky test"
    );
}

#[tokio::test]
async fn expiry_extends_only_within_thirty_days_of_creation() {
    let h = Harness::new().await;
    let created_at = h.now();
    let created = h
        .create(NewSession {
            idle_timeout: Some(ttl("7d")),
            ..NewSession::default()
        })
        .await;
    let id = created.session.id;
    let host = h.caller(created.host_token.expose()).await;
    h.advance(TimeDelta::hours(12));

    let extend = |expires_in: &str| SessionPatch {
        expires_in: Some(ttl(expires_in)),
        ..SessionPatch::default()
    };
    assert_err!(
        h.tandem.update_session(&host, id, extend("30d")).await,
        ServiceError::Rule(DomainError::ExpiryBeyondMax)
    );
    assert_err!(
        h.tandem.update_session(&host, id, extend("29d12h1s")).await,
        ServiceError::Rule(DomainError::ExpiryBeyondMax)
    );
    assert_eq!(
        h.stored(id).await.expires_at,
        created_at + TimeDelta::hours(24),
        "a refused extension changes nothing"
    );
    assert_eq!(h.count(id, "session.updated").await, 0);

    // Up to the maximum is fine: thirty days after creation.
    let extended = h
        .tandem
        .update_session(&host, id, extend("29d12h"))
        .await
        .expect("extend");
    assert_eq!(extended.expires_at, created_at + TimeDelta::days(30));
    assert_eq!(
        h.stored(id).await.expires_at,
        created_at + TimeDelta::days(30)
    );
    // The session now outlives its original 24 hours.
    h.advance(TimeDelta::days(2));
    let details = h.tandem.session_details(&host, id).await.expect("read");
    assert_eq!(details.session.status(), SessionStatus::Active);
}

#[tokio::test]
async fn closing_cancels_queued_prompts_and_ends_the_log() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let mut queued = Vec::new();
    for text in ["one", "two"] {
        queued.push(
            h.tandem
                .submit_prompt(&party.host, party.id, prompt(text))
                .await
                .expect("submit")
                .id,
        );
    }
    let pending = h
        .tandem
        .submit_prompt(&party.collaborator.caller, party.id, prompt("three"))
        .await
        .expect("submit");

    assert_err!(
        h.tandem
            .close_session(&party.collaborator.caller, party.id, None)
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::ManageSession,
            role: Role::Collaborator
        })
    );
    assert_eq!(h.stored(party.id).await.status(), SessionStatus::Active);

    let closed = h
        .tandem
        .close_session(&party.host, party.id, Some(summary("Fixed the parser.")))
        .await
        .expect("close");
    assert_eq!(closed.status(), SessionStatus::Closed);
    let end = closed.end.as_ref().expect("ended");
    assert_eq!(end.reason, CloseReason::ClosedByHost);
    assert_eq!(end.at, h.now());
    assert_eq!(
        end.summary.as_ref().map(Summary::as_str),
        Some("Fixed the parser.")
    );
    let stored = h.stored(party.id).await;
    assert_eq!(stored.status(), SessionStatus::Closed);
    assert_eq!(stored.end, closed.end);

    for id in &queued {
        let prompt = h.store().prompt(*id).await.expect("read");
        assert_eq!(prompt.status, PromptStatus::Cancelled);
        assert_eq!(prompt.finished_at, Some(h.now()));
    }
    assert_eq!(
        h.store().next_queued_prompt(party.id).await.expect("read"),
        None
    );
    assert_eq!(
        h.store().prompt(pending.id).await.expect("read").status,
        PromptStatus::PendingApproval
    );

    let log = h.log(party.id).await;
    let last = log.last().expect("events");
    assert_eq!(last.actor, Actor::Participant(party.host_id()));
    assert_eq!(
        last.payload,
        EventPayload::SessionClosed {
            status: SessionStatus::Closed,
            reason: CloseReason::ClosedByHost,
            summary: Some(summary("Fixed the parser.")),
        }
    );
    assert_eq!(closings(&log).len(), 1);
    assert_eq!(last.seq, stored.last_seq);
    // The queued prompts were cancelled by the system, in the same change, just before.
    let tail: Vec<_> = log[log.len() - 3..]
        .iter()
        .map(|e| (e.actor, &e.payload))
        .collect();
    for (actor, payload) in &tail[..2] {
        assert_eq!(*actor, Actor::System);
        assert!(
            matches!(payload, EventPayload::PromptCancelled { prompt_id, cancelled_by: None } if queued.contains(prompt_id)),
            "{payload:?}"
        );
    }
}

#[tokio::test]
async fn after_close_every_write_is_refused_and_reads_still_work() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let id = party.id;
    let pending = h
        .tandem
        .submit_prompt(&party.collaborator.caller, id, prompt("pending"))
        .await
        .expect("submit");
    h.tandem
        .close_session(&party.host, id, None)
        .await
        .expect("close");
    let log_before = h.log(id).await;
    let host = &party.host;
    let collaborator = &party.collaborator.caller;

    macro_rules! refused {
        ($($call:expr),+ $(,)?) => {$(
            assert_err!(
                $call.await,
                ServiceError::Rule(DomainError::SessionInactive(SessionStatus::Closed))
            );
        )+};
    }
    refused!(
        h.tandem.post_comment(host, id, comment("hello?")),
        h.tandem.post_comment(collaborator, id, comment("hello?")),
        h.tandem.submit_prompt(host, id, prompt("one more")),
        h.tandem.submit_prompt(collaborator, id, prompt("one more")),
        h.tandem.approve_prompt(host, id, pending.id),
        h.tandem.reject_prompt(host, id, pending.id),
        h.tandem.withdraw_prompt(collaborator, id, pending.id),
        h.tandem
            .edit_prompt(collaborator, id, pending.id, prompt("edited")),
        h.tandem.cancel_prompt(host, id, pending.id),
        h.tandem.retry_prompt(host, id, pending.id),
        h.tandem
            .update_session(host, id, mode(SessionMode::PromptDirect)),
        h.tandem.close_session(host, id, None),
        h.tandem
            .create_invite(host, id, invite(InviteRole::Viewer, None)),
        h.tandem.revoke_invite(host, id, party.created.invite.id),
        h.tandem.change_role(
            host,
            id,
            party.viewer.participant.id,
            InviteRole::Collaborator
        ),
        h.tandem
            .remove_participant(host, id, party.viewer.participant.id),
        h.tandem.leave(collaborator, id),
        h.tandem.join(&party.invite_token, name("Latecomer"), None),
    );
    assert_err!(
        h.tandem.terminate_session(h.admin(), id).await,
        ServiceError::Rule(DomainError::SessionInactive(SessionStatus::Closed))
    );

    // Nothing was written.
    assert_eq!(h.log(id).await, log_before);
    assert_eq!(
        h.store().prompt(pending.id).await.expect("read").status,
        PromptStatus::PendingApproval
    );
    assert_eq!(h.store().participants(id).await.expect("read").len(), 3);
    // Everyone still reads the record of the session.
    let details = h
        .tandem
        .session_details(&party.viewer.caller, id)
        .await
        .expect("read");
    assert_eq!(details.session.status(), SessionStatus::Closed);
    let events = h
        .tandem
        .events(collaborator, id, tandem_domain::Seq::ZERO, 100)
        .await
        .expect("read");
    assert_eq!(events, log_before);
}

#[tokio::test]
async fn terminating_needs_an_admin_key_of_the_sessions_workspace() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let queued = h
        .tandem
        .submit_prompt(&party.host, party.id, prompt("long job"))
        .await
        .expect("submit");
    let writer = h
        .key("default", &[Scope::SessionsWrite, Scope::SessionsRead])
        .await;
    assert_err!(
        h.tandem.terminate_session(&writer, party.id).await,
        ServiceError::MissingScope(Scope::Admin)
    );
    assert_err!(
        h.tandem.terminate_session(&party.host, party.id).await,
        ServiceError::ApiKeyRequired
    );
    let foreign_admin = h.key("elsewhere", &[Scope::Admin]).await;
    assert_err!(
        h.tandem.terminate_session(&foreign_admin, party.id).await,
        ServiceError::NotFound(Resource::Session)
    );
    assert_eq!(h.stored(party.id).await.status(), SessionStatus::Active);

    let terminated = h
        .tandem
        .terminate_session(h.admin(), party.id)
        .await
        .expect("terminate");
    assert_eq!(terminated.status(), SessionStatus::Terminated);
    assert_eq!(
        terminated.end.as_ref().map(|e| e.reason),
        Some(CloseReason::Terminated)
    );
    assert_eq!(h.stored(party.id).await.status(), SessionStatus::Terminated);
    assert_eq!(
        h.store().prompt(queued.id).await.expect("read").status,
        PromptStatus::Cancelled
    );
    let Caller::ApiKey(admin_key) = h.admin() else {
        panic!("the admin caller is a key");
    };
    let last = h.log(party.id).await.pop().expect("events");
    assert_eq!(last.actor, Actor::ApiKey(admin_key.id));
    assert_eq!(
        last.payload,
        EventPayload::SessionClosed {
            status: SessionStatus::Terminated,
            reason: CloseReason::Terminated,
            summary: None
        }
    );
    assert_err!(
        h.tandem.terminate_session(h.admin(), party.id).await,
        ServiceError::Rule(DomainError::SessionInactive(SessionStatus::Terminated))
    );
    assert_err!(
        h.tandem
            .post_comment(&party.host, party.id, comment("what happened?"))
            .await,
        ServiceError::Rule(DomainError::SessionInactive(SessionStatus::Terminated))
    );
    assert_eq!(h.count(party.id, "session.closed").await, 1);
}

/// `end_session` lists the queued prompts first and commits the closing change
/// later; a prompt queued in between (submitted directly, or approved) is not in
/// the change and nothing in it conflicts with the prompt's insert, so it stays
/// `queued` in a closed session: it will never run, and nothing will ever cancel it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_prompt_is_left_queued_by_a_close_racing_a_submission() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptDirect).await;
    // A long queue makes the close read for a while before it commits.
    for n in 0..300 {
        h.tandem
            .submit_prompt(&party.host, party.id, prompt(&format!("queued {n}")))
            .await
            .expect("submit");
    }
    let submitter = {
        let tandem = h.tandem.clone();
        let caller = party.collaborator.caller.clone();
        let id = party.id;
        let landed = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = landed.clone();
        let task = tokio::spawn(async move {
            loop {
                match tandem.submit_prompt(&caller, id, prompt("one more")).await {
                    Ok(_) => {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(ServiceError::Rule(DomainError::SessionInactive(_))) => {
                        break counter.load(std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(other) => panic!("submit failed otherwise: {other:?}"),
                }
            }
        });
        // Close while the submitter is in full swing.
        while landed.load(std::sync::atomic::Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        task
    };
    h.tandem
        .close_session(&party.host, party.id, None)
        .await
        .expect("close");
    let accepted = submitter.await.expect("task");
    assert!(accepted > 0, "the race never happened");

    let still_queued = h
        .store()
        .prompts(
            &PromptFilter {
                session_id: party.id,
                status: Some(PromptStatus::Queued),
            },
            Page::first(1000),
        )
        .await
        .expect("read");
    assert_eq!(h.stored(party.id).await.status(), SessionStatus::Closed);
    assert!(
        still_queued.is_empty(),
        "{} prompt(s) queued in a closed session",
        still_queued.len()
    );
}
