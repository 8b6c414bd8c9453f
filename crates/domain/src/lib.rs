//! Tandem's domain: the rules of shared agent sessions, with no I/O.
//!
//! Everything here is a pure function of its inputs. Time comes in as `now`,
//! identifiers come in already generated, and every state transition is a method
//! that checks the current state and the actor's rights, then returns the new state
//! with the events it emits (`Transition`), or a `DomainError`.

mod enums;
mod payload_types;

pub mod access;
pub mod agent;
pub mod api_key;
pub mod comment;
pub mod duration;
pub mod error;
pub mod event;
pub mod ids;
pub mod invite;
pub mod participant;
pub mod permission_request;
pub mod prompt;
pub mod redaction;
#[cfg(feature = "testing")]
pub mod samples;
pub mod session;
pub mod text;
pub mod webhook;

pub use access::{Action, PromptAdmission};
pub use agent::{
    AgentCommand, AgentCommandsUpdated, AgentMode, AgentModeChangeFailed, AgentModeChanged,
    AgentModeId, AgentModeRequested, AgentReport, AgentStarted, AgentState, AgentTitleChanged,
    ModeRequest, Resumption, Workspace, WorkspaceCleanup, WorkspaceKind,
};
pub use api_key::{ApiKey, ApiKeyName, Scope};
pub use comment::Comment;
pub use duration::Ttl;
pub use enums::UnknownVariant;
pub use error::{DomainError, ValidationError, ValidationProblem};
pub use event::{
    Actor, AgentOutput, AgentOutputKind, Event, EventPayload, EventType, NewEvent, PayloadError,
    Seq,
};
pub use ids::{
    AgentProfileName, ApiKeyId, CommentId, InviteId, ParticipantId, PermissionRequestId, PromptId,
    SessionId, UserId, WebhookDeliveryId, WebhookId, WorkspaceId,
};
pub use invite::{Invite, InviteRole, InviteSettings};
pub use participant::{Joined, Joiner, Participant, Role};
pub use permission_request::{
    PermissionAnswer, PermissionAsk, PermissionCause, PermissionOption, PermissionOptionKind,
    PermissionOutcome, PermissionRequest, PermissionResolution,
};
pub use prompt::{CancelOutcome, Prompt, PromptStatus, StopReason};
pub use redaction::Redactions;
pub use session::{
    CloseReason, Created, PermissionPolicy, Session, SessionEnd, SessionMode, SessionPatch,
    SessionSettings, SessionStatus,
};
pub use text::{CommentText, DisplayName, PromptText, Summary, TextLimits, Title};
pub use webhook::{
    AttemptResult, DeliveryStatus, Disabled, DisabledReason, EventSelector, NewWebhook,
    PreviousSecret, RetryPolicy, StoredWebhook, Verdict, WebhookDelivery, WebhookDescription,
    WebhookEndpoint, WebhookEventTypes, WebhookFormat, WebhookPatch, WebhookSecret, WebhookUpdated,
    WebhookUrl,
};

/// The outcome of a state transition: the entity's new state and the events it
/// emits, to be stored together in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition<T> {
    pub state: T,
    pub events: Vec<NewEvent>,
}

impl<T> Transition<T> {
    /// A transition emitting one event.
    pub fn new(state: T, event: NewEvent) -> Self {
        Self {
            state,
            events: vec![event],
        }
    }
}
