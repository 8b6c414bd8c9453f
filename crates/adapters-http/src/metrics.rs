//! Prometheus metrics of the HTTP layer: requests by route template and status,
//! their latency, and the event streams open. Recorded through the `metrics`
//! facade (a no-op until the binary installs a recorder) and served at
//! `/metrics` from the recorder's handle.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;

/// Counter of answered requests, by `method`, `route` (the matched path
/// template, `/v1/sessions/{id}`, never the raw path) and `status`.
pub const HTTP_REQUESTS: &str = "tandem_http_requests_total";
/// Histogram of the time to answer a request (to its headers: a stream's body
/// is not counted), in seconds, by `method` and `route`.
pub const HTTP_REQUEST_DURATION: &str = "tandem_http_request_duration_seconds";
/// Gauge of the event streams (`text/event-stream`) open on this server.
pub const STREAMS_OPEN: &str = "tandem_streams_open";
/// Gauge of the connections open on this server.
pub const CONNECTIONS_OPEN: &str = "tandem_http_connections";
/// Counter of the times a connection had to wait because the cap was reached.
pub const CONNECTION_LIMIT_REACHED: &str = "tandem_http_connection_limit_reached_total";
/// Counter of connections closed (`phase="header"`, `"idle"`) and requests
/// refused (`phase="body"`) for sending too slowly.
pub const TIMEOUTS: &str = "tandem_http_timeouts_total";
/// Counter of request heads the HTTP parser refused, by `status`.
pub const REJECTED_HEADS: &str = "tandem_http_rejected_heads_total";

/// Buckets of [`HTTP_REQUEST_DURATION`], in seconds: from a cached read to a
/// slow write on a busy database.
pub const HTTP_REQUEST_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Describes this layer's metrics to the installed recorder (idempotent).
pub(crate) fn describe() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request (to its headers), by method and route template."
    );
    metrics::describe_gauge!(STREAMS_OPEN, "Event streams open on this server.");
    metrics::describe_gauge!(CONNECTIONS_OPEN, "HTTP connections open on this server.");
    metrics::describe_counter!(
        CONNECTION_LIMIT_REACHED,
        "Times a new connection waited because the connection cap was reached."
    );
    metrics::describe_counter!(
        TIMEOUTS,
        "Connections closed (phase=header, idle) and requests refused (phase=body) for sending too slowly."
    );
    metrics::describe_counter!(
        REJECTED_HEADS,
        "Request heads the HTTP parser refused, answered with a problem document, by status."
    );
}

/// Middleware that counts and times every request. It must wrap the routes
/// (`Router::layer`), where the matched path is known.
pub(crate) async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// The method as a label; any method outside the standard ones is `OTHER`, so
/// that clients cannot mint labels.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("OTHER", Method::as_str)
}

/// `GET /metrics`: everything recorded, in the Prometheus text format.
pub(crate) fn render(handle: &PrometheusHandle) -> Response {
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// One open event stream, counted in [`STREAMS_OPEN`] from its creation until it
/// is dropped, however the stream ends.
#[derive(Debug)]
pub(crate) struct OpenStream(());

impl OpenStream {
    pub(crate) fn start() -> Self {
        metrics::gauge!(STREAMS_OPEN).increment(1.0);
        Self(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(STREAMS_OPEN).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_ones_share_a_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "OTHER");
    }
}
