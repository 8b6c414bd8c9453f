//! Prompts run through the real echo agent (`tandem echo-agent`, a subprocess
//! speaking ACP), driven over real HTTP: output in order and complete, queue
//! order, cancel, crash and recovery, permission requests answered and timed out,
//! an output storm coalesced, a close during a prompt, and restarts mid-prompt.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Client, TestServer, text};

/// How long a test waits for the agent before it gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// A session of the server and its host.
struct Session {
    path: String,
    host: String,
    host_id: String,
}

async fn session(api: &Client, admin: &str) -> Session {
    let created = api
        .post("/v1/sessions", admin, json!({"mode": "prompt_direct"}), 201)
        .await;
    Session {
        path: format!("/v1/sessions/{}", text(&created, "/session/id")),
        host: text(&created, "/host/token").to_owned(),
        host_id: text(&created, "/host/participant/id").to_owned(),
    }
}

impl Session {
    async fn submit(&self, api: &Client, prompt: &str) -> String {
        let submitted = api
            .post(
                &format!("{}/prompts", self.path),
                &self.host,
                json!({ "text": prompt }),
                201,
            )
            .await;
        text(&submitted, "/id").to_owned()
    }

    async fn events(&self, api: &Client) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let after = all.len();
            let page = api
                .get(
                    &format!("{}/events?after={after}&limit=200", self.path),
                    &self.host,
                    200,
                )
                .await;
            let events = page["events"].as_array().expect("events").clone();
            if events.is_empty() {
                return all;
            }
            all.extend(events);
        }
    }

    /// The session's events once one matches `done`.
    async fn events_until(&self, api: &Client, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let events = self.events(api).await;
            if events.iter().any(&done) {
                return events;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting; events so far: {:?}",
                types(&events)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The session's events once `prompt` has ended (completed, failed, cancelled).
    async fn ended(&self, api: &Client, prompt: &str) -> Vec<Value> {
        self.events_until(api, |event| ends(event, prompt)).await
    }

    async fn prompt(&self, api: &Client, id: &str) -> Value {
        api.get(&format!("{}/prompts/{id}", self.path), &self.host, 200)
            .await
    }
}

fn kind(event: &Value) -> &str {
    text(event, "/type")
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(kind).collect()
}

fn about(event: &Value, prompt: &str) -> bool {
    event["data"]["promptId"].as_str() == Some(prompt)
}

fn ends(event: &Value, prompt: &str) -> bool {
    about(event, prompt)
        && matches!(
            kind(event),
            "prompt.completed" | "prompt.failed" | "prompt.cancelled"
        )
}

/// Where the first event of `type` about `prompt` is in the log.
fn position(events: &[Value], kind_of: &str, prompt: &str) -> usize {
    events
        .iter()
        .position(|event| kind(event) == kind_of && about(event, prompt))
        .unwrap_or_else(|| panic!("no {kind_of} for {prompt} in {:?}", types(events)))
}

/// The prompt's agent.output events of `kind` (message, thought, ...).
fn outputs<'a>(events: &'a [Value], prompt: &str, output_kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| {
            kind(event) == "agent.output"
                && about(event, prompt)
                && event["data"]["kind"] == output_kind
        })
        .collect()
}

/// The prompt's message text, all its `agent.output` message events joined.
fn message(events: &[Value], prompt: &str) -> String {
    outputs(events, prompt, "message")
        .iter()
        .map(|event| event["data"]["text"].as_str().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn the_echo_agent_answers_in_order_with_plan_tool_call_and_text() {
    let server = TestServer::sqlite().await;
    let api = server.client();
    let s = session(&api, &server.admin_key).await;
    let said = "Explain the failing test,\nthen fix it.  Twice spaced.";
    let id = s.submit(&api, said).await;
    let events = s.ended(&api, &id).await;

    let started = position(&events, "prompt.started", &id);
    let completed = position(&events, "prompt.completed", &id);
    assert!(started < completed);
    assert_eq!(events[completed]["data"]["stopReason"], "end_turn");
    assert_eq!(message(&events, &id), said, "every word, in order");
    let own: Vec<&str> = events[started..=completed]
        .iter()
        .filter(|event| about(event, &id))
        .map(|event| {
            if kind(event) == "agent.output" {
                event["data"]["kind"].as_str().expect("kind")
            } else {
                kind(event)
            }
        })
        .collect();
    assert_eq!(own.first(), Some(&"prompt.started"));
    assert_eq!(own.last(), Some(&"prompt.completed"));
    let plan = own.iter().position(|k| *k == "plan").expect("a plan");
    let tool_call = own
        .iter()
        .position(|k| *k == "tool_call")
        .expect("a tool call");
    let first_text = own.iter().position(|k| *k == "message").expect("text");
    let tool_done = own
        .iter()
        .position(|k| *k == "tool_call_update")
        .expect("the tool call's update");
    assert!(plan < tool_call && tool_call < first_text && first_text < tool_done);
    // The agent's own JSON is kept: the merged text rides on the first chunk's update.
    let first = outputs(&events, &id, "message")[0];
    assert_eq!(first["data"]["raw"]["sessionUpdate"], "agent_message_chunk");
    assert_eq!(
        first["data"]["raw"]["content"]["text"],
        first["data"]["text"]
    );

    let prompt = s.prompt(&api, &id).await;
    assert_eq!(prompt["status"], "completed");
    assert_eq!(prompt["stopReason"], "end_turn");
    // The agent's own session id is recorded on the session.
    let details = api.get(&s.path, &s.host, 200).await;
    let agent_session_id = details["agentSessionId"]
        .as_str()
        .expect("an agent session id");
    assert!(agent_session_id.starts_with("echo-"), "{agent_session_id}");
    assert_eq!(
        details["agent"]["workspace"]["kind"], "shared",
        "the default profile works in the server's directory"
    );
    server.stop().await;
}

#[tokio::test]
async fn queued_prompts_run_one_at_a_time_in_order() {
    let server = TestServer::sqlite().await;
    let api = server.client();
    let s = session(&api, &server.admin_key).await;
    let first = s.submit(&api, "/slow 200\nfirst prompt here").await;
    let second = s.submit(&api, "second").await;
    let third = s.submit(&api, "third").await;
    let events = s.ended(&api, &third).await;
    let order = [
        position(&events, "prompt.started", &first),
        position(&events, "prompt.completed", &first),
        position(&events, "prompt.started", &second),
        position(&events, "prompt.completed", &second),
        position(&events, "prompt.started", &third),
        position(&events, "prompt.completed", &third),
    ];
    assert!(
        order.windows(2).all(|pair| pair[0] < pair[1]),
        "one at a time, in order: {:?}",
        types(&events)
    );
    assert_eq!(message(&events, &second), "second");
    server.stop().await;
}

#[tokio::test]
async fn a_running_prompt_is_cancelled_and_the_agent_serves_the_next() {
    let server = TestServer::sqlite().await;
    let api = server.client();
    let s = session(&api, &server.admin_key).await;
    let slow = s
        .submit(&api, "/slow 500\none two three four five six seven eight")
        .await;
    s.events_until(&api, |event| {
        kind(event) == "agent.output" && about(event, &slow) && event["data"]["kind"] == "message"
    })
    .await;
    let requested = api
        .post(
            &format!("{}/prompts/{slow}/cancel", s.path),
            &s.host,
            json!({}),
            202,
        )
        .await;
    assert_eq!(requested["status"], "running");
    let events = s.ended(&api, &slow).await;
    let cancelled = &events[position(&events, "prompt.cancelled", &slow)];
    assert_eq!(cancelled["data"]["cancelledBy"], s.host_id.as_str());
    assert!(
        message(&events, &slow).len() < "one two three four five six seven eight".len(),
        "the agent stopped early"
    );
    let prompt = s.prompt(&api, &slow).await;
    assert_eq!(prompt["status"], "cancelled");
    assert_eq!(prompt["stopReason"], "cancelled");

    let next = s.submit(&api, "still here").await;
    let events = s.ended(&api, &next).await;
    assert_eq!(message(&events, &next), "still here");
    server.stop().await;
}

#[tokio::test]
async fn a_crash_fails_the_prompt_and_the_agent_starts_again() {
    let server = TestServer::sqlite().await;
    let api = server.client();
    let s = session(&api, &server.admin_key).await;
    let doomed = s.submit(&api, "/crash\nnever finished").await;
    let events = s.ended(&api, &doomed).await;
    let failed = &events[position(&events, "prompt.failed", &doomed)];
    let error = failed["data"]["error"].as_str().expect("error");
    assert!(error.contains("crashed"), "{error}");
    assert_eq!(s.prompt(&api, &doomed).await["status"], "failed");

    let next = s.submit(&api, "after the crash").await;
    let events = s.ended(&api, &next).await;
    assert_eq!(
        kind(&events[position(&events, "prompt.completed", &next)]),
        "prompt.completed"
    );
    assert_eq!(message(&events, &next), "after the crash");
    server.stop().await;
}

#[tokio::test]
async fn an_agent_error_fails_the_prompt_and_the_session_goes_on() {
    let server = TestServer::sqlite().await;
    let api = server.client();
    let s = session(&api, &server.admin_key).await;
    let failing = s.submit(&api, "/fail").await;
    let events = s.ended(&api, &failing).await;
    position(&events, "prompt.failed", &failing);
    let next = s.submit(&api, "fine").await;
    let events = s.ended(&api, &next).await;
    position(&events, "prompt.completed", &next);
    server.stop().await;
}

#[tokio::test]
async fn the_host_answers_a_permission_request() {
    let server = TestServer::sqlite().await;
    let api = server.client();
    let s = session(&api, &server.admin_key).await;
    let id = s.submit(&api, "/permission\nrun the tool").await;
    let events = s
        .events_until(&api, |event| kind(event) == "agent.permission_requested")
        .await;
    let requested = &events[position(&events, "agent.permission_requested", &id)];
    let request = text(requested, "/data/requestId").to_owned();
    assert_eq!(requested["data"]["toolCall"]["toolCallId"], "echo-1");
    let options: Vec<&str> = requested["data"]["options"]
        .as_array()
        .expect("options")
        .iter()
        .map(|option| text(option, "/id"))
        .collect();
    assert_eq!(options, ["allow", "reject"]);

    // Without the event stream, the prompt's open requests say the same.
    let open_requests = format!("{}/prompts/{id}/permissions", s.path);
    let open = api.get(&open_requests, &server.admin_key, 200).await;
    assert_eq!(open["permissions"].as_array().map(Vec::len), Some(1));
    assert_eq!(open["permissions"][0]["id"], request.as_str());
    assert_eq!(open["permissions"][0]["promptId"], id.as_str());
    assert_eq!(open["permissions"][0]["options"][0]["id"], "allow");
    assert_eq!(open["permissions"][0]["resolution"], Value::Null);
    let elsewhere = format!(
        "{}/prompts/0190a7b2-0000-7000-8000-000000000000/permissions",
        s.path
    );
    api.get(&elsewhere, &s.host, 404).await;

    let answered = api
        .post(
            &format!("{}/permissions/{request}", s.path),
            &s.host,
            json!({"optionId": "allow"}),
            200,
        )
        .await;
    assert_eq!(answered["resolution"]["outcome"], "selected");
    assert_eq!(answered["resolution"]["optionId"], "allow");
    let open = api.get(&open_requests, &s.host, 200).await;
    assert_eq!(
        open["permissions"],
        json!([]),
        "an answered request is not open"
    );
    let events = s.ended(&api, &id).await;
    let resolved = &events[position(&events, "agent.permission_resolved", &id)];
    assert_eq!(resolved["data"]["cause"], "host");
    let thoughts: String = outputs(&events, &id, "thought")
        .iter()
        .map(|event| event["data"]["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(thoughts, "permission: allow", "the agent got the answer");
    assert!(
        !outputs(&events, &id, "tool_call").is_empty(),
        "the tool ran"
    );
    position(&events, "prompt.completed", &id);
    server.stop().await;
}

#[tokio::test]
async fn an_unanswered_permission_request_times_out_as_a_rejection() {
    let server = TestServer::sqlite_with(|config| {
        config.permission_timeout = Duration::from_secs(1);
    })
    .await;
    let api = server.client();
    let s = session(&api, &server.admin_key).await;
    let id = s.submit(&api, "/permission\nrun the tool").await;
    let events = s.ended(&api, &id).await;
    let resolved = &events[position(&events, "agent.permission_resolved", &id)];
    assert_eq!(resolved["data"]["cause"], "timeout");
    assert_eq!(resolved["data"]["outcome"]["optionId"], "reject");
    let thoughts: String = outputs(&events, &id, "thought")
        .iter()
        .map(|event| event["data"]["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(thoughts, "permission: reject");
    assert!(outputs(&events, &id, "tool_call").is_empty(), "no tool ran");
    position(&events, "prompt.completed", &id);
    server.stop().await;
}

#[tokio::test]
async fn an_output_storm_becomes_few_rows_and_loses_no_text() {
    let server = TestServer::sqlite().await;
    let api = server.client();
    let s = session(&api, &server.admin_key).await;
    let id = s.submit(&api, "/burst 5000").await;
    let events = s.ended(&api, &id).await;
    position(&events, "prompt.completed", &id);
    let expected = (0..5000).fold(String::new(), |mut all, i| {
        all.push_str(&i.to_string());
        all.push(' ');
        all
    });
    assert_eq!(message(&events, &id), expected, "every chunk, in order");
    let rows = outputs(&events, &id, "message").len();
    assert!(rows <= 50, "5000 chunks became {rows} agent.output events");
    server.stop().await;
}

#[tokio::test]
async fn closing_the_session_cancels_the_running_prompt() {
    let pids = tempfile::tempdir().expect("temp dir");
    let pid_file = pids.path().join("agents");
    let server = TestServer::sqlite_with(|config| {
        config.agents.insert(
            tandem_domain::AgentProfileName::default_profile(),
            support::echo_recording_pids(&pid_file),
        );
    })
    .await;
    let api = server.client();
    let s = session(&api, &server.admin_key).await;
    let slow = s
        .submit(&api, "/slow 1000\na long answer that takes a while")
        .await;
    let queued = s.submit(&api, "never runs").await;
    s.events_until(&api, |event| kind(event) == "prompt.started")
        .await;
    api.post(&format!("{}/close", s.path), &s.host, json!({}), 200)
        .await;
    let events = s.events(&api).await;
    assert_eq!(kind(events.last().expect("events")), "session.closed");
    position(&events, "prompt.cancelled", &slow);
    position(&events, "prompt.cancelled", &queued);
    // The runner stops the agent, and writes nothing after the close.
    let agent = support::recorded_pids(&pid_file, 1).await[0];
    support::wait_until_dead(agent).await;
    assert_eq!(
        s.events(&api).await.len(),
        events.len(),
        "nothing after the close"
    );
    assert_eq!(s.prompt(&api, &slow).await["status"], "cancelled");
    server.stop().await;
}

#[tokio::test]
async fn a_graceful_stop_records_the_running_prompt_and_a_restart_resumes_the_queue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    let admin = |config: &mut tandem::Config| {
        config.bootstrap_admin_key = Some("agents-test-admin-key-0123456789abcdef".into());
    };
    let first = TestServer::start_with(url.clone(), None, admin).await;
    let api = first.client();
    let s = session(&api, &first.admin_key).await;
    let said = "/slow 2000\nslow words keep coming";
    let slow = s.submit(&api, said).await;
    let waiting = s.submit(&api, "after the restart").await;
    // Stop once the agent has begun to answer.
    let before = s
        .events_until(&api, |event| {
            kind(event) == "agent.output"
                && about(event, &slow)
                && event["data"]["kind"] == "message"
        })
        .await;
    let answered = message(&before, &slow);
    tokio::time::timeout(PATIENCE, first.stop())
        .await
        .expect("the stop waits only a grace period for the agent");

    let second = TestServer::start_with(url, None, admin).await;
    let api = second.client();
    let events = s.ended(&api, &waiting).await;
    let ended = &events[position(&events, "prompt.failed", &slow)];
    let error = ended["data"]["error"].as_str().expect("error");
    assert!(error.contains("shut down"), "{error}");
    assert_eq!(message(&events, &waiting), "after the restart");
    assert!(
        position(&events, "prompt.failed", &slow) < position(&events, "prompt.started", &waiting),
        "the queue resumed after the interrupted prompt was recorded"
    );
    // What the agent said before the stop is all still there, and it is the
    // start of its answer: nothing lost, nothing changed.
    let kept = message(&events, &slow);
    assert!(
        kept.starts_with(&answered) && said.starts_with(&kept),
        "{answered:?} was streamed, {kept:?} is stored"
    );
    let seqs: Vec<u64> = events
        .iter()
        .map(|event| event["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "the log has no gap"
    );
    second.stop().await;
}

/// A `tandem serve` process of the real binary, killed without warning on drop.
struct Process(Child, String);

impl Process {
    async fn start(database_url: &str, admin: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
            ])
            .env("TANDEM_BOOTSTRAP_ADMIN_KEY", admin)
            .env("TANDEM_AGENT_LEASE_SECS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tandem");
        let process = Self(child, format!("http://127.0.0.1:{port}"));
        let client = support::http_client();
        for _ in 0..100 {
            let ready = client.get(format!("{}/readyz", process.1)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("tandem did not become ready");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_killed_server_leaves_its_prompt_failed_as_interrupted_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    let admin = "agents-test-admin-key-0123456789abcdef";
    let first = Process::start(&url, admin).await;
    let api = Client::new(&first.1);
    let s = session(&api, admin).await;
    let slow = s.submit(&api, "/slow 2000\nslow words keep coming").await;
    let waiting = s.submit(&api, "after the crash").await;
    s.events_until(&api, |event| kind(event) == "prompt.started")
        .await;
    drop(first); // SIGKILL: no chance to record anything.

    let second = Process::start(&url, admin).await;
    let api = Client::new(&second.1);
    let events = s.ended(&api, &waiting).await;
    let failed = &events[position(&events, "prompt.failed", &slow)];
    let error = failed["data"]["error"].as_str().expect("error");
    assert!(error.contains("interrupted"), "{error}");
    assert_eq!(message(&events, &waiting), "after the crash");
    assert_eq!(s.prompt(&api, &slow).await["status"], "failed");
}

#[sqlx::test(migrations = false)]
async fn prompts_submitted_on_either_replica_run_once_on_postgres(
    _pool: sqlx::postgres::PgPoolOptions,
    options: sqlx::postgres::PgConnectOptions,
) {
    let url = format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().expect("database")
    );
    let admin = "two-replica-admin-key-0123456789abcdef";
    let a = Process::start(&url, admin).await;
    let b = Process::start(&url, admin).await;
    let (api_a, api_b) = (Client::new(&a.1), Client::new(&b.1));
    let s = session(&api_a, admin).await;
    let mut prompts = Vec::new();
    for n in 0..6 {
        let api = if n % 2 == 0 { &api_a } else { &api_b };
        prompts.push(s.submit(api, &format!("prompt {n}")).await);
    }
    let last = prompts.last().expect("prompts").clone();
    let events = s.ended(&api_b, &last).await;
    for (n, id) in prompts.iter().enumerate() {
        assert_eq!(
            events
                .iter()
                .filter(|event| kind(event) == "prompt.started" && about(event, id))
                .count(),
            1,
            "prompt {n} ran exactly once"
        );
        assert_eq!(message(&events, id), format!("prompt {n}"));
    }
    let started: Vec<usize> = prompts
        .iter()
        .map(|id| position(&events, "prompt.started", id))
        .collect();
    assert!(started.windows(2).all(|pair| pair[0] < pair[1]), "in order");

    // One replica runs the session's agent, so of two cancels, one through each
    // replica, at least one reaches it from the other: through the log.
    for api in [&api_a, &api_b] {
        let slow = s
            .submit(
                api,
                "/slow 500
one two three four five six seven eight",
            )
            .await;
        s.events_until(api, |event| {
            kind(event) == "prompt.started" && about(event, &slow)
        })
        .await;
        api.post(
            &format!("{}/prompts/{slow}/cancel", s.path),
            &s.host,
            json!({}),
            202,
        )
        .await;
        let events = s.ended(api, &slow).await;
        let cancelled = &events[position(&events, "prompt.cancelled", &slow)];
        assert_eq!(cancelled["data"]["cancelledBy"], s.host_id.as_str());
        position(&events, "prompt.cancel_requested", &slow);
    }
}
