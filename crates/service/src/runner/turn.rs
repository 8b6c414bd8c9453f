//! One prompt on the agent: `prompt.started`, the agent's output coalesced into
//! `agent.output` events, its permission requests put to the session's policy or
//! host, then `prompt.completed`, `prompt.failed` or `prompt.cancelled`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tandem_domain::{
    EventPayload, ModeRequest, ParticipantId, PermissionAsk, PermissionOption, PermissionOutcome,
    PermissionRequest, PermissionRequestId, Prompt, Redactions, StopReason,
};
use tandem_ports::{AgentError, AgentSession, AgentUpdate, Change, PermissionReply, Write};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::coalesce::Coalescer;
use super::session::{self, Flow, SessionTask};
use crate::redact::Redactor;
use crate::{ServiceError, retry_on_conflict};

/// Why a prompt running at shutdown is failed when its agent did not finish it.
const SHUT_DOWN: &str = "interrupted: the server shut down while this prompt ran";

/// How many agent updates may wait for the runner.
const UPDATE_BACKLOG: usize = 256;

/// Why the runner asked the agent to stop the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    /// A participant cancelled the prompt.
    Cancelled(ParticipantId),
    /// The session ended: closing it already recorded the prompt as cancelled.
    SessionEnded,
    /// Another replica took over the session's agent.
    LeaseLost,
    /// The server is shutting down.
    Shutdown,
}

/// A mode switch the agent is making while the prompt runs.
type Switching<'a> = Option<(
    ModeRequest,
    Pin<Box<dyn Future<Output = Result<(), AgentError>> + Send + 'a>>,
)>;

/// A permission request waiting for the host.
struct Waiting {
    id: PermissionRequestId,
    deadline: DateTime<Utc>,
    reply: PermissionReply,
    /// The answer that refuses the tool call.
    rejection: PermissionOutcome,
}

/// One prompt being run.
pub(super) struct Turn<'t, 's> {
    task: &'t mut SessionTask<'s>,
    /// The prompt as started (running).
    prompt: Prompt,
    buffer: Coalescer,
    waiting: Vec<Waiting>,
    stopping: Option<(Stopping, Instant)>,
    /// The first error that kept agent output from being stored.
    lost_output: Option<String>,
    /// Mode switches the host asked for while the prompt runs, oldest first.
    modes_wanted: VecDeque<ModeRequest>,
}

impl<'t, 's> Turn<'t, 's> {
    /// Runs `prompt` on `agent` and records its end. Gives the agent back unless it
    /// must not be used again (it crashed, or was stopped).
    pub(super) async fn run(
        task: &'t mut SessionTask<'s>,
        prompt: Prompt,
        agent: Box<dyn AgentSession>,
    ) -> (Flow, Option<Box<dyn AgentSession>>) {
        let now = task.shared.tandem.now();
        // Cancelled or changed since it was read: look at the queue again.
        let Ok(started) = prompt.start(now) else {
            return (Flow::Continue, Some(agent));
        };
        let change = Change::new(task.session_id)
            .write(Write::UpdatePrompt(started.state.clone()))
            .events(started.events)
            .activity(now);
        match task.commit(change).await {
            // From here on, the log after `prompt.started` may hold a cancel request.
            Ok(events) => {
                if let Some(last) = events.last() {
                    task.seen = last.seq;
                }
            }
            Err(ServiceError::Conflict) => return (Flow::Continue, Some(agent)),
            Err(error) => {
                tracing::warn!(prompt_id = %prompt.id, %error, "starting a prompt failed");
                return (Flow::Continue, Some(agent));
            }
        }
        let config = &task.shared.config;
        let mut turn = Turn {
            buffer: Coalescer::new(
                prompt.id,
                config.flush_interval,
                config.flush_bytes,
                Arc::clone(&config.redactor),
            ),
            prompt: started.state,
            task,
            waiting: Vec::new(),
            stopping: None,
            lost_output: None,
            modes_wanted: VecDeque::new(),
        };
        let began = std::time::Instant::now();
        let result = turn.drive(&*agent).await;
        let (flow, agent) = turn.record(result, agent).await;
        if let Some(status) = flow.1 {
            metrics::histogram!("tandem_prompt_duration_seconds", "outcome" => status.as_str())
                .record(began.elapsed().as_secs_f64());
        }
        (flow.0, agent)
    }

    /// Sends the prompt and handles everything until the agent's turn ends; `None`
    /// if the agent did not end it within the grace period after being stopped.
    async fn drive(&mut self, agent: &dyn AgentSession) -> Option<Result<StopReason, AgentError>> {
        let (updates_in, mut updates) = mpsc::channel(UPDATE_BACKLOG);
        let text = self.prompt.text.clone();
        let turn = agent.prompt(&text, updates_in);
        tokio::pin!(turn);
        let shutdown = self.task.shared.shutdown.clone();
        let mut switching: Switching<'_> = None;
        let result = loop {
            if self.task.lease_lost {
                self.stop(agent, Stopping::LeaseLost).await;
            }
            if switching.is_none()
                && self.stopping.is_none()
                && let Some(request) = self.modes_wanted.pop_front()
            {
                let mode = request.mode_id.clone();
                switching = Some((
                    request,
                    Box::pin(async move { agent.set_mode(&mode).await }),
                ));
            }
            let flush_at = self.buffer.deadline().map(Instant::from_std);
            let answer_by = self.next_deadline();
            let give_up_at = self
                .stopping
                .map(|(_, since)| since + self.task.shared.config.stop_grace);
            let renew_at = self.task.renewal_at();
            // Biased, with the agent's updates last: an agent that floods its
            // channel must not hold back the flush timer, permission deadlines,
            // cancels read from the log, shutdown or the lease renewal.
            tokio::select! {
                biased;
                result = &mut turn => break Some(result),
                () = shutdown.cancelled(), if self.stopping.is_none() => {
                    self.stop(agent, Stopping::Shutdown).await;
                }
                () = sleep_until(give_up_at) => break None,
                () = tokio::time::sleep_until(renew_at) => {
                    if self.task.renew_lease().await == Flow::Stop {
                        self.stop(agent, Stopping::LeaseLost).await;
                    } else if self.task.session_ended().await {
                        // Past a limit with nobody touching it: expired now.
                        self.stop(agent, Stopping::SessionEnded).await;
                    }
                }
                Ok(()) = self.task.bus.changed() => self.read_log(agent).await,
                () = sleep_until(answer_by) => self.time_out_due().await,
                () = sleep_until(flush_at) => self.flush().await,
                result = mode_switched(&mut switching) => {
                    if let Some((request, _)) = switching.take() {
                        // A failure to record is logged; the request stays pending.
                        let _ = self.task.record_mode(&request, result).await;
                    }
                }
                () = session::report_changed(&mut self.task.reports) => {
                    self.task.record_reports().await;
                }
                Some(update) = updates.recv() => self.take(update).await,
            }
        };
        // What the agent sent before its turn ended is still in the channel.
        while let Ok(update) = updates.try_recv() {
            self.take(update).await;
        }
        result
    }

    /// Buffers output, or puts a permission request to the policy or the host.
    async fn take(&mut self, update: AgentUpdate) {
        match update {
            AgentUpdate::Output { kind, text, raw } => {
                if self.buffer.push(kind, text, raw, std::time::Instant::now()) {
                    self.flush().await;
                }
            }
            AgentUpdate::PermissionRequested {
                tool_call,
                options,
                reply,
            } => {
                if self.stopping.is_some() {
                    // Dropping the reply refuses: the prompt is being stopped.
                    return;
                }
                // Output before the request stays before it in the log, whole.
                self.flush_all().await;
                self.ask(tool_call, options, reply).await;
            }
        }
    }

    /// Writes the buffered output as `agent.output` events (all but a text tail
    /// that could still become a secret).
    async fn flush(&mut self) {
        let outputs = self.buffer.drain();
        self.write(outputs).await;
    }

    /// Writes all the buffered output: the agent's text so far is complete.
    async fn flush_all(&mut self) {
        let outputs = self.buffer.drain_all();
        self.write(outputs).await;
    }

    async fn write(&mut self, outputs: Vec<tandem_domain::AgentOutput>) {
        if outputs.is_empty() || self.ended() {
            return;
        }
        let now = self.task.shared.tandem.now();
        let events: Result<Vec<_>, _> = outputs
            .into_iter()
            .map(|output| self.prompt.output(output, now))
            .collect();
        let change = match events {
            Ok(events) => Change::new(self.task.session_id)
                .events(events)
                .activity(now),
            Err(error) => return self.lose_output(&error.to_string()),
        };
        match self.task.commit(change).await {
            Ok(_) => {}
            // The session ended: the next look at the session stops the agent.
            Err(ServiceError::Conflict) => self.lose_output("the session ended"),
            Err(error) => self.lose_output(&error.to_string()),
        }
    }

    fn lose_output(&mut self, error: &str) {
        tracing::warn!(prompt_id = %self.prompt.id, error, "agent output could not be stored");
        self.lost_output
            .get_or_insert_with(|| format!("the agent's output could not all be stored: {error}"));
    }

    /// Records the agent's permission request; answers at once if the session's
    /// policy decides, else waits for the host until the deadline.
    async fn ask(
        &mut self,
        tool_call: serde_json::Value,
        options: Vec<PermissionOption>,
        reply: PermissionReply,
    ) {
        let tandem = self.task.shared.tandem.clone();
        let rejection = PermissionOutcome::rejecting(&options);
        let (tool_call, options, redactions) =
            redact_request(&self.task.shared.config.redactor, tool_call, options);
        let ask = PermissionAsk {
            id: PermissionRequestId::from_uuid(Uuid::now_v7()),
            tool_call,
            options,
            timeout: tandem.config.permission_timeout,
            redactions,
        };
        let opened = retry_on_conflict!({
            let session = tandem
                .store
                .session(self.task.session_id)
                .await
                .map_err(ServiceError::Store);
            match session {
                Ok(session) => {
                    let now = tandem.now();
                    match PermissionRequest::open(&session, &self.prompt, ask.clone(), now) {
                        Ok(opened) => {
                            let change = Change::new(self.task.session_id)
                                .write(Write::InsertPermissionRequest(opened.state.clone()))
                                .events(opened.events)
                                .activity(now);
                            self.task.commit(change).await.map(|_| opened.state)
                        }
                        Err(rule) => Err(ServiceError::Rule(rule)),
                    }
                }
                Err(error) => Err(error),
            }
        });
        match opened {
            Ok(request) => match request.resolution {
                Some(resolution) => {
                    let _ = reply.send(resolution.outcome);
                }
                None => self.waiting.push(Waiting {
                    id: request.id,
                    deadline: request.deadline,
                    reply,
                    rejection,
                }),
            },
            // Unrecorded, nobody can answer it: the tool call is refused.
            Err(error) => {
                tracing::warn!(prompt_id = %self.prompt.id, %error, "recording a permission request failed; refusing the tool call");
                let _ = reply.send(rejection);
            }
        }
    }

    /// When the next unanswered permission request times out.
    fn next_deadline(&self) -> Option<Instant> {
        let now = self.task.shared.tandem.now();
        self.waiting
            .iter()
            .map(|w| w.deadline)
            .min()
            .map(|deadline| {
                let left = (deadline - now).to_std().unwrap_or(Duration::ZERO);
                Instant::now() + left
            })
    }

    /// Rejects the permission requests nobody answered in time.
    async fn time_out_due(&mut self) {
        let now = self.task.shared.tandem.now();
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.deadline <= now);
        self.waiting = waiting;
        for request in due {
            let outcome = retry_on_conflict!(self.time_out(request.id).await);
            match outcome {
                Ok(outcome) => {
                    let _ = request.reply.send(outcome);
                }
                Err(error) => {
                    tracing::warn!(request_id = %request.id, %error, "timing out a permission request failed; refusing the tool call");
                    let _ = request.reply.send(request.rejection);
                }
            }
        }
    }

    /// Times a request out, or returns the answer that beat the deadline.
    async fn time_out(
        &mut self,
        id: PermissionRequestId,
    ) -> Result<PermissionOutcome, ServiceError> {
        let tandem = self.task.shared.tandem.clone();
        let request = tandem
            .store
            .permission_request(id)
            .await
            .map_err(ServiceError::Store)?;
        if let Some(resolution) = request.resolution {
            return Ok(resolution.outcome);
        }
        let now = tandem.now();
        let timed_out = request.time_out(now)?;
        let outcome = timed_out
            .state
            .resolution
            .as_ref()
            .map_or(PermissionOutcome::Cancelled, |r| r.outcome.clone());
        let change = Change::new(self.task.session_id)
            .write(Write::UpdatePermissionRequest(timed_out.state))
            .events(timed_out.events);
        self.task.commit(change).await?;
        Ok(outcome)
    }

    /// Reads what others added to the session's log: the session may have ended,
    /// someone may have asked to cancel the prompt, or the host may have answered
    /// a permission request. Whichever replica wrote it, it shows up here.
    async fn read_log(&mut self, agent: &dyn AgentSession) {
        const PAGE: u32 = 200;
        while !self.ended() && self.task.behind() {
            let events = match self
                .task
                .shared
                .tandem
                .store
                .events(self.task.session_id, self.task.seen, PAGE)
                .await
            {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(session_id = %self.task.session_id, %error, "reading the session's log failed");
                    return;
                }
            };
            let Some(last) = events.last() else {
                return;
            };
            self.task.seen = last.seq;
            for event in &events {
                self.notice(agent, &event.payload).await;
            }
        }
    }

    /// Acts on one event of the log.
    async fn notice(&mut self, agent: &dyn AgentSession, payload: &EventPayload) {
        if payload.ends_session() {
            self.stop(agent, Stopping::SessionEnded).await;
        } else if let EventPayload::PromptCancelRequested {
            prompt_id,
            requested_by,
        } = payload
            && *prompt_id == self.prompt.id
        {
            self.stop(agent, Stopping::Cancelled(*requested_by)).await;
        } else if let EventPayload::AgentModeRequested(requested) = payload {
            self.modes_wanted.push_back(ModeRequest {
                mode_id: requested.mode_id.clone(),
                by: requested.requested_by,
            });
        } else if let EventPayload::AgentPermissionResolved {
            request_id,
            outcome,
            ..
        } = payload
            && let Some(at) = self.waiting.iter().position(|w| w.id == *request_id)
        {
            let waiting = self.waiting.swap_remove(at);
            let _ = waiting.reply.send(outcome.clone());
        }
    }

    /// Asks the agent to stop the prompt, for `why`.
    async fn stop(&mut self, agent: &dyn AgentSession, why: Stopping) {
        if self.stopping.is_some() {
            return;
        }
        tracing::info!(prompt_id = %self.prompt.id, reason = ?why, "stopping the running prompt");
        self.stopping = Some((why, Instant::now()));
        // Unanswered requests are refused by dropping their replies.
        self.waiting.clear();
        if let Err(error) = agent.cancel().await {
            // Only the kind: the message may quote what the agent sent.
            tracing::warn!(prompt_id = %self.prompt.id, kind = error.kind(), "the agent did not take the cancel");
        }
    }

    /// Whether the session ended (or this replica lost it): nothing more is written.
    fn ended(&self) -> bool {
        matches!(
            self.stopping,
            Some((Stopping::SessionEnded | Stopping::LeaseLost, _))
        )
    }

    /// Records how the prompt ended; returns what the session task does next (and
    /// the prompt's final status, if this recorded one), and the agent if it can
    /// run the next prompt.
    async fn record(
        mut self,
        result: Option<Result<StopReason, AgentError>>,
        agent: Box<dyn AgentSession>,
    ) -> (
        (Flow, Option<tandem_domain::PromptStatus>),
        Option<Box<dyn AgentSession>>,
    ) {
        self.waiting.clear();
        self.flush_all().await;
        let why = self.stopping.map(|(why, _)| why);
        if self.ended() {
            session::stop(agent).await;
            return ((Flow::Stop, None), None);
        }
        let flow = if why == Some(Stopping::Shutdown) {
            Flow::Stop
        } else {
            Flow::Continue
        };
        let lost = self.lost_output.clone();
        let (recorded, agent) = match result {
            Some(Ok(reason)) => {
                let recorded = match (why, reason, lost) {
                    (_, _, Some(lost)) => self.fail(&lost).await,
                    (Some(Stopping::Shutdown), StopReason::Cancelled, None) => {
                        self.fail(SHUT_DOWN).await
                    }
                    (Some(Stopping::Cancelled(by)), StopReason::Cancelled, None) => {
                        self.task
                            .finish(self.prompt.id, |prompt, now| {
                                prompt.finish_cancelled(Some(by), now)
                            })
                            .await
                    }
                    (_, reason, None) => {
                        self.task
                            .finish(self.prompt.id, |prompt, now| prompt.complete(reason, now))
                            .await
                    }
                };
                (recorded, Some(agent))
            }
            Some(Err(error)) => {
                let recorded = self.fail(&error.to_string()).await;
                let reusable = match error {
                    AgentError::Protocol(_) => true,
                    AgentError::UnknownProfile(_)
                    | AgentError::Unavailable(_)
                    | AgentError::AuthRequired(_)
                    | AgentError::Crashed(_) => false,
                };
                if reusable {
                    (recorded, Some(agent))
                } else {
                    tracing::warn!(session_id = %self.task.session_id, kind = error.kind(), "the agent failed; it starts again for the next prompt");
                    session::stop(agent).await;
                    (recorded, None)
                }
            }
            // The agent did not stop in time: stopping it ends the prompt.
            None => {
                session::stop(agent).await;
                let recorded = match why {
                    Some(Stopping::Cancelled(by)) => {
                        self.task
                            .finish(self.prompt.id, |prompt, now| {
                                prompt.finish_cancelled(Some(by), now)
                            })
                            .await
                    }
                    Some(Stopping::Shutdown | Stopping::SessionEnded | Stopping::LeaseLost)
                    | None => self.fail(SHUT_DOWN).await,
                };
                (recorded, None)
            }
        };
        let status = match recorded {
            Ok(prompt) => prompt.map(|prompt| prompt.status),
            Err(error) => {
                tracing::warn!(prompt_id = %self.prompt.id, %error, "recording the end of a prompt failed");
                None
            }
        };
        let agent = if flow == Flow::Stop {
            if let Some(agent) = agent {
                session::stop(agent).await;
            }
            None
        } else {
            agent
        };
        ((flow, status), agent)
    }

    /// Fails the prompt with `error`, redacted: it may quote the agent (its
    /// error message, its stderr).
    async fn fail(&mut self, error: &str) -> Result<Option<Prompt>, ServiceError> {
        let (error, redactions) = self.task.shared.config.redactor.redact_text(error);
        self.task
            .finish(self.prompt.id, |prompt, now| {
                prompt.fail_redacted(&error, redactions.clone(), now)
            })
            .await
    }
}

/// A permission request's tool call and options with every secret redacted (the
/// option ids stay: the agent is answered with one of them).
fn redact_request(
    redactor: &Redactor,
    mut tool_call: serde_json::Value,
    options: Vec<PermissionOption>,
) -> (serde_json::Value, Vec<PermissionOption>, Redactions) {
    let mut redactions = redactor.redact_json(&mut tool_call);
    let options = options
        .into_iter()
        .map(|option| {
            let (name, counted) = redactor.redact_text(&option.name);
            redactions.merge(&counted);
            PermissionOption { name, ..option }
        })
        .collect();
    (tool_call, options, redactions)
}

/// Starts a queued prompt and fails it at once: its agent could not start.
pub(super) async fn fail_unstarted(
    task: &mut SessionTask<'_>,
    prompt: &Prompt,
    error: &AgentError,
) -> Flow {
    // The message may quote the agent's stderr: it goes to the prompt only,
    // redacted.
    tracing::warn!(prompt_id = %prompt.id, kind = error.kind(), "the agent could not start");
    let (error, redactions) = task
        .shared
        .config
        .redactor
        .redact_text(&format!("the agent could not start: {error}"));
    let now = task.shared.tandem.now();
    let Ok(started) = prompt.start(now) else {
        return Flow::Continue;
    };
    let change = Change::new(task.session_id)
        .write(Write::UpdatePrompt(started.state))
        .events(started.events)
        .activity(now);
    if task.commit(change).await.is_ok()
        && let Err(error) = task
            .finish(prompt.id, |prompt, now| {
                prompt.fail_redacted(&error, redactions.clone(), now)
            })
            .await
    {
        tracing::warn!(prompt_id = %prompt.id, %error, "recording the failed start failed");
    }
    Flow::Continue
}

/// The end of the mode switch in progress; never, without one.
async fn mode_switched(switching: &mut Switching<'_>) -> Result<(), AgentError> {
    match switching {
        Some((_, switch)) => switch.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever if there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
