//! One session's task: hold the agent lease, recover prompts a dead replica left
//! running, then run queued prompts in order until the session ends, the lease is
//! lost or the server shuts down.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tandem_domain::{
    AgentReport, DomainError, Event, Prompt, PromptId, PromptStatus, Seq, SessionId, Transition,
};
use tandem_ports::{
    AgentError, AgentSession, AgentStart, Change, Page, PromptFilter, Resume, StoreError, Write,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Shared;
use super::turn::{self, Turn};
use crate::{ServiceError, retry_on_conflict};

/// Why a prompt running when its server stopped is failed.
const INTERRUPTED: &str = "interrupted: the server running this prompt stopped before it finished";

/// What the session's task does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Run the next prompt, or wait for one.
    Continue,
    /// End the task: the session ended, the lease was lost, or the server stops.
    Stop,
}

/// The state of one session's task.
pub(super) struct SessionTask<'a> {
    pub(super) shared: &'a Shared,
    pub(super) session_id: SessionId,
    /// Wakes on every new event of the session, from any replica.
    pub(super) bus: watch::Receiver<Seq>,
    /// The last event of the session's log the running prompt has looked at.
    pub(super) seen: Seq,
    /// The agent session, started for the first prompt, restarted after a crash.
    pub(super) agent: Option<Box<dyn AgentSession>>,
    /// What the running agent says about its session.
    pub(super) reports: Option<watch::Receiver<AgentReport>>,
    lease_renewed: Instant,
    /// When to try renewing again after a renewal failed.
    renew_retry_at: Option<Instant>,
    /// Another replica holds the lease now: nothing more may be written.
    pub(super) lease_lost: bool,
}

/// Runs the session's prompts while this process holds its agent lease.
pub(super) async fn run(shared: &Shared, session_id: SessionId) {
    match acquire_lease(shared, session_id).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            tracing::warn!(%session_id, %error, "taking the agent lease failed");
            return;
        }
    }
    let mut task = SessionTask {
        shared,
        session_id,
        bus: shared.tandem.bus.subscribe(session_id),
        seen: Seq::ZERO,
        agent: None,
        reports: None,
        lease_renewed: Instant::now(),
        renew_retry_at: None,
        lease_lost: false,
    };
    tracing::debug!(%session_id, "running the session's prompts");
    if let Err(error) = task.recover_interrupted().await {
        tracing::warn!(%session_id, %error, "failing interrupted prompts failed");
    }
    while task.step().await == Flow::Continue {}
    task.stop_agent().await;
    if !task.lease_lost && !shared.shutdown.is_cancelled() && task.session_ended().await {
        task.clean_up_workspace().await;
    }
    if let Err(error) = shared
        .tandem
        .store
        .release_agent_lease(session_id, &shared.holder)
        .await
    {
        tracing::warn!(%session_id, %error, "releasing the agent lease failed");
    }
    tracing::debug!(%session_id, "stopped running the session's prompts");
}

async fn acquire_lease(shared: &Shared, session_id: SessionId) -> Result<bool, ServiceError> {
    let now = shared.tandem.now();
    let ttl =
        chrono::TimeDelta::from_std(shared.config.lease_ttl).unwrap_or(chrono::TimeDelta::MAX);
    shared
        .tandem
        .store
        .acquire_agent_lease(session_id, &shared.holder, now, now + ttl)
        .await
        .map_err(ServiceError::Store)
}

impl SessionTask<'_> {
    /// Runs the next queued prompt, or waits for something to happen.
    async fn step(&mut self) -> Flow {
        if self.shared.shutdown.is_cancelled()
            || self.lease_lost
            || self.renew_lease().await == Flow::Stop
        {
            return Flow::Stop;
        }
        // Mark the current events seen before reading, so a change after the
        // reads still wakes the wait below.
        self.bus.borrow_and_update();
        if self.session_ended().await {
            return Flow::Stop;
        }
        if self.agent.is_some() {
            self.apply_mode_requests().await;
        }
        match self
            .shared
            .tandem
            .store
            .next_queued_prompt(self.session_id)
            .await
        {
            Ok(Some(prompt)) => self.run_prompt(prompt).await,
            Ok(None) => self.wait().await,
            Err(error) => {
                tracing::warn!(session_id = %self.session_id, %error, "reading the queue failed");
                self.pause(Duration::from_secs(1)).await
            }
        }
    }

    /// Waits for a change of the session, a lease renewal, or shutdown.
    async fn wait(&mut self) -> Flow {
        let renewal = self.renewal_at();
        tokio::select! {
            changed = self.bus.changed() => {
                if changed.is_err() {
                    // The bus is gone: the server is stopping.
                    return Flow::Stop;
                }
                Flow::Continue
            }
            () = tokio::time::sleep_until(renewal) => Flow::Continue,
            () = report_changed(&mut self.reports) => {
                self.record_reports().await;
                Flow::Continue
            }
            () = self.shared.shutdown.cancelled() => Flow::Stop,
        }
    }

    async fn pause(&self, pause: Duration) -> Flow {
        tokio::select! {
            () = tokio::time::sleep(pause) => Flow::Continue,
            () = self.shared.shutdown.cancelled() => Flow::Stop,
        }
    }

    /// When the agent lease is due for renewal: a third into it, or the retry
    /// time after a failed renewal.
    pub(super) fn renewal_at(&self) -> Instant {
        self.renew_retry_at
            .unwrap_or(self.lease_renewed + self.shared.config.lease_ttl / 3)
    }

    /// Renews the agent lease when a third of it has passed; `Stop` if another
    /// replica took it over, or if it could not be renewed for two thirds of it:
    /// this replica then gives the session up while the lease still covers it, so
    /// that its agent stops before another replica may take over.
    pub(super) async fn renew_lease(&mut self) -> Flow {
        let now = Instant::now();
        if now < self.renewal_at() {
            return Flow::Continue;
        }
        let ttl = self.shared.config.lease_ttl;
        match acquire_lease(self.shared, self.session_id).await {
            Ok(true) => {
                self.lease_renewed = now;
                self.renew_retry_at = None;
                Flow::Continue
            }
            Ok(false) => {
                tracing::warn!(session_id = %self.session_id, "another replica took over the session's agent");
                self.lease_lost = true;
                Flow::Stop
            }
            Err(error) if now >= self.lease_renewed + ttl * 2 / 3 => {
                tracing::warn!(session_id = %self.session_id, %error, "the agent lease could not be renewed in time; giving the session up");
                self.lease_lost = true;
                Flow::Stop
            }
            Err(error) => {
                tracing::warn!(session_id = %self.session_id, %error, "renewing the agent lease failed; retrying");
                self.renew_retry_at = Some(now + (ttl / 10).min(Duration::from_secs(1)));
                Flow::Continue
            }
        }
    }

    /// Whether the session has ended (expiring it now if it is past a limit).
    pub(super) async fn session_ended(&self) -> bool {
        let tandem = &self.shared.tandem;
        let session = match tandem.store.session(self.session_id).await {
            Ok(session) => session,
            Err(tandem_ports::StoreError::NotFound) => return true,
            Err(error) => {
                tracing::warn!(session_id = %self.session_id, %error, "reading the session failed");
                return false;
            }
        };
        match tandem.settle(session).await {
            Ok(session) => session.end.is_some(),
            Err(error) => {
                tracing::warn!(session_id = %self.session_id, %error, "expiring the session failed");
                false
            }
        }
    }

    /// Starts `prompt` on the agent (starting the agent first if needed) and
    /// records how it ends.
    async fn run_prompt(&mut self, prompt: Prompt) -> Flow {
        if self.agent.as_ref().is_some_and(|agent| !agent.is_alive()) {
            // It died between prompts: start a new one rather than fail this.
            tracing::warn!(session_id = %self.session_id, "the agent exited while idle; starting it again");
            self.stop_agent().await;
        }
        if self.agent.is_none() {
            match self.start_agent().await {
                Ok(agent) => self.agent = Some(agent),
                Err(error) => {
                    return turn::fail_unstarted(self, &prompt, &error).await;
                }
            }
            // A mode the host asked for while no agent ran applies from the start.
            self.apply_mode_requests().await;
        }
        let Some(agent) = self.agent.take() else {
            return Flow::Continue;
        };
        let (outcome, agent) = Turn::run(self, prompt, agent).await;
        self.agent = agent;
        outcome
    }

    /// Starts the session's agent, resuming the conversation of the one before
    /// it (a restart, a takeover, a crash) where the agent can, and records how
    /// it started, where it works, and what it offers.
    async fn start_agent(&mut self) -> Result<Box<dyn AgentSession>, AgentError> {
        let tandem = &self.shared.tandem;
        let unreadable = |error: StoreError| {
            AgentError::Unavailable(format!("cannot read the session: {error}"))
        };
        let session = tandem
            .store
            .session(self.session_id)
            .await
            .map_err(unreadable)?;
        let previous = tandem
            .store
            .agent_state(self.session_id)
            .await
            .map_err(unreadable)?;
        let executor = self
            .shared
            .agents
            .executor(&session.agent_profile)
            .ok_or_else(|| AgentError::UnknownProfile(session.agent_profile.to_string()))?;
        let resume = session
            .agent_session_id
            .clone()
            .map(|agent_session_id| Resume {
                agent_session_id,
                workspace: previous.and_then(|state| state.workspace),
            });
        let started = executor
            .start(AgentStart {
                session_id: self.session_id,
                profile: session.agent_profile.clone(),
                resume,
            })
            .await?;
        metrics::gauge!("tandem_agent_processes").increment(1.0);
        tracing::info!(
            session_id = %self.session_id,
            profile = %session.agent_profile,
            resumption = %started.started().resumption,
            "agent started"
        );
        // Subscribed before the first look, so that no later report is missed.
        let mut reports = started.reports();
        let report = reports.borrow_and_update().clone();
        if let Err(error) = self.record_start(started.as_ref(), report).await {
            tracing::warn!(session_id = %self.session_id, %error, "recording the agent's start failed");
        }
        self.reports = Some(reports);
        Ok(started)
    }

    async fn stop_agent(&mut self) {
        self.reports = None;
        if let Some(agent) = self.agent.take() {
            stop(agent).await;
        }
    }

    /// Fails the prompts a replica left running when it died: this task holds the
    /// lease now, so nobody else runs them.
    async fn recover_interrupted(&mut self) -> Result<(), ServiceError> {
        let tandem = &self.shared.tandem;
        let filter = PromptFilter {
            session_id: self.session_id,
            status: Some(PromptStatus::Running),
        };
        let running = tandem
            .store
            .prompts(&filter, Page::first(100))
            .await
            .map_err(ServiceError::Store)?;
        for prompt in running {
            tracing::warn!(session_id = %self.session_id, prompt_id = %prompt.id, "failing a prompt interrupted by a stopped server");
            self.finish(prompt.id, |prompt, now| prompt.fail(INTERRUPTED, now))
                .await?;
        }
        Ok(())
    }

    /// Records the end of a running prompt with `transition`, closing its open
    /// permission requests in the same change. Re-reads and retries after a lost
    /// race; a prompt no longer running (the session ended) is left as it is.
    pub(super) async fn finish<F>(
        &mut self,
        prompt_id: PromptId,
        transition: F,
    ) -> Result<Option<Prompt>, ServiceError>
    where
        F: Fn(&Prompt, DateTime<Utc>) -> Result<Transition<Prompt>, DomainError>,
    {
        retry_on_conflict!(self.finish_once(prompt_id, &transition).await)
    }

    async fn finish_once<F>(
        &mut self,
        prompt_id: PromptId,
        transition: &F,
    ) -> Result<Option<Prompt>, ServiceError>
    where
        F: Fn(&Prompt, DateTime<Utc>) -> Result<Transition<Prompt>, DomainError>,
    {
        let store = &self.shared.tandem.store;
        let prompt = store.prompt(prompt_id).await.map_err(ServiceError::Store)?;
        if prompt.status != PromptStatus::Running {
            return Ok(None);
        }
        let now = self.shared.tandem.now();
        let finished = transition(&prompt, now)?;
        let mut change = Change::new(self.session_id).activity(now);
        // The prompt's open requests are resolved first, then the prompt ends:
        // the log never shows a request still open after its prompt's end.
        let open = store
            .open_permission_requests(prompt_id)
            .await
            .map_err(ServiceError::Store)?;
        for request in open {
            let closed = request.cancel(now)?;
            change = change
                .write(Write::UpdatePermissionRequest(closed.state))
                .events(closed.events);
        }
        let change = change
            .write(Write::UpdatePrompt(finished.state.clone()))
            .events(finished.events);
        self.commit(change).await?;
        Ok(Some(finished.state))
    }

    /// Commits a change of the runner. When its events directly follow what was
    /// seen, they count as seen: nobody else wrote in between.
    ///
    /// Every change of the runner is made under its agent lease: once another
    /// replica has taken the session over, it is refused and this task stops.
    pub(super) async fn commit(&mut self, change: Change) -> Result<Vec<Event>, ServiceError> {
        let change = change.under_lease(self.shared.holder.clone());
        let events = match self.shared.tandem.commit(change).await {
            Err(ServiceError::Store(StoreError::LeaseLost)) => {
                tracing::warn!(session_id = %self.session_id, "another replica took over the session's agent");
                self.lease_lost = true;
                return Err(ServiceError::Store(StoreError::LeaseLost));
            }
            other => other?,
        };
        if let (Some(first), Some(last)) = (events.first(), events.last())
            && first.seq.get() == self.seen.get() + 1
        {
            self.seen = last.seq;
        }
        Ok(events)
    }

    /// Whether the log has events the running prompt has not looked at.
    pub(super) fn behind(&mut self) -> bool {
        *self.bus.borrow_and_update() > self.seen
    }
}

/// Resolves when the agent reports on its session; never, without an agent.
pub(super) async fn report_changed(reports: &mut Option<watch::Receiver<AgentReport>>) {
    if let Some(reports) = reports
        && reports.changed().await.is_ok()
    {
        return;
    }
    // No agent, or it is gone: nothing more to report.
    std::future::pending::<()>().await;
}

/// Stops an agent session and its process.
pub(super) async fn stop(agent: Box<dyn AgentSession>) {
    agent.stop().await;
    metrics::gauge!("tandem_agent_processes").decrement(1.0);
}
