//! The session's agent as participants see it: where it works (its workspace),
//! whether it resumed the session's conversation, the commands and modes it
//! offers, and its own title for the session.
//!
//! This is session-level state: it changes through events of its own
//! (`agent.started`, `agent.commands_updated`, `agent.mode_*`,
//! `agent.title_changed`), never through a prompt's output.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Transition;
use crate::access::{self, Action};
use crate::enums::string_enum;
use crate::error::{DomainError, ValidationError};
use crate::event::{Actor, EventPayload, NewEvent};
use crate::ids::{ParticipantId, SessionId};
use crate::participant::Participant;
use crate::payload_types::payload_types;
use crate::session::Session;
use crate::text::check_label;

payload_types! {
    $ __payload_types_agent;

    string_enum! {
        /// Where a session's agent works.
        WorkspaceKind("workspace kind") {
            /// The profile's one `working_dir`, shared by every session of the profile.
            Shared => "shared",
            /// A directory of the session's own, made from the profile's template.
            Directory => "directory",
            /// A git worktree of the session's own, on a branch of its own.
            Worktree => "worktree",
        }
    }

    /// Where a session's agent works: a directory on the server, and for a git
    /// worktree, its branch.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Workspace {
        pub kind: WorkspaceKind,
        /// The absolute path of the directory the agent works in.
        pub path: String,
        /// The worktree's branch (`tandem/<session id>`); `None` for other kinds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub branch: Option<String>,
    }

    string_enum! {
        /// How an agent's start relates to the session's conversation so far.
        Resumption("resumption") {
            /// The session's first agent: a new conversation.
            New => "new",
            /// The agent loaded the session's conversation (`session/load`) and goes on
            /// with it.
            Loaded => "loaded",
            /// The session had a conversation, but this agent could not resume it (it
            /// cannot load sessions, or loading failed): it starts a new one.
            Fresh => "fresh",
        }
    }

    /// The id of a mode an agent offers (`default`, `plan`, `acceptEdits`, ...):
    /// 1..=256 characters, no control characters.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(try_from = "String", into = "String")]
    pub struct AgentModeId(String);

    /// A mode the agent offers (ACP session modes).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AgentMode {
        pub id: AgentModeId,
        pub name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
    }

    /// A command the agent offers: typed as `/name input` at the start of a prompt.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AgentCommand {
        /// The name, without the slash.
        pub name: String,
        pub description: String,
        /// What to type after the name, when the command takes input.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input_hint: Option<String>,
    }

    /// `agent.started`: an agent process started for the session.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AgentStarted {
        /// The agent's own id for its session.
        pub agent_session_id: String,
        pub resumption: Resumption,
        /// Whether the agent can resume a conversation (`loadSession`), so that a
        /// restart of the server keeps it.
        pub load_session: bool,
        /// Where it works; `None` for agents without a directory (OpenAI endpoints).
        pub workspace: Option<Workspace>,
        /// Why loading the earlier conversation failed, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resume_error: Option<String>,
    }

    /// `agent.commands_updated`: the commands the agent offers now.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AgentCommandsUpdated {
        pub commands: Vec<AgentCommand>,
    }

    /// `agent.mode_requested`: the host asked to switch the agent's mode.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AgentModeRequested {
        pub mode_id: AgentModeId,
        pub requested_by: ParticipantId,
    }

    /// `agent.mode_changed`: the agent's modes or its current mode changed.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AgentModeChanged {
        /// `None` when the agent offers no modes.
        pub current_mode_id: Option<AgentModeId>,
        pub available_modes: Vec<AgentMode>,
        /// The host whose request switched it; `None` when the agent did.
        pub changed_by: Option<ParticipantId>,
    }

    /// `agent.mode_change_failed`: the agent refused the host's mode switch.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AgentModeChangeFailed {
        pub mode_id: AgentModeId,
        pub requested_by: ParticipantId,
        pub error: String,
    }

    /// `agent.title_changed`: the agent's own title for the session.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AgentTitleChanged {
        /// `None` once the agent cleared it.
        pub title: Option<String>,
    }
}

string_enum! {
    /// What became of a session's own workspace once the session ended.
    WorkspaceCleanup("workspace cleanup") {
        /// Deleted (and, for a worktree, its branch too).
        Removed => "removed",
        /// Left in place: the profile keeps workspaces, or this one has changes.
        Kept => "kept",
        /// Removing it failed; it is left as it was.
        Failed => "failed",
    }
}

impl Workspace {
    /// Whether the workspace is the session's own (created for it, cleaned up
    /// after it), rather than a directory shared with other sessions.
    pub const fn is_own(&self) -> bool {
        match self.kind {
            WorkspaceKind::Shared => false,
            WorkspaceKind::Directory | WorkspaceKind::Worktree => true,
        }
    }
}

impl AgentModeId {
    /// The longest accepted id, in characters.
    pub const MAX_CHARS: usize = 256;

    /// Parses a mode id: not blank, 1..=256 characters, no control characters;
    /// kept as given (the agent defined it).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        check_label("modeId", raw, Self::MAX_CHARS)?;
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentModeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AgentModeId {
    type Error = ValidationError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<AgentModeId> for String {
    fn from(id: AgentModeId) -> Self {
        id.0
    }
}

/// What the agent last said about its session (through ACP session updates and
/// its answers to `session/new` and `session/load`). `None`: not said yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentReport {
    pub commands: Option<Vec<AgentCommand>>,
    /// The modes offered.
    pub modes: Option<Vec<AgentMode>>,
    pub current_mode: Option<AgentModeId>,
    /// The agent's title for the session; an empty title clears it.
    pub title: Option<String>,
}

/// The host's pending request to switch the agent's mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeRequest {
    pub mode_id: AgentModeId,
    pub by: ParticipantId,
}

/// The session's agent: what the last agent that ran for the session reported,
/// and what a restart needs to resume it. Created when the first agent starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    pub session_id: SessionId,
    /// Whether the agent said it can load sessions (`loadSession`).
    pub load_session: bool,
    pub workspace: Option<Workspace>,
    /// Set once the session ended and its own workspace was cleaned up.
    pub workspace_cleanup: Option<WorkspaceCleanup>,
    pub commands: Vec<AgentCommand>,
    pub modes: Vec<AgentMode>,
    pub current_mode: Option<AgentModeId>,
    pub mode_request: Option<ModeRequest>,
    pub title: Option<String>,
    /// Optimistic-concurrency version, bumped by the store on every update.
    pub version: u32,
}

impl AgentState {
    /// The longest agent title kept, in characters; longer ones are cut.
    pub const MAX_TITLE_CHARS: usize = 500;

    /// The state of a session whose agent never started.
    pub const fn empty(session_id: SessionId) -> Self {
        Self {
            session_id,
            load_session: false,
            workspace: None,
            workspace_cleanup: None,
            commands: Vec::new(),
            modes: Vec::new(),
            current_mode: None,
            mode_request: None,
            title: None,
            version: 0,
        }
    }

    /// An agent started for the session (`previous`: the state its last agent
    /// left, if any): `agent.started`, then an event for each of the commands,
    /// modes and title that differ from before. A new conversation starts with
    /// what the agent reports and nothing else; a loaded one keeps what it had.
    pub fn started(
        session_id: SessionId,
        previous: Option<&Self>,
        started: AgentStarted,
        report: &AgentReport,
        now: DateTime<Utc>,
    ) -> Transition<Self> {
        let before = previous.cloned().unwrap_or_else(|| Self::empty(session_id));
        let mut state = match started.resumption {
            Resumption::Loaded => before.clone(),
            Resumption::New | Resumption::Fresh => Self {
                commands: Vec::new(),
                modes: Vec::new(),
                current_mode: None,
                title: None,
                ..before.clone()
            },
        };
        state.load_session = started.load_session;
        state.workspace.clone_from(&started.workspace);
        state.workspace_cleanup = None;
        state.apply(report);
        let mut events = vec![NewEvent::new(
            now,
            Actor::Agent,
            EventPayload::AgentStarted(started),
        )];
        events.extend(before.changes_to(&state, now));
        Transition { state, events }
    }

    /// The agent reported on its session: an event for each of its commands,
    /// modes and title that changed; `None` if nothing did.
    pub fn observe(&self, report: &AgentReport, now: DateTime<Utc>) -> Option<Transition<Self>> {
        let mut state = self.clone();
        state.apply(report);
        let events = self.changes_to(&state, now);
        (!events.is_empty()).then_some(Transition { state, events })
    }

    /// The host asks to switch the agent to one of the modes it offers. The
    /// session's runner passes it on to the agent (now, or when it next starts).
    pub fn request_mode(
        &self,
        session: &Session,
        by: &Participant,
        mode_id: AgentModeId,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        if self.session_id != session.id {
            return Err(DomainError::WrongSession);
        }
        by.ensure_can_act(session, now)?;
        if !access::may_manage_session(by.role) {
            return Err(DomainError::Forbidden {
                action: Action::ManageSession,
                role: by.role,
            });
        }
        if self.modes.is_empty() {
            return Err(DomainError::AgentModesUnavailable);
        }
        if !self.modes.iter().any(|mode| mode.id == mode_id) {
            return Err(DomainError::UnknownAgentMode);
        }
        let state = Self {
            mode_request: Some(ModeRequest {
                mode_id: mode_id.clone(),
                by: by.id,
            }),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(by.id),
            EventPayload::AgentModeRequested(AgentModeRequested {
                mode_id,
                requested_by: by.id,
            }),
        );
        Ok(Transition::new(state, event))
    }

    /// The agent took the mode `request` asked for. The request is done unless
    /// a newer one replaced it meanwhile.
    #[must_use]
    pub fn mode_switched(&self, request: &ModeRequest, now: DateTime<Utc>) -> Transition<Self> {
        let state = Self {
            current_mode: Some(request.mode_id.clone()),
            mode_request: self.newer_request_than(request),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(request.by),
            EventPayload::AgentModeChanged(AgentModeChanged {
                current_mode_id: state.current_mode.clone(),
                available_modes: state.modes.clone(),
                changed_by: Some(request.by),
            }),
        );
        Transition::new(state, event)
    }

    /// The agent refused the mode `request` asked for (`error` says why). The
    /// request is done unless a newer one replaced it meanwhile.
    #[must_use]
    pub fn mode_refused(
        &self,
        request: &ModeRequest,
        error: &str,
        now: DateTime<Utc>,
    ) -> Transition<Self> {
        let state = Self {
            mode_request: self.newer_request_than(request),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Agent,
            EventPayload::AgentModeChangeFailed(AgentModeChangeFailed {
                mode_id: request.mode_id.clone(),
                requested_by: request.by,
                error: error.to_owned(),
            }),
        );
        Transition::new(state, event)
    }

    fn newer_request_than(&self, request: &ModeRequest) -> Option<ModeRequest> {
        self.mode_request
            .clone()
            .filter(|pending| pending != request)
    }

    /// Takes in what the agent reported.
    fn apply(&mut self, report: &AgentReport) {
        if let Some(commands) = &report.commands {
            self.commands.clone_from(commands);
        }
        if let Some(modes) = &report.modes {
            self.modes.clone_from(modes);
        }
        if let Some(current) = &report.current_mode {
            self.current_mode = Some(current.clone());
        }
        if let Some(title) = &report.title {
            let title: String = title.trim().chars().take(Self::MAX_TITLE_CHARS).collect();
            self.title = (!title.is_empty()).then_some(title);
        }
    }

    /// The agent's events for what differs from `self` in `after`.
    fn changes_to(&self, after: &Self, now: DateTime<Utc>) -> Vec<NewEvent> {
        let mut events = Vec::new();
        if after.commands != self.commands {
            events.push(NewEvent::new(
                now,
                Actor::Agent,
                EventPayload::AgentCommandsUpdated(AgentCommandsUpdated {
                    commands: after.commands.clone(),
                }),
            ));
        }
        if after.modes != self.modes || after.current_mode != self.current_mode {
            events.push(NewEvent::new(
                now,
                Actor::Agent,
                EventPayload::AgentModeChanged(AgentModeChanged {
                    current_mode_id: after.current_mode.clone(),
                    available_modes: after.modes.clone(),
                    changed_by: None,
                }),
            ));
        }
        if after.title != self.title {
            events.push(NewEvent::new(
                now,
                Actor::Agent,
                EventPayload::AgentTitleChanged(AgentTitleChanged {
                    title: after.title.clone(),
                }),
            ));
        }
        events
    }
}
