//! The host's answers to the agent's permission requests.

use axum::Json;
use axum::extract::State;
use tandem_domain::{PermissionRequestId, PromptId, SessionId};

use crate::dto::permission::{
    AnswerPermissionRequest, OpenPermissionRequests, PermissionRequestResponse,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Authenticated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;

/// Answer a permission request of the agent.
///
/// The host chooses one of the options the agent offered (`optionId`), or
/// refuses (`reject: true`).
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/permissions/{rid}",
    operation_id = "answer_permission",
    tag = "permissions",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("rid" = Uuid, Path, description = "The permission request's id (from `agent.permission_requested`)."),
    ),
    request_body = AnswerPermissionRequest,
    responses(
        (status = 200, description = "The resolved permission request.", body = PermissionRequestResponse),
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
pub(crate) async fn answer_permission(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, request_id)): ApiPath<(SessionId, PermissionRequestId)>,
    ApiJson(body): ApiJson<AnswerPermissionRequest>,
) -> Result<Json<PermissionRequestResponse>, ApiError> {
    let answer = body.parse()?;
    let request = state
        .tandem
        .answer_permission(&caller, id, request_id, answer)
        .await?;
    Ok(Json(PermissionRequestResponse::from(&request)))
}

/// List a prompt's open permission requests.
///
/// The agent's requests to run a tool that wait for the host's answer, oldest
/// first (each also announced by an `agent.permission_requested` event).
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/prompts/{pid}/permissions",
    operation_id = "list_open_permissions",
    tag = "permissions",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("pid" = Uuid, Path, description = "The prompt's id."),
    ),
    responses(
        (status = 200, description = "The prompt's open permission requests.", body = OpenPermissionRequests),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_open_permissions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, prompt_id)): ApiPath<(SessionId, PromptId)>,
) -> Result<Json<OpenPermissionRequests>, ApiError> {
    let requests = state
        .tandem
        .open_permission_requests(&caller, id, prompt_id)
        .await?;
    Ok(Json(OpenPermissionRequests {
        permissions: requests.iter().map(Into::into).collect(),
    }))
}
