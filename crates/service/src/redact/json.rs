//! Redaction inside JSON: every string value and object key, as text on its own.
//! A secret split across two strings of one document is not seen; a tool call's
//! fields hold whole values.

use serde_json::Value;
use tandem_domain::Redactions;

use super::scan::Scanner;

/// Redacts every string of `value` in place, counting into `redactions`.
pub(super) fn redact(scanner: &Scanner, value: &mut Value, redactions: &mut Redactions) {
    match value {
        Value::String(text) => {
            if let Some(redacted) = redacted(scanner, text, redactions) {
                *text = redacted;
            }
        }
        Value::Array(items) => {
            for item in items {
                redact(scanner, item, redactions);
            }
        }
        Value::Object(map) => {
            let keyed = map.keys().any(|key| scanner.finds_any(key));
            if keyed {
                let entries = std::mem::take(map);
                for (key, mut item) in entries {
                    redact(scanner, &mut item, redactions);
                    let key = redacted(scanner, &key, redactions).unwrap_or(key);
                    map.insert(key, item);
                }
            } else {
                for item in map.values_mut() {
                    redact(scanner, item, redactions);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `text` redacted, or `None` when nothing in it is.
fn redacted(scanner: &Scanner, text: &str, redactions: &mut Redactions) -> Option<String> {
    let result = scanner.redact(text, 0, false);
    if result.redactions.is_empty() {
        return None;
    }
    redactions.merge(&result.redactions);
    Some(result.text)
}
