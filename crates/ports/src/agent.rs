//! The agent port: start an agent session, send it prompts, stream its updates,
//! cancel, stop. The executor is picked per agent profile at run time, hence
//! `dyn` traits.

use async_trait::async_trait;
use tandem_domain::{
    AgentModeId, AgentOutputKind, AgentProfileName, AgentReport, AgentStarted, PermissionOption,
    PermissionOutcome, PromptText, SessionId, StopReason, Workspace, WorkspaceCleanup,
};
use tokio::sync::{mpsc, oneshot, watch};

/// Runs agent sessions of one kind (ACP subprocess, OpenAI-compatible endpoint).
#[async_trait]
pub trait AgentExecutor: Send + Sync + 'static {
    /// Starts an agent session for a Tandem session: spawns or connects, then
    /// initializes. Fails with `AgentError::Unavailable` if the agent cannot be
    /// started, `AgentError::Protocol` if it answers nonsense.
    ///
    /// With `request.resume`, it resumes that agent session where the agent can
    /// (`session/load`, in the same workspace), and starts a new one otherwise;
    /// [`AgentSession::started`] says which. An agent that needs authentication
    /// the profile does not provide fails with `AgentError::AuthRequired`.
    async fn start(&self, request: AgentStart) -> Result<Box<dyn AgentSession>, AgentError>;

    /// Cleans up a session's own workspace once the session has ended, as the
    /// profile says: removes it, or keeps it (always, or when it has changes).
    /// Never removes a directory the profile would not have made for this
    /// session; a failure is `WorkspaceCleanup::Failed` (and logged). Executors
    /// without workspaces keep everything.
    async fn release_workspace(
        &self,
        _profile: &AgentProfileName,
        _session_id: SessionId,
        _workspace: &Workspace,
    ) -> WorkspaceCleanup {
        WorkspaceCleanup::Kept
    }
}

/// What an executor needs to start an agent session.
#[derive(Debug, Clone)]
pub struct AgentStart {
    pub session_id: SessionId,
    pub profile: AgentProfileName,
    /// The agent session an earlier agent of this session ran (before a restart,
    /// a takeover or a crash), to resume.
    pub resume: Option<Resume>,
}

/// An earlier agent session of a Tandem session.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The agent's own id for it.
    pub agent_session_id: String,
    /// Where it worked.
    pub workspace: Option<Workspace>,
}

/// One live agent session. Prompts run one at a time; `cancel` may be called from
/// another task while `prompt` runs.
#[async_trait]
pub trait AgentSession: Send + Sync {
    /// The agent's own id for this session.
    fn agent_session_id(&self) -> &str;

    /// How the agent started: a new or a resumed conversation, whether it can
    /// resume one later, and where it works.
    fn started(&self) -> &AgentStarted;

    /// What the agent says about its session (commands, modes, title), as it
    /// last said it: it changes whenever the agent reports, between prompts as
    /// during them, and never goes through a prompt's updates. What an agent
    /// replays while it loads a conversation is not a prompt's output either: it
    /// is never handed to `prompt`'s channel.
    fn reports(&self) -> watch::Receiver<AgentReport>;

    /// Switches the agent to one of the modes it offers (ACP `session/set_mode`);
    /// once it returns, [`AgentSession::reports`] shows the mode as current. May be
    /// called while a prompt runs. `AgentError::Protocol` if the agent refuses.
    async fn set_mode(&self, mode: &AgentModeId) -> Result<(), AgentError>;

    /// Sends a prompt and streams the agent's updates into `updates` until the turn
    /// ends, then returns why it ended. `AgentError::Crashed` if the agent died
    /// (the session is then unusable: start a new one).
    async fn prompt(
        &self,
        text: &PromptText,
        updates: mpsc::Sender<AgentUpdate>,
    ) -> Result<StopReason, AgentError>;

    /// Whether the agent can still take a prompt: false once its process has
    /// exited or its connection broke, even between prompts, so that the runner
    /// starts a new agent instead of failing the next prompt.
    fn is_alive(&self) -> bool {
        true
    }

    /// Asks the agent to stop the running prompt; `prompt` then returns
    /// `StopReason::Cancelled`. Does nothing when no prompt runs.
    async fn cancel(&self) -> Result<(), AgentError>;

    /// Ends the agent session and its process (and the process's children).
    async fn stop(self: Box<Self>);
}

/// Something the agent sent during a prompt.
#[derive(Debug)]
pub enum AgentUpdate {
    /// Output: text chunks, tool calls, plans, or an update of an unknown kind,
    /// with the agent's raw JSON kept.
    Output {
        kind: AgentOutputKind,
        text: Option<String>,
        raw: serde_json::Value,
    },
    /// The agent asks to run a tool; the runner answers through `reply`.
    PermissionRequested {
        tool_call: serde_json::Value,
        options: Vec<PermissionOption>,
        reply: PermissionReply,
    },
}

/// The channel an executor waits on for the answer to a permission request. If it
/// is dropped unanswered, the executor must treat the request as cancelled.
pub type PermissionReply = oneshot::Sender<PermissionOutcome>;

/// Why an agent could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No agent profile with this name is configured.
    #[error("no agent profile named {0}")]
    UnknownProfile(String),
    /// The agent could not be started or reached.
    #[error("the agent is unavailable: {0}")]
    Unavailable(String),
    /// The agent requires authentication, and the profile names no method it
    /// offers (or authenticating with it failed); the text names its methods.
    #[error("the agent requires authentication: {0}")]
    AuthRequired(String),
    /// The agent process exited or the connection broke.
    #[error("the agent crashed: {0}")]
    Crashed(String),
    /// The agent broke the protocol or reported an error.
    #[error("the agent failed: {0}")]
    Protocol(String),
}

impl AgentError {
    /// What kind of failure this is, for logs: the messages may quote the agent's
    /// stderr, which may repeat prompt text, so they go to the prompt's error only.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::UnknownProfile(_) => "unknown profile",
            Self::Unavailable(_) => "unavailable",
            Self::AuthRequired(_) => "authentication required",
            Self::Crashed(_) => "crashed",
            Self::Protocol(_) => "protocol error",
        }
    }
}
