//! What every handler shares.

use std::sync::Arc;

use axum::http::Method;
use tandem_service::Tandem;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::limit::{RateLimit, WriteLimiter, Writer, is_write};

/// The state of the router: the use cases and the settings handlers need.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) tandem: Tandem,
    /// The public base URL without a trailing slash, for invite links.
    pub(crate) public_url: Arc<str>,
    /// How often an idle event stream sends a keep-alive comment.
    pub(crate) keep_alive: std::time::Duration,
    /// The write budgets of callers; `None` when writes are not limited.
    limiter: Option<Arc<WriteLimiter>>,
}

impl AppState {
    /// The state over these use cases.
    pub(crate) fn new(
        tandem: Tandem,
        public_url: &str,
        rate_limit: Option<RateLimit>,
        shutdown: watch::Receiver<bool>,
        keep_alive: std::time::Duration,
    ) -> Self {
        end_streams_at(&tandem, shutdown);
        Self {
            keep_alive,
            tandem,
            public_url: Arc::from(public_url.trim_end_matches('/')),
            limiter: rate_limit.map(|limit| Arc::new(WriteLimiter::new(limit))),
        }
    }

    /// Takes a request of `method` from `writer`'s budget if it is a write;
    /// 429 `RATE_LIMITED` when the budget is spent.
    pub(crate) fn limit_write(&self, method: &Method, writer: &Writer) -> Result<(), ApiError> {
        match &self.limiter {
            Some(limiter) if is_write(method) => limiter.check(writer),
            Some(_) | None => Ok(()),
        }
    }

    /// The link that carries an invite token: in the fragment, which browsers
    /// never send to a server and proxies never log.
    pub(crate) fn invite_url(&self, token: &str) -> String {
        format!("{}/join#{token}", self.public_url)
    }

    /// The web app's link to a session for the holder of a participant token
    /// (the host's, at creation): the token in the fragment, as in invite links.
    pub(crate) fn host_url(&self, session_id: tandem_domain::SessionId, token: &str) -> String {
        format!("{}/s/{session_id}#{token}", self.public_url)
    }
}

/// When `shutdown` turns true, ends every open event stream (and any opened
/// later at once): their clients resume elsewhere with `Last-Event-ID`.
fn end_streams_at(tandem: &Tandem, shutdown: watch::Receiver<bool>) {
    let tandem = tandem.clone();
    tokio::spawn(async move {
        let mut shutdown = shutdown;
        if shutdown.wait_for(|stop| *stop).await.is_ok() {
            tandem.end_subscriptions();
        }
    });
}
