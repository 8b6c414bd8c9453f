//! The host's invites.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tandem_domain::{InviteId, SessionId};

use crate::dto::invite::{
    CreateInviteRequest, InviteCreatedResponse, InvitePage, InvitePreviewResponse, InviteResponse,
};
use crate::dto::page::{ListQuery, limit, next_cursor, slice};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated, bearer_token};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Gone, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;

/// List a session's invites.
///
/// Host only; in creation order, revoked ones included.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/invites",
    operation_id = "list_invites",
    tag = "invites",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id."), ListQuery),
    responses(
        (status = 200, description = "A page of invites.", body = InvitePage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_invites(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<InvitePage>, ApiError> {
    let limit = limit(query.limit)?;
    let invites = state.tandem.list_invites(&caller, id).await?;
    let invites = slice(invites, query.after, limit, |invite| invite.id.as_uuid());
    Ok(Json(InvitePage {
        next: next_cursor(&invites, limit, |invite| invite.id.as_uuid()),
        invites: invites.iter().map(InviteResponse::from).collect(),
    }))
}

/// Create an invite.
///
/// The host creates an invite link, e.g. a viewer link; its token is shown only
/// in this response.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/invites",
    operation_id = "create_invite",
    tag = "invites",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id.")),
    request_body(content = CreateInviteRequest, description = "Every field is optional; the body may be empty."),
    responses(
        (status = 201, description = "The invite, its token and its link.", body = InviteCreatedResponse),
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
pub(crate) async fn create_invite(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(body): ApiJson<CreateInviteRequest>,
) -> Result<(StatusCode, Json<InviteCreatedResponse>), ApiError> {
    let settings = body.parse()?;
    let created = state.tandem.create_invite(&caller, id, settings).await?;
    let response = InviteCreatedResponse {
        invite: InviteResponse::from(&created.invite),
        token: created.token.expose().to_owned(),
        url: state.invite_url(created.token.expose()),
    };
    Ok((StatusCode::CREATED, Json(response)))
}

/// Revoke an invite.
///
/// The host revokes an invite; it stops working at once.
#[utoipa::path(
    delete,
    path = "/v1/sessions/{id}/invites/{iid}",
    operation_id = "revoke_invite",
    tag = "invites",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("iid" = Uuid, Path, description = "The invite's id."),
    ),
    responses(
        (status = 204, description = "The invite was revoked."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn revoke_invite(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, invite_id)): ApiPath<(SessionId, InviteId)>,
) -> Result<StatusCode, ApiError> {
    state.tandem.revoke_invite(&caller, id, invite_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Preview an invite.
///
/// The join page's read: the invite token goes as `Authorization: Bearer
/// tdm_inv_...` and the answer is the session's title and the role a join would
/// give. An invite that no longer works gets the error the join would get.
#[utoipa::path(
    get,
    path = "/v1/invites/preview",
    operation_id = "preview_invite",
    tag = "invites",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the invite lets its holder join.", body = InvitePreviewResponse),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 410, response = Gone),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn preview_invite(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<InvitePreviewResponse>, ApiError> {
    let token = bearer_token(&headers)?;
    let preview = state.tandem.preview_invite(token).await?;
    Ok(Json(InvitePreviewResponse::from(&preview)))
}
