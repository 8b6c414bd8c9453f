//! The redaction settings (`[redaction]` in the config file) and the secrets the
//! server knows of: the values of the agent profiles' `env`, of the server's
//! environment variables whose names look secret, of those the operator names,
//! and the server's own credentials.

use std::collections::BTreeSet;

use serde::Deserialize;
use tandem_service::redact::ENV_VALUE_KIND;
use tandem_service::{KnownSecret, PatternRule, RedactionSettings, Redactor};

use crate::config::{AgentProfile, Config};

/// The shortest value taken for a secret without being named: shorter values
/// (`1`, `true`, `prod`) are too common to hide everywhere they appear.
pub const MIN_IMPLICIT_SECRET_LEN: usize = 8;

/// The shortest value of a variable named in `[redaction] env`: a shorter one
/// would blot out ordinary text (every `1` of the output).
pub const MIN_NAMED_SECRET_LEN: usize = 4;

/// Parts of variable names that mark a secret value (case does not matter).
const SECRET_NAME_PARTS: [&str; 5] = ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD"];

/// What the operator set about redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactionConfig {
    /// Off only when the operator says so (`enabled = false`), loudly logged.
    pub enabled: bool,
    /// Extra patterns, each with the kind it reports.
    pub patterns: Vec<PatternRule>,
    /// Names of server environment variables whose values are secret, whatever
    /// their names look like.
    pub env: Vec<String>,
    /// Regular expressions of values that look like secrets but are not.
    pub allow: Vec<String>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            patterns: Vec::new(),
            env: Vec::new(),
            allow: Vec::new(),
        }
    }
}

/// `[redaction]` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileRedaction {
    pub enabled: Option<bool>,
    #[serde(default)]
    pub patterns: Vec<FilePattern>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub allow: Vec<String>,
}

/// `[[redaction.patterns]]`: one extra pattern.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePattern {
    pub kind: String,
    pub regex: String,
}

impl FileRedaction {
    /// Applies the file's section over `redaction`.
    pub fn apply(self, redaction: &mut RedactionConfig) {
        if let Some(enabled) = self.enabled {
            redaction.enabled = enabled;
        }
        redaction
            .patterns
            .extend(self.patterns.into_iter().map(|pattern| PatternRule {
                kind: pattern.kind,
                regex: pattern.regex,
            }));
        redaction.env.extend(self.env);
        redaction.allow.extend(self.allow);
    }
}

/// Whether a variable's name says its value is secret.
fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// A variable named in `[redaction] env` whose value is not redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unused {
    /// It is not set (or not text).
    Unset(String),
    /// Its value is shorter than [`MIN_NAMED_SECRET_LEN`].
    TooShort(String),
}

/// The redactor of `config`, knowing the secrets of `config` and of the
/// server's environment `env`; with the variables named in `[redaction] env`
/// that it could not use, for a warning.
pub fn redactor(
    config: &Config,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<(Redactor, Vec<Unused>)> {
    let redaction = &config.redaction;
    let mut values: BTreeSet<String> = BTreeSet::new();
    for profile in config.agents.values() {
        match profile {
            AgentProfile::Acp(acp) => acp
                .env
                .values()
                .for_each(|value| implicit(&mut values, value)),
            AgentProfile::OpenAi(openai) => openai
                .api_key
                .iter()
                .for_each(|key| implicit(&mut values, key)),
        }
    }
    if let Some(key) = &config.bootstrap_admin_key {
        implicit(&mut values, key);
    }
    if let Some(password) = database_password(&config.database_url) {
        implicit(&mut values, password);
    }
    let mut named: BTreeSet<&str> = redaction.env.iter().map(String::as_str).collect();
    let mut unused = Vec::new();
    for (name, value) in env {
        if named.remove(name.as_str()) {
            if value.chars().count() >= MIN_NAMED_SECRET_LEN {
                values.insert(value);
            } else {
                unused.push(Unused::TooShort(name));
            }
        } else if looks_secret(&name) {
            implicit(&mut values, &value);
        }
    }
    unused.extend(named.into_iter().map(|name| Unused::Unset(name.to_owned())));
    let settings = RedactionSettings {
        enabled: redaction.enabled,
        patterns: redaction.patterns.clone(),
        secrets: values
            .into_iter()
            .map(|value| KnownSecret {
                kind: ENV_VALUE_KIND.to_owned(),
                value,
            })
            .collect(),
        allow: redaction.allow.clone(),
    };
    let redactor =
        Redactor::new(&settings).map_err(|error| anyhow::anyhow!("[redaction]: {error}"))?;
    Ok((redactor, unused))
}

/// Takes `value` for a secret if it is long enough to be told from ordinary text.
fn implicit(values: &mut BTreeSet<String>, value: &str) {
    if value.chars().count() >= MIN_IMPLICIT_SECRET_LEN {
        values.insert(value.to_owned());
    }
}

/// The password in a database URL's userinfo, if any.
fn database_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let (credentials, _) = rest.split_once('@')?;
    let (_, password) = credentials.split_once(':')?;
    Some(password)
}

/// The server's environment, as far as it is text.
pub fn server_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tandem_agent::AcpProfile;
    use tandem_domain::AgentProfileName;

    use super::*;

    fn config() -> Config {
        let mut config = Config::new(
            "127.0.0.1:8080".parse().expect("addr"),
            "postgres://tandem:db-pass-9876@db/tandem",
        );
        let mut acp = AcpProfile::new("agent");
        acp.env = BTreeMap::from([
            ("GEMINI_API_KEY".to_owned(), "gem-key-0123456789".to_owned()),
            ("DEBUG".to_owned(), "1".to_owned()),
        ]);
        config.agents.insert(
            AgentProfileName::parse("gemini").expect("name"),
            AgentProfile::Acp(acp),
        );
        config.redaction.env = vec![
            "ODD_NAME".to_owned(),
            "ODD_TOO".to_owned(),
            "NOT_SET".to_owned(),
        ];
        config
    }

    fn env() -> Vec<(String, String)> {
        [
            ("GITHUB_TOKEN", "gh-value-abcdefgh"),
            ("my_password", "lowercase-name-value"),
            ("API_KEY", "short"),
            ("HOME", "/home/someone-long-enough"),
            ("ODD_NAME", "odd"),
            ("ODD_TOO", "odd-1"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    #[test]
    fn known_secrets_come_from_profiles_secret_looking_variables_and_named_ones() {
        let (redactor, unused) = redactor(&config(), env()).expect("builds");
        assert_eq!(
            unused,
            [
                Unused::TooShort("ODD_NAME".to_owned()),
                Unused::Unset("NOT_SET".to_owned()),
            ]
        );
        for (secret, redacted) in [
            ("gem-key-0123456789", true),
            ("gh-value-abcdefgh", true),
            ("lowercase-name-value", true),
            ("db-pass-9876", true),
            ("odd-1", true),
            ("odd", false),
            ("short", false),
            ("/home/someone-long-enough", false),
        ] {
            let (text, _) = redactor.redact_text(&format!("value: {secret} ."));
            assert_eq!(!text.contains(secret), redacted, "{secret}: {text}");
        }
        // A profile value too short to be told from ordinary text stays.
        assert_eq!(redactor.redact_text("DEBUG=1").0, "DEBUG=1");
    }

    #[test]
    fn turned_off_nothing_is_redacted() {
        let mut config = config();
        config.redaction.enabled = false;
        let (redactor, _) = redactor(&config, env()).expect("builds");
        assert!(!redactor.is_enabled());
    }

    #[test]
    fn the_file_section_adds_patterns_names_and_allowed_values() {
        let file: crate::config::FileConfig = toml::from_str(
            r#"
            [redaction]
            env = ["DEPLOY_PASS"]
            allow = ["AKIA[A-Z2-7]{12}TEST"]

            [[redaction.patterns]]
            kind = "internal_token"
            regex = 'itk_[a-z0-9]{16}'
            "#,
        )
        .expect("parses");
        let mut config = Config::new("127.0.0.1:8080".parse().expect("addr"), "sqlite://x.db");
        file.apply(&mut config).expect("applies");
        assert!(config.redaction.enabled);
        assert_eq!(config.redaction.env, ["DEPLOY_PASS"]);
        let (redactor, _) = redactor(&config, Vec::new()).expect("builds");
        assert_eq!(
            redactor.redact_text("itk_0123456789abcdef").0,
            "[REDACTED:internal_token]"
        );
        let bad: Result<crate::config::FileConfig, _> = toml::from_str("[redaction]\npaterns = []");
        assert!(bad.is_err(), "unknown keys are refused");
        let mut config = Config::new("127.0.0.1:8080".parse().expect("addr"), "sqlite://x.db");
        config.redaction.patterns.push(PatternRule {
            kind: "Bad".to_owned(),
            regex: "x+".to_owned(),
        });
        let error = super::redactor(&config, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("[redaction]"), "{error}");
    }
}
