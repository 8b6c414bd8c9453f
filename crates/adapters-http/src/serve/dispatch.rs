//! Hands each request of a connection to the router: with the client's
//! address (for rate limits), its body under a deadline, and a note of the
//! exchange for the wire.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, Response, header};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use super::exchange::Exchanges;

/// The service hyper calls for each request of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    pub(crate) router: Router,
    pub(crate) peer: SocketAddr,
    pub(crate) exchanges: Arc<Exchanges>,
    pub(crate) body_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let has_body = !request.body().is_end_stream();
        self.exchanges
            .dispatched(request.method() == Method::HEAD, has_body);
        let deadline = Instant::now() + self.body_timeout;
        let exchanges = Arc::clone(&self.exchanges);
        let mut request = request.map(|body| {
            Body::new(TimedBody {
                body,
                deadline,
                timer: None,
                expired: false,
                exchanges: Arc::clone(&exchanges),
            })
        });
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        Box::pin(async move {
            let Ok(mut response) = router.oneshot(request).await;
            if exchanges.closing() {
                // What is left of the body will not be read: end the connection.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}

/// A request body that must arrive whole before its deadline (counted from its
/// head), so that a client cannot hold a connection by sending it slowly.
struct TimedBody {
    body: Incoming,
    deadline: Instant,
    /// Started the first time the body is not ready.
    timer: Option<Pin<Box<Sleep>>>,
    expired: bool,
    exchanges: Arc<Exchanges>,
}

/// The request body did not arrive before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub(crate) struct BodyTimedOut;

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(None) => {
                this.exchanges.body_read();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.body.is_end_stream() {
                    this.exchanges.body_read();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(Box::new(error)))),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.expired = true;
                    this.exchanges.body_timed_out();
                    metrics::counter!(crate::metrics::TIMEOUTS, "phase" => "body").increment(1);
                    return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Whether `error` (a body's, as an extractor saw it) is a body that timed out.
pub(crate) fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        cause = error.source();
    }
    false
}
