//! The `acp` executor against the real `tandem-echo-agent` subprocess, over the
//! real protocol.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tandem_agent::{AcpExecutor, AcpProfile, WorkspaceConfig};
use tandem_domain::{
    AgentOutputKind, AgentProfileName, PermissionOptionKind, PermissionOutcome, PromptText,
    SessionId, StopReason, TextLimits,
};
use tandem_ports::{AgentError, AgentExecutor, AgentSession, AgentStart, AgentUpdate};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// The longest any single step of these tests may take before it counts as hung.
const PATIENCE: Duration = Duration::from_secs(20);

const ECHO: &str = env!("CARGO_BIN_EXE_tandem-echo-agent");

fn profile_name(name: &str) -> AgentProfileName {
    AgentProfileName::parse(name).unwrap()
}

fn executor_with(profile: AcpProfile) -> AcpExecutor {
    AcpExecutor::new(BTreeMap::from([(profile_name("echo"), profile)]))
}

fn echo_executor() -> AcpExecutor {
    executor_with(AcpProfile::new(ECHO))
}

fn start_request(profile: &str) -> AgentStart {
    AgentStart {
        session_id: SessionId::from_uuid(uuid::Uuid::now_v7()),
        profile: profile_name(profile),
        resume: None,
    }
}

async fn start(executor: &AcpExecutor) -> Box<dyn AgentSession> {
    timeout(PATIENCE, executor.start(start_request("echo")))
        .await
        .expect("the agent started in time")
        .expect("the agent started")
}

fn text(raw: &str) -> PromptText {
    PromptText::parse(raw, &TextLimits::DEFAULT).unwrap()
}

/// One piece of output, as the tests look at it.
#[derive(Debug)]
struct Output {
    kind: AgentOutputKind,
    text: Option<String>,
    raw: serde_json::Value,
}

/// Runs a prompt to its end, collecting every output; permission requests are
/// answered by `answer` (`None` drops the reply).
async fn run_answering(
    session: &dyn AgentSession,
    prompt: &str,
    answer: impl Fn(&[tandem_domain::PermissionOption]) -> Option<PermissionOutcome>,
) -> (Result<StopReason, AgentError>, Vec<Output>) {
    let prompt = text(prompt);
    let (tx, mut rx) = mpsc::channel(16);
    let collect = async {
        let mut outputs = Vec::new();
        while let Some(update) = rx.recv().await {
            match update {
                AgentUpdate::Output { kind, text, raw } => outputs.push(Output { kind, text, raw }),
                AgentUpdate::PermissionRequested {
                    tool_call,
                    options,
                    reply,
                } => {
                    assert_eq!(tool_call["toolCallId"], "echo-1");
                    if let Some(outcome) = answer(&options) {
                        reply.send(outcome).unwrap();
                    }
                }
            }
        }
        outputs
    };
    let (result, outputs) = timeout(PATIENCE, async {
        tokio::join!(session.prompt(&prompt, tx), collect)
    })
    .await
    .expect("the prompt ended in time");
    (result, outputs)
}

async fn run(
    session: &dyn AgentSession,
    prompt: &str,
) -> (Result<StopReason, AgentError>, Vec<Output>) {
    run_answering(session, prompt, |_| panic!("no permission was expected")).await
}

fn message_text(outputs: &[Output]) -> String {
    outputs
        .iter()
        .filter(|o| o.kind == AgentOutputKind::Message)
        .map(|o| o.text.as_deref().expect("message chunks carry text"))
        .collect()
}

fn kinds(outputs: &[Output]) -> Vec<AgentOutputKind> {
    outputs.iter().map(|o| o.kind).collect()
}

async fn stop(session: Box<dyn AgentSession>) {
    timeout(PATIENCE, session.stop())
        .await
        .expect("the agent stopped in time");
}

#[tokio::test]
async fn a_prompt_streams_plan_tool_call_and_the_whole_echo_in_order() {
    let executor = echo_executor();
    let session = start(&executor).await;
    assert!(
        session.agent_session_id().starts_with("echo-"),
        "{}",
        session.agent_session_id()
    );
    let prompt = "Hello brave\nnew  world, how are you?";

    let (result, outputs) = run(session.as_ref(), prompt).await;

    assert_eq!(result.unwrap(), StopReason::EndTurn);
    assert_eq!(message_text(&outputs), prompt);
    let words = prompt.split_whitespace().count();
    let mut expected = vec![AgentOutputKind::Plan, AgentOutputKind::ToolCall];
    expected.extend(std::iter::repeat_n(AgentOutputKind::Message, words));
    expected.push(AgentOutputKind::ToolCallUpdate);
    assert_eq!(kinds(&outputs), expected);

    let plan = &outputs[0];
    assert_eq!(plan.raw["sessionUpdate"], "plan");
    assert_eq!(plan.raw["entries"].as_array().unwrap().len(), 2);
    assert_eq!(plan.raw["entries"][0]["content"], "Read the prompt");
    assert_eq!(plan.text, None);
    let call = &outputs[1];
    assert_eq!(call.raw["sessionUpdate"], "tool_call");
    assert_eq!(call.raw["toolCallId"], "echo-1");
    assert_eq!(call.raw["status"], "in_progress");
    let done = outputs.last().unwrap();
    assert_eq!(done.raw["toolCallId"], "echo-1");
    assert_eq!(done.raw["status"], "completed");
    let first_chunk = &outputs[2];
    assert_eq!(first_chunk.raw["sessionUpdate"], "agent_message_chunk");
    assert_eq!(first_chunk.raw["content"]["text"], "Hello ");
    stop(session).await;
}

#[tokio::test]
async fn two_prompts_in_a_row_run_on_one_session() {
    let executor = echo_executor();
    let session = start(&executor).await;

    let (first, first_outputs) = run(session.as_ref(), "first prompt").await;
    let (second, second_outputs) = run(session.as_ref(), "and a second one").await;

    assert_eq!(first.unwrap(), StopReason::EndTurn);
    assert_eq!(message_text(&first_outputs), "first prompt");
    assert_eq!(second.unwrap(), StopReason::EndTurn);
    assert_eq!(message_text(&second_outputs), "and a second one");
    stop(session).await;
}

#[tokio::test]
async fn cancel_stops_a_slow_prompt_promptly() {
    let executor = echo_executor();
    let session = start(&executor).await;
    let prompt = text(&format!("/slow 300\n{}", "word ".repeat(50)));
    let (tx, mut rx) = mpsc::channel(16);

    let watch_and_cancel = async {
        let mut messages = 0;
        let mut cancelled_at = None;
        while let Some(update) = rx.recv().await {
            if let AgentUpdate::Output {
                kind: AgentOutputKind::Message,
                ..
            } = update
            {
                messages += 1;
                if messages == 2 {
                    session.cancel().await.unwrap();
                    cancelled_at = Some(Instant::now());
                }
            }
        }
        (messages, cancelled_at.expect("the prompt was cancelled"))
    };
    let (result, (messages, cancelled_at)) = timeout(PATIENCE, async {
        tokio::join!(session.prompt(&prompt, tx), watch_and_cancel)
    })
    .await
    .expect("the prompt ended in time");

    assert_eq!(result.unwrap(), StopReason::Cancelled);
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "cancelling took {:?}",
        cancelled_at.elapsed()
    );
    assert!(messages < 10, "{messages} chunks arrived after all");
    // The session is still usable after a cancelled prompt.
    let (after, outputs) = run(session.as_ref(), "still here").await;
    assert_eq!(after.unwrap(), StopReason::EndTurn);
    assert_eq!(message_text(&outputs), "still here");
    stop(session).await;
}

#[tokio::test]
async fn a_reader_that_stops_reading_after_cancel_does_not_hang_the_prompt() {
    let executor = echo_executor();
    let session = start(&executor).await;
    let prompt = text(&format!("/slow 5\n{}", "word ".repeat(400)));
    // Room for one update only, and nobody reads after the cancel.
    let (tx, mut rx) = mpsc::channel(1);

    let read_one_then_cancel = async {
        rx.recv().await.expect("a first update");
        session.cancel().await.unwrap();
        rx
    };
    let (result, _still_open) = timeout(PATIENCE, async {
        tokio::join!(session.prompt(&prompt, tx), read_one_then_cancel)
    })
    .await
    .expect("the prompt ended although nobody read its updates");

    assert_eq!(result.unwrap(), StopReason::Cancelled);
    let (after, outputs) = run(session.as_ref(), "next").await;
    assert_eq!(after.unwrap(), StopReason::EndTurn);
    assert_eq!(message_text(&outputs), "next");
    stop(session).await;
}

#[tokio::test]
async fn cancel_without_a_running_prompt_does_nothing() {
    let executor = echo_executor();
    let session = start(&executor).await;
    timeout(PATIENCE, session.cancel()).await.unwrap().unwrap();
    let (result, outputs) = run(session.as_ref(), "fine").await;
    assert_eq!(result.unwrap(), StopReason::EndTurn);
    assert_eq!(message_text(&outputs), "fine");
    stop(session).await;
}

#[tokio::test]
async fn an_agent_error_answer_is_a_protocol_error_and_the_session_lives_on() {
    let executor = echo_executor();
    let session = start(&executor).await;

    let (result, outputs) = run(session.as_ref(), "please\n/fail").await;

    let Err(AgentError::Protocol(message)) = result else {
        panic!("expected a protocol error, got {result:?}");
    };
    assert!(message.contains("told to fail"), "{message}");
    assert_eq!(kinds(&outputs), [AgentOutputKind::Plan]);
    let (after, outputs) = run(session.as_ref(), "again").await;
    assert_eq!(after.unwrap(), StopReason::EndTurn);
    assert_eq!(message_text(&outputs), "again");
    stop(session).await;
}

#[tokio::test]
async fn a_crash_is_reported_with_its_exit_status_and_stderr_and_a_fresh_start_works() {
    let executor = echo_executor();
    let session = start(&executor).await;

    let (result, _outputs) = run(session.as_ref(), "one two three\n/crash").await;

    let Err(AgentError::Crashed(message)) = result else {
        panic!("expected a crash, got {result:?}");
    };
    assert!(message.contains("exit status: 17"), "{message}");
    assert!(message.contains("crashing as told"), "{message}");
    // The crashed session stays unusable, and says so at once.
    let (again, outputs) = run(session.as_ref(), "hello?").await;
    assert!(matches!(again, Err(AgentError::Crashed(_))), "{again:?}");
    assert!(outputs.is_empty());
    stop(session).await;

    let fresh = start(&executor).await;
    let (result, outputs) = run(fresh.as_ref(), "back again").await;
    assert_eq!(result.unwrap(), StopReason::EndTurn);
    assert_eq!(message_text(&outputs), "back again");
    stop(fresh).await;
}

#[tokio::test]
async fn a_permission_answered_allow_lets_the_tool_run() {
    let executor = echo_executor();
    let session = start(&executor).await;

    let (result, outputs) = run_answering(session.as_ref(), "/permission\ndo it", |options| {
        let offered: Vec<_> = options.iter().map(|o| (o.id.as_str(), o.kind)).collect();
        assert_eq!(
            offered,
            [
                ("allow", PermissionOptionKind::AllowOnce),
                ("reject", PermissionOptionKind::RejectOnce),
            ]
        );
        Some(PermissionOutcome::Selected {
            option_id: "allow".to_owned(),
        })
    })
    .await;

    assert_eq!(result.unwrap(), StopReason::EndTurn);
    let thought = outputs
        .iter()
        .find(|o| o.kind == AgentOutputKind::Thought)
        .expect("the agent reported the answer");
    assert_eq!(thought.text.as_deref(), Some("permission: allow"));
    assert!(kinds(&outputs).contains(&AgentOutputKind::ToolCall));
    assert_eq!(message_text(&outputs), "/permission\ndo it");
    stop(session).await;
}

#[tokio::test]
async fn a_dropped_permission_reply_answers_cancelled() {
    let executor = echo_executor();
    let session = start(&executor).await;

    let (result, outputs) = run_answering(session.as_ref(), "/permission\nmaybe", |_| None).await;

    assert_eq!(result.unwrap(), StopReason::EndTurn);
    let thought = outputs
        .iter()
        .find(|o| o.kind == AgentOutputKind::Thought)
        .expect("the agent reported the answer");
    assert_eq!(thought.text.as_deref(), Some("permission: cancelled"));
    assert!(!kinds(&outputs).contains(&AgentOutputKind::ToolCall));
    assert_eq!(message_text(&outputs), "/permission\nmaybe");
    stop(session).await;
}

#[tokio::test]
async fn cancelling_while_a_permission_is_open_ends_the_prompt() {
    let executor = echo_executor();
    let session = start(&executor).await;
    let prompt = text("/permission\nwait for me");
    let (tx, mut rx) = mpsc::channel(16);

    let cancel_when_asked = async {
        let mut held_reply = None;
        while let Some(update) = rx.recv().await {
            if let AgentUpdate::PermissionRequested { reply, .. } = update {
                // Nobody answers; the prompt is cancelled instead.
                held_reply = Some(reply);
                session.cancel().await.unwrap();
            }
        }
        held_reply.is_some()
    };
    let (result, asked) = timeout(PATIENCE, async {
        tokio::join!(session.prompt(&prompt, tx), cancel_when_asked)
    })
    .await
    .expect("the prompt ended in time");

    assert!(asked);
    assert_eq!(result.unwrap(), StopReason::Cancelled);
    stop(session).await;
}

#[tokio::test]
async fn a_burst_of_5000_chunks_arrives_complete_and_in_order() {
    let executor = echo_executor();
    let session = start(&executor).await;

    let (result, outputs) = run(session.as_ref(), "/burst 5000").await;

    assert_eq!(result.unwrap(), StopReason::EndTurn);
    let chunks = outputs
        .iter()
        .filter(|o| o.kind == AgentOutputKind::Message)
        .count();
    assert_eq!(chunks, 5000);
    let expected = (0..5000).fold(String::new(), |mut text, i| {
        text.push_str(&i.to_string());
        text.push(' ');
        text
    });
    assert_eq!(message_text(&outputs), expected);
    stop(session).await;
}

#[tokio::test]
async fn a_paced_burst_spreads_its_chunks_over_time_and_loses_none() {
    let executor = echo_executor();
    let session = start(&executor).await;

    // 300 chunks at 1 000 a second: the last is due 300 ms after the first.
    let began = Instant::now();
    let (result, outputs) = run(session.as_ref(), "/burst 300\n/rate 1000").await;
    let took = began.elapsed();

    assert_eq!(result.unwrap(), StopReason::EndTurn);
    assert!(
        took >= Duration::from_millis(290),
        "paced at 1 000 chunks/s, 300 chunks took only {took:?}"
    );
    let expected = (0..300).fold(String::new(), |mut text, i| {
        text.push_str(&i.to_string());
        text.push(' ');
        text
    });
    assert_eq!(message_text(&outputs), expected);
    stop(session).await;
}

/// Whether the process is gone (or a zombie, dead and waiting to be reaped).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

async fn read_pid(path: &Path) -> u32 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(pid) = std::fs::read_to_string(path)
            && let Ok(pid) = pid.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_dead(pid: u32) {
    let deadline = Instant::now() + PATIENCE;
    while !is_dead(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stop_kills_the_agent_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let agent_pid = dir.path().join("agent.pid");
    let child_pid = dir.path().join("child.pid");
    // A wrapper that records its pid, starts a long-lived child of its own, then
    // becomes the echo agent.
    let profile = AcpProfile {
        command: "/bin/sh".into(),
        args: vec![
            "-c".to_owned(),
            r#"echo $$ > "$1"; sleep 600 </dev/null >/dev/null 2>&1 & echo $! > "$2"; exec "$3""#
                .to_owned(),
            "sh".to_owned(),
            agent_pid.display().to_string(),
            child_pid.display().to_string(),
            ECHO.to_owned(),
        ],
        env: BTreeMap::new(),
        workspace: WorkspaceConfig::Shared(Some(dir.path().to_owned())),
        ..AcpProfile::new("")
    };
    let executor = executor_with(profile);
    let session = start(&executor).await;
    let (result, _) = run(session.as_ref(), "alive").await;
    assert_eq!(result.unwrap(), StopReason::EndTurn);
    let agent = read_pid(&agent_pid).await;
    let child = read_pid(&child_pid).await;
    assert!(!is_dead(agent) && !is_dead(child));

    stop(session).await;

    wait_dead(agent).await;
    wait_dead(child).await;
}

#[tokio::test]
async fn profiles_env_and_working_dir_reach_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let profile = AcpProfile {
        command: "/bin/sh".into(),
        args: vec![
            "-c".to_owned(),
            r#"printf '%s|%s' "$TANDEM_TEST_VALUE" "$(pwd)" > seen; exec "$0""#.to_owned(),
            ECHO.to_owned(),
        ],
        env: BTreeMap::from([("TANDEM_TEST_VALUE".to_owned(), "configured".to_owned())]),
        workspace: WorkspaceConfig::Shared(Some(dir.path().to_owned())),
        ..AcpProfile::new("")
    };
    let executor = executor_with(profile);
    let session = start(&executor).await;
    let seen = std::fs::read_to_string(dir.path().join("seen")).unwrap();
    let cwd = dir.path().canonicalize().unwrap();
    assert_eq!(seen, format!("configured|{}", cwd.display()));
    stop(session).await;
}

#[tokio::test]
async fn an_unknown_profile_is_refused() {
    let executor = echo_executor();
    let error = executor.start(start_request("gemini")).await.err().unwrap();
    assert!(
        matches!(&error, AgentError::UnknownProfile(name) if name == "gemini"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_command_that_cannot_start_is_unavailable() {
    let executor = executor_with(AcpProfile::new("/nonexistent/agent"));
    let error = timeout(PATIENCE, executor.start(start_request("echo")))
        .await
        .unwrap()
        .err()
        .unwrap();
    assert!(
        matches!(&error, AgentError::Unavailable(message) if message.contains("/nonexistent/agent")),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_agent_that_exits_during_startup_is_unavailable_with_its_stderr() {
    let profile = AcpProfile {
        command: "/bin/sh".into(),
        args: vec![
            "-c".to_owned(),
            "echo 'no API key configured' >&2; exit 3".to_owned(),
        ],
        env: BTreeMap::new(),
        ..AcpProfile::new("")
    };
    let executor = executor_with(profile);
    let error = timeout(PATIENCE, executor.start(start_request("echo")))
        .await
        .unwrap()
        .err()
        .unwrap();
    let AgentError::Unavailable(message) = &error else {
        panic!("expected unavailable, got {error:?}");
    };
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(message.contains("no API key configured"), "{message}");
}

#[tokio::test]
async fn an_agent_that_dies_between_prompts_is_not_alive() {
    let dir = tempfile::tempdir().unwrap();
    let agent_pid = dir.path().join("agent.pid");
    let profile = AcpProfile {
        command: "/bin/sh".into(),
        args: vec![
            "-c".to_owned(),
            r#"echo $$ > "$1"; exec "$2""#.to_owned(),
            "sh".to_owned(),
            agent_pid.display().to_string(),
            ECHO.to_owned(),
        ],
        ..AcpProfile::new("")
    };
    let session = timeout(
        PATIENCE,
        executor_with(profile).start(start_request("echo")),
    )
    .await
    .unwrap()
    .unwrap();
    let (result, _) = run(session.as_ref(), "hello").await;
    assert_eq!(result.unwrap(), StopReason::EndTurn);
    assert!(session.is_alive());

    let pid = read_pid(&agent_pid).await;
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while session.is_alive() {
        assert!(Instant::now() < deadline, "still alive after being killed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop(session).await;
}

#[tokio::test]
async fn withheld_variables_of_the_server_never_reach_the_agent() {
    // HOME is set for the test process; withholding it stands for the server's
    // DATABASE_URL and TANDEM_* secrets.
    let profile = AcpProfile {
        command: "/bin/sh".into(),
        args: vec![
            "-c".to_owned(),
            r#"echo "home=${HOME:-withheld} given=${GIVEN:-missing}" >&2; exit 3"#.to_owned(),
        ],
        env: BTreeMap::from([("GIVEN".to_owned(), "yes".to_owned())]),
        withheld_env: ["HOME".to_owned()].into(),
        ..AcpProfile::new("")
    };
    assert!(
        std::env::var_os("HOME").is_some(),
        "the test needs HOME set"
    );
    let error = timeout(
        PATIENCE,
        executor_with(profile).start(start_request("echo")),
    )
    .await
    .unwrap()
    .err()
    .unwrap();
    let message = error.to_string();
    assert!(message.contains("home=withheld given=yes"), "{message}");
}

#[tokio::test]
async fn an_agent_that_never_answers_times_out() {
    let profile = AcpProfile {
        command: "/bin/sh".into(),
        args: vec!["-c".to_owned(), "exec sleep 600".to_owned()],
        env: BTreeMap::new(),
        ..AcpProfile::new("")
    };
    let executor = executor_with(profile).with_startup_timeout(Duration::from_millis(300));
    let error = timeout(PATIENCE, executor.start(start_request("echo")))
        .await
        .unwrap()
        .err()
        .unwrap();
    assert!(
        matches!(&error, AgentError::Unavailable(message) if message.contains("did not get ready")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_crash_report_quotes_stderr_as_short_plain_text() {
    // Colours, a terminal title, a progress bar and a very long line, as CLIs write them.
    let script = r"printf '\033[1;31merror\033[0m: model \033]0;title\007overloaded\n' >&2
printf 'step 1\rstep 2\r\033[2Kstep 3\n' >&2
head -c 5000 /dev/zero | tr '\0' 'x' >&2; echo >&2
exit 3";
    let profile = AcpProfile {
        command: "/bin/sh".into(),
        args: vec!["-c".to_owned(), script.to_owned()],
        ..AcpProfile::new("")
    };
    let error = timeout(
        PATIENCE,
        executor_with(profile).start(start_request("echo")),
    )
    .await
    .unwrap()
    .err()
    .unwrap();
    let message = error.to_string();
    assert!(message.contains("error: model overloaded"), "{message}");
    assert!(message.contains("step 3"), "{message}");
    assert!(
        !message.contains("step 1"),
        "a redrawn line shows its last state: {message}"
    );
    assert!(
        !message.chars().any(char::is_control),
        "no escape or control characters: {message:?}"
    );
    assert!(message.len() < 1200, "{} bytes: {message}", message.len());
}
