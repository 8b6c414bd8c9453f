//! One live ACP agent session: its process, its connection, the prompt in
//! progress.

use std::pin::pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, PromptRequest, SetSessionModeRequest, TextContent,
};
use async_trait::async_trait;
use tandem_domain::{AgentModeId, AgentReport, AgentStarted, PromptText, StopReason};
use tandem_ports::{AgentError, AgentSession, AgentUpdate};
use tokio::sync::{mpsc, watch};

use super::client::{self, Connection, Turn, TurnSlot};
use super::process::AgentProcess;
use super::update;

/// How long the answer to a prompt may trail the agent's exit (an agent may answer
/// and exit at once; the answer is still in the pipe).
const ANSWER_AFTER_EXIT: Duration = Duration::from_millis(200);
/// How long the agent may take to switch its mode.
const SET_MODE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(super) struct AcpSession {
    started: AgentStarted,
    connection: Connection,
    process: AgentProcess,
    /// Held while a prompt runs: prompts run one at a time.
    running: tokio::sync::Mutex<()>,
    /// Why the agent is gone, once it is.
    crashed: Mutex<Option<String>>,
}

impl AcpSession {
    pub(super) fn new(
        started: AgentStarted,
        connection: Connection,
        process: AgentProcess,
    ) -> Self {
        Self {
            started,
            connection,
            process,
            running: tokio::sync::Mutex::new(()),
            crashed: Mutex::new(None),
        }
    }

    fn crash_report(&self) -> Option<String> {
        self.crashed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records that the agent is gone and why.
    async fn crashed(&self) -> AgentError {
        let report = self.process.describe_exit().await;
        // The report quotes the agent's stderr, which may repeat prompt text: it
        // goes to the prompt's error, not to the log.
        tracing::warn!(
            pid = self.process.pid(),
            status = ?self.process.exit_status(),
            "An ACP agent crashed."
        );
        // An agent that closed its connection but lives on is of no more use.
        self.process.kill().await;
        *self.crashed.lock().unwrap_or_else(PoisonError::into_inner) = Some(report.clone());
        AgentError::Crashed(report)
    }
}

/// Clears the turn when the prompt ends, however it ends.
struct ActiveTurn<'a>(&'a TurnSlot);

impl Drop for ActiveTurn<'_> {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

#[async_trait]
impl AgentSession for AcpSession {
    fn agent_session_id(&self) -> &str {
        &self.started.agent_session_id
    }

    fn started(&self) -> &AgentStarted {
        &self.started
    }

    fn reports(&self) -> watch::Receiver<AgentReport> {
        self.connection.reports().subscribe()
    }

    async fn set_mode(&self, mode: &AgentModeId) -> Result<(), AgentError> {
        if let Some(report) = self.crash_report() {
            return Err(AgentError::Crashed(report));
        }
        let request = SetSessionModeRequest::new(
            self.started.agent_session_id.clone(),
            mode.as_str().to_owned(),
        );
        let answer = tokio::select! {
            answer = tokio::time::timeout(
                SET_MODE_TIMEOUT,
                self.connection.cx().send_request(request).block_task(),
            ) => answer,
            _ = self.process.exited() => {
                return Err(AgentError::Crashed("the agent exited".to_owned()));
            }
        };
        match answer {
            Ok(Ok(_)) => {
                self.connection
                    .reports()
                    .send_modify(|report| report.current_mode = Some(mode.clone()));
                Ok(())
            }
            Ok(Err(error)) if client::is_disconnect(&error) => Err(AgentError::Crashed(
                "the agent's connection is closed".to_owned(),
            )),
            Ok(Err(error)) => Err(AgentError::Protocol(client::describe(&error))),
            Err(_elapsed) => Err(AgentError::Protocol(format!(
                "the agent did not switch its mode within {} s",
                SET_MODE_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn prompt(
        &self,
        text: &PromptText,
        updates: mpsc::Sender<AgentUpdate>,
    ) -> Result<StopReason, AgentError> {
        let Ok(_running) = self.running.try_lock() else {
            return Err(AgentError::Protocol(
                "a prompt is already running in this agent session".to_owned(),
            ));
        };
        if let Some(report) = self.crash_report() {
            return Err(AgentError::Crashed(report));
        }
        let slot = self.connection.turn();
        slot.set(Some(Turn::new(updates)));
        let _active = ActiveTurn(slot);
        let request = PromptRequest::new(
            self.started.agent_session_id.clone(),
            vec![ContentBlock::Text(TextContent::new(text.as_str()))],
        );
        let mut answer = pin!(self.connection.cx().send_request(request).block_task());
        let answer = tokio::select! {
            biased;
            answer = &mut answer => answer,
            _ = self.process.exited() => {
                match tokio::time::timeout(ANSWER_AFTER_EXIT, answer).await {
                    Ok(answer) => answer,
                    Err(_elapsed) => return Err(self.crashed().await),
                }
            }
        };
        match answer {
            Ok(response) => update::stop_reason(response.stop_reason).ok_or_else(|| {
                AgentError::Protocol(format!(
                    "the agent ended the turn with an unknown stop reason {:?}",
                    response.stop_reason
                ))
            }),
            Err(error) if client::is_disconnect(&error) => Err(self.crashed().await),
            Err(error) => Err(AgentError::Protocol(client::describe(&error))),
        }
    }

    fn is_alive(&self) -> bool {
        self.crash_report().is_none() && self.process.exit_status().is_none()
    }

    async fn cancel(&self) -> Result<(), AgentError> {
        let Some(turn) = self.connection.turn().current() else {
            return Ok(());
        };
        let sent = self
            .connection
            .cx()
            .send_notification(CancelNotification::new(
                self.started.agent_session_id.clone(),
            ));
        // ACP: once cancelled, open permission requests are answered `cancelled`.
        turn.cancel();
        sent.map_err(|error| {
            if client::is_disconnect(&error) {
                AgentError::Crashed("the agent's connection is closed".to_owned())
            } else {
                AgentError::Protocol(client::describe(&error))
            }
        })
    }

    async fn stop(self: Box<Self>) {
        self.process.kill().await;
        tracing::info!(pid = self.process.pid(), "Stopped an ACP agent.");
    }
}
