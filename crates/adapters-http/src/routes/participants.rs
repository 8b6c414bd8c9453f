//! Joining, leaving, and the host's management of participants.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tandem_domain::{ParticipantId, SessionId};

use crate::dto::page::{ListQuery, limit, next_cursor, slice};
use crate::dto::participant::{
    JoinRequest, JoinedSessionResponse, ParticipantPage, ParticipantResponse,
    UpdateParticipantRequest,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::limit::LimitedByAddress;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Gone, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;

/// Join a session through an invite.
///
/// Needs no credential: the invite token is the credential. Each join creates a
/// new participant, with the invite's role and a new token shown only here.
#[utoipa::path(
    post,
    path = "/v1/join",
    operation_id = "join_session",
    tag = "participants",
    request_body = JoinRequest,
    responses(
        (status = 201, description = "The session, the new participant and its token.", body = JoinedSessionResponse),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 410, response = Gone),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn join_session(
    State(state): State<AppState>,
    _: LimitedByAddress,
    ApiJson(body): ApiJson<JoinRequest>,
) -> Result<(StatusCode, Json<JoinedSessionResponse>), ApiError> {
    let input = body.parse(&state.tandem.config().limits)?;
    let joined = state
        .tandem
        .join(&input.invite_token, input.display_name, input.user_id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(JoinedSessionResponse::from(&joined)),
    ))
}

/// Leave a session.
///
/// A collaborator or viewer leaves; its token stops working at once. The host
/// closes the session instead.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/leave",
    operation_id = "leave_session",
    tag = "participants",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id.")),
    responses(
        (status = 204, description = "The participant has left."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn leave_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<StatusCode, ApiError> {
    state.tandem.leave(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List a session's participants.
///
/// Everyone who took part, present or not, in join order.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/participants",
    operation_id = "list_participants",
    tag = "participants",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id."), ListQuery),
    responses(
        (status = 200, description = "A page of participants.", body = ParticipantPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_participants(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ParticipantPage>, ApiError> {
    let limit = limit(query.limit)?;
    let participants = state.tandem.list_participants(&caller, id).await?;
    let participants = slice(participants, query.after, limit, |participant| {
        participant.id.as_uuid()
    });
    Ok(Json(ParticipantPage {
        next: next_cursor(&participants, limit, |participant| participant.id.as_uuid()),
        participants: participants.iter().map(ParticipantResponse::from).collect(),
    }))
}

/// Change a participant's role.
///
/// The host makes a collaborator a viewer or the other way round.
#[utoipa::path(
    patch,
    path = "/v1/sessions/{id}/participants/{pid}",
    operation_id = "update_participant",
    tag = "participants",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("pid" = Uuid, Path, description = "The participant's id."),
    ),
    request_body = UpdateParticipantRequest,
    responses(
        (status = 200, description = "The participant with its new role.", body = ParticipantResponse),
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
pub(crate) async fn update_participant(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, participant_id)): ApiPath<(SessionId, ParticipantId)>,
    ApiJson(body): ApiJson<UpdateParticipantRequest>,
) -> Result<Json<ParticipantResponse>, ApiError> {
    let participant = state
        .tandem
        .change_role(&caller, id, participant_id, body.role.into())
        .await?;
    Ok(Json(ParticipantResponse::from(&participant)))
}

/// Remove a participant.
///
/// The host removes a participant; its token stops working at once.
#[utoipa::path(
    delete,
    path = "/v1/sessions/{id}/participants/{pid}",
    operation_id = "remove_participant",
    tag = "participants",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("pid" = Uuid, Path, description = "The participant's id."),
    ),
    responses(
        (status = 204, description = "The participant was removed."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn remove_participant(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, participant_id)): ApiPath<(SessionId, ParticipantId)>,
) -> Result<StatusCode, ApiError> {
    state
        .tandem
        .remove_participant(&caller, id, participant_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
