//! What every handler shares.

use std::sync::Arc;

use tandem_service::Tandem;
use tokio::sync::watch;

use crate::stream::Streams;

/// The state of the router: the use cases and the settings handlers need.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) tandem: Tandem,
    /// The public base URL without a trailing slash, for invite links.
    pub(crate) public_url: Arc<str>,
    /// The live event streams of this server.
    pub(crate) streams: Arc<Streams>,
}

impl AppState {
    /// The state over these use cases.
    pub(crate) fn new(tandem: Tandem, public_url: &str, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            streams: Arc::new(Streams::new(tandem.clone(), shutdown)),
            tandem,
            public_url: Arc::from(public_url.trim_end_matches('/')),
        }
    }

    /// The link that carries an invite token: in the fragment, which browsers
    /// never send to a server and proxies never log.
    pub(crate) fn invite_url(&self, token: &str) -> String {
        format!("{}/join#{token}", self.public_url)
    }
}
