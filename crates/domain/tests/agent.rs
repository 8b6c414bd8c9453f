//! The session's agent state: what an agent's start records, what its reports
//! change (and only what changes), and the host's mode requests.

use chrono::{DateTime, TimeDelta, Utc};
use tandem_domain::{
    Action, Actor, AgentCommand, AgentMode, AgentModeId, AgentReport, AgentStarted, AgentState,
    DisplayName, DomainError, EventPayload, InviteId, Joiner, ModeRequest, Participant,
    ParticipantId, Resumption, Role, Session, SessionId, SessionSettings, TextLimits, Workspace,
    WorkspaceId, WorkspaceKind,
};
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
        .expect("a valid RFC 3339 timestamp")
        .with_timezone(&Utc)
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

fn joiner(n: u128, name: &str) -> Joiner {
    Joiner {
        id: ParticipantId::from_uuid(Uuid::from_u128(n)),
        display_name: DisplayName::parse(name, &TextLimits::DEFAULT).expect("a name"),
        user_id: None,
    }
}

/// A session, its host and a collaborator.
fn session() -> (Session, Participant, Participant) {
    let created = Session::create(
        SessionId::from_uuid(Uuid::from_u128(1)),
        WorkspaceId::default_workspace(),
        SessionSettings::default(),
        joiner(10, "Hana"),
        InviteId::from_uuid(Uuid::from_u128(20)),
        t0(),
    );
    let collaborator =
        Participant::join(&created.session, &created.invite, joiner(11, "Cole"), t0())
            .expect("the invite works");
    (created.session, created.host, collaborator.participant)
}

fn mode_id(raw: &str) -> AgentModeId {
    AgentModeId::parse(raw).expect("a mode id")
}

fn modes() -> Vec<AgentMode> {
    ["ask", "code"]
        .into_iter()
        .map(|id| AgentMode {
            id: mode_id(id),
            name: id.to_uppercase(),
            description: None,
        })
        .collect()
}

fn command(name: &str) -> AgentCommand {
    AgentCommand {
        name: name.to_owned(),
        description: format!("does {name}"),
        input_hint: None,
    }
}

fn started(resumption: Resumption) -> AgentStarted {
    AgentStarted {
        agent_session_id: "agent-1".to_owned(),
        resumption,
        load_session: true,
        workspace: Some(Workspace {
            kind: WorkspaceKind::Directory,
            path: "/srv/tandem/1".to_owned(),
            branch: None,
        }),
        resume_error: None,
    }
}

fn types(events: &[tandem_domain::NewEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|event| event.payload.event_type())
        .collect()
}

/// The state after a first start that reported modes, commands and a title.
fn running(session: &Session) -> AgentState {
    let report = AgentReport {
        commands: Some(vec![command("review")]),
        modes: Some(modes()),
        current_mode: Some(mode_id("ask")),
        title: Some("Fix the login".to_owned()),
    };
    AgentState::started(session.id, None, started(Resumption::New), &report, t0()).state
}

#[test]
fn a_first_start_records_the_workspace_and_what_the_agent_offers() {
    let (session, _, _) = session();
    let report = AgentReport {
        modes: Some(modes()),
        current_mode: Some(mode_id("ask")),
        ..AgentReport::default()
    };
    let t = AgentState::started(session.id, None, started(Resumption::New), &report, t0());
    assert_eq!(types(&t.events), ["agent.started", "agent.mode_changed"]);
    assert_eq!(t.events[0].actor, Actor::Agent);
    assert!(t.state.load_session);
    assert_eq!(
        t.state.workspace.as_ref().map(|w| w.path.as_str()),
        Some("/srv/tandem/1")
    );
    assert_eq!(t.state.current_mode, Some(mode_id("ask")));
    assert!(t.state.commands.is_empty());
    let EventPayload::AgentModeChanged(changed) = &t.events[1].payload else {
        panic!("a mode change: {:?}", t.events[1]);
    };
    assert_eq!(changed.available_modes, modes());
    assert_eq!(changed.changed_by, None);
}

#[test]
fn a_loaded_conversation_keeps_what_the_agent_offered_before() {
    let (session, _, _) = session();
    let before = running(&session);
    let t = AgentState::started(
        session.id,
        Some(&before),
        started(Resumption::Loaded),
        &AgentReport::default(),
        at(5),
    );
    assert_eq!(types(&t.events), ["agent.started"]);
    assert_eq!(t.state.commands, before.commands);
    assert_eq!(t.state.title, before.title);
    assert_eq!(t.state.current_mode, before.current_mode);
}

#[test]
fn a_fresh_conversation_forgets_commands_modes_and_title_and_says_so() {
    let (session, _, _) = session();
    let before = running(&session);
    let t = AgentState::started(
        session.id,
        Some(&before),
        started(Resumption::Fresh),
        &AgentReport::default(),
        at(5),
    );
    assert_eq!(
        types(&t.events),
        [
            "agent.started",
            "agent.commands_updated",
            "agent.mode_changed",
            "agent.title_changed"
        ]
    );
    assert!(t.state.commands.is_empty() && t.state.modes.is_empty());
    assert_eq!(t.state.title, None);
}

#[test]
fn reports_change_only_what_differs() {
    let (session, _, _) = session();
    let state = running(&session);
    let same = AgentReport {
        commands: Some(vec![command("review")]),
        title: Some("Fix the login".to_owned()),
        ..AgentReport::default()
    };
    assert!(state.observe(&same, at(1)).is_none(), "nothing changed");
    assert!(state.observe(&AgentReport::default(), at(1)).is_none());

    let titled = state
        .observe(
            &AgentReport {
                title: Some("  Fix the logout  ".to_owned()),
                ..same.clone()
            },
            at(2),
        )
        .expect("a new title");
    assert_eq!(types(&titled.events), ["agent.title_changed"]);
    assert_eq!(titled.state.title.as_deref(), Some("Fix the logout"));

    let cleared = titled
        .state
        .observe(
            &AgentReport {
                title: Some(String::new()),
                ..AgentReport::default()
            },
            at(3),
        )
        .expect("cleared");
    assert_eq!(cleared.state.title, None);

    let long = state
        .observe(
            &AgentReport {
                title: Some("x".repeat(AgentState::MAX_TITLE_CHARS + 50)),
                ..AgentReport::default()
            },
            at(4),
        )
        .expect("a long title");
    assert_eq!(
        long.state.title.map(|t| t.chars().count()),
        Some(AgentState::MAX_TITLE_CHARS)
    );

    let switched = state
        .observe(
            &AgentReport {
                current_mode: Some(mode_id("code")),
                commands: Some(vec![command("review"), command("test")]),
                ..AgentReport::default()
            },
            at(5),
        )
        .expect("the agent switched itself");
    assert_eq!(
        types(&switched.events),
        ["agent.commands_updated", "agent.mode_changed"]
    );
}

#[test]
fn the_host_requests_an_offered_mode() {
    let (session, host, collaborator) = session();
    let state = running(&session);
    let t = state
        .request_mode(&session, &host, mode_id("code"), at(1))
        .expect("the host may");
    assert_eq!(types(&t.events), ["agent.mode_requested"]);
    assert_eq!(t.events[0].actor, Actor::Participant(host.id));
    assert_eq!(
        t.state.mode_request,
        Some(ModeRequest {
            mode_id: mode_id("code"),
            by: host.id
        })
    );
    assert_eq!(
        t.state.current_mode,
        Some(mode_id("ask")),
        "not yet switched"
    );

    assert_eq!(
        state.request_mode(&session, &collaborator, mode_id("code"), at(1)),
        Err(DomainError::Forbidden {
            action: Action::ManageSession,
            role: Role::Collaborator
        })
    );
    assert_eq!(
        state.request_mode(&session, &host, mode_id("yolo"), at(1)),
        Err(DomainError::UnknownAgentMode)
    );
    assert_eq!(
        AgentState::empty(session.id).request_mode(&session, &host, mode_id("ask"), at(1)),
        Err(DomainError::AgentModesUnavailable)
    );
    let closed = session.close(&host, None, at(1)).expect("close").state;
    assert!(matches!(
        state.request_mode(&closed, &host, mode_id("code"), at(2)),
        Err(DomainError::SessionInactive(_))
    ));
}

#[test]
fn a_switch_ends_its_request_but_not_a_newer_one() {
    let (session, host, _) = session();
    let requested = running(&session)
        .request_mode(&session, &host, mode_id("code"), at(1))
        .expect("requested")
        .state;
    let request = requested.mode_request.clone().expect("pending");
    let switched = requested.mode_switched(&request, at(2));
    assert_eq!(switched.state.current_mode, Some(mode_id("code")));
    assert_eq!(switched.state.mode_request, None);
    let EventPayload::AgentModeChanged(changed) = &switched.events[0].payload else {
        panic!("a mode change");
    };
    assert_eq!(changed.changed_by, Some(host.id));

    let newer = requested
        .request_mode(&session, &host, mode_id("ask"), at(3))
        .expect("requested again")
        .state;
    let switched = newer.mode_switched(&request, at(4));
    assert_eq!(switched.state.current_mode, Some(mode_id("code")));
    assert_eq!(
        switched.state.mode_request.map(|r| r.mode_id),
        Some(mode_id("ask")),
        "the newer request still waits"
    );

    let refused = requested.mode_refused(&request, "not now", at(5));
    assert_eq!(types(&refused.events), ["agent.mode_change_failed"]);
    assert_eq!(refused.state.mode_request, None);
    assert_eq!(refused.state.current_mode, Some(mode_id("ask")));
}

#[test]
fn mode_ids_are_checked() {
    assert!(AgentModeId::parse("acceptEdits").is_ok());
    assert!(AgentModeId::parse(" ").is_err());
    assert!(AgentModeId::parse("a\u{7}b").is_err());
    assert!(AgentModeId::parse(&"m".repeat(AgentModeId::MAX_CHARS + 1)).is_err());
    assert!(serde_json::from_str::<AgentModeId>("\"\"").is_err());
}

#[test]
fn own_workspaces_are_told_apart_from_shared_ones() {
    let workspace = |kind| Workspace {
        kind,
        path: "/x".to_owned(),
        branch: None,
    };
    assert!(!workspace(WorkspaceKind::Shared).is_own());
    assert!(workspace(WorkspaceKind::Directory).is_own());
    assert!(workspace(WorkspaceKind::Worktree).is_own());
}
