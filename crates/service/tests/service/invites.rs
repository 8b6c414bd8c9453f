//! Joining through invites, and the host's invites: roles, limits, revocation.

use chrono::TimeDelta;
use tandem_domain::{DomainError, EventPayload, InviteRole, InviteSettings, Role, SessionMode};
use tandem_service::{NewSession, ServiceError};

use crate::common::{Harness, assert_err, invite, name, ttl};

#[tokio::test]
async fn joining_takes_the_role_of_the_invite_and_gives_each_joiner_a_new_token() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let id = party.id;
    assert_eq!(party.collaborator.participant.role, Role::Collaborator);
    assert_eq!(party.viewer.participant.role, Role::Viewer);
    assert_eq!(party.viewer.participant.display_name.as_str(), "Viewer");

    // Two joins through one invite: two participants, two distinct tokens.
    let joined = h
        .tandem
        .join(&party.invite_token, name("Second"), None)
        .await
        .expect("join");
    assert_eq!(joined.session.id, id);
    assert_eq!(joined.participant.role, Role::Collaborator);
    assert!(joined.token.expose().starts_with("tdm_pt_"));
    assert_ne!(joined.token.expose(), party.collaborator.token);
    assert_ne!(joined.participant.id, party.collaborator.participant.id);

    let participants = h.store().participants(id).await.expect("read");
    assert_eq!(
        participants
            .iter()
            .map(|p| (p.display_name.as_str(), p.role))
            .collect::<Vec<_>>(),
        vec![
            ("Host", Role::Host),
            ("Collaborator", Role::Collaborator),
            ("Viewer", Role::Viewer),
            ("Second", Role::Collaborator),
        ]
    );
    // The invite counts its uses.
    let invites = h.store().invites(id).await.expect("read");
    assert_eq!(
        invites.iter().map(|i| (i.role, i.uses)).collect::<Vec<_>>(),
        vec![(InviteRole::Collaborator, 2), (InviteRole::Viewer, 1)]
    );
    // Every join is announced with the joiner's role.
    let joins: Vec<_> = h
        .log(id)
        .await
        .into_iter()
        .filter_map(|event| {
            if let EventPayload::ParticipantJoined(p) = event.payload {
                Some((p.display_name.as_str().to_owned(), p.role))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        joins,
        vec![
            ("Host".to_owned(), Role::Host),
            ("Collaborator".to_owned(), Role::Collaborator),
            ("Viewer".to_owned(), Role::Viewer),
            ("Second".to_owned(), Role::Collaborator),
        ]
    );
}

#[tokio::test]
async fn an_unknown_invite_token_is_refused() {
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    for token in [
        "tdm_inv_nope".to_owned(),
        format!("tdm_inv_{}", "f".repeat(64)),
        // A participant's token is no invite.
        created.host_token.expose().to_owned(),
    ] {
        assert_err!(
            h.tandem.join(&token, name("Mallory"), None).await,
            ServiceError::InviteUnknown
        );
    }
    assert_eq!(h.count(created.session.id, "participant.joined").await, 1);
}

#[tokio::test]
async fn a_revoked_invite_stops_working_at_once() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let first_invite = party.created.invite.id;
    let revoked = h
        .tandem
        .revoke_invite(&party.host, party.id, first_invite)
        .await
        .expect("revoke");
    assert!(revoked.revoked_at.is_some());
    assert_err!(
        h.tandem.join(&party.invite_token, name("Late"), None).await,
        ServiceError::Rule(DomainError::InviteRevoked)
    );
    // Revoking twice is refused; the listing shows which one is revoked.
    assert_err!(
        h.tandem
            .revoke_invite(&party.host, party.id, first_invite)
            .await,
        ServiceError::Rule(DomainError::InviteAlreadyRevoked)
    );
    let listed = h
        .tandem
        .list_invites(&party.host, party.id)
        .await
        .expect("list");
    assert_eq!(listed.len(), 2);
    assert!(listed[0].revoked_at.is_some());
    assert_eq!(listed[0].uses, 1);
    assert!(listed[1].revoked_at.is_none());
    assert_eq!(h.count(party.id, "participant.joined").await, 3);
}

#[tokio::test]
async fn only_the_host_manages_invites() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptDirect).await;
    for member in [&party.collaborator, &party.viewer] {
        assert_err!(
            h.tandem
                .create_invite(&member.caller, party.id, invite(InviteRole::Viewer, None))
                .await,
            ServiceError::Rule(DomainError::Forbidden { .. })
        );
        assert_err!(
            h.tandem.list_invites(&member.caller, party.id).await,
            ServiceError::Rule(DomainError::Forbidden { .. })
        );
        assert_err!(
            h.tandem
                .revoke_invite(&member.caller, party.id, party.created.invite.id)
                .await,
            ServiceError::Rule(DomainError::Forbidden { .. })
        );
    }
    assert_eq!(h.store().invites(party.id).await.expect("read").len(), 2);
}

#[tokio::test]
async fn an_invite_with_max_uses_is_exhausted() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let limited = h
        .tandem
        .create_invite(&party.host, party.id, invite(InviteRole::Viewer, Some(2)))
        .await
        .expect("invite");
    assert_eq!(limited.invite.max_uses, Some(2));
    assert!(limited.token.expose().starts_with("tdm_inv_"));
    h.join(limited.token.expose(), "One").await;
    h.join(limited.token.expose(), "Two").await;
    assert_err!(
        h.tandem
            .join(limited.token.expose(), name("Three"), None)
            .await,
        ServiceError::Rule(DomainError::InviteExhausted)
    );
    let stored = h.store().invite(limited.invite.id).await.expect("read");
    assert_eq!(stored.uses, 2);
    // Host, collaborator, viewer, One, Two.
    assert_eq!(
        h.store().participants(party.id).await.expect("read").len(),
        5
    );
}

#[tokio::test]
async fn an_invite_expires_on_its_own_clock() {
    let h = Harness::new().await;
    let created = h
        .create(NewSession {
            idle_timeout: Some(ttl("1d")),
            ..NewSession::default()
        })
        .await;
    let host = h.caller(created.host_token.expose()).await;
    let short = h
        .tandem
        .create_invite(
            &host,
            created.session.id,
            InviteSettings {
                role: InviteRole::Collaborator,
                max_uses: None,
                expires_in: Some(ttl("1h")),
            },
        )
        .await
        .expect("invite");
    assert_eq!(short.invite.expires_at, Some(h.now() + TimeDelta::hours(1)));
    h.advance(TimeDelta::minutes(59));
    h.join(short.token.expose(), "Early").await;
    h.advance(TimeDelta::minutes(1));
    assert_err!(
        h.tandem
            .join(short.token.expose(), name("Late"), None)
            .await,
        ServiceError::Rule(DomainError::InviteExpired)
    );
    // The session's own invite still works.
    h.join(created.invite_token.expose(), "Via the first invite")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_joins_never_exceed_max_uses() {
    const JOINERS: usize = 10;
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let limited = h
        .tandem
        .create_invite(
            &party.host,
            party.id,
            invite(InviteRole::Collaborator, Some(3)),
        )
        .await
        .expect("invite");
    let token = limited.token.expose().to_owned();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(JOINERS));
    let mut tasks = Vec::new();
    for n in 0..JOINERS {
        let tandem = h.tandem.clone();
        let token = token.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            tandem
                .join(&token, name(&format!("Joiner {n}")), None)
                .await
        }));
    }
    let mut joined = Vec::new();
    let mut exhausted = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(session) => joined.push(session.participant.id),
            Err(ServiceError::Rule(DomainError::InviteExhausted)) => exhausted += 1,
            Err(other) => panic!("a join failed otherwise: {other:?}"),
        }
    }
    assert_eq!(joined.len(), 3);
    assert_eq!(exhausted, JOINERS - 3);

    let stored = h.store().invite(limited.invite.id).await.expect("read");
    assert_eq!(stored.uses, 3);
    let participants = h.store().participants(party.id).await.expect("read");
    let through_limited: Vec<_> = participants
        .iter()
        .filter(|p| p.display_name.as_str().starts_with("Joiner "))
        .map(|p| p.id)
        .collect();
    assert_eq!(through_limited.len(), 3);
    assert!(through_limited.iter().all(|id| joined.contains(id)));
    // Host, collaborator, viewer and the three: one join event each.
    assert_eq!(h.count(party.id, "participant.joined").await, 6);
}

/// Every join rewrites the invite row (`uses + 1`) under its version, so joins
/// through one invite at the same moment conflict with each other; `join` retries
/// `MAX_ATTEMPTS` (5) times at once, without backoff, and the racing joiners retry
/// in lockstep, one winning per round: of ten people opening the same link at the
/// start of a meeting, five get `ServiceError::Conflict` (a 409) although the invite
/// has no limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_joining_an_unlimited_invite_at_once_gets_in() {
    const JOINERS: usize = 10;
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    let token = created.invite_token.expose().to_owned();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(JOINERS));
    let tasks: Vec<_> = (0..JOINERS)
        .map(|n| {
            let tandem = h.tandem.clone();
            let token = token.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                tandem
                    .join(&token, name(&format!("Joiner {n}")), None)
                    .await
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        if let Err(error) = task.await.expect("task") {
            failures.push(error);
        }
    }
    assert!(
        failures.is_empty(),
        "{} joins failed: {failures:?}",
        failures.len()
    );
    let stored = h.store().invite(created.invite.id).await.expect("read");
    assert_eq!(stored.uses, u32::try_from(JOINERS).expect("small"));
}
