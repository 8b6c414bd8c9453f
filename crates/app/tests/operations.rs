//! Operations over real TCP: Prometheus metrics at `/metrics`, rate limits on
//! writes keyed per caller and, for joins, per client address, and the binary's
//! JSON logs and graceful stop on SIGTERM.
//!
//! A test binary of its own: the metrics recorder is process-wide, and no other
//! test here opens an event stream, so the streams gauge is this file's alone.

mod support;

use std::num::NonZeroU32;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Client, TestServer, code, text};

/// The `/metrics` page, checked to be the Prometheus text format.
async fn metrics(api: &Client) -> String {
    let response = support::http_client()
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.expect("a body")
}

/// The value of the sample of `metric` whose labels include every one of
/// `labels` (`key="value"`), if the page has one.
fn sample(page: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            line.strip_prefix(metric).is_some_and(|rest| {
                (rest.starts_with('{') || rest.starts_with(' '))
                    && labels.iter().all(|label| rest.contains(label))
            })
        })
        .and_then(|line| line.rsplit(' ').next())
        .map(|value| value.parse().expect("a number"))
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_streams_while_open() {
    let server = TestServer::sqlite().await;
    let api = &server.client();
    let missing = "0190b6a4-0000-7000-8000-000000000000";
    let problem = api
        .get(&format!("/v1/sessions/{missing}"), &server.admin_key, 404)
        .await;
    assert_eq!(code(&problem), "SESSION_NOT_FOUND");
    let created = api
        .post("/v1/sessions", &server.admin_key, json!({}), 201)
        .await;
    let session = format!("/v1/sessions/{}", text(&created, "/session/id"));
    let host = text(&created, "/host/token");

    let page = metrics(api).await;
    let template = r#"route="/v1/sessions/{id}""#;
    let not_found = sample(
        &page,
        "tandem_http_requests_total",
        &[r#"method="GET""#, template, r#"status="404""#],
    );
    assert!(not_found.is_some_and(|n| n >= 1.0), "{page}");
    let created_count = sample(
        &page,
        "tandem_http_requests_total",
        &[
            r#"method="POST""#,
            r#"route="/v1/sessions""#,
            r#"status="201""#,
        ],
    );
    assert!(created_count.is_some_and(|n| n >= 1.0), "{page}");
    // Ids never become labels.
    assert!(!page.contains(missing), "{page}");
    let fast = sample(
        &page,
        "tandem_http_request_duration_seconds_bucket",
        &[r#"method="GET""#, template, r#"le="10""#],
    );
    assert!(fast.is_some_and(|n| n >= 1.0), "{page}");
    assert!(
        page.contains("# TYPE tandem_http_request_duration_seconds histogram"),
        "{page}"
    );

    // A stream counts as open from its start to its end.
    let mut stream = support::http_client()
        .get(format!("{}{session}/events", api.base))
        .header("accept", "text/event-stream")
        .bearer_auth(host)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status(), 200);
    let open = sample(&metrics(api).await, "tandem_streams_open", &[]);
    assert_eq!(open, Some(1.0));
    api.post(&format!("{session}/close"), host, json!({}), 200)
        .await;
    let mut received = String::new();
    while !received.contains("session.closed") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("the stream goes on")
            .expect("the stream reads");
        let chunk = chunk.expect("the stream ends only after session.closed");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(stream);
    let mut open = None;
    for _ in 0..50 {
        open = sample(&metrics(api).await, "tandem_streams_open", &[]);
        if open == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open, Some(0.0), "the stream ended");
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_events_prompts_and_agents() {
    let server = TestServer::sqlite().await;
    let api = &server.client();
    let created = api
        .post("/v1/sessions", &server.admin_key, json!({}), 201)
        .await;
    let session = format!("/v1/sessions/{}", text(&created, "/session/id"));
    let host = text(&created, "/host/token");
    let events_before =
        sample(&metrics(api).await, "tandem_events_written_total", &[]).unwrap_or(0.0);
    let prompt = api
        .post(
            &format!("{session}/prompts"),
            host,
            json!({"text": "count me"}),
            201,
        )
        .await;
    let id = text(&prompt, "/id");
    let mut page = metrics(api).await;
    for _ in 0..300 {
        let status = api.get(&format!("{session}/prompts/{id}"), host, 200).await;
        if status["status"] == "completed" {
            page = metrics(api).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let completed = sample(
        &page,
        "tandem_prompts_finished_total",
        &[r#"outcome="completed""#],
    );
    assert!(completed.is_some_and(|n| n >= 1.0), "{page}");
    assert!(
        page.contains("# TYPE tandem_prompt_duration_seconds histogram"),
        "{page}"
    );
    let events = sample(&page, "tandem_events_written_total", &[]).unwrap_or(0.0);
    assert!(
        events >= events_before + 4.0,
        "submitted, started, output, completed: {events_before} -> {events}"
    );
    // The session's agent runs until the session ends.
    let agents = sample(&page, "tandem_agent_processes", &[]);
    assert!(agents.is_some_and(|n| n >= 1.0), "{page}");
    server.stop().await;
}

/// A write refused for the rate limit: 429 problem with a `Retry-After`.
async fn refused(api: &Client, path: &str, token: Option<&str>, body: Value) {
    let mut request = support::http_client()
        .request(Method::POST, format!("{}{path}", api.base))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("whole seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.expect("a problem");
    assert_eq!(code(&problem), "RATE_LIMITED");
    assert_eq!(problem["status"], 429);
}

#[tokio::test]
async fn writes_are_limited_per_caller_and_joins_per_address() {
    let server = TestServer::sqlite_with(|config| {
        config.rate_limit = Some(tandem_http::RateLimit {
            per_minute: NonZeroU32::new(1).unwrap(),
            burst: NonZeroU32::new(2).unwrap(),
        });
    })
    .await;
    let api = &server.client();
    let created = api
        .post(
            "/v1/sessions",
            &server.admin_key,
            json!({ "mode": "prompt_direct" }),
            201,
        )
        .await;
    let session = format!("/v1/sessions/{}", text(&created, "/session/id"));
    let host = text(&created, "/host/token");
    let invite = text(&created, "/invite/token");

    // Joins carry no credential: the budget is this client's address.
    let join = json!({ "inviteToken": invite, "displayName": "Guest" });
    let joined = api
        .call(Method::POST, "/v1/join", None, Some(join.clone()), 201)
        .await;
    let guest = text(&joined, "/token").to_owned();
    api.call(Method::POST, "/v1/join", None, Some(join.clone()), 201)
        .await;
    refused(api, "/v1/join", None, join).await;

    // Participants each have their own budget.
    let comments = format!("{session}/comments");
    for n in 0..2 {
        api.post(&comments, host, json!({ "text": format!("c{n}") }), 201)
            .await;
    }
    refused(api, &comments, Some(host), json!({ "text": "c2" })).await;
    api.post(&comments, &guest, json!({ "text": "g0" }), 201)
        .await;
    // Reads are not limited.
    api.get(&comments, host, 200).await;
    server.stop().await;
}

#[test]
fn a_zero_burst_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TANDEM_RATE_LIMIT_BURST", "0")
        .env("DATABASE_URL", "sqlite://never-created.db")
        .output()
        .expect("run tandem");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TANDEM_RATE_LIMIT_BURST"), "{stderr}");
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_sigterm_stops_gracefully() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let admin = "json-logs-admin-key-0123456789abcdef";
    let child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("tandem.db").display()),
        )
        .env("TANDEM_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("TANDEM_BOOTSTRAP_ADMIN_KEY", admin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tandem");
    let pid = child.id().to_string();
    let signal = |name: &str| {
        let _ = Command::new("kill").args([name, &pid]).status();
    };
    let base = format!("http://127.0.0.1:{port}");
    let http = support::http_client();
    let mut ready = false;
    for _ in 0..100 {
        let reply = http.get(format!("{base}/readyz")).send().await;
        if reply.is_ok_and(|reply| reply.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !ready {
        signal("-KILL");
        panic!("tandem did not become ready");
    }
    let listed = http
        .get(format!("{base}/v1/sessions"))
        .bearer_auth(admin)
        .header("x-request-id", "json-logs-42")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(listed.status(), 200);

    signal("-TERM");
    let waited = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    let Ok(output) = waited else {
        signal("-KILL");
        panic!("tandem did not stop within 10 s of SIGTERM");
    };
    let output = output.expect("the waiting task").expect("the exit status");
    assert!(output.status.success(), "{:?}", output.status);
    let logs = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect();
    let answered = lines
        .iter()
        .find(|line| {
            line["message"] == "finished processing request"
                && line["span"]["request_id"] == "json-logs-42"
        })
        .unwrap_or_else(|| panic!("the request is logged with its id:\n{logs}"));
    assert_eq!(answered["status"], 200);
    assert_eq!(answered["span"]["path"], "/v1/sessions");
    assert!(
        answered["span"]["caller"]
            .as_str()
            .is_some_and(|caller| caller.starts_with("api_key:")),
        "{answered}"
    );
    // Every line logged inside a request names it.
    for line in lines
        .iter()
        .filter(|line| line["span"]["name"] == "request")
    {
        assert!(
            line["span"]["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{line}"
        );
    }
    assert!(
        lines.iter().any(|line| line["message"] == "tandem stopped"),
        "{logs}"
    );
    assert!(!logs.contains(admin), "the admin key was logged:\n{logs}");
}
