//! Tandem's side of the ACP connection: the `agent-client-protocol` client driven
//! over the agent's stdio, routing `session/update` notifications and
//! `session/request_permission` requests to the prompt that is running, and the
//! agent's session-level updates (commands, mode, title) to its reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{RequestPermissionOutcome, RequestPermissionResponse};
use agent_client_protocol::{
    Agent, ByteStreams, Client, Error, Handled, UntypedMessage, is_connection_terminated,
    is_incoming_transport_closed,
};
use tandem_domain::AgentReport;
use tandem_ports::{AgentError, AgentUpdate};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

use super::update;

const SESSION_UPDATE: &str = "session/update";
const REQUEST_PERMISSION: &str = "session/request_permission";
/// How long an update waits for room in the prompt's channel once the prompt is
/// cancelled; a reader that stopped reading must not keep the agent's answer from
/// arriving.
const READ_GRACE_AFTER_CANCEL: Duration = Duration::from_secs(2);

/// The prompt turn in progress: where its updates go, and the switch that answers
/// its open permission requests with `cancelled` once it is cancelled.
#[derive(Debug, Clone)]
pub(super) struct Turn {
    updates: mpsc::Sender<AgentUpdate>,
    cancelled: CancellationToken,
    /// Set once an update was dropped because nobody read it after the cancel.
    abandoned: Arc<AtomicBool>,
}

impl Turn {
    pub(super) fn new(updates: mpsc::Sender<AgentUpdate>) -> Self {
        Self {
            updates,
            cancelled: CancellationToken::new(),
            abandoned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Answers open permission requests `cancelled` and stops waiting for a
    /// reader that may have stopped reading.
    pub(super) fn cancel(&self) {
        self.cancelled.cancel();
    }

    /// Hands an update to the prompt's reader, waiting for room: nothing is
    /// dropped while the prompt runs. After a cancel, a reader that leaves the
    /// channel full for `READ_GRACE_AFTER_CANCEL` is taken to have stopped reading,
    /// and the rest of the turn's updates are dropped. `false` if the update was
    /// not delivered.
    async fn deliver(&self, update: AgentUpdate) -> bool {
        if self.abandoned.load(Ordering::Relaxed) {
            return self.updates.try_send(update).is_ok();
        }
        let grace_over = async {
            self.cancelled.cancelled().await;
            tokio::time::sleep(READ_GRACE_AFTER_CANCEL).await;
        };
        tokio::select! {
            biased;
            sent = self.updates.send(update) => sent.is_ok(),
            () = grace_over => {
                self.abandoned.store(true, Ordering::Relaxed);
                tracing::debug!("Dropped agent updates nobody read after the prompt was cancelled.");
                false
            }
        }
    }
}

/// The turn in progress, if any, shared with the connection's handlers.
#[derive(Debug, Default)]
pub(super) struct TurnSlot(Mutex<Option<Turn>>);

impl TurnSlot {
    pub(super) fn current(&self) -> Option<Turn> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set(&self, turn: Option<Turn>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = turn;
    }
}

/// A live ACP connection to an agent process.
#[derive(Debug)]
pub(super) struct Connection {
    cx: ConnectionTo<Agent>,
    turn: Arc<TurnSlot>,
    /// What the agent has said about its session so far.
    reports: Arc<watch::Sender<AgentReport>>,
    driver: JoinHandle<()>,
}

impl Connection {
    /// Starts the ACP client over the agent's stdio.
    pub(super) async fn open(stdin: ChildStdin, stdout: ChildStdout) -> Result<Self, AgentError> {
        let turn = Arc::new(TurnSlot::default());
        let reports = Arc::new(watch::Sender::new(AgentReport::default()));
        let on_update = Arc::clone(&turn);
        let on_report = Arc::clone(&reports);
        let on_request = Arc::clone(&turn);
        let transport = ByteStreams::new(stdin.compat_write(), stdout.compat());
        let (cx_tx, cx_rx) = oneshot::channel();
        let builder = Client
            .v1()
            .name("tandem")
            .on_receive_notification(
                async move |notification: UntypedMessage, cx: ConnectionTo<Agent>| {
                    if notification.method != SESSION_UPDATE {
                        return Ok(Handled::No {
                            message: (notification, cx),
                            retry: false,
                        });
                    }
                    forward_update(&on_update, &on_report, notification.params).await;
                    Ok(Handled::Yes)
                },
                agent_client_protocol::on_receive_notification!(),
            )
            .on_receive_request(
                async move |request: UntypedMessage, responder, cx: ConnectionTo<Agent>| {
                    if request.method != REQUEST_PERMISSION {
                        return Ok(Handled::No {
                            message: (request, responder),
                            retry: false,
                        });
                    }
                    ask_permission(&on_request, &request.params, responder, &cx).await?;
                    Ok(Handled::Yes)
                },
                agent_client_protocol::on_receive_request!(),
            );
        let driver = tokio::spawn(async move {
            let served = builder
                .connect_with(transport, async move |cx: ConnectionTo<Agent>| {
                    let _ = cx_tx.send(cx.clone());
                    cx.incoming_closed().await;
                    Ok(())
                })
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "The ACP connection to an agent ended with an error.");
            }
        });
        let cx = cx_rx.await.map_err(|_| {
            AgentError::Unavailable("the ACP connection ended before it started".to_owned())
        })?;
        Ok(Self {
            cx,
            turn,
            reports,
            driver,
        })
    }

    /// The handle to send requests and notifications to the agent.
    pub(super) fn cx(&self) -> &ConnectionTo<Agent> {
        &self.cx
    }

    /// The turn in progress, shared with the handlers.
    pub(super) fn turn(&self) -> &TurnSlot {
        &self.turn
    }

    /// What the agent has said about its session so far.
    pub(super) fn reports(&self) -> &watch::Sender<AgentReport> {
        &self.reports
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Whether a failed request means the agent is gone (its output ended or the
/// connection broke), rather than an error the agent answered.
pub(super) fn is_disconnect(error: &Error) -> bool {
    is_incoming_transport_closed(error) || is_connection_terminated(error)
}

/// An agent's error answer as one line of text.
pub(super) fn describe(error: &Error) -> String {
    let mut text = format!("{} (code {})", error.message, error.code);
    if let Some(data) = &error.data {
        text.push_str(": ");
        match data.as_str() {
            Some(data) => text.push_str(data),
            None => text.push_str(&data.to_string()),
        }
    }
    text
}

/// Hands a `session/update` on: session-level state to the reports (at once,
/// whether a prompt runs or not), anything else to the running prompt. The
/// dispatch loop waits for room in the prompt's channel, so updates keep their
/// order, none is dropped, and all of them are delivered before the prompt's
/// answer is. Output outside a prompt (what an agent replays while it loads a
/// conversation) is nobody's and is dropped.
async fn forward_update(
    slot: &TurnSlot,
    reports: &watch::Sender<AgentReport>,
    mut params: serde_json::Value,
) {
    let raw = params
        .get_mut("update")
        .map(serde_json::Value::take)
        .unwrap_or(params);
    match update::route(&raw) {
        update::Route::Session(state) => {
            reports.send_modify(|report| state.apply_to(report));
        }
        update::Route::Dropped => {}
        update::Route::Prompt => {
            if let Some(turn) = slot.current() {
                turn.deliver(update::output(raw)).await;
            } else {
                tracing::debug!("Ignored an agent update that arrived outside a prompt.");
            }
        }
    }
}

/// Passes a `session/request_permission` to the running prompt and answers the
/// agent with what comes back: a dropped reply, a cancelled prompt or no prompt at
/// all answer `cancelled`. The wait runs outside the dispatch loop so the agent's
/// other messages keep flowing.
async fn ask_permission(
    slot: &TurnSlot,
    params: &serde_json::Value,
    responder: agent_client_protocol::v1::Responder,
    cx: &ConnectionTo<Agent>,
) -> Result<(), Error> {
    let (tool_call, options) = match update::permission_request(params) {
        Ok(parts) => parts,
        Err(error) => {
            return responder.respond_with_error(Error::invalid_params().data(error.to_string()));
        }
    };
    let Some(turn) = slot.current() else {
        return respond_permission(responder, RequestPermissionOutcome::Cancelled);
    };
    let (reply, answer) = oneshot::channel();
    let asked = AgentUpdate::PermissionRequested {
        tool_call,
        options,
        reply,
    };
    if !turn.deliver(asked).await {
        return respond_permission(responder, RequestPermissionOutcome::Cancelled);
    }
    cx.spawn(async move {
        let outcome = tokio::select! {
            answer = answer => answer.map_or(RequestPermissionOutcome::Cancelled, update::permission_outcome),
            () = turn.cancelled.cancelled() => RequestPermissionOutcome::Cancelled,
        };
        respond_permission(responder, outcome)
    })
}

fn respond_permission(
    responder: agent_client_protocol::v1::Responder,
    outcome: RequestPermissionOutcome,
) -> Result<(), Error> {
    let response = serde_json::to_value(RequestPermissionResponse::new(outcome))?;
    responder.respond(response)
}
