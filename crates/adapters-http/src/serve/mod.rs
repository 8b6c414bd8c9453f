//! The HTTP/1.1 server: accepts connections up to a cap and serves each with
//! hyper under deadlines, so that no client holds a connection (and a file
//! descriptor) without sending a request, and every error it can see is a
//! problem document.
//!
//! - A new connection must send its first request head within `header_timeout`;
//!   after a response, a kept-alive connection may stay silent for
//!   `keep_alive_timeout`, and its next head must arrive within `header_timeout`
//!   of its first byte. Silent, half-sent and idle connections are closed then,
//!   without an answer.
//! - A request body must arrive whole within `body_timeout` of its head; if
//!   not, the request gets a 408 problem and the connection closes.
//! - A response is never cut short: an event stream stays open as long as its
//!   session and client do, however slowly the client reads.
//! - At most `max_connections` are open at once; the next one waits in the
//!   listen backlog until one closes (logged once and counted each time).
//! - Request heads over the limits, and heads hyper cannot parse, are answered
//!   with problem documents (see [`wire`]).

mod dispatch;
mod exchange;
mod responses;
mod wire;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use dispatch::is_body_timeout;
pub(crate) use wire::{headers_too_large, uri_too_long};

use self::dispatch::Dispatch;
use self::exchange::{Exchanges, Wait};
use self::wire::Wire;

/// How the server treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// How long a connection may take to send a request's head, counted from
    /// its opening (its first request) or from the head's first byte.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may stay silent after a response.
    pub keep_alive_timeout: Duration,
    /// How long a request's body may take to arrive, counted from its head.
    pub body_timeout: Duration,
    /// Connections open at once at most.
    pub max_connections: usize,
    /// The largest request target (path and query), in bytes.
    pub max_uri_bytes: usize,
    /// The largest total of a request's header lines, in bytes.
    pub max_header_bytes: usize,
    /// Header lines a request may have at most.
    pub max_headers: usize,
}

impl ServeConfig {
    /// The defaults: 10 s for a head, 75 s of silence between requests (more
    /// than load balancers keep idle connections to a backend, so that they
    /// never send a request on one the server is closing), 30 s for a body,
    /// 10,000 connections, 8 KiB of URI, 16 KiB and 100 lines of headers.
    pub const DEFAULT: Self = Self {
        header_timeout: Duration::from_secs(10),
        keep_alive_timeout: Duration::from_secs(75),
        body_timeout: Duration::from_secs(30),
        max_connections: 10_000,
        max_uri_bytes: 8 * 1024,
        max_header_bytes: 16 * 1024,
        max_headers: 100,
    };

    /// The most a request head may take in hyper's buffer: its request line and
    /// header lines. Heads under it that break a limit get a detailed problem
    /// from the router; heads over it, the same code from the wire.
    fn head_bytes(self) -> usize {
        // hyper's buffer cannot be smaller than 8 KiB.
        (self.max_uri_bytes + self.max_header_bytes + 1024).max(8 * 1024)
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, asks every connection to close after its current response, and
/// returns once all have closed (the caller bounds how long it waits; event
/// streams must be ended by their own switch).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut capped = false;
    tokio::pin!(shutdown);
    loop {
        let permit = if let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
            capped = false;
            permit
        } else {
            metrics::counter!(crate::metrics::CONNECTION_LIMIT_REACHED).increment(1);
            if !capped {
                capped = true;
                tracing::warn!(
                    max_connections = config.max_connections,
                    "open connections reached the limit; new connections wait until one closes"
                );
            }
            tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        connections.spawn(connection(
            stream,
            peer,
            router.clone(),
            config,
            stopping.clone(),
            permit,
        ));
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Waits a moment after a failed accept, so that a process out of file
/// descriptors does not spin; a connection that failed alone is skipped.
async fn accept_failed(error: &io::Error) {
    let one_connection = matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    );
    if !one_connection {
        tracing::error!(%error, "cannot accept a connection; retrying in 100 ms");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Serves one connection until it closes, or until shutdown lets its current
/// response finish.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    config: ServeConfig,
    stopping: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    // Event frames are small and must go out as they are written, not wait
    // for the client's delayed acknowledgement of the previous one (Nagle).
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
    }
    let _open = OpenConnection::count();
    let exchanges = Arc::new(Exchanges::default());
    let wire = Wire::new(stream, Arc::clone(&exchanges), config.max_uri_bytes);
    let dispatch = Dispatch {
        router,
        peer,
        exchanges: Arc::clone(&exchanges),
        body_timeout: config.body_timeout,
    };
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // A backstop: hyper counts from the end of the previous response,
        // the deadlines below from the request's first byte.
        .header_read_timeout(config.header_timeout + config.keep_alive_timeout)
        .max_buf_size(config.head_bytes())
        .max_header_size(config.head_bytes())
        .max_headers(config.max_headers)
        .serve_connection(TokioIo::new(wire), dispatch);
    tokio::pin!(served);
    let stop = stopping.cancelled_owned();
    tokio::pin!(stop);
    let mut asked_to_close = false;
    let too_slow = tokio::time::sleep(config.header_timeout);
    tokio::pin!(too_slow);
    // Polls the connection, then checks its deadline afresh: only polling it
    // (reading, dispatching, writing) changes what it waits for.
    let outcome = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = served.as_mut().poll(cx) {
            return Poll::Ready(Ok(result));
        }
        if !asked_to_close && stop.as_mut().poll(cx).is_ready() {
            asked_to_close = true;
            served.as_mut().graceful_shutdown();
            // It may be done at once (an idle connection).
            cx.waker().wake_by_ref();
        }
        if let Some((deadline, wait)) =
            exchanges.deadline(config.header_timeout, config.keep_alive_timeout)
        {
            if too_slow.deadline() != deadline {
                too_slow.as_mut().reset(deadline);
            }
            if too_slow.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(wait));
            }
        }
        Poll::Pending
    })
    .await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) if error.is_timeout() => slow(peer, Wait::Head),
        Ok(Err(error)) => tracing::debug!(%peer, %error, "a connection ended with an error"),
        Err(wait) => slow(peer, wait),
    }
}

/// Counts and logs a connection closed because it sent nothing in time.
fn slow(peer: SocketAddr, wait: Wait) {
    let phase = match wait {
        Wait::Head => "header",
        Wait::Idle => "idle",
    };
    metrics::counter!(crate::metrics::TIMEOUTS, "phase" => phase).increment(1);
    tracing::debug!(%peer, phase, "closed a connection that sent no request in time");
}

/// Counts an open connection in the `tandem_http_connections` gauge while it lives.
struct OpenConnection;

impl OpenConnection {
    fn count() -> Self {
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).increment(1.0);
        Self
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).decrement(1.0);
    }
}
