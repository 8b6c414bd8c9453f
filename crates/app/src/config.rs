//! The server's settings: flags and `TANDEM_*` environment variables (clap), plus
//! an optional TOML file, validated at start with messages an operator can act on.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use tandem_agent::{AcpProfile, Cleanup, OpenAiProfile, WorkspaceConfig};
use tandem_domain::{AgentProfileName, TextLimits};
use tandem_service::RunnerConfig;

use crate::redaction::{FileRedaction, RedactionConfig};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything `tandem serve` needs.
#[derive(Clone)]
pub struct Config {
    /// Where to listen for HTTP.
    pub listen: SocketAddr,
    /// `sqlite://FILE` (embedded) or `postgres://...`.
    pub database_url: String,
    /// The server's address as clients reach it, for invite links.
    pub public_url: String,
    /// When set and no admin key exists, this secret becomes the admin key.
    pub bootstrap_admin_key: Option<String>,
    /// Origins allowed by CORS; empty keeps CORS off.
    pub cors_origins: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Writes each API key, participant or client address may send; `None`
    /// turns rate limiting off.
    pub rate_limit: Option<tandem_http::RateLimit>,
    /// Limits on client text.
    pub limits: TextLimits,
    /// Connections of the Postgres pool.
    pub database_max_connections: u32,
    /// The agent profiles clients may pick, by name (server configuration only).
    pub agents: BTreeMap<AgentProfileName, AgentProfile>,
    /// The profile of sessions created without one.
    pub default_agent: AgentProfileName,
    /// How long the host has to answer an agent's permission request.
    pub permission_timeout: Duration,
    /// How often expired and idle sessions are looked for and closed.
    pub sweep_interval: Duration,
    /// How prompts are run (output coalescing, agent leases).
    pub runner: RunnerConfig,
    /// How long an event stream stays silent before a keep-alive comment (15 s).
    pub stream_keep_alive: Duration,
    /// Outbound webhooks: what they may reach, and how they are delivered.
    pub webhooks: WebhookSettings,
    /// How connections are served: deadlines, the connection cap, head limits.
    pub connections: Connections,
    /// What is redacted from agent output (`[redaction]`).
    pub redaction: RedactionConfig,
}

/// Outbound webhooks' settings.
#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    /// Which targets requests may reach (https only and public addresses by
    /// default), timeouts, the answer size read.
    pub outbound: tandem_webhook::OutboundPolicy,
    /// Retries, secret rotation grace, scans and leases (its `public_url` is
    /// the server's, set at start).
    pub delivery: tandem_service::WebhookConfig,
}

/// How connections are served (`[http]` in the file, `TANDEM_HTTP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// How long a connection may take to send a request's head: its first
    /// from its opening, the next ones from their first byte.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may stay silent between requests.
    pub keep_alive_timeout: Duration,
    /// How long a request's body may take to arrive after its head.
    pub body_timeout: Duration,
    /// Connections open at once at most; `None` takes what the open-file
    /// limit leaves.
    pub max_connections: Option<usize>,
    /// The longest request target (path and query), in bytes.
    pub max_uri_bytes: usize,
    /// The most bytes of header lines a request may have.
    pub max_header_bytes: usize,
    /// The most header lines a request may have.
    pub max_headers: usize,
}

impl Default for Connections {
    fn default() -> Self {
        let serve = tandem_http::ServeConfig::DEFAULT;
        Self {
            header_timeout: serve.header_timeout,
            keep_alive_timeout: serve.keep_alive_timeout,
            body_timeout: serve.body_timeout,
            max_connections: None,
            max_uri_bytes: serve.max_uri_bytes,
            max_header_bytes: serve.max_header_bytes,
            max_headers: serve.max_headers,
        }
    }
}

impl Connections {
    /// The server's settings, with the connection cap decided.
    pub fn serve_config(&self, max_connections: usize) -> tandem_http::ServeConfig {
        tandem_http::ServeConfig {
            header_timeout: self.header_timeout,
            keep_alive_timeout: self.keep_alive_timeout,
            body_timeout: self.body_timeout,
            max_connections,
            max_uri_bytes: self.max_uri_bytes,
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        let timeouts = [
            ("TANDEM_HTTP_HEADER_TIMEOUT_SECS", self.header_timeout),
            ("TANDEM_HTTP_KEEP_ALIVE_SECS", self.keep_alive_timeout),
            ("TANDEM_HTTP_BODY_TIMEOUT_SECS", self.body_timeout),
        ];
        for (name, value) in timeouts {
            if value < Duration::from_secs(1) {
                bail!("{name} must be at least 1 second");
            }
        }
        if self.max_connections == Some(0) {
            bail!("TANDEM_HTTP_MAX_CONNECTIONS must be at least 1");
        }
        let sizes = [
            (
                "TANDEM_HTTP_MAX_URI_BYTES",
                self.max_uri_bytes,
                1024,
                1 << 20,
            ),
            (
                "TANDEM_HTTP_MAX_HEADER_BYTES",
                self.max_header_bytes,
                1024,
                1 << 20,
            ),
            ("TANDEM_HTTP_MAX_HEADERS", self.max_headers, 16, 10_000),
        ];
        for (name, value, min, max) in sizes {
            if !(min..=max).contains(&value) {
                bail!("{name} must be between {min} and {max}, got {value}");
            }
        }
        Ok(())
    }
}

/// How a profile's agent is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentProfile {
    /// A subprocess speaking the Agent Client Protocol over stdio.
    Acp(AcpProfile),
    /// An OpenAI-compatible chat completions endpoint.
    OpenAi(OpenAiProfile),
}

impl AgentProfile {
    /// The built-in echo agent: this very binary, run as `tandem echo-agent`.
    pub fn echo(tandem_binary: impl Into<PathBuf>) -> Self {
        Self::Acp(AcpProfile {
            args: vec!["echo-agent".to_owned()],
            ..AcpProfile::new(tandem_binary)
        })
    }
}

/// Secrets stay out of `Debug` output (and so out of logs).
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("public_url", &self.public_url)
            .field(
                "bootstrap_admin_key",
                &self.bootstrap_admin_key.as_ref().map(|_| "<redacted>"),
            )
            .field("cors_origins", &self.cors_origins)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("rate_limit", &self.rate_limit)
            .field("limits", &self.limits)
            .field("database_max_connections", &self.database_max_connections)
            .field("agents", &self.agents)
            .field("default_agent", &self.default_agent)
            .field("permission_timeout", &self.permission_timeout)
            .field("sweep_interval", &self.sweep_interval)
            .field("runner", &self.runner)
            .field("stream_keep_alive", &self.stream_keep_alive)
            .field("webhooks", &self.webhooks)
            .field("connections", &self.connections)
            .field("redaction", &self.redaction)
            .finish()
    }
}

/// A database URL with any password replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_owned(),
    }
}

/// The rate limit on writes that `TANDEM_RATE_LIMIT_PER_MINUTE` and
/// `TANDEM_RATE_LIMIT_BURST` describe: none when the per-minute rate is 0.
pub fn rate_limit(per_minute: u32, burst: u32) -> anyhow::Result<Option<tandem_http::RateLimit>> {
    let Some(per_minute) = std::num::NonZeroU32::new(per_minute) else {
        return Ok(None);
    };
    let burst = std::num::NonZeroU32::new(burst).context(
        "TANDEM_RATE_LIMIT_BURST / --rate-limit-burst must be at least 1 \
         (TANDEM_RATE_LIMIT_PER_MINUTE=0 turns rate limiting off)",
    )?;
    Ok(Some(tandem_http::RateLimit { per_minute, burst }))
}

impl Config {
    /// Settings for a server on `listen` over `database_url`, everything else default.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            public_url: format!("http://{listen}"),
            bootstrap_admin_key: None,
            cors_origins: Vec::new(),
            body_limit_bytes: tandem_http::DEFAULT_BODY_LIMIT_BYTES,
            rate_limit: Some(tandem_http::RateLimit::DEFAULT),
            limits: TextLimits::DEFAULT,
            database_max_connections: 16,
            agents: BTreeMap::from([(
                AgentProfileName::default_profile(),
                AgentProfile::echo(
                    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tandem")),
                ),
            )]),
            default_agent: AgentProfileName::default_profile(),
            permission_timeout: Duration::from_secs(300),
            sweep_interval: Duration::from_secs(15),
            runner: RunnerConfig::default(),
            stream_keep_alive: tandem_http::HttpConfig::default().keep_alive,
            webhooks: WebhookSettings::default(),
            connections: Connections::default(),
            redaction: RedactionConfig::default(),
        }
    }

    /// Checks the settings together; every message names the setting to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        let url = self.database_url.as_str();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            bail!(
                "DATABASE_URL / --database-url must start with sqlite: or postgres://, got {}",
                redact_url(url)
            );
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            bail!(
                "TANDEM_PUBLIC_URL / --public-url must be an http:// or https:// URL, got {}",
                self.public_url
            );
        }
        if let Some(key) = &self.bootstrap_admin_key
            && key.chars().count() < tandem_service::MIN_BOOTSTRAP_KEY_LEN
        {
            bail!(
                "TANDEM_BOOTSTRAP_ADMIN_KEY must be at least {} characters long",
                tandem_service::MIN_BOOTSTRAP_KEY_LEN
            );
        }
        if self.body_limit_bytes < 1024 {
            bail!(
                "the body limit must be at least 1024 bytes, got {}",
                self.body_limit_bytes
            );
        }
        self.limits
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid [limits] in the config file: {e}"))?;
        let needed = tandem_http::body_bytes_needed(&self.limits);
        if self.body_limit_bytes < needed {
            bail!(
                "[limits] body_bytes is {}, but the text limits need {needed}: the longest text \
                 ({} characters) takes up to 12 bytes a character in JSON; raise body_bytes or \
                 lower the text limits",
                self.body_limit_bytes,
                self.limits
                    .prompt_chars
                    .max(self.limits.comment_chars)
                    .max(self.limits.summary_chars)
            );
        }
        if self.database_max_connections == 0 {
            bail!("database max connections must be at least 1");
        }
        if !self.agents.contains_key(&self.default_agent) {
            bail!(
                "TANDEM_DEFAULT_AGENT / default_agent names the agent profile {}, but only {} are configured",
                self.default_agent,
                self.agents
                    .keys()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for (name, profile) in &self.agents {
            match profile {
                AgentProfile::Acp(acp) if acp.command.as_os_str().is_empty() => {
                    bail!("[agents.{name}] needs a command");
                }
                AgentProfile::Acp(acp) if acp.workspace.check().is_err() => {
                    let error = acp.workspace.check().err().unwrap_or_default();
                    bail!("[agents.{name}] {error}");
                }
                AgentProfile::OpenAi(openai)
                    if !(openai.base_url.starts_with("http://")
                        || openai.base_url.starts_with("https://")) =>
                {
                    bail!(
                        "[agents.{name}] base_url must be an http:// or https:// URL, got {}",
                        openai.base_url
                    );
                }
                AgentProfile::OpenAi(openai) if openai.model.is_empty() => {
                    bail!("[agents.{name}] needs a model");
                }
                AgentProfile::Acp(_) | AgentProfile::OpenAi(_) => {}
            }
        }
        let at_least_a_second = [
            ("TANDEM_PERMISSION_TIMEOUT_SECS", self.permission_timeout),
            ("TANDEM_SWEEP_INTERVAL_SECS", self.sweep_interval),
            ("TANDEM_AGENT_LEASE_SECS", self.runner.lease_ttl),
        ];
        for (name, value) in at_least_a_second {
            if value < Duration::from_secs(1) {
                bail!("{name} must be at least 1 second");
            }
        }
        let webhooks = &self.webhooks;
        if webhooks.delivery.lease_ttl < 2 * webhooks.outbound.timeout {
            bail!(
                "TANDEM_WEBHOOK_LEASE_SECS ({:?}) must be at least twice TANDEM_WEBHOOK_TIMEOUT_SECS ({:?})",
                webhooks.delivery.lease_ttl,
                webhooks.outbound.timeout
            );
        }
        if webhooks.outbound.timeout.is_zero() || webhooks.delivery.retry.first_delay.is_zero() {
            bail!("TANDEM_WEBHOOK_TIMEOUT_SECS and the first webhook retry delay must not be zero");
        }
        self.connections.validate()
    }
}

/// The optional TOML file (`--config` / `TANDEM_CONFIG`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileConfig {
    #[serde(default)]
    pub limits: FileLimits,
    #[serde(default)]
    pub http: FileHttp,
    /// The profile of sessions created without one.
    pub default_agent: Option<String>,
    /// `[agents.NAME]`: agent profiles, added to the built-in `echo`.
    #[serde(default)]
    pub agents: BTreeMap<String, FileAgent>,
    /// `[redaction]`: what is redacted from agent output.
    #[serde(default)]
    pub redaction: FileRedaction,
}

/// `[agents.NAME]`: how to run one agent profile.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FileAgent {
    /// An Agent Client Protocol agent run as a subprocess.
    Acp {
        command: PathBuf,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        /// One directory for every session (two sessions' agents edit the same
        /// files); the server's current directory when no workspace is set.
        working_dir: Option<PathBuf>,
        /// A directory of each session's own: a path with `{session_id}`.
        session_dir: Option<String>,
        /// A git worktree of each session's own.
        worktree: Option<FileWorktree>,
        /// What becomes of a session's own workspace once it ended.
        cleanup: Option<FileCleanup>,
        /// The authentication method to use when the agent asks for one.
        auth_method: Option<String>,
    },
    /// An OpenAI-compatible chat completions endpoint.
    Openai {
        base_url: String,
        model: String,
        /// The name of the environment variable that holds the API key (keys stay
        /// out of config files).
        api_key_env: Option<String>,
        system_prompt: Option<String>,
    },
}

/// `worktree = { repository = "...", base = "main", dir = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileWorktree {
    /// The git repository to add worktrees to.
    pub repository: PathBuf,
    /// What each session's branch starts from (the repository's `HEAD` when unset).
    pub base: Option<String>,
    /// Where each session's worktree goes, with `{session_id}` (by default
    /// `<repository>-tandem/{session_id}` beside the repository).
    pub dir: Option<String>,
}

/// `cleanup = "remove" | "keep_if_changed" | "keep"`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileCleanup {
    Remove,
    KeepIfChanged,
    Keep,
}

impl From<FileCleanup> for Cleanup {
    fn from(cleanup: FileCleanup) -> Self {
        match cleanup {
            FileCleanup::Remove => Self::Remove,
            FileCleanup::KeepIfChanged => Self::KeepIfChanged,
            FileCleanup::Keep => Self::Keep,
        }
    }
}

/// The workspace one of `working_dir`, `session_dir` and `worktree` describes.
fn workspace(
    name: &str,
    working_dir: Option<PathBuf>,
    session_dir: Option<String>,
    worktree: Option<FileWorktree>,
    cleanup: Option<FileCleanup>,
) -> anyhow::Result<WorkspaceConfig> {
    let cleanup_of = |cleanup: Option<FileCleanup>| cleanup.map(Cleanup::from).unwrap_or_default();
    Ok(match (working_dir, session_dir, worktree) {
        (dir, None, None) => {
            if cleanup.is_some() {
                bail!("[agents.{name}] cleanup applies to session_dir or worktree workspaces only");
            }
            WorkspaceConfig::Shared(dir)
        }
        (None, Some(template), None) => WorkspaceConfig::Directory {
            template,
            cleanup: cleanup_of(cleanup),
        },
        (None, None, Some(worktree)) => {
            let repository = std::path::absolute(&worktree.repository).with_context(|| {
                format!(
                    "[agents.{name}] worktree.repository {} is unusable",
                    worktree.repository.display()
                )
            })?;
            let template = worktree.dir.unwrap_or_else(|| {
                let name = repository.file_name().map_or_else(
                    || "repository".to_owned(),
                    |name| name.to_string_lossy().into_owned(),
                );
                let parent = repository.parent().unwrap_or(&repository);
                parent
                    .join(format!("{name}-tandem"))
                    .join("{session_id}")
                    .to_string_lossy()
                    .into_owned()
            });
            WorkspaceConfig::Worktree {
                repository,
                base: worktree.base,
                template,
                cleanup: cleanup_of(cleanup),
            }
        }
        _ => bail!("[agents.{name}] sets more than one of working_dir, session_dir and worktree"),
    })
}

impl FileAgent {
    fn profile(self, name: &str) -> anyhow::Result<AgentProfile> {
        Ok(match self {
            Self::Acp {
                command,
                args,
                env,
                working_dir,
                session_dir,
                worktree,
                cleanup,
                auth_method,
            } => AgentProfile::Acp(AcpProfile {
                command,
                args,
                env,
                workspace: workspace(name, working_dir, session_dir, worktree, cleanup)?,
                auth_method,
                ..AcpProfile::new("")
            }),
            Self::Openai {
                base_url,
                model,
                api_key_env,
                system_prompt,
            } => {
                let api_key = match api_key_env {
                    Some(variable) => Some(std::env::var(&variable).with_context(|| {
                        format!("[agents.{name}] api_key_env names {variable}, which is not set")
                    })?),
                    None => None,
                };
                AgentProfile::OpenAi(OpenAiProfile {
                    api_key,
                    system_prompt,
                    ..OpenAiProfile::new(base_url, model)
                })
            }
        })
    }
}

/// `[limits]`: sizes of client text and bodies.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileLimits {
    pub body_bytes: Option<usize>,
    pub display_name_chars: Option<usize>,
    pub title_chars: Option<usize>,
    /// Also read under its former name, from when the limit was in bytes.
    #[serde(alias = "comment_bytes")]
    pub comment_chars: Option<usize>,
    #[serde(alias = "prompt_bytes")]
    pub prompt_chars: Option<usize>,
    #[serde(alias = "summary_bytes")]
    pub summary_chars: Option<usize>,
}

/// `[http]`: what the HTTP layer allows.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileHttp {
    #[serde(default)]
    pub cors_origins: Vec<String>,
    pub header_timeout_secs: Option<u64>,
    pub keep_alive_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_uri_bytes: Option<usize>,
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
}

impl FileHttp {
    /// Applies the connection settings the file names over `connections`.
    pub fn apply(&self, connections: &mut Connections) {
        if let Some(secs) = self.header_timeout_secs {
            connections.header_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = self.keep_alive_secs {
            connections.keep_alive_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = self.body_timeout_secs {
            connections.body_timeout = Duration::from_secs(secs);
        }
        if let Some(max) = self.max_connections {
            connections.max_connections = Some(max);
        }
        connections.max_uri_bytes = self.max_uri_bytes.unwrap_or(connections.max_uri_bytes);
        connections.max_header_bytes = self
            .max_header_bytes
            .unwrap_or(connections.max_header_bytes);
        connections.max_headers = self.max_headers.unwrap_or(connections.max_headers);
    }
}

impl FileConfig {
    /// Reads and parses the file; errors name the file and the problem.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Applies the file's settings over `config`; fails on a bad agent profile.
    pub fn apply(self, config: &mut Config) -> anyhow::Result<()> {
        let limits = &mut config.limits;
        let file = self.limits;
        if let Some(bytes) = file.body_bytes {
            config.body_limit_bytes = bytes;
        }
        limits.display_name_chars = file.display_name_chars.unwrap_or(limits.display_name_chars);
        limits.title_chars = file.title_chars.unwrap_or(limits.title_chars);
        limits.comment_chars = file.comment_chars.unwrap_or(limits.comment_chars);
        limits.prompt_chars = file.prompt_chars.unwrap_or(limits.prompt_chars);
        limits.summary_chars = file.summary_chars.unwrap_or(limits.summary_chars);
        self.http.apply(&mut config.connections);
        if !self.http.cors_origins.is_empty() {
            config.cors_origins = self.http.cors_origins;
        }
        for (name, agent) in self.agents {
            let profile = agent.profile(&name)?;
            let name = AgentProfileName::parse(&name)
                .map_err(|e| anyhow::anyhow!("[agents.{name}]: {e}"))?;
            config.agents.insert(name, profile);
        }
        if let Some(name) = self.default_agent {
            config.default_agent = AgentProfileName::parse(&name)
                .map_err(|e| anyhow::anyhow!("default_agent: {e}"))?;
        }
        self.redaction.apply(&mut config.redaction);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(
            "127.0.0.1:8080".parse().expect("addr"),
            "sqlite://tandem.db",
        )
    }

    #[test]
    fn defaults_are_valid() {
        config().validate().expect("valid");
    }

    #[test]
    fn a_zero_rate_turns_rate_limiting_off_and_a_zero_burst_is_refused() {
        let limit = rate_limit(600, 60).expect("valid").expect("on");
        assert_eq!(limit, tandem_http::RateLimit::DEFAULT);
        assert_eq!(config().rate_limit, Some(limit));
        assert_eq!(rate_limit(0, 60).expect("valid"), None);
        assert_eq!(rate_limit(0, 0).expect("valid"), None);
        let error = rate_limit(600, 0).unwrap_err().to_string();
        assert!(error.contains("TANDEM_RATE_LIMIT_BURST"), "{error}");
    }

    #[test]
    fn bad_settings_are_named() {
        let mut bad = config();
        bad.database_url = "mysql://x".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("DATABASE_URL")
        );
        let mut bad = config();
        bad.bootstrap_admin_key = Some("short".into());
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("TANDEM_BOOTSTRAP_ADMIN_KEY")
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let mut config = config();
        config.database_url = "postgres://tandem:hunter2@db:5432/tandem".into();
        config.bootstrap_admin_key = Some("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("s3cr3t"));
        assert!(shown.contains("postgres://tandem:<redacted>@db:5432/tandem"));
    }

    #[test]
    fn the_body_limit_carries_the_longest_text_however_it_is_escaped() {
        let mut config = config();
        assert!(config.validate().is_ok(), "the defaults fit together");
        config.body_limit_bytes = 256 * 1024;
        let error = config
            .validate()
            .expect_err("a 32,768-character prompt needs more");
        assert!(error.to_string().contains("body_bytes"), "{error}");
        config.limits.prompt_chars = 8 * 1024;
        assert!(config.validate().is_ok(), "shorter prompts fit in 256 KiB");
    }

    #[test]
    fn the_file_overrides_limits_and_rejects_unknown_keys() {
        let file: FileConfig = toml::from_str(
            "[limits]\ncomment_chars = 1024\n[http]\ncors_origins = [\"https://x.test\"]",
        )
        .expect("parse");
        let mut config = config();
        file.apply(&mut config).expect("apply");
        assert_eq!(config.limits.comment_chars, 1024);
        assert_eq!(config.cors_origins, vec!["https://x.test".to_owned()]);
        assert!(toml::from_str::<FileConfig>("[limits]\ncomments = 1").is_err());
        // The former names, from when bodies were limited in bytes, still work.
        let former: FileConfig =
            toml::from_str("[limits]\nprompt_bytes = 2048").expect("parse the former name");
        former.apply(&mut config).expect("apply");
        assert_eq!(config.limits.prompt_chars, 2048);
    }

    #[test]
    fn connection_settings_come_from_the_file_and_are_checked() {
        let file: FileConfig = toml::from_str(
            "[http]\nheader_timeout_secs = 3\nkeep_alive_secs = 5\nbody_timeout_secs = 4\nmax_connections = 500\n\
             max_uri_bytes = 2048\nmax_header_bytes = 4096\nmax_headers = 40",
        )
        .expect("parse");
        let mut config = config();
        file.apply(&mut config).expect("apply");
        config.validate().expect("valid");
        assert_eq!(
            config.connections,
            Connections {
                header_timeout: Duration::from_secs(3),
                keep_alive_timeout: Duration::from_secs(5),
                body_timeout: Duration::from_secs(4),
                max_connections: Some(500),
                max_uri_bytes: 2048,
                max_header_bytes: 4096,
                max_headers: 40,
            }
        );
        for (change, name) in [
            (
                (|c: &mut Connections| c.header_timeout = Duration::ZERO) as fn(&mut Connections),
                "TANDEM_HTTP_HEADER_TIMEOUT_SECS",
            ),
            (
                |c| c.body_timeout = Duration::ZERO,
                "TANDEM_HTTP_BODY_TIMEOUT_SECS",
            ),
            (
                |c| c.keep_alive_timeout = Duration::ZERO,
                "TANDEM_HTTP_KEEP_ALIVE_SECS",
            ),
            (
                |c| c.max_connections = Some(0),
                "TANDEM_HTTP_MAX_CONNECTIONS",
            ),
            (|c| c.max_uri_bytes = 10, "TANDEM_HTTP_MAX_URI_BYTES"),
            (
                |c| c.max_header_bytes = 1 << 30,
                "TANDEM_HTTP_MAX_HEADER_BYTES",
            ),
            (|c| c.max_headers = 0, "TANDEM_HTTP_MAX_HEADERS"),
        ] {
            let mut bad = config.clone();
            change(&mut bad.connections);
            let error = bad.validate().unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
        }
    }

    #[test]
    fn agent_profiles_come_from_the_file_next_to_echo() {
        let file: FileConfig = toml::from_str(
            r#"
            default_agent = "gemini"

            [agents.gemini]
            kind = "acp"
            command = "gemini"
            args = ["--experimental-acp"]
            env = { GEMINI_MODEL = "gemini-2.5-pro" }

            [agents.local]
            kind = "openai"
            base_url = "http://localhost:11434/v1"
            model = "llama3.1"
            "#,
        )
        .expect("parse");
        let mut config = config();
        file.apply(&mut config).expect("apply");
        config.validate().expect("valid");
        let names: Vec<_> = config.agents.keys().map(ToString::to_string).collect();
        assert_eq!(names, ["echo", "gemini", "local"]);
        assert_eq!(config.default_agent.to_string(), "gemini");
        let Some(AgentProfile::Acp(gemini)) = config.agents.values().nth(1) else {
            panic!("gemini is an ACP profile");
        };
        assert_eq!(gemini.args, ["--experimental-acp"]);
    }

    #[test]
    fn bad_agent_settings_are_named() {
        let unknown_kind = toml::from_str::<FileConfig>("[agents.x]\nkind = \"smtp\"");
        assert!(unknown_kind.is_err());
        let missing_key: FileConfig = toml::from_str(
            "[agents.x]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\nmodel = \"m\"\napi_key_env = \"TANDEM_TEST_SURELY_UNSET\"",
        )
        .expect("parse");
        let error = missing_key.apply(&mut config()).unwrap_err().to_string();
        assert!(error.contains("TANDEM_TEST_SURELY_UNSET"), "{error}");
        let mut bad = config();
        bad.default_agent = AgentProfileName::parse("nope").expect("name");
        let error = bad.validate().unwrap_err().to_string();
        assert!(error.contains("TANDEM_DEFAULT_AGENT"), "{error}");
    }

    #[test]
    fn workspaces_come_from_one_of_three_settings() {
        let profile = |toml_text: &str| -> anyhow::Result<AcpProfile> {
            let file: FileConfig = toml::from_str(toml_text)?;
            let mut config = config();
            file.apply(&mut config)?;
            config.validate()?;
            match config
                .agents
                .remove(&AgentProfileName::parse("x").expect("name"))
            {
                Some(AgentProfile::Acp(acp)) => Ok(acp),
                other => panic!("an ACP profile, got {other:?}"),
            }
        };
        let head = "[agents.x]\nkind = \"acp\"\ncommand = \"agent\"\n";
        assert_eq!(
            profile(&format!("{head}working_dir = \"/srv/p\""))
                .expect("shared")
                .workspace,
            WorkspaceConfig::Shared(Some("/srv/p".into()))
        );
        assert_eq!(
            profile(&format!("{head}session_dir = \"/srv/s/{{session_id}}\"\ncleanup = \"remove\"\nauth_method = \"login\""))
                .expect("per session")
                .workspace,
            WorkspaceConfig::Directory {
                template: "/srv/s/{session_id}".into(),
                cleanup: Cleanup::Remove
            }
        );
        let worktree = profile(&format!(
            "{head}worktree = {{ repository = \"/srv/repo\", base = \"main\" }}"
        ))
        .expect("worktree");
        assert_eq!(
            worktree.workspace,
            WorkspaceConfig::Worktree {
                repository: "/srv/repo".into(),
                base: Some("main".into()),
                template: "/srv/repo-tandem/{session_id}".into(),
                cleanup: Cleanup::KeepIfChanged,
            }
        );
        for (bad, says) in [
            ("session_dir = \"/srv/same\"", "{session_id}"),
            (
                "working_dir = \"/a\"\nsession_dir = \"/b/{session_id}\"",
                "more than one",
            ),
            ("working_dir = \"/a\"\ncleanup = \"keep\"", "cleanup"),
            (
                "worktree = { repository = \"/r\", dir = \"/w\" }",
                "{session_id}",
            ),
        ] {
            let error = format!("{:#}", profile(&format!("{head}{bad}")).unwrap_err());
            assert!(error.contains(says), "{bad}: {error}");
        }
        assert!(toml::from_str::<FileConfig>(&format!("{head}cleanup = \"sometimes\"")).is_err());
        assert!(
            toml::from_str::<FileConfig>(&format!("{head}worktree = {{ repo = \"/r\" }}")).is_err()
        );
    }
}
