//! Helpers to parse request fields into domain values, naming each failure after
//! the request's own field and collecting every failure of a request at once.

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
