//! Sessions end on time: at their absolute limit or after their idle timeout,
//! found on first touch or by the background sweeper, with a clock the test moves.
//! An ending session closes its streams and cancels its running prompt.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::{Value, json};
use support::{Client, TestServer, next, open, text};
use tandem_ports::testing::ManualClock;

struct Session {
    path: String,
    host: String,
}

async fn session(api: &Client, admin: &str, settings: Value) -> Session {
    let created = api.post("/v1/sessions", admin, settings, 201).await;
    Session {
        path: format!("/v1/sessions/{}", text(&created, "/session/id")),
        host: text(&created, "/host/token").to_owned(),
    }
}

/// A server whose time the test moves; it sweeps every second.
async fn server(clock: &Arc<ManualClock>) -> TestServer {
    TestServer::sqlite_at(clock.clone(), |config| {
        config.sweep_interval = Duration::from_secs(1);
    })
    .await
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(chrono::Utc::now()))
}

async fn last_event(api: &Client, s: &Session) -> Value {
    let page = api
        .get(&format!("{}/events?limit=200", s.path), &s.host, 200)
        .await;
    page["events"]
        .as_array()
        .and_then(|events| events.last())
        .cloned()
        .expect("events")
}

#[tokio::test]
async fn a_session_expires_at_its_absolute_limit_on_first_touch() {
    let clock = clock();
    let server = server(&clock).await;
    let api = server.client();
    let s = session(
        &api,
        &server.admin_key,
        json!({"expiresIn": "1h", "idleTimeout": "2h"}),
    )
    .await;
    clock.advance(TimeDelta::minutes(59));
    assert_eq!(api.get(&s.path, &s.host, 200).await["status"], "active");
    clock.advance(TimeDelta::minutes(1));
    let expired = api.get(&s.path, &s.host, 200).await;
    assert_eq!(expired["status"], "expired");
    assert_eq!(expired["closeReason"], "expired");
    let closed = last_event(&api, &s).await;
    assert_eq!(closed["type"], "session.closed");
    assert_eq!(closed["data"]["reason"], "expired");
    let late = api
        .post(
            &format!("{}/comments", s.path),
            &s.host,
            json!({"text": "too late"}),
            409,
        )
        .await;
    assert_eq!(support::code(&late), "SESSION_INACTIVE");
    server.stop().await;
}

#[tokio::test]
async fn the_sweeper_closes_an_idle_session_and_its_stream_ends() {
    let clock = clock();
    let server = server(&clock).await;
    let api = server.client();
    let s = session(&api, &server.admin_key, json!({"idleTimeout": "10m"})).await;
    let mut stream = open(
        &api.base,
        &format!("{}/events", s.path),
        Some(&s.host),
        None,
    )
    .await;
    let first = next(&mut stream).await.expect("session.created");
    assert_eq!(first.event, "session.created");
    // Activity moves the idle deadline.
    clock.advance(TimeDelta::minutes(9));
    api.post(
        &format!("{}/comments", s.path),
        &s.host,
        json!({"text": "still here"}),
        201,
    )
    .await;
    clock.advance(TimeDelta::minutes(9));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Nobody touches the session: only the sweeper can end it.
    clock.advance(TimeDelta::minutes(2));
    let mut seen = Vec::new();
    while let Some(event) = next(&mut stream).await {
        seen.push(event);
    }
    let closed = seen.last().expect("the stream ended with an event");
    assert_eq!(closed.event, "session.closed", "{seen:?}");
    let data: Value = serde_json::from_str(&closed.data).expect("json");
    assert_eq!(data["data"]["reason"], "idle_timeout");
    assert_eq!(
        seen.iter().filter(|e| e.event == "session.closed").count(),
        1,
        "the session ends once"
    );
    let stored = api.get(&s.path, &s.host, 200).await;
    assert_eq!(stored["status"], "expired");
    assert_eq!(stored["closeReason"], "idle_timeout");
    server.stop().await;
}

#[tokio::test]
async fn the_host_extends_a_session_within_the_maximum() {
    let clock = clock();
    let server = server(&clock).await;
    let api = server.client();
    let s = session(
        &api,
        &server.admin_key,
        json!({"expiresIn": "1h", "idleTimeout": "1d"}),
    )
    .await;
    let extended = api
        .patch(&s.path, &s.host, json!({"expiresIn": "3h"}), 200)
        .await;
    let too_far = api
        .patch(&s.path, &s.host, json!({"expiresIn": "31d"}), 422)
        .await;
    assert!(!support::code(&too_far).is_empty());
    clock.advance(TimeDelta::hours(2));
    let still = api.get(&s.path, &s.host, 200).await;
    assert_eq!(still["status"], "active");
    assert_eq!(still["expiresAt"], extended["expiresAt"]);
    clock.advance(TimeDelta::hours(1));
    assert_eq!(api.get(&s.path, &s.host, 200).await["status"], "expired");
    server.stop().await;
}

#[tokio::test]
async fn expiry_cancels_the_running_prompt_and_closes_last() {
    let clock = clock();
    let pids = tempfile::tempdir().expect("temp dir");
    let pid_file = pids.path().join("agents");
    let server = TestServer::sqlite_at(clock.clone(), |config| {
        config.sweep_interval = Duration::from_secs(1);
        config.agents.insert(
            tandem_domain::AgentProfileName::default_profile(),
            support::echo_recording_pids(&pid_file),
        );
    })
    .await;
    let api = server.client();
    let s = session(
        &api,
        &server.admin_key,
        json!({"expiresIn": "1h", "mode": "prompt_direct"}),
    )
    .await;
    let prompt = api
        .post(
            &format!("{}/prompts", s.path),
            &s.host,
            json!({"text": "/slow 1000\na long answer that takes its time"}),
            201,
        )
        .await;
    let id = text(&prompt, "/id").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while api
        .get(&format!("{}/prompts/{id}", s.path), &s.host, 200)
        .await["status"]
        != "running"
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the prompt never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    clock.advance(TimeDelta::hours(1));
    // Past its limit: whoever touches it first (the sweeper, the runner's own
    // check, or this read) expires it.
    let mut closed = last_event(&api, &s).await;
    while closed["type"] != "session.closed" {
        assert!(tokio::time::Instant::now() < deadline, "never swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
        closed = last_event(&api, &s).await;
    }
    assert_eq!(closed["data"]["reason"], "expired");
    let ended = api
        .get(&format!("{}/prompts/{id}", s.path), &s.host, 200)
        .await;
    assert_eq!(ended["status"], "cancelled");
    let agent = support::recorded_pids(&pid_file, 1).await[0];
    support::wait_until_dead(agent).await;
    assert_eq!(
        last_event(&api, &s).await["seq"],
        closed["seq"],
        "nothing after session.closed"
    );
    server.stop().await;
}
