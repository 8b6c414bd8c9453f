//! The built-in rules, read from `rules.toml` (adapted from gitleaks' rule set;
//! the file notes its source and license).

use serde::Deserialize;

/// The rules file, compiled into the binary.
const RULES: &str = include_str!("rules.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<BuiltinRule>,
}

/// One built-in rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BuiltinRule {
    pub(super) kind: String,
    pub(super) regex: String,
    #[serde(default)]
    pub(super) entropy: Option<f64>,
    #[serde(default)]
    pub(super) letters_and_digits: bool,
    /// Checked by the tests only.
    #[cfg_attr(not(test), expect(dead_code, reason = "the tests check the examples"))]
    pub(super) examples: Vec<Example>,
}

/// Text a rule must redact: `before`, the secret (in pieces), `after`.
#[cfg_attr(not(test), expect(dead_code, reason = "the tests check the examples"))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Example {
    pub(super) before: String,
    pub(super) secret: Vec<String>,
    pub(super) after: String,
}

/// The built-in rules, in the file's order (earlier rules win at one position).
///
/// # Panics
/// If the compiled-in file does not parse: a test reads it on every build.
pub(super) fn builtin() -> Vec<BuiltinRule> {
    let file: RulesFile = toml::from_str(RULES)
        .unwrap_or_else(|error| panic!("the built-in redaction rules do not parse: {error}"));
    file.rules
}
