//! The session's agent: the host switches its mode.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tandem_domain::SessionId;

use crate::dto::agent::{AgentResponse, SetAgentModeRequest};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Authenticated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;

/// Switch the agent's mode.
///
/// The host picks one of the modes the session's agent offers (`agent.modes`
/// of the session). The agent is asked at once if it runs, else when it next
/// starts; `agent.mode_changed` (or `agent.mode_change_failed`) follows in the
/// session's events.
#[utoipa::path(
    put,
    path = "/v1/sessions/{id}/agent-mode",
    operation_id = "set_agent_mode",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id.")),
    request_body = SetAgentModeRequest,
    responses(
        (status = 202, description = "The request is recorded; the session's agent with the mode requested.", body = AgentResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn set_agent_mode(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(body): ApiJson<SetAgentModeRequest>,
) -> Result<(StatusCode, Json<AgentResponse>), ApiError> {
    let mode = body.parse()?;
    let agent = state.tandem.set_agent_mode(&caller, id, mode).await?;
    Ok((StatusCode::ACCEPTED, Json(AgentResponse::from(&agent))))
}
