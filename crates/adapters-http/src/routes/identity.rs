//! What a client reads before it acts: who it is, and the agent profiles.

use axum::Json;
use axum::extract::State;

use crate::dto::identity::{AgentProfilesResponse, MeResponse};
use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::openapi::{Forbidden, Internal, Unauthorized};
use crate::state::AppState;

/// Who am I.
///
/// The caller behind the token: a participant, with its session and current
/// role (a web page learns from it which participant its token stands for), or
/// an API key, with its workspace and scopes.
#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "whoami",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller.", body = MeResponse),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn whoami(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<MeResponse>, ApiError> {
    let caller = state.tandem.whoami(&caller).await?;
    Ok(Json(MeResponse::from(&caller)))
}

/// List the agent profiles.
///
/// The names a new session may give as `agentProfile`, and the default; for API
/// keys of any scope. How a profile runs is server configuration and never shown.
#[utoipa::path(
    get,
    path = "/v1/agent-profiles",
    operation_id = "list_agent_profiles",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profiles' names.", body = AgentProfilesResponse),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_agent_profiles(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<AgentProfilesResponse>, ApiError> {
    let profiles = state.tandem.agent_profiles(&caller)?;
    Ok(Json(AgentProfilesResponse::from(&profiles)))
}
