//! The session's agent state, kept by the session's task: how each agent
//! started, what it reports about its session (commands, modes, title), the
//! host's mode requests passed on to it, and its workspace cleaned up once the
//! session ended. None of it belongs to a prompt.

use tandem_domain::{AgentReport, AgentState, ModeRequest, Transition};
use tandem_ports::{AgentError, AgentSession, Change, Write};

use super::session::SessionTask;
use crate::redact::Redactor;
use crate::{ServiceError, retry_on_conflict};

/// How many mode requests one look at the state passes on at most (each a
/// round trip to the agent); the next look takes the rest.
const MODE_REQUESTS_PER_LOOK: usize = 8;

impl SessionTask<'_> {
    /// Records an agent's start: its id on the session, `agent.started`, and
    /// what it offers (as far as it said yet).
    pub(super) async fn record_start(
        &mut self,
        agent: &dyn AgentSession,
        report: AgentReport,
    ) -> Result<(), ServiceError> {
        let redactor = &self.shared.config.redactor;
        let report = redact_report(redactor, report);
        let mut how = agent.started().clone();
        how.resume_error = how.resume_error.map(|error| redactor.redact_text(&error).0);
        retry_on_conflict!({
            let store = &self.shared.tandem.store;
            let read = async {
                let session = store.session(self.session_id).await?;
                let previous = store.agent_state(self.session_id).await?;
                Ok((session, previous))
            };
            match read.await.map_err(ServiceError::Store) {
                Ok((session, previous)) => {
                    let now = self.shared.tandem.now();
                    let started = AgentState::started(
                        self.session_id,
                        previous.as_ref(),
                        how.clone(),
                        &report,
                        now,
                    );
                    let id = agent.agent_session_id();
                    let mut change = Change::new(self.session_id);
                    if session.agent_session_id.as_deref() != Some(id) {
                        change =
                            change.write(Write::UpdateSession(session.attach_agent(id.to_owned())));
                    }
                    let write = if previous.is_some() {
                        Write::UpdateAgentState(started.state)
                    } else {
                        Write::InsertAgentState(started.state)
                    };
                    self.commit(change.write(write).events(started.events))
                        .await
                        .map(drop)
                }
                Err(error) => Err(error),
            }
        })
    }

    /// Records what the agent said about its session since the last look: an
    /// event for whatever changed.
    pub(super) async fn record_reports(&mut self) {
        let Some(reports) = self.reports.as_mut() else {
            return;
        };
        let report = redact_report(
            &self.shared.config.redactor,
            reports.borrow_and_update().clone(),
        );
        let recorded = self
            .change_agent_state(|state, now| state.observe(&report, now))
            .await;
        if let Err(error) = recorded {
            tracing::warn!(session_id = %self.session_id, %error, "recording the agent's report failed");
        }
    }

    /// Passes the host's pending mode requests on to the idle agent.
    pub(super) async fn apply_mode_requests(&mut self) {
        let Some(agent) = self.agent.take() else {
            return;
        };
        for _ in 0..MODE_REQUESTS_PER_LOOK {
            let pending = match self.shared.tandem.store.agent_state(self.session_id).await {
                Ok(state) => state.and_then(|state| state.mode_request),
                Err(error) => {
                    tracing::warn!(session_id = %self.session_id, %error, "reading the agent state failed");
                    None
                }
            };
            let Some(request) = pending else {
                break;
            };
            let result = agent.set_mode(&request.mode_id).await;
            if self.record_mode(&request, result).await.is_err() {
                break;
            }
        }
        self.agent = Some(agent);
    }

    /// Records how the agent took a mode request: switched, or refused.
    pub(super) async fn record_mode(
        &mut self,
        request: &ModeRequest,
        result: Result<(), AgentError>,
    ) -> Result<(), ServiceError> {
        if let Err(error) = &result {
            tracing::warn!(session_id = %self.session_id, kind = error.kind(), "the agent refused a mode switch");
        }
        let refusal = match &result {
            Ok(()) => String::new(),
            Err(error) => {
                self.shared
                    .config
                    .redactor
                    .redact_text(&error.to_string())
                    .0
            }
        };
        let recorded = self
            .change_agent_state(|state, now| {
                Some(match &result {
                    Ok(()) => state.mode_switched(request, now),
                    Err(_) => state.mode_refused(request, &refusal, now),
                })
            })
            .await;
        if let Err(error) = &recorded {
            tracing::warn!(session_id = %self.session_id, %error, "recording a mode switch failed");
        }
        recorded
    }

    /// Changes the agent state with `transition` (nothing when it gives
    /// `None`, or when no agent ever started), retried from a fresh read
    /// after a lost race.
    async fn change_agent_state<F>(&mut self, transition: F) -> Result<(), ServiceError>
    where
        F: Fn(&AgentState, chrono::DateTime<chrono::Utc>) -> Option<Transition<AgentState>>,
    {
        retry_on_conflict!({
            let state = self
                .shared
                .tandem
                .store
                .agent_state(self.session_id)
                .await
                .map_err(ServiceError::Store);
            match state {
                Ok(Some(state)) => match transition(&state, self.shared.tandem.now()) {
                    Some(changed) => {
                        let change = Change::new(self.session_id)
                            .write(Write::UpdateAgentState(changed.state))
                            .events(changed.events);
                        self.commit(change).await.map(drop)
                    }
                    None => Ok(()),
                },
                Ok(None) => Ok(()),
                Err(error) => Err(error),
            }
        })
    }

    /// Cleans up the session's own workspace once the session has ended, as its
    /// profile says, and records what became of it.
    pub(super) async fn clean_up_workspace(&mut self) {
        let store = &self.shared.tandem.store;
        let (state, session) = match (
            store.agent_state(self.session_id).await,
            store.session(self.session_id).await,
        ) {
            (Ok(Some(state)), Ok(session)) => (state, session),
            (Ok(None), _) => return,
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(session_id = %self.session_id, %error, "reading the agent state failed");
                return;
            }
        };
        let Some(workspace) = state.workspace.filter(tandem_domain::Workspace::is_own) else {
            return;
        };
        if state.workspace_cleanup.is_some() {
            return;
        }
        let cleanup = if let Some(executor) = self.shared.agents.executor(&session.agent_profile) {
            executor
                .release_workspace(&session.agent_profile, self.session_id, &workspace)
                .await
        } else {
            tracing::warn!(session_id = %self.session_id, profile = %session.agent_profile, "the session's agent profile is gone; keeping its workspace");
            tandem_domain::WorkspaceCleanup::Kept
        };
        if let Err(error) = store
            .record_workspace_cleanup(self.session_id, cleanup)
            .await
        {
            tracing::warn!(session_id = %self.session_id, %error, "recording a workspace cleanup failed");
        }
    }
}

/// What the agent said about its session, with every secret in it redacted
/// (commands, modes and titles come from the agent like its output does).
fn redact_report(redactor: &Redactor, mut report: AgentReport) -> AgentReport {
    let text = |value: &mut String| *value = redactor.redact_text(value).0;
    for command in report.commands.iter_mut().flatten() {
        text(&mut command.name);
        text(&mut command.description);
        command.input_hint.iter_mut().for_each(text);
    }
    for mode in report.modes.iter_mut().flatten() {
        text(&mut mode.name);
        mode.description.iter_mut().for_each(text);
    }
    report.title.iter_mut().for_each(text);
    report
}

#[cfg(test)]
mod tests {
    use tandem_domain::{AgentCommand, AgentMode, AgentModeId};

    use super::*;

    #[test]
    fn what_the_agent_says_about_its_session_is_redacted() {
        // Built here, so that no scanner flags this file.
        let key = ["AKIA", "QYLPMN5HHHFPZ7QX"].concat();
        let said = |text: &str| format!("uses {text} now");
        let report = AgentReport {
            commands: Some(vec![AgentCommand {
                name: "deploy".to_owned(),
                description: said(&key),
                input_hint: Some(said(&key)),
            }]),
            modes: Some(vec![AgentMode {
                id: AgentModeId::parse("plan").expect("a mode id"),
                name: said(&key),
                description: Some(said(&key)),
            }]),
            current_mode: None,
            title: Some(said(&key)),
        };
        let redacted = redact_report(&Redactor::builtin(), report);
        let shown = format!("{redacted:?}");
        assert!(!shown.contains(&key), "{shown}");
        assert_eq!(
            redacted.title.as_deref(),
            Some("uses [REDACTED:aws_access_key] now")
        );
        assert_eq!(redacted.commands.expect("commands")[0].name, "deploy");
    }
}
