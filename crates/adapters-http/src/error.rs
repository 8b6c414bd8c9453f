//! `ApiError`: every failure of the HTTP API, rendered as an RFC 9457
//! `application/problem+json` document with a stable `code`.
//!
//! Service errors are mapped exhaustively, so a new variant anywhere below breaks
//! the build until its status and code are decided here.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tandem_domain::{Action, DomainError, ValidationError};
use tandem_service::{Invalid, Resource, ServiceError};
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => $text:literal, $title:literal; )+) => {
        /// The stable machine-readable code of a problem. Clients switch on it;
        /// its text never changes once published.
        // utoipa cannot read a `rename` from a macro fragment, so the texts come
        // from `rename_all`; a test checks them against `as_str`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The code as sent (`SESSION_NOT_FOUND`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            /// A short, fixed, human-readable summary of the problem type.
            pub const fn title(self) -> &'static str {
                match self {
                    $( Self::$variant => $title, )+
                }
            }
        }
    };
}

error_codes! {
    // Credentials and rights.
    Unauthenticated => "UNAUTHENTICATED", "Authentication required";
    ParticipantGone => "PARTICIPANT_GONE", "Participant has left the session";
    InsufficientScope => "INSUFFICIENT_SCOPE", "API key lacks a scope";
    ParticipantTokenRequired => "PARTICIPANT_TOKEN_REQUIRED", "Participant token required";
    ApiKeyRequired => "API_KEY_REQUIRED", "API key required";
    CommentNotAllowed => "COMMENT_NOT_ALLOWED", "Commenting not allowed";
    PromptNotAllowed => "PROMPT_NOT_ALLOWED", "Prompting not allowed";
    HostOnly => "HOST_ONLY", "Only the host may do this";
    NotPromptAuthor => "NOT_PROMPT_AUTHOR", "Only the prompt's author may do this";
    HostCannotLeave => "HOST_CANNOT_LEAVE", "The host cannot leave";
    // Missing records.
    SessionNotFound => "SESSION_NOT_FOUND", "Session not found";
    ParticipantNotFound => "PARTICIPANT_NOT_FOUND", "Participant not found";
    InviteNotFound => "INVITE_NOT_FOUND", "Invite not found";
    PromptNotFound => "PROMPT_NOT_FOUND", "Prompt not found";
    PermissionRequestNotFound => "PERMISSION_REQUEST_NOT_FOUND", "Permission request not found";
    ApiKeyNotFound => "API_KEY_NOT_FOUND", "API key not found";
    WebhookNotFound => "WEBHOOK_NOT_FOUND", "Webhook not found";
    WebhookDeliveryNotFound => "WEBHOOK_DELIVERY_NOT_FOUND", "Webhook delivery not found";
    // Input.
    ValidationFailed => "VALIDATION_FAILED", "Invalid input";
    UnknownAgentProfile => "UNKNOWN_AGENT_PROFILE", "Unknown agent profile";
    ExpiryBeyondMax => "EXPIRY_BEYOND_MAX", "Expiry beyond the maximum lifetime";
    UnknownPermissionOption => "UNKNOWN_PERMISSION_OPTION", "Unknown permission option";
    WebhookUrlRefused => "WEBHOOK_URL_REFUSED", "Webhook URL refused";
    UnknownAgentMode => "UNKNOWN_AGENT_MODE", "Unknown agent mode";
    // State.
    ConcurrentModification => "CONCURRENT_MODIFICATION", "Concurrent modification";
    SessionInactive => "SESSION_INACTIVE", "Session is not active";
    SessionNotExpired => "SESSION_NOT_EXPIRED", "Session has not expired";
    HostRoleFixed => "HOST_ROLE_FIXED", "The host's role is fixed";
    RoleUnchanged => "ROLE_UNCHANGED", "Role unchanged";
    InviteRevoked => "INVITE_REVOKED", "Invite revoked";
    InviteExhausted => "INVITE_EXHAUSTED", "Invite used up";
    InviteExpired => "INVITE_EXPIRED", "Invite expired";
    PromptAlreadyResolved => "PROMPT_ALREADY_RESOLVED", "Prompt already resolved";
    PromptInvalidState => "PROMPT_INVALID_STATE", "Prompt is in the wrong state";
    PermissionAlreadyResolved => "PERMISSION_ALREADY_RESOLVED", "Permission request already resolved";
    PermissionNotDue => "PERMISSION_NOT_DUE", "Permission request not due";
    ApiKeyAlreadyRevoked => "API_KEY_ALREADY_REVOKED", "API key already revoked";
    InviteAlreadyRevoked => "INVITE_ALREADY_REVOKED", "Invite already revoked";
    WebhookDeliveryNotFailed => "WEBHOOK_DELIVERY_NOT_FAILED", "Webhook delivery not failed";
    AgentModesUnavailable => "AGENT_MODES_UNAVAILABLE", "The agent offers no modes";
    // Load.
    RateLimited => "RATE_LIMITED", "Too many requests";
    // Protocol.
    BadRequest => "BAD_REQUEST", "Bad request";
    MalformedJson => "MALFORMED_JSON", "Malformed JSON";
    UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type";
    PayloadTooLarge => "PAYLOAD_TOO_LARGE", "Request body too large";
    InvalidPathParameter => "INVALID_PATH_PARAMETER", "Invalid path parameter";
    InvalidQueryParameter => "INVALID_QUERY_PARAMETER", "Invalid query parameter";
    NotAcceptable => "NOT_ACCEPTABLE", "Not acceptable";
    NotFound => "NOT_FOUND", "Not found";
    MethodNotAllowed => "METHOD_NOT_ALLOWED", "Method not allowed";
    MalformedRequest => "MALFORMED_REQUEST", "Malformed HTTP request";
    UriTooLong => "URI_TOO_LONG", "URI too long";
    HeadersTooLarge => "HEADERS_TOO_LARGE", "Request headers too large";
    RequestTimeout => "REQUEST_TIMEOUT", "Request not received in time";
    // Server.
    Internal => "INTERNAL", "Internal error";
    NotReady => "NOT_READY", "Not ready";
}

impl ErrorCode {
    /// The problem `type` URI of this code: a URN, since it names a kind of
    /// problem rather than a page to fetch.
    pub fn type_uri(self) -> String {
        format!(
            "urn:tandem:problem:{}",
            self.as_str().to_ascii_lowercase().replace('_', "-")
        )
    }
}

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as named in the request (`title`, `expiresIn`), or `body` for
    /// the body as a whole.
    pub field: String,
    /// What is wrong with it (`must not be empty`).
    pub message: String,
}

impl From<&ValidationError> for FieldError {
    fn from(error: &ValidationError) -> Self {
        Self {
            field: error.field.to_owned(),
            message: error.problem.to_string(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:tandem:problem:session-not-found`).
    #[schema(format = "uri")]
    pub r#type: String,
    /// A short summary of the problem type; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong this time, for humans.
    pub detail: String,
    /// The stable code to switch on.
    pub code: ErrorCode,
    /// The invalid fields (only with `VALIDATION_FAILED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
}

/// A failed request: its status, stable code and detail, rendered as problem+json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    detail: String,
    errors: Vec<FieldError>,
    /// Whole seconds to wait before retrying, sent as `Retry-After`.
    retry_after: Option<u64>,
}

impl ApiError {
    /// A problem with this status, code and detail.
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// A 429 `RATE_LIMITED` problem whose `Retry-After` is `wait` rounded up to
    /// whole seconds (at least one).
    pub fn rate_limited(wait: Duration) -> Self {
        let seconds = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0))
            .max(1);
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!("too many writes; retry in {seconds} s"),
            )
        }
    }

    /// A `VALIDATION_FAILED` problem listing the invalid fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{} {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::ValidationFailed,
            detail,
            errors,
            retry_after: None,
        }
    }

    /// A 500 whose body says nothing about the cause (log the cause before).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "an internal error occurred; it has been logged",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            r#type: self.code.type_uri(),
            title: self.code.title().to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            errors: (self.code == ErrorCode::ValidationFailed).then(|| self.errors.clone()),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code.as_str(),
            self.detail
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_else(|_| {
            // A struct of strings and numbers always serializes; keep a body anyway.
            br#"{"type":"urn:tandem:problem:internal","title":"Internal error","status":500,"detail":"an internal error occurred","code":"INTERNAL"}"#.to_vec()
        });
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let detail = error.to_string();
        match error {
            ServiceError::Unauthenticated => {
                Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, detail)
            }
            ServiceError::ParticipantGone => {
                Self::new(StatusCode::UNAUTHORIZED, ErrorCode::ParticipantGone, detail)
            }
            ServiceError::MissingScope(_) => {
                Self::new(StatusCode::FORBIDDEN, ErrorCode::InsufficientScope, detail)
            }
            ServiceError::ParticipantRequired => Self::new(
                StatusCode::FORBIDDEN,
                ErrorCode::ParticipantTokenRequired,
                detail,
            ),
            ServiceError::ApiKeyRequired => {
                Self::new(StatusCode::FORBIDDEN, ErrorCode::ApiKeyRequired, detail)
            }
            ServiceError::NotFound(resource) => {
                Self::new(StatusCode::NOT_FOUND, not_found_code(resource), detail)
            }
            ServiceError::InviteUnknown => {
                Self::new(StatusCode::NOT_FOUND, ErrorCode::InviteNotFound, detail)
            }
            ServiceError::UnknownAgentProfile(_) => Self {
                errors: vec![FieldError {
                    field: "agentProfile".to_owned(),
                    message: "must name an agent profile configured on this server".to_owned(),
                }],
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::UnknownAgentProfile,
                    detail,
                )
            },
            ServiceError::WebhookUrlRefused(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::WebhookUrlRefused,
                detail,
            ),
            ServiceError::Invalid(invalid) => {
                Self::validation(invalid.0.iter().map(FieldError::from).collect())
            }
            ServiceError::Rule(rule) => rule.into(),
            ServiceError::Conflict => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::ConcurrentModification,
                detail,
            ),
            ServiceError::Store(source) => {
                tracing::error!(error = %source, "a request failed on a storage error");
                Self::internal()
            }
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ServiceError::Invalid(invalid).into()
    }
}

/// The code of a missing record of each kind.
const fn not_found_code(resource: Resource) -> ErrorCode {
    match resource {
        Resource::Session => ErrorCode::SessionNotFound,
        Resource::Participant => ErrorCode::ParticipantNotFound,
        Resource::Invite => ErrorCode::InviteNotFound,
        Resource::Prompt => ErrorCode::PromptNotFound,
        Resource::PermissionRequest => ErrorCode::PermissionRequestNotFound,
        Resource::ApiKey => ErrorCode::ApiKeyNotFound,
        Resource::Webhook => ErrorCode::WebhookNotFound,
        Resource::WebhookDelivery => ErrorCode::WebhookDeliveryNotFound,
    }
}

/// The code of a permission-matrix refusal, by what was attempted.
const fn forbidden_code(action: Action) -> ErrorCode {
    match action {
        Action::Comment => ErrorCode::CommentNotAllowed,
        Action::SubmitPrompt => ErrorCode::PromptNotAllowed,
        Action::ResolvePrompt
        | Action::RetryPrompt
        | Action::AnswerPermission
        | Action::ManageSession => ErrorCode::HostOnly,
        Action::WithdrawPrompt | Action::EditPrompt | Action::CancelPrompt => {
            ErrorCode::NotPromptAuthor
        }
        Action::Leave => ErrorCode::HostCannotLeave,
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let detail = error.to_string();
        let (status, code) = match error {
            DomainError::SessionInactive(_) => (StatusCode::CONFLICT, ErrorCode::SessionInactive),
            DomainError::SessionNotExpired => (StatusCode::CONFLICT, ErrorCode::SessionNotExpired),
            // The same request is fine on a younger session: the session's
            // state refuses it, not its shape.
            DomainError::ExpiryBeyondMax => (StatusCode::CONFLICT, ErrorCode::ExpiryBeyondMax),
            DomainError::Forbidden { action, .. } => {
                (StatusCode::FORBIDDEN, forbidden_code(action))
            }
            DomainError::ParticipantGone => (StatusCode::UNAUTHORIZED, ErrorCode::ParticipantGone),
            DomainError::WrongSession => (StatusCode::NOT_FOUND, ErrorCode::SessionNotFound),
            DomainError::HostCannotLeave => (StatusCode::CONFLICT, ErrorCode::HostCannotLeave),
            DomainError::HostIsFixed => (StatusCode::CONFLICT, ErrorCode::HostRoleFixed),
            DomainError::RoleUnchanged => (StatusCode::CONFLICT, ErrorCode::RoleUnchanged),
            DomainError::InviteRevoked => (StatusCode::GONE, ErrorCode::InviteRevoked),
            DomainError::InviteExhausted => (StatusCode::GONE, ErrorCode::InviteExhausted),
            DomainError::InviteExpired => (StatusCode::GONE, ErrorCode::InviteExpired),
            DomainError::PromptAlreadyResolved(_) => {
                (StatusCode::CONFLICT, ErrorCode::PromptAlreadyResolved)
            }
            DomainError::PromptInvalidTransition { .. } => {
                (StatusCode::CONFLICT, ErrorCode::PromptInvalidState)
            }
            DomainError::PermissionAlreadyResolved => {
                (StatusCode::CONFLICT, ErrorCode::PermissionAlreadyResolved)
            }
            // The request's options and the agent's modes are the agent's
            // state: the same answer is right for another request, or later.
            DomainError::UnknownPermissionOption => {
                (StatusCode::CONFLICT, ErrorCode::UnknownPermissionOption)
            }
            DomainError::PermissionNotDue => (StatusCode::CONFLICT, ErrorCode::PermissionNotDue),
            DomainError::ApiKeyRevoked => (StatusCode::CONFLICT, ErrorCode::ApiKeyAlreadyRevoked),
            DomainError::InviteAlreadyRevoked => {
                (StatusCode::CONFLICT, ErrorCode::InviteAlreadyRevoked)
            }
            DomainError::DeliveryNotFailed(_) => {
                (StatusCode::CONFLICT, ErrorCode::WebhookDeliveryNotFailed)
            }
            DomainError::AgentModesUnavailable => {
                (StatusCode::CONFLICT, ErrorCode::AgentModesUnavailable)
            }
            DomainError::UnknownAgentMode => (StatusCode::CONFLICT, ErrorCode::UnknownAgentMode),
        };
        Self::new(status, code, detail)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use tandem_domain::{Role, SessionStatus, ValidationProblem};

    use super::*;

    #[test]
    fn every_code_serializes_as_its_text_and_is_unique() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
            assert!(seen.insert(code.as_str()), "{code:?} is listed twice");
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_')
            );
        }
    }

    #[test]
    fn problems_carry_type_title_status_detail_and_code() {
        let error = ApiError::from(ServiceError::NotFound(Resource::Session));
        let problem = serde_json::to_value(error.problem()).unwrap();
        assert_eq!(
            problem,
            serde_json::json!({
                "type": "urn:tandem:problem:session-not-found",
                "title": "Session not found",
                "status": 404,
                "detail": "session not found",
                "code": "SESSION_NOT_FOUND",
            })
        );
    }

    #[test]
    fn validation_problems_list_every_field() {
        let error = ApiError::from(ServiceError::Invalid(Invalid(vec![
            ValidationError::new("title", ValidationProblem::Empty),
            ValidationError::new(
                "expiresIn",
                ValidationProblem::OutOfRange("between 1s and 30d"),
            ),
        ])));
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let problem = serde_json::to_value(error.problem()).unwrap();
        assert_eq!(
            problem["errors"],
            serde_json::json!([
                { "field": "title", "message": "must not be empty" },
                { "field": "expiresIn", "message": "must be between 1s and 30d" },
            ])
        );
    }

    #[test]
    fn refusals_map_by_action() {
        let cases = [
            (Action::Comment, ErrorCode::CommentNotAllowed),
            (Action::SubmitPrompt, ErrorCode::PromptNotAllowed),
            (Action::ResolvePrompt, ErrorCode::HostOnly),
            (Action::CancelPrompt, ErrorCode::NotPromptAuthor),
            (Action::Leave, ErrorCode::HostCannotLeave),
        ];
        for (action, code) in cases {
            let error = ApiError::from(ServiceError::Rule(DomainError::Forbidden {
                action,
                role: Role::Viewer,
            }));
            assert_eq!(
                (error.status(), error.code()),
                (StatusCode::FORBIDDEN, code)
            );
        }
        let inactive = ApiError::from(DomainError::SessionInactive(SessionStatus::Closed));
        assert_eq!(inactive.status(), StatusCode::CONFLICT);
        assert_eq!(
            ApiError::from(DomainError::InviteExpired).status(),
            StatusCode::GONE
        );
    }

    #[test]
    fn internal_errors_say_nothing_internal() {
        let error = ApiError::from(ServiceError::Store(tandem_ports::StoreError::backend(
            std::io::Error::other("disk /var/lib/secret is full"),
        )));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.problem().detail.contains("secret"));
    }

    #[test]
    fn rate_limited_answers_say_when_to_retry_in_whole_seconds() {
        for (wait, seconds) in [
            (Duration::ZERO, "1"),
            (Duration::from_millis(100), "1"),
            (Duration::from_secs(2), "2"),
            (Duration::from_millis(2001), "3"),
        ] {
            let error = ApiError::rate_limited(wait);
            assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
            let response = error.into_response();
            assert_eq!(response.headers()[header::RETRY_AFTER], seconds, "{wait:?}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        }
    }

    #[test]
    fn unauthorized_answers_challenge_for_a_bearer_token() {
        let response = ApiError::from(ServiceError::Unauthenticated).into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
