//! Creating, reading and listing sessions, and who may do it.

use chrono::TimeDelta;
use tandem_domain::{
    Actor, AgentProfileName, EventPayload, InviteRole, PermissionPolicy, Role, Scope, Seq,
    SessionId, SessionMode, SessionStatus, Title, Ttl, UserId, WorkspaceId,
};
use tandem_ports::Page;
use tandem_service::{Caller, NewSession, Resource, ServiceError};

use crate::common::{Harness, assert_err, name, prompt, title, ttl, types};

#[tokio::test]
async fn create_session_applies_the_defaults_and_hands_out_prefixed_tokens() {
    let h = Harness::new().await;
    let t = h.now();
    let created = h.create(NewSession::default()).await;
    let session = &created.session;

    assert_eq!(session.title, Title::untitled());
    assert_eq!(session.mode, SessionMode::PromptWithApproval);
    assert_eq!(session.agent_profile, AgentProfileName::default_profile());
    assert_eq!(session.permission_policy, PermissionPolicy::AskHost);
    assert_eq!(session.status(), SessionStatus::Active);
    assert_eq!(session.workspace_id, WorkspaceId::default_workspace());
    assert_eq!(session.created_at, t);
    assert_eq!(session.last_activity_at, t);
    assert_eq!(session.expires_at, t + TimeDelta::hours(24));
    assert_eq!(session.idle_timeout.as_secs(), 2 * 3600);
    assert_eq!(session.end, None);
    assert_eq!(session.last_seq, Seq::new(2));

    assert_eq!(created.host.role, Role::Host);
    assert_eq!(created.host.session_id, session.id);
    assert_eq!(created.host.display_name.as_str(), "Host");
    assert!(created.host.is_present());
    assert_eq!(created.invite.role, InviteRole::Collaborator);
    assert_eq!(created.invite.session_id, session.id);
    assert_eq!(created.invite.max_uses, None);
    assert_eq!(created.invite.uses, 0);
    assert_eq!(created.invite.expires_at, None);
    assert_eq!(created.invite.revoked_at, None);

    let host_token = created.host_token.expose();
    let invite_token = created.invite_token.expose();
    assert!(host_token.starts_with("tdm_pt_"), "{host_token}");
    assert_eq!(host_token.len(), "tdm_pt_".len() + 64);
    assert!(invite_token.starts_with("tdm_inv_"), "{invite_token}");
    assert_eq!(invite_token.len(), "tdm_inv_".len() + 64);

    // The store holds exactly what was returned.
    assert_eq!(h.stored(session.id).await, *session);
    let participants = h.store().participants(session.id).await.expect("read");
    assert_eq!(participants, vec![created.host.clone()]);
    let invites = h.store().invites(session.id).await.expect("read");
    assert_eq!(invites, vec![created.invite.clone()]);

    // Events 1 and 2: the session, then its host joining, both by the host.
    let log = h.log(session.id).await;
    assert_eq!(
        log.iter().map(|e| e.seq.get()).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        log.iter()
            .all(|e| e.actor == Actor::Participant(created.host.id))
    );
    let EventPayload::SessionCreated(snapshot) = &log[0].payload else {
        panic!("first event is {:?}", log[0].payload);
    };
    assert_eq!(snapshot.id, session.id);
    assert_eq!(snapshot.host_participant_id, created.host.id);
    assert_eq!(snapshot.mode, SessionMode::PromptWithApproval);
    assert_eq!(snapshot.expires_at, session.expires_at);
    let EventPayload::ParticipantJoined(snapshot) = &log[1].payload else {
        panic!("second event is {:?}", log[1].payload);
    };
    assert_eq!(snapshot.id, created.host.id);
    assert_eq!(snapshot.role, Role::Host);

    // The host token is the host's credential; the invite token is not a credential.
    assert_eq!(
        h.caller(host_token).await,
        Caller::Participant(created.host.clone())
    );
    assert_err!(
        h.tandem.authenticate(invite_token).await,
        ServiceError::Unauthenticated
    );
}

#[tokio::test]
async fn create_session_takes_the_clients_choices() {
    let h = Harness::new().await;
    let t = h.now();
    let created = h
        .create(NewSession {
            title: Some(title("Pairing on the parser")),
            mode: Some(SessionMode::PromptDirect),
            agent_profile: Some(AgentProfileName::default_profile()),
            permission_policy: Some(PermissionPolicy::RejectAll),
            expires_in: Some(ttl("7d")),
            idle_timeout: Some(ttl("30m")),
            host_display_name: Some(name("Ada")),
            host_user_id: Some(UserId::parse("ada@example.com").expect("user id")),
        })
        .await;
    let stored = h.stored(created.session.id).await;
    assert_eq!(stored.title.as_str(), "Pairing on the parser");
    assert_eq!(stored.mode, SessionMode::PromptDirect);
    assert_eq!(stored.permission_policy, PermissionPolicy::RejectAll);
    assert_eq!(stored.expires_at, t + TimeDelta::days(7));
    assert_eq!(stored.idle_timeout, Ttl::from_secs(30 * 60).expect("ttl"));
    assert_eq!(
        stored.host_user_id.as_ref().map(UserId::as_str),
        Some("ada@example.com")
    );
    assert_eq!(created.host.display_name.as_str(), "Ada");
    assert_eq!(
        created.host.user_id.as_ref().map(UserId::as_str),
        Some("ada@example.com")
    );
}

#[tokio::test]
async fn create_session_refuses_an_unknown_agent_profile_and_stores_nothing() {
    let h = Harness::new().await;
    let result = h
        .tandem
        .create_session(
            h.admin(),
            NewSession {
                agent_profile: Some(AgentProfileName::parse("gemini").expect("name")),
                ..NewSession::default()
            },
        )
        .await;
    assert_err!(result, ServiceError::UnknownAgentProfile(profile) if profile == "gemini");
    let listed = h
        .tandem
        .list_sessions(h.admin(), None, Page::first(10))
        .await
        .expect("list");
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn creating_needs_a_key_with_the_write_scope() {
    let h = Harness::new().await;
    let reader = h.key("default", &[Scope::SessionsRead]).await;
    assert_err!(
        h.tandem
            .create_session(&reader, NewSession::default())
            .await,
        ServiceError::MissingScope(Scope::SessionsWrite)
    );
    let writer = h.key("default", &[Scope::SessionsWrite]).await;
    let created = h
        .tandem
        .create_session(&writer, NewSession::default())
        .await
        .expect("a sessions:write key creates");
    let host = h.caller(created.host_token.expose()).await;
    assert_err!(
        h.tandem.create_session(&host, NewSession::default()).await,
        ServiceError::ApiKeyRequired
    );
    let listed = h
        .tandem
        .list_sessions(&reader, None, Page::first(10))
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![created.session.id]
    );
}

#[tokio::test]
async fn session_details_show_everyone_who_took_part() {
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    let id = created.session.id;
    let host = h.caller(created.host_token.expose()).await;
    let ann = h.join(created.invite_token.expose(), "Ann").await;
    let bob = h.join(created.invite_token.expose(), "Bob").await;
    h.tandem.leave(&bob.caller, id).await.expect("leave");

    let details = h.tandem.session_details(&host, id).await.expect("details");
    assert_eq!(details.session.id, id);
    assert_eq!(details.session.last_seq, Seq::new(5));
    let names: Vec<_> = details
        .participants
        .iter()
        .map(|p| (p.display_name.as_str(), p.role, p.is_present()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("Host", Role::Host, true),
            ("Ann", Role::Collaborator, true),
            ("Bob", Role::Collaborator, false),
        ]
    );

    // Any present participant, and a key of the workspace that may read, sees the same.
    let seen_by_ann = h
        .tandem
        .session_details(&ann.caller, id)
        .await
        .expect("details");
    assert_eq!(seen_by_ann.participants, details.participants);
    let reader = h.key("default", &[Scope::SessionsRead]).await;
    let seen_by_key = h
        .tandem
        .session_details(&reader, id)
        .await
        .expect("details");
    assert_eq!(seen_by_key.session, details.session);

    // A key without the read scope may not.
    let writer = h.key("default", &[Scope::SessionsWrite]).await;
    assert_err!(
        h.tandem.session_details(&writer, id).await,
        ServiceError::MissingScope(Scope::SessionsRead)
    );
    // An id that matches nothing.
    assert_err!(
        h.tandem
            .session_details(&host, SessionId::from_uuid(uuid::Uuid::now_v7()))
            .await,
        ServiceError::NotFound(Resource::Session)
    );
}

#[tokio::test]
async fn list_sessions_newest_first_with_a_status_filter_and_keyset_pages() {
    let h = Harness::new().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(h.create(NewSession::default()).await);
    }
    // Close the second one.
    let second_host = h.caller(ids[1].host_token.expose()).await;
    h.tandem
        .close_session(&second_host, ids[1].session.id, None)
        .await
        .expect("close");
    let ids: Vec<SessionId> = ids.iter().map(|c| c.session.id).collect();
    let newest_first: Vec<SessionId> = ids.iter().rev().copied().collect();

    let all = h
        .tandem
        .list_sessions(h.admin(), None, Page::first(10))
        .await
        .expect("list");
    assert_eq!(all.iter().map(|s| s.id).collect::<Vec<_>>(), newest_first);

    let active = h
        .tandem
        .list_sessions(h.admin(), Some(SessionStatus::Active), Page::first(10))
        .await
        .expect("list");
    assert_eq!(
        active.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3], ids[2], ids[0]]
    );
    assert!(active.iter().all(|s| s.status() == SessionStatus::Active));
    let closed = h
        .tandem
        .list_sessions(h.admin(), Some(SessionStatus::Closed), Page::first(10))
        .await
        .expect("list");
    assert_eq!(
        closed.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    let expired = h
        .tandem
        .list_sessions(h.admin(), Some(SessionStatus::Expired), Page::first(10))
        .await
        .expect("list");
    assert!(expired.is_empty());

    // Pages of two, each after the last id of the previous one, then an empty page.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .tandem
            .list_sessions(h.admin(), None, Page { after, limit: 2 })
            .await
            .expect("page");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|s| s.id);
        pages.push(page.iter().map(|s| s.id).collect::<Vec<_>>());
    }
    assert_eq!(
        pages,
        vec![vec![ids[4], ids[3]], vec![ids[2], ids[1]], vec![ids[0]]]
    );
    // Filter and cursor together.
    let page = h
        .tandem
        .list_sessions(
            h.admin(),
            Some(SessionStatus::Active),
            Page {
                after: Some(ids[3]),
                limit: 2,
            },
        )
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[2], ids[0]]
    );
}

#[tokio::test]
async fn a_key_of_another_workspace_never_reaches_the_session() {
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    let id = created.session.id;
    let host = h.caller(created.host_token.expose()).await;
    h.tandem
        .submit_prompt(&host, id, prompt("hello"))
        .await
        .expect("prompt");
    let other = h.key("team-b", &[Scope::Admin]).await;

    assert_err!(
        h.tandem.session_details(&other, id).await,
        ServiceError::NotFound(Resource::Session)
    );
    assert_err!(
        h.tandem.events(&other, id, Seq::ZERO, 100).await,
        ServiceError::NotFound(Resource::Session)
    );
    assert_err!(
        h.tandem
            .list_prompts(&other, id, None, Page::first(10))
            .await,
        ServiceError::NotFound(Resource::Session)
    );
    assert_err!(
        h.tandem.list_comments(&other, id, Page::first(10)).await,
        ServiceError::NotFound(Resource::Session)
    );
    assert_err!(
        h.tandem.list_participants(&other, id).await,
        ServiceError::NotFound(Resource::Session)
    );
    assert_err!(
        h.tandem.terminate_session(&other, id).await,
        ServiceError::NotFound(Resource::Session)
    );
    let listed = h
        .tandem
        .list_sessions(&other, None, Page::first(10))
        .await
        .expect("list");
    assert!(listed.is_empty(), "{listed:?}");
    // The other workspace's own sessions stay its own.
    let theirs = h
        .tandem
        .create_session(&other, NewSession::default())
        .await
        .expect("create");
    assert_eq!(theirs.session.workspace_id.as_str(), "team-b");
    assert_err!(
        h.tandem.session_details(h.admin(), theirs.session.id).await,
        ServiceError::NotFound(Resource::Session)
    );
    // Nothing happened to the session: still active, same log.
    let stored = h.stored(id).await;
    assert_eq!(stored.status(), SessionStatus::Active);
    assert_eq!(stored.last_seq, Seq::new(3));
}

#[tokio::test]
async fn a_participant_sees_only_its_own_session() {
    let h = Harness::new().await;
    let first = h.create(NewSession::default()).await;
    let second = h.create(NewSession::default()).await;
    let first_host = h.caller(first.host_token.expose()).await;
    assert_err!(
        h.tandem
            .session_details(&first_host, second.session.id)
            .await,
        ServiceError::NotFound(Resource::Session)
    );
    assert_err!(
        h.tandem
            .events(&first_host, second.session.id, Seq::ZERO, 10)
            .await,
        ServiceError::NotFound(Resource::Session)
    );
    assert_err!(
        h.tandem
            .submit_prompt(&first_host, second.session.id, prompt("sneaky"))
            .await,
        ServiceError::NotFound(Resource::Session)
    );
    assert_err!(
        h.tandem
            .list_sessions(&first_host, None, Page::first(10))
            .await,
        ServiceError::ApiKeyRequired
    );
    assert_eq!(types(&h.log(second.session.id).await).len(), 2);
}

/// Lazy expiry runs after the store has cut the page, so a page of sessions that
/// were `active` in the store but are due comes back short, even empty, although
/// older active sessions exist: a client that stops at an empty page never sees them,
/// and one that continues has no cursor to continue from.
#[tokio::test]
async fn a_filtered_page_is_not_emptied_by_lazy_expiry() {
    let h = Harness::new().await;
    let long_lived = h
        .create(NewSession {
            expires_in: Some(ttl("7d")),
            idle_timeout: Some(ttl("3d")),
            ..NewSession::default()
        })
        .await;
    for _ in 0..2 {
        h.create(NewSession {
            expires_in: Some(ttl("1h")),
            ..NewSession::default()
        })
        .await;
    }
    h.advance(TimeDelta::hours(1) + TimeDelta::seconds(1));

    let page = h
        .tandem
        .list_sessions(h.admin(), Some(SessionStatus::Active), Page::first(2))
        .await
        .expect("list");
    assert_eq!(
        page.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![long_lived.session.id],
        "the only active session is missing from the first page of active sessions"
    );
}

/// The status filter is applied to the stored status, so a session that is due
/// (and that an unfiltered list shows as expired) is missing from `status=expired`
/// until something else happens to touch it.
#[tokio::test]
async fn the_expired_filter_includes_sessions_that_are_due() {
    let h = Harness::new().await;
    let created = h
        .create(NewSession {
            expires_in: Some(ttl("1h")),
            ..NewSession::default()
        })
        .await;
    h.advance(TimeDelta::hours(2));
    let expired = h
        .tandem
        .list_sessions(h.admin(), Some(SessionStatus::Expired), Page::first(10))
        .await
        .expect("list");
    assert_eq!(
        expired.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![created.session.id]
    );
}
