//! The server's settings: flags and `TANDEM_*` environment variables (clap), plus
//! an optional TOML file, validated at start with messages an operator can act on.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use tandem_agent::{AcpProfile, OpenAiProfile};
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
    /// What is redacted from agent output (`[redaction]`).
    pub redaction: RedactionConfig,
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
            body_limit_bytes: 256 * 1024,
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
        Ok(())
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
        working_dir: Option<PathBuf>,
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

impl FileAgent {
    fn profile(self, name: &str) -> anyhow::Result<AgentProfile> {
        Ok(match self {
            Self::Acp {
                command,
                args,
                env,
                working_dir,
            } => AgentProfile::Acp(AcpProfile {
                command,
                args,
                env,
                working_dir,
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
    pub comment_bytes: Option<usize>,
    pub prompt_bytes: Option<usize>,
    pub summary_bytes: Option<usize>,
}

/// `[http]`: what the HTTP layer allows.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileHttp {
    #[serde(default)]
    pub cors_origins: Vec<String>,
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
        limits.comment_bytes = file.comment_bytes.unwrap_or(limits.comment_bytes);
        limits.prompt_bytes = file.prompt_bytes.unwrap_or(limits.prompt_bytes);
        limits.summary_bytes = file.summary_bytes.unwrap_or(limits.summary_bytes);
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
    fn the_file_overrides_limits_and_rejects_unknown_keys() {
        let file: FileConfig = toml::from_str(
            "[limits]\ncomment_bytes = 1024\n[http]\ncors_origins = [\"https://x.test\"]",
        )
        .expect("parse");
        let mut config = config();
        file.apply(&mut config).expect("apply");
        assert_eq!(config.limits.comment_bytes, 1024);
        assert_eq!(config.cors_origins, vec!["https://x.test".to_owned()]);
        assert!(toml::from_str::<FileConfig>("[limits]\ncomments = 1").is_err());
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
}
