//! Row structs of the Postgres schema and their conversion to domain types. They
//! stay private to this adapter.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::types::Json;
use tandem_domain::{
    Actor, AgentProfileName, ApiKey, ApiKeyId, ApiKeyName, Comment, CommentId, CommentText,
    DisplayName, Event, EventPayload, Invite, InviteId, Participant, ParticipantId,
    PermissionOption, PermissionOutcome, PermissionRequest, PermissionRequestId,
    PermissionResolution, Prompt, PromptId, PromptText, Scope, Seq, Session, SessionEnd, SessionId,
    Summary, Title, Ttl, UserId, WorkspaceId,
};
use tandem_ports::StoreError;
use uuid::Uuid;

/// Stored data this version cannot read: a bug or a foreign write, never user input.
fn corrupt(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend(error)
}

fn parse<T: FromStr>(raw: &str) -> Result<T, StoreError>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    raw.parse().map_err(corrupt)
}

fn parse_opt<T: FromStr>(raw: Option<&str>) -> Result<Option<T>, StoreError>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    raw.map(parse).transpose()
}

fn unsigned(value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(corrupt)
}

/// Scopes are stored space-separated.
pub(crate) fn scopes_text(scopes: &BTreeSet<Scope>) -> String {
    scopes
        .iter()
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(FromRow)]
pub(crate) struct SessionRow {
    id: Uuid,
    workspace_id: String,
    title: String,
    host_user_id: Option<String>,
    agent_profile: String,
    agent_session_id: Option<String>,
    mode: String,
    permission_policy: String,
    close_reason: Option<String>,
    closed_at: Option<DateTime<Utc>>,
    summary: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    idle_timeout_secs: i32,
    last_activity_at: DateTime<Utc>,
    last_seq: i64,
    version: i32,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        let end = match (row.close_reason.as_deref(), row.closed_at) {
            (Some(reason), Some(at)) => Some(SessionEnd {
                reason: parse(reason)?,
                at,
                summary: row
                    .summary
                    .as_deref()
                    .map(Summary::from_stored)
                    .transpose()
                    .map_err(corrupt)?,
            }),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(StoreError::Backend(
                    "session row with half an ending".into(),
                ));
            }
        };
        Ok(Self {
            id: SessionId::from_uuid(row.id),
            workspace_id: WorkspaceId::parse(&row.workspace_id).map_err(corrupt)?,
            title: Title::from_stored(&row.title).map_err(corrupt)?,
            host_user_id: row
                .host_user_id
                .as_deref()
                .map(UserId::parse)
                .transpose()
                .map_err(corrupt)?,
            agent_profile: AgentProfileName::parse(&row.agent_profile).map_err(corrupt)?,
            agent_session_id: row.agent_session_id,
            mode: parse(&row.mode)?,
            permission_policy: parse(&row.permission_policy)?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            idle_timeout: Ttl::from_secs(unsigned(row.idle_timeout_secs)?).map_err(corrupt)?,
            last_activity_at: row.last_activity_at,
            end,
            last_seq: Seq::new(u64::try_from(row.last_seq).map_err(corrupt)?),
            version: unsigned(row.version)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct ParticipantRow {
    id: Uuid,
    session_id: Uuid,
    user_id: Option<String>,
    display_name: String,
    role: String,
    joined_at: DateTime<Utc>,
    left_at: Option<DateTime<Utc>>,
    removed_by: Option<Uuid>,
    version: i32,
}

impl TryFrom<ParticipantRow> for Participant {
    type Error = StoreError;

    fn try_from(row: ParticipantRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: ParticipantId::from_uuid(row.id),
            session_id: SessionId::from_uuid(row.session_id),
            user_id: row
                .user_id
                .as_deref()
                .map(UserId::parse)
                .transpose()
                .map_err(corrupt)?,
            display_name: DisplayName::from_stored(&row.display_name).map_err(corrupt)?,
            role: parse(&row.role)?,
            joined_at: row.joined_at,
            left_at: row.left_at,
            removed_by: row.removed_by.map(ParticipantId::from_uuid),
            version: unsigned(row.version)?,
        })
    }
}

/// A session and one of its participants, read together; the participant's
/// columns carry a `p_` prefix.
#[derive(FromRow)]
pub(crate) struct ActingRow {
    #[sqlx(flatten)]
    session: SessionRow,
    p_id: Uuid,
    p_session_id: Uuid,
    p_user_id: Option<String>,
    p_display_name: String,
    p_role: String,
    p_joined_at: DateTime<Utc>,
    p_left_at: Option<DateTime<Utc>>,
    p_removed_by: Option<Uuid>,
    p_version: i32,
}

/// The participant columns of an `ActingRow`, as a join selects them (`p`).
pub(crate) const ACTING_PARTICIPANT_COLUMNS: &str = "p.id AS p_id, p.session_id AS p_session_id,
    p.user_id AS p_user_id, p.display_name AS p_display_name, p.role AS p_role,
    p.joined_at AS p_joined_at, p.left_at AS p_left_at, p.removed_by AS p_removed_by,
    p.version AS p_version";

impl TryFrom<ActingRow> for (Session, Participant) {
    type Error = StoreError;

    fn try_from(row: ActingRow) -> Result<Self, StoreError> {
        let participant = ParticipantRow {
            id: row.p_id,
            session_id: row.p_session_id,
            user_id: row.p_user_id,
            display_name: row.p_display_name,
            role: row.p_role,
            joined_at: row.p_joined_at,
            left_at: row.p_left_at,
            removed_by: row.p_removed_by,
            version: row.p_version,
        };
        Ok((row.session.try_into()?, participant.try_into()?))
    }
}

#[derive(FromRow)]
pub(crate) struct InviteRow {
    id: Uuid,
    session_id: Uuid,
    role: String,
    max_uses: Option<i32>,
    uses: i32,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    version: i32,
}

impl TryFrom<InviteRow> for Invite {
    type Error = StoreError;

    fn try_from(row: InviteRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: InviteId::from_uuid(row.id),
            session_id: SessionId::from_uuid(row.session_id),
            role: parse(&row.role)?,
            max_uses: row.max_uses.map(unsigned).transpose()?,
            uses: unsigned(row.uses)?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            version: unsigned(row.version)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct CommentRow {
    id: Uuid,
    session_id: Uuid,
    author_participant_id: Uuid,
    text: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<CommentRow> for Comment {
    type Error = StoreError;

    fn try_from(row: CommentRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: CommentId::from_uuid(row.id),
            session_id: SessionId::from_uuid(row.session_id),
            author: ParticipantId::from_uuid(row.author_participant_id),
            text: CommentText::from_stored(&row.text).map_err(corrupt)?,
            created_at: row.created_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct PromptRow {
    id: Uuid,
    session_id: Uuid,
    author_participant_id: Uuid,
    text: String,
    status: String,
    created_at: DateTime<Utc>,
    queued_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<Uuid>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    stop_reason: Option<String>,
    error: Option<String>,
    retry_of: Option<Uuid>,
    version: i32,
}

impl TryFrom<PromptRow> for Prompt {
    type Error = StoreError;

    fn try_from(row: PromptRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: PromptId::from_uuid(row.id),
            session_id: SessionId::from_uuid(row.session_id),
            author: ParticipantId::from_uuid(row.author_participant_id),
            text: PromptText::from_stored(&row.text).map_err(corrupt)?,
            status: parse(&row.status)?,
            created_at: row.created_at,
            queued_at: row.queued_at,
            resolved_at: row.resolved_at,
            resolved_by: row.resolved_by.map(ParticipantId::from_uuid),
            started_at: row.started_at,
            finished_at: row.finished_at,
            stop_reason: parse_opt(row.stop_reason.as_deref())?,
            error: row.error,
            retry_of: row.retry_of.map(PromptId::from_uuid),
            version: unsigned(row.version)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct PermissionRequestRow {
    id: Uuid,
    session_id: Uuid,
    prompt_id: Uuid,
    tool_call: Json<serde_json::Value>,
    options: Json<Vec<PermissionOption>>,
    created_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    outcome: Option<Json<PermissionOutcome>>,
    cause: Option<String>,
    resolved_by: Option<Uuid>,
    resolved_at: Option<DateTime<Utc>>,
    version: i32,
}

impl TryFrom<PermissionRequestRow> for PermissionRequest {
    type Error = StoreError;

    fn try_from(row: PermissionRequestRow) -> Result<Self, StoreError> {
        let resolution = match (row.outcome, row.cause.as_deref(), row.resolved_at) {
            (Some(Json(outcome)), Some(cause), Some(at)) => Some(PermissionResolution {
                outcome,
                cause: parse(cause)?,
                by: row.resolved_by.map(ParticipantId::from_uuid),
                at,
            }),
            (None, None, None) => None,
            _ => {
                return Err(StoreError::Backend(
                    "permission request with half a resolution".into(),
                ));
            }
        };
        Ok(Self {
            id: PermissionRequestId::from_uuid(row.id),
            session_id: SessionId::from_uuid(row.session_id),
            prompt_id: PromptId::from_uuid(row.prompt_id),
            tool_call: row.tool_call.0,
            options: row.options.0,
            created_at: row.created_at,
            deadline: row.deadline,
            resolution,
            version: unsigned(row.version)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct EventRow {
    session_id: Uuid,
    seq: i64,
    #[sqlx(rename = "type")]
    event_type: String,
    actor_kind: String,
    actor_id: Option<Uuid>,
    data: Json<serde_json::Value>,
    created_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        Ok(Self {
            session_id: SessionId::from_uuid(row.session_id),
            seq: Seq::new(u64::try_from(row.seq).map_err(corrupt)?),
            at: row.created_at,
            actor: Actor::from_parts(&row.actor_kind, row.actor_id).map_err(corrupt)?,
            payload: EventPayload::from_parts(&row.event_type, row.data.0).map_err(corrupt)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct ApiKeyRow {
    id: Uuid,
    workspace_id: String,
    name: String,
    scopes: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;

    fn try_from(row: ApiKeyRow) -> Result<Self, StoreError> {
        let scopes = row
            .scopes
            .split_whitespace()
            .map(parse)
            .collect::<Result<BTreeSet<Scope>, _>>()?;
        Ok(Self {
            id: ApiKeyId::from_uuid(row.id),
            workspace_id: WorkspaceId::parse(&row.workspace_id).map_err(corrupt)?,
            name: ApiKeyName::parse(&row.name).map_err(corrupt)?,
            scopes,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}
