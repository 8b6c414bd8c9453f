//! The middleware around every route: request ids, tracing, sensitive headers,
//! panics, body limits, CORS, and a last net that turns any error response
//! without a problem body into one.

use std::any::Any;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};

use crate::error::{ApiError, ErrorCode, PROBLEM_JSON};
use crate::extract::payload_too_large;
use crate::serve::ServeConfig;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps the routes in every layer, outermost first: sensitive headers, request
/// id, trace, request id propagation, head limits, CORS, problem net, panics,
/// body limit.
pub(crate) fn apply(
    router: Router,
    cors_origins: &[String],
    limit: usize,
    head: ServeConfig,
) -> Router {
    // Innermost first: each `Router::layer` wraps everything before it.
    let router = router
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(CatchPanicLayer::custom(|panic: Box<dyn Any + Send>| {
            panic_response(&*panic)
        }))
        .layer(middleware::map_response(problem_net));
    let router = match cors(cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(middleware::from_fn(
            move |request: Request<Body>, next: Next| head_limits(head, request, next),
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
}

/// The span of one request: its method, path (never the query) and id, and the
/// caller once authenticated. Headers stay out: they carry tokens.
fn request_span(request: &Request<Body>) -> Span {
    let request_id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        caller = tracing::field::Empty,
    )
}

/// Refuses a request whose target or header lines are over the limits with a
/// problem that says by how much. (Heads too large for hyper's buffer never get
/// here: the server's wire answers them with the same codes.)
async fn head_limits(limits: ServeConfig, request: Request<Body>, next: Next) -> Response {
    let uri = request.uri().path_and_query().map_or_else(
        || request.uri().to_string().len(),
        |target| target.as_str().len(),
    );
    if uri > limits.max_uri_bytes {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::UriTooLong,
            format!(
                "the request's URI is {uri} bytes long; this server accepts at most {}",
                limits.max_uri_bytes
            ),
        )
        .into_response();
    }
    let headers = request.headers();
    // As sent: `name: value` and CRLF.
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if bytes > limits.max_header_bytes || headers.len() > limits.max_headers {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!(
                "the request has {} header lines of {bytes} bytes; this server accepts at most {} lines of {} bytes",
                headers.len(),
                limits.max_headers,
                limits.max_header_bytes
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// CORS for the configured origins (`*` for any); `None` when none are.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        let valid = origins.iter().filter_map(|origin| {
            HeaderValue::from_str(origin.trim_end_matches('/'))
                .inspect_err(|_| tracing::warn!(%origin, "ignoring a CORS origin that is not a valid header value"))
                .ok()
        });
        AllowOrigin::list(valid)
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("last-event-id"),
                X_REQUEST_ID,
            ])
            .expose_headers([X_REQUEST_ID, header::WWW_AUTHENTICATE, header::LOCATION]),
    )
}

/// Turns an error response that is not problem+json (the router's 405, the body
/// limit's 413, a library's plain 404) into a problem, keeping its status.
async fn problem_net(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => not_found(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            ErrorCode::MethodNotAllowed,
            "this resource does not support this method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        StatusCode::URI_TOO_LONG => crate::serve::uri_too_long(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => crate::serve::headers_too_large(),
        StatusCode::REQUEST_TIMEOUT => ApiError::new(
            status,
            ErrorCode::RequestTimeout,
            "the request was not received in time",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            ErrorCode::UnsupportedMediaType,
            "the body's media type is not supported",
        ),
        StatusCode::NOT_ACCEPTABLE => ApiError::new(
            status,
            ErrorCode::NotAcceptable,
            "no acceptable representation",
        ),
        status if status.is_server_error() => {
            tracing::error!(%status, "a response without a problem body left the router");
            ApiError::new(status, ErrorCode::Internal, "an internal error occurred")
        }
        status => ApiError::new(status, ErrorCode::BadRequest, "the request is not valid"),
    };
    let mut problem = error.into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, allow.clone());
    }
    problem
}

/// The 404 of a path no route matches.
pub(crate) fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no resource at this path",
    )
}

/// A 500 problem for a handler that panicked; the panic is logged, not sent.
fn panic_response(panic: &(dyn Any + Send)) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(panic = %message, "a request handler panicked");
    ApiError::internal().into_response()
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::DEFAULT_BODY_LIMIT_BYTES;

    async fn boom() -> &'static str {
        panic!("secret internals")
    }

    async fn plain_teapot() -> (StatusCode, &'static str) {
        (StatusCode::IM_A_TEAPOT, "plain text")
    }

    async fn send(path: &str) -> (StatusCode, String, String) {
        let router = Router::new()
            .route("/boom", get(boom))
            .route("/teapot", get(plain_teapot));
        let response = apply(router, &[], DEFAULT_BODY_LIMIT_BYTES, ServeConfig::DEFAULT)
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_panic_is_a_500_problem_that_says_nothing_internal() {
        let (status, content_type, body) = send("/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(content_type, PROBLEM_JSON);
        assert!(body.contains("\"code\":\"INTERNAL\""), "{body}");
        assert!(!body.contains("secret"), "{body}");
    }

    #[tokio::test]
    async fn a_plain_error_becomes_a_problem_with_its_status() {
        let (status, content_type, body) = send("/teapot").await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(content_type, PROBLEM_JSON);
        assert!(body.contains("\"code\":\"BAD_REQUEST\""), "{body}");
    }
}

/// Runs every request's handling (extractors, use case, database) as a task of
/// another runtime, and hands the response back to the connection's own.
///
/// Thousands of event streams wake their connections' tasks on every event; on
/// the serving runtime a request's each await would queue behind them. On its
/// own runtime a write takes milliseconds however many streams are open, and
/// only reading the request and writing the answer happen among the streams.
#[derive(Debug, Clone)]
pub(crate) struct OnRuntime<S> {
    inner: S,
    handle: tokio::runtime::Handle,
}

impl<S> OnRuntime<S> {
    pub(crate) fn layer(
        handle: tokio::runtime::Handle,
    ) -> impl tower::Layer<S, Service = Self> + Clone {
        tower::layer::layer_fn(move |inner| Self {
            inner,
            handle: handle.clone(),
        })
    }
}

impl<S> tower::Service<Request<Body>> for OnRuntime<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // Each call clones the inner service, which is always ready (a route).
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let task = self
            .handle
            .spawn(tower::ServiceExt::oneshot(inner, request));
        Box::pin(async move {
            match task.await {
                Ok(response) => response,
                Err(error) => {
                    tracing::error!(%error, "a request's task failed");
                    Ok(ApiError::internal().into_response())
                }
            }
        })
    }
}
