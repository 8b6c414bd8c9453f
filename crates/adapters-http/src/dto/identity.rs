//! Who a credential belongs to, and the agent profiles a client may pick.

use serde::Serialize;
use tandem_service::{AgentProfiles, Caller};
use utoipa::ToSchema;

use super::api_key::ApiKeyResponse;
use super::participant::ParticipantResponse;

/// What kind of credential a caller presented.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CallerKind {
    Participant,
    ApiKey,
}

/// The caller: a participant (with its session and current role) or an API key
/// (with its workspace and scopes). Exactly one of `participant` and `apiKey` is
/// set, as `kind` says.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MeResponse {
    pub(crate) kind: CallerKind,
    #[schema(required = true)]
    pub(crate) participant: Option<ParticipantResponse>,
    #[schema(required = true)]
    pub(crate) api_key: Option<ApiKeyResponse>,
}

impl From<&Caller> for MeResponse {
    fn from(caller: &Caller) -> Self {
        match caller {
            Caller::Participant(participant) => Self {
                kind: CallerKind::Participant,
                participant: Some(participant.into()),
                api_key: None,
            },
            Caller::ApiKey(key) => Self {
                kind: CallerKind::ApiKey,
                participant: None,
                api_key: Some(key.into()),
            },
        }
    }
}

/// The agent profiles a new session may name (`agentProfile`), by name only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentProfilesResponse {
    /// Every profile's name, in name order.
    #[schema(example = json!(["echo"]))]
    pub(crate) profiles: Vec<String>,
    /// The profile of sessions created without `agentProfile`.
    #[schema(example = "echo")]
    pub(crate) default: String,
}

impl From<&AgentProfiles> for AgentProfilesResponse {
    fn from(profiles: &AgentProfiles) -> Self {
        Self {
            profiles: profiles.names.iter().map(ToString::to_string).collect(),
            default: profiles.default.to_string(),
        }
    }
}
