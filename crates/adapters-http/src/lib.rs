//! Tandem's HTTP adapter: axum routes for the `/v1` API, bearer-token
//! authentication for API keys and participant tokens, problem+json errors with
//! stable codes, rate limits on writes, Prometheus metrics, and the OpenAPI 3.1
//! document (utoipa).
//!
//! The binary needs only [`router`], [`HttpConfig`] and [`openapi`].

mod dto;
mod error;
mod extract;
mod layers;
mod limit;
pub mod metrics;
mod openapi;
mod routes;
mod serve;
mod state;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tandem_service::Tandem;
use tokio::sync::watch;
use utoipa_swagger_ui::SwaggerUi;

pub use error::{ApiError, ErrorCode, FieldError, PROBLEM_JSON, Problem};
pub use limit::RateLimit;
pub use serve::{ServeConfig, serve};

use crate::state::AppState;

/// The largest request body accepted by default: 512 KiB. DESIGN.md §4 says
/// 256 KiB, but a prompt of the default 32,768 characters needs up to 384 KiB
/// once a client's JSON escapes each character (see [`body_bytes_needed`]).
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 512 * 1024;

/// The smallest body limit that carries the longest text `limits` allow, in
/// any JSON a client may write: a character outside the Basic Multilingual
/// Plane escaped as a surrogate pair (`\ud83d\ude00`) takes 12 bytes. With
/// less, a request the document allows could be refused with 413.
pub fn body_bytes_needed(limits: &tandem_domain::TextLimits) -> usize {
    const MOST_BYTES_PER_CHAR: usize = 12;
    const THE_REST_OF_A_BODY: usize = 4 * 1024;
    let longest = limits
        .prompt_chars
        .max(limits.comment_chars)
        .max(limits.summary_chars)
        .max(limits.title_chars + limits.display_name_chars + tandem_domain::UserId::MAX_CHARS);
    longest * MOST_BYTES_PER_CHAR + THE_REST_OF_A_BODY
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The server's public base URL (e.g. `http://127.0.0.1:8080`), used to build
    /// invite links.
    pub public_url: String,
    /// Origins allowed to call the API from a browser (`*` for any); empty turns
    /// CORS off.
    pub cors_origins: Vec<String>,
    /// The largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// The writes each API key, participant, or client address (for writes
    /// without a credential) may send; `None` turns rate limiting off.
    pub rate_limit: Option<RateLimit>,
    /// The recorder's handle, to serve `/metrics` and record requests; `None`
    /// serves no `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// How long an event stream stays silent before it sends a keep-alive
    /// comment (15 s; tests shorten it).
    pub keep_alive: std::time::Duration,
    /// A runtime to handle requests on, apart from the one that serves the
    /// connections (and so writes the event streams); `None` handles them where
    /// they arrive.
    pub handlers: Option<tokio::runtime::Handle>,
    /// How connections are served ([`serve`]); the router refuses request heads
    /// over its URI and header limits.
    pub connections: ServeConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_owned(),
            cors_origins: Vec::new(),
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            rate_limit: None,
            metrics: None,
            keep_alive: stream::KEEP_ALIVE,
            handlers: None,
            connections: ServeConfig::DEFAULT,
        }
    }
}

/// The whole API with every layer applied. Its event streams end only with their
/// session or client; use [`router_with_closer`] to end them at shutdown.
pub fn router(tandem: Tandem, config: HttpConfig) -> Router {
    router_with_closer(tandem, config).0
}

/// Ends every open event stream of a router, so that a graceful shutdown does not
/// wait for long-lived connections (clients resume elsewhere with `Last-Event-ID`).
#[derive(Debug, Clone)]
pub struct StreamCloser(Arc<watch::Sender<bool>>);

impl StreamCloser {
    /// Ends every open stream now and any stream opened later.
    pub fn close_all(&self) {
        self.0.send_replace(true);
    }
}

/// The API and the switch that ends its event streams.
pub fn router_with_closer(tandem: Tandem, config: HttpConfig) -> (Router, StreamCloser) {
    let (closer, shutdown) = watch::channel(false);
    let HttpConfig {
        public_url,
        cors_origins,
        body_limit_bytes,
        rate_limit,
        metrics,
        keep_alive,
        handlers,
        connections,
    } = config;
    let settings = tandem.config();
    let (api, document) =
        openapi::api_router(&settings.limits, Some(&settings.agent_profiles)).split_for_parts();
    let mut app = api.merge(SwaggerUi::new("/docs").url("/openapi.json", document));
    if let Some(handle) = &metrics {
        // Outside /v1 and the document: for the scraper, not for clients.
        let handle = handle.clone();
        app = app.route(
            "/metrics",
            get(move || async move { metrics::render(&handle) }),
        );
    }
    let app = app
        .fallback(|| async { layers::not_found() })
        .with_state(AppState::new(
            tandem,
            &public_url,
            rate_limit,
            shutdown,
            keep_alive,
        ));
    let mut app = layers::apply(app, &cors_origins, body_limit_bytes, connections);
    if metrics.is_some() {
        metrics::describe();
        // Outermost, so that it sees the status the client gets.
        app = app.layer(axum::middleware::from_fn(metrics::record));
    }
    if let Some(handle) = handlers {
        app = app.layer(layers::OnRuntime::layer(handle));
    }
    (app, StreamCloser(Arc::new(closer)))
}

/// The OpenAPI document of no server in particular: the default text limits,
/// any agent profile name. A server serves at `/openapi.json` the same document
/// with its own limits and the names of its agent profiles.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::api_router(&tandem_domain::TextLimits::DEFAULT, None).into_openapi()
}
