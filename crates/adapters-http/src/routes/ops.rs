//! Probes for orchestrators: liveness and readiness.

use axum::Json;
use axum::extract::State;

use crate::dto::Health;
use crate::error::{ApiError, ErrorCode};
use crate::openapi::Unavailable;
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "The process is alive.", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// Readiness: the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The server is ready to serve.", body = Health),
        (status = 503, response = Unavailable),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match state.tandem.ready().await {
        Ok(()) => Ok(Json(Health {
            status: "ok".to_owned(),
        })),
        Err(error) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NotReady,
                "the database does not answer",
            ))
        }
    }
}
