//! Prompts: submit, read, and the lifecycle around them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tandem_domain::{PromptId, SessionId};
use tandem_service::CancelResult;

use crate::dto::page::{PromptListQuery, next_cursor, page};
use crate::dto::prompt::{PromptPage, PromptResponse, PromptTextRequest};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;

/// List a session's prompts.
///
/// In submission order, optionally of one status.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/prompts",
    operation_id = "list_prompts",
    tag = "prompts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id."), PromptListQuery),
    responses(
        (status = 200, description = "A page of prompts.", body = PromptPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_prompts(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiQuery(query): ApiQuery<PromptListQuery>,
) -> Result<Json<PromptPage>, ApiError> {
    let page = page(query.after, query.limit, PromptId::from_uuid)?;
    let prompts = state
        .tandem
        .list_prompts(&caller, id, query.status.map(Into::into), page)
        .await?;
    Ok(Json(PromptPage {
        next: next_cursor(&prompts, page.limit, |prompt| prompt.id.as_uuid()),
        prompts: prompts.iter().map(PromptResponse::from).collect(),
    }))
}

/// Submit a prompt.
///
/// The host's prompts and collaborators' prompts in `prompt_direct` mode are
/// `queued` at once; collaborators' prompts in `prompt_with_approval` mode wait
/// as `pending_approval`.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/prompts",
    operation_id = "submit_prompt",
    tag = "prompts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id.")),
    request_body = PromptTextRequest,
    responses(
        (status = 201, description = "The prompt, `queued` or `pending_approval`.", body = PromptResponse),
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
pub(crate) async fn submit_prompt(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(body): ApiJson<PromptTextRequest>,
) -> Result<(StatusCode, Json<PromptResponse>), ApiError> {
    let text = body.parse(&state.tandem.config().limits)?;
    let prompt = state.tandem.submit_prompt(&caller, id, text).await?;
    Ok((StatusCode::CREATED, Json(PromptResponse::from(&prompt))))
}

/// Read a prompt.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/prompts/{pid}",
    operation_id = "get_prompt",
    tag = "prompts",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("pid" = Uuid, Path, description = "The prompt's id."),
    ),
    responses(
        (status = 200, description = "The prompt.", body = PromptResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn get_prompt(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, prompt_id)): ApiPath<(SessionId, PromptId)>,
) -> Result<Json<PromptResponse>, ApiError> {
    let prompt = state.tandem.get_prompt(&caller, id, prompt_id).await?;
    Ok(Json(PromptResponse::from(&prompt)))
}

/// Edit a pending prompt.
///
/// Its author changes the text while the prompt waits for approval.
#[utoipa::path(
    patch,
    path = "/v1/sessions/{id}/prompts/{pid}",
    operation_id = "edit_prompt",
    tag = "prompts",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("pid" = Uuid, Path, description = "The prompt's id."),
    ),
    request_body = PromptTextRequest,
    responses(
        (status = 200, description = "The edited prompt.", body = PromptResponse),
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
pub(crate) async fn edit_prompt(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, prompt_id)): ApiPath<(SessionId, PromptId)>,
    ApiJson(body): ApiJson<PromptTextRequest>,
) -> Result<Json<PromptResponse>, ApiError> {
    let text = body.parse(&state.tandem.config().limits)?;
    let prompt = state
        .tandem
        .edit_prompt(&caller, id, prompt_id, text)
        .await?;
    Ok(Json(PromptResponse::from(&prompt)))
}

/// Approve a pending prompt.
///
/// The host queues it. Of two concurrent approvals or rejections exactly one
/// wins; the other gets 409 `PROMPT_ALREADY_RESOLVED`.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/prompts/{pid}/approve",
    operation_id = "approve_prompt",
    tag = "prompts",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("pid" = Uuid, Path, description = "The prompt's id."),
    ),
    responses(
        (status = 200, description = "The prompt, now `queued`.", body = PromptResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn approve_prompt(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, prompt_id)): ApiPath<(SessionId, PromptId)>,
) -> Result<Json<PromptResponse>, ApiError> {
    let prompt = state.tandem.approve_prompt(&caller, id, prompt_id).await?;
    Ok(Json(PromptResponse::from(&prompt)))
}

/// Reject a pending prompt.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/prompts/{pid}/reject",
    operation_id = "reject_prompt",
    tag = "prompts",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("pid" = Uuid, Path, description = "The prompt's id."),
    ),
    responses(
        (status = 200, description = "The prompt, now `rejected`.", body = PromptResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn reject_prompt(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, prompt_id)): ApiPath<(SessionId, PromptId)>,
) -> Result<Json<PromptResponse>, ApiError> {
    let prompt = state.tandem.reject_prompt(&caller, id, prompt_id).await?;
    Ok(Json(PromptResponse::from(&prompt)))
}

/// Withdraw a pending prompt.
///
/// Its author takes it back before the host decides.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/prompts/{pid}/withdraw",
    operation_id = "withdraw_prompt",
    tag = "prompts",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("pid" = Uuid, Path, description = "The prompt's id."),
    ),
    responses(
        (status = 200, description = "The prompt, now `withdrawn`.", body = PromptResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn withdraw_prompt(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, prompt_id)): ApiPath<(SessionId, PromptId)>,
) -> Result<Json<PromptResponse>, ApiError> {
    let prompt = state.tandem.withdraw_prompt(&caller, id, prompt_id).await?;
    Ok(Json(PromptResponse::from(&prompt)))
}

/// Cancel a queued or running prompt.
///
/// The host (any prompt) or its author. A queued prompt is cancelled at once
/// (200); for a running prompt the agent is asked to stop (202) and
/// `prompt.cancelled` follows once it has.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/prompts/{pid}/cancel",
    operation_id = "cancel_prompt",
    tag = "prompts",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("pid" = Uuid, Path, description = "The prompt's id."),
    ),
    responses(
        (status = 200, description = "The prompt, now `cancelled`.", body = PromptResponse),
        (status = 202, description = "The prompt is running; the agent was asked to stop.", body = PromptResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn cancel_prompt(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, prompt_id)): ApiPath<(SessionId, PromptId)>,
) -> Result<(StatusCode, Json<PromptResponse>), ApiError> {
    let (status, prompt) = match state.tandem.cancel_prompt(&caller, id, prompt_id).await? {
        CancelResult::Cancelled(prompt) => (StatusCode::OK, prompt),
        CancelResult::Requested(prompt) => (StatusCode::ACCEPTED, prompt),
    };
    Ok((status, Json(PromptResponse::from(&prompt))))
}

/// Retry a finished prompt.
///
/// The host queues a new prompt with the same text.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/prompts/{pid}/retry",
    operation_id = "retry_prompt",
    tag = "prompts",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("pid" = Uuid, Path, description = "The prompt to retry."),
    ),
    responses(
        (status = 201, description = "The new prompt, `queued`.", body = PromptResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn retry_prompt(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, prompt_id)): ApiPath<(SessionId, PromptId)>,
) -> Result<(StatusCode, Json<PromptResponse>), ApiError> {
    let prompt = state.tandem.retry_prompt(&caller, id, prompt_id).await?;
    Ok((StatusCode::CREATED, Json(PromptResponse::from(&prompt))))
}
