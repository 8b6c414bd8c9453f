//! Participants on the wire: joining, role changes, and the participant itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_domain::{self as domain, DisplayName, TextLimits, UserId};
use tandem_service::{Invalid, JoinedSession};
use utoipa::ToSchema;
use uuid::Uuid;

use super::enums::{InviteRole, Role};
use super::session::SessionResponse;
use super::validate::{at, invalid, optional};

/// Joining a session through an invite.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct JoinRequest {
    /// The invite's token (the fragment of the invite link).
    pub(crate) invite_token: String,
    /// How the new participant appears to the others.
    #[schema(example = "Grace")]
    pub(crate) display_name: String,
    /// The joiner's user id in the caller's own system, stored as given (not
    /// blank).
    pub(crate) user_id: Option<String>,
}

/// A join's validated input.
#[derive(Debug)]
pub(crate) struct JoinInput {
    pub(crate) invite_token: String,
    pub(crate) display_name: DisplayName,
    pub(crate) user_id: Option<UserId>,
}

impl JoinRequest {
    /// The service's input, or every invalid field.
    pub(crate) fn parse(self, limits: &TextLimits) -> Result<JoinInput, Invalid> {
        let display_name = at(
            "displayName",
            DisplayName::parse(&self.display_name, limits),
        );
        let user_id = optional("userId", self.user_id.as_deref(), UserId::parse);
        match (display_name, user_id) {
            (Ok(display_name), Ok(user_id)) => Ok(JoinInput {
                invite_token: self.invite_token,
                display_name,
                user_id,
            }),
            (display_name, user_id) => Err(invalid([display_name.err(), user_id.err()])),
        }
    }
}

/// The host gives a participant another role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UpdateParticipantRequest {
    pub(crate) role: InviteRole,
}

/// One person's presence in one session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ParticipantResponse {
    pub(crate) id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) display_name: String,
    pub(crate) role: Role,
    /// The user id in the caller's own system, if one was given.
    #[schema(required = true)]
    pub(crate) user_id: Option<String>,
    pub(crate) joined_at: DateTime<Utc>,
    /// When the participant left or was removed; `null` while present.
    #[schema(required = true)]
    pub(crate) left_at: Option<DateTime<Utc>>,
    /// The host who removed the participant, if it was removed.
    #[schema(required = true)]
    pub(crate) removed_by: Option<Uuid>,
}

impl From<&domain::Participant> for ParticipantResponse {
    fn from(participant: &domain::Participant) -> Self {
        Self {
            id: participant.id.as_uuid(),
            session_id: participant.session_id.as_uuid(),
            display_name: participant.display_name.to_string(),
            role: participant.role.into(),
            user_id: participant
                .user_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            joined_at: participant.joined_at,
            left_at: participant.left_at,
            removed_by: participant.removed_by.map(|id| id.as_uuid()),
        }
    }
}

/// A new participant with its token, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JoinedSessionResponse {
    pub(crate) session: SessionResponse,
    pub(crate) participant: ParticipantResponse,
    /// The participant's bearer token; shown only in this response.
    pub(crate) token: String,
}

impl From<&JoinedSession> for JoinedSessionResponse {
    fn from(joined: &JoinedSession) -> Self {
        Self {
            session: (&joined.session).into(),
            participant: (&joined.participant).into(),
            token: joined.token.expose().to_owned(),
        }
    }
}

/// A page of participants, in join order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ParticipantPage {
    pub(crate) participants: Vec<ParticipantResponse>,
    /// The cursor of the next page (`?after=`), or `null` on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<Uuid>,
}
