//! The `acp` executor: every agent session is its own subprocess speaking the Agent
//! Client Protocol (v1) over stdio, through the `agent-client-protocol` crate.

mod client;
mod process;
mod session;
mod update;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    ClientCapabilities, Implementation, InitializeRequest, NewSessionRequest,
};
use async_trait::async_trait;
use tandem_domain::AgentProfileName;
use tandem_ports::{AgentError, AgentExecutor, AgentSession, AgentStart};

use self::client::Connection;
use self::process::AgentProcess;
use self::session::AcpSession;

/// How to run one ACP agent: the command and its arguments, extra environment
/// variables (added to the server's own), and the working directory that is also
/// the agent session's `cwd` (the server's current directory when unset).
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
    pub working_dir: Option<PathBuf>,
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
            working_dir: None,
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
            .field("working_dir", &self.working_dir)
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
        let cwd = match &profile.working_dir {
            Some(dir) => std::path::absolute(dir),
            None => std::env::current_dir(),
        }
        .map_err(|error| {
            AgentError::Unavailable(format!(
                "the agent's working directory is unusable: {error}"
            ))
        })?;
        let (process, stdin, stdout) = AgentProcess::spawn(profile, &cwd)?;
        let connection = Connection::open(stdin, stdout).await?;
        let handshake = async {
            handshake(&connection, cwd).await.map_err(|error| {
                if client::is_disconnect(&error) {
                    None
                } else {
                    Some(AgentError::Protocol(client::describe(&error)))
                }
            })
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(self.startup_timeout, handshake) => outcome,
            _ = process.exited() => Ok(Err(None)),
        };
        match outcome {
            Ok(Ok(agent_session_id)) => {
                tracing::info!(
                    session_id = %request.session_id,
                    profile = %request.profile,
                    pid = process.pid(),
                    "Started an ACP agent."
                );
                Ok(Box::new(AcpSession::new(
                    agent_session_id,
                    connection,
                    process,
                )))
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
}

/// `initialize`, then `session/new`; the agent's session id.
async fn handshake(
    connection: &Connection,
    cwd: PathBuf,
) -> Result<String, agent_client_protocol::Error> {
    let initialized = connection
        .cx()
        .send_request(
            InitializeRequest::new(ProtocolVersion::V1)
                .client_capabilities(ClientCapabilities::new())
                .client_info(Implementation::new("tandem", env!("CARGO_PKG_VERSION"))),
        )
        .block_task()
        .await?;
    if initialized.protocol_version != ProtocolVersion::V1 {
        return Err(
            agent_client_protocol::Error::invalid_request().data(format!(
                "the agent speaks ACP protocol version {}, Tandem speaks version 1",
                initialized.protocol_version
            )),
        );
    }
    let created = connection
        .cx()
        .send_request(NewSessionRequest::new(cwd))
        .block_task()
        .await?;
    Ok(created.session_id.to_string())
}
