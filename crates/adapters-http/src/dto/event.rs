//! Events on the wire: the JSON page of a session's log. The SSE stream sends the
//! same `EventResponse` object as each frame's `data`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tandem_domain::{Actor, Event, EventPayload};
use utoipa::ToSchema;
use uuid::Uuid;

/// The event catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) enum EventType {
    #[serde(rename = "session.created")]
    SessionCreated,
    #[serde(rename = "session.updated")]
    SessionUpdated,
    #[serde(rename = "session.closed")]
    SessionClosed,
    #[serde(rename = "participant.joined")]
    ParticipantJoined,
    #[serde(rename = "participant.left")]
    ParticipantLeft,
    #[serde(rename = "participant.updated")]
    ParticipantUpdated,
    #[serde(rename = "participant.removed")]
    ParticipantRemoved,
    #[serde(rename = "comment.posted")]
    CommentPosted,
    #[serde(rename = "prompt.submitted")]
    PromptSubmitted,
    #[serde(rename = "prompt.edited")]
    PromptEdited,
    #[serde(rename = "prompt.approved")]
    PromptApproved,
    #[serde(rename = "prompt.rejected")]
    PromptRejected,
    #[serde(rename = "prompt.withdrawn")]
    PromptWithdrawn,
    #[serde(rename = "prompt.started")]
    PromptStarted,
    #[serde(rename = "prompt.cancel_requested")]
    PromptCancelRequested,
    #[serde(rename = "agent.output")]
    AgentOutput,
    #[serde(rename = "agent.permission_requested")]
    AgentPermissionRequested,
    #[serde(rename = "agent.permission_resolved")]
    AgentPermissionResolved,
    #[serde(rename = "prompt.completed")]
    PromptCompleted,
    #[serde(rename = "prompt.failed")]
    PromptFailed,
    #[serde(rename = "prompt.cancelled")]
    PromptCancelled,
    #[serde(rename = "agent.started")]
    AgentStarted,
    #[serde(rename = "agent.commands_updated")]
    AgentCommandsUpdated,
    #[serde(rename = "agent.mode_requested")]
    AgentModeRequested,
    #[serde(rename = "agent.mode_changed")]
    AgentModeChanged,
    #[serde(rename = "agent.mode_change_failed")]
    AgentModeChangeFailed,
    #[serde(rename = "agent.title_changed")]
    AgentTitleChanged,
}

impl From<&EventPayload> for EventType {
    fn from(payload: &EventPayload) -> Self {
        match payload {
            EventPayload::SessionCreated(_) => Self::SessionCreated,
            EventPayload::SessionUpdated { .. } => Self::SessionUpdated,
            EventPayload::SessionClosed { .. } => Self::SessionClosed,
            EventPayload::ParticipantJoined(_) => Self::ParticipantJoined,
            EventPayload::ParticipantLeft { .. } => Self::ParticipantLeft,
            EventPayload::ParticipantUpdated { .. } => Self::ParticipantUpdated,
            EventPayload::ParticipantRemoved { .. } => Self::ParticipantRemoved,
            EventPayload::CommentPosted(_) => Self::CommentPosted,
            EventPayload::PromptSubmitted(_) => Self::PromptSubmitted,
            EventPayload::PromptEdited { .. } => Self::PromptEdited,
            EventPayload::PromptApproved { .. } => Self::PromptApproved,
            EventPayload::PromptRejected { .. } => Self::PromptRejected,
            EventPayload::PromptWithdrawn { .. } => Self::PromptWithdrawn,
            EventPayload::PromptStarted { .. } => Self::PromptStarted,
            EventPayload::PromptCancelRequested { .. } => Self::PromptCancelRequested,
            EventPayload::AgentOutput(_) => Self::AgentOutput,
            EventPayload::AgentPermissionRequested { .. } => Self::AgentPermissionRequested,
            EventPayload::AgentPermissionResolved { .. } => Self::AgentPermissionResolved,
            EventPayload::PromptCompleted { .. } => Self::PromptCompleted,
            EventPayload::PromptFailed { .. } => Self::PromptFailed,
            EventPayload::PromptCancelled { .. } => Self::PromptCancelled,
            EventPayload::AgentStarted(_) => Self::AgentStarted,
            EventPayload::AgentCommandsUpdated(_) => Self::AgentCommandsUpdated,
            EventPayload::AgentModeRequested(_) => Self::AgentModeRequested,
            EventPayload::AgentModeChanged(_) => Self::AgentModeChanged,
            EventPayload::AgentModeChangeFailed(_) => Self::AgentModeChangeFailed,
            EventPayload::AgentTitleChanged(_) => Self::AgentTitleChanged,
        }
    }
}

/// What kind of actor caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActorKind {
    Participant,
    ApiKey,
    Agent,
    System,
}

/// Who caused an event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActorResponse {
    pub(crate) kind: ActorKind,
    /// The participant's or API key's id; `null` for the agent and the system.
    #[schema(required = true)]
    pub(crate) id: Option<Uuid>,
}

impl From<&Actor> for ActorResponse {
    fn from(actor: &Actor) -> Self {
        let (kind, id) = match actor {
            Actor::Participant { id } => (ActorKind::Participant, Some(id.as_uuid())),
            Actor::ApiKey { id } => (ActorKind::ApiKey, Some(id.as_uuid())),
            Actor::Agent => (ActorKind::Agent, None),
            Actor::System => (ActorKind::System, None),
        };
        Self { kind, id }
    }
}

/// One event of a session's log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventResponse {
    /// The event's position in its session's log: 1, 2, 3, ... with no gaps.
    #[schema(minimum = 1)]
    pub(crate) seq: u64,
    pub(crate) r#type: EventType,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) actor: ActorResponse,
    /// The event's payload; its shape depends on `type`.
    #[schema(value_type = Object)]
    pub(crate) data: serde_json::Value,
}

impl From<&Event> for EventResponse {
    fn from(event: &Event) -> Self {
        Self {
            seq: event.seq.get(),
            r#type: (&event.payload).into(),
            created_at: event.at,
            actor: (&event.actor).into(),
            data: event.payload.data(),
        }
    }
}

/// A one-use stream ticket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StreamTicketResponse {
    /// The ticket: pass it once as `?ticket=`.
    pub(crate) ticket: String,
    /// When the unused ticket stops working.
    pub(crate) expires_at: chrono::DateTime<chrono::Utc>,
    /// The stream's URL with the ticket, ready for `new EventSource(url)`.
    pub(crate) url: String,
}

/// A page of a session's events, in `seq` order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventPage {
    pub(crate) events: Vec<EventResponse>,
    /// The `seq` to pass as `?after=` for the next page, or `null` when this page
    /// reached the end of the log.
    #[schema(required = true)]
    pub(crate) next: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_named_as_the_domain_names_them() {
        let payload = EventPayload::PromptWithdrawn {
            prompt_id: tandem_domain::PromptId::from_uuid(Uuid::now_v7()),
        };
        assert_eq!(
            serde_json::to_value(EventType::from(&payload)).unwrap(),
            serde_json::Value::from(payload.event_type())
        );
    }
}
