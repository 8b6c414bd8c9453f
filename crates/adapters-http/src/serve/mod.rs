//! The HTTP/1.1 server: accepts connections up to a cap and serves each with
//! hyper under deadlines, so that no client holds a connection (and a file
//! descriptor) without sending a request, and every error it can see is a
//! problem document.
//!
//! - A request head must arrive whole within `header_timeout` of the connection
//!   opening or of the previous response's end: silent, half-sent and idle
//!   kept-alive connections are closed then (hyper's header timer).
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
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::task::TaskTracker;

pub(crate) use dispatch::is_body_timeout;
pub(crate) use wire::{headers_too_large, uri_too_long};

use self::dispatch::Dispatch;
use self::exchange::Exchanges;
use self::wire::Wire;

/// How the server treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// How long a connection may take to send a request's head, counted from
    /// its opening or from the end of its previous response.
    pub header_timeout: Duration,
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
    /// The defaults: 10 s for a head, 30 s for a body, 10,000 connections,
    /// 8 KiB of URI, 16 KiB and 100 lines of headers.
    pub const DEFAULT: Self = Self {
        header_timeout: Duration::from_secs(10),
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
    let (stop, stopping) = watch::channel(false);
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
    let _ = stop.send(true);
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
    mut stopping: watch::Receiver<bool>,
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
        exchanges,
        body_timeout: config.body_timeout,
    };
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(config.head_bytes())
        .max_header_size(config.head_bytes())
        .max_headers(config.max_headers)
        .serve_connection(TokioIo::new(wire), dispatch);
    tokio::pin!(served);
    let mut asked_to_close = false;
    let result = loop {
        tokio::select! {
            result = served.as_mut() => break result,
            changed = stopping.wait_for(|stop| *stop), if !asked_to_close => {
                asked_to_close = true;
                if changed.is_ok() {
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    };
    if let Err(error) = result {
        if error.is_timeout() {
            metrics::counter!(crate::metrics::TIMEOUTS, "phase" => "header").increment(1);
            tracing::debug!(%peer, "closed a connection that sent no request head in time");
        } else {
            tracing::debug!(%peer, %error, "a connection ended with an error");
        }
    }
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
