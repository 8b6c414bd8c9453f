//! The `acp` executor: every agent session is its own subprocess speaking the Agent
//! Client Protocol (v1) over stdio, through the `agent-client-protocol` crate.

mod client;
mod excerpt;
mod process;
mod session;
mod update;
mod workspace;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_client_protocol::ErrorCode;
use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    AuthMethod, AuthenticateRequest, ClientCapabilities, Implementation, InitializeRequest,
    InitializeResponse, LoadSessionRequest, NewSessionRequest, SessionModeState,
};
use async_trait::async_trait;
use tandem_domain::{
    AgentProfileName, AgentStarted, Resumption, SessionId, Workspace, WorkspaceCleanup,
};
use tandem_ports::{AgentError, AgentExecutor, AgentSession, AgentStart};

use self::client::Connection;
use self::process::AgentProcess;
use self::session::AcpSession;
pub use self::workspace::{Cleanup, WorkspaceConfig};

/// How to run one ACP agent: the command and its arguments, extra environment
/// variables (added to the server's own), where each session's agent works
/// (also its ACP `cwd`), and the authentication method to use when the agent
/// asks for one.
///
/// The agent inherits the server's environment except the variables named in
/// `withheld_env` (the server's own secrets, such as its database URL: an agent
/// runs tools on collaborators' prompts and must not see them). `env` is added
/// after, so a profile can still pass any variable on purpose.
#[derive(Clone, PartialEq, Eq)]
pub struct AcpProfile {
    pub command: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub workspace: WorkspaceConfig,
    /// The id of one of the agent's authentication methods, used when the agent
    /// answers that authentication is required.
    pub auth_method: Option<String>,
    pub withheld_env: BTreeSet<String>,
}

impl AcpProfile {
    /// A profile that runs `command` with no arguments, no extra environment, in
    /// the server's current directory.
    pub fn new(command: impl Into<PathBuf>) -> Self {
        Self {
            command: command.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            workspace: WorkspaceConfig::default(),
            auth_method: None,
            withheld_env: BTreeSet::new(),
        }
    }
}

/// `env` values are often keys: `Debug` (and so any log of a profile) shows
/// only their names.
impl std::fmt::Debug for AcpProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpProfile")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("workspace", &self.workspace)
            .field("auth_method", &self.auth_method)
            .field("withheld_env", &self.withheld_env)
            .finish()
    }
}

/// Starts ACP agents from the configured profiles: one process (in its own
/// process group) per agent session, spoken to with the `agent-client-protocol`
/// crate (protocol v1).
///
/// A session's `prompt` forwards every `session/update` in order and waits for
/// room in its `updates` channel, so nothing is dropped: read the channel while
/// the prompt runs. Permission requests are answered with what arrives on their
/// `reply` (`cancelled` if it is dropped or the prompt is cancelled). An agent that
/// exits or breaks the pipe fails the prompt with `AgentError::Crashed`, quoting
/// its exit status and last stderr lines; that session is then unusable.
#[derive(Debug, Clone)]
pub struct AcpExecutor {
    profiles: BTreeMap<AgentProfileName, AcpProfile>,
    startup_timeout: Duration,
}

impl AcpExecutor {
    /// How long an agent may take to start, answer `initialize` and create its
    /// session, unless changed with [`AcpExecutor::with_startup_timeout`].
    pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

    /// An executor for these profiles (server configuration, never client input).
    pub fn new(profiles: BTreeMap<AgentProfileName, AcpProfile>) -> Self {
        Self {
            profiles,
            startup_timeout: Self::DEFAULT_STARTUP_TIMEOUT,
        }
    }

    /// Changes how long `start` waits for an agent to be ready.
    #[must_use]
    pub fn with_startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Whether a profile of this name is configured.
    pub fn has_profile(&self, name: &AgentProfileName) -> bool {
        self.profiles.contains_key(name)
    }
}

#[async_trait]
impl AgentExecutor for AcpExecutor {
    async fn start(&self, request: AgentStart) -> Result<Box<dyn AgentSession>, AgentError> {
        let profile = self
            .profiles
            .get(&request.profile)
            .ok_or_else(|| AgentError::UnknownProfile(request.profile.to_string()))?;
        let resume = request.resume.as_ref();
        let (cwd, workspace) = profile
            .workspace
            .prepare(
                request.session_id,
                resume.and_then(|resume| resume.workspace.as_ref()),
                &profile.withheld_env,
            )
            .await?;
        let (process, stdin, stdout) = AgentProcess::spawn(profile, &cwd)?;
        let connection = Connection::open(stdin, stdout).await?;
        let resume_id = resume.map(|resume| resume.agent_session_id.as_str());
        let handshake = handshake(&connection, &cwd, profile, resume_id);
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(self.startup_timeout, handshake) => outcome,
            _ = process.exited() => Ok(Err(None)),
        };
        match outcome {
            Ok(Ok(opened)) => {
                tracing::info!(
                    session_id = %request.session_id,
                    profile = %request.profile,
                    pid = process.pid(),
                    resumption = %opened.resumption,
                    "Started an ACP agent."
                );
                if let Some(modes) = opened.modes {
                    let (modes, current) = update::modes(modes);
                    connection.reports().send_modify(|report| {
                        report.modes = Some(modes);
                        report.current_mode = current;
                    });
                }
                let started = AgentStarted {
                    agent_session_id: opened.agent_session_id,
                    resumption: opened.resumption,
                    load_session: opened.load_session,
                    workspace: Some(workspace),
                    resume_error: opened.resume_error,
                };
                Ok(Box::new(AcpSession::new(started, connection, process)))
            }
            Ok(Err(error)) => {
                let error = match error {
                    Some(error) => error,
                    None => AgentError::Unavailable(process.describe_exit().await),
                };
                process.kill().await;
                Err(error)
            }
            Err(_elapsed) => {
                process.kill().await;
                Err(AgentError::Unavailable(format!(
                    "the agent did not get ready within {} s",
                    self.startup_timeout.as_secs_f32()
                )))
            }
        }
    }

    async fn release_workspace(
        &self,
        profile: &AgentProfileName,
        session_id: SessionId,
        workspace: &Workspace,
    ) -> WorkspaceCleanup {
        if let Some(acp) = self.profiles.get(profile) {
            acp.workspace
                .release(session_id, workspace, &acp.withheld_env)
                .await
        } else {
            tracing::warn!(%session_id, %profile, "A session's profile is gone; keeping its workspace.");
            WorkspaceCleanup::Kept
        }
    }
}

/// What the handshake opened.
struct Opened {
    agent_session_id: String,
    resumption: Resumption,
    load_session: bool,
    resume_error: Option<String>,
    modes: Option<SessionModeState>,
}

/// Why the handshake failed: `None` when the agent is gone (its exit explains
/// why), else the error to report.
type Failed = Option<AgentError>;

fn failed(error: &agent_client_protocol::Error) -> Failed {
    if client::is_disconnect(error) {
        None
    } else {
        Some(AgentError::Protocol(client::describe(error)))
    }
}

fn auth_required(error: &agent_client_protocol::Error) -> bool {
    error.code == ErrorCode::AUTH_REQUIRED
}

/// `initialize`, then `session/load` of `resume` where the agent can load
/// sessions, else (or if loading fails) `session/new`; `authenticate` with the
/// profile's method once, when the agent answers that it is required.
async fn handshake(
    connection: &Connection,
    cwd: &Path,
    profile: &AcpProfile,
    resume: Option<&str>,
) -> Result<Opened, Failed> {
    let initialized = connection
        .cx()
        .send_request(
            InitializeRequest::new(ProtocolVersion::V1)
                .client_capabilities(ClientCapabilities::new())
                .client_info(Implementation::new("tandem", env!("CARGO_PKG_VERSION"))),
        )
        .block_task()
        .await
        .map_err(|error| failed(&error))?;
    if initialized.protocol_version != ProtocolVersion::V1 {
        return Err(Some(AgentError::Protocol(format!(
            "the agent speaks ACP protocol version {}, Tandem speaks version 1",
            initialized.protocol_version
        ))));
    }
    let load_session = initialized.agent_capabilities.load_session;
    let mut authenticated = false;
    let mut resume_error = None;
    if let Some(id) = resume.filter(|_| load_session) {
        loop {
            let request = LoadSessionRequest::new(id.to_owned(), cwd.to_owned());
            match connection.cx().send_request(request).block_task().await {
                Ok(loaded) => {
                    return Ok(Opened {
                        agent_session_id: id.to_owned(),
                        resumption: Resumption::Loaded,
                        load_session,
                        resume_error: None,
                        modes: loaded.modes,
                    });
                }
                Err(error) if auth_required(&error) && !authenticated => {
                    authenticate(connection, profile, &initialized).await?;
                    authenticated = true;
                }
                Err(error) if client::is_disconnect(&error) => return Err(None),
                Err(error) => {
                    tracing::warn!(code = %error.code, "An agent could not load its earlier session; starting a new one.");
                    resume_error = Some(excerpt::bounded(&client::describe(&error), 500));
                    break;
                }
            }
        }
    }
    loop {
        let request = NewSessionRequest::new(cwd.to_owned());
        match connection.cx().send_request(request).block_task().await {
            Ok(created) => {
                let resumption = if resume.is_some() {
                    Resumption::Fresh
                } else {
                    Resumption::New
                };
                return Ok(Opened {
                    agent_session_id: created.session_id.to_string(),
                    resumption,
                    load_session,
                    resume_error,
                    modes: created.modes,
                });
            }
            Err(error) if auth_required(&error) && !authenticated => {
                authenticate(connection, profile, &initialized).await?;
                authenticated = true;
            }
            Err(error) if auth_required(&error) => {
                return Err(Some(AgentError::AuthRequired(format!(
                    "it still asks for authentication after `{}`",
                    profile.auth_method.as_deref().unwrap_or_default()
                ))));
            }
            Err(error) => return Err(failed(&error)),
        }
    }
}

/// Authenticates with the profile's method, which the agent must offer.
async fn authenticate(
    connection: &Connection,
    profile: &AcpProfile,
    initialized: &InitializeResponse,
) -> Result<(), Failed> {
    let offered = offered_methods(&initialized.auth_methods);
    let Some(method) = profile.auth_method.as_deref() else {
        return Err(Some(AgentError::AuthRequired(format!(
            "set auth_method in the agent profile to one of the methods it offers: {offered}"
        ))));
    };
    if !initialized
        .auth_methods
        .iter()
        .any(|offered| offered.id().to_string() == method)
    {
        return Err(Some(AgentError::AuthRequired(format!(
            "the profile's auth_method `{method}` is not one the agent offers: {offered}"
        ))));
    }
    match connection
        .cx()
        .send_request(AuthenticateRequest::new(method.to_owned()))
        .block_task()
        .await
    {
        Ok(_) => {
            tracing::info!(method, "Authenticated with an ACP agent.");
            Ok(())
        }
        Err(error) if client::is_disconnect(&error) => Err(None),
        Err(error) => Err(Some(AgentError::AuthRequired(format!(
            "authenticating with `{method}` failed: {}",
            client::describe(&error)
        )))),
    }
}

/// The agent's authentication methods for a message: `` `id` (name), ... ``.
fn offered_methods(methods: &[AuthMethod]) -> String {
    if methods.is_empty() {
        return "it offers none".to_owned();
    }
    methods
        .iter()
        .map(|method| {
            let name = serde_json::to_value(method).ok().and_then(|value| {
                value
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            });
            match name {
                Some(name) => format!("`{}` ({name})", method.id()),
                None => format!("`{}`", method.id()),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
