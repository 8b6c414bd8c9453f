//! A later agent of a session resumes the conversation with `session/load`
//! where the agent can, and starts a new one (saying why) where it cannot.

use tandem_domain::{Resumption, StopReason};
use tandem_ports::Resume;

use crate::common::{echo, executor, new_session, reported, run, start, stop};

#[tokio::test]
async fn a_loaded_conversation_goes_on_where_it_was() {
    let state = tempfile::tempdir().unwrap();
    let executor = executor(echo(state.path(), &[]));
    let session_id = new_session();
    let first = start(&executor, session_id, None).await;
    assert_eq!(first.started().resumption, Resumption::New);
    assert!(first.started().load_session);
    first
        .set_mode(&tandem_domain::AgentModeId::parse("shout").unwrap())
        .await
        .expect("switched");
    run(first.as_ref(), "remember the milk").await;
    run(first.as_ref(), "and the eggs").await;
    let id = first.agent_session_id().to_owned();
    let workspace = first.started().workspace.clone();
    stop(first).await;

    let second = start(
        &executor,
        session_id,
        Some(Resume {
            agent_session_id: id.clone(),
            workspace,
        }),
    )
    .await;
    assert_eq!(second.started().resumption, Resumption::Loaded);
    assert_eq!(second.agent_session_id(), id);
    assert_eq!(second.started().resume_error, None);
    // The mode comes back with the loaded session; the replayed history went
    // nowhere (the prompt below sees only its own output).
    let report = reported(second.as_ref(), |report| report.commands.is_some()).await;
    assert_eq!(
        report.current_mode.map(|m| m.to_string()).as_deref(),
        Some("shout")
    );
    let (reason, text) = run(second.as_ref(), "/recall\nwhat else").await;
    assert_eq!(reason, StopReason::EndTurn);
    assert_eq!(
        text, "previously: remember the milk | and the eggs\n/RECALL\nWHAT ELSE",
        "the agent remembers the conversation (and still shouts)"
    );
    stop(second).await;
}

#[tokio::test]
async fn an_agent_that_cannot_load_starts_a_new_conversation_and_says_why() {
    let state = tempfile::tempdir().unwrap();
    let session_id = new_session();

    let cannot = executor(echo(state.path(), &["--no-load-session"]));
    let agent = start(
        &cannot,
        session_id,
        Some(Resume {
            agent_session_id: "echo-earlier".to_owned(),
            workspace: None,
        }),
    )
    .await;
    assert_eq!(agent.started().resumption, Resumption::Fresh);
    assert!(!agent.started().load_session);
    assert_eq!(agent.started().resume_error, None);
    assert_ne!(agent.agent_session_id(), "echo-earlier");
    let (_, text) = run(agent.as_ref(), "/recall").await;
    assert_eq!(text, "previously: nothing\n/recall");
    stop(agent).await;

    let forgot = executor(echo(state.path(), &[]));
    let agent = start(
        &forgot,
        session_id,
        Some(Resume {
            agent_session_id: "echo-never-saved".to_owned(),
            workspace: None,
        }),
    )
    .await;
    assert_eq!(agent.started().resumption, Resumption::Fresh);
    let why = agent.started().resume_error.clone().expect("a reason");
    assert!(why.contains("unknown session echo-never-saved"), "{why}");
    stop(agent).await;
}
