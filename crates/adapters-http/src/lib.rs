//! Tandem's HTTP adapter: axum routes for the `/v1` API, bearer-token extractors
//! for API keys and participant tokens, problem+json errors with stable codes, the
//! resumable SSE event stream, and the OpenAPI 3.1 document (utoipa). It arrives
//! with the HTTP API.
