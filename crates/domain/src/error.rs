//! The domain's errors: invalid input (`ValidationError`) and refused transitions
//! (`DomainError`). Each variant is a case a caller answers differently.

use std::fmt;

use crate::access::Action;
use crate::participant::Role;
use crate::prompt::PromptStatus;
use crate::session::SessionStatus;
use crate::webhook::DeliveryStatus;

/// What is wrong with one input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationProblem {
    /// The value is empty or only whitespace.
    Empty,
    /// The value exceeds its limit.
    TooLong { max: usize, unit: &'static str },
    /// The value contains control characters where none are allowed.
    ControlCharacters,
    /// The value does not have the expected shape; the text says which.
    Format(&'static str),
    /// The value is outside the allowed range; the text says which.
    OutOfRange(&'static str),
}

impl fmt::Display for ValidationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("must not be empty"),
            Self::TooLong { max, unit } => write!(f, "must be at most {max} {unit}"),
            Self::ControlCharacters => f.write_str("must not contain control characters"),
            Self::Format(expected) => write!(f, "must be {expected}"),
            Self::OutOfRange(range) => write!(f, "must be {range}"),
        }
    }
}

/// An input value that breaks its rule; `field` is the client-facing field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct ValidationError {
    pub field: &'static str,
    pub problem: ValidationProblem,
}

impl ValidationError {
    /// A problem with one field.
    pub const fn new(field: &'static str, problem: ValidationProblem) -> Self {
        Self { field, problem }
    }
}

/// A refused state transition or permission check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The session has ended (closed, expired or terminated) or is due to expire.
    #[error("the session is {0}, not active")]
    SessionInactive(SessionStatus),
    /// The session has not reached either expiry limit.
    #[error("the session has not reached its expiry")]
    SessionNotExpired,
    /// The new expiry lies beyond the session's maximum lifetime.
    #[error("the session cannot be extended beyond its maximum lifetime")]
    ExpiryBeyondMax,
    /// The permission matrix denies this action to this role in this mode.
    #[error("a {role} may not {action} here")]
    Forbidden { action: Action, role: Role },
    /// The acting participant has left or was removed.
    #[error("the participant is no longer in the session")]
    ParticipantGone,
    /// The participant belongs to another session than the entity acted on.
    #[error("the participant does not belong to this session")]
    WrongSession,
    /// The host cannot leave (it closes the session instead).
    #[error("the host cannot leave the session; close it instead")]
    HostCannotLeave,
    /// The host's role cannot be changed and the host cannot be removed.
    #[error("the host's role cannot be changed")]
    HostIsFixed,
    /// The target participant already has that role.
    #[error("the participant already has that role")]
    RoleUnchanged,
    /// The invite was revoked.
    #[error("the invite was revoked")]
    InviteRevoked,
    /// The invite reached its maximum number of uses.
    #[error("the invite has no uses left")]
    InviteExhausted,
    /// The invite's own expiry has passed.
    #[error("the invite has expired")]
    InviteExpired,
    /// Approve, reject, withdraw or edit of a prompt that is no longer pending.
    #[error("the prompt is already {0}")]
    PromptAlreadyResolved(PromptStatus),
    /// A lifecycle step that does not apply to the prompt's current status.
    #[error("a {from} prompt cannot be {action}")]
    PromptInvalidTransition {
        from: PromptStatus,
        action: &'static str,
    },
    /// The agent permission request was already answered, timed out or cancelled.
    #[error("the permission request is already resolved")]
    PermissionAlreadyResolved,
    /// The answer names an option the agent did not offer.
    #[error("the agent offered no option with that id")]
    UnknownPermissionOption,
    /// A timeout was applied before the request's deadline.
    #[error("the permission request has not reached its deadline")]
    PermissionNotDue,
    /// The invite was already revoked (revoking it again).
    #[error("the invite is already revoked")]
    InviteAlreadyRevoked,
    /// The API key was already revoked.
    #[error("the API key is already revoked")]
    ApiKeyRevoked,
    /// Only a failed webhook delivery can be retried by hand.
    #[error("the delivery is {0}, not failed")]
    DeliveryNotFailed(DeliveryStatus),
    /// The session's agent offers no modes (or has not started yet).
    #[error("the session's agent offers no modes (it may not have started yet)")]
    AgentModesUnavailable,
    /// The mode named is not one the session's agent offers.
    #[error("the session's agent offers no mode with that id")]
    UnknownAgentMode,
}
