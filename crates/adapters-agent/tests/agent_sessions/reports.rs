//! What the agent says about its session reaches its reports, never a prompt.

use tandem_domain::{AgentModeId, StopReason};
use tandem_ports::AgentError;

use crate::common::{echo, executor, new_session, reported, run, start, stop};

fn mode(id: &str) -> AgentModeId {
    AgentModeId::parse(id).unwrap()
}

#[tokio::test]
async fn commands_modes_and_title_are_reported_apart_from_prompts() {
    let state = tempfile::tempdir().unwrap();
    let executor = executor(echo(state.path(), &[]));
    let session = start(&executor, new_session(), None).await;

    // The modes come with the answer to `session/new`, the commands after it.
    let report = reported(session.as_ref(), |report| report.commands.is_some()).await;
    let modes: Vec<&str> = report
        .modes
        .as_ref()
        .expect("modes")
        .iter()
        .map(|mode| mode.id.as_str())
        .collect();
    assert_eq!(modes, ["echo", "shout"]);
    assert_eq!(report.current_mode, Some(mode("echo")));
    let commands = report.commands.expect("commands");
    let slow = commands.iter().find(|c| c.name == "slow").expect("/slow");
    assert_eq!(slow.input_hint.as_deref(), Some("milliseconds"));
    let recall = commands
        .iter()
        .find(|c| c.name == "recall")
        .expect("/recall");
    assert_eq!(recall.input_hint, None);
    assert_eq!(report.title, None, "no title before a turn");

    let (reason, text) = run(session.as_ref(), "Fix the flaky test\nplease").await;
    assert_eq!(reason, StopReason::EndTurn);
    assert_eq!(text, "Fix the flaky test\nplease", "the echo, and only it");
    let report = reported(session.as_ref(), |report| report.title.is_some()).await;
    assert_eq!(report.title.as_deref(), Some("Echo: Fix the flaky test"));
    stop(session).await;
}

#[tokio::test]
async fn the_host_switches_the_mode_and_the_agent_can_switch_itself() {
    let state = tempfile::tempdir().unwrap();
    let executor = executor(echo(state.path(), &[]));
    let session = start(&executor, new_session(), None).await;

    session.set_mode(&mode("shout")).await.expect("switched");
    assert_eq!(
        session.reports().borrow().current_mode,
        Some(mode("shout")),
        "the report shows the switch as soon as it is made"
    );
    let (_, text) = run(session.as_ref(), "quiet please").await;
    assert_eq!(text, "QUIET PLEASE");

    let refused = session.set_mode(&mode("yell")).await;
    assert!(
        matches!(&refused, Err(AgentError::Protocol(message)) if message.contains("unknown mode")),
        "{refused:?}"
    );

    let (_, text) = run(session.as_ref(), "/mode echo\nback to normal").await;
    assert_eq!(text, "/mode echo\nback to normal");
    let report = reported(session.as_ref(), |report| {
        report.current_mode == Some(mode("echo"))
    })
    .await;
    assert_eq!(report.current_mode, Some(mode("echo")));
    stop(session).await;
}
