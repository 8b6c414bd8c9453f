//! The webhook ports: where endpoints, delivery cursors and deliveries are kept
//! ([`WebhookStore`], part of every `SessionStore`), and how a request reaches an
//! endpoint ([`WebhookSender`]).
//!
//! Delivery works from the durable event log. For every endpoint and session the
//! store keeps a cursor: the `seq` up to which the session's events are done for
//! that endpoint (delivered, refused for good, given up, or not wanted). A worker
//! reads the events after the cursor, sends the wanted ones in order, and moves
//! the cursor only together with the recorded outcome, so that a crash loses
//! nothing (at worst an event is sent again, under the same `webhook-id`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tandem_domain::{
    AttemptResult, DeliveryStatus, Seq, SessionId, WebhookDelivery, WebhookDeliveryId,
    WebhookEndpoint, WebhookEventTypes, WebhookId, WebhookUrl, WorkspaceId,
};

use crate::store::{Page, StoreError};

/// Sessions created this long before an endpoint's `since` without a cursor are
/// delivered from their first event: such a session's creation was not yet
/// committed when the endpoint's cursors were set (a session is stamped with the
/// time before its transaction commits, and replicas' clocks differ a little).
pub const WEBHOOK_SINCE_MARGIN: TimeDelta = TimeDelta::minutes(5);

/// One session's events that an endpoint has yet to hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookBacklog {
    pub session_id: SessionId,
    /// Every event up to this `seq` is done for the endpoint.
    pub delivered: Seq,
    /// The session's last event.
    pub last_seq: Seq,
    /// The delivery being retried: the first event after `delivered` the
    /// endpoint wants, which failed before and is due again.
    pub pending: Option<WebhookDelivery>,
}

/// What a delivery worker records for one endpoint and session, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookProgress {
    pub webhook_id: WebhookId,
    /// The endpoint's `since` as the worker read it: if the endpoint started
    /// again from a later point meanwhile, nothing is written (`Conflict`).
    pub since: DateTime<Utc>,
    pub session_id: SessionId,
    /// The new cursor: every event up to here is done.
    pub delivered: Seq,
    /// When the session's next event for the endpoint (a pending delivery) is
    /// due; `None` when it is due at once.
    pub retry_at: Option<DateTime<Utc>>,
    /// The delivery attempted, stored by (endpoint, session, seq): inserted the
    /// first time, replaced after (its `id` and `created_at` kept as first stored).
    pub delivery: Option<WebhookDelivery>,
    /// Disables the endpoint at this time, because its deliveries kept failing
    /// (nothing if it is disabled already).
    pub give_up_at: Option<DateTime<Utc>>,
}

/// Persistence of webhook endpoints and their deliveries. Every method is atomic;
/// the storage contract suite (`tandem_ports::testing::webhooks`) pins down what
/// is documented here, on every adapter.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new endpoint, with cursors at the current end of the log of every
    /// active session of its workspace (and of every session created since
    /// `WEBHOOK_SINCE_MARGIN` before its `since`): it hears of what happens from
    /// now on. `Duplicate` if the id exists.
    async fn insert_webhook(&self, endpoint: &WebhookEndpoint) -> Result<(), StoreError>;

    /// The endpoint with this id; `NotFound` if there is none.
    async fn webhook(&self, id: WebhookId) -> Result<WebhookEndpoint, StoreError>;

    /// A workspace's endpoints, newest first, after the cursor.
    async fn webhooks(
        &self,
        workspace_id: &WorkspaceId,
        page: Page<WebhookId>,
    ) -> Result<Vec<WebhookEndpoint>, StoreError>;

    /// Replaces an endpoint if its stored `version` is the one it was read at,
    /// storing `version + 1`. With `restart`, its cursors are set again as by
    /// `insert_webhook` (from its new `since`) and its pending deliveries are
    /// marked failed (they will not be attempted any more). `NotFound` if it does
    /// not exist, `Conflict` if its version moved on.
    async fn update_webhook(
        &self,
        endpoint: &WebhookEndpoint,
        restart: bool,
    ) -> Result<(), StoreError>;

    /// Deletes an endpoint with its cursors, deliveries and lease; `NotFound` if
    /// it does not exist.
    async fn delete_webhook(&self, id: WebhookId) -> Result<(), StoreError>;

    /// The event types of every enabled endpoint (what is worth waking the
    /// delivery worker for).
    async fn enabled_webhook_event_types(&self) -> Result<Vec<WebhookEventTypes>, StoreError>;

    /// Enabled endpoints with events to handle at `now` (a session's log is
    /// ahead of the endpoint's cursor and its pending delivery, if any, is due)
    /// whose lease is free or expired at `now`. At most `limit`.
    async fn webhooks_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<WebhookId>, StoreError>;

    /// The sessions whose events the endpoint has to handle at `now`, as
    /// `webhooks_due` finds them, by session id. At most `limit`; empty for a
    /// disabled or deleted endpoint.
    async fn webhook_backlog(
        &self,
        id: WebhookId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<WebhookBacklog>, StoreError>;

    /// Records progress of `holder`, which must hold the endpoint's lease:
    /// moves the cursor, stores the delivery, disables the endpoint if it gives
    /// up, together. `LeaseLost` if `holder` does not hold the lease;
    /// `Conflict` if the endpoint's `since` is no longer `progress.since`;
    /// `NotFound` if the endpoint or the session no longer exists. Nothing is
    /// written on error.
    async fn record_webhook_progress(
        &self,
        progress: &WebhookProgress,
        holder: &str,
    ) -> Result<(), StoreError>;

    /// Takes or renews the lease on delivering to endpoint `id` for `holder`,
    /// until `until`. True if `holder` holds it now: it was free, had expired at
    /// `now`, or was already `holder`'s. At most one holder at any time.
    async fn acquire_webhook_lease(
        &self,
        id: WebhookId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives up `holder`'s lease on endpoint `id`; nothing if another holds it.
    async fn release_webhook_lease(&self, id: WebhookId, holder: &str) -> Result<(), StoreError>;

    /// An endpoint's deliveries, newest first (by id), optionally of one status,
    /// after the cursor.
    async fn webhook_deliveries(
        &self,
        id: WebhookId,
        status: Option<DeliveryStatus>,
        page: Page<WebhookDeliveryId>,
    ) -> Result<Vec<WebhookDelivery>, StoreError>;

    /// The delivery with this id; `NotFound` if there is none.
    async fn webhook_delivery(&self, id: WebhookDeliveryId) -> Result<WebhookDelivery, StoreError>;

    /// Replaces a delivery's status and what its last attempt saw (a retry by
    /// hand); `NotFound` if it does not exist.
    async fn update_webhook_delivery(&self, delivery: &WebhookDelivery) -> Result<(), StoreError>;
}

/// A request to an endpoint, signed and ready.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub url: WebhookUrl,
    /// Headers besides `content-type: application/json`.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// How an attempt went, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub result: AttemptResult,
    pub latency: Duration,
}

/// The server's outbound policy refused a URL: its scheme, or where its host
/// points (loopback, private, link-local, metadata addresses...), or its host
/// does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetRefused(pub String);

/// Sends webhook requests, safely: only to targets the outbound policy allows
/// (checked against the very addresses connected to), with timeouts, no
/// redirects and a cap on what is read back.
#[async_trait]
pub trait WebhookSender: Send + Sync + 'static {
    /// Checks `url` against the outbound policy now (when an endpoint is saved).
    async fn check(&self, url: &WebhookUrl) -> Result<(), TargetRefused>;

    /// POSTs `request` once. Never fails: every way it can go is an
    /// `AttemptResult` (a refused target is `Refused`, and nothing is sent).
    async fn send(&self, request: OutboundRequest) -> Attempt;
}

/// A sender for servers without outbound webhooks: every target is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWebhooks;

#[async_trait]
impl WebhookSender for NoWebhooks {
    async fn check(&self, _url: &WebhookUrl) -> Result<(), TargetRefused> {
        Err(TargetRefused("this server sends no webhooks".to_owned()))
    }

    async fn send(&self, _request: OutboundRequest) -> Attempt {
        Attempt {
            result: AttemptResult::Refused("this server sends no webhooks".to_owned()),
            latency: Duration::ZERO,
        }
    }
}
