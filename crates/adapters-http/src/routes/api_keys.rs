//! `/v1/api-keys`: admins manage their workspace's keys.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tandem_domain::ApiKeyId;

use crate::dto::api_key::{ApiKeyCreatedResponse, ApiKeyPage, ApiKeyResponse, CreateApiKeyRequest};
use crate::dto::page::{ListQuery, next_cursor, page};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;

/// Create an API key.
///
/// Needs an API key with `admin`; the new key belongs to the same workspace. Its
/// secret is shown only in this response.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    operation_id = "create_api_key",
    tag = "api-keys",
    security(("bearer" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "The key and its secret.", body = ApiKeyCreatedResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<ApiKeyCreatedResponse>), ApiError> {
    let (name, scopes) = body.parse()?;
    let created = state.tandem.create_api_key(&caller, name, scopes).await?;
    let response = ApiKeyCreatedResponse {
        api_key: ApiKeyResponse::from(&created.key),
        secret: created.secret.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(response)))
}

/// List the workspace's API keys.
///
/// Needs an API key with `admin`. Newest first; secrets are never shown again.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    operation_id = "list_api_keys",
    tag = "api-keys",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of API keys.", body = ApiKeyPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ApiKeyPage>, ApiError> {
    let page = page(query.after, query.limit, ApiKeyId::from_uuid)?;
    let keys = state.tandem.list_api_keys(&caller, page).await?;
    Ok(Json(ApiKeyPage {
        next: next_cursor(&keys, page.limit, |key| key.id.as_uuid()),
        api_keys: keys.iter().map(ApiKeyResponse::from).collect(),
    }))
}

/// Revoke an API key.
///
/// Needs an API key with `admin` of the same workspace; the key stops working at
/// once.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{kid}",
    operation_id = "revoke_api_key",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("kid" = Uuid, Path, description = "The API key's id.")),
    responses(
        (status = 204, description = "The key was revoked."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<ApiKeyId>,
) -> Result<StatusCode, ApiError> {
    state.tandem.revoke_api_key(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
