//! The live event stream (`text/event-stream`): framing only. Delivery (the
//! backlog, the live hand-over, gaps, lag, the endings) is the service's
//! [`Subscription`]; this module writes what it yields as SSE frames.
//!
//! Each event is encoded to its frame once, by the first stream that sends it,
//! and the same bytes go to every other stream ([`Delivery::encoded`]). Frames
//! that are ready together go out as one write.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use tandem_domain::Event;
use tandem_service::{Delivery, Next, Subscription};

use crate::dto::event::EventResponse;
use crate::metrics::OpenStream;

/// How often an idle stream sends a comment, so that proxies keep it open.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// What clients wait before reconnecting, announced on the first frame.
const RETRY_MS: u32 = 2000;

/// The SSE frame of an event: `id: <seq>`, `event: <type>`, `data: <event>`.
fn frame(event: &Event) -> Bytes {
    let data =
        serde_json::to_string(&EventResponse::from(event)).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.seq,
        event.payload.event_type()
    ))
}

/// The response body of a stream: a `retry:` frame, then the subscription's
/// events as frames and its idle heartbeats as keep-alive comments, until the
/// subscription ends.
pub(crate) fn body(subscription: Subscription, keep_alive: Duration) -> Body {
    let stream = Stream {
        subscription: subscription.with_heartbeat(keep_alive),
        started: false,
        // The stream counts as open until the connection lets go of the body,
        // whether the stream ended or the client left.
        _open: OpenStream::start(),
    };
    Body::from_stream(futures::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), stream))
    }))
}

/// One client's stream: the state its body is polled with.
struct Stream {
    subscription: Subscription,
    started: bool,
    _open: OpenStream,
}

impl Stream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !std::mem::replace(&mut self.started, true) {
            return Some(Bytes::from(format!("retry: {RETRY_MS}\n\n")));
        }
        match self.subscription.next().await? {
            Next::Events(deliveries) => Some(frames(deliveries)),
            Next::Idle => Some(Bytes::from_static(b": keep-alive\n\n")),
        }
    }
}

/// The frames of `deliveries` as one chunk: a single frame as it is (shared
/// with every other stream), several copied together.
fn frames(deliveries: &[Arc<Delivery>]) -> Bytes {
    match deliveries {
        [one] => one.encoded(frame),
        many => {
            let mut chunk = Vec::new();
            for delivery in many {
                chunk.extend_from_slice(&delivery.encoded(frame));
            }
            Bytes::from(chunk)
        }
    }
}
