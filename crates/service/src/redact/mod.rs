//! Redaction of what agents emit (DESIGN.md §6b): every secret found in agent
//! text, tool calls, plans, permission requests, raw JSON and crash excerpts is
//! replaced by `[REDACTED:<kind>]` before anything is stored, so that it never
//! reaches the database, a stream, a page, a webhook or an export.
//!
//! What counts as a secret: the built-in credential formats (`rules.toml`,
//! adapted from gitleaks), the operator's extra patterns, and the exact values
//! the server knows to be secret (profile `env`, secret-looking server
//! variables) with their base64, URL-encoded and JSON-escaped forms. Tandem's
//! own tokens (`tdm_..._<64 hex>`) are a built-in format. Participants' own
//! texts are never altered: only what comes from an agent goes through here.
//!
//! Streamed text is redacted exactly as if it had come whole: [`TextStream`]
//! holds back only a tail that could still become a secret (see `scan`).

mod encode;
mod json;
mod rules;
mod scan;
mod stream;

use std::sync::{Arc, Mutex, OnceLock};

use aho_corasick::nfa::contiguous::NFA as ExactNfa;
use regex_automata::hybrid::dfa::DFA;
use regex_automata::meta;
use regex_automata::util::syntax;
use tandem_domain::Redactions;

use self::scan::{Exact, MATCH_KIND, Patterns, Rule, Scanner};
pub use self::stream::{MAX_HELD_BYTES, TextStream};

/// The kind of the exact values of secret environment variables.
pub const ENV_VALUE_KIND: &str = "env_value";

/// A pattern the operator adds (`[[redaction.patterns]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternRule {
    /// What `[REDACTED:<kind>]` says: lower case letters, digits and `_`.
    pub kind: String,
    /// A regular expression (Rust `regex` syntax); a named group `secret` marks
    /// the part to replace.
    pub regex: String,
}

/// A value known to be secret, redacted wherever it appears (also encoded).
#[derive(Clone, PartialEq, Eq)]
pub struct KnownSecret {
    pub kind: String,
    pub value: String,
}

impl std::fmt::Debug for KnownSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownSecret")
            .field("kind", &self.kind)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// What the redactor looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactionSettings {
    /// Off: agent output is stored as the agent sent it.
    pub enabled: bool,
    /// Patterns of the operator, tried before the built-in ones.
    pub patterns: Vec<PatternRule>,
    /// Exact values to redact.
    pub secrets: Vec<KnownSecret>,
    /// Regular expressions of values that look like secrets but are not: a found
    /// value that one of them matches whole is left as it is.
    pub allow: Vec<String>,
}

impl Default for RedactionSettings {
    /// On, with the built-in rules only.
    fn default() -> Self {
        Self {
            enabled: true,
            patterns: Vec::new(),
            secrets: Vec::new(),
            allow: Vec::new(),
        }
    }
}

/// Why the redaction settings cannot be used; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum RedactionError {
    #[error(
        "redaction pattern kind {0:?} must be 1 to 40 lower case letters, digits or '_', starting with a letter"
    )]
    InvalidKind(String),
    #[error("redaction pattern of kind {kind} is not a valid regular expression: {reason}")]
    InvalidPattern { kind: String, reason: String },
    #[error(
        "redaction pattern of kind {kind} can match empty text; it must match at least one character"
    )]
    EmptyMatch { kind: String },
    #[error("redaction allowlist entry {index} is not a valid regular expression: {reason}")]
    InvalidAllow { index: usize, reason: String },
    #[error("the redaction patterns cannot be compiled together: {0}")]
    Compile(String),
}

/// Finds and replaces secrets in what agents emit. Cheap to share (`Arc`).
pub struct Redactor {
    /// `None` when redaction is off.
    scanner: Option<Scanner>,
    rules: usize,
    secrets: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("enabled", &self.is_enabled())
            .field("rules", &self.rules)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor for `settings`: the built-in rules, then the operator's.
    pub fn new(settings: &RedactionSettings) -> Result<Self, RedactionError> {
        if !settings.enabled {
            return Ok(Self::disabled());
        }
        let mut sources: Vec<Source> = Vec::new();
        for rule in &settings.patterns {
            check_kind(&rule.kind)?;
            sources.push(Source {
                kind: rule.kind.clone(),
                regex: rule.regex.clone(),
                min_entropy: 0.0,
                letters_and_digits: false,
            });
        }
        for rule in rules::builtin() {
            sources.push(Source {
                kind: rule.kind,
                regex: rule.regex,
                min_entropy: rule.entropy.unwrap_or(0.0),
                letters_and_digits: rule.letters_and_digits,
            });
        }
        let patterns = compile_patterns(&sources)?;
        let exact = compile_exact(&settings.secrets)?;
        let allow = compile_allow(&settings.allow)?;
        let rules = patterns.rules.len();
        Ok(Self {
            scanner: Some(Scanner {
                patterns: Some(patterns),
                exact,
                allow,
                caches: Mutex::default(),
            }),
            rules,
            secrets: settings.secrets.len(),
        })
    }

    /// The built-in rules alone, compiled once per process.
    ///
    /// # Panics
    /// If the built-in rules do not compile: a test compiles them on every build.
    pub fn builtin() -> Arc<Self> {
        static BUILTIN: OnceLock<Arc<Redactor>> = OnceLock::new();
        Arc::clone(BUILTIN.get_or_init(|| {
            let redactor = Self::new(&RedactionSettings::default())
                .unwrap_or_else(|error| panic!("the built-in redaction rules: {error}"));
            Arc::new(redactor)
        }))
    }

    /// A redactor that changes nothing (`[redaction] enabled = false`).
    pub const fn disabled() -> Self {
        Self {
            scanner: None,
            rules: 0,
            secrets: 0,
        }
    }

    /// Whether anything is redacted.
    pub const fn is_enabled(&self) -> bool {
        self.scanner.is_some()
    }

    /// How many patterns (built-in and the operator's) are looked for.
    pub const fn rule_count(&self) -> usize {
        self.rules
    }

    /// How many known secret values are looked for (each also encoded).
    pub const fn known_secret_count(&self) -> usize {
        self.secrets
    }

    /// `text` with every secret replaced, and what was replaced.
    pub fn redact_text(&self, text: &str) -> (String, Redactions) {
        match &self.scanner {
            Some(scanner) => {
                let redacted = scanner.redact(text, 0, false);
                (redacted.text, redacted.redactions)
            }
            None => (text.to_owned(), Redactions::none()),
        }
    }

    /// Whether `text` holds a secret that would be redacted.
    pub fn finds_secret(&self, text: &str) -> bool {
        self.scanner
            .as_ref()
            .is_some_and(|scanner| scanner.finds_any(text))
    }

    /// Redacts every string (and object key) in `value`, in place.
    pub fn redact_json(&self, value: &mut serde_json::Value) -> Redactions {
        let mut redactions = Redactions::none();
        if let Some(scanner) = &self.scanner {
            json::redact(scanner, value, &mut redactions);
        }
        redactions
    }

    /// Like [`Redactor::redact_json`], leaving the string at `pointer` alone (the
    /// caller puts text redacted otherwise there).
    pub fn redact_json_except(&self, value: &mut serde_json::Value, pointer: &str) -> Redactions {
        let slot = value.pointer_mut(pointer).map(std::mem::take);
        let redactions = self.redact_json(value);
        if let (Some(slot), Some(place)) = (slot, value.pointer_mut(pointer)) {
            *place = slot;
        }
        redactions
    }

    /// A stream of text to redact as it arrives.
    pub fn stream(&self) -> TextStream {
        TextStream::new()
    }

    fn scanner(&self) -> Option<&Scanner> {
        self.scanner.as_ref()
    }
}

/// Checks an operator's kind name.
fn check_kind(kind: &str) -> Result<(), RedactionError> {
    let valid = (1..=40).contains(&kind.len())
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(RedactionError::InvalidKind(kind.to_owned()))
    }
}

/// The regex syntax of every pattern: Unicode, with `\b` refused (the streaming
/// DFA cannot run Unicode word boundaries; `(?-u:\b)` works).
fn syntax_config() -> syntax::Config {
    syntax::Config::new()
}

/// A rule to compile.
struct Source {
    kind: String,
    regex: String,
    min_entropy: f64,
    letters_and_digits: bool,
}

/// Compiles the rules, in priority order.
fn compile_patterns(sources: &[Source]) -> Result<Patterns, RedactionError> {
    let mut rules = Vec::with_capacity(sources.len());
    for Source {
        kind,
        regex,
        min_entropy,
        letters_and_digits,
    } in sources
    {
        let alone = meta::Regex::builder()
            .syntax(syntax_config())
            .build(regex)
            .map_err(|error| RedactionError::InvalidPattern {
                kind: kind.clone(),
                reason: error.to_string(),
            })?;
        let hir = syntax::parse_with(regex, &syntax_config()).map_err(|error| {
            RedactionError::InvalidPattern {
                kind: kind.clone(),
                reason: error.to_string(),
            }
        })?;
        if hir.properties().minimum_len() == Some(0) {
            return Err(RedactionError::EmptyMatch { kind: kind.clone() });
        }
        // The DFA of each rule alone, so that an error names the rule.
        DFA::builder()
            .syntax(syntax_config())
            .build(regex)
            .map_err(|error| RedactionError::InvalidPattern {
                kind: kind.clone(),
                reason: if regex.contains("\\b") {
                    format!(
                        "{error} (write a word boundary as (?-u:\\b): streamed text is matched \
                         byte by byte)"
                    )
                } else {
                    error.to_string()
                },
            })?;
        let capture = alone
            .group_info()
            .to_index(regex_automata::PatternID::ZERO, "secret")
            .is_some()
            .then_some(alone);
        rules.push(Rule {
            kind: Arc::from(kind.as_str()),
            capture,
            min_entropy: *min_entropy,
            letters_and_digits: *letters_and_digits,
        });
    }
    let regexes: Vec<&str> = sources.iter().map(|source| source.regex.as_str()).collect();
    let search = meta::Regex::builder()
        .syntax(syntax_config())
        .configure(meta::Config::new().match_kind(MATCH_KIND))
        .build_many(&regexes)
        .map_err(|error| RedactionError::Compile(error.to_string()))?;
    let live = DFA::builder()
        .syntax(syntax_config())
        .configure(DFA::config().match_kind(MATCH_KIND))
        .build_many(&regexes)
        .map_err(|error| RedactionError::Compile(error.to_string()))?;
    Ok(Patterns {
        search,
        live,
        rules,
    })
}

/// Compiles the known values and their encoded forms.
fn compile_exact(secrets: &[KnownSecret]) -> Result<Option<Exact>, RedactionError> {
    let mut values: Vec<String> = Vec::new();
    let mut kinds: Vec<Arc<str>> = Vec::new();
    for secret in secrets {
        check_kind(&secret.kind)?;
        let kind: Arc<str> = Arc::from(secret.kind.as_str());
        for form in encode::forms(&secret.value) {
            if !values.contains(&form) {
                values.push(form);
                kinds.push(Arc::clone(&kind));
            }
        }
    }
    if values.is_empty() {
        return Ok(None);
    }
    let automaton = ExactNfa::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(&values)
        .map_err(|error| RedactionError::Compile(error.to_string()))?;
    Ok(Some(Exact { automaton, kinds }))
}

/// Compiles the allowlist: each entry must match a found value whole.
fn compile_allow(allow: &[String]) -> Result<Option<meta::Regex>, RedactionError> {
    if allow.is_empty() {
        return Ok(None);
    }
    let mut whole = Vec::with_capacity(allow.len());
    for (index, entry) in allow.iter().enumerate() {
        meta::Regex::new(entry).map_err(|error| RedactionError::InvalidAllow {
            index,
            reason: error.to_string(),
        })?;
        whole.push(format!(r"\A(?:{entry})\z"));
    }
    let regex = meta::Regex::new_many(&whole)
        .map_err(|error| RedactionError::Compile(error.to_string()))?;
    Ok(Some(regex))
}

#[cfg(test)]
mod tests;
