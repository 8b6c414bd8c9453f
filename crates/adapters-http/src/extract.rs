//! Our own extractors. Each rejects with an `ApiError`, so that no request ever
//! gets axum's plain-text rejection.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use tandem_service::Caller;

use crate::error::{ApiError, ErrorCode, FieldError};
use crate::limit::Writer;
use crate::state::AppState;

/// A JSON body. A wrong content type is 415, invalid JSON 400, a body of the
/// wrong shape (unknown, missing or mistyped field) 422 naming the field, a body
/// over the limit 413. An empty body reads as `{}`, so that requests whose
/// fields are all optional need no body at all.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_json = is_json(request.headers());
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    payload_too_large()
                } else if crate::serve::is_body_timeout(&rejection) {
                    ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        ErrorCode::RequestTimeout,
                        "the request body did not arrive in time; send it at once after its headers",
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::BadRequest,
                        "the request body could not be read",
                    )
                }
            })?;
        let body: &[u8] = if bytes.is_empty() {
            b"{}"
        } else if declared_json {
            &bytes
        } else {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "the body must be sent as `Content-Type: application/json`",
            ));
        };
        if !body.trim_ascii_start().starts_with(b"{") {
            // serde would also read a struct from an array; only objects are bodies.
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    Ok(_) => ApiError::validation(vec![FieldError {
                        field: "body".to_owned(),
                        message: "must be a JSON object".to_owned(),
                    }]),
                    Err(error) => malformed_json(&error.to_string()),
                },
            );
        }
        match Json::<T>::from_bytes(body) {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let cause = std::error::Error::source(&rejection)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                if rejection.status() == StatusCode::UNPROCESSABLE_ENTITY {
                    Err(ApiError::validation(vec![shape_error(&cause)]))
                } else {
                    Err(malformed_json(&cause))
                }
            }
        }
    }
}

/// The 400 problem for a body that is not JSON.
fn malformed_json(cause: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::MalformedJson,
        format!("the body is not valid JSON: {}", without_position(cause)),
    )
}

/// The 413 problem for a body over the configured limit.
pub(crate) fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        "the request body is larger than this server accepts",
    )
}

/// Whether the request declares a JSON body (`application/json`, or any
/// `application/*+json`, with or without parameters).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// serde's messages that carry no path prefix of their own.
const SERDE_MESSAGES: [&str; 7] = [
    "invalid type: ",
    "invalid value: ",
    "invalid length ",
    "unknown variant ",
    "unknown field ",
    "missing field ",
    "duplicate field ",
];

/// Names the field of a body that does not fit its type, from serde's message as
/// `serde_path_to_error` prefixes it with the path (`mode: unknown variant ...`).
fn shape_error(cause: &str) -> FieldError {
    let cause = without_position(cause);
    let (path, message) = if SERDE_MESSAGES.iter().any(|start| cause.starts_with(start)) {
        ("", cause)
    } else {
        cause.split_once(": ").unwrap_or(("", cause))
    };
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|start| message.strip_prefix(start))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    let field = match (path, named) {
        ("", Some(name)) => name.to_owned(),
        // An unknown field's path already ends with its name.
        (path, Some(name)) if path == name || path.ends_with(&format!(".{name}")) => {
            path.to_owned()
        }
        (path, Some(name)) => format!("{path}.{name}"),
        ("", None) => "body".to_owned(),
        (path, None) => path.to_owned(),
    };
    let message = if field == "body" && message.starts_with("invalid type: ") {
        "must be a JSON object".to_owned()
    } else {
        message.to_owned()
    };
    FieldError { field, message }
}

/// `serde_json`'s message without its ` at line 1 column 9` suffix.
fn without_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |index| &message[..index])
}

/// Path parameters; a malformed one (not a UUID) is 400 `INVALID_PATH_PARAMETER`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status().is_server_error() => {
                tracing::error!(error = %rejection.body_text(), "a route's path parameters do not fit its handler");
                Err(ApiError::internal())
            }
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidPathParameter,
                rejection.body_text(),
            )),
        }
    }
}

/// Query parameters; a malformed or unknown one is 400 `INVALID_QUERY_PARAMETER`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| Self(value))
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidQueryParameter,
                    rejection.body_text(),
                )
            })
    }
}

/// The caller behind `Authorization: Bearer <token>`: an API key or a present
/// participant. No header, another scheme or an unknown token is 401; a write
/// over the caller's rate limit is 429.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        let caller = state.tandem.authenticate(token).await?;
        let (kind, id) = match &caller {
            Caller::ApiKey(key) => ("api_key", key.id.as_uuid()),
            Caller::Participant(participant) => ("participant", participant.id.as_uuid()),
        };
        tracing::Span::current().record(
            "caller",
            tracing::field::display(format_args!("{kind}:{id}")),
        );
        state.limit_write(&parts.method, &Writer::from(&caller))?;
        Ok(Self(caller))
    }
}

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let unauthenticated = |detail: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            detail.to_owned(),
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthenticated("send a token as `Authorization: Bearer <token>`"))?;
    let malformed = || unauthenticated("the Authorization header must be `Bearer <token>`");
    let (scheme, token) = value
        .to_str()
        .ok()
        .and_then(|value| value.trim().split_once(' '))
        .ok_or_else(malformed)?;
    let token = token.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
        Ok(token)
    } else {
        Err(malformed())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn shape_errors_name_the_field() {
        let cases = [
            (
                "missing field `text` at line 1 column 2",
                "text",
                "missing field `text`",
            ),
            (
                "colour: unknown field `colour`, expected `text` at line 1 column 9",
                "colour",
                "unknown field `colour`, expected `text`",
            ),
            (
                "options.extra: unknown field `extra`, expected `id` at line 1 column 9",
                "options.extra",
                "unknown field `extra`, expected `id`",
            ),
            (
                "options: missing field `id` at line 1 column 9",
                "options.id",
                "missing field `id`",
            ),
            (
                "mode: unknown variant `fast`, expected one of `view_only` at line 1 column 14",
                "mode",
                "unknown variant `fast`, expected one of `view_only`",
            ),
            (
                "title: invalid type: integer `3`, expected a string at line 1 column 10",
                "title",
                "invalid type: integer `3`, expected a string",
            ),
            (
                "invalid type: sequence, expected struct X at line 1 column 0",
                "body",
                "must be a JSON object",
            ),
        ];
        for (cause, field, message) in cases {
            assert_eq!(
                shape_error(cause),
                FieldError {
                    field: field.to_owned(),
                    message: message.to_owned()
                },
                "{cause}"
            );
        }
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert!(bearer_token(&headers).is_err());
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&headers).unwrap(), "abc");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&headers).unwrap(), "abc");
        for bad in ["Basic abc", "Bearer", "Bearer  ", "abc"] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(
                bearer_token(&headers).unwrap_err().code(),
                ErrorCode::Unauthenticated,
                "{bad}"
            );
        }
    }
}
