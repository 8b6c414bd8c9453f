//! The socket of one connection as hyper sees it: bytes pass untouched, except
//! hyper's own rejections of request heads it cannot parse, which become
//! problem documents like every other error the server sends.
//!
//! hyper writes those (400, 414, 431) with an empty body and closes the
//! connection. [`Responses`] tells them apart from answers; the wire swallows
//! hyper's bytes and writes in their place a `application/problem+json`
//! response with the same status, a stable code, and `Connection: close`.
//! To tell an over-long request line (414) from too many or too large headers
//! (431) when both only overflow hyper's buffer, it measures the first line of
//! each request head as hyper reads it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::exchange::Exchanges;
use super::responses::{Responses, Tracked};
use crate::error::{ApiError, ErrorCode};

/// Room for a method, spaces and the version around a request's target.
const REQUEST_LINE_OVERHEAD: usize = 32;

/// How long a rejected connection keeps reading (and dropping) what the client
/// still sends after the problem document, before it closes: closing with
/// unread bytes would reset the connection, and the client could lose the
/// answer it has not read yet.
const LINGER: Duration = Duration::from_secs(2);

/// A connection's socket, watched.
#[derive(Debug)]
pub(crate) struct Wire<IO> {
    io: IO,
    exchanges: Arc<Exchanges>,
    responses: Responses,
    /// Bytes `responses` followed that the socket has not taken yet (hyper
    /// offers them again).
    ahead: usize,
    /// Set once hyper began its own response.
    rejection: Option<Rejection>,
    request_line: RequestLine,
    max_uri_bytes: usize,
}

/// hyper's own response being replaced.
#[derive(Debug)]
enum Rejection {
    /// Its first bytes, until the status can be read.
    Reading(Vec<u8>),
    /// The problem response, and how much of it the socket took.
    Replacing(Vec<u8>, usize),
    /// Sent and shut down: dropping what the client still sends, until it
    /// closes too or `LINGER` passed.
    Lingering(Pin<Box<Sleep>>),
}

/// The length of the current request head's first line, as read.
#[derive(Debug, Default)]
struct RequestLine {
    generation: u64,
    length: usize,
    ended: bool,
}

impl<IO> Wire<IO> {
    pub(crate) fn new(io: IO, exchanges: Arc<Exchanges>, max_uri_bytes: usize) -> Self {
        Self {
            io,
            exchanges,
            responses: Responses::default(),
            ahead: 0,
            rejection: None,
            request_line: RequestLine::default(),
            max_uri_bytes,
        }
    }

    /// Measures the first line of the request head in `bytes`, just read.
    fn measure(&mut self, bytes: &[u8]) {
        let line = &mut self.request_line;
        let generation = self.exchanges.head_generation();
        if generation != line.generation {
            *line = RequestLine {
                generation,
                ..RequestLine::default()
            };
        }
        if line.ended {
            return;
        }
        match newline(bytes) {
            Some(at) => {
                line.length += at;
                line.ended = true;
            }
            None => line.length += bytes.len(),
        }
    }

    /// The problem response that replaces hyper's `head` (its first bytes).
    fn replacement(&self, head: &[u8]) -> Vec<u8> {
        let status = head
            .strip_prefix(b"HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| std::str::from_utf8(code).ok())
            .and_then(|code| code.parse::<u16>().ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        let long_line = self.request_line.length > self.max_uri_bytes + REQUEST_LINE_OVERHEAD;
        let error = rejection(status, long_line);
        tracing::debug!(
            status = error.status().as_u16(),
            code = error.code().as_str(),
            "rejected a request head"
        );
        metrics::counter!(crate::metrics::REJECTED_HEADS, "status" => error.status().as_str().to_owned())
            .increment(1);
        render(&error)
    }
}

/// The problem for a request head hyper refused with `status`.
fn rejection(status: StatusCode, long_line: bool) -> ApiError {
    match status {
        StatusCode::URI_TOO_LONG => uri_too_long(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE if long_line => uri_too_long(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => headers_too_large(),
        status => ApiError::new(
            if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            ErrorCode::MalformedRequest,
            "the request is not valid HTTP/1.1: its request line, a header, or its framing \
             (Content-Length, Transfer-Encoding) could not be read",
        ),
    }
}

/// The 414 problem of a request target over the limit.
pub(crate) fn uri_too_long() -> ApiError {
    ApiError::new(
        StatusCode::URI_TOO_LONG,
        ErrorCode::UriTooLong,
        "the request's URI is longer than this server accepts",
    )
}

/// The 431 problem of request headers over the limits.
pub(crate) fn headers_too_large() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ErrorCode::HeadersTooLarge,
        "the request's headers are larger or more numerous than this server accepts",
    )
}

/// A whole HTTP/1.1 response carrying `error`'s problem document, after which
/// the connection closes.
fn render(error: &ApiError) -> Vec<u8> {
    let body = serde_json::to_vec(&error.problem()).unwrap_or_default();
    let status = error.status();
    let mut response = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\ndate: {}\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("Error"),
        crate::PROBLEM_JSON,
        body.len(),
        chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT"),
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

fn newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&byte| byte == b'\n')
}

impl<IO: AsyncWrite + Unpin> Wire<IO> {
    /// Writes what is left of the replacement; ready once all of it is out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(Rejection::Replacing(bytes, written)) = &mut self.rejection else {
            return Poll::Ready(Ok(()));
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes hyper's own response (`buf`) and sends the replacement instead.
    fn poll_reject(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(Rejection::Reading(head)) = &mut self.rejection {
            head.extend_from_slice(buf);
            if head.len() < "HTTP/1.1 400".len() {
                return Poll::Ready(Ok(buf.len()));
            }
            let head = std::mem::take(head);
            self.rejection = Some(Rejection::Replacing(self.replacement(&head), 0));
        }
        match self.poll_replacement(cx) {
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            // hyper flushes next, which finishes the replacement.
            Poll::Ready(Ok(())) | Poll::Pending => Poll::Ready(Ok(buf.len())),
        }
    }

    /// How many of the offered bytes (`slices`, in order) may go to the socket:
    /// those before hyper's own response. `None` when it starts right away.
    fn passable(&mut self, slices: &[io::IoSlice<'_>]) -> Option<usize> {
        // The first `ahead` bytes were followed already, when first offered.
        let mut skip = self.ahead;
        let mut before = 0;
        for slice in slices {
            let skipped = skip.min(slice.len());
            skip -= skipped;
            if let Tracked::RejectionAt(at) =
                self.responses.track(&slice[skipped..], &self.exchanges)
            {
                let passable = before + skipped + at;
                return (passable > 0).then_some(passable);
            }
            before += slice.len();
        }
        Some(before)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Wire<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.exchanges.received();
            this.measure(read);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Wire<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rejection.is_some() {
            return this.poll_reject(cx, buf);
        }
        let Some(passable) = this.passable(&[io::IoSlice::new(buf)]) else {
            this.rejection = Some(Rejection::Reading(Vec::new()));
            return this.poll_reject(cx, buf);
        };
        match Pin::new(&mut this.io).poll_write(cx, &buf[..passable]) {
            Poll::Ready(Ok(n)) => {
                this.ahead = passable - n;
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                this.ahead = passable;
                Poll::Pending
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rejection.is_some() {
            let first = bufs
                .iter()
                .find(|buf| !buf.is_empty())
                .map_or(&[][..], |buf| &buf[..]);
            return this.poll_reject(cx, first);
        }
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        let Some(passable) = this.passable(bufs) else {
            this.rejection = Some(Rejection::Reading(Vec::new()));
            let first = bufs
                .iter()
                .find(|buf| !buf.is_empty())
                .map_or(&[][..], |buf| &buf[..]);
            return this.poll_reject(cx, first);
        };
        let result = if passable == total {
            Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
        } else {
            // Only the answers before hyper's own response; it comes next.
            let mut left = passable;
            let truncated: Vec<io::IoSlice<'_>> = bufs
                .iter()
                .map_while(|slice| {
                    (left > 0).then(|| {
                        let take = left.min(slice.len());
                        left -= take;
                        io::IoSlice::new(&slice[..take])
                    })
                })
                .collect();
            Pin::new(&mut this.io).poll_write_vectored(cx, &truncated)
        };
        match result {
            Poll::Ready(Ok(n)) => {
                this.ahead = passable - n;
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                this.ahead = passable;
                Poll::Pending
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        if let Some(Rejection::Replacing(..)) = this.rejection {
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            this.rejection = Some(Rejection::Lingering(Box::pin(tokio::time::sleep(LINGER))));
        }
        if let Some(Rejection::Lingering(linger)) = &mut this.rejection {
            let mut scratch = [0u8; 4096];
            loop {
                if linger.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ok(()));
                }
                let mut buf = ReadBuf::new(&mut scratch);
                match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}";
    const OWN: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";

    /// Writes `slices` through `wire` as hyper would: vectored, offering again
    /// whatever the socket did not take.
    async fn write_like_hyper<IO: AsyncRead + AsyncWrite + Unpin>(
        wire: &mut Wire<IO>,
        slices: &[&[u8]],
    ) {
        let mut queue: Vec<Vec<u8>> = slices.iter().map(|slice| slice.to_vec()).collect();
        while !queue.is_empty() {
            let bufs: Vec<io::IoSlice<'_>> = queue.iter().map(|b| io::IoSlice::new(b)).collect();
            let mut n = poll_fn(|cx| Pin::new(&mut *wire).poll_write_vectored(cx, &bufs))
                .await
                .expect("write");
            while n > 0 {
                let first = &mut queue[0];
                let taken = n.min(first.len());
                first.drain(..taken);
                n -= taken;
                if first.is_empty() {
                    queue.remove(0);
                }
            }
        }
        poll_fn(|cx| Pin::new(&mut *wire).poll_flush(cx))
            .await
            .expect("flush");
    }

    #[tokio::test]
    async fn hyper_s_own_response_after_an_answer_is_replaced_however_the_socket_takes_bytes() {
        for capacity in [1, 5, 64, 4096] {
            let (server, mut client) = tokio::io::duplex(capacity);
            let exchanges = Arc::new(Exchanges::default());
            exchanges.dispatched(false, false);
            let mut wire = Wire::new(server, Arc::clone(&exchanges), 8192);
            let reader = tokio::spawn(async move {
                let mut received = Vec::new();
                client.read_to_end(&mut received).await.expect("read");
                received
            });
            // The answer and hyper's own 431, in one queue as hyper holds them.
            write_like_hyper(&mut wire, &[&ANSWER[..20], &ANSWER[20..], OWN]).await;
            poll_fn(|cx| Pin::new(&mut wire).poll_shutdown(cx))
                .await
                .expect("shutdown");
            drop(wire);
            let received = reader.await.expect("reader");
            let (answer, replaced) = received.split_at(ANSWER.len());
            assert_eq!(answer, ANSWER, "capacity {capacity}");
            let replaced = String::from_utf8_lossy(replaced);
            assert!(
                replaced.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
                "capacity {capacity}: {replaced}"
            );
            assert!(replaced.contains("content-type: application/problem+json\r\n"));
            assert!(replaced.contains("connection: close\r\n"));
            assert!(
                replaced.ends_with(r#""code":"HEADERS_TOO_LARGE"}"#),
                "{replaced}"
            );
        }
    }

    #[tokio::test]
    async fn an_over_long_request_line_makes_a_431_a_414() {
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let exchanges = Arc::new(Exchanges::default());
        let mut wire = Wire::new(server, exchanges, 1024);
        client
            .write_all(format!("GET /{} HTTP/1.1\r\n", "a".repeat(4096)).as_bytes())
            .await
            .expect("request");
        let mut head = [0u8; 8192];
        let read = wire.read(&mut head).await.expect("read");
        assert!(read > 0);
        write_like_hyper(&mut wire, &[OWN]).await;
        drop(wire);
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.expect("read");
        let received = String::from_utf8_lossy(&received);
        assert!(
            received.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
            "{received}"
        );
        assert!(
            received.ends_with(r#""code":"URI_TOO_LONG"}"#),
            "{received}"
        );
    }
}
