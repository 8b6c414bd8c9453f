//! One conversation with an OpenAI-compatible endpoint.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::StreamExt;
use serde::Serialize;
use tandem_domain::{
    AgentModeId, AgentOutputKind, AgentReport, AgentStarted, PromptText, Resumption, StopReason,
};
use tandem_ports::{AgentError, AgentSession, AgentUpdate};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::OpenAiProfile;
use super::stream::{self, Line, Lines};

/// The most of an error body quoted in an error message, in bytes.
const ERROR_BODY_BYTES: usize = 1024;

#[derive(Debug, Clone, Serialize)]
struct ChatMessage {
    role: &'static str,
    content: String,
}

#[derive(Debug, Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage>,
    stream: bool,
}

#[derive(Debug)]
pub(super) struct OpenAiSession {
    /// A new conversation every time (it lives in this process only), in no
    /// directory.
    started: AgentStarted,
    /// An endpoint reports nothing about its session.
    reports: watch::Sender<AgentReport>,
    profile: Arc<OpenAiProfile>,
    client: reqwest::Client,
    /// The user and assistant turns so far (the system prompt is added per request).
    history: Mutex<Vec<ChatMessage>>,
    /// Held while a prompt runs: prompts run one at a time.
    running: tokio::sync::Mutex<()>,
    /// Cancels the prompt in progress.
    turn: Mutex<Option<CancellationToken>>,
}

/// How a streamed answer ended.
enum Ended {
    Finished(StopReason),
    Cancelled,
}

impl OpenAiSession {
    /// A conversation; `resumed` when it replaces an earlier one of the session,
    /// which it cannot continue.
    pub(super) fn new(
        id: String,
        resumed: bool,
        profile: Arc<OpenAiProfile>,
        client: reqwest::Client,
    ) -> Self {
        Self {
            started: AgentStarted {
                agent_session_id: id,
                resumption: if resumed {
                    Resumption::Fresh
                } else {
                    Resumption::New
                },
                load_session: false,
                workspace: None,
                resume_error: None,
            },
            reports: watch::Sender::new(AgentReport::default()),
            profile,
            client,
            history: Mutex::new(Vec::new()),
            running: tokio::sync::Mutex::new(()),
            turn: Mutex::new(None),
        }
    }

    fn messages_with(&self, prompt: &str) -> Vec<ChatMessage> {
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let system = self.profile.system_prompt.iter().map(|text| ChatMessage {
            role: "system",
            content: text.clone(),
        });
        system
            .chain(history.iter().cloned())
            .chain([ChatMessage {
                role: "user",
                content: prompt.to_owned(),
            }])
            .collect()
    }

    fn remember(&self, prompt: &str, answer: String) {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.push(ChatMessage {
            role: "user",
            content: prompt.to_owned(),
        });
        history.push(ChatMessage {
            role: "assistant",
            content: answer,
        });
    }

    fn set_turn(&self, turn: Option<CancellationToken>) {
        *self.turn.lock().unwrap_or_else(PoisonError::into_inner) = turn;
    }

    /// Sends the request and streams the answer; `answer` collects its text.
    async fn converse(
        &self,
        prompt: &str,
        updates: &mpsc::Sender<AgentUpdate>,
        cancelled: &CancellationToken,
        answer: &mut String,
    ) -> Result<Ended, AgentError> {
        let body = ChatRequest {
            model: &self.profile.model,
            messages: self.messages_with(prompt),
            stream: true,
        };
        let mut request = self
            .client
            .post(self.profile.completions_url())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&body);
        if let Some(key) = &self.profile.api_key {
            request = request.bearer_auth(key);
        }
        let response = tokio::select! {
            response = request.send() => response.map_err(|error| unreachable(&self.profile, &error))?,
            () = cancelled.cancelled() => return Ok(Ended::Cancelled),
        };
        let status = response.status();
        if !status.is_success() {
            let detail = error_detail(response).await;
            return Err(AgentError::Protocol(format!(
                "the endpoint answered {status}: {detail}"
            )));
        }
        let mut body = response.bytes_stream();
        let mut lines = Lines::default();
        let mut finish_reason = None;
        loop {
            let read = tokio::select! {
                read = body.next() => read,
                () = cancelled.cancelled() => return Ok(Ended::Cancelled),
            };
            let (batch, at_end) = match read {
                Some(Ok(bytes)) => (lines.push(&bytes), false),
                Some(Err(error)) => {
                    return Err(AgentError::Unavailable(format!(
                        "the answer stream from {} broke: {error}",
                        self.profile.base_url
                    )));
                }
                None => (lines.finish().into_iter().collect(), true),
            };
            for line in batch {
                match stream::parse_line(&line) {
                    Line::Chunk(chunk) => {
                        if chunk.finish_reason.is_some() {
                            finish_reason.clone_from(&chunk.finish_reason);
                        }
                        let outputs = [
                            (AgentOutputKind::Thought, chunk.thought),
                            (AgentOutputKind::Message, chunk.message),
                        ];
                        for (kind, text) in outputs {
                            let Some(text) = text else { continue };
                            if kind == AgentOutputKind::Message {
                                answer.push_str(&text);
                            }
                            let output = AgentUpdate::Output {
                                kind,
                                text: Some(text),
                                raw: chunk.raw.clone(),
                            };
                            if !deliver(updates, output, cancelled).await {
                                return Ok(Ended::Cancelled);
                            }
                        }
                    }
                    Line::Done => {
                        return Ok(Ended::Finished(stream::stop_reason(
                            finish_reason.as_deref(),
                        )));
                    }
                    Line::Error(message) => {
                        return Err(AgentError::Protocol(format!(
                            "the endpoint reported an error: {message}"
                        )));
                    }
                    Line::Nothing => {}
                }
            }
            if at_end {
                // Without `[DONE]`, a finish reason still says the answer is whole.
                return match finish_reason {
                    Some(reason) => Ok(Ended::Finished(stream::stop_reason(Some(&reason)))),
                    None => Err(AgentError::Protocol(
                        "the answer stream ended before the answer was complete".to_owned(),
                    )),
                };
            }
        }
    }
}

/// Hands an update to the prompt's reader; `false` if the prompt was cancelled
/// meanwhile. A reader that is gone does not stop the answer.
async fn deliver(
    updates: &mpsc::Sender<AgentUpdate>,
    update: AgentUpdate,
    cancelled: &CancellationToken,
) -> bool {
    tokio::select! {
        biased;
        _sent = updates.send(update) => true,
        () = cancelled.cancelled() => false,
    }
}

fn unreachable(profile: &OpenAiProfile, error: &reqwest::Error) -> AgentError {
    AgentError::Unavailable(format!("could not reach {}: {error}", profile.base_url))
}

/// The endpoint's own explanation of an error answer, shortened.
async fn error_detail(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|body| {
            body.pointer("/error/message")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or(text);
    let mut end = message.len().min(ERROR_BODY_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}

/// Clears the turn when the prompt ends, however it ends.
struct ActiveTurn<'a>(&'a OpenAiSession);

impl Drop for ActiveTurn<'_> {
    fn drop(&mut self) {
        self.0.set_turn(None);
    }
}

#[async_trait]
impl AgentSession for OpenAiSession {
    fn agent_session_id(&self) -> &str {
        &self.started.agent_session_id
    }

    fn started(&self) -> &AgentStarted {
        &self.started
    }

    fn reports(&self) -> watch::Receiver<AgentReport> {
        self.reports.subscribe()
    }

    async fn set_mode(&self, _mode: &AgentModeId) -> Result<(), AgentError> {
        Err(AgentError::Protocol(
            "an OpenAI-compatible endpoint offers no modes".to_owned(),
        ))
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
        let cancelled = CancellationToken::new();
        self.set_turn(Some(cancelled.clone()));
        let _active = ActiveTurn(self);
        let mut answer = String::new();
        let ended = self
            .converse(text.as_str(), &updates, &cancelled, &mut answer)
            .await?;
        // A cancelled answer stays in the conversation as far as it got, so the
        // next prompt can refer to it.
        self.remember(text.as_str(), answer);
        Ok(match ended {
            Ended::Finished(reason) => reason,
            Ended::Cancelled => StopReason::Cancelled,
        })
    }

    async fn cancel(&self) -> Result<(), AgentError> {
        if let Some(turn) = self
            .turn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            turn.cancel();
        }
        Ok(())
    }

    /// There is no process: the conversation is simply forgotten.
    async fn stop(self: Box<Self>) {
        self.cancel().await.ok();
    }
}
