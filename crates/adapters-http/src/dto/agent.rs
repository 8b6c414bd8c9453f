//! The session's agent on the wire: where it works, the commands and modes it
//! offers, its own title; and the host's mode switch.

use serde::{Deserialize, Serialize};
use tandem_domain::{self as domain, AgentModeId};
use tandem_service::Invalid;
use utoipa::ToSchema;
use uuid::Uuid;

use super::enums::{WorkspaceCleanup, WorkspaceKind};
use super::validate::at;

/// Where the agent works.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkspaceResponse {
    pub(crate) kind: WorkspaceKind,
    /// The directory on the server the agent works in.
    #[schema(example = "/srv/tandem/worktrees/0190c7e4-6f5a-7c3e-8a40-1b2c3d4e5f60")]
    pub(crate) path: String,
    /// The worktree's branch (`tandem/<session id>`); `null` for other kinds.
    #[schema(required = true)]
    pub(crate) branch: Option<String>,
    /// What became of a session's own workspace once the session ended; `null`
    /// until then.
    #[schema(required = true)]
    pub(crate) cleanup: Option<WorkspaceCleanup>,
}

/// A command the agent offers: type `/name input` at the start of a prompt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentCommandResponse {
    /// The command's name, without the slash.
    #[schema(example = "review")]
    pub(crate) name: String,
    pub(crate) description: String,
    /// What to type after the name, when the command takes input.
    #[schema(required = true)]
    pub(crate) input_hint: Option<String>,
}

/// A mode the agent offers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentModeResponse {
    #[schema(example = "plan")]
    pub(crate) id: String,
    pub(crate) name: String,
    #[schema(required = true)]
    pub(crate) description: Option<String>,
}

/// The host's mode switch, waiting for the agent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModeRequestResponse {
    pub(crate) mode_id: String,
    /// The host participant who asked.
    pub(crate) requested_by: Uuid,
}

/// The session's agent, as its latest agent process reported it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentResponse {
    /// Whether the agent can resume its conversation after a restart of the
    /// server (`session/load`); without it, a restart starts a new one.
    pub(crate) load_session: bool,
    /// Where the agent works; `null` for agents without a directory.
    #[schema(required = true)]
    pub(crate) workspace: Option<WorkspaceResponse>,
    /// The commands the agent offers.
    pub(crate) commands: Vec<AgentCommandResponse>,
    /// The modes the agent offers (empty if none).
    pub(crate) modes: Vec<AgentModeResponse>,
    /// The agent's current mode.
    #[schema(required = true)]
    pub(crate) current_mode_id: Option<String>,
    /// The host's mode switch not yet taken by the agent.
    #[schema(required = true)]
    pub(crate) requested_mode: Option<ModeRequestResponse>,
    /// The agent's own title for the session.
    #[schema(required = true)]
    pub(crate) title: Option<String>,
}

impl From<&domain::AgentState> for AgentResponse {
    fn from(state: &domain::AgentState) -> Self {
        Self {
            load_session: state.load_session,
            workspace: state.workspace.as_ref().map(|workspace| WorkspaceResponse {
                kind: workspace.kind.into(),
                path: workspace.path.clone(),
                branch: workspace.branch.clone(),
                cleanup: state.workspace_cleanup.map(Into::into),
            }),
            commands: state
                .commands
                .iter()
                .map(|command| AgentCommandResponse {
                    name: command.name.clone(),
                    description: command.description.clone(),
                    input_hint: command.input_hint.clone(),
                })
                .collect(),
            modes: state
                .modes
                .iter()
                .map(|mode| AgentModeResponse {
                    id: mode.id.to_string(),
                    name: mode.name.clone(),
                    description: mode.description.clone(),
                })
                .collect(),
            current_mode_id: state.current_mode.as_ref().map(ToString::to_string),
            requested_mode: state
                .mode_request
                .as_ref()
                .map(|request| ModeRequestResponse {
                    mode_id: request.mode_id.to_string(),
                    requested_by: request.by.as_uuid(),
                }),
            title: state.title.clone(),
        }
    }
}

/// The mode the host wants the agent in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SetAgentModeRequest {
    /// The id of one of the modes the agent offers (`modes` of the session's
    /// `agent`).
    #[schema(example = "plan")]
    pub(crate) mode_id: String,
}

impl SetAgentModeRequest {
    /// The validated mode id.
    pub(crate) fn parse(self) -> Result<AgentModeId, Invalid> {
        at("modeId", AgentModeId::parse(&self.mode_id)).map_err(Invalid::from)
    }
}
