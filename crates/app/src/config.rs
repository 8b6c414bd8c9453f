//! The server's settings: flags and `TANDEM_*` environment variables (clap), plus
//! an optional TOML file, validated at start with messages an operator can act on.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;
use tandem_domain::TextLimits;

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
    /// Limits on client text.
    pub limits: TextLimits,
    /// Connections of the Postgres pool.
    pub database_max_connections: u32,
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
            .field("limits", &self.limits)
            .field("database_max_connections", &self.database_max_connections)
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
            limits: TextLimits::DEFAULT,
            database_max_connections: 16,
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

    /// Applies the file's settings over `config`.
    pub fn apply(self, config: &mut Config) {
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
        file.apply(&mut config);
        assert_eq!(config.limits.comment_bytes, 1024);
        assert_eq!(config.cors_origins, vec!["https://x.test".to_owned()]);
        assert!(toml::from_str::<FileConfig>("[limits]\ncomments = 1").is_err());
    }
}
