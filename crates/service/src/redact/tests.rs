//! The redactor's rules, exact values, allowlist and streaming.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn marker(kind: &str) -> String {
    format!("[REDACTED:{kind}]")
}

/// Streams `text` cut at `cuts` (byte offsets, any order), releasing after each
/// piece, and returns everything given out, checking the held tail's bound.
fn streamed(redactor: &Redactor, text: &str, cuts: &[usize]) -> (String, Redactions) {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|cut| cut % (text.len() + 1))
        .filter(|cut| text.is_char_boundary(*cut))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut stream = redactor.stream();
    let mut out = String::new();
    let mut redactions = Redactions::none();
    let mut at = 0;
    for cut in cuts.into_iter().chain([text.len()]) {
        stream.push(&text[at..cut]);
        at = cut;
        let (released, counted) = stream.release(redactor);
        out.push_str(&released);
        redactions.merge(&counted);
        assert!(stream.held() <= MAX_HELD_BYTES, "held {}", stream.held());
    }
    let (rest, counted) = stream.finish(redactor);
    out.push_str(&rest);
    redactions.merge(&counted);
    (out, redactions)
}

/// Every example of the rules file: (kind, before, secret, after).
fn examples() -> Vec<(String, String, String, String)> {
    rules::builtin()
        .into_iter()
        .flat_map(|rule| {
            rule.examples.into_iter().map(move |example| {
                (
                    rule.kind.clone(),
                    example.before,
                    example.secret.concat(),
                    example.after,
                )
            })
        })
        .collect()
}

#[test]
fn every_builtin_rule_redacts_its_examples_whole_and_streamed_at_every_cut() {
    let redactor = Redactor::builtin();
    let examples = examples();
    assert!(examples.len() >= 30, "{} examples", examples.len());
    for (kind, before, secret, after) in examples {
        let text = format!("{before}{secret}{after}");
        let expected = format!("{before}{}{after}", marker(&kind));
        let (whole, redactions) = redactor.redact_text(&text);
        assert_eq!(whole, expected, "{kind}: {text:?}");
        assert_eq!(redactions.count(&kind), 1, "{kind}");
        assert_eq!(redactions.total(), 1, "{kind}: {redactions:?}");
        for cut in 0..=text.len() {
            let (out, counted) = streamed(&redactor, &text, &[cut]);
            assert_eq!(out, expected, "{kind} cut at {cut}");
            assert_eq!(counted, redactions, "{kind} cut at {cut}");
        }
    }
}

#[test]
fn rule_kinds_are_distinct_names_and_every_rule_has_an_example() {
    let rules = rules::builtin();
    for rule in &rules {
        check_kind(&rule.kind).unwrap_or_else(|e| panic!("{e}"));
        assert!(!rule.examples.is_empty(), "{} has no example", rule.kind);
    }
    let mut kinds: Vec<_> = rules.iter().map(|rule| rule.kind.as_str()).collect();
    kinds.sort_unstable();
    let count = kinds.len();
    kinds.dedup();
    assert_eq!(kinds.len(), count, "one rule per kind");
}

#[test]
fn ordinary_text_is_left_exactly_as_it_was() {
    let redactor = Redactor::builtin();
    for text in [
        "The quick brown fox jumps over the lazy dog.",
        "Run `cargo test --workspace` and look at https://docs.rs/regex/latest/regex/.",
        "password=changeme and token: 12345 are placeholders; secret = \"\"",
        "Basic setup: see the bearer of good news. Authorization is granted.",
        "fn main() { let key = config.api_key(); println!(\"{key:?}\"); }",
        "postgres://tandem@localhost:5432/tandem and http://example.com:8080/x",
        "naïve café — 東京 🚀 -----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "0 1 2 3 4 5 6 7 8 9 10 11 12 ",
        "sk-ant-is not a key, ghp_short, AKIA1234 either",
    ] {
        assert!(!redactor.finds_secret(text), "{text}");
        assert_eq!(redactor.redact_text(text).0, text);
        let cuts: Vec<usize> = (0..text.len()).collect();
        assert_eq!(streamed(&redactor, text, &cuts).0, text, "{text}");
    }
}

#[test]
fn placeholders_and_low_entropy_values_are_kept_but_random_ones_are_not() {
    let redactor = Redactor::builtin();
    for kept in [
        "password=changemeplease",
        "token: aaaaaaaaaaaaaaaaaaaaaa",
        "API_KEY=${API_KEY}",
        "secret_key = settings.SECRET_KEY",
        "let api_key = config.get_api_key_value();",
        "token_count = 123456789",
        "password = request.form.get(\"password\")",
    ] {
        assert_eq!(redactor.redact_text(kept).0, kept);
    }
    let (text, _) = redactor.redact_text("API_KEY=Zx81-pQ0vNmr7Lw2 rest");
    assert_eq!(text, "API_KEY=[REDACTED:secret_assignment] rest");
    let (text, _) = redactor.redact_text("password: Summer2024!");
    assert_eq!(text, "password: [REDACTED:secret_assignment]");
}

fn with_secrets(secrets: &[(&str, &str)]) -> Redactor {
    Redactor::new(&RedactionSettings {
        secrets: secrets
            .iter()
            .map(|(kind, value)| KnownSecret {
                kind: (*kind).to_owned(),
                value: (*value).to_owned(),
            })
            .collect(),
        ..RedactionSettings::default()
    })
    .expect("valid settings")
}

#[test]
fn known_values_are_found_plain_and_encoded() {
    let value = "correct horse/battery staple";
    let redactor = with_secrets(&[(ENV_VALUE_KIND, value)]);
    let kind = marker(ENV_VALUE_KIND);
    let (text, redactions) = redactor.redact_text(&format!("DB_PASS={value}\n"));
    assert_eq!(text, format!("DB_PASS={kind}\n"));
    assert_eq!(redactions.count(ENV_VALUE_KIND), 1);
    // Inside an assignment the generic rule finds it: it is still named for
    // what it is.
    let redactor_with_token = with_secrets(&[(ENV_VALUE_KIND, "Zq81-pQ0vNmr7Lw2")]);
    assert_eq!(
        redactor_with_token
            .redact_text("API_TOKEN=Zq81-pQ0vNmr7Lw2")
            .0,
        format!("API_TOKEN={kind}")
    );
    let url = format!("https://x.test/?p={}", "correct%20horse%2Fbattery%20staple");
    assert_eq!(
        redactor.redact_text(&url).0,
        format!("https://x.test/?p={kind}")
    );
    // `Authorization: Basic base64("admin:" + value)`: the value sits at an
    // offset of 6 bytes, a multiple of three, in the encoded blob.
    let basic = "YWRtaW46Y29ycmVjdCBob3JzZS9iYXR0ZXJ5IHN0YXBsZQ==";
    let (redacted, _) = redactor.redact_text(&format!("header {basic}"));
    assert!(
        !redacted.contains("Y29ycmVjdCBob3JzZS9iYXR0ZXJ5IHN0YXBsZQ"),
        "{redacted}"
    );
    assert!(redacted.contains(&kind), "{redacted}");
    for prefix in ["u:", "us:"] {
        let blob = encode_base64(format!("{prefix}{value}").as_bytes());
        let (redacted, redactions) = redactor.redact_text(&blob);
        assert_eq!(
            redactions.count(ENV_VALUE_KIND),
            1,
            "{prefix}: {blob} -> {redacted}"
        );
    }
    let json_escaped = r#"{"v": "a \"quoted\" value!"}"#;
    let redactor = with_secrets(&[(ENV_VALUE_KIND, "a \"quoted\" value!")]);
    assert_eq!(
        redactor.redact_text(json_escaped).0,
        format!(r#"{{"v": "{kind}"}}"#)
    );
}

/// Standard padded base64, written out for the test.
fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_short_known_value_is_found_only_as_itself() {
    let redactor = with_secrets(&[("db_password", "s3cr")]);
    assert_eq!(
        redactor.redact_text("pw s3cr!").0,
        "pw [REDACTED:db_password]!"
    );
    // Its base64 core would be 5 characters: matched by chance, so not looked for.
    assert_eq!(redactor.redact_text("czNjcg==").0, "czNjcg==");
}

#[test]
fn the_operators_patterns_come_first_and_the_allowlist_keeps_whole_values() {
    let redactor = Redactor::new(&RedactionSettings {
        patterns: vec![PatternRule {
            kind: "internal_token".to_owned(),
            regex: r"itk_(?P<secret>[a-z0-9]{12})".to_owned(),
        }],
        allow: vec!["AKIA[A-Z2-7]{12}TEST".to_owned(), "EXAMPLE".to_owned()],
        ..RedactionSettings::default()
    })
    .expect("valid");
    assert_eq!(
        redactor.redact_text("itk_abcdef123456 ok").0,
        "itk_[REDACTED:internal_token] ok"
    );
    let allowed = "AKIAQYLPMN5HHHFPTEST";
    assert_eq!(redactor.redact_text(allowed).0, allowed);
    // An allow entry must match the whole value, not a part of it.
    let key = "AKIAQYLPMN5EXAMPLEZZ";
    assert_eq!(redactor.redact_text(key).0, marker("aws_access_key"));
}

#[test]
fn bad_settings_are_refused_with_what_to_fix() {
    let build = |kind: &str, regex: &str| {
        Redactor::new(&RedactionSettings {
            patterns: vec![PatternRule {
                kind: kind.to_owned(),
                regex: regex.to_owned(),
            }],
            ..RedactionSettings::default()
        })
    };
    assert!(matches!(
        build("Bad Kind", "x+"),
        Err(RedactionError::InvalidKind(_))
    ));
    assert!(matches!(
        build("ok", "(unclosed"),
        Err(RedactionError::InvalidPattern { .. })
    ));
    assert!(matches!(
        build("ok", "a*"),
        Err(RedactionError::EmptyMatch { .. })
    ));
    let error = build("ok", r"\bkey\b").unwrap_err().to_string();
    assert!(error.contains("(?-u:\\b)"), "{error}");
    assert!(build("ok", r"(?-u:\b)key(?-u:\b)").is_ok());
    let bad_allow = Redactor::new(&RedactionSettings {
        allow: vec!["[".to_owned()],
        ..RedactionSettings::default()
    });
    assert!(matches!(
        bad_allow,
        Err(RedactionError::InvalidAllow { index: 0, .. })
    ));
}

#[test]
fn turned_off_it_changes_nothing_and_holds_nothing_back() {
    let redactor = Redactor::new(&RedactionSettings {
        enabled: false,
        ..RedactionSettings::default()
    })
    .expect("valid");
    assert!(!redactor.is_enabled());
    let text = "AKIAQYLPMN5HHHFPZAM2";
    assert_eq!(redactor.redact_text(text).0, text);
    let mut stream = redactor.stream();
    stream.push("AKIA");
    assert_eq!(stream.release(&redactor).0, "AKIA");
    assert_eq!(stream.held(), 0);
}

#[test]
fn json_strings_and_keys_are_redacted_and_counted() {
    let redactor = Redactor::builtin();
    let aws = ["AKIA", "QYLPMN5HHHFPZAM2"].concat();
    let mut value = json!({
        "title": format!("export AWS_ACCESS_KEY_ID={aws}"),
        "rawInput": { "env": { aws.clone(): true }, "n": 3 },
        "content": [{ "type": "text", "text": "nothing here" }],
    });
    let redactions = redactor.redact_json(&mut value);
    assert_eq!(redactions.count("aws_access_key"), 2);
    assert_eq!(
        value,
        json!({
            "title": "export AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key]",
            "rawInput": { "env": { "[REDACTED:aws_access_key]": true }, "n": 3 },
            "content": [{ "type": "text", "text": "nothing here" }],
        })
    );
    let mut chunk = json!({ "content": { "text": format!("a {aws}") }, "other": aws });
    let redactions = redactor.redact_json_except(&mut chunk, "/content/text");
    assert_eq!(redactions.total(), 1);
    assert_eq!(chunk["content"]["text"], format!("a {aws}"), "left alone");
    assert_eq!(chunk["other"], "[REDACTED:aws_access_key]");
}

#[test]
fn the_held_tail_is_only_what_could_still_become_a_secret() {
    let redactor = Redactor::builtin();
    let mut stream = redactor.stream();
    stream.push("Hello there. ");
    assert_eq!(stream.release(&redactor).0, "Hello there. ");
    assert_eq!(stream.held(), 0);
    stream.push("key: AKIAQYLP");
    let (released, _) = stream.release(&redactor);
    assert_eq!(released, "key: ", "the key's start waits");
    assert_eq!(stream.held(), "AKIAQYLP".len());
    stream.push("MN5HHHFPZAM2 done");
    let (released, redactions) = stream.release(&redactor);
    assert_eq!(released, "[REDACTED:aws_access_key] ");
    assert_eq!(redactions.count("aws_access_key"), 1);
    assert_eq!(stream.finish(&redactor).0, "done");
}

#[test]
fn a_candidate_outgrowing_the_bound_is_judged_then() {
    let redactor = Redactor::builtin();
    let mut stream = redactor.stream();
    stream.push("-----BEGIN PRIVATE KEY-----\n");
    assert_eq!(stream.release(&redactor).0, "");
    let line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n";
    let mut released = String::new();
    let mut pushed = 0;
    while released.is_empty() {
        stream.push(line);
        pushed += line.len();
        released.push_str(&stream.release(&redactor).0);
        assert!(stream.held() <= MAX_HELD_BYTES);
        assert!(pushed <= MAX_HELD_BYTES + 2 * line.len(), "never released");
    }
    assert_eq!(stream.held(), 0, "released at the bound");
    assert_eq!(released, "[REDACTED:private_key]");
}

/// Ordinary text of an agent: words, code, punctuation, some non-ASCII.
fn prose() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[a-zA-Z]{1,12}",
            "[0-9]{1,6}",
            Just(" ".to_owned()),
            Just("\n".to_owned()),
            "[ .,;:=\"'()/@#-]",
            Just("é".to_owned()),
            Just("🚀".to_owned()),
            Just("key: ".to_owned()),
            Just("https://".to_owned()),
            Just("-----".to_owned()),
        ],
        0..40,
    )
    .prop_map(|pieces| pieces.concat())
}

/// A secret of the examples or a known value, and how it is redacted.
fn secret(known: &'static str) -> impl Strategy<Value = String> {
    let mut secrets: Vec<String> = examples()
        .into_iter()
        .map(|(_, before, secret, after)| format!("{before}{secret}{after}"))
        .collect();
    secrets.push(format!("PASS={known}"));
    proptest::sample::select(secrets)
}

const KNOWN: &str = "kn0wn-v4lue-of-an-env-var";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A secret in ordinary text, cut anywhere into any number of pieces with a
    /// release after each, comes out exactly as the whole text redacted at once:
    /// so no secret slips through a cut.
    #[test]
    fn streamed_text_is_redacted_as_if_it_came_whole(
        before in prose(),
        secret in secret(KNOWN),
        after in prose(),
        cuts in proptest::collection::vec(0usize..4096, 0..12),
    ) {
        let redactor = with_secrets(&[(ENV_VALUE_KIND, KNOWN)]);
        // Apart from its neighbours: `xAKIA...` or `...KEYx` are not secrets.
        let text = format!("{before} {secret}\n{after}");
        let whole = redactor.redact_text(&text);
        let (out, redactions) = streamed(&redactor, &text, &cuts);
        prop_assert_eq!(&out, &whole.0);
        prop_assert_eq!(&redactions, &whole.1);
        prop_assert!(redactions.total() >= 1);
        prop_assert!(!out.contains(KNOWN));
    }

    /// Text with no secret in it passes unchanged, however it is cut.
    #[test]
    fn text_without_secrets_passes_unchanged(
        text in prose(),
        cuts in proptest::collection::vec(0usize..4096, 0..12),
    ) {
        let redactor = Redactor::builtin();
        prop_assume!(!redactor.finds_secret(&text));
        let (out, redactions) = streamed(&redactor, &text, &cuts);
        prop_assert_eq!(out, text);
        prop_assert!(redactions.is_empty());
    }
}
