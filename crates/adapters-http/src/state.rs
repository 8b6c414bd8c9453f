//! What every handler shares.

use std::sync::Arc;

use axum::http::Method;
use tandem_service::Tandem;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::limit::{RateLimit, WriteLimiter, Writer, is_write};
use crate::stream::Streams;

/// The state of the router: the use cases and the settings handlers need.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) tandem: Tandem,
    /// The public base URL without a trailing slash, for invite links.
    pub(crate) public_url: Arc<str>,
    /// The live event streams of this server.
    pub(crate) streams: Arc<Streams>,
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
        let streams = Streams::new(tandem.clone(), shutdown, keep_alive);
        let observer: Arc<dyn tandem_service::CommitObserver> = streams.clone();
        tandem.observe_commits(Arc::downgrade(&observer));
        Self {
            streams,
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
