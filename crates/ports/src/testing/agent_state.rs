//! The storage contract of the session's agent state: written with its events
//! under optimistic versioning, read back exactly, and its workspace cleanup
//! recorded and found after the session ended.

use tandem_domain::{
    AgentCommand, AgentCommandsUpdated, AgentMode, AgentModeChangeFailed, AgentModeChanged,
    AgentModeId, AgentModeRequested, AgentReport, AgentStarted, AgentState, AgentTitleChanged,
    EventPayload, ModeRequest, ParticipantId, Resumption, SessionId, Workspace, WorkspaceCleanup,
    WorkspaceKind,
};

use super::fixtures::{NewSession, at, session};
use crate::{Change, SessionStore, StoreError, Write};

async fn create<S: SessionStore>(store: &S, new: &NewSession) {
    store
        .apply(new.change())
        .await
        .unwrap_or_else(|e| panic!("creating a session failed: {e}"));
}

fn workspace(kind: WorkspaceKind, session_id: SessionId) -> Workspace {
    Workspace {
        kind,
        path: format!("/srv/tandem/{session_id}"),
        branch: (kind == WorkspaceKind::Worktree).then(|| format!("tandem/{session_id}")),
    }
}

/// The agent state of a first start in `kind` of workspace, with everything an
/// agent can report, and the change that stores it.
fn first_start(new: &NewSession, kind: WorkspaceKind) -> (AgentState, Change) {
    let session_id = new.created.session.id;
    let mode = |id: &str| AgentModeId::parse(id).expect("mode id");
    let report = AgentReport {
        commands: Some(vec![AgentCommand {
            name: "review".into(),
            description: "Review the diff «as is»".into(),
            input_hint: Some("focus".into()),
        }]),
        modes: Some(vec![
            AgentMode {
                id: mode("ask"),
                name: "Ask".into(),
                description: None,
            },
            AgentMode {
                id: mode("code"),
                name: "Code".into(),
                description: Some("Edits files".into()),
            },
        ]),
        current_mode: Some(mode("ask")),
        title: Some("Fix the login test".into()),
    };
    let started = AgentStarted {
        agent_session_id: "agent-1".into(),
        resumption: Resumption::New,
        load_session: true,
        workspace: Some(workspace(kind, session_id)),
        resume_error: None,
    };
    let t = AgentState::started(session_id, None, started, &report, at(5));
    let change = Change::new(session_id)
        .write(Write::InsertAgentState(t.state.clone()))
        .events(t.events);
    (t.state, change)
}

/// The state is stored with its events, read back exactly, updated only from
/// the version read, and a session has at most one.
pub async fn agent_states_round_trip_under_versions<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let session_id = new.created.session.id;
    assert_eq!(store.agent_state(session_id).await.expect("read"), None);

    let (state, change) = first_start(&new, WorkspaceKind::Worktree);
    let events = store.apply(change.clone()).await.expect("insert");
    assert_eq!(
        events
            .iter()
            .map(|e| e.payload.event_type())
            .collect::<Vec<_>>(),
        [
            "agent.started",
            "agent.commands_updated",
            "agent.mode_changed",
            "agent.title_changed"
        ]
    );
    assert_eq!(
        store.agent_state(session_id).await.expect("read"),
        Some(state.clone())
    );
    assert!(matches!(
        store.apply(change).await,
        Err(StoreError::Duplicate)
    ));

    let stored = store.session(session_id).await.expect("session").clone();
    let requested = state
        .request_mode(
            &stored,
            &new.created.host,
            AgentModeId::parse("code").expect("mode"),
            at(6),
        )
        .expect("the host requests a mode");
    store
        .apply(
            Change::new(session_id)
                .write(Write::UpdateAgentState(requested.state.clone()))
                .events(requested.events),
        )
        .await
        .expect("update");
    let read = store
        .agent_state(session_id)
        .await
        .expect("read")
        .expect("a state");
    assert_eq!(read.version, 1);
    assert_eq!(
        read.mode_request,
        Some(ModeRequest {
            mode_id: AgentModeId::parse("code").expect("mode"),
            by: new.created.host.id,
        })
    );
    assert_eq!(
        read,
        AgentState {
            version: 1,
            ..requested.state.clone()
        }
    );

    // An update from the version read before is stale.
    let outdated =
        requested
            .state
            .mode_refused(read.mode_request.as_ref().expect("pending"), "no", at(7));
    assert!(matches!(
        store
            .apply(
                Change::new(session_id)
                    .write(Write::UpdateAgentState(outdated.state))
                    .events(outdated.events),
            )
            .await,
        Err(StoreError::Conflict)
    ));
    let cleared = AgentState {
        workspace: None,
        commands: Vec::new(),
        modes: Vec::new(),
        current_mode: None,
        mode_request: None,
        title: None,
        ..read.clone()
    };
    store
        .apply(Change::new(session_id).write(Write::UpdateAgentState(cleared.clone())))
        .await
        .expect("empty values round-trip too");
    assert_eq!(
        store.agent_state(session_id).await.expect("read"),
        Some(AgentState {
            version: 2,
            ..cleared
        })
    );
}

/// Ended sessions with an own workspace not cleaned up are found (when no
/// replica holds their lease) until their cleanup is recorded, which an ended
/// session still takes.
pub async fn workspace_cleanups_are_found_after_the_session_ended<S: SessionStore>(store: S) {
    let own = session();
    let shared = session();
    let active = session();
    let leased = session();
    for (new, kind) in [
        (&own, WorkspaceKind::Directory),
        (&shared, WorkspaceKind::Shared),
        (&active, WorkspaceKind::Worktree),
        (&leased, WorkspaceKind::Worktree),
    ] {
        create(&store, new).await;
        store
            .apply(first_start(new, kind).1)
            .await
            .expect("agent state");
    }
    let awaiting = |now| store.sessions_awaiting_cleanup(at(now), 10);
    assert!(
        awaiting(10).await.expect("awaiting").is_empty(),
        "active sessions keep their workspaces"
    );
    for new in [&own, &shared, &leased] {
        let current = store
            .session(new.created.session.id)
            .await
            .expect("session");
        let closed = current
            .close(&new.created.host, None, at(8))
            .expect("close");
        store
            .apply(
                Change::new(current.id)
                    .write(Write::UpdateSession(closed.state))
                    .events(closed.events),
            )
            .await
            .expect("close");
    }
    assert!(
        store
            .acquire_agent_lease(leased.created.session.id, "r1", at(9), at(30))
            .await
            .expect("lease")
    );
    assert_eq!(
        awaiting(10).await.expect("awaiting"),
        vec![own.created.session.id]
    );
    let mut expired = awaiting(30).await.expect("awaiting");
    expired.sort();
    let mut expected = vec![own.created.session.id, leased.created.session.id];
    expected.sort();
    assert_eq!(expired, expected, "an expired lease frees the cleanup");
    assert_eq!(
        store
            .sessions_awaiting_cleanup(at(30), 1)
            .await
            .expect("awaiting")
            .len(),
        1
    );

    store
        .record_workspace_cleanup(own.created.session.id, WorkspaceCleanup::Kept)
        .await
        .expect("recorded after the end");
    let state = store
        .agent_state(own.created.session.id)
        .await
        .expect("read")
        .expect("state");
    assert_eq!(state.workspace_cleanup, Some(WorkspaceCleanup::Kept));
    assert_eq!(state.version, 1);
    assert_eq!(
        awaiting(30).await.expect("awaiting"),
        vec![leased.created.session.id]
    );
    assert!(matches!(
        store
            .record_workspace_cleanup(
                SessionId::from_uuid(uuid::Uuid::now_v7()),
                WorkspaceCleanup::Removed
            )
            .await,
        Err(StoreError::NotFound)
    ));
}

/// One payload of every agent session-level event type, for the round trip of
/// every event type.
pub(super) fn every_agent_payload(host: ParticipantId) -> Vec<EventPayload> {
    let mode = AgentModeId::parse("plan").expect("mode");
    vec![
        EventPayload::AgentStarted(AgentStarted {
            agent_session_id: "agent-\u{e9}".into(),
            resumption: Resumption::Fresh,
            load_session: false,
            workspace: Some(Workspace {
                kind: WorkspaceKind::Worktree,
                path: "/srv/w/1".into(),
                branch: Some("tandem/1".into()),
            }),
            resume_error: Some("unknown session".into()),
        }),
        EventPayload::AgentCommandsUpdated(AgentCommandsUpdated {
            commands: vec![AgentCommand {
                name: "init".into(),
                description: "Write CLAUDE.md".into(),
                input_hint: None,
            }],
        }),
        EventPayload::AgentModeRequested(AgentModeRequested {
            mode_id: mode.clone(),
            requested_by: host,
        }),
        EventPayload::AgentModeChanged(AgentModeChanged {
            current_mode_id: Some(mode.clone()),
            available_modes: vec![AgentMode {
                id: mode.clone(),
                name: "Plan".into(),
                description: None,
            }],
            changed_by: None,
        }),
        EventPayload::AgentModeChangeFailed(AgentModeChangeFailed {
            mode_id: mode,
            requested_by: host,
            error: "refused".into(),
        }),
        EventPayload::AgentTitleChanged(AgentTitleChanged { title: None }),
    ]
}
