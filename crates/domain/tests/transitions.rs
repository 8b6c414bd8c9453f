//! Every state transition and rule of DESIGN.md §2, exercised through the public
//! API only, at fixed instants (the domain never reads the clock, and neither do
//! these tests).
//!
//! Every event a transition emits is also checked to survive storage: its
//! `event_type()` and `data()` rebuild the same payload.

use std::num::NonZeroU32;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use tandem_domain::event::{CommentSnapshot, ParticipantSnapshot, PromptSnapshot, SessionSnapshot};
use tandem_domain::prompt::MAX_ERROR_BYTES;
use tandem_domain::samples::{all_options, every_payload, option};
use tandem_domain::{
    Action, Actor, AgentOutput, AgentOutputKind, AgentProfileName, ApiKeyId, CancelOutcome,
    CloseReason, Comment, CommentId, CommentText, DisplayName, DomainError, EventPayload, Invite,
    InviteId, InviteRole, InviteSettings, Joiner, NewEvent, Participant, ParticipantId,
    PermissionAnswer, PermissionAsk, PermissionCause, PermissionOption, PermissionOptionKind,
    PermissionOutcome, PermissionPolicy, PermissionRequest, PermissionRequestId, Prompt, PromptId,
    PromptStatus, PromptText, Redactions, Role, Seq, Session, SessionId, SessionMode, SessionPatch,
    SessionSettings, SessionStatus, StopReason, Summary, TextLimits, Title, Transition, Ttl,
    UserId, WorkspaceId,
};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The fixed instant every fixture is created at.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
        .expect("a valid RFC 3339 timestamp")
        .with_timezone(&Utc)
}

/// `secs` seconds after `t0()`.
fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn limits() -> TextLimits {
    TextLimits::DEFAULT
}

fn joiner(n: u128, name: &str) -> Joiner {
    Joiner {
        id: ParticipantId::from_uuid(uuid(n)),
        display_name: DisplayName::parse(name, &limits()).expect("a valid display name"),
        user_id: None,
    }
}

fn title(raw: &str) -> Title {
    Title::parse(raw, &limits()).expect("a valid title")
}

fn prompt_text(raw: &str) -> PromptText {
    PromptText::parse(raw, &limits()).expect("a valid prompt text")
}

fn comment_text(raw: &str) -> CommentText {
    CommentText::parse(raw, &limits()).expect("a valid comment text")
}

fn summary(raw: &str) -> Summary {
    Summary::parse(raw, &limits()).expect("a valid summary")
}

fn ttl(raw: &str) -> Ttl {
    Ttl::parse(raw).expect("a valid duration")
}

fn patch() -> SessionPatch {
    SessionPatch::default()
}

fn settings(mode: SessionMode) -> SessionSettings {
    SessionSettings {
        mode,
        ..SessionSettings::default()
    }
}

fn policy(permission_policy: PermissionPolicy) -> SessionSettings {
    SessionSettings {
        permission_policy,
        ..SessionSettings::default()
    }
}

/// Checks that a payload survives storage: `event_type()` + `data()` rebuild it.
fn assert_round_trips(payload: &EventPayload) {
    let data = payload.data();
    assert!(
        data.is_object(),
        "{} data is not an object",
        payload.event_type()
    );
    let back = EventPayload::from_parts(payload.event_type(), data)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", payload.event_type()));
    assert_eq!(&back, payload);
}

/// The single event a transition emits (checked to round-trip).
fn only_event<T>(transition: &Transition<T>) -> &NewEvent {
    assert_eq!(
        transition.events.len(),
        1,
        "expected exactly one event, got {:?}",
        transition.events
    );
    let event = &transition.events[0];
    assert_round_trips(&event.payload);
    event
}

fn by(participant: &Participant) -> Actor {
    Actor::Participant(participant.id)
}

/// A session with its host, a collaborator (joined through the initial invite) and
/// a viewer (joined through a viewer invite the host created), all at `t0()`.
struct Fixture {
    session: Session,
    host: Participant,
    collaborator: Participant,
    /// A second collaborator, for "someone else's prompt" rules.
    other: Participant,
    viewer: Participant,
    /// The initial collaborator invite, after its two uses.
    invite: Invite,
}

fn fixture() -> Fixture {
    fixture_with(SessionSettings::default())
}

fn fixture_with(settings: SessionSettings) -> Fixture {
    let created = Session::create(
        SessionId::from_uuid(uuid(1)),
        WorkspaceId::default_workspace(),
        settings,
        joiner(10, "Hana Host"),
        InviteId::from_uuid(uuid(20)),
        t0(),
    );
    let session = created.session;
    let collaborator = Participant::join(&session, &created.invite, joiner(11, "Cole"), t0())
        .expect("the initial invite works");
    let other = Participant::join(&session, &collaborator.invite, joiner(13, "Otto"), t0())
        .expect("the initial invite works twice");
    let viewer_invite = Invite::create(
        InviteId::from_uuid(uuid(21)),
        &session,
        &created.host,
        InviteSettings {
            role: InviteRole::Viewer,
            max_uses: None,
            expires_in: None,
        },
        t0(),
    )
    .expect("the host creates invites");
    let viewer = Participant::join(&session, &viewer_invite, joiner(12, "Vera"), t0())
        .expect("the viewer invite works");
    Fixture {
        session,
        host: created.host,
        collaborator: collaborator.participant,
        other: other.participant,
        viewer: viewer.participant,
        invite: other.invite,
    }
}

/// A second, unrelated session with its own host and collaborator invite.
fn elsewhere() -> (Session, Participant, Invite) {
    let created = Session::create(
        SessionId::from_uuid(uuid(2)),
        WorkspaceId::default_workspace(),
        SessionSettings::default(),
        joiner(90, "Elsa"),
        InviteId::from_uuid(uuid(91)),
        t0(),
    );
    (created.session, created.host, created.invite)
}

fn closed(f: &Fixture) -> Session {
    f.session
        .close(&f.host, None, t0())
        .expect("the host closes")
        .state
}

fn submit(f: &Fixture, author: &Participant, n: u128) -> Transition<Prompt> {
    Prompt::submit(
        PromptId::from_uuid(uuid(n)),
        &f.session,
        author,
        prompt_text("make the tests pass"),
        t0(),
    )
    .expect("the matrix admits this prompt")
}

/// A collaborator's prompt waiting for approval (default mode).
fn pending(f: &Fixture) -> Prompt {
    let prompt = submit(f, &f.collaborator, 100).state;
    assert_eq!(prompt.status, PromptStatus::PendingApproval);
    prompt
}

/// The collaborator's prompt, approved by the host.
fn queued(f: &Fixture) -> Prompt {
    pending(f)
        .approve(&f.session, &f.host, at(1))
        .expect("the host approves")
        .state
}

fn running(f: &Fixture) -> Prompt {
    queued(f)
        .start(at(2))
        .expect("a queued prompt starts")
        .state
}

fn cancelled_queued(f: &Fixture) -> Prompt {
    match queued(f)
        .cancel(&f.session, &f.host, at(3))
        .expect("the host cancels")
    {
        CancelOutcome::Cancelled(t) => t.state,
        CancelOutcome::StopAgent(_) => panic!("a queued prompt is cancelled at once"),
    }
}

fn ask(options: Vec<PermissionOption>) -> PermissionAsk {
    PermissionAsk {
        id: PermissionRequestId::from_uuid(uuid(500)),
        tool_call: json!({"toolCallId": "call-1", "title": "cargo test", "kind": "execute"}),
        options,
        timeout: TimeDelta::minutes(5),
        redactions: Redactions::none(),
    }
}

fn open_request(f: &Fixture, options: Vec<PermissionOption>) -> Transition<PermissionRequest> {
    PermissionRequest::open(&f.session, &running(f), ask(options), at(10))
        .expect("a running prompt may ask")
}

fn ask_host_request(f: &Fixture) -> PermissionRequest {
    let request = open_request(f, all_options()).state;
    assert!(request.is_open());
    request
}

// ---------------------------------------------------------------------------
// Session::create
// ---------------------------------------------------------------------------

#[test]
fn create_sets_up_an_active_session_with_defaults() {
    let created = Session::create(
        SessionId::from_uuid(uuid(1)),
        WorkspaceId::default_workspace(),
        SessionSettings::default(),
        joiner(10, "Hana Host"),
        InviteId::from_uuid(uuid(20)),
        t0(),
    );
    let s = &created.session;
    assert_eq!(s.id, SessionId::from_uuid(uuid(1)));
    assert_eq!(s.workspace_id, WorkspaceId::default_workspace());
    assert_eq!(s.title, Title::untitled());
    assert_eq!(s.mode, SessionMode::PromptWithApproval);
    assert_eq!(s.permission_policy, PermissionPolicy::AskHost);
    assert_eq!(s.agent_profile, AgentProfileName::default_profile());
    assert_eq!(s.agent_session_id, None);
    assert_eq!(s.status(), SessionStatus::Active);
    assert_eq!(s.end, None);
    assert_eq!(s.created_at, t0());
    assert_eq!(s.last_activity_at, t0());
    assert_eq!(s.expires_at, at(DAY));
    assert_eq!(s.idle_timeout, Ttl::DEFAULT_IDLE_TIMEOUT);
    assert_eq!(s.idle_deadline(), at(2 * HOUR));
    assert_eq!(s.max_expires_at(), at(30 * DAY));
    assert_eq!(s.last_seq, Seq::ZERO);
    assert_eq!(s.version, 0);
    assert_eq!(s.ensure_active(t0()), Ok(()));
}

#[test]
fn create_makes_the_creator_host_and_one_collaborator_invite() {
    let user = UserId::parse("hana@example.com").expect("a valid user id");
    let created = Session::create(
        SessionId::from_uuid(uuid(1)),
        WorkspaceId::default_workspace(),
        SessionSettings {
            host_user_id: Some(user.clone()),
            ..SessionSettings::default()
        },
        Joiner {
            user_id: Some(user.clone()),
            ..joiner(10, "Hana Host")
        },
        InviteId::from_uuid(uuid(20)),
        t0(),
    );
    let host = &created.host;
    assert_eq!(host.id, ParticipantId::from_uuid(uuid(10)));
    assert_eq!(host.session_id, created.session.id);
    assert_eq!(host.role, Role::Host);
    assert_eq!(host.display_name.as_str(), "Hana Host");
    assert_eq!(host.user_id, Some(user.clone()));
    assert_eq!(host.joined_at, t0());
    assert!(host.is_present());
    assert_eq!(host.removed_by, None);
    assert_eq!(created.session.host_user_id, Some(user));

    let invite = &created.invite;
    assert_eq!(invite.id, InviteId::from_uuid(uuid(20)));
    assert_eq!(invite.session_id, created.session.id);
    assert_eq!(invite.role, InviteRole::Collaborator);
    assert_eq!(invite.uses, 0);
    assert_eq!(invite.max_uses, None);
    assert_eq!(invite.expires_at, None);
    assert_eq!(invite.revoked_at, None);
    assert_eq!(invite.created_at, t0());
    assert_eq!(invite.check_usable(at(29 * DAY)), Ok(()));
}

#[test]
fn create_emits_session_created_then_host_joined_by_the_host() {
    let created = Session::create(
        SessionId::from_uuid(uuid(1)),
        WorkspaceId::default_workspace(),
        SessionSettings {
            title: title("Pairing on the parser"),
            mode: SessionMode::PromptDirect,
            permission_policy: PermissionPolicy::RejectAll,
            expires_in: ttl("7d"),
            idle_timeout: ttl("30m"),
            agent_profile: AgentProfileName::parse("gemini").expect("a valid profile"),
            host_user_id: None,
        },
        joiner(10, "Hana Host"),
        InviteId::from_uuid(uuid(20)),
        t0(),
    );
    let host_id = created.host.id;
    assert_eq!(created.events.len(), 2);
    for event in &created.events {
        assert_eq!(event.actor, Actor::Participant(host_id));
        assert_eq!(event.at, t0());
        assert_round_trips(&event.payload);
    }
    assert_eq!(
        created.events[0].payload,
        EventPayload::SessionCreated(SessionSnapshot {
            id: created.session.id,
            title: title("Pairing on the parser"),
            mode: SessionMode::PromptDirect,
            permission_policy: PermissionPolicy::RejectAll,
            agent_profile: AgentProfileName::parse("gemini").expect("a valid profile"),
            host_participant_id: host_id,
            created_at: t0(),
            expires_at: at(7 * DAY),
            idle_timeout: ttl("30m"),
        })
    );
    assert_eq!(
        created.events[1].payload,
        EventPayload::ParticipantJoined(ParticipantSnapshot {
            id: host_id,
            display_name: created.host.display_name.clone(),
            role: Role::Host,
            joined_at: t0(),
        })
    );
    assert_eq!(created.session.expires_at, at(7 * DAY));
    assert_eq!(created.session.idle_deadline(), at(30 * MINUTE));
}

#[test]
fn attach_agent_records_the_agents_session_id_only() {
    let f = fixture();
    let attached = f.session.attach_agent("acp-123".to_owned());
    assert_eq!(attached.agent_session_id.as_deref(), Some("acp-123"));
    assert_eq!(
        Session {
            agent_session_id: None,
            ..attached
        },
        f.session
    );
}

// ---------------------------------------------------------------------------
// Expiry: expiry_due, ensure_active, expire
// ---------------------------------------------------------------------------

/// Absolute expiry at 3h, idle deadline at 1h (no activity recorded).
fn idle_first() -> Session {
    fixture_with(SessionSettings {
        expires_in: ttl("3h"),
        idle_timeout: ttl("1h"),
        ..SessionSettings::default()
    })
    .session
}

/// Absolute expiry at 1h, idle deadline at 2h.
fn absolute_first() -> Session {
    fixture_with(SessionSettings {
        expires_in: ttl("1h"),
        idle_timeout: ttl("2h"),
        ..SessionSettings::default()
    })
    .session
}

#[test]
fn idle_timeout_ends_a_session_exactly_at_its_deadline() {
    let s = idle_first();
    assert_eq!(s.expiry_due(t0()), None);
    assert_eq!(s.expiry_due(at(HOUR - 1)), None);
    assert_eq!(s.ensure_active(at(HOUR - 1)), Ok(()));
    assert_eq!(s.expiry_due(at(HOUR)), Some(CloseReason::IdleTimeout));
    assert_eq!(
        s.ensure_active(at(HOUR)),
        Err(DomainError::SessionInactive(SessionStatus::Expired))
    );
}

#[test]
fn activity_moves_the_idle_deadline() {
    let s = Session {
        last_activity_at: at(50 * MINUTE),
        ..idle_first()
    };
    assert_eq!(s.idle_deadline(), at(HOUR + 50 * MINUTE));
    assert_eq!(s.expiry_due(at(HOUR)), None);
    assert_eq!(
        s.expiry_due(at(HOUR + 50 * MINUTE)),
        Some(CloseReason::IdleTimeout)
    );
}

#[test]
fn absolute_expiry_ends_a_session_exactly_at_expires_at() {
    let s = absolute_first();
    assert_eq!(s.expiry_due(at(HOUR - 1)), None);
    assert_eq!(s.ensure_active(at(HOUR - 1)), Ok(()));
    assert_eq!(s.expiry_due(at(HOUR)), Some(CloseReason::Expired));
    assert_eq!(
        s.ensure_active(at(HOUR)),
        Err(DomainError::SessionInactive(SessionStatus::Expired))
    );
}

#[test]
fn absolute_expiry_wins_when_both_limits_have_passed() {
    let s = idle_first();
    assert_eq!(s.expiry_due(at(3 * HOUR)), Some(CloseReason::Expired));
    assert_eq!(s.expiry_due(at(100 * DAY)), Some(CloseReason::Expired));
    assert_eq!(
        absolute_first().expiry_due(at(2 * HOUR)),
        Some(CloseReason::Expired)
    );
}

#[test]
fn an_ended_session_is_never_due_and_never_active() {
    let f = fixture();
    let closed = closed(&f);
    let terminated = f
        .session
        .terminate(Actor::System, t0())
        .expect("terminates")
        .state;
    let expired = f.session.expire(at(DAY)).expect("expires").state;
    for (session, status) in [
        (&closed, SessionStatus::Closed),
        (&terminated, SessionStatus::Terminated),
        (&expired, SessionStatus::Expired),
    ] {
        assert_eq!(session.status(), status);
        for now in [t0(), at(3 * HOUR), at(40 * DAY)] {
            assert_eq!(session.expiry_due(now), None);
            assert_eq!(
                session.ensure_active(now),
                Err(DomainError::SessionInactive(status))
            );
        }
    }
}

#[test]
fn expire_ends_an_idle_session_with_reason_idle_timeout() {
    let t = idle_first().expire(at(HOUR)).expect("due");
    let end = t.state.end.clone().expect("ended");
    assert_eq!(end.reason, CloseReason::IdleTimeout);
    assert_eq!(end.at, at(HOUR));
    assert_eq!(end.summary, None);
    assert_eq!(t.state.status(), SessionStatus::Expired);
    let event = only_event(&t);
    assert_eq!(event.actor, Actor::System);
    assert_eq!(event.at, at(HOUR));
    assert_eq!(
        event.payload,
        EventPayload::SessionClosed {
            status: SessionStatus::Expired,
            reason: CloseReason::IdleTimeout,
            summary: None,
        }
    );
    assert!(event.payload.ends_session());
}

#[test]
fn expire_ends_a_session_past_expires_at_with_reason_expired() {
    let t = absolute_first().expire(at(HOUR)).expect("due");
    assert_eq!(t.state.status(), SessionStatus::Expired);
    assert_eq!(
        t.state.end.as_ref().map(|end| end.reason),
        Some(CloseReason::Expired)
    );
    assert_eq!(
        only_event(&t).payload,
        EventPayload::SessionClosed {
            status: SessionStatus::Expired,
            reason: CloseReason::Expired,
            summary: None,
        }
    );
}

#[test]
fn expire_refuses_a_session_within_its_limits() {
    assert_eq!(
        idle_first().expire(at(HOUR - 1)),
        Err(DomainError::SessionNotExpired)
    );
    assert_eq!(
        absolute_first().expire(t0()),
        Err(DomainError::SessionNotExpired)
    );
}

#[test]
fn expire_refuses_a_session_that_already_ended() {
    let f = fixture();
    let closed = closed(&f);
    assert_eq!(
        closed.expire(at(40 * DAY)),
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
    let expired = f.session.expire(at(DAY)).expect("due").state;
    assert_eq!(
        expired.expire(at(2 * DAY)),
        Err(DomainError::SessionInactive(SessionStatus::Expired))
    );
}

#[test]
fn close_reason_maps_to_its_final_status() {
    assert_eq!(CloseReason::ClosedByHost.status(), SessionStatus::Closed);
    assert_eq!(CloseReason::Expired.status(), SessionStatus::Expired);
    assert_eq!(CloseReason::IdleTimeout.status(), SessionStatus::Expired);
    assert_eq!(CloseReason::Terminated.status(), SessionStatus::Terminated);
}

// ---------------------------------------------------------------------------
// close, terminate
// ---------------------------------------------------------------------------

#[test]
fn the_host_closes_with_a_summary_that_is_kept() {
    let f = fixture();
    let t = f
        .session
        .close(
            &f.host,
            Some(summary("Fixed the parser.\nShipped.")),
            at(HOUR),
        )
        .expect("the host closes");
    assert_eq!(t.state.status(), SessionStatus::Closed);
    let end = t.state.end.clone().expect("ended");
    assert_eq!(end.reason, CloseReason::ClosedByHost);
    assert_eq!(end.at, at(HOUR));
    assert_eq!(end.summary, Some(summary("Fixed the parser.\nShipped.")));
    let event = only_event(&t);
    assert_eq!(event.actor, by(&f.host));
    assert_eq!(
        event.payload,
        EventPayload::SessionClosed {
            status: SessionStatus::Closed,
            reason: CloseReason::ClosedByHost,
            summary: Some(summary("Fixed the parser.\nShipped.")),
        }
    );
    assert_eq!(
        event.payload.data(),
        json!({"status": "closed", "reason": "closed_by_host", "summary": "Fixed the parser.\nShipped."})
    );
    // Nothing else about the session changes.
    assert_eq!(
        Session {
            end: None,
            ..t.state
        },
        f.session
    );
}

#[test]
fn the_host_closes_without_a_summary() {
    let f = fixture();
    let t = f.session.close(&f.host, None, t0()).expect("closes");
    assert_eq!(
        t.state.end.as_ref().and_then(|end| end.summary.clone()),
        None
    );
    assert_eq!(
        only_event(&t).payload.data(),
        json!({"status": "closed", "reason": "closed_by_host", "summary": null})
    );
}

#[test]
fn only_the_host_closes() {
    let f = fixture();
    for (who, role) in [
        (&f.collaborator, Role::Collaborator),
        (&f.viewer, Role::Viewer),
    ] {
        assert_eq!(
            f.session.close(who, None, t0()),
            Err(DomainError::Forbidden {
                action: Action::ManageSession,
                role
            })
        );
    }
}

#[test]
fn a_session_closes_once_and_not_after_it_is_due() {
    let f = fixture();
    let closed = closed(&f);
    assert_eq!(
        closed.close(&f.host, None, t0()),
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
    assert_eq!(
        f.session.close(&f.host, None, at(2 * HOUR)),
        Err(DomainError::SessionInactive(SessionStatus::Expired))
    );
}

#[test]
fn terminate_force_ends_the_session_as_the_given_actor() {
    let f = fixture();
    let admin = Actor::ApiKey(ApiKeyId::from_uuid(uuid(700)));
    let t = f.session.terminate(admin, at(5)).expect("terminates");
    assert_eq!(t.state.status(), SessionStatus::Terminated);
    let end = t.state.end.clone().expect("ended");
    assert_eq!(end.reason, CloseReason::Terminated);
    assert_eq!(end.at, at(5));
    let event = only_event(&t);
    assert_eq!(event.actor, admin);
    assert_eq!(
        event.payload,
        EventPayload::SessionClosed {
            status: SessionStatus::Terminated,
            reason: CloseReason::Terminated,
            summary: None,
        }
    );
}

#[test]
fn terminate_refuses_an_ended_session_but_not_a_due_one() {
    let f = fixture();
    let terminated = f.session.terminate(Actor::System, t0()).expect("ok").state;
    assert_eq!(
        terminated.terminate(Actor::System, t0()),
        Err(DomainError::SessionInactive(SessionStatus::Terminated))
    );
    assert_eq!(
        closed(&f).terminate(Actor::System, t0()),
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
    // A session past its limits but not yet swept can still be force-ended.
    let t = f.session.terminate(Actor::System, at(3 * DAY)).expect("ok");
    assert_eq!(t.state.status(), SessionStatus::Terminated);
}

// ---------------------------------------------------------------------------
// update
// ---------------------------------------------------------------------------

#[test]
fn the_host_updates_title_mode_and_policy() {
    let f = fixture();
    let t = f
        .session
        .update(
            &f.host,
            SessionPatch {
                title: Some(title("Release prep")),
                mode: Some(SessionMode::ViewOnly),
                permission_policy: Some(PermissionPolicy::AllowAll),
                expires_in: None,
            },
            at(10),
        )
        .expect("the host updates");
    assert_eq!(t.state.title, title("Release prep"));
    assert_eq!(t.state.mode, SessionMode::ViewOnly);
    assert_eq!(t.state.permission_policy, PermissionPolicy::AllowAll);
    assert_eq!(t.state.expires_at, f.session.expires_at);
    let event = only_event(&t);
    assert_eq!(event.actor, by(&f.host));
    assert_eq!(event.at, at(10));
    assert_eq!(
        event.payload,
        EventPayload::SessionUpdated {
            title: title("Release prep"),
            mode: SessionMode::ViewOnly,
            permission_policy: PermissionPolicy::AllowAll,
            expires_at: f.session.expires_at,
        }
    );
}

#[test]
fn an_empty_patch_changes_nothing_but_still_reports_the_state() {
    let f = fixture();
    let t = f.session.update(&f.host, patch(), t0()).expect("ok");
    assert_eq!(t.state, f.session);
    assert_eq!(
        only_event(&t).payload,
        EventPayload::SessionUpdated {
            title: f.session.title.clone(),
            mode: f.session.mode,
            permission_policy: f.session.permission_policy,
            expires_at: f.session.expires_at,
        }
    );
}

#[test]
fn every_mode_can_be_set_and_left() {
    let f = fixture();
    for from in SessionMode::ALL.iter().copied() {
        for to in SessionMode::ALL.iter().copied() {
            let session = Session {
                mode: from,
                ..f.session.clone()
            };
            let t = session
                .update(
                    &f.host,
                    SessionPatch {
                        mode: Some(to),
                        ..patch()
                    },
                    t0(),
                )
                .expect("the host may change the mode");
            assert_eq!(t.state.mode, to);
        }
    }
}

#[test]
fn extending_is_measured_from_now_up_to_30_days_after_creation() {
    let f = fixture();
    let extend = |secs: u32, now| {
        f.session.update(
            &f.host,
            SessionPatch {
                expires_in: Some(Ttl::from_secs(secs).expect("valid")),
                ..patch()
            },
            now,
        )
    };
    let t = extend(2 * 86_400, at(HOUR)).expect("within the maximum");
    assert_eq!(t.state.expires_at, at(HOUR + 2 * DAY));
    // Exactly at the maximum lifetime is allowed; one second beyond is not.
    let t = extend(30 * 86_400 - 3600, at(HOUR)).expect("exactly at the maximum");
    assert_eq!(t.state.expires_at, f.session.max_expires_at());
    assert_eq!(
        extend(30 * 86_400 - 3600 + 1, at(HOUR)),
        Err(DomainError::ExpiryBeyondMax)
    );
    assert_eq!(
        extend(30 * 86_400, at(1)),
        Err(DomainError::ExpiryBeyondMax)
    );
}

#[test]
fn extending_late_in_life_still_respects_the_maximum() {
    let f = fixture();
    let session = Session {
        expires_at: at(25 * DAY),
        last_activity_at: at(20 * DAY),
        ..f.session.clone()
    };
    let extend = |raw: &str| {
        session.update(
            &f.host,
            SessionPatch {
                expires_in: Some(ttl(raw)),
                ..patch()
            },
            at(20 * DAY),
        )
    };
    assert_eq!(
        extend("10d").expect("to day 30").state.expires_at,
        at(30 * DAY)
    );
    assert_eq!(extend("10d1s"), Err(DomainError::ExpiryBeyondMax));
    // Shortening is an update like any other.
    assert_eq!(
        extend("1h").expect("shorter").state.expires_at,
        at(20 * DAY + HOUR)
    );
}

#[test]
fn only_the_host_updates_and_only_while_active() {
    let f = fixture();
    for who in [&f.collaborator, &f.other, &f.viewer] {
        assert_eq!(
            f.session.update(
                who,
                SessionPatch {
                    mode: Some(SessionMode::PromptDirect),
                    ..patch()
                },
                t0()
            ),
            Err(DomainError::Forbidden {
                action: Action::ManageSession,
                role: who.role
            })
        );
    }
    assert_eq!(
        closed(&f).update(&f.host, patch(), t0()),
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
    assert_eq!(
        f.session.update(&f.host, patch(), at(DAY)),
        Err(DomainError::SessionInactive(SessionStatus::Expired))
    );
}

// ---------------------------------------------------------------------------
// Participant::join
// ---------------------------------------------------------------------------

#[test]
fn joining_through_the_initial_invite_makes_a_collaborator() {
    let f = fixture();
    let user = UserId::parse("cole@example.com").expect("valid");
    let joined = Participant::join(
        &f.session,
        &f.invite,
        Joiner {
            user_id: Some(user.clone()),
            ..joiner(30, "Newcomer")
        },
        at(7),
    )
    .expect("joins");
    let p = &joined.participant;
    assert_eq!(p.id, ParticipantId::from_uuid(uuid(30)));
    assert_eq!(p.session_id, f.session.id);
    assert_eq!(p.role, Role::Collaborator);
    assert_eq!(p.user_id, Some(user));
    assert_eq!(p.display_name.as_str(), "Newcomer");
    assert_eq!(p.joined_at, at(7));
    assert_eq!(p.left_at, None);
    assert_eq!(p.removed_by, None);
    assert_eq!(joined.invite.uses, f.invite.uses + 1);
    assert_eq!(
        Invite {
            uses: f.invite.uses,
            ..joined.invite.clone()
        },
        f.invite
    );
    assert_eq!(joined.events.len(), 1);
    let event = &joined.events[0];
    assert_eq!(event.actor, Actor::Participant(p.id));
    assert_eq!(event.at, at(7));
    assert_eq!(
        event.payload,
        EventPayload::ParticipantJoined(ParticipantSnapshot {
            id: p.id,
            display_name: p.display_name.clone(),
            role: Role::Collaborator,
            joined_at: at(7),
        })
    );
    assert_round_trips(&event.payload);
}

#[test]
fn the_fixture_counts_each_use_of_an_invite() {
    let f = fixture();
    assert_eq!(f.invite.uses, 2);
    assert_eq!(f.collaborator.role, Role::Collaborator);
    assert_eq!(f.other.role, Role::Collaborator);
    assert_eq!(f.viewer.role, Role::Viewer);
    assert_ne!(f.collaborator.id, f.other.id);
}

#[test]
fn the_role_comes_from_the_invite() {
    let f = fixture();
    for role in InviteRole::ALL.iter().copied() {
        let invite = Invite::create(
            InviteId::from_uuid(uuid(40)),
            &f.session,
            &f.host,
            InviteSettings {
                role,
                max_uses: None,
                expires_in: None,
            },
            t0(),
        )
        .expect("the host creates invites");
        let joined =
            Participant::join(&f.session, &invite, joiner(41, "Someone"), t0()).expect("joins");
        assert_eq!(joined.participant.role, Role::from(role));
    }
}

#[test]
fn a_revoked_invite_lets_nobody_in() {
    let f = fixture();
    let revoked = f
        .invite
        .revoke(&f.session, &f.host, at(1))
        .expect("revokes");
    assert_eq!(
        Participant::join(&f.session, &revoked, joiner(30, "Late"), at(2)),
        Err(DomainError::InviteRevoked)
    );
}

#[test]
fn an_invite_with_max_uses_runs_out() {
    let f = fixture();
    let invite = Invite::create(
        InviteId::from_uuid(uuid(40)),
        &f.session,
        &f.host,
        InviteSettings {
            role: InviteRole::Viewer,
            max_uses: NonZeroU32::new(2),
            expires_in: None,
        },
        t0(),
    )
    .expect("created");
    let first = Participant::join(&f.session, &invite, joiner(30, "One"), t0()).expect("1st");
    assert_eq!(first.invite.uses, 1);
    let second =
        Participant::join(&f.session, &first.invite, joiner(31, "Two"), t0()).expect("2nd");
    assert_eq!(second.invite.uses, 2);
    assert_eq!(
        Participant::join(&f.session, &second.invite, joiner(32, "Three"), t0()),
        Err(DomainError::InviteExhausted)
    );
    assert_eq!(
        second.invite.check_usable(t0()),
        Err(DomainError::InviteExhausted)
    );
}

#[test]
fn an_invite_stops_working_exactly_at_its_expiry() {
    let f = fixture();
    let invite = Invite::create(
        InviteId::from_uuid(uuid(40)),
        &f.session,
        &f.host,
        InviteSettings {
            role: InviteRole::Collaborator,
            max_uses: None,
            expires_in: Some(ttl("1h")),
        },
        at(10),
    )
    .expect("created");
    assert_eq!(invite.expires_at, Some(at(10 + HOUR)));
    assert!(Participant::join(&f.session, &invite, joiner(30, "In time"), at(9 + HOUR)).is_ok());
    assert_eq!(
        Participant::join(&f.session, &invite, joiner(31, "Too late"), at(10 + HOUR)),
        Err(DomainError::InviteExpired)
    );
}

#[test]
fn a_revoked_invite_reports_revoked_before_expired_or_exhausted() {
    let f = fixture();
    let invite = Invite {
        max_uses: Some(1),
        uses: 1,
        expires_at: Some(at(1)),
        revoked_at: Some(t0()),
        ..f.invite.clone()
    };
    assert_eq!(invite.check_usable(at(2)), Err(DomainError::InviteRevoked));
    let invite = Invite {
        revoked_at: None,
        ..invite
    };
    assert_eq!(invite.check_usable(at(2)), Err(DomainError::InviteExpired));
}

#[test]
fn an_invite_of_another_session_is_refused() {
    let f = fixture();
    let (_, _, foreign_invite) = elsewhere();
    assert_eq!(
        Participant::join(&f.session, &foreign_invite, joiner(30, "Lost"), t0()),
        Err(DomainError::WrongSession)
    );
}

#[test]
fn nobody_joins_an_inactive_session() {
    let f = fixture();
    assert_eq!(
        Participant::join(&closed(&f), &f.invite, joiner(30, "Late"), t0()),
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
    assert_eq!(
        Participant::join(&f.session, &f.invite, joiner(30, "Late"), at(2 * HOUR)),
        Err(DomainError::SessionInactive(SessionStatus::Expired))
    );
}

// ---------------------------------------------------------------------------
// leave, remove, change_role, gone participants
// ---------------------------------------------------------------------------

#[test]
fn collaborators_and_viewers_leave() {
    let f = fixture();
    for who in [&f.collaborator, &f.viewer] {
        let t = who.leave(&f.session, at(30)).expect("leaves");
        assert_eq!(t.state.left_at, Some(at(30)));
        assert_eq!(t.state.removed_by, None);
        assert!(!t.state.is_present());
        assert_eq!(
            Participant {
                left_at: None,
                ..t.state.clone()
            },
            *who
        );
        let event = only_event(&t);
        assert_eq!(event.actor, by(who));
        assert_eq!(
            event.payload,
            EventPayload::ParticipantLeft {
                participant_id: who.id
            }
        );
    }
}

#[test]
fn the_host_cannot_leave() {
    let f = fixture();
    assert_eq!(
        f.host.leave(&f.session, t0()),
        Err(DomainError::HostCannotLeave)
    );
}

#[test]
fn leaving_twice_or_an_ended_session_fails() {
    let f = fixture();
    let gone = f.collaborator.leave(&f.session, t0()).expect("ok").state;
    assert_eq!(
        gone.leave(&f.session, at(1)),
        Err(DomainError::ParticipantGone)
    );
    assert_eq!(
        f.viewer.leave(&closed(&f), t0()),
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
}

#[test]
fn the_host_removes_a_participant() {
    let f = fixture();
    for who in [&f.collaborator, &f.viewer] {
        let t = who.remove(&f.session, &f.host, at(40)).expect("removes");
        assert_eq!(t.state.left_at, Some(at(40)));
        assert_eq!(t.state.removed_by, Some(f.host.id));
        assert!(!t.state.is_present());
        assert_eq!(t.state.role, who.role);
        let event = only_event(&t);
        assert_eq!(event.actor, by(&f.host));
        assert_eq!(
            event.payload,
            EventPayload::ParticipantRemoved {
                participant_id: who.id,
                removed_by: f.host.id,
            }
        );
    }
}

#[test]
fn only_the_host_removes_and_the_host_cannot_be_removed() {
    let f = fixture();
    assert_eq!(
        f.viewer.remove(&f.session, &f.collaborator, t0()),
        Err(DomainError::Forbidden {
            action: Action::ManageSession,
            role: Role::Collaborator
        })
    );
    assert_eq!(
        f.collaborator.remove(&f.session, &f.viewer, t0()),
        Err(DomainError::Forbidden {
            action: Action::ManageSession,
            role: Role::Viewer
        })
    );
    assert_eq!(
        f.host.remove(&f.session, &f.host, t0()),
        Err(DomainError::HostIsFixed)
    );
    assert_eq!(
        f.host.remove(&f.session, &f.collaborator, t0()),
        Err(DomainError::Forbidden {
            action: Action::ManageSession,
            role: Role::Collaborator
        })
    );
}

#[test]
fn a_participant_who_is_gone_cannot_be_removed_again() {
    let f = fixture();
    let removed = f
        .collaborator
        .remove(&f.session, &f.host, t0())
        .expect("ok")
        .state;
    assert_eq!(
        removed.remove(&f.session, &f.host, at(1)),
        Err(DomainError::ParticipantGone)
    );
    let left = f.viewer.leave(&f.session, t0()).expect("ok").state;
    assert_eq!(
        left.remove(&f.session, &f.host, at(1)),
        Err(DomainError::ParticipantGone)
    );
}

#[test]
fn a_participant_of_another_session_cannot_be_managed_here() {
    let f = fixture();
    let (other_session, foreign_host, foreign_invite) = elsewhere();
    let stranger = Participant::join(&other_session, &foreign_invite, joiner(92, "X"), t0())
        .expect("joins the other session")
        .participant;
    assert_eq!(
        stranger.remove(&f.session, &f.host, t0()),
        Err(DomainError::WrongSession)
    );
    assert_eq!(
        stranger.change_role(&f.session, &f.host, InviteRole::Viewer, t0()),
        Err(DomainError::WrongSession)
    );
    // Nor can a host of another session act here.
    assert_eq!(
        f.viewer.remove(&f.session, &foreign_host, t0()),
        Err(DomainError::WrongSession)
    );
}

#[test]
fn the_host_changes_roles_both_ways() {
    let f = fixture();
    let t = f
        .viewer
        .change_role(&f.session, &f.host, InviteRole::Collaborator, at(50))
        .expect("promotes");
    assert_eq!(t.state.role, Role::Collaborator);
    assert_eq!(
        Participant {
            role: Role::Viewer,
            ..t.state.clone()
        },
        f.viewer
    );
    let event = only_event(&t);
    assert_eq!(event.actor, by(&f.host));
    assert_eq!(
        event.payload,
        EventPayload::ParticipantUpdated {
            participant_id: f.viewer.id,
            role: Role::Collaborator,
        }
    );
    let t = f
        .collaborator
        .change_role(&f.session, &f.host, InviteRole::Viewer, at(50))
        .expect("demotes");
    assert_eq!(t.state.role, Role::Viewer);
}

#[test]
fn change_role_refuses_no_op_host_target_non_host_and_gone() {
    let f = fixture();
    assert_eq!(
        f.viewer
            .change_role(&f.session, &f.host, InviteRole::Viewer, t0()),
        Err(DomainError::RoleUnchanged)
    );
    assert_eq!(
        f.collaborator
            .change_role(&f.session, &f.host, InviteRole::Collaborator, t0()),
        Err(DomainError::RoleUnchanged)
    );
    assert_eq!(
        f.host
            .change_role(&f.session, &f.host, InviteRole::Viewer, t0()),
        Err(DomainError::HostIsFixed)
    );
    assert_eq!(
        f.viewer
            .change_role(&f.session, &f.collaborator, InviteRole::Collaborator, t0()),
        Err(DomainError::Forbidden {
            action: Action::ManageSession,
            role: Role::Collaborator
        })
    );
    let gone = f.viewer.leave(&f.session, t0()).expect("ok").state;
    assert_eq!(
        gone.change_role(&f.session, &f.host, InviteRole::Collaborator, at(1)),
        Err(DomainError::ParticipantGone)
    );
}

#[test]
fn a_departed_or_removed_participant_cannot_act() {
    let f = fixture();
    let prompt = pending(&f);
    let left = f.collaborator.leave(&f.session, at(1)).expect("ok").state;
    let removed = f
        .collaborator
        .remove(&f.session, &f.host, at(1))
        .expect("ok")
        .state;
    for gone in [&left, &removed] {
        assert_eq!(
            gone.ensure_can_act(&f.session, at(2)),
            Err(DomainError::ParticipantGone)
        );
        assert_eq!(
            Comment::post(
                CommentId::from_uuid(uuid(60)),
                &f.session,
                gone,
                comment_text("hello?"),
                at(2)
            ),
            Err(DomainError::ParticipantGone)
        );
        assert_eq!(
            Prompt::submit(
                PromptId::from_uuid(uuid(61)),
                &f.session,
                gone,
                prompt_text("one more"),
                at(2)
            ),
            Err(DomainError::ParticipantGone)
        );
        assert_eq!(
            prompt.withdraw(&f.session, gone, at(2)),
            Err(DomainError::ParticipantGone)
        );
        assert_eq!(
            prompt.edit(&f.session, gone, prompt_text("edited"), at(2)),
            Err(DomainError::ParticipantGone)
        );
        assert_eq!(
            gone.leave(&f.session, at(2)),
            Err(DomainError::ParticipantGone)
        );
    }
}

#[test]
fn a_participant_cannot_act_in_another_session() {
    let f = fixture();
    let (other_session, foreign_host, _) = elsewhere();
    assert_eq!(
        foreign_host.ensure_can_act(&f.session, t0()),
        Err(DomainError::WrongSession)
    );
    assert_eq!(
        f.session.close(&foreign_host, None, t0()),
        Err(DomainError::WrongSession)
    );
    assert_eq!(
        f.host.ensure_can_act(&other_session, t0()),
        Err(DomainError::WrongSession)
    );
}

// ---------------------------------------------------------------------------
// Invite::create, revoke
// ---------------------------------------------------------------------------

#[test]
fn the_host_creates_an_invite_with_limits() {
    let f = fixture();
    let invite = Invite::create(
        InviteId::from_uuid(uuid(40)),
        &f.session,
        &f.host,
        InviteSettings {
            role: InviteRole::Viewer,
            max_uses: NonZeroU32::new(5),
            expires_in: Some(ttl("90m")),
        },
        at(60),
    )
    .expect("the host creates invites");
    assert_eq!(
        invite,
        Invite {
            id: InviteId::from_uuid(uuid(40)),
            session_id: f.session.id,
            role: InviteRole::Viewer,
            max_uses: Some(5),
            uses: 0,
            created_at: at(60),
            expires_at: Some(at(60 + 90 * MINUTE)),
            revoked_at: None,
            version: 0,
        }
    );
}

#[test]
fn only_the_host_creates_invites_and_only_while_active() {
    let f = fixture();
    let settings = InviteSettings {
        role: InviteRole::Collaborator,
        max_uses: None,
        expires_in: None,
    };
    for who in [&f.collaborator, &f.viewer] {
        assert_eq!(
            Invite::create(
                InviteId::from_uuid(uuid(40)),
                &f.session,
                who,
                settings,
                t0()
            ),
            Err(DomainError::Forbidden {
                action: Action::ManageSession,
                role: who.role
            })
        );
    }
    assert_eq!(
        Invite::create(
            InviteId::from_uuid(uuid(40)),
            &closed(&f),
            &f.host,
            settings,
            t0()
        ),
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
}

#[test]
fn the_host_revokes_an_invite_once() {
    let f = fixture();
    let revoked = f
        .invite
        .revoke(&f.session, &f.host, at(3))
        .expect("revokes");
    assert_eq!(revoked.revoked_at, Some(at(3)));
    assert_eq!(
        Invite {
            revoked_at: None,
            ..revoked.clone()
        },
        f.invite
    );
    assert_eq!(revoked.check_usable(at(3)), Err(DomainError::InviteRevoked));
    assert_eq!(
        revoked.revoke(&f.session, &f.host, at(4)),
        Err(DomainError::InviteAlreadyRevoked)
    );
}

#[test]
fn only_the_host_revokes_and_only_its_own_sessions_invites() {
    let f = fixture();
    for who in [&f.collaborator, &f.viewer] {
        assert_eq!(
            f.invite.revoke(&f.session, who, t0()),
            Err(DomainError::Forbidden {
                action: Action::ManageSession,
                role: who.role
            })
        );
    }
    let (_, _, foreign_invite) = elsewhere();
    assert_eq!(
        foreign_invite.revoke(&f.session, &f.host, t0()),
        Err(DomainError::WrongSession)
    );
}

// ---------------------------------------------------------------------------
// Comment::post
// ---------------------------------------------------------------------------

#[test]
fn comments_follow_the_matrix_in_every_mode() {
    for mode in SessionMode::ALL.iter().copied() {
        let f = fixture_with(settings(mode));
        for who in [&f.host, &f.collaborator, &f.viewer] {
            let allowed = match who.role {
                Role::Host => true,
                Role::Collaborator => mode != SessionMode::ViewOnly,
                Role::Viewer => false,
            };
            let result = Comment::post(
                CommentId::from_uuid(uuid(60)),
                &f.session,
                who,
                comment_text("looks good"),
                t0(),
            );
            if allowed {
                assert!(result.is_ok(), "{} in {mode}: {result:?}", who.role);
            } else {
                assert_eq!(
                    result,
                    Err(DomainError::Forbidden {
                        action: Action::Comment,
                        role: who.role
                    }),
                    "{} in {mode}",
                    who.role
                );
            }
        }
    }
}

#[test]
fn a_comment_records_author_text_and_time() {
    let f = fixture();
    let t = Comment::post(
        CommentId::from_uuid(uuid(60)),
        &f.session,
        &f.collaborator,
        comment_text("try the\nother branch"),
        at(9),
    )
    .expect("posts");
    assert_eq!(
        t.state,
        Comment {
            id: CommentId::from_uuid(uuid(60)),
            session_id: f.session.id,
            author: f.collaborator.id,
            text: comment_text("try the\nother branch"),
            created_at: at(9),
        }
    );
    let event = only_event(&t);
    assert_eq!(event.actor, by(&f.collaborator));
    assert_eq!(event.at, at(9));
    assert_eq!(
        event.payload,
        EventPayload::CommentPosted(CommentSnapshot {
            id: t.state.id,
            author_participant_id: f.collaborator.id,
            text: comment_text("try the\nother branch"),
            created_at: at(9),
        })
    );
}

#[test]
fn nobody_comments_in_an_inactive_session() {
    let f = fixture();
    let result = Comment::post(
        CommentId::from_uuid(uuid(60)),
        &closed(&f),
        &f.host,
        comment_text("too late"),
        t0(),
    );
    assert_eq!(
        result,
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
}

// ---------------------------------------------------------------------------
// Prompt::submit
// ---------------------------------------------------------------------------

#[test]
fn prompts_are_admitted_per_role_and_mode() {
    use PromptStatus::{PendingApproval, Queued};
    use SessionMode::{CommentOnly, PromptDirect, PromptWithApproval, ViewOnly};
    for mode in SessionMode::ALL.iter().copied() {
        let f = fixture_with(settings(mode));
        for who in [&f.host, &f.collaborator, &f.viewer] {
            let expected = match (who.role, mode) {
                (Role::Host, _) | (Role::Collaborator, PromptDirect) => Some(Queued),
                (Role::Collaborator, PromptWithApproval) => Some(PendingApproval),
                (Role::Collaborator, ViewOnly | CommentOnly) | (Role::Viewer, _) => None,
            };
            let result = Prompt::submit(
                PromptId::from_uuid(uuid(100)),
                &f.session,
                who,
                prompt_text("run it"),
                t0(),
            );
            match expected {
                Some(status) => {
                    let prompt = result.expect("admitted").state;
                    assert_eq!(prompt.status, status, "{} in {mode}", who.role);
                    assert_eq!(prompt.queued_at, (status == Queued).then_some(t0()));
                }
                None => assert_eq!(
                    result,
                    Err(DomainError::Forbidden {
                        action: Action::SubmitPrompt,
                        role: who.role
                    }),
                    "{} in {mode}",
                    who.role
                ),
            }
        }
    }
}

#[test]
fn a_submitted_prompt_records_everything_and_emits_submitted() {
    let f = fixture();
    let t = submit(&f, &f.collaborator, 100);
    let prompt = &t.state;
    assert_eq!(
        *prompt,
        Prompt {
            id: PromptId::from_uuid(uuid(100)),
            session_id: f.session.id,
            author: f.collaborator.id,
            text: prompt_text("make the tests pass"),
            status: PromptStatus::PendingApproval,
            created_at: t0(),
            queued_at: None,
            resolved_at: None,
            resolved_by: None,
            started_at: None,
            finished_at: None,
            stop_reason: None,
            error: None,
            retry_of: None,
            version: 0,
        }
    );
    let event = only_event(&t);
    assert_eq!(event.actor, by(&f.collaborator));
    assert_eq!(
        event.payload,
        EventPayload::PromptSubmitted(PromptSnapshot {
            id: prompt.id,
            author_participant_id: f.collaborator.id,
            text: prompt.text.clone(),
            status: PromptStatus::PendingApproval,
            created_at: t0(),
            retry_of: None,
        })
    );
    assert_eq!(event.payload.data()["status"], json!("pending_approval"));
}

#[test]
fn nobody_prompts_in_an_inactive_session() {
    let f = fixture();
    assert_eq!(
        Prompt::submit(
            PromptId::from_uuid(uuid(100)),
            &closed(&f),
            &f.host,
            prompt_text("too late"),
            t0()
        ),
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
    assert_eq!(
        Prompt::submit(
            PromptId::from_uuid(uuid(100)),
            &f.session,
            &f.host,
            prompt_text("too late"),
            at(DAY)
        ),
        Err(DomainError::SessionInactive(SessionStatus::Expired))
    );
}

// ---------------------------------------------------------------------------
// approve, reject, withdraw, edit
// ---------------------------------------------------------------------------

#[test]
fn the_host_approves_a_pending_prompt_into_the_queue() {
    let f = fixture();
    let prompt = pending(&f);
    let t = prompt
        .approve(&f.session, &f.host, at(5))
        .expect("approves");
    assert_eq!(t.state.status, PromptStatus::Queued);
    assert_eq!(t.state.queued_at, Some(at(5)));
    assert_eq!(t.state.resolved_at, Some(at(5)));
    assert_eq!(t.state.resolved_by, Some(f.host.id));
    assert_eq!(t.state.finished_at, None);
    let event = only_event(&t);
    assert_eq!(event.actor, by(&f.host));
    assert_eq!(
        event.payload,
        EventPayload::PromptApproved {
            prompt_id: prompt.id,
            approved_by: f.host.id,
        }
    );
}

#[test]
fn the_host_rejects_a_pending_prompt_for_good() {
    let f = fixture();
    let prompt = pending(&f);
    let t = prompt.reject(&f.session, &f.host, at(5)).expect("rejects");
    assert_eq!(t.state.status, PromptStatus::Rejected);
    assert_eq!(t.state.resolved_at, Some(at(5)));
    assert_eq!(t.state.resolved_by, Some(f.host.id));
    assert_eq!(t.state.finished_at, Some(at(5)));
    assert_eq!(t.state.queued_at, None);
    assert_eq!(
        only_event(&t).payload,
        EventPayload::PromptRejected {
            prompt_id: prompt.id,
            rejected_by: f.host.id,
        }
    );
}

#[test]
fn approve_and_reject_are_for_the_host_only() {
    let f = fixture();
    let prompt = pending(&f);
    for who in [&f.collaborator, &f.other, &f.viewer] {
        let forbidden = Err(DomainError::Forbidden {
            action: Action::ResolvePrompt,
            role: who.role,
        });
        assert_eq!(prompt.approve(&f.session, who, t0()), forbidden);
        assert_eq!(prompt.reject(&f.session, who, t0()), forbidden);
    }
}

#[test]
fn a_resolved_prompt_cannot_be_resolved_again() {
    let f = fixture();
    let approved = queued(&f);
    let rejected = pending(&f)
        .reject(&f.session, &f.host, t0())
        .expect("ok")
        .state;
    for prompt in [&approved, &rejected] {
        let already = Err(DomainError::PromptAlreadyResolved(prompt.status));
        assert_eq!(prompt.approve(&f.session, &f.host, at(9)), already);
        assert_eq!(prompt.reject(&f.session, &f.host, at(9)), already);
        assert_eq!(prompt.withdraw(&f.session, &f.collaborator, at(9)), already);
        assert_eq!(
            prompt.edit(&f.session, &f.collaborator, prompt_text("x"), at(9)),
            already
        );
    }
}

#[test]
fn the_author_withdraws_their_pending_prompt() {
    let f = fixture();
    let prompt = pending(&f);
    let t = prompt
        .withdraw(&f.session, &f.collaborator, at(4))
        .expect("withdraws");
    assert_eq!(t.state.status, PromptStatus::Withdrawn);
    assert_eq!(t.state.finished_at, Some(at(4)));
    assert_eq!(t.state.resolved_by, None);
    let event = only_event(&t);
    assert_eq!(event.actor, by(&f.collaborator));
    assert_eq!(
        event.payload,
        EventPayload::PromptWithdrawn {
            prompt_id: prompt.id
        }
    );
}

#[test]
fn only_the_author_withdraws_or_edits() {
    let f = fixture();
    let prompt = pending(&f);
    for who in [&f.host, &f.other, &f.viewer] {
        assert_eq!(
            prompt.withdraw(&f.session, who, t0()),
            Err(DomainError::Forbidden {
                action: Action::WithdrawPrompt,
                role: who.role
            })
        );
        assert_eq!(
            prompt.edit(&f.session, who, prompt_text("mine now"), t0()),
            Err(DomainError::Forbidden {
                action: Action::EditPrompt,
                role: who.role
            })
        );
    }
}

#[test]
fn an_author_demoted_to_viewer_can_no_longer_withdraw_edit_or_cancel() {
    let f = fixture();
    let prompt = pending(&f);
    let demoted = f
        .collaborator
        .change_role(&f.session, &f.host, InviteRole::Viewer, t0())
        .expect("demotes")
        .state;
    let forbidden = |action| DomainError::Forbidden {
        action,
        role: Role::Viewer,
    };
    assert_eq!(
        prompt.withdraw(&f.session, &demoted, at(1)),
        Err(forbidden(Action::WithdrawPrompt))
    );
    assert_eq!(
        prompt.edit(&f.session, &demoted, prompt_text("x"), at(1)),
        Err(forbidden(Action::EditPrompt))
    );
    assert_eq!(
        queued(&f).cancel(&f.session, &demoted, at(1)),
        Err(forbidden(Action::CancelPrompt))
    );
}

#[test]
fn the_author_edits_their_pending_prompt() {
    let f = fixture();
    let prompt = pending(&f);
    let t = prompt
        .edit(
            &f.session,
            &f.collaborator,
            prompt_text("make it faster"),
            at(4),
        )
        .expect("edits");
    assert_eq!(
        t.state,
        Prompt {
            text: prompt_text("make it faster"),
            ..prompt.clone()
        }
    );
    let event = only_event(&t);
    assert_eq!(event.actor, by(&f.collaborator));
    assert_eq!(
        event.payload,
        EventPayload::PromptEdited {
            prompt_id: prompt.id,
            text: prompt_text("make it faster"),
        }
    );
    // Still pending: the host resolves the edited text.
    let approved = t.state.approve(&f.session, &f.host, at(5)).expect("ok");
    assert_eq!(approved.state.text, prompt_text("make it faster"));
}

// ---------------------------------------------------------------------------
// cancel
// ---------------------------------------------------------------------------

#[test]
fn cancelling_a_queued_prompt_cancels_it_at_once() {
    let f = fixture();
    let prompt = queued(&f);
    for who in [&f.host, &f.collaborator] {
        let outcome = prompt.cancel(&f.session, who, at(6)).expect("cancels");
        let CancelOutcome::Cancelled(t) = outcome else {
            panic!("a queued prompt is cancelled at once, got {outcome:?}");
        };
        assert_eq!(t.state.status, PromptStatus::Cancelled);
        assert_eq!(t.state.finished_at, Some(at(6)));
        assert_eq!(t.state.stop_reason, None, "it never reached the agent");
        assert_eq!(t.state.started_at, None);
        let event = only_event(&t);
        assert_eq!(event.actor, by(who));
        assert_eq!(
            event.payload,
            EventPayload::PromptCancelled {
                prompt_id: prompt.id,
                cancelled_by: Some(who.id),
            }
        );
    }
}

#[test]
fn cancelling_a_running_prompt_asks_to_stop_the_agent() {
    let f = fixture();
    let prompt = running(&f);
    for who in [&f.host, &f.collaborator] {
        let Ok(CancelOutcome::StopAgent(event)) = prompt.cancel(&f.session, who, at(6)) else {
            panic!("a running prompt's agent is asked to stop");
        };
        assert_eq!(event.actor, Actor::Participant(who.id));
        assert_eq!(
            event.payload,
            EventPayload::PromptCancelRequested {
                prompt_id: prompt.id,
                requested_by: who.id,
            }
        );
    }
}

#[test]
fn only_the_host_or_the_author_cancels() {
    let f = fixture();
    for prompt in [queued(&f), running(&f)] {
        for who in [&f.other, &f.viewer] {
            assert_eq!(
                prompt.cancel(&f.session, who, t0()),
                Err(DomainError::Forbidden {
                    action: Action::CancelPrompt,
                    role: who.role
                })
            );
        }
    }
}

#[test]
fn only_queued_or_running_prompts_can_be_cancelled() {
    let f = fixture();
    let completed = running(&f)
        .complete(StopReason::EndTurn, at(3))
        .expect("ok")
        .state;
    for prompt in [pending(&f), completed, cancelled_queued(&f)] {
        assert_eq!(
            prompt.cancel(&f.session, &f.host, at(9)),
            Err(DomainError::PromptInvalidTransition {
                from: prompt.status,
                action: "cancelled"
            })
        );
    }
}

// ---------------------------------------------------------------------------
// The runner: start, output, complete, fail, finish_cancelled, abandon
// ---------------------------------------------------------------------------

#[test]
fn a_queued_prompt_starts_running() {
    let f = fixture();
    let prompt = queued(&f);
    let t = prompt.start(at(8)).expect("starts");
    assert_eq!(t.state.status, PromptStatus::Running);
    assert_eq!(t.state.started_at, Some(at(8)));
    assert_eq!(t.state.finished_at, None);
    let event = only_event(&t);
    assert_eq!(event.actor, Actor::Agent);
    assert_eq!(
        event.payload,
        EventPayload::PromptStarted {
            prompt_id: prompt.id
        }
    );
}

#[test]
fn only_a_queued_prompt_starts() {
    let f = fixture();
    for prompt in [pending(&f), running(&f), cancelled_queued(&f)] {
        assert_eq!(
            prompt.start(at(9)),
            Err(DomainError::PromptInvalidTransition {
                from: prompt.status,
                action: "started"
            })
        );
    }
}

#[test]
fn a_running_prompt_reports_agent_output() {
    let f = fixture();
    let prompt = running(&f);
    let output = AgentOutput {
        prompt_id: prompt.id,
        kind: AgentOutputKind::Message,
        text: Some("Hello".to_owned()),
        raw: json!({"sessionUpdate": "agent_message_chunk", "content": {"text": "Hello"}}),
        redactions: Redactions::none(),
    };
    let event = prompt.output(output.clone(), at(9)).expect("reports");
    assert_eq!(event.actor, Actor::Agent);
    assert_eq!(event.at, at(9));
    assert_eq!(event.payload, EventPayload::AgentOutput(output.clone()));
    assert_round_trips(&event.payload);
    assert_eq!(
        queued(&f).output(output, at(9)),
        Err(DomainError::PromptInvalidTransition {
            from: PromptStatus::Queued,
            action: "given output"
        })
    );
}

#[test]
fn completing_records_the_stop_reason() {
    let f = fixture();
    let prompt = running(&f);
    for reason in [
        StopReason::EndTurn,
        StopReason::MaxTokens,
        StopReason::MaxTurnRequests,
        StopReason::Refusal,
    ] {
        let t = prompt.complete(reason, at(20)).expect("completes");
        assert_eq!(t.state.status, PromptStatus::Completed);
        assert_eq!(t.state.stop_reason, Some(reason));
        assert_eq!(t.state.finished_at, Some(at(20)));
        assert_eq!(t.state.error, None);
        let event = only_event(&t);
        assert_eq!(event.actor, Actor::Agent);
        assert_eq!(
            event.payload,
            EventPayload::PromptCompleted {
                prompt_id: prompt.id,
                stop_reason: reason,
            }
        );
    }
}

#[test]
fn completing_with_stop_reason_cancelled_records_a_cancellation() {
    let f = fixture();
    let prompt = running(&f);
    let t = prompt
        .complete(StopReason::Cancelled, at(20))
        .expect("ends the turn");
    assert_eq!(t.state.status, PromptStatus::Cancelled);
    assert_eq!(t.state.stop_reason, Some(StopReason::Cancelled));
    assert_eq!(t.state.finished_at, Some(at(20)));
    let event = only_event(&t);
    assert_eq!(event.actor, Actor::Agent);
    assert_eq!(
        event.payload,
        EventPayload::PromptCancelled {
            prompt_id: prompt.id,
            cancelled_by: None,
        }
    );
}

#[test]
fn only_a_running_prompt_completes_fails_or_finishes_cancelled() {
    let f = fixture();
    let completed = running(&f)
        .complete(StopReason::EndTurn, at(3))
        .expect("ok")
        .state;
    for prompt in [pending(&f), queued(&f), completed] {
        let invalid = |action| {
            Err(DomainError::PromptInvalidTransition {
                from: prompt.status,
                action,
            })
        };
        assert_eq!(
            prompt.complete(StopReason::EndTurn, at(9)),
            invalid("completed")
        );
        assert_eq!(
            prompt.complete(StopReason::Cancelled, at(9)),
            invalid("completed")
        );
        assert_eq!(prompt.fail("boom", at(9)), invalid("failed"));
        assert_eq!(
            prompt.finish_cancelled(Some(f.host.id), at(9)),
            invalid("cancelled")
        );
    }
}

#[test]
fn a_failure_keeps_its_error() {
    let f = fixture();
    let prompt = running(&f);
    let t = prompt
        .fail("agent exited with status 1", at(20))
        .expect("fails");
    assert_eq!(t.state.status, PromptStatus::Failed);
    assert_eq!(t.state.error.as_deref(), Some("agent exited with status 1"));
    assert_eq!(t.state.finished_at, Some(at(20)));
    assert_eq!(t.state.stop_reason, None);
    let event = only_event(&t);
    assert_eq!(event.actor, Actor::Agent);
    assert_eq!(
        event.payload,
        EventPayload::PromptFailed {
            prompt_id: prompt.id,
            error: "agent exited with status 1".to_owned(),
            redactions: Redactions::none(),
        }
    );
}

#[test]
fn a_long_error_is_cut_at_max_error_bytes() {
    let f = fixture();
    let prompt = running(&f);
    let exact = "e".repeat(MAX_ERROR_BYTES);
    let t = prompt.fail(&exact, at(20)).expect("fails");
    assert_eq!(t.state.error.as_deref(), Some(exact.as_str()));

    let long = "x".repeat(MAX_ERROR_BYTES + 1);
    let t = prompt.fail(&long, at(20)).expect("fails");
    assert_eq!(t.state.error.as_deref(), Some(&long[..MAX_ERROR_BYTES]));
    assert_eq!(
        only_event(&t).payload,
        EventPayload::PromptFailed {
            prompt_id: prompt.id,
            error: long[..MAX_ERROR_BYTES].to_owned(),
            redactions: Redactions::none(),
        }
    );
}

#[test]
fn a_long_error_is_cut_on_a_character_boundary() {
    let f = fixture();
    let prompt = running(&f);
    // One ASCII byte then two-byte characters: byte MAX_ERROR_BYTES falls inside one.
    let text = format!("a{}", "é".repeat(MAX_ERROR_BYTES));
    let error = prompt.fail(&text, at(20)).expect("fails").state.error;
    let error = error.expect("kept");
    assert_eq!(error.len(), MAX_ERROR_BYTES - 1);
    assert!(text.starts_with(&error));
    assert!(error.ends_with('é'));
    // Four-byte characters: the cut drops the whole character that does not fit.
    let text = format!("ab{}", "😀".repeat(MAX_ERROR_BYTES));
    let error = prompt.fail(&text, at(20)).expect("fails").state.error;
    let error = error.expect("kept");
    assert_eq!(error.len(), MAX_ERROR_BYTES - 2);
    assert_eq!(error.chars().filter(|c| *c == '😀').count(), 511);
}

#[test]
fn finish_cancelled_records_who_asked() {
    let f = fixture();
    let prompt = running(&f);
    let t = prompt
        .finish_cancelled(Some(f.collaborator.id), at(21))
        .expect("cancelled");
    assert_eq!(t.state.status, PromptStatus::Cancelled);
    assert_eq!(t.state.stop_reason, Some(StopReason::Cancelled));
    assert_eq!(t.state.finished_at, Some(at(21)));
    let event = only_event(&t);
    assert_eq!(event.actor, by(&f.collaborator));
    assert_eq!(
        event.payload,
        EventPayload::PromptCancelled {
            prompt_id: prompt.id,
            cancelled_by: Some(f.collaborator.id),
        }
    );
    let t = prompt.finish_cancelled(None, at(21)).expect("cancelled");
    let event = only_event(&t);
    assert_eq!(event.actor, Actor::Agent);
    assert_eq!(
        event.payload,
        EventPayload::PromptCancelled {
            prompt_id: prompt.id,
            cancelled_by: None,
        }
    );
}

#[test]
fn abandon_cancels_a_queued_or_running_prompt_as_the_system() {
    let f = fixture();
    for (prompt, stop_reason) in [
        (queued(&f), None),
        (running(&f), Some(StopReason::Cancelled)),
    ] {
        let t = prompt.abandon(at(30)).expect("abandons");
        assert_eq!(t.state.status, PromptStatus::Cancelled);
        assert_eq!(t.state.stop_reason, stop_reason);
        assert_eq!(t.state.finished_at, Some(at(30)));
        let event = only_event(&t);
        assert_eq!(event.actor, Actor::System);
        assert_eq!(
            event.payload,
            EventPayload::PromptCancelled {
                prompt_id: prompt.id,
                cancelled_by: None,
            }
        );
    }
}

#[test]
fn abandon_leaves_pending_and_finished_prompts_alone() {
    let f = fixture();
    let failed = running(&f).fail("x", at(3)).expect("ok").state;
    for prompt in [pending(&f), failed, cancelled_queued(&f)] {
        assert_eq!(
            prompt.abandon(at(30)),
            Err(DomainError::PromptInvalidTransition {
                from: prompt.status,
                action: "abandoned"
            })
        );
    }
}

// ---------------------------------------------------------------------------
// retry
// ---------------------------------------------------------------------------

fn finished_prompts(f: &Fixture) -> [Prompt; 3] {
    [
        running(f)
            .complete(StopReason::EndTurn, at(3))
            .expect("ok")
            .state,
        running(f).fail("boom", at(3)).expect("ok").state,
        cancelled_queued(f),
    ]
}

#[test]
fn the_host_retries_a_finished_prompt_as_a_new_queued_prompt() {
    let f = fixture();
    for original in finished_prompts(&f) {
        let t = original
            .retry(PromptId::from_uuid(uuid(200)), &f.session, &f.host, at(40))
            .expect("retries");
        let retry = &t.state;
        assert_eq!(retry.id, PromptId::from_uuid(uuid(200)));
        assert_eq!(retry.session_id, f.session.id);
        assert_eq!(retry.author, f.host.id);
        assert_eq!(retry.text, original.text);
        assert_eq!(retry.status, PromptStatus::Queued);
        assert_eq!(retry.created_at, at(40));
        assert_eq!(retry.queued_at, Some(at(40)));
        assert_eq!(retry.retry_of, Some(original.id));
        assert_eq!(retry.started_at, None);
        assert_eq!(retry.finished_at, None);
        assert_eq!(retry.stop_reason, None);
        assert_eq!(retry.error, None);
        let event = only_event(&t);
        assert_eq!(event.actor, by(&f.host));
        assert_eq!(
            event.payload,
            EventPayload::PromptSubmitted(PromptSnapshot {
                id: retry.id,
                author_participant_id: f.host.id,
                text: original.text.clone(),
                status: PromptStatus::Queued,
                created_at: at(40),
                retry_of: Some(original.id),
            })
        );
    }
}

#[test]
fn only_the_host_retries() {
    let f = fixture();
    for original in finished_prompts(&f) {
        for who in [&f.collaborator, &f.other, &f.viewer] {
            assert_eq!(
                original.retry(PromptId::from_uuid(uuid(200)), &f.session, who, at(40)),
                Err(DomainError::Forbidden {
                    action: Action::RetryPrompt,
                    role: who.role
                })
            );
        }
    }
}

#[test]
fn only_finished_prompts_are_retried() {
    let f = fixture();
    let rejected = pending(&f)
        .reject(&f.session, &f.host, t0())
        .expect("ok")
        .state;
    let withdrawn = pending(&f)
        .withdraw(&f.session, &f.collaborator, t0())
        .expect("ok")
        .state;
    for prompt in [pending(&f), queued(&f), running(&f), rejected, withdrawn] {
        assert_eq!(
            prompt.retry(PromptId::from_uuid(uuid(200)), &f.session, &f.host, at(40)),
            Err(DomainError::PromptInvalidTransition {
                from: prompt.status,
                action: "retried"
            })
        );
    }
}

#[test]
fn a_prompt_is_only_acted_on_in_its_own_session() {
    let f = fixture();
    let (other_session, foreign_host, _) = elsewhere();
    let wrong = Err(DomainError::WrongSession);
    let prompt = pending(&f);
    assert_eq!(prompt.approve(&other_session, &foreign_host, t0()), wrong);
    assert_eq!(prompt.reject(&other_session, &foreign_host, t0()), wrong);
    assert_eq!(prompt.withdraw(&other_session, &foreign_host, t0()), wrong);
    assert_eq!(
        prompt.edit(&other_session, &foreign_host, prompt_text("x"), t0()),
        wrong
    );
    assert_eq!(
        queued(&f).cancel(&other_session, &foreign_host, t0()),
        Err(DomainError::WrongSession)
    );
    let [completed, ..] = finished_prompts(&f);
    assert_eq!(
        completed.retry(
            PromptId::from_uuid(uuid(200)),
            &other_session,
            &foreign_host,
            t0()
        ),
        wrong
    );
    // The right session, but an actor from elsewhere.
    assert_eq!(prompt.approve(&f.session, &foreign_host, t0()), wrong);
}

#[test]
fn participant_actions_on_prompts_need_an_active_session() {
    let f = fixture();
    let prompt = pending(&f);
    let closed = closed(&f);
    let inactive = Err(DomainError::SessionInactive(SessionStatus::Closed));
    assert_eq!(prompt.approve(&closed, &f.host, t0()), inactive);
    assert_eq!(prompt.reject(&closed, &f.host, t0()), inactive);
    assert_eq!(prompt.withdraw(&closed, &f.collaborator, t0()), inactive);
    assert_eq!(
        queued(&f).cancel(&closed, &f.host, t0()),
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
}

// ---------------------------------------------------------------------------
// PermissionRequest
// ---------------------------------------------------------------------------

#[test]
fn under_ask_host_a_request_stays_open_for_the_host() {
    let f = fixture();
    let prompt = running(&f);
    let t =
        PermissionRequest::open(&f.session, &prompt, ask(all_options()), at(10)).expect("opens");
    let request = &t.state;
    assert!(request.is_open());
    assert_eq!(request.resolution, None);
    assert_eq!(request.session_id, f.session.id);
    assert_eq!(request.prompt_id, prompt.id);
    assert_eq!(request.created_at, at(10));
    assert_eq!(request.deadline, at(10 + 5 * MINUTE));
    assert_eq!(request.options, all_options());
    let event = only_event(&t);
    assert_eq!(event.actor, Actor::Agent);
    assert_eq!(
        event.payload,
        EventPayload::AgentPermissionRequested {
            request_id: request.id,
            prompt_id: prompt.id,
            tool_call: ask(vec![]).tool_call,
            options: all_options(),
            deadline: at(10 + 5 * MINUTE),
            redactions: Redactions::none(),
        }
    );
}

/// The policy's outcome, checking the two events `open` records for it.
fn policy_outcome(
    permission_policy: PermissionPolicy,
    options: Vec<PermissionOption>,
) -> PermissionOutcome {
    let f = fixture_with(policy(permission_policy));
    let t = open_request(&f, options);
    assert_eq!(t.events.len(), 2, "requested, then resolved");
    for event in &t.events {
        assert_round_trips(&event.payload);
        assert_eq!(event.at, at(10));
    }
    assert_eq!(
        t.events[0].payload.event_type(),
        "agent.permission_requested"
    );
    assert_eq!(t.events[0].actor, Actor::Agent);
    assert_eq!(t.events[1].actor, Actor::System);
    let resolution = t.state.resolution.clone().expect("resolved at once");
    assert_eq!(resolution.cause, PermissionCause::Policy);
    assert_eq!(resolution.by, None);
    assert_eq!(resolution.at, at(10));
    assert_eq!(
        t.events[1].payload,
        EventPayload::AgentPermissionResolved {
            request_id: t.state.id,
            prompt_id: t.state.prompt_id,
            outcome: resolution.outcome.clone(),
            cause: PermissionCause::Policy,
            resolved_by: None,
        }
    );
    resolution.outcome
}

fn selected(option_id: &str) -> PermissionOutcome {
    PermissionOutcome::Selected {
        option_id: option_id.to_owned(),
    }
}

#[test]
fn allow_all_prefers_allow_once_then_allow_always() {
    use PermissionOptionKind::{AllowAlways, AllowOnce, RejectAlways, RejectOnce};
    let allow_all = |options| policy_outcome(PermissionPolicy::AllowAll, options);
    assert_eq!(allow_all(all_options()), selected("allow-once"));
    assert_eq!(
        allow_all(vec![option("r", RejectOnce), option("aa", AllowAlways)]),
        selected("aa")
    );
    assert_eq!(
        allow_all(vec![option("r1", RejectOnce), option("r2", RejectAlways)]),
        PermissionOutcome::Cancelled
    );
    assert_eq!(allow_all(vec![]), PermissionOutcome::Cancelled);
    assert_eq!(
        allow_all(vec![
            option("first", AllowOnce),
            option("second", AllowOnce)
        ]),
        selected("first")
    );
}

#[test]
fn reject_all_prefers_reject_once_then_reject_always() {
    use PermissionOptionKind::{AllowAlways, AllowOnce, RejectAlways};
    let reject_all = |options| policy_outcome(PermissionPolicy::RejectAll, options);
    assert_eq!(reject_all(all_options()), selected("reject-once"));
    assert_eq!(
        reject_all(vec![option("a", AllowOnce), option("ra", RejectAlways)]),
        selected("ra")
    );
    assert_eq!(
        reject_all(vec![option("a", AllowOnce), option("aa", AllowAlways)]),
        PermissionOutcome::Cancelled
    );
    assert_eq!(reject_all(vec![]), PermissionOutcome::Cancelled);
}

#[test]
fn only_a_running_prompt_of_an_active_session_asks() {
    let f = fixture();
    for prompt in [pending(&f), queued(&f), cancelled_queued(&f)] {
        assert_eq!(
            PermissionRequest::open(&f.session, &prompt, ask(all_options()), at(10)),
            Err(DomainError::PromptInvalidTransition {
                from: prompt.status,
                action: "asked for permission"
            })
        );
    }
    let (other_session, _, _) = elsewhere();
    assert_eq!(
        PermissionRequest::open(&other_session, &running(&f), ask(all_options()), at(10)),
        Err(DomainError::WrongSession)
    );
    assert_eq!(
        PermissionRequest::open(&closed(&f), &running(&f), ask(all_options()), at(10)),
        Err(DomainError::SessionInactive(SessionStatus::Closed))
    );
}

#[test]
fn the_host_selects_an_offered_option() {
    let f = fixture();
    let request = ask_host_request(&f);
    let t = request
        .answer(
            &f.session,
            &f.host,
            PermissionAnswer::Select("allow-always".to_owned()),
            at(20),
        )
        .expect("answers");
    let resolution = t.state.resolution.clone().expect("resolved");
    assert_eq!(resolution.outcome, selected("allow-always"));
    assert_eq!(resolution.cause, PermissionCause::Host);
    assert_eq!(resolution.by, Some(f.host.id));
    assert_eq!(resolution.at, at(20));
    assert!(!t.state.is_open());
    let event = only_event(&t);
    assert_eq!(event.actor, by(&f.host));
    assert_eq!(
        event.payload,
        EventPayload::AgentPermissionResolved {
            request_id: request.id,
            prompt_id: request.prompt_id,
            outcome: selected("allow-always"),
            cause: PermissionCause::Host,
            resolved_by: Some(f.host.id),
        }
    );
}

#[test]
fn the_host_rejects_with_the_agents_reject_option_or_none() {
    use PermissionOptionKind::{AllowOnce, RejectAlways};
    let f = fixture();
    let answer = |options| {
        let request = open_request(&f, options).state;
        request
            .answer(&f.session, &f.host, PermissionAnswer::Reject, at(20))
            .expect("answers")
            .state
            .resolution
            .expect("resolved")
            .outcome
    };
    assert_eq!(answer(all_options()), selected("reject-once"));
    assert_eq!(
        answer(vec![option("a", AllowOnce), option("ra", RejectAlways)]),
        selected("ra")
    );
    assert_eq!(
        answer(vec![option("a", AllowOnce)]),
        PermissionOutcome::Cancelled
    );
}

#[test]
fn an_answer_must_name_an_offered_option() {
    let f = fixture();
    let request = ask_host_request(&f);
    assert_eq!(
        request.answer(
            &f.session,
            &f.host,
            PermissionAnswer::Select("sudo".to_owned()),
            at(20)
        ),
        Err(DomainError::UnknownPermissionOption)
    );
    assert!(request.is_open());
}

#[test]
fn only_the_host_answers() {
    let f = fixture();
    let request = ask_host_request(&f);
    for who in [&f.collaborator, &f.viewer] {
        for answer in [
            PermissionAnswer::Reject,
            PermissionAnswer::Select("allow-once".to_owned()),
        ] {
            assert_eq!(
                request.answer(&f.session, who, answer, at(20)),
                Err(DomainError::Forbidden {
                    action: Action::AnswerPermission,
                    role: who.role
                })
            );
        }
    }
    let (other_session, foreign_host, _) = elsewhere();
    assert_eq!(
        request.answer(
            &other_session,
            &foreign_host,
            PermissionAnswer::Reject,
            at(20)
        ),
        Err(DomainError::WrongSession)
    );
}

#[test]
fn a_resolved_request_takes_no_further_answer_timeout_or_cancel() {
    let f = fixture();
    let open = ask_host_request(&f);
    let answered = open
        .answer(&f.session, &f.host, PermissionAnswer::Reject, at(20))
        .expect("ok")
        .state;
    let timed_out = open.time_out(at(HOUR)).expect("ok").state;
    let cancelled = open.cancel(at(20)).expect("ok").state;
    let by_policy = open_request(
        &fixture_with(policy(PermissionPolicy::AllowAll)),
        all_options(),
    )
    .state;
    for request in [answered, timed_out, cancelled, by_policy] {
        let resolved = Err(DomainError::PermissionAlreadyResolved);
        assert_eq!(
            request.answer(
                &f.session,
                &f.host,
                PermissionAnswer::Select("allow-once".to_owned()),
                at(30)
            ),
            resolved
        );
        assert_eq!(request.time_out(at(DAY)), resolved);
        assert_eq!(request.cancel(at(30)), resolved);
    }
}

#[test]
fn an_unanswered_request_times_out_as_a_rejection_at_its_deadline() {
    let f = fixture();
    let request = ask_host_request(&f);
    assert_eq!(
        request.time_out(request.deadline - TimeDelta::seconds(1)),
        Err(DomainError::PermissionNotDue)
    );
    let t = request.time_out(request.deadline).expect("due");
    let resolution = t.state.resolution.clone().expect("resolved");
    assert_eq!(resolution.outcome, selected("reject-once"));
    assert_eq!(resolution.cause, PermissionCause::Timeout);
    assert_eq!(resolution.by, None);
    assert_eq!(resolution.at, request.deadline);
    let event = only_event(&t);
    assert_eq!(event.actor, Actor::System);
    assert_eq!(
        event.payload,
        EventPayload::AgentPermissionResolved {
            request_id: request.id,
            prompt_id: request.prompt_id,
            outcome: selected("reject-once"),
            cause: PermissionCause::Timeout,
            resolved_by: None,
        }
    );
    let no_reject = open_request(&f, vec![option("a", PermissionOptionKind::AllowOnce)]).state;
    let outcome = no_reject.time_out(at(DAY)).expect("due").state.resolution;
    assert_eq!(
        outcome.map(|r| r.outcome),
        Some(PermissionOutcome::Cancelled)
    );
}

#[test]
fn a_request_is_cancelled_when_its_prompt_ends() {
    let f = fixture();
    let request = ask_host_request(&f);
    let t = request.cancel(at(15)).expect("cancels");
    let resolution = t.state.resolution.clone().expect("resolved");
    assert_eq!(resolution.outcome, PermissionOutcome::Cancelled);
    assert_eq!(resolution.cause, PermissionCause::PromptEnded);
    assert_eq!(resolution.by, None);
    let event = only_event(&t);
    assert_eq!(event.actor, Actor::System);
    assert_eq!(
        event.payload,
        EventPayload::AgentPermissionResolved {
            request_id: request.id,
            prompt_id: request.prompt_id,
            outcome: PermissionOutcome::Cancelled,
            cause: PermissionCause::PromptEnded,
            resolved_by: None,
        }
    );
}

#[test]
fn the_rejecting_answer_prefers_reject_once_then_always_else_cancels() {
    use PermissionOptionKind::{AllowOnce, RejectAlways, RejectOnce};
    let option = |id: &str, kind| PermissionOption {
        id: id.to_owned(),
        name: id.to_owned(),
        kind,
    };
    let chosen = |id: &str| PermissionOutcome::Selected {
        option_id: id.to_owned(),
    };
    let all = [
        option("ok", AllowOnce),
        option("never", RejectAlways),
        option("no", RejectOnce),
    ];
    assert_eq!(PermissionOutcome::rejecting(&all), chosen("no"));
    assert_eq!(PermissionOutcome::rejecting(&all[..2]), chosen("never"));
    assert_eq!(
        PermissionOutcome::rejecting(&all[..1]),
        PermissionOutcome::Cancelled
    );
}

#[test]
fn option_kinds_know_whether_they_allow() {
    use PermissionOptionKind::{AllowAlways, AllowOnce, RejectAlways, RejectOnce};
    assert!(AllowOnce.allows());
    assert!(AllowAlways.allows());
    assert!(!RejectOnce.allows());
    assert!(!RejectAlways.allows());
}

// ---------------------------------------------------------------------------
// EventPayload: the catalog and its stored form
// ---------------------------------------------------------------------------

/// DESIGN.md §3's catalog, plus `prompt.edited`, `prompt.cancel_requested` and the
/// agent's session-level events, in `EventPayload` order.
const CATALOG: [&str; 27] = [
    "session.created",
    "session.updated",
    "session.closed",
    "participant.joined",
    "participant.left",
    "participant.updated",
    "participant.removed",
    "comment.posted",
    "prompt.submitted",
    "prompt.edited",
    "prompt.approved",
    "prompt.rejected",
    "prompt.withdrawn",
    "prompt.started",
    "prompt.cancel_requested",
    "agent.output",
    "agent.permission_requested",
    "agent.permission_resolved",
    "prompt.completed",
    "prompt.failed",
    "prompt.cancelled",
    "agent.started",
    "agent.commands_updated",
    "agent.mode_requested",
    "agent.mode_changed",
    "agent.mode_change_failed",
    "agent.title_changed",
];

/// Each variant's place in `CATALOG`. Exhaustive on purpose: a new variant breaks
/// the build here until it has a sample below.
fn catalog_index(payload: &EventPayload) -> usize {
    match payload {
        EventPayload::SessionCreated(_) => 0,
        EventPayload::SessionUpdated { .. } => 1,
        EventPayload::SessionClosed { .. } => 2,
        EventPayload::ParticipantJoined(_) => 3,
        EventPayload::ParticipantLeft { .. } => 4,
        EventPayload::ParticipantUpdated { .. } => 5,
        EventPayload::ParticipantRemoved { .. } => 6,
        EventPayload::CommentPosted(_) => 7,
        EventPayload::PromptSubmitted(_) => 8,
        EventPayload::PromptEdited { .. } => 9,
        EventPayload::PromptApproved { .. } => 10,
        EventPayload::PromptRejected { .. } => 11,
        EventPayload::PromptWithdrawn { .. } => 12,
        EventPayload::PromptStarted { .. } => 13,
        EventPayload::PromptCancelRequested { .. } => 14,
        EventPayload::AgentOutput(_) => 15,
        EventPayload::AgentPermissionRequested { .. } => 16,
        EventPayload::AgentPermissionResolved { .. } => 17,
        EventPayload::PromptCompleted { .. } => 18,
        EventPayload::PromptFailed { .. } => 19,
        EventPayload::PromptCancelled { .. } => 20,
        EventPayload::AgentStarted(_) => 21,
        EventPayload::AgentCommandsUpdated(_) => 22,
        EventPayload::AgentModeRequested(_) => 23,
        EventPayload::AgentModeChanged(_) => 24,
        EventPayload::AgentModeChangeFailed(_) => 25,
        EventPayload::AgentTitleChanged(_) => 26,
    }
}

/// Whether a JSON key is camelCase: a lowercase ASCII letter, then letters and digits.
fn is_camel_case(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Every key of Tandem's own JSON is camelCase; the agent's raw JSON (`raw`,
/// `toolCall`) is kept as the agent sent it and not checked, nor are the
/// redaction kinds (`redactions`), which are names of data.
fn assert_camel_case_keys(value: &Value, path: &str) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                assert!(is_camel_case(key), "{path}.{key} is not camelCase");
                if key != "raw" && key != "toolCall" && key != "redactions" {
                    assert_camel_case_keys(inner, &format!("{path}.{key}"));
                }
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                assert_camel_case_keys(inner, &format!("{path}[{i}]"));
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

#[test]
fn the_samples_cover_every_event_type_of_the_catalog() {
    let mut seen = [false; CATALOG.len()];
    for (payload, _) in every_payload() {
        seen[catalog_index(&payload)] = true;
    }
    let missing: Vec<_> = CATALOG
        .iter()
        .zip(seen)
        .filter(|(_, seen)| !seen)
        .map(|(name, _)| name)
        .collect();
    assert!(missing.is_empty(), "no sample of {missing:?}");
}

#[test]
fn every_payload_round_trips_through_type_and_data() {
    for (payload, keys) in every_payload() {
        let event_type = payload.event_type();
        assert_eq!(event_type, CATALOG[catalog_index(&payload)]);
        let data = payload.data();
        let object = data
            .as_object()
            .unwrap_or_else(|| panic!("{event_type}: data is not an object: {data}"));
        let mut actual: Vec<&str> = object.keys().map(String::as_str).collect();
        actual.sort_unstable();
        assert_eq!(actual, keys, "{event_type}: keys of data");
        assert_camel_case_keys(&data, event_type);
        let back = EventPayload::from_parts(event_type, data.clone())
            .unwrap_or_else(|e| panic!("{event_type} does not decode: {e}"));
        assert_eq!(back, payload, "{event_type}");
        // The serde form is the same {type, data} pair.
        assert_eq!(
            serde_json::to_value(&payload).expect("serializes"),
            json!({"type": event_type, "data": data})
        );
    }
}

#[test]
fn only_session_closed_ends_the_stream() {
    for (payload, _) in every_payload() {
        assert_eq!(
            payload.ends_session(),
            payload.event_type() == "session.closed",
            "{}",
            payload.event_type()
        );
    }
}

#[test]
fn payload_values_use_the_stable_text_forms() {
    let data = EventPayload::SessionUpdated {
        title: title("T"),
        mode: SessionMode::CommentOnly,
        permission_policy: PermissionPolicy::RejectAll,
        expires_at: t0(),
    }
    .data();
    assert_eq!(data["mode"], json!("comment_only"));
    assert_eq!(data["permissionPolicy"], json!("reject_all"));
    let data = EventPayload::AgentPermissionResolved {
        request_id: PermissionRequestId::from_uuid(uuid(500)),
        prompt_id: PromptId::from_uuid(uuid(100)),
        outcome: selected("allow-once"),
        cause: PermissionCause::PromptEnded,
        resolved_by: None,
    }
    .data();
    assert_eq!(
        data["outcome"],
        json!({"outcome": "selected", "optionId": "allow-once"})
    );
    assert_eq!(data["cause"], json!("prompt_ended"));
    assert_eq!(data["resolvedBy"], Value::Null);
}

#[test]
fn an_unknown_event_type_does_not_decode() {
    let err = EventPayload::from_parts("session.exploded", json!({})).expect_err("unknown type");
    assert_eq!(err.event_type, "session.exploded");
    assert!(EventPayload::from_parts("", json!({})).is_err());
    // A known type with the wrong shape does not decode either.
    assert!(EventPayload::from_parts("prompt.started", json!({})).is_err());
    assert!(
        EventPayload::from_parts(
            "prompt.started",
            json!({"prompt_id": uuid(100).to_string()})
        )
        .is_err()
    );
    assert!(EventPayload::from_parts("prompt.started", json!("not an object")).is_err());
    // Stored text is re-checked: a blank comment does not come back.
    assert!(
        EventPayload::from_parts(
            "comment.posted",
            json!({
                "id": uuid(60).to_string(),
                "authorParticipantId": uuid(11).to_string(),
                "text": "   ",
                "createdAt": "2025-03-01T12:00:00Z"
            })
        )
        .is_err()
    );
}
