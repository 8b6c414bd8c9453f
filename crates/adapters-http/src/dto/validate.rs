//! Helpers to parse request fields into domain values, naming each failure after
//! the request's own field and collecting every failure of a request at once.

use serde::{Deserialize, Deserializer, de};
use tandem_domain::ValidationError;
use tandem_service::Invalid;

/// Re-labels a domain validation error with the request field it came from
/// (a `Ttl` says `duration`; the client sent `expiresIn`).
pub(crate) fn at<T>(
    field: &'static str,
    result: Result<T, ValidationError>,
) -> Result<T, ValidationError> {
    result.map_err(|error| ValidationError::new(field, error.problem))
}

/// Parses an optional field; absent stays `None`.
pub(crate) fn optional<T>(
    field: &'static str,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, ValidationError>,
) -> Result<Option<T>, ValidationError> {
    raw.map(|raw| at(field, parse(raw))).transpose()
}

/// Collects the failures among a request's parsed fields.
pub(crate) fn invalid(errors: impl IntoIterator<Item = Option<ValidationError>>) -> Invalid {
    Invalid(errors.into_iter().flatten().collect())
}

/// Reads an optional `u32` as JSON Schema counts an `integer`: `5` and `5.0`
/// alike (a number whose fraction is zero), so that a client whose JSON
/// library writes whole numbers as floats is not refused.
pub(crate) fn whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    // A float's text is its shortest exact form (`4532.0`, `1e300`): a whole
    // number is digits and a zero fraction.
    let text = number.to_string();
    let digits = match text.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
        Some(_) => "",
        None => text.as_str(),
    };
    digits.parse::<u32>().ok().map(Some).ok_or_else(|| {
        de::Error::custom(format!(
            "expected a whole number from 0 to {}, got {number}",
            u32::MAX
        ))
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "super::whole_number")]
        uses: Option<u32>,
    }

    /// The number read, `Ok(None)` when absent, `Err(())` when refused.
    fn read(json: &str) -> Result<Option<u32>, ()> {
        serde_json::from_str::<Body>(json)
            .map(|body| body.uses)
            .map_err(drop)
    }

    #[test]
    fn a_whole_number_may_be_written_as_a_float() {
        assert_eq!(read("{}"), Ok(None));
        assert_eq!(read(r#"{"uses": null}"#), Ok(None));
        assert_eq!(read(r#"{"uses": 5}"#), Ok(Some(5)));
        assert_eq!(read(r#"{"uses": 5.0}"#), Ok(Some(5)));
        assert_eq!(read(r#"{"uses": 4294967295}"#), Ok(Some(u32::MAX)));
        for bad in ["5.5", "-1", "4294967296", "4294967296.0", "1e300", "\"5\""] {
            assert_eq!(read(&format!(r#"{{"uses": {bad}}}"#)), Err(()), "{bad}");
        }
    }
}
