//! The session's agent beyond its prompts, through the real server, real HTTP
//! and the real `tandem echo-agent`: a git worktree of each session's own,
//! resuming the agent's conversation after a restart (`session/load`) without
//! recording its replay, the commands, modes and title it reports as events of
//! their own, the host's mode switch, authentication, and the log order of a
//! cancel with a permission request open.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Client, TestServer, code, text};
use tandem::AgentProfile;
use tandem_agent::{AcpProfile, Cleanup, WorkspaceConfig};
use tandem_domain::AgentProfileName;

/// How long a test waits for the agent before it gives up.
const PATIENCE: Duration = Duration::from_secs(30);
const ADMIN: &str = "agent-sessions-admin-key-0123456789abcdef";

/// `tandem echo-agent` with these arguments, saving its sessions in `state`.
fn echo(state: &Path, args: &[&str]) -> AcpProfile {
    let mut profile = AcpProfile::new(env!("CARGO_BIN_EXE_tandem"));
    profile.args = vec!["echo-agent".to_owned()];
    profile
        .args
        .extend(args.iter().map(|arg| (*arg).to_owned()));
    profile.args.push("--state-dir".to_owned());
    profile.args.push(state.display().to_string());
    profile
}

/// Settings with `profile` as the default agent profile and a fixed admin key.
fn with_echo(profile: AcpProfile) -> impl FnOnce(&mut tandem::Config) {
    move |config: &mut tandem::Config| {
        config.agents.insert(
            AgentProfileName::default_profile(),
            AgentProfile::Acp(profile),
        );
        config.bootstrap_admin_key = Some(ADMIN.to_owned());
    }
}

/// A session of the server and its host.
struct Session {
    path: String,
    host: String,
    host_id: String,
    invite: String,
}

async fn session(api: &Client) -> Session {
    let created = api
        .post("/v1/sessions", ADMIN, json!({"mode": "prompt_direct"}), 201)
        .await;
    Session {
        path: format!("/v1/sessions/{}", text(&created, "/session/id")),
        host: text(&created, "/host/token").to_owned(),
        host_id: text(&created, "/host/participant/id").to_owned(),
        invite: text(&created, "/invite/token").to_owned(),
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
            let page = api
                .get(
                    &format!("{}/events?after={}&limit=200", self.path, all.len()),
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

    async fn events_until(&self, api: &Client, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let events = self.events(api).await;
            if done(&events) {
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

    /// The events once `prompt` has ended.
    async fn ended(&self, api: &Client, prompt: &str) -> Vec<Value> {
        self.events_until(api, |events| events.iter().any(|e| ends(e, prompt)))
            .await
    }

    /// The session with its agent.
    async fn details(&self, api: &Client) -> Value {
        api.get(&self.path, &self.host, 200).await
    }

    async fn join(&self, api: &Client, name: &str) -> String {
        let joined = api
            .call(
                Method::POST,
                "/v1/join",
                None,
                Some(json!({"inviteToken": self.invite, "displayName": name})),
                201,
            )
            .await;
        text(&joined, "/token").to_owned()
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

fn of_type<'a>(events: &'a [Value], wanted: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| kind(event) == wanted)
        .collect()
}

fn position(events: &[Value], wanted: &str, prompt: &str) -> usize {
    events
        .iter()
        .position(|event| kind(event) == wanted && about(event, prompt))
        .unwrap_or_else(|| panic!("no {wanted} for {prompt} in {:?}", types(events)))
}

/// The prompt's message text, all its `agent.output` message events joined.
fn message(events: &[Value], prompt: &str) -> String {
    events
        .iter()
        .filter(|e| kind(e) == "agent.output" && about(e, prompt) && e["data"]["kind"] == "message")
        .map(|e| e["data"]["text"].as_str().unwrap_or_default())
        .collect()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// A repository with one commit on `main`.
fn repository(root: &Path) -> PathBuf {
    let repo = root.join("project");
    std::fs::create_dir_all(&repo).expect("dir");
    git(&repo, &["init", "--quiet", "--initial-branch", "main"]);
    std::fs::write(repo.join("README.md"), "# project\n").expect("write");
    git(&repo, &["add", "README.md"]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    repo
}

/// Waits until the session's agent shows its workspace cleaned up.
async fn cleaned_up(api: &Client, session: &Session) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let details = session.details(api).await;
        if !details["agent"]["workspace"]["cleanup"].is_null() {
            return details;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workspace was never cleaned up: {details}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_sessions_on_a_worktree_profile_each_get_their_own_branch_and_directory() {
    let root = tempfile::tempdir().expect("temp dir");
    let repo = repository(root.path());
    let mut profile = echo(&root.path().join("state"), &[]);
    profile.workspace = WorkspaceConfig::Worktree {
        repository: repo.clone(),
        base: Some("main".to_owned()),
        template: root
            .path()
            .join("worktrees/{session_id}")
            .display()
            .to_string(),
        cleanup: Cleanup::KeepIfChanged,
    };
    let server = TestServer::sqlite_with(with_echo(profile)).await;
    let api = server.client();
    let (first, second) = (session(&api).await, session(&api).await);
    let mut workspaces = Vec::new();
    for s in [&first, &second] {
        assert!(s.details(&api).await["agent"].is_null(), "no agent yet");
        let prompt = s.submit(&api, "look around").await;
        let events = s.ended(&api, &prompt).await;
        let started = of_type(&events, "agent.started");
        assert_eq!(started.len(), 1, "{:?}", types(&events));
        assert!(started[0]["data"].get("promptId").is_none());
        assert_eq!(started[0]["data"]["resumption"], "new");
        let workspace = started[0]["data"]["workspace"].clone();
        assert_eq!(workspace["kind"], "worktree");
        // The session shows it too.
        let details = s.details(&api).await;
        assert_eq!(details["agent"]["workspace"]["path"], workspace["path"]);
        assert_eq!(details["agent"]["workspace"]["branch"], workspace["branch"]);
        assert!(details["agent"]["workspace"]["cleanup"].is_null());
        workspaces.push(workspace);
    }
    let path = |n: usize| PathBuf::from(text(&workspaces[n], "/path"));
    assert_ne!(path(0), path(1));
    for (s, n) in [(&first, 0), (&second, 1)] {
        let id = s.path.trim_start_matches("/v1/sessions/");
        assert_eq!(text(&workspaces[n], "/branch"), format!("tandem/{id}"));
        assert_eq!(
            git(&path(n), &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
            format!("tandem/{id}")
        );
        assert!(path(n).join("README.md").exists());
    }

    // The first, unchanged, is removed at its end; the second has work in it.
    std::fs::write(path(1).join("draft.md"), "work in progress").expect("write");
    for s in [&first, &second] {
        api.post(&format!("{}/close", s.path), &s.host, json!({}), 200)
            .await;
    }
    let details = cleaned_up(&api, &first).await;
    assert_eq!(details["agent"]["workspace"]["cleanup"], "removed");
    assert!(!path(0).exists());
    let details = cleaned_up(&api, &second).await;
    assert_eq!(details["agent"]["workspace"]["cleanup"], "kept");
    assert!(path(1).join("draft.md").exists());
    let branches = git(&repo, &["branch", "--list", "tandem/*"]);
    assert_eq!(branches.lines().count(), 1, "{branches}");
    server.stop().await;
}

/// Runs a conversation across a restart of the server on `database_url`: the
/// second server's agent loads the first one's conversation, and what it
/// replays while loading is not recorded again.
async fn a_restart_continues_the_conversation(
    database_url: String,
    dir: Option<tempfile::TempDir>,
) {
    let state = tempfile::tempdir().expect("temp dir");
    let profile = echo(state.path(), &[]);
    let first =
        TestServer::start_with(database_url.clone(), None, with_echo(profile.clone())).await;
    let api = first.client();
    let s = session(&api).await;
    let milk = s.submit(&api, "remember the milk").await;
    let before = s.ended(&api, &milk).await;
    first.stop().await;

    let second = TestServer::start_with(database_url, dir, with_echo(profile)).await;
    let api = second.client();
    let what = s.submit(&api, "/recall\nwhat else?").await;
    let events = s.ended(&api, &what).await;
    assert_eq!(
        message(&events, &what),
        "previously: remember the milk\n/recall\nwhat else?",
        "the agent goes on with the same conversation"
    );
    let started = of_type(&events, "agent.started");
    assert_eq!(started.len(), 2);
    assert_eq!(started[0]["data"]["resumption"], "new");
    assert_eq!(started[1]["data"]["resumption"], "loaded");
    assert_eq!(
        started[0]["data"]["agentSessionId"],
        started[1]["data"]["agentSessionId"]
    );
    // The replay is not recorded: the first prompt's output is as it was, and
    // nothing but the second prompt's own output follows.
    let outputs = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .filter(|e| kind(e) == "agent.output")
            .cloned()
            .collect()
    };
    let all = outputs(&events);
    assert_eq!(
        all.iter().filter(|e| about(e, &milk)).count(),
        outputs(&before).len(),
        "the first prompt's output is stored once"
    );
    assert!(
        all.iter().all(|e| about(e, &milk) || about(e, &what)),
        "no output of no prompt"
    );
    assert_eq!(message(&events, &milk), "remember the milk");
    assert_eq!(s.details(&api).await["agent"]["loadSession"], true);
    second.stop().await;
}

#[tokio::test]
async fn a_restart_continues_the_conversation_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    a_restart_continues_the_conversation(url, Some(dir)).await;
}

#[sqlx::test(migrations = false)]
async fn a_restart_continues_the_conversation_on_postgres(
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
    a_restart_continues_the_conversation(url, None).await;
}

#[tokio::test]
async fn an_agent_that_cannot_resume_starts_fresh_and_the_session_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    let profile = echo(&dir.path().join("state"), &["--no-load-session"]);
    let first = TestServer::start_with(url.clone(), None, with_echo(profile.clone())).await;
    let api = first.client();
    let s = session(&api).await;
    let milk = s.submit(&api, "remember the milk").await;
    s.ended(&api, &milk).await;
    first.stop().await;

    let second = TestServer::start_with(url, None, with_echo(profile)).await;
    let api = second.client();
    let what = s.submit(&api, "/recall").await;
    let events = s.ended(&api, &what).await;
    assert_eq!(message(&events, &what), "previously: nothing\n/recall");
    let started = of_type(&events, "agent.started");
    assert_eq!(started[1]["data"]["resumption"], "fresh");
    assert_eq!(started[1]["data"]["loadSession"], false);
    assert_eq!(s.details(&api).await["agent"]["loadSession"], false);
    second.stop().await;
}

#[tokio::test]
async fn commands_modes_and_title_are_events_of_their_own_and_the_host_switches_the_mode() {
    let state = tempfile::tempdir().expect("temp dir");
    let server = TestServer::sqlite_with(with_echo(echo(state.path(), &[]))).await;
    let api = server.client();
    let s = session(&api).await;
    let collaborator = s.join(&api, "Cole").await;
    let put_mode = |token: String, body: Value, expect: u16| {
        let api = api.clone();
        let path = format!("{}/agent-mode", s.path);
        async move {
            api.call(Method::PUT, &path, Some(&token), Some(body), expect)
                .await
        }
    };
    let refused = put_mode(s.host.clone(), json!({"modeId": "shout"}), 409).await;
    assert_eq!(code(&refused), "AGENT_MODES_UNAVAILABLE", "no agent yet");

    let first = s.submit(&api, "Fix the login test\nplease").await;
    s.ended(&api, &first).await;
    let second = s.submit(&api, "and then the logout").await;
    let events = s
        .events_until(&api, |events| {
            events.iter().any(|e| ends(e, &second))
                && events.iter().any(|e| kind(e) == "agent.commands_updated")
        })
        .await;
    for session_level in [
        "agent.started",
        "agent.commands_updated",
        "agent.mode_changed",
        "agent.title_changed",
    ] {
        for event in of_type(&events, session_level) {
            assert!(event["data"].get("promptId").is_none(), "{event}");
            assert_eq!(event["actor"]["kind"], "agent");
        }
    }
    let titles = of_type(&events, "agent.title_changed");
    assert_eq!(titles.len(), 1, "the same title twice is one change");
    assert_eq!(titles[0]["data"]["title"], "Echo: Fix the login test");
    let output_kinds: Vec<&str> = events
        .iter()
        .filter(|e| kind(e) == "agent.output")
        .map(|e| {
            e["data"]["raw"]["sessionUpdate"]
                .as_str()
                .unwrap_or_default()
        })
        .collect();
    assert!(
        !output_kinds.iter().any(|k| k.ends_with("commands_update")
            || *k == "session_info_update"
            || *k == "current_mode_update"),
        "no session-level update is a prompt's output: {output_kinds:?}"
    );

    let details = s.details(&api).await;
    let agent = &details["agent"];
    let commands: Vec<&str> = agent["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| text(c, "/name"))
        .collect();
    assert!(
        commands.contains(&"recall") && commands.contains(&"slow"),
        "{commands:?}"
    );
    let modes: Vec<&str> = agent["modes"]
        .as_array()
        .expect("modes")
        .iter()
        .map(|m| text(m, "/id"))
        .collect();
    assert_eq!(modes, ["echo", "shout"]);
    assert_eq!(agent["currentModeId"], "echo");
    assert_eq!(agent["title"], "Echo: Fix the login test");

    // Only the host switches, and only to a mode the agent offers.
    let refused = put_mode(collaborator, json!({"modeId": "shout"}), 403).await;
    assert_eq!(code(&refused), "HOST_ONLY");
    let refused = put_mode(s.host.clone(), json!({"modeId": "yell"}), 409).await;
    assert_eq!(code(&refused), "UNKNOWN_AGENT_MODE");
    let refused = put_mode(s.host.clone(), json!({"modeId": ""}), 422).await;
    assert_eq!(code(&refused), "VALIDATION_FAILED");
    let refused = put_mode(s.host.clone(), json!({"mode": "shout"}), 422).await;
    assert_eq!(code(&refused), "VALIDATION_FAILED");

    let accepted = put_mode(s.host.clone(), json!({"modeId": "shout"}), 202).await;
    assert_eq!(accepted["requestedMode"]["modeId"], "shout");
    assert_eq!(accepted["requestedMode"]["requestedBy"], s.host_id.as_str());
    let events = s
        .events_until(&api, |events| {
            events
                .iter()
                .any(|e| kind(e) == "agent.mode_changed" && e["data"]["currentModeId"] == "shout")
        })
        .await;
    let changed = of_type(&events, "agent.mode_changed")
        .into_iter()
        .find(|e| e["data"]["currentModeId"] == "shout")
        .expect("switched");
    assert_eq!(changed["data"]["changedBy"], s.host_id.as_str());
    assert!(of_type(&events, "agent.mode_requested").len() == 1);
    let loud = s.submit(&api, "quiet please").await;
    let events = s.ended(&api, &loud).await;
    assert_eq!(message(&events, &loud), "QUIET PLEASE");
    let agent = &s.details(&api).await["agent"];
    assert_eq!(agent["currentModeId"], "shout");
    assert!(agent["requestedMode"].is_null());

    // A switch asked for while a prompt runs reaches the agent during it.
    let slow = s.submit(&api, "/slow 400\na b c d e f").await;
    s.events_until(&api, |events| {
        events
            .iter()
            .any(|e| kind(e) == "agent.output" && about(e, &slow))
    })
    .await;
    put_mode(s.host.clone(), json!({"modeId": "echo"}), 202).await;
    let events = s.ended(&api, &slow).await;
    let switched_back = events
        .iter()
        .position(|e| kind(e) == "agent.mode_changed" && e["data"]["currentModeId"] == "echo")
        .expect("switched back");
    assert!(
        switched_back < position(&events, "prompt.completed", &slow),
        "while the prompt ran: {:?}",
        types(&events)
    );
    server.stop().await;
}

#[tokio::test]
async fn an_agent_that_requires_authentication_uses_the_profiles_method() {
    let state = tempfile::tempdir().expect("temp dir");
    let refusing = echo(state.path(), &["--require-auth"]);
    let server = TestServer::sqlite_with(with_echo(refusing)).await;
    let api = server.client();
    let s = session(&api).await;
    let prompt = s.submit(&api, "hello").await;
    let events = s.ended(&api, &prompt).await;
    let failed = &events[position(&events, "prompt.failed", &prompt)];
    let error = text(failed, "/data/error");
    assert!(error.contains("requires authentication"), "{error}");
    assert!(
        error.contains("`echo-login`") && error.contains("`echo-token`"),
        "{error}"
    );
    server.stop().await;

    let mut signing_in = echo(state.path(), &["--require-auth"]);
    signing_in.auth_method = Some("echo-login".to_owned());
    let server = TestServer::sqlite_with(with_echo(signing_in)).await;
    let api = server.client();
    let s = session(&api).await;
    let prompt = s.submit(&api, "hello").await;
    let events = s.ended(&api, &prompt).await;
    assert_eq!(message(&events, &prompt), "hello");
    server.stop().await;
}

#[tokio::test]
async fn a_cancel_with_a_permission_request_open_resolves_it_before_the_prompt_ends() {
    let state = tempfile::tempdir().expect("temp dir");
    let server = TestServer::sqlite_with(with_echo(echo(state.path(), &[]))).await;
    let api = server.client();
    let s = session(&api).await;
    let prompt = s.submit(&api, "/permission\nrun the tool").await;
    s.events_until(&api, |events| {
        events
            .iter()
            .any(|e| kind(e) == "agent.permission_requested")
    })
    .await;
    api.post(
        &format!("{}/prompts/{prompt}/cancel", s.path),
        &s.host,
        json!({}),
        202,
    )
    .await;
    let events = s.ended(&api, &prompt).await;
    let resolved = position(&events, "agent.permission_resolved", &prompt);
    let cancelled = position(&events, "prompt.cancelled", &prompt);
    assert!(
        resolved < cancelled,
        "request resolved, then prompt ended: {:?}",
        types(&events)
    );
    assert_eq!(events[resolved]["data"]["cause"], "prompt_ended");
    server.stop().await;
}
