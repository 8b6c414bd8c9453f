//! `ServiceError`: every way a use case can fail, each a case the HTTP adapter maps
//! to its own status and stable code.

use std::fmt;

use tandem_domain::{DomainError, Scope, ValidationError};
use tandem_ports::StoreError;

/// A kind of record, for "not found" answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Session,
    Participant,
    Invite,
    Prompt,
    PermissionRequest,
    ApiKey,
    Webhook,
    WebhookDelivery,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Session => "session",
            Self::Participant => "participant",
            Self::Invite => "invite",
            Self::Prompt => "prompt",
            Self::PermissionRequest => "permission request",
            Self::ApiKey => "API key",
            Self::Webhook => "webhook",
            Self::WebhookDelivery => "webhook delivery",
        })
    }
}

/// One or more invalid input fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub Vec<ValidationError>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "invalid input: {}", fields.join("; "))
    }
}

impl std::error::Error for Invalid {}

impl From<ValidationError> for Invalid {
    fn from(error: ValidationError) -> Self {
        Self(vec![error])
    }
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No credential, or one that matches nothing.
    #[error("missing or unknown credentials")]
    Unauthenticated,
    /// The participant's token belonged to someone who left or was removed.
    #[error("the participant has left the session or was removed")]
    ParticipantGone,
    /// The API key is valid but lacks a scope this action needs.
    #[error("this API key lacks the {0} scope")]
    MissingScope(Scope),
    /// The action is a participant's (host, collaborator, viewer), not an API key's.
    #[error("this action needs a participant token")]
    ParticipantRequired,
    /// The action needs an API key, not a participant token.
    #[error("this action needs an API key")]
    ApiKeyRequired,
    /// No such record, or not one this caller may see (existence never leaks).
    #[error("{0} not found")]
    NotFound(Resource),
    /// The invite token matches no invite.
    #[error("the invite is not valid")]
    InviteUnknown,
    /// The agent profile named is not configured on this server.
    #[error("no agent profile named {0}")]
    UnknownAgentProfile(String),
    /// Input that breaks a rule.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The server's outbound policy refuses the webhook URL (its scheme, or the
    /// addresses its host resolves to).
    #[error("the webhook URL is refused: {0}")]
    WebhookUrlRefused(String),
    /// A domain rule refused the transition.
    #[error(transparent)]
    Rule(#[from] DomainError),
    /// The record kept changing under us; the client may retry.
    #[error("the record was changed concurrently; try again")]
    Conflict,
    /// The database failed.
    #[error("storage failure")]
    Store(#[source] StoreError),
}

impl From<ValidationError> for ServiceError {
    fn from(error: ValidationError) -> Self {
        Self::Invalid(error.into())
    }
}

/// A store error on a lookup: "not found" becomes `instead`, anything else a
/// storage failure.
pub(crate) fn missing_means(instead: ServiceError) -> impl FnOnce(StoreError) -> ServiceError {
    move |error| match error {
        StoreError::NotFound => instead,
        other @ (StoreError::SessionInactive
        | StoreError::Conflict
        | StoreError::Duplicate
        | StoreError::Refused(_)
        | StoreError::LeaseLost
        | StoreError::Backend(_)) => ServiceError::Store(other),
    }
}

/// A store error on a read: "not found" becomes `NotFound(resource)`.
pub(crate) fn read_error(resource: Resource) -> impl FnOnce(StoreError) -> ServiceError {
    missing_means(ServiceError::NotFound(resource))
}
