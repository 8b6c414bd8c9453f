//! The prompt runner: runs each session's queued prompts through its agent, one at
//! a time in queue order, and records what the agent does as events.
//!
//! A supervisor task starts one task per session with work. That task first takes
//! the session's agent lease in the store, so that with several replicas exactly
//! one runs the session's agent; prompts submitted on any replica reach it through
//! the store and the event bus. It keeps the agent process for the life of the
//! session (the agent keeps its conversation), starts it again after a crash, and
//! stops it when the session ends or the server shuts down. Work nobody is doing
//! (a new session, a replica that died) is found by a periodic scan.
//!
//! The runner declares its name on leases alive in the store before it starts
//! (see `SessionStore::register_lease_holder`): a lease whose holder is no longer
//! alive is free at once, so a server restarted after a crash, or another
//! replica, recovers the sessions the dead process was running within a scan,
//! not after the lease's whole term.

mod agent;
mod coalesce;
mod session;
mod turn;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tandem_domain::{AgentProfileName, EventPayload, PromptStatus, SessionId};
use tandem_ports::AgentExecutor;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::redact::Redactor;
use crate::{ServiceError, Tandem};

/// The executors of the configured agent profiles, by profile name.
#[derive(Clone, Default)]
pub struct Agents(BTreeMap<AgentProfileName, Arc<dyn AgentExecutor>>);

impl Agents {
    /// No profiles yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs sessions of `profile` with `executor`.
    #[must_use]
    pub fn with(mut self, profile: AgentProfileName, executor: Arc<dyn AgentExecutor>) -> Self {
        self.0.insert(profile, executor);
        self
    }

    /// The names of the profiles.
    pub fn profiles(&self) -> impl Iterator<Item = &AgentProfileName> {
        self.0.keys()
    }

    fn executor(&self, profile: &AgentProfileName) -> Option<&Arc<dyn AgentExecutor>> {
        self.0.get(profile)
    }
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Settings of the prompt runner.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// How long agent output is buffered before it is written (about 100 ms).
    pub flush_interval: Duration,
    /// Buffered output text that is written at once, in bytes.
    pub flush_bytes: usize,
    /// How long a replica's lease on a session's agent lasts without renewal; a
    /// replica that dies holds its sessions this long at most.
    pub lease_ttl: Duration,
    /// How often to look for work no replica is doing.
    pub scan_interval: Duration,
    /// How long a running prompt gets to end after it is cancelled (shutdown,
    /// session end) before its agent is stopped anyway.
    pub stop_grace: Duration,
    /// What is redacted from agent output before it is stored.
    pub redactor: Arc<Redactor>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_millis(100),
            flush_bytes: 32 * 1024,
            lease_ttl: Duration::from_secs(30),
            scan_interval: Duration::from_secs(1),
            stop_grace: Duration::from_secs(5),
            redactor: Redactor::builtin(),
        }
    }
}

/// How many session ids may wait for the supervisor; beyond that the periodic
/// scan finds the work.
const KICK_BACKLOG: usize = 4096;

/// How many sessions one scan picks up.
const SCAN_BATCH: u32 = 256;

/// Tells the runner, if one runs in this process, that a session has work.
#[derive(Debug, Default)]
pub(crate) struct WorkSignal(OnceLock<mpsc::Sender<SessionId>>);

impl WorkSignal {
    /// Wakes the runner if `payload` queued a prompt.
    pub(crate) fn notice(&self, session_id: SessionId, payload: &EventPayload) {
        let queues = matches!(payload, EventPayload::PromptApproved { .. })
            || matches!(payload, EventPayload::PromptSubmitted(prompt) if prompt.status == PromptStatus::Queued);
        if queues && let Some(kicks) = self.0.get() {
            // A full backlog only delays: the scan finds the session.
            let _ = kicks.try_send(session_id);
        }
    }
}

/// The prompt runner of one server process.
#[derive(Debug)]
pub struct PromptRunner {
    shared: Arc<Shared>,
}

/// What every session task of the runner shares.
#[derive(Debug)]
struct Shared {
    tandem: Tandem,
    agents: Agents,
    config: RunnerConfig,
    /// This process's name on agent leases.
    holder: String,
    shutdown: CancellationToken,
    /// Sessions with a task in this process.
    running: Mutex<HashSet<SessionId>>,
    tracker: TaskTracker,
}

impl PromptRunner {
    /// A runner of `tandem`'s prompts through `agents`, its name on agent leases
    /// declared alive in the store. Fails if the store refuses it (SQLite: another
    /// server process already runs prompts on the database).
    pub async fn new(
        tandem: Tandem,
        agents: Agents,
        config: RunnerConfig,
    ) -> Result<Self, ServiceError> {
        let holder = format!("tandem-{}", Uuid::now_v7());
        tandem
            .store
            .register_lease_holder(&holder)
            .await
            .map_err(ServiceError::Store)?;
        tracing::debug!(%holder, "prompt runner registered");
        Ok(Self {
            shared: Arc::new(Shared {
                tandem,
                agents,
                config,
                holder,
                shutdown: CancellationToken::new(),
                running: Mutex::default(),
                tracker: TaskTracker::new(),
            }),
        })
    }

    /// Starts the runner. It runs until `shutdown` is cancelled; then each running
    /// prompt is cancelled and recorded, agents are stopped, leases released, and
    /// the returned task ends.
    ///
    /// # Panics
    /// If a runner was already started for this `Tandem`.
    pub fn start(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let (kicks, inbox) = mpsc::channel(KICK_BACKLOG);
        assert!(
            self.shared.tandem.work.0.set(kicks).is_ok(),
            "one prompt runner per Tandem"
        );
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let stopping = shared.shutdown.clone();
            tokio::select! {
                () = supervise(Arc::clone(&shared), inbox) => {}
                () = shutdown.cancelled() => {}
            }
            stopping.cancel();
            shared.tasks_drained().await;
        })
    }
}

/// Starts a task for every session that gets work, until shutdown.
async fn supervise(shared: Arc<Shared>, mut inbox: mpsc::Receiver<SessionId>) {
    let mut scan = tokio::time::interval(shared.config.scan_interval);
    scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(session_id) = inbox.recv() => shared.ensure_task(session_id),
            _ = scan.tick() => shared.scan().await,
        }
    }
}

impl Shared {
    /// Starts the task of `session_id` unless one runs in this process.
    fn ensure_task(self: &Arc<Self>, session_id: SessionId) {
        let mut running = self.running();
        if self.shutdown.is_cancelled() || !running.insert(session_id) {
            return;
        }
        drop(running);
        let shared = Arc::clone(self);
        self.tracker.spawn(async move {
            let _forget = Forget {
                shared: &shared,
                session_id,
            };
            session::run(&shared, session_id).await;
        });
    }

    /// Starts tasks for the sessions whose work no replica is doing: prompts to
    /// run, and workspaces of ended sessions to clean up.
    async fn scan(self: &Arc<Self>) {
        let now = self.tandem.now();
        match self
            .tandem
            .store
            .sessions_awaiting_agent(now, SCAN_BATCH)
            .await
        {
            Ok(sessions) => {
                for session_id in sessions {
                    self.ensure_task(session_id);
                }
            }
            Err(error) => tracing::warn!(%error, "looking for prompts to run failed"),
        }
        match self
            .tandem
            .store
            .sessions_awaiting_cleanup(now, SCAN_BATCH)
            .await
        {
            Ok(sessions) => {
                for session_id in sessions {
                    self.ensure_task(session_id);
                }
            }
            Err(error) => tracing::warn!(%error, "looking for workspaces to clean up failed"),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<SessionId>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until every session task has ended.
    async fn tasks_drained(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Removes a session from the running set when its task ends, even by a panic.
struct Forget<'a> {
    shared: &'a Shared,
    session_id: SessionId,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.shared.running().remove(&self.session_id);
    }
}
