//! `/v1/sessions`: create, list, read, update, close, terminate.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tandem_domain::SessionId;

use crate::dto::invite::{InviteCreatedResponse, InviteResponse};
use crate::dto::page::{SessionListQuery, next_cursor, page};
use crate::dto::participant::ParticipantResponse;
use crate::dto::session::{
    CloseSessionRequest, CreateSessionRequest, HostCredentials, SessionCreatedResponse,
    SessionDetailsResponse, SessionListItem, SessionPage, SessionResponse, UpdateSessionRequest,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;

/// Create a session.
///
/// Needs an API key with `sessions:write`. Creates the host participant and a
/// collaborator invite; their tokens are shown only in this response, each with
/// the link that carries it (the host's opens the session in the web app).
#[utoipa::path(
    post,
    path = "/v1/sessions",
    operation_id = "create_session",
    tag = "sessions",
    security(("bearer" = [])),
    request_body(content = CreateSessionRequest, description = "Every field is optional; the body may be empty."),
    responses(
        (status = 201, description = "The session, the host's credentials and a collaborator invite.", body = SessionCreatedResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn create_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateSessionRequest>,
) -> Result<(StatusCode, Json<SessionCreatedResponse>), ApiError> {
    let input = body.parse(&state.tandem.config().limits)?;
    let created = state.tandem.create_session(&caller, input).await?;
    let response = SessionCreatedResponse {
        session: SessionResponse::from(&created.session),
        host: HostCredentials {
            participant: ParticipantResponse::from(&created.host),
            token: created.host_token.expose().to_owned(),
            url: state.host_url(created.session.id, created.host_token.expose()),
        },
        invite: InviteCreatedResponse {
            invite: InviteResponse::from(&created.invite),
            token: created.invite_token.expose().to_owned(),
            url: state.invite_url(created.invite_token.expose()),
        },
    };
    Ok((StatusCode::CREATED, Json(response)))
}

/// List the workspace's sessions.
///
/// Needs an API key with `sessions:read`. Newest first, each with its count of
/// present participants.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    operation_id = "list_sessions",
    tag = "sessions",
    security(("bearer" = [])),
    params(SessionListQuery),
    responses(
        (status = 200, description = "A page of sessions.", body = SessionPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(query): ApiQuery<SessionListQuery>,
) -> Result<Json<SessionPage>, ApiError> {
    let page = page(query.after, query.limit, SessionId::from_uuid)?;
    let sessions = state
        .tandem
        .list_session_overviews(&caller, query.status.map(Into::into), page)
        .await?;
    Ok(Json(SessionPage {
        next: next_cursor(&sessions, page.limit, |overview| {
            overview.session.id.as_uuid()
        }),
        sessions: sessions.iter().map(SessionListItem::from).collect(),
    }))
}

/// Read a session with its participants.
///
/// For its participants, and for API keys of its workspace with `sessions:read`.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}",
    operation_id = "get_session",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id.")),
    responses(
        (status = 200, description = "The session with every participant.", body = SessionDetailsResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn get_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionDetailsResponse>, ApiError> {
    let details = state.tandem.session_details(&caller, id).await?;
    Ok(Json(SessionDetailsResponse::from(&details)))
}

/// Update a session.
///
/// The host changes its title, mode, permission policy, or moves its expiry
/// (within the session's maximum lifetime).
#[utoipa::path(
    patch,
    path = "/v1/sessions/{id}",
    operation_id = "update_session",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id.")),
    request_body(content = UpdateSessionRequest, description = "Only the fields to change; an empty body changes nothing."),
    responses(
        (status = 200, description = "The updated session.", body = SessionResponse),
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
pub(crate) async fn update_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(body): ApiJson<UpdateSessionRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let patch = body.parse(&state.tandem.config().limits)?;
    let session = state.tandem.update_session(&caller, id, patch).await?;
    Ok(Json(SessionResponse::from(&session)))
}

/// Close a session.
///
/// The host ends the session, with an optional summary; its queued and running
/// prompts are cancelled.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/close",
    operation_id = "close_session",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id.")),
    request_body(content = CloseSessionRequest, description = "Optional; the body may be empty."),
    responses(
        (status = 200, description = "The closed session.", body = SessionResponse),
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
pub(crate) async fn close_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(body): ApiJson<CloseSessionRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let summary = body.parse(&state.tandem.config().limits)?;
    let session = state.tandem.close_session(&caller, id, summary).await?;
    Ok(Json(SessionResponse::from(&session)))
}

/// Terminate a session.
///
/// An API key with `admin` of the session's workspace force-ends it.
#[utoipa::path(
    delete,
    path = "/v1/sessions/{id}",
    operation_id = "terminate_session",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id.")),
    responses(
        (status = 200, description = "The terminated session.", body = SessionResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn terminate_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionResponse>, ApiError> {
    let session = state.tandem.terminate_session(&caller, id).await?;
    Ok(Json(SessionResponse::from(&session)))
}
