//! The rules the server enforces on request fields, stated as JSON Schema
//! (`pattern`, `maxLength`) in the OpenAPI document, so that a request the
//! document allows is never refused for its shape, and one it forbids is.
//!
//! The patterns use only what ECMA-262, Python's `re` and Rust's `regex`
//! read alike: character classes with `\uXXXX` escapes, `(?:...)` groups and
//! counted repetition. Whitespace is spelled out (Unicode `White_Space`, as
//! Rust's `str::trim` sees it) instead of `\s`, whose meaning differs between
//! them. The tests below check each pattern against the parser it describes.

use std::collections::BTreeSet;

use tandem_domain::{AgentProfileName, TextLimits, Ttl};
use utoipa::openapi::schema::{Object, Schema};
use utoipa::openapi::{OpenApi, RefOr};

/// Control characters (Unicode `Cc`), refused in labels.
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

/// Control characters but tab, newline and carriage return, refused in
/// multi-line texts.
const CONTROL_BUT_LINE_BREAKS: &str = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f";

/// Whitespace outside the control range (the rest of Unicode `White_Space`:
/// U+0009–U+000D and U+0085 are control characters).
const SPACES: &str = r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A one-line label: no control characters, and something besides whitespace.
pub(crate) fn label_pattern() -> String {
    format!("^[^{CONTROL}]*[^{CONTROL}{SPACES}][^{CONTROL}]*$")
}

/// A multi-line text: no control characters but line breaks and tabs, and
/// something besides whitespace.
pub(crate) fn body_pattern() -> String {
    format!("^[^{CONTROL_BUT_LINE_BREAKS}]*[^{CONTROL}{SPACES}][^{CONTROL_BUT_LINE_BREAKS}]*$")
}

/// A webhook URL as the server reads it ([`tandem_domain::WebhookUrl::parse`]):
/// `http://` or `https://` (any case), then no whitespace or control
/// characters. Whether its host resolves to an address the server may call is
/// checked when it is saved (422 `WEBHOOK_URL_REFUSED`): no schema can say that.
pub(crate) fn url_pattern() -> String {
    format!("^[Hh][Tt][Tt][Pp][Ss]?://[^{CONTROL}{SPACES}]+$")
}

/// An agent profile's name, when the document does not list a server's own
/// profiles: a slug ([`AgentProfileName::parse`]).
pub(crate) fn slug_pattern() -> String {
    "^[a-z0-9][a-z0-9_-]*$".to_owned()
}

/// A duration as clients send it ([`Ttl::parse_single`]): a number without
/// leading zeros and one unit, at most `30d` in that unit.
pub(crate) fn duration_pattern() -> String {
    let units: Vec<String> = Ttl::UNITS
        .iter()
        .map(|(unit, secs)| format!("{}{unit}", one_to(u64::from(Ttl::MAX.as_secs() / secs))))
        .collect();
    format!("^(?:{})$", units.join("|"))
}

/// An event's `seq` as a header carries it (as the server wrote it in an
/// `id:` line): a number without leading zeros up to `max`, with optional
/// spaces or tabs around; empty counts as absent.
pub(crate) fn seq_header_pattern(max: u64) -> String {
    format!("^[ \\t]*(?:0|{})?[ \\t]*$", one_to(max))
}

/// A regex for the decimal numbers `1..=max` written without leading zeros:
/// fewer digits than `max`, or as many with a common prefix and then a lower
/// digit, or `max` itself.
fn one_to(max: u64) -> String {
    let digits: Vec<u8> = max.to_string().bytes().map(|b| b - b'0').collect();
    let width = digits.len();
    let mut branches = Vec::new();
    match width {
        0 | 1 => {}
        2 => branches.push("[1-9]".to_owned()),
        _ => branches.push(format!("[1-9][0-9]{{0,{}}}", width - 2)),
    }
    for (i, &digit) in digits.iter().enumerate() {
        let lowest = u8::from(i == 0);
        if digit <= lowest {
            continue;
        }
        let prefix: String = digits[..i].iter().map(|d| char::from(b'0' + d)).collect();
        let lower = if digit - 1 == lowest {
            lowest.to_string()
        } else {
            format!("[{lowest}-{}]", digit - 1)
        };
        let rest = width - i - 1;
        let tail = match rest {
            0 => String::new(),
            1 => "[0-9]".to_owned(),
            _ => format!("[0-9]{{{rest}}}"),
        };
        branches.push(format!("{prefix}{lower}{tail}"));
    }
    branches.push(max.to_string());
    format!("(?:{})", branches.join("|"))
}

/// What one request field must be.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A one-line label of at most this many characters.
    Label(usize),
    /// A multi-line text of at most this many characters.
    Body(usize),
    /// A duration ([`duration_pattern`]).
    Duration,
    /// A webhook URL ([`url_pattern`]) of at most this many characters.
    Url(usize),
}

/// Every request field with a rule: `(schema, property, rule)`.
fn table(limits: &TextLimits) -> Vec<(&'static str, &'static str, Rule)> {
    use Rule::{Body, Duration, Label, Url};
    use tandem_domain::{AgentModeId, ApiKeyName, UserId, WebhookDescription, WebhookUrl};
    vec![
        ("CreateSessionRequest", "title", Label(limits.title_chars)),
        ("CreateSessionRequest", "expiresIn", Duration),
        ("CreateSessionRequest", "idleTimeout", Duration),
        (
            "CreateSessionRequest",
            "hostDisplayName",
            Label(limits.display_name_chars),
        ),
        (
            "CreateSessionRequest",
            "hostUserId",
            Label(UserId::MAX_CHARS),
        ),
        ("UpdateSessionRequest", "title", Label(limits.title_chars)),
        ("UpdateSessionRequest", "expiresIn", Duration),
        ("CloseSessionRequest", "summary", Body(limits.summary_chars)),
        ("CreateInviteRequest", "expiresIn", Duration),
        (
            "JoinRequest",
            "displayName",
            Label(limits.display_name_chars),
        ),
        ("JoinRequest", "userId", Label(UserId::MAX_CHARS)),
        ("PostCommentRequest", "text", Body(limits.comment_chars)),
        ("PromptTextRequest", "text", Body(limits.prompt_chars)),
        (
            "SetAgentModeRequest",
            "modeId",
            Label(AgentModeId::MAX_CHARS),
        ),
        ("CreateApiKeyRequest", "name", Label(ApiKeyName::MAX_CHARS)),
        ("CreateWebhookRequest", "url", Url(WebhookUrl::MAX_CHARS)),
        (
            "CreateWebhookRequest",
            "description",
            Label(WebhookDescription::MAX_CHARS),
        ),
        ("UpdateWebhookRequest", "url", Url(WebhookUrl::MAX_CHARS)),
        (
            "UpdateWebhookRequest",
            "description",
            Label(WebhookDescription::MAX_CHARS),
        ),
    ]
}

/// Writes every rule of [`table`] into the document's request schemas, with
/// the deployment's text limits, and the deployment's agent profiles as the
/// values `agentProfile` may take (`None`: any profile name, for a document of
/// no server in particular). Returns the `schema.property` pairs it could not
/// find (none, unless a request type was renamed).
pub(crate) fn apply(
    openapi: &mut OpenApi,
    limits: &TextLimits,
    profiles: Option<&BTreeSet<AgentProfileName>>,
) -> Vec<String> {
    let label = label_pattern();
    let body = body_pattern();
    let duration = duration_pattern();
    let url = url_pattern();
    let mut missing = Vec::new();
    let schemas = openapi
        .components
        .as_mut()
        .map(|components| &mut components.schemas);
    let Some(schemas) = schemas else {
        return vec!["components".to_owned()];
    };
    for (schema, property, rule) in table(limits) {
        let Some(field) = schemas
            .get_mut(schema)
            .and_then(|schema| object(schema))
            .and_then(|object| object.properties.get_mut(property))
            .and_then(object)
        else {
            missing.push(format!("{schema}.{property}"));
            continue;
        };
        let (pattern, max_length) = match rule {
            Rule::Label(max) => (Some(&label), Some(max)),
            Rule::Body(max) => (Some(&body), Some(max)),
            Rule::Duration => (Some(&duration), None),
            Rule::Url(max) => (Some(&url), Some(max)),
        };
        field.pattern = pattern.cloned();
        field.min_length = Some(1);
        field.max_length = max_length;
    }
    let agent_profile = schemas
        .get_mut("CreateSessionRequest")
        .and_then(object)
        .and_then(|object| object.properties.get_mut("agentProfile"))
        .and_then(object);
    match (agent_profile, profiles) {
        (Some(field), Some(profiles)) => {
            // `null` stays allowed: it picks the default profile, as absence does.
            let mut names: Vec<serde_json::Value> = profiles
                .iter()
                .map(|name| serde_json::Value::from(name.as_str()))
                .collect();
            names.push(serde_json::Value::Null);
            field.enum_values = Some(names);
        }
        (Some(field), None) => {
            field.pattern = Some(slug_pattern());
            field.min_length = Some(1);
            field.max_length = Some(AgentProfileName::MAX_CHARS);
        }
        (None, _) => missing.push("CreateSessionRequest.agentProfile".to_owned()),
    }
    missing
}

/// The object schema behind a property or component, if it is one.
fn object(schema: &mut RefOr<Schema>) -> Option<&mut Object> {
    match schema {
        RefOr::T(Schema::Object(object)) => Some(object),
        RefOr::T(_) | RefOr::Ref(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use regex_automata::meta::Regex;
    use tandem_domain::{CommentText, DisplayName, TextLimits, Ttl};

    use super::*;

    /// Whether `text` matches `pattern`, compiling each pattern once per thread.
    fn matches(pattern: &str, text: &str) -> bool {
        thread_local! {
            static COMPILED: std::cell::RefCell<std::collections::HashMap<String, Regex>> =
                std::cell::RefCell::default();
        }
        COMPILED.with_borrow_mut(|compiled| {
            compiled
                .entry(pattern.to_owned())
                .or_insert_with(|| Regex::new(pattern).expect("the pattern compiles"))
                .is_match(text)
        })
    }

    #[test]
    fn numbers_up_to_a_bound() {
        for max in [
            1,
            7,
            9,
            10,
            30,
            99,
            100,
            720,
            43_200,
            2_592_000,
            1_000_000,
            i64::MAX as u64,
        ] {
            let pattern = format!("^{}$", one_to(max));
            // Every number near zero, near each power of ten and near the bound.
            let powers = (0..19).map(|exponent| 10_u64.pow(exponent));
            let near = |n: u64| n.saturating_sub(300)..=n.saturating_add(300);
            let mut numbers: Vec<u64> = (0..=2_000).collect();
            numbers.extend(powers.chain([max]).flat_map(near));
            for n in numbers {
                assert_eq!(
                    matches(&pattern, &n.to_string()),
                    (1..=max).contains(&n),
                    "{n} against {max}"
                );
            }
            assert!(!matches(&pattern, &format!("0{max}")));
        }
    }

    #[test]
    fn a_seq_header_fits_the_document_exactly_when_the_stream_takes_it() {
        let pattern = seq_header_pattern(crate::routes::events::MAX_SEQ);
        for value in [
            "",
            " ",
            "0",
            "00",
            "007",
            "7",
            " 42\t",
            "+1",
            "-1",
            "1.5",
            "x",
            "1 2",
            "9223372036854775807",
            "09223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "99999999999999999999",
        ] {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("last-event-id", value.parse().expect("a header value"));
            let server = crate::routes::events::last_event_id(&headers).is_ok();
            assert_eq!(matches(&pattern, value), server, "{value:?}");
        }
    }

    /// Text a fuzzer could send: pieces that sit on every rule's edge.
    fn messy_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => "[a-z]{1,3}",
            2 => Just(" ".to_owned()),
            1 => Just("\n".to_owned()),
            1 => Just("\t".to_owned()),
            1 => Just("\r".to_owned()),
            1 => Just("\u{0}".to_owned()),
            1 => Just("\u{7f}".to_owned()),
            1 => Just("\u{85}".to_owned()),
            1 => Just("\u{a0}".to_owned()),
            1 => Just("\u{3000}".to_owned()),
            1 => Just("\u{feff}".to_owned()),
            1 => Just("\u{200b}".to_owned()),
            1 => Just("😀".to_owned()),
            2 => any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    fn within(text: &str, max: usize) -> bool {
        text.chars().count() <= max
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn a_label_fits_the_document_exactly_when_the_server_takes_it(raw in messy_text(), max in 1_usize..40) {
            let limits = TextLimits { display_name_chars: max, ..TextLimits::DEFAULT };
            let document = matches(&label_pattern(), &raw) && within(&raw, max);
            prop_assert_eq!(DisplayName::parse(&raw, &limits).is_ok(), document);
        }

        #[test]
        fn a_text_fits_the_document_exactly_when_the_server_takes_it(raw in messy_text(), max in 1_usize..40) {
            let limits = TextLimits { comment_chars: max, ..TextLimits::DEFAULT };
            let document = matches(&body_pattern(), &raw) && within(&raw, max);
            prop_assert_eq!(CommentText::parse(&raw, &limits).is_ok(), document);
        }

        #[test]
        fn a_duration_fits_the_document_exactly_when_the_server_takes_it(
            raw in "[0-9]{0,11}[smhdx]?|(0|[1-9][0-9]{0,7})[smhd]|[0-9]{1,3}[smhd][0-9]{1,2}[smhd]"
        ) {
            prop_assert_eq!(Ttl::parse_single(&raw).is_ok(), matches(&duration_pattern(), &raw), "{:?}", raw);
        }
    }

    #[test]
    fn a_url_fits_the_document_when_the_server_reads_it() {
        let pattern = url_pattern();
        for raw in [
            "https://hooks.example.com/tandem",
            "HTTP://1.2.3.4:8080/x?y=1",
            "https://[2001:db8::1]/",
            "https:/hooks.example.com",
            "https://hooks.example.com/a b",
            " https://hooks.example.com",
            "https://hooks.example.com/\n",
            "ftp://hooks.example.com",
            "hooks.example.com",
            "https://",
        ] {
            let server = tandem_domain::WebhookUrl::parse(raw).is_ok();
            // The server may refuse more (a URL the url crate cannot read),
            // never less.
            assert!(!server || matches(&pattern, raw), "{raw:?}");
        }
    }

    #[test]
    fn a_profile_name_fits_the_document_when_it_is_a_slug() {
        for raw in [
            "echo",
            "codex-acp",
            "0",
            "a_b",
            "",
            "Echo",
            "-x",
            "é",
            "a b",
            &"a".repeat(65),
        ] {
            let document =
                matches(&slug_pattern(), raw) && within(raw, AgentProfileName::MAX_CHARS);
            assert_eq!(AgentProfileName::parse(raw).is_ok(), document, "{raw:?}");
        }
    }

    #[test]
    fn durations_at_each_unit_s_bound() {
        let pattern = duration_pattern();
        for good in ["1s", "2592000s", "43200m", "720h", "30d"] {
            assert!(
                matches(&pattern, good) && Ttl::parse_single(good).is_ok(),
                "{good}"
            );
        }
        for bad in ["0s", "2592001s", "43201m", "721h", "31d", "1d12h", "01h"] {
            assert!(
                !matches(&pattern, bad) && Ttl::parse_single(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_rule_finds_its_field() {
        let mut document = crate::openapi();
        assert_eq!(
            apply(&mut document, &TextLimits::DEFAULT, None),
            Vec::<String>::new()
        );
    }
}
