//! Comments: read by everyone, posted per the permission matrix.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tandem_domain::{CommentId, SessionId};

use crate::dto::comment::{CommentPage, CommentResponse, PostCommentRequest};
use crate::dto::page::{ListQuery, next_cursor, page};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;

/// List a session's comments.
///
/// In posting order.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/comments",
    operation_id = "list_comments",
    tag = "comments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id."), ListQuery),
    responses(
        (status = 200, description = "A page of comments.", body = CommentPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_comments(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<CommentPage>, ApiError> {
    let page = page(query.after, query.limit, CommentId::from_uuid)?;
    let comments = state.tandem.list_comments(&caller, id, page).await?;
    Ok(Json(CommentPage {
        next: next_cursor(&comments, page.limit, |comment| comment.id.as_uuid()),
        comments: comments.iter().map(CommentResponse::from).collect(),
    }))
}

/// Post a comment.
///
/// The host always; collaborators unless the session is view-only; viewers never.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/comments",
    operation_id = "post_comment",
    tag = "comments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id.")),
    request_body = PostCommentRequest,
    responses(
        (status = 201, description = "The comment.", body = CommentResponse),
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
pub(crate) async fn post_comment(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(body): ApiJson<PostCommentRequest>,
) -> Result<(StatusCode, Json<CommentResponse>), ApiError> {
    let text = body.parse(&state.tandem.config().limits)?;
    let comment = state.tandem.post_comment(&caller, id, text).await?;
    Ok((StatusCode::CREATED, Json(CommentResponse::from(&comment))))
}
