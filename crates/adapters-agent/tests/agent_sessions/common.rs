//! Helpers shared by the tests: executors over the echo agent, prompts run to
//! their end.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tandem_agent::{AcpExecutor, AcpProfile};
use tandem_domain::{
    AgentOutputKind, AgentProfileName, AgentReport, PromptText, SessionId, StopReason, TextLimits,
};
use tandem_ports::{AgentError, AgentExecutor, AgentSession, AgentStart, AgentUpdate, Resume};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// The longest any single step may take before it counts as hung.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

pub(crate) const ECHO: &str = env!("CARGO_BIN_EXE_tandem-echo-agent");

pub(crate) fn profile_name() -> AgentProfileName {
    AgentProfileName::parse("echo").unwrap()
}

/// The echo agent with these arguments, saving its sessions under `state`.
pub(crate) fn echo(state: &Path, args: &[&str]) -> AcpProfile {
    let mut profile = AcpProfile::new(ECHO);
    profile.args = args.iter().map(|arg| (*arg).to_owned()).collect();
    profile.args.push("--state-dir".to_owned());
    profile.args.push(state.display().to_string());
    profile
}

pub(crate) fn executor(profile: AcpProfile) -> AcpExecutor {
    AcpExecutor::new(BTreeMap::from([(profile_name(), profile)]))
}

pub(crate) fn new_session() -> SessionId {
    SessionId::from_uuid(uuid::Uuid::now_v7())
}

/// Starts an agent for `session_id`, resuming `resume` if given.
pub(crate) async fn try_start(
    executor: &AcpExecutor,
    session_id: SessionId,
    resume: Option<Resume>,
) -> Result<Box<dyn AgentSession>, AgentError> {
    timeout(
        PATIENCE,
        executor.start(AgentStart {
            session_id,
            profile: profile_name(),
            resume,
        }),
    )
    .await
    .expect("the agent answered in time")
}

pub(crate) async fn start(
    executor: &AcpExecutor,
    session_id: SessionId,
    resume: Option<Resume>,
) -> Box<dyn AgentSession> {
    try_start(executor, session_id, resume)
        .await
        .expect("the agent started")
}

/// Runs a prompt to its end: how it ended and its message text.
pub(crate) async fn run(session: &dyn AgentSession, prompt: &str) -> (StopReason, String) {
    let prompt = PromptText::parse(prompt, &TextLimits::DEFAULT).unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let collect = async {
        let mut text = String::new();
        while let Some(update) = rx.recv().await {
            match update {
                AgentUpdate::Output {
                    kind: AgentOutputKind::Message,
                    text: Some(chunk),
                    ..
                } => text.push_str(&chunk),
                AgentUpdate::Output { kind, raw, .. } => assert!(
                    !matches!(
                        raw["sessionUpdate"].as_str(),
                        Some(
                            "available_commands_update"
                                | "current_mode_update"
                                | "session_info_update"
                        )
                    ),
                    "a session-level update reached the prompt as {kind:?}: {raw}"
                ),
                AgentUpdate::PermissionRequested { .. } => panic!("no permission was expected"),
            }
        }
        text
    };
    let (result, text) = timeout(PATIENCE, async {
        tokio::join!(session.prompt(&prompt, tx), collect)
    })
    .await
    .expect("the prompt ended in time");
    (result.expect("the prompt ran"), text)
}

/// What the agent has reported once `done` holds for it.
pub(crate) async fn reported(
    session: &dyn AgentSession,
    done: impl Fn(&AgentReport) -> bool,
) -> AgentReport {
    let mut reports = session.reports();
    timeout(PATIENCE, reports.wait_for(|report| done(report)))
        .await
        .expect("the agent reported in time")
        .expect("the agent's reports go on")
        .clone()
}

pub(crate) async fn stop(session: Box<dyn AgentSession>) {
    timeout(PATIENCE, session.stop())
        .await
        .expect("the agent stopped in time");
}
