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
use crate::payload_types::payload_types;
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

/// Writes the event catalog once: from `Variant => "wire.name" (Payload)` or
/// `Variant => "wire.name" { fields }` it makes the serde enum `EventPayload`
/// (adjacently tagged: `{"type": "wire.name", "data": {...}}`) and the
/// `EventType` enum of the wire names.
///
/// Its invocation is a payload type definition (see `payload_types.rs`): the
/// HTTP adapter reads the same catalog, with the same grammar, for each type's
/// `data` schema; a change to the grammar is a change there too.
macro_rules! event_catalog {
    (
        $(#[doc = $doc:tt])*
        pub enum EventPayload {
            $(
                $(#[doc = $vdoc:tt])*
                $variant:ident => $wire:tt $body:tt
            ),+ $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
        pub enum EventPayload {
            $(
                $(#[doc = $vdoc])*
                #[serde(rename = $wire)]
                $variant $body
            ),+
        }

        /// The type of an event: one per variant of `EventPayload`, written on the
        /// wire (and stored) as its name in the catalog (`comment.posted`, ...).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum EventType {
            $( #[serde(rename = $wire)] $variant ),+
        }

        impl EventType {
            /// Every event type of the catalog, in the order of the variants (what
            /// clients may name, e.g. in a webhook's event filter).
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire name (`comment.posted`, ...).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $wire ),+
                }
            }
        }

        impl EventPayload {
            /// The event's type.
            pub const fn kind(&self) -> EventType {
                match self {
                    $( Self::$variant { .. } => EventType::$variant ),+
                }
            }
        }
    };
}

payload_types! {
    $ __payload_types_event;

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

    /// A participant as `participant.joined` shows it (no user id, no token).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ParticipantSnapshot {
        pub id: ParticipantId,
        pub display_name: DisplayName,
        pub role: Role,
        pub joined_at: DateTime<Utc>,
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

    event_catalog! {
        /// The event catalog of DESIGN.md §3 (plus `prompt.edited`, which the design's
        /// editable prompts need). Serialized as `{"type": ..., "data": {...}}`.
        pub enum EventPayload {
            SessionCreated => "session.created" (SessionSnapshot),
            SessionUpdated => "session.updated" {
                title: Title,
                mode: SessionMode,
                permission_policy: PermissionPolicy,
                expires_at: DateTime<Utc>,
            },
            SessionClosed => "session.closed" {
                status: SessionStatus,
                reason: CloseReason,
                summary: Option<Summary>,
            },
            ParticipantJoined => "participant.joined" (ParticipantSnapshot),
            ParticipantLeft => "participant.left" { participant_id: ParticipantId },
            ParticipantUpdated => "participant.updated" {
                participant_id: ParticipantId,
                role: Role,
            },
            ParticipantRemoved => "participant.removed" {
                participant_id: ParticipantId,
                removed_by: ParticipantId,
            },
            CommentPosted => "comment.posted" (CommentSnapshot),
            PromptSubmitted => "prompt.submitted" (PromptSnapshot),
            PromptEdited => "prompt.edited" {
                prompt_id: PromptId,
                text: PromptText,
            },
            PromptApproved => "prompt.approved" {
                prompt_id: PromptId,
                approved_by: ParticipantId,
            },
            PromptRejected => "prompt.rejected" {
                prompt_id: PromptId,
                rejected_by: ParticipantId,
            },
            PromptWithdrawn => "prompt.withdrawn" { prompt_id: PromptId },
            PromptStarted => "prompt.started" { prompt_id: PromptId },
            /// Someone asked to stop the running prompt; `prompt.cancelled` follows once
            /// the agent has stopped (the replica running it learns of it from the log).
            PromptCancelRequested => "prompt.cancel_requested" {
                prompt_id: PromptId,
                requested_by: ParticipantId,
            },
            AgentOutput => "agent.output" (AgentOutput),
            AgentPermissionRequested => "agent.permission_requested" {
                request_id: PermissionRequestId,
                prompt_id: PromptId,
                tool_call: serde_json::Value,
                options: Vec<PermissionOption>,
                deadline: DateTime<Utc>,
                /// What was redacted from the tool call and options (left out if none).
                #[serde(default, skip_serializing_if = "Redactions::is_empty")]
                redactions: Redactions,
            },
            AgentPermissionResolved => "agent.permission_resolved" {
                request_id: PermissionRequestId,
                prompt_id: PromptId,
                outcome: PermissionOutcome,
                cause: PermissionCause,
                resolved_by: Option<ParticipantId>,
            },
            PromptCompleted => "prompt.completed" {
                prompt_id: PromptId,
                stop_reason: StopReason,
            },
            PromptFailed => "prompt.failed" {
                prompt_id: PromptId,
                error: String,
                /// What was redacted from the error text (left out if none).
                #[serde(default, skip_serializing_if = "Redactions::is_empty")]
                redactions: Redactions,
            },
            PromptCancelled => "prompt.cancelled" {
                prompt_id: PromptId,
                cancelled_by: Option<ParticipantId>,
            },
            AgentStarted => "agent.started" (AgentStarted),
            AgentCommandsUpdated => "agent.commands_updated" (AgentCommandsUpdated),
            AgentModeRequested => "agent.mode_requested" (AgentModeRequested),
            AgentModeChanged => "agent.mode_changed" (AgentModeChanged),
            AgentModeChangeFailed => "agent.mode_change_failed" (AgentModeChangeFailed),
            AgentTitleChanged => "agent.title_changed" (AgentTitleChanged),
        }
    }
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

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventType {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                kind: "event type",
                value: s.to_owned(),
            })
    }
}

impl PartialEq<&str> for EventType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
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
    /// The event's type, as in the catalog (`comment.posted`, ...): the wire name
    /// of `kind()`, as stored.
    pub const fn event_type(&self) -> &'static str {
        self.kind().as_str()
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
