//! The event log's entries: every state change appends events to its session's log,
//! numbered by a per-session `seq` without gaps.
//!
//! An event's wire form is `{ seq, type, createdAt, actor, data }`; `type` and `data`
//! come from `EventPayload` (adjacently tagged), so payloads are stored and streamed
//! as the same JSON.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::agent::{
    AgentCommandsUpdated, AgentModeChangeFailed, AgentModeChanged, AgentModeRequested,
    AgentStarted, AgentTitleChanged,
};
use crate::comment::Comment;
use crate::duration::Ttl;
use crate::enums::{UnknownVariant, string_enum};
use crate::ids::{
    AgentProfileName, ApiKeyId, CommentId, ParticipantId, PermissionRequestId, PromptId, SessionId,
};
use crate::participant::{Participant, Role};
use crate::permission_request::{PermissionCause, PermissionOption, PermissionOutcome};
use crate::prompt::{Prompt, PromptStatus, StopReason};
use crate::redaction::Redactions;
use crate::session::{CloseReason, PermissionPolicy, Session, SessionMode, SessionStatus};
use crate::text::{CommentText, DisplayName, PromptText, Summary, Title};

/// An event's position in its session's log: 1, 2, 3, ... with no gaps.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(u64);

impl Seq {
    /// Before the first event.
    pub const ZERO: Self = Self(0);

    /// Wraps a raw sequence number.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The next position.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A participant, through its token.
    Participant { id: ParticipantId },
    /// A script or admin, through an API key.
    ApiKey { id: ApiKeyId },
    /// The session's agent.
    Agent,
    /// Tandem itself (expiry, timeouts, recovery).
    System,
}

#[expect(
    non_snake_case,
    reason = "constructors named like the variants they build"
)]
impl Actor {
    /// A participant actor.
    pub const fn Participant(id: ParticipantId) -> Self {
        Self::Participant { id }
    }

    /// An API key actor.
    pub const fn ApiKey(id: ApiKeyId) -> Self {
        Self::ApiKey { id }
    }
}

impl Actor {
    /// The actor's kind as stored: `participant`, `api_key`, `agent`, `system`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Participant { .. } => "participant",
            Self::ApiKey { .. } => "api_key",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }

    /// The participant's or API key's id; `None` for the agent and the system.
    pub const fn id(&self) -> Option<uuid::Uuid> {
        match self {
            Self::Participant { id } => Some(id.as_uuid()),
            Self::ApiKey { id } => Some(id.as_uuid()),
            Self::Agent | Self::System => None,
        }
    }

    /// Rebuilds an actor from its stored kind and id.
    pub fn from_parts(kind: &str, id: Option<uuid::Uuid>) -> Result<Self, UnknownVariant> {
        match (kind, id) {
            ("participant", Some(id)) => Ok(Self::Participant(ParticipantId::from_uuid(id))),
            ("api_key", Some(id)) => Ok(Self::ApiKey(ApiKeyId::from_uuid(id))),
            ("agent", None) => Ok(Self::Agent),
            ("system", None) => Ok(Self::System),
            (other, _) => Err(UnknownVariant {
                kind: "actor",
                value: other.to_owned(),
            }),
        }
    }
}

string_enum! {
    /// What kind of agent output an `agent.output` event carries.
    AgentOutputKind("agent output kind") {
        /// Text of the agent's answer (coalesced chunks).
        Message => "message",
        /// The agent's reasoning text (coalesced chunks).
        Thought => "thought",
        /// A tool call the agent started.
        ToolCall => "tool_call",
        /// Progress or result of a tool call.
        ToolCallUpdate => "tool_call_update",
        /// The agent's plan.
        Plan => "plan",
        /// An update of a kind Tandem does not know; kept as the agent sent it.
        Other => "other",
    }
}

/// One (coalesced) piece of agent output. `raw` is the agent's own JSON update; for
/// coalesced text it is the first chunk's update carrying the merged text. Both
/// are redacted alike; `redactions` counts what was taken out (left out if none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentOutput {
    pub prompt_id: PromptId,
    pub kind: AgentOutputKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub raw: serde_json::Value,
    #[serde(default, skip_serializing_if = "Redactions::is_empty")]
    pub redactions: Redactions,
}

/// A session as `session.created` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSnapshot {
    pub id: SessionId,
    pub title: Title,
    pub mode: SessionMode,
    pub permission_policy: PermissionPolicy,
    pub agent_profile: AgentProfileName,
    pub host_participant_id: ParticipantId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub idle_timeout: Ttl,
}

impl SessionSnapshot {
    pub(crate) fn of(session: &Session, host: ParticipantId) -> Self {
        Self {
            id: session.id,
            title: session.title.clone(),
            mode: session.mode,
            permission_policy: session.permission_policy,
            agent_profile: session.agent_profile.clone(),
            host_participant_id: host,
            created_at: session.created_at,
            expires_at: session.expires_at,
            idle_timeout: session.idle_timeout,
        }
    }
}

/// A participant as `participant.joined` shows it (no user id, no token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantSnapshot {
    pub id: ParticipantId,
    pub display_name: DisplayName,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

impl ParticipantSnapshot {
    pub(crate) fn of(participant: &Participant) -> Self {
        Self {
            id: participant.id,
            display_name: participant.display_name.clone(),
            role: participant.role,
            joined_at: participant.joined_at,
        }
    }
}

/// A comment as `comment.posted` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentSnapshot {
    pub id: CommentId,
    pub author_participant_id: ParticipantId,
    pub text: CommentText,
    pub created_at: DateTime<Utc>,
}

impl CommentSnapshot {
    pub(crate) fn of(comment: &Comment) -> Self {
        Self {
            id: comment.id,
            author_participant_id: comment.author,
            text: comment.text.clone(),
            created_at: comment.created_at,
        }
    }
}

/// A prompt as `prompt.submitted` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptSnapshot {
    pub id: PromptId,
    pub author_participant_id: ParticipantId,
    pub text: PromptText,
    pub status: PromptStatus,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<PromptId>,
}

impl PromptSnapshot {
    pub(crate) fn of(prompt: &Prompt) -> Self {
        Self {
            id: prompt.id,
            author_participant_id: prompt.author,
            text: prompt.text.clone(),
            status: prompt.status,
            created_at: prompt.created_at,
            retry_of: prompt.retry_of,
        }
    }
}

/// The event catalog of DESIGN.md §3 (plus `prompt.edited`, which the design's
/// editable prompts need). Serialized as `{"type": ..., "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum EventPayload {
    #[serde(rename = "session.created")]
    SessionCreated(SessionSnapshot),
    #[serde(rename = "session.updated")]
    SessionUpdated {
        title: Title,
        mode: SessionMode,
        permission_policy: PermissionPolicy,
        expires_at: DateTime<Utc>,
    },
    #[serde(rename = "session.closed")]
    SessionClosed {
        status: SessionStatus,
        reason: CloseReason,
        summary: Option<Summary>,
    },
    #[serde(rename = "participant.joined")]
    ParticipantJoined(ParticipantSnapshot),
    #[serde(rename = "participant.left")]
    ParticipantLeft { participant_id: ParticipantId },
    #[serde(rename = "participant.updated")]
    ParticipantUpdated {
        participant_id: ParticipantId,
        role: Role,
    },
    #[serde(rename = "participant.removed")]
    ParticipantRemoved {
        participant_id: ParticipantId,
        removed_by: ParticipantId,
    },
    #[serde(rename = "comment.posted")]
    CommentPosted(CommentSnapshot),
    #[serde(rename = "prompt.submitted")]
    PromptSubmitted(PromptSnapshot),
    #[serde(rename = "prompt.edited")]
    PromptEdited {
        prompt_id: PromptId,
        text: PromptText,
    },
    #[serde(rename = "prompt.approved")]
    PromptApproved {
        prompt_id: PromptId,
        approved_by: ParticipantId,
    },
    #[serde(rename = "prompt.rejected")]
    PromptRejected {
        prompt_id: PromptId,
        rejected_by: ParticipantId,
    },
    #[serde(rename = "prompt.withdrawn")]
    PromptWithdrawn { prompt_id: PromptId },
    #[serde(rename = "prompt.started")]
    PromptStarted { prompt_id: PromptId },
    /// Someone asked to stop the running prompt; `prompt.cancelled` follows once
    /// the agent has stopped (the replica running it learns of it from the log).
    #[serde(rename = "prompt.cancel_requested")]
    PromptCancelRequested {
        prompt_id: PromptId,
        requested_by: ParticipantId,
    },
    #[serde(rename = "agent.output")]
    AgentOutput(AgentOutput),
    #[serde(rename = "agent.permission_requested")]
    AgentPermissionRequested {
        request_id: PermissionRequestId,
        prompt_id: PromptId,
        tool_call: serde_json::Value,
        options: Vec<PermissionOption>,
        deadline: DateTime<Utc>,
        /// What was redacted from the tool call and options (left out if none).
        #[serde(default, skip_serializing_if = "Redactions::is_empty")]
        redactions: Redactions,
    },
    #[serde(rename = "agent.permission_resolved")]
    AgentPermissionResolved {
        request_id: PermissionRequestId,
        prompt_id: PromptId,
        outcome: PermissionOutcome,
        cause: PermissionCause,
        resolved_by: Option<ParticipantId>,
    },
    #[serde(rename = "prompt.completed")]
    PromptCompleted {
        prompt_id: PromptId,
        stop_reason: StopReason,
    },
    #[serde(rename = "prompt.failed")]
    PromptFailed {
        prompt_id: PromptId,
        error: String,
        /// What was redacted from the error text (left out if none).
        #[serde(default, skip_serializing_if = "Redactions::is_empty")]
        redactions: Redactions,
    },
    #[serde(rename = "prompt.cancelled")]
    PromptCancelled {
        prompt_id: PromptId,
        cancelled_by: Option<ParticipantId>,
    },
    #[serde(rename = "agent.started")]
    AgentStarted(AgentStarted),
    #[serde(rename = "agent.commands_updated")]
    AgentCommandsUpdated(AgentCommandsUpdated),
    #[serde(rename = "agent.mode_requested")]
    AgentModeRequested(AgentModeRequested),
    #[serde(rename = "agent.mode_changed")]
    AgentModeChanged(AgentModeChanged),
    #[serde(rename = "agent.mode_change_failed")]
    AgentModeChangeFailed(AgentModeChangeFailed),
    #[serde(rename = "agent.title_changed")]
    AgentTitleChanged(AgentTitleChanged),
}

/// A stored payload that does not decode: unknown type or malformed data.
#[derive(Debug, thiserror::Error)]
#[error("undecodable {event_type} event: {source}")]
pub struct PayloadError {
    pub event_type: String,
    #[source]
    pub source: serde_json::Error,
}

impl EventPayload {
    /// Every event type of the catalog, in the order of the variants (what
    /// clients may name, e.g. in a webhook's event filter). The storage contract
    /// suite checks that every variant's `event_type` is listed.
    pub const TYPES: &'static [&'static str] = &[
        "session.created",
        "session.updated",
        "session.closed",
        "participant.joined",
        "participant.left",
        "participant.updated",
        "participant.removed",
        "comment.posted",
        "prompt.submitted",
        "prompt.edited",
        "prompt.approved",
        "prompt.rejected",
        "prompt.withdrawn",
        "prompt.started",
        "prompt.cancel_requested",
        "agent.output",
        "agent.permission_requested",
        "agent.permission_resolved",
        "prompt.completed",
        "prompt.failed",
        "prompt.cancelled",
        "agent.started",
        "agent.commands_updated",
        "agent.mode_requested",
        "agent.mode_changed",
        "agent.mode_change_failed",
        "agent.title_changed",
    ];

    /// The event's type, as in the catalog (`comment.posted`, ...).
    pub const fn event_type(&self) -> &'static str {
        match self {
            Self::SessionCreated(_) => "session.created",
            Self::SessionUpdated { .. } => "session.updated",
            Self::SessionClosed { .. } => "session.closed",
            Self::ParticipantJoined(_) => "participant.joined",
            Self::ParticipantLeft { .. } => "participant.left",
            Self::ParticipantUpdated { .. } => "participant.updated",
            Self::ParticipantRemoved { .. } => "participant.removed",
            Self::CommentPosted(_) => "comment.posted",
            Self::PromptSubmitted(_) => "prompt.submitted",
            Self::PromptEdited { .. } => "prompt.edited",
            Self::PromptApproved { .. } => "prompt.approved",
            Self::PromptRejected { .. } => "prompt.rejected",
            Self::PromptWithdrawn { .. } => "prompt.withdrawn",
            Self::PromptStarted { .. } => "prompt.started",
            Self::PromptCancelRequested { .. } => "prompt.cancel_requested",
            Self::AgentOutput(_) => "agent.output",
            Self::AgentPermissionRequested { .. } => "agent.permission_requested",
            Self::AgentPermissionResolved { .. } => "agent.permission_resolved",
            Self::PromptCompleted { .. } => "prompt.completed",
            Self::PromptFailed { .. } => "prompt.failed",
            Self::PromptCancelled { .. } => "prompt.cancelled",
            Self::AgentStarted(_) => "agent.started",
            Self::AgentCommandsUpdated(_) => "agent.commands_updated",
            Self::AgentModeRequested(_) => "agent.mode_requested",
            Self::AgentModeChanged(_) => "agent.mode_changed",
            Self::AgentModeChangeFailed(_) => "agent.mode_change_failed",
            Self::AgentTitleChanged(_) => "agent.title_changed",
        }
    }

    /// The `data` object, as stored and sent.
    pub fn data(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut map)) => {
                map.remove("data").unwrap_or(serde_json::Value::Null)
            }
            // Every variant serializes to {"type","data"}; the tests cover each one.
            Ok(_) | Err(_) => serde_json::Value::Null,
        }
    }

    /// Rebuilds a payload from its stored type and data.
    pub fn from_parts(event_type: &str, data: serde_json::Value) -> Result<Self, PayloadError> {
        let mut tagged = serde_json::Map::with_capacity(2);
        tagged.insert("type".to_owned(), serde_json::Value::from(event_type));
        tagged.insert("data".to_owned(), data);
        serde_json::from_value(serde_json::Value::Object(tagged)).map_err(|source| PayloadError {
            event_type: event_type.to_owned(),
            source,
        })
    }

    /// The participant this event takes out of the session (it left or was
    /// removed): its stream ends here.
    pub const fn departed_participant(&self) -> Option<ParticipantId> {
        match self {
            Self::ParticipantLeft { participant_id }
            | Self::ParticipantRemoved { participant_id, .. } => Some(*participant_id),
            Self::SessionCreated(_)
            | Self::SessionUpdated { .. }
            | Self::SessionClosed { .. }
            | Self::ParticipantJoined(_)
            | Self::ParticipantUpdated { .. }
            | Self::CommentPosted(_)
            | Self::PromptSubmitted(_)
            | Self::PromptEdited { .. }
            | Self::PromptApproved { .. }
            | Self::PromptRejected { .. }
            | Self::PromptWithdrawn { .. }
            | Self::PromptStarted { .. }
            | Self::PromptCancelRequested { .. }
            | Self::AgentOutput(_)
            | Self::AgentPermissionRequested { .. }
            | Self::AgentPermissionResolved { .. }
            | Self::PromptCompleted { .. }
            | Self::PromptFailed { .. }
            | Self::PromptCancelled { .. }
            | Self::AgentStarted(_)
            | Self::AgentCommandsUpdated(_)
            | Self::AgentModeRequested(_)
            | Self::AgentModeChanged(_)
            | Self::AgentModeChangeFailed(_)
            | Self::AgentTitleChanged(_) => None,
        }
    }

    /// Whether this event ends the session's stream.
    pub const fn ends_session(&self) -> bool {
        matches!(self, Self::SessionClosed { .. })
    }
}

/// An event a transition emits, before the store gives it a `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub payload: EventPayload,
}

impl NewEvent {
    /// An event at `at` caused by `actor`.
    pub const fn new(at: DateTime<Utc>, actor: Actor, payload: EventPayload) -> Self {
        Self { at, actor, payload }
    }
}

/// A stored event of a session's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub session_id: SessionId,
    pub seq: Seq,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub payload: EventPayload,
}
