//! `/v1/webhooks`: endpoints that hear of a workspace's session events, and
//! their deliveries.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tandem_domain::{WebhookDeliveryId, WebhookId};

use crate::dto::page::{ListQuery, next_cursor, page};
use crate::dto::webhook::{
    CreateWebhookRequest, DeliveryListQuery, UpdateWebhookRequest, WebhookDeliveryPage,
    WebhookDeliveryResponse, WebhookPage, WebhookResponse, WebhookSecretResponse,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;

/// Create a webhook.
///
/// Needs an API key with `webhooks:write`. The webhook hears of events from
/// now on (never of the sessions' history). Its signing secret is shown only in
/// this response. A URL the server's outbound policy refuses (plain `http`, or
/// a host resolving to a loopback, private, link-local or metadata address) is
/// 422 `WEBHOOK_URL_REFUSED`.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    operation_id = "create_webhook",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "The webhook and its secret.", body = WebhookSecretResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateWebhookRequest>,
) -> Result<(StatusCode, Json<WebhookSecretResponse>), ApiError> {
    let new = body.parse()?;
    let created = state.tandem.create_webhook(&caller, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookSecretResponse::from(&created)),
    ))
}

/// List the workspace's webhooks.
///
/// Needs an API key with `webhooks:read`. Newest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    operation_id = "list_webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of webhooks.", body = WebhookPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<WebhookPage>, ApiError> {
    let page = page(query.after, query.limit, WebhookId::from_uuid)?;
    let webhooks = state.tandem.list_webhooks(&caller, page).await?;
    Ok(Json(WebhookPage {
        next: next_cursor(&webhooks, page.limit, |webhook| webhook.id().as_uuid()),
        webhooks: webhooks.iter().map(WebhookResponse::from).collect(),
    }))
}

/// Get a webhook.
///
/// Needs an API key with `webhooks:read` of the webhook's workspace.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{wid}",
    operation_id = "get_webhook",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("wid" = Uuid, Path, description = "The webhook's id.")),
    responses(
        (status = 200, description = "The webhook.", body = WebhookResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn get_webhook(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<Json<WebhookResponse>, ApiError> {
    let webhook = state.tandem.get_webhook(&caller, id).await?;
    Ok(Json(WebhookResponse::from(&webhook)))
}

/// Change a webhook.
///
/// Needs an API key with `webhooks:write`. `enabled: false` stops its
/// deliveries; enabling it again, or pointing it at other sessions, starts them
/// from now (events of the time between are not sent; pending retries are
/// abandoned).
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{wid}",
    operation_id = "update_webhook",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("wid" = Uuid, Path, description = "The webhook's id.")),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "The changed webhook.", body = WebhookResponse),
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
pub(crate) async fn update_webhook(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<WebhookId>,
    ApiJson(body): ApiJson<UpdateWebhookRequest>,
) -> Result<Json<WebhookResponse>, ApiError> {
    let patch = body.parse()?;
    let webhook = state.tandem.update_webhook(&caller, id, patch).await?;
    Ok(Json(WebhookResponse::from(&webhook)))
}

/// Delete a webhook.
///
/// Needs an API key with `webhooks:write`; its deliveries go with it.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{wid}",
    operation_id = "delete_webhook",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("wid" = Uuid, Path, description = "The webhook's id.")),
    responses(
        (status = 204, description = "The webhook was deleted."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<StatusCode, ApiError> {
    state.tandem.delete_webhook(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate a webhook's signing secret.
///
/// Needs an API key with `webhooks:write`. The new secret is shown only in this
/// response; the old one keeps signing requests beside it (two `v1,`
/// signatures) until `previousSecretExpiresAt`, so receivers can switch over.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{wid}/rotate-secret",
    operation_id = "rotate_webhook_secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("wid" = Uuid, Path, description = "The webhook's id.")),
    responses(
        (status = 200, description = "The webhook and its new secret.", body = WebhookSecretResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<Json<WebhookSecretResponse>, ApiError> {
    let rotated = state.tandem.rotate_webhook_secret(&caller, id).await?;
    Ok(Json(WebhookSecretResponse::from(&rotated)))
}

/// List a webhook's deliveries.
///
/// Needs an API key with `webhooks:read`. Newest first, with each delivery's
/// status, attempts, last response code and latency.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{wid}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("wid" = Uuid, Path, description = "The webhook's id."),
        DeliveryListQuery,
    ),
    responses(
        (status = 200, description = "A page of deliveries.", body = WebhookDeliveryPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<WebhookId>,
    ApiQuery(query): ApiQuery<DeliveryListQuery>,
) -> Result<Json<WebhookDeliveryPage>, ApiError> {
    let page = page(query.after, query.limit, WebhookDeliveryId::from_uuid)?;
    let deliveries = state
        .tandem
        .list_webhook_deliveries(&caller, id, query.status.map(Into::into), page)
        .await?;
    Ok(Json(WebhookDeliveryPage {
        next: next_cursor(&deliveries, page.limit, |delivery| delivery.id.as_uuid()),
        deliveries: deliveries
            .iter()
            .map(WebhookDeliveryResponse::from)
            .collect(),
    }))
}

/// Retry a failed delivery.
///
/// Needs an API key with `webhooks:write`. Sends the event once more, now (with
/// its `webhook-id` unchanged), and answers with the delivery as that attempt
/// left it: `succeeded`, or still `failed`. Only a `failed` delivery can be
/// retried (409 `WEBHOOK_DELIVERY_NOT_FAILED`); it works on a disabled webhook
/// too, to check an endpoint is back before enabling it.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{wid}/deliveries/{did}/retry",
    operation_id = "retry_webhook_delivery",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("wid" = Uuid, Path, description = "The webhook's id."),
        ("did" = Uuid, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 200, description = "The delivery after the attempt.", body = WebhookDeliveryResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn retry_webhook_delivery(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, delivery_id)): ApiPath<(WebhookId, WebhookDeliveryId)>,
) -> Result<Json<WebhookDeliveryResponse>, ApiError> {
    let delivery = state
        .tandem
        .retry_webhook_delivery(&caller, id, delivery_id)
        .await?;
    Ok(Json(WebhookDeliveryResponse::from(&delivery)))
}
