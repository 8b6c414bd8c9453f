//! The webhook dispatcher: delivers events from the durable log to the
//! endpoints that want them, in order per session, at least once.
//!
//! A supervisor finds endpoints with events to deliver (woken by this process's
//! commits of events some endpoint wants, and by a periodic scan that also sees
//! other replicas' events and retries falling due) and starts one task per
//! endpoint. The task takes the endpoint's lease in the store, so that one
//! replica at a time delivers to it; reads each session's events after the
//! endpoint's cursor; sends the wanted ones one by one; and records each outcome
//! together with the cursor. A failure worth retrying holds the session's later
//! events back until its retry is due (order), without holding back other
//! sessions or endpoints. A crash between a send and its record sends the event
//! again later, with the same `webhook-id`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use tandem_domain::{
    DeliveryStatus, Event, EventPayload, Seq, SessionId, Verdict, WebhookDelivery,
    WebhookDeliveryId, WebhookEndpoint, WebhookEventTypes, WebhookFormat, WebhookId,
};
use tandem_ports::{OutboundRequest, StoreError, WebhookBacklog, WebhookProgress};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::message::{self, Context, Links};
use crate::{CommitObserver, Tandem};

/// How many endpoints one scan starts at most.
const SCAN_BATCH: u32 = 256;
/// How many sessions of an endpoint one round handles.
const BACKLOG_BATCH: u32 = 64;
/// How many events are read from a session's log at a time.
const EVENT_BATCH: u32 = 200;

/// The webhook dispatcher of one server process.
#[derive(Debug)]
pub struct WebhookDispatcher {
    shared: Arc<Shared>,
}

struct Shared {
    tandem: Tandem,
    /// This process's name on endpoint leases.
    holder: String,
    shutdown: CancellationToken,
    /// Endpoints with a task in this process.
    running: Mutex<HashSet<WebhookId>>,
    tracker: TaskTracker,
    /// What the enabled endpoints want, as of the last scan: commits of other
    /// events need not wake the dispatcher.
    wanted: RwLock<Vec<WebhookEventTypes>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl CommitObserver for Shared {
    fn committed(&self, _session_id: SessionId, events: &[Event]) {
        let wanted = self
            .wanted
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if events
            .iter()
            .any(|event| wanted.iter().any(|types| types.matches(&event.payload)))
        {
            self.tandem.webhooks.wake.notify_one();
        }
    }
}

impl WebhookDispatcher {
    /// A dispatcher of `tandem`'s webhooks (its `with_webhooks` settings).
    pub fn new(tandem: Tandem) -> Self {
        Self {
            shared: Arc::new(Shared {
                tandem,
                holder: format!("tandem-{}", Uuid::now_v7()),
                shutdown: CancellationToken::new(),
                running: Mutex::default(),
                tracker: TaskTracker::new(),
                wanted: RwLock::default(),
            }),
        }
    }

    /// Starts delivering until `shutdown` is cancelled; then requests in flight
    /// are dropped (their events are sent again by the next replica to deliver),
    /// leases are released, and the returned task ends.
    pub fn start(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let observer: Arc<dyn CommitObserver> = self.shared.clone();
        self.shared
            .tandem
            .observe_commits(Arc::downgrade(&observer));
        let shared = self.shared;
        tokio::spawn(async move {
            tokio::select! {
                () = supervise(&shared) => {}
                () = shutdown.cancelled() => {}
            }
            shared.shutdown.cancel();
            shared.tracker.close();
            shared.tracker.wait().await;
            drop(observer);
        })
    }
}

/// Scans on every wake-up and every `scan_interval`, until cancelled.
async fn supervise(shared: &Arc<Shared>) {
    let wake = Arc::clone(&shared.tandem.webhooks.wake);
    let mut ticks = tokio::time::interval(shared.tandem.webhooks.config.scan_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = wake.notified() => {}
            _ = ticks.tick() => {}
        }
        shared.scan().await;
    }
}

impl Shared {
    /// Refreshes what endpoints want and starts a task for each endpoint with
    /// deliveries due that no replica is making.
    async fn scan(self: &Arc<Self>) {
        let store = &self.tandem.store;
        match store.enabled_webhook_event_types().await {
            Ok(types) => {
                *self
                    .wanted
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = types;
            }
            Err(error) => tracing::warn!(%error, "reading the webhooks' event types failed"),
        }
        match store.webhooks_due(self.tandem.now(), SCAN_BATCH).await {
            Ok(due) => {
                for id in due {
                    self.ensure_task(id);
                }
            }
            Err(error) => tracing::warn!(%error, "looking for webhook deliveries failed"),
        }
    }

    fn ensure_task(self: &Arc<Self>, id: WebhookId) {
        let mut running = self.running();
        if self.shutdown.is_cancelled() || !running.insert(id) {
            return;
        }
        drop(running);
        let shared = Arc::clone(self);
        self.tracker.spawn(async move {
            let _forget = Forget {
                shared: &shared,
                id,
            };
            deliver_endpoint(&shared, id).await;
        });
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<WebhookId>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes an endpoint from the running set when its task ends, even by a panic.
struct Forget<'a> {
    shared: &'a Shared,
    id: WebhookId,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.shared.running().remove(&self.id);
    }
}

/// This replica's lease on delivering to one endpoint.
struct Lease<'a> {
    shared: &'a Shared,
    id: WebhookId,
    renewed: Option<Instant>,
}

impl Lease<'_> {
    /// Takes or renews the lease; false if another replica holds it.
    async fn renew(&mut self) -> bool {
        let now = self.shared.tandem.now();
        let ttl = self.shared.tandem.webhooks.config.lease_ttl;
        let until = now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        match self
            .shared
            .tandem
            .store
            .acquire_webhook_lease(self.id, &self.shared.holder, now, until)
            .await
        {
            Ok(true) => {
                self.renewed = Some(Instant::now());
                true
            }
            Ok(false) => false,
            Err(error) => {
                tracing::warn!(%error, webhook_id = %self.id, "taking a webhook lease failed");
                false
            }
        }
    }

    /// Renews the lease once a third of it has passed, so that it outlasts the
    /// next request; false if it was lost.
    async fn keep(&mut self) -> bool {
        let ttl = self.shared.tandem.webhooks.config.lease_ttl;
        match self.renewed {
            Some(at) if at.elapsed() < ttl / 3 => true,
            Some(_) | None => self.renew().await,
        }
    }

    async fn release(self) {
        if self.renewed.is_none() {
            return;
        }
        if let Err(error) = self
            .shared
            .tandem
            .store
            .release_webhook_lease(self.id, &self.shared.holder)
            .await
        {
            tracing::warn!(%error, webhook_id = %self.id, "releasing a webhook lease failed");
        }
    }
}

/// Whether to go on with the endpoint after a session.
enum Flow {
    Continue,
    Stop,
}

/// Delivers everything due of one endpoint, under its lease, until nothing is
/// due now (retries wait for the next scan) or the lease is lost.
async fn deliver_endpoint(shared: &Shared, id: WebhookId) {
    let mut lease = Lease {
        shared,
        id,
        renewed: None,
    };
    if !lease.renew().await {
        return;
    }
    let store = &shared.tandem.store;
    let mut previous_round: Option<Vec<WebhookBacklog>> = None;
    'rounds: while !shared.shutdown.is_cancelled() {
        let webhook = match store.webhook(id).await {
            Ok(webhook) if webhook.is_enabled() => webhook,
            Ok(_) | Err(StoreError::NotFound) => break,
            Err(error) => {
                tracing::warn!(%error, webhook_id = %id, "reading a webhook failed");
                break;
            }
        };
        let backlog = match store
            .webhook_backlog(id, shared.tandem.now(), BACKLOG_BATCH)
            .await
        {
            Ok(backlog) if !backlog.is_empty() => backlog,
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(%error, webhook_id = %id, "reading a webhook's backlog failed");
                break;
            }
        };
        if previous_round.as_ref() == Some(&backlog) {
            // Nothing moved since the last round: leave it to the next scan
            // rather than spin.
            tracing::warn!(webhook_id = %id, "webhook deliveries made no progress");
            break;
        }
        previous_round = Some(backlog.clone());
        for entry in backlog {
            match deliver_session(shared, &webhook, entry, &mut lease).await {
                Flow::Continue => {}
                Flow::Stop => break 'rounds,
            }
        }
    }
    lease.release().await;
}

/// How a delivery attempt ended for its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    /// Refused for good by the endpoint: recorded, the next event goes on.
    Failed,
    /// To be tried again at this time; the session's later events wait.
    Retrying(DateTime<Utc>),
    /// Failing for too long: recorded, and the endpoint is disabled.
    GaveUp,
}

impl Outcome {
    const fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Retrying(_) => "retrying",
            Self::GaveUp => "gave_up",
        }
    }
}

/// Delivers one session's events after the endpoint's cursor, in order.
async fn deliver_session(
    shared: &Shared,
    webhook: &WebhookEndpoint,
    entry: WebhookBacklog,
    lease: &mut Lease<'_>,
) -> Flow {
    let tandem = &shared.tandem;
    let session_id = entry.session_id;
    let mut done = entry.delivered;
    let mut recorded = entry.delivered;
    let mut pending = entry.pending;
    let mut context: Option<Context> = None;
    loop {
        let events = match tandem.store.events(session_id, done, EVENT_BATCH).await {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, %session_id, "reading events to deliver failed");
                return Flow::Stop;
            }
        };
        let full = u32::try_from(events.len()).is_ok_and(|len| len >= EVENT_BATCH);
        for event in &events {
            // A pending delivery goes on being attempted even if its type is no
            // longer wanted: it was wanted when it was first attempted.
            let previous = pending.take_if(|delivery| delivery.seq == event.seq);
            if previous.is_none() && !webhook.wants(session_id, &event.payload) {
                done = event.seq;
                continue;
            }
            if !lease.keep().await {
                return Flow::Stop;
            }
            if webhook.format() == WebhookFormat::Slack && context.is_none() {
                context = Some(slack_context(tandem, session_id).await);
            }
            let mut context = context.clone().unwrap_or_default();
            context.author = author_of(tandem, &event.payload).await;
            let attempt = tokio::select! {
                attempt = attempt(tandem, webhook, event, previous, &context) => attempt,
                () = shared.shutdown.cancelled() => return Flow::Stop,
            };
            let (delivery, outcome) = attempt;
            let progress = WebhookProgress {
                webhook_id: webhook.id(),
                since: webhook.since(),
                session_id,
                delivered: match outcome {
                    Outcome::Retrying(_) => Seq::new(event.seq.get().saturating_sub(1)),
                    Outcome::Succeeded | Outcome::Failed | Outcome::GaveUp => event.seq,
                },
                retry_at: match outcome {
                    Outcome::Retrying(at) => Some(at),
                    Outcome::Succeeded | Outcome::Failed | Outcome::GaveUp => None,
                },
                delivery: Some(delivery),
                give_up_at: (outcome == Outcome::GaveUp).then(|| tandem.now()),
            };
            if let Err(error) = tandem
                .store
                .record_webhook_progress(&progress, &shared.holder)
                .await
            {
                stopped_on(&error, webhook.id());
                return Flow::Stop;
            }
            recorded = progress.delivered;
            count(outcome, event, tandem.now());
            match outcome {
                Outcome::Succeeded | Outcome::Failed => done = event.seq,
                Outcome::Retrying(_) => return Flow::Continue,
                Outcome::GaveUp => {
                    tracing::warn!(
                        webhook_id = %webhook.id(),
                        "webhook disabled: its deliveries kept failing for longer than retries last"
                    );
                    return Flow::Stop;
                }
            }
        }
        if !full {
            break;
        }
    }
    if done > recorded {
        // Events the endpoint does not want: the cursor moves past them.
        let progress = WebhookProgress {
            webhook_id: webhook.id(),
            since: webhook.since(),
            session_id,
            delivered: done,
            retry_at: None,
            delivery: None,
            give_up_at: None,
        };
        if let Err(error) = tandem
            .store
            .record_webhook_progress(&progress, &shared.holder)
            .await
        {
            stopped_on(&error, webhook.id());
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// Logs why delivering to an endpoint stopped on a failed record.
fn stopped_on(error: &StoreError, webhook_id: WebhookId) {
    match error {
        // Another replica took over, the endpoint restarted or went away: a
        // normal end of this task.
        StoreError::LeaseLost | StoreError::Conflict | StoreError::NotFound => {
            tracing::debug!(%error, %webhook_id, "webhook delivery stopped");
        }
        StoreError::SessionInactive
        | StoreError::Duplicate
        | StoreError::Refused(_)
        | StoreError::Backend(_) => {
            tracing::warn!(%error, %webhook_id, "recording a webhook delivery failed");
        }
    }
}

/// Counts an outcome; a delivery's lag is the time from its event's commit.
fn count(outcome: Outcome, event: &Event, now: DateTime<Utc>) {
    metrics::counter!("tandem_webhook_deliveries_total", "outcome" => outcome.label()).increment(1);
    if outcome == Outcome::Succeeded {
        let lag = (now - event.at).to_std().unwrap_or_default();
        metrics::histogram!("tandem_webhook_delivery_lag_seconds").record(lag.as_secs_f64());
    }
}

/// The session's title, for Slack messages.
async fn slack_context(tandem: &Tandem, session_id: SessionId) -> Context {
    match tandem.store.session(session_id).await {
        Ok(session) => Context {
            title: session.title.as_str().to_owned(),
            author: None,
        },
        Err(error) => {
            tracing::debug!(%error, %session_id, "no session title for a Slack message");
            Context {
                title: "a session".to_owned(),
                author: None,
            }
        }
    }
}

/// The display name of the author of a submitted prompt.
async fn author_of(tandem: &Tandem, payload: &EventPayload) -> Option<String> {
    let EventPayload::PromptSubmitted(prompt) = payload else {
        return None;
    };
    let participant = tandem
        .store
        .participant(prompt.author_participant_id)
        .await
        .ok()?;
    Some(participant.display_name.as_str().to_owned())
}

/// The request of `event` to `webhook` at `now`, signed.
fn request(
    tandem: &Tandem,
    webhook: &WebhookEndpoint,
    event: &Event,
    context: &Context,
    now: DateTime<Utc>,
) -> OutboundRequest {
    let id = message::message_id(webhook, event);
    let links = Links::of(&tandem.webhooks.config.public_url, event);
    let body = message::body(webhook.format(), event, &links, context);
    let timestamp = now.timestamp();
    let signature = message::signature(&webhook.signing_secrets(now), &id, timestamp, &body);
    OutboundRequest {
        url: webhook.url().clone(),
        headers: vec![
            ("webhook-id", id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ],
        body,
    }
}

/// Sends `event` once and says what that means for its delivery (`previous`:
/// as recorded after its earlier attempts).
async fn attempt(
    tandem: &Tandem,
    webhook: &WebhookEndpoint,
    event: &Event,
    previous: Option<WebhookDelivery>,
    context: &Context,
) -> (WebhookDelivery, Outcome) {
    let started = tandem.now();
    let sent = tandem
        .webhooks
        .sender
        .send(request(tandem, webhook, event, context, started))
        .await;
    let now = tandem.now();
    let policy = tandem.webhooks.config.retry;
    let attempts = previous.as_ref().map_or(0, |p| p.attempts) + 1;
    let first = previous.as_ref().map_or(started, |p| p.created_at);
    let outcome = match sent.result.verdict() {
        Verdict::Succeeded => Outcome::Succeeded,
        Verdict::Failed => Outcome::Failed,
        Verdict::Retry { not_before } => {
            let delay = policy.delay(attempts, not_before, rand::random::<f64>());
            let next = now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX);
            if policy.gives_up(first, next) {
                Outcome::GaveUp
            } else {
                Outcome::Retrying(next)
            }
        }
    };
    let error = match outcome {
        Outcome::GaveUp => sent.result.error().map(|error| {
            format!("gave up after {attempts} attempts (the endpoint is disabled): {error}")
        }),
        Outcome::Succeeded | Outcome::Failed | Outcome::Retrying(_) => sent.result.error(),
    };
    let delivery = WebhookDelivery {
        id: previous
            .as_ref()
            .map_or_else(|| WebhookDeliveryId::from_uuid(Uuid::now_v7()), |p| p.id),
        webhook_id: webhook.id(),
        session_id: event.session_id,
        seq: event.seq,
        event_type: event.payload.event_type().to_owned(),
        status: match outcome {
            Outcome::Succeeded => DeliveryStatus::Succeeded,
            Outcome::Failed | Outcome::GaveUp => DeliveryStatus::Failed,
            Outcome::Retrying(_) => DeliveryStatus::Pending,
        },
        attempts,
        created_at: first,
        last_attempt_at: Some(started),
        next_attempt_at: match outcome {
            Outcome::Retrying(at) => Some(at),
            Outcome::Succeeded | Outcome::Failed | Outcome::GaveUp => None,
        },
        response_status: sent.result.status(),
        error,
        latency_ms: Some(u32::try_from(sent.latency.as_millis()).unwrap_or(u32::MAX)),
    };
    (delivery, outcome)
}

/// Sends a failed delivery's event once more (a retry by hand): it succeeds
/// or stays failed, with what this attempt saw.
pub(super) async fn attempt_again(
    tandem: &Tandem,
    webhook: &WebhookEndpoint,
    event: &Event,
    failed: WebhookDelivery,
) -> (WebhookDelivery, bool) {
    let mut context = match webhook.format() {
        WebhookFormat::Slack => slack_context(tandem, event.session_id).await,
        WebhookFormat::Standard => Context::default(),
    };
    context.author = author_of(tandem, &event.payload).await;
    let started = tandem.now();
    let sent = tandem
        .webhooks
        .sender
        .send(request(tandem, webhook, event, &context, started))
        .await;
    let succeeded = sent.result.verdict() == Verdict::Succeeded;
    let delivery = WebhookDelivery {
        status: if succeeded {
            DeliveryStatus::Succeeded
        } else {
            DeliveryStatus::Failed
        },
        attempts: failed.attempts + 1,
        last_attempt_at: Some(started),
        next_attempt_at: None,
        response_status: sent.result.status(),
        error: sent.result.error(),
        latency_ms: Some(u32::try_from(sent.latency.as_millis()).unwrap_or(u32::MAX)),
        ..failed
    };
    metrics::counter!(
        "tandem_webhook_deliveries_total",
        "outcome" => if succeeded { "succeeded" } else { "failed" }
    )
    .increment(1);
    (delivery, succeeded)
}
