//! Sessions on the wire: create, update, close requests; the session itself, with
//! its participants, and the creator's one-time credentials.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_domain::{
    self as domain, AgentProfileName, DisplayName, SessionPatch, Summary, TextLimits, Title, Ttl,
    UserId,
};
use tandem_service::{Invalid, NewSession, SessionDetails, SessionOverview};
use utoipa::ToSchema;
use uuid::Uuid;

use super::agent::AgentResponse;
use super::enums::{CloseReason, PermissionPolicy, SessionMode, SessionStatus};
use super::invite::InviteCreatedResponse;
use super::participant::ParticipantResponse;
use super::validate::{invalid, optional};

/// A new session; every field is optional and has a default.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateSessionRequest {
    /// The session's title (default `Untitled session`).
    #[schema(example = "Fix the flaky login test")]
    pub(crate) title: Option<String>,
    /// What collaborators may do (default `prompt_with_approval`).
    pub(crate) mode: Option<SessionMode>,
    /// The name of an agent profile of the server's configuration (default: the
    /// server's default profile).
    #[schema(example = "echo")]
    pub(crate) agent_profile: Option<String>,
    /// How the agent's tool requests are answered (default `ask_host`).
    pub(crate) permission_policy: Option<PermissionPolicy>,
    /// The session's absolute lifetime: a number and one unit (`s`, `m`, `h`,
    /// `d`), e.g. `36h` (default `24h`, at most `30d`).
    #[schema(example = "24h")]
    pub(crate) expires_in: Option<String>,
    /// The session expires after this long without activity: a number and one
    /// unit, e.g. `90m` (default `2h`, at most `30d`).
    #[schema(example = "2h")]
    pub(crate) idle_timeout: Option<String>,
    /// The host participant's display name (default `Host`).
    #[schema(example = "Ada")]
    pub(crate) host_display_name: Option<String>,
    /// The host's user id in the caller's own system, stored as given.
    #[schema(example = "sso|ada")]
    pub(crate) host_user_id: Option<String>,
}

impl CreateSessionRequest {
    /// The service's input, or every invalid field.
    pub(crate) fn parse(self, limits: &TextLimits) -> Result<NewSession, Invalid> {
        let title = optional("title", self.title.as_deref(), |raw| {
            Title::parse(raw, limits)
        });
        let agent_profile = optional(
            "agentProfile",
            self.agent_profile.as_deref(),
            AgentProfileName::parse,
        );
        let expires_in = optional("expiresIn", self.expires_in.as_deref(), Ttl::parse_single);
        let idle_timeout = optional(
            "idleTimeout",
            self.idle_timeout.as_deref(),
            Ttl::parse_single,
        );
        let host_display_name = optional(
            "hostDisplayName",
            self.host_display_name.as_deref(),
            |raw| DisplayName::parse(raw, limits),
        );
        let host_user_id = optional("hostUserId", self.host_user_id.as_deref(), UserId::parse);
        match (
            title,
            agent_profile,
            expires_in,
            idle_timeout,
            host_display_name,
            host_user_id,
        ) {
            (
                Ok(title),
                Ok(agent_profile),
                Ok(expires_in),
                Ok(idle_timeout),
                Ok(host_display_name),
                Ok(host_user_id),
            ) => Ok(NewSession {
                title,
                mode: self.mode.map(Into::into),
                agent_profile,
                permission_policy: self.permission_policy.map(Into::into),
                expires_in,
                idle_timeout,
                host_display_name,
                host_user_id,
            }),
            (title, agent_profile, expires_in, idle_timeout, host_display_name, host_user_id) => {
                Err(invalid([
                    title.err(),
                    agent_profile.err(),
                    expires_in.err(),
                    idle_timeout.err(),
                    host_display_name.err(),
                    host_user_id.err(),
                ]))
            }
        }
    }
}

/// The host's changes to a session; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UpdateSessionRequest {
    /// A new title.
    pub(crate) title: Option<String>,
    /// A new mode.
    pub(crate) mode: Option<SessionMode>,
    /// A new permission policy.
    pub(crate) permission_policy: Option<PermissionPolicy>,
    /// Moves `expiresAt` to now plus this, a number and one unit (`4h`): at
    /// most 30 days after the session's creation (else 409 `EXPIRY_BEYOND_MAX`).
    #[schema(example = "4h")]
    pub(crate) expires_in: Option<String>,
}

impl UpdateSessionRequest {
    /// The service's input, or every invalid field.
    pub(crate) fn parse(self, limits: &TextLimits) -> Result<SessionPatch, Invalid> {
        let title = optional("title", self.title.as_deref(), |raw| {
            Title::parse(raw, limits)
        });
        let expires_in = optional("expiresIn", self.expires_in.as_deref(), Ttl::parse_single);
        match (title, expires_in) {
            (Ok(title), Ok(expires_in)) => Ok(SessionPatch {
                title,
                mode: self.mode.map(Into::into),
                permission_policy: self.permission_policy.map(Into::into),
                expires_in,
            }),
            (title, expires_in) => Err(invalid([title.err(), expires_in.err()])),
        }
    }
}

/// Closing a session, with an optional summary for everyone.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CloseSessionRequest {
    /// What was achieved, shown to every participant.
    pub(crate) summary: Option<String>,
}

impl CloseSessionRequest {
    /// The validated summary.
    pub(crate) fn parse(self, limits: &TextLimits) -> Result<Option<Summary>, Invalid> {
        optional("summary", self.summary.as_deref(), |raw| {
            Summary::parse(raw, limits)
        })
        .map_err(Invalid::from)
    }
}

/// A shared agent session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionResponse {
    pub(crate) id: Uuid,
    /// The workspace of the API key that created it.
    pub(crate) workspace_id: String,
    pub(crate) title: String,
    /// The host's user id in the caller's own system.
    #[schema(required = true)]
    pub(crate) host_user_id: Option<String>,
    /// The agent profile the session runs.
    pub(crate) agent_profile: String,
    /// The agent's own id for this session, once its agent has started.
    #[schema(required = true)]
    pub(crate) agent_session_id: Option<String>,
    pub(crate) mode: SessionMode,
    pub(crate) permission_policy: PermissionPolicy,
    pub(crate) status: SessionStatus,
    pub(crate) created_at: DateTime<Utc>,
    /// When the session expires at the latest.
    pub(crate) expires_at: DateTime<Utc>,
    /// The session expires after this long without activity (`2h`).
    #[schema(example = "2h")]
    pub(crate) idle_timeout: String,
    /// The last participant write or agent output.
    pub(crate) last_activity_at: DateTime<Utc>,
    /// When the session ended; `null` while active.
    #[schema(required = true)]
    pub(crate) closed_at: Option<DateTime<Utc>>,
    /// Why the session ended; `null` while active.
    #[schema(required = true)]
    pub(crate) close_reason: Option<CloseReason>,
    /// The host's closing summary, if any.
    #[schema(required = true)]
    pub(crate) summary: Option<String>,
    /// The `seq` of the session's latest event.
    pub(crate) last_seq: u64,
}

impl From<&domain::Session> for SessionResponse {
    fn from(session: &domain::Session) -> Self {
        let end = session.end.as_ref();
        Self {
            id: session.id.as_uuid(),
            workspace_id: session.workspace_id.to_string(),
            title: session.title.to_string(),
            host_user_id: session
                .host_user_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            agent_profile: session.agent_profile.to_string(),
            agent_session_id: session.agent_session_id.clone(),
            mode: session.mode.into(),
            permission_policy: session.permission_policy.into(),
            status: session.status().into(),
            created_at: session.created_at,
            expires_at: session.expires_at,
            idle_timeout: session.idle_timeout.to_string(),
            last_activity_at: session.last_activity_at,
            closed_at: end.map(|end| end.at),
            close_reason: end.map(|end| end.reason.into()),
            summary: end
                .and_then(|end| end.summary.as_ref())
                .map(ToString::to_string),
            last_seq: session.last_seq.get(),
        }
    }
}

/// A session with everyone who took part in it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionDetailsResponse {
    #[serde(flatten)]
    pub(crate) session: SessionResponse,
    /// Every participant, present or not, in join order.
    pub(crate) participants: Vec<ParticipantResponse>,
    /// The session's agent: where it works, the commands and modes it offers,
    /// its title; `null` until the first prompt started it.
    #[schema(required = true)]
    pub(crate) agent: Option<AgentResponse>,
}

impl From<&SessionDetails> for SessionDetailsResponse {
    fn from(details: &SessionDetails) -> Self {
        Self {
            session: (&details.session).into(),
            participants: details.participants.iter().map(Into::into).collect(),
            agent: details.agent.as_ref().map(Into::into),
        }
    }
}

/// The host participant and its token, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HostCredentials {
    pub(crate) participant: ParticipantResponse,
    /// The host's bearer token; shown only in this response.
    pub(crate) token: String,
    /// The link that opens the session as its host in the web app: the token
    /// travels in the URL fragment, which browsers never send to a server.
    #[schema(
        format = "uri",
        example = "http://127.0.0.1:8080/s/0190a7b2-...#tdm_pt_..."
    )]
    pub(crate) url: String,
}

/// A created session with the host's credentials and a collaborator invite.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionCreatedResponse {
    pub(crate) session: SessionResponse,
    pub(crate) host: HostCredentials,
    pub(crate) invite: InviteCreatedResponse,
}

/// A session in a listing, with how many people are in it now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionListItem {
    #[serde(flatten)]
    pub(crate) session: SessionResponse,
    /// The participants present now (the host included; not those who left or
    /// were removed).
    pub(crate) participant_count: u32,
}

impl From<&SessionOverview> for SessionListItem {
    fn from(overview: &SessionOverview) -> Self {
        Self {
            session: (&overview.session).into(),
            participant_count: overview.present_participants,
        }
    }
}

/// A page of sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionPage {
    pub(crate) sessions: Vec<SessionListItem>,
    /// The cursor of the next page (`?after=`), or `null` on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<Uuid>,
}
