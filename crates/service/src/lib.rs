//! Tandem's use cases: one method per action of DESIGN.md §2 on [`Tandem`].
//!
//! Each use case authenticates and authorizes with the domain's rules, computes the
//! transition, commits it (state and events in one transaction) through the
//! `SessionStore`, then wakes stream subscribers through the `EventBus`. Reads and
//! writes settle lazy expiry: a session past its limits is expired on first touch.
//! The `PromptRunner` runs prompts through agents; the `WebhookDispatcher`
//! delivers webhooks from the event log.
//! The service does no I/O of its own beyond the ports.

mod access;
mod agents;
mod api_keys;
mod bus;
mod comments;
mod credentials;
mod error;
mod identity;
mod invites;
mod participants;
mod permissions;
mod prompts;
pub mod redact;
mod runner;
mod sessions;
mod subscriptions;
mod tickets;
mod webhooks;

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock, Weak};

use chrono::{DateTime, TimeDelta, Utc};
use tandem_domain::{AgentProfileName, Event, SessionId, TextLimits};
use tandem_ports::{Change, Clock, EventBus, SessionStore, StoreError};

pub use api_keys::{CreatedApiKey, MIN_BOOTSTRAP_KEY_LEN};
pub use bus::LocalEventBus;
pub use credentials::{Caller, Secret, TokenKind, hash_token};
pub use error::{Invalid, Resource, ServiceError};
pub use identity::AgentProfiles;
pub use invites::{CreatedInvite, InvitePreview};
pub use participants::JoinedSession;
pub use prompts::CancelResult;
pub use redact::{KnownSecret, PatternRule, RedactionError, RedactionSettings, Redactor};
pub use runner::{Agents, PromptRunner, RunnerConfig};
pub use sessions::{NewSession, SessionCreated, SessionDetails, SessionOverview};
pub use subscriptions::{DEFAULT_HEARTBEAT, Delivery, Next, Subscription};
pub use tickets::{IssuedTicket, STREAM_TICKET_TTL};
pub use webhooks::{WebhookConfig, WebhookDispatcher, WebhookWithSecret};

/// How many times a use case re-reads and retries after a concurrent change.
const MAX_ATTEMPTS: u32 = 8;

/// Re-runs a use case's attempt (an `async` expression) while it loses a race.
macro_rules! retry_on_conflict {
    ($attempt:expr) => {{
        let mut attempts = 1;
        loop {
            match $attempt {
                Err($crate::ServiceError::Conflict) if attempts < $crate::MAX_ATTEMPTS => {
                    $crate::back_off(attempts).await;
                    attempts += 1;
                }
                outcome => break outcome,
            }
        }
    }};
}
pub(crate) use retry_on_conflict;

/// Waits a random moment before retry `attempt` (1, 2, ...), up to 2^attempt ms, so
/// that racers who lost together do not collide again in step.
pub(crate) async fn back_off(attempt: u32) {
    let ceiling = 1u64 << attempt.min(8);
    let pause = rand::random_range(0..=ceiling);
    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
}

/// Settings of the use cases.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Limits on client text.
    pub limits: TextLimits,
    /// The agent profiles clients may pick; the first is the default.
    pub agent_profiles: BTreeSet<AgentProfileName>,
    /// The profile of sessions created without one.
    pub default_agent_profile: AgentProfileName,
    /// How long the host has to answer an agent's permission request.
    pub permission_timeout: TimeDelta,
    /// How many events a session's hub keeps for subscribers that are behind;
    /// one further behind catches up from the log.
    pub stream_buffer: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        let echo = AgentProfileName::default_profile();
        Self {
            limits: TextLimits::DEFAULT,
            agent_profiles: BTreeSet::from([echo.clone()]),
            default_agent_profile: echo,
            permission_timeout: TimeDelta::minutes(5),
            stream_buffer: 1024,
        }
    }
}

/// Learns of events right after this process committed them, in the committing
/// task: for in-process fan-out that need not read back from the log what was
/// just written. It must be quick and must not block. Events committed by other
/// processes never reach it (they come through the `EventBus` and the log).
pub(crate) trait CommitObserver: Send + Sync + 'static {
    /// `events` were committed to `session_id`'s log, in order, with their seqs.
    fn committed(&self, session_id: SessionId, events: &[Event]);
}

/// The use cases, over the ports. Cheap to clone.
#[derive(Clone)]
pub struct Tandem {
    store: Arc<dyn SessionStore>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    config: Arc<ServiceConfig>,
    work: Arc<runner::WorkSignal>,
    observers: Arc<RwLock<Vec<Weak<dyn CommitObserver>>>>,
    known_tokens: Arc<credentials::KnownTokens>,
    webhooks: Arc<webhooks::Webhooks>,
    subscriptions: Arc<subscriptions::Hubs>,
}

impl std::fmt::Debug for Tandem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tandem")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Tandem {
    /// The use cases over these ports.
    pub fn new(
        store: Arc<dyn SessionStore>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Self {
        Self {
            store,
            bus,
            clock,
            subscriptions: Arc::new(subscriptions::Hubs::new(config.stream_buffer)),
            config: Arc::new(config),
            work: Arc::default(),
            observers: Arc::default(),
            known_tokens: Arc::default(),
            webhooks: Arc::default(),
        }
    }

    /// Tells `observer` of every commit of this process from now on, for as long
    /// as it lives.
    pub(crate) fn observe_commits(&self, observer: Weak<dyn CommitObserver>) {
        let mut observers = self
            .observers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        observers.retain(|known| known.strong_count() > 0);
        observers.push(observer);
    }

    /// The settings.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.store.ping().await.map_err(ServiceError::Store)
    }

    /// Stops the event bus, then closes the store's connections (graceful
    /// shutdown, after everything else): the bus announces the last writes to the
    /// other replicas while the database is still open.
    pub async fn close(&self) {
        self.bus.close().await;
        self.store.close().await;
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Commits a change and wakes the session's subscribers. A lost race (stale
    /// version, or the session ended meanwhile) is a `Conflict`, for the caller to
    /// retry from a fresh read.
    async fn commit(&self, change: Change) -> Result<Vec<Event>, ServiceError> {
        let session_id = change.session_id;
        let events =
            self.store
                .apply(change)
                .await
                .map_err(|error| match error {
                    StoreError::Conflict | StoreError::SessionInactive | StoreError::NotFound => {
                        ServiceError::Conflict
                    }
                    StoreError::Refused(rule) => ServiceError::Rule(rule),
                    // A runner's change whose lease was taken over: the runner stops.
                    other @ (StoreError::Duplicate
                    | StoreError::LeaseLost
                    | StoreError::Backend(_)) => ServiceError::Store(other),
                })?;
        self.publish(session_id, &events);
        Ok(events)
    }

    /// Hands the committed events to this process's subscriptions and
    /// observers, then wakes the session's subscribers (on every replica)
    /// through the bus.
    fn publish(&self, session_id: SessionId, events: &[Event]) {
        let Some(last) = events.last() else {
            return;
        };
        self.subscriptions.committed(session_id, events);
        {
            let observers = self
                .observers
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for observer in observers.iter().filter_map(Weak::upgrade) {
                observer.committed(session_id, events);
            }
        }
        self.bus.publish(session_id, last.seq);
        metrics::counter!("tandem_events_written_total").increment(events.len() as u64);
        for event in events {
            self.work.notice(session_id, &event.payload);
            // Every end of a prompt is committed here, whoever ended it (its
            // runner, a cancel, a close, an expiry, a restart's recovery).
            if let Some(outcome) = prompt_outcome(&event.payload) {
                metrics::counter!("tandem_prompts_finished_total", "outcome" => outcome)
                    .increment(1);
            }
        }
    }
}

/// How a prompt ended, if `payload` ends one.
fn prompt_outcome(payload: &tandem_domain::EventPayload) -> Option<&'static str> {
    use tandem_domain::EventPayload as E;
    match payload {
        E::PromptCompleted { .. } => Some("completed"),
        E::PromptFailed { .. } => Some("failed"),
        E::PromptCancelled { .. } => Some("cancelled"),
        E::SessionCreated(_)
        | E::SessionUpdated { .. }
        | E::SessionClosed { .. }
        | E::ParticipantJoined(_)
        | E::ParticipantLeft { .. }
        | E::ParticipantUpdated { .. }
        | E::ParticipantRemoved { .. }
        | E::CommentPosted(_)
        | E::PromptSubmitted(_)
        | E::PromptEdited { .. }
        | E::PromptApproved { .. }
        | E::PromptRejected { .. }
        | E::PromptWithdrawn { .. }
        | E::PromptStarted { .. }
        | E::PromptCancelRequested { .. }
        | E::AgentOutput(_)
        | E::AgentPermissionRequested { .. }
        | E::AgentPermissionResolved { .. }
        | E::AgentStarted(_)
        | E::AgentCommandsUpdated(_)
        | E::AgentModeRequested(_)
        | E::AgentModeChanged(_)
        | E::AgentModeChangeFailed(_)
        | E::AgentTitleChanged(_) => None,
    }
}
