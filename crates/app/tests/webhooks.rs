//! Webhooks end to end: the real server (in process, or the real binary killed
//! with SIGKILL), real HTTP receivers on loopback, signatures checked with the
//! independent `standardwebhooks` crate, on SQLite and Postgres.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Client, TestServer, code, text};
use tandem::Config;
use tandem_domain::RetryPolicy;

/// How long a test waits for a delivery before it gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// An id no record has.
const NO_SUCH_ID: &str = "01900000-0000-7000-8000-000000000000";

// ----- the receiver -----

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// 204.
    Ok,
    /// This status, with `Retry-After` seconds if given.
    Fail(u16, Option<u64>),
    /// Never answers (well, after a minute).
    Hang,
}

/// One request that reached the receiver, and how it was answered (`None`:
/// it was left hanging).
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
    answered: Option<u16>,
}

impl Hit {
    fn id(&self) -> &str {
        self.headers["webhook-id"].to_str().expect("an ASCII id")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn succeeded(&self) -> bool {
        self.answered
            .is_some_and(|status| (200..300).contains(&status))
    }
}

#[derive(Debug)]
struct Inbox {
    hits: Mutex<Vec<Hit>>,
    mode: Mutex<Mode>,
}

/// An HTTP receiver on 127.0.0.1 that records every request.
struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start(mode: Mode) -> Self {
        Self::start_at("127.0.0.1:0".parse().expect("addr"), mode).await
    }

    /// A receiver on `addr` (to bring one back on the port it had).
    async fn start_at(addr: SocketAddr, mode: Mode) -> Self {
        let inbox = Arc::new(Inbox {
            hits: Mutex::default(),
            mode: Mutex::new(mode),
        });
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::clone(&inbox);
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let inbox = Arc::clone(&state);
            async move { answer(&inbox, uri, headers, body).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            inbox,
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, mode: Mode) {
        *self.inbox.mode.lock().expect("mode") = mode;
    }

    /// Stops listening: connections are refused from now on.
    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.inbox.hits.lock().expect("hits").clone()
    }

    /// The requests answered 2xx, once there are `count` of them at `path`.
    async fn delivered(&self, path: &str, count: usize) -> Vec<Hit> {
        self.wait(|hits| {
            let delivered: Vec<Hit> = hits
                .iter()
                .filter(|hit| hit.succeeded() && hit.headers["x-path"] == path)
                .cloned()
                .collect();
            (delivered.len() >= count).then_some(delivered)
        })
        .await
    }

    /// Waits until `ready` finds what it needs among the hits.
    async fn wait<T>(&self, ready: impl Fn(&[Hit]) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = ready(&self.hits()) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting; the receiver has {:?}",
                self.hits()
                    .iter()
                    .map(|hit| (hit.headers["x-path"].clone(), hit.answered))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn answer(inbox: &Inbox, uri: Uri, mut headers: HeaderMap, body: Bytes) -> Response {
    let mode = *inbox.mode.lock().expect("mode");
    let answered = match mode {
        Mode::Ok => Some(204),
        Mode::Fail(status, _) => Some(status),
        Mode::Hang => None,
    };
    // Which path it was sent to, recorded as a header of the hit.
    headers.insert(
        "x-path",
        HeaderValue::from_str(uri.path()).expect("a path is a header value"),
    );
    inbox.hits.lock().expect("hits").push(Hit {
        at: Instant::now(),
        headers,
        body,
        answered,
    });
    match mode {
        Mode::Ok => StatusCode::NO_CONTENT.into_response(),
        Mode::Fail(status, retry_after) => {
            let status = StatusCode::from_u16(status).expect("a status");
            match retry_after {
                Some(seconds) => (status, [("retry-after", seconds.to_string())]).into_response(),
                None => status.into_response(),
            }
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

/// Checks a hit's signature with the secret (the `standardwebhooks` crate,
/// which also checks the timestamp is recent) and returns its JSON body.
fn verified(secret: &str, hit: &Hit) -> Value {
    let webhook = standardwebhooks::Webhook::new(secret).expect("a whsec_ secret");
    webhook
        .verify(&hit.body, &hit.headers)
        .unwrap_or_else(|error| panic!("the signature does not verify: {error}"));
    hit.json()
}

// ----- the server -----

/// Webhooks may reach loopback over http; retries are quick; scans frequent.
fn local_webhooks(config: &mut Config) {
    let webhooks = &mut config.webhooks;
    webhooks.outbound.allow_http = true;
    webhooks.outbound.allowed_networks = vec!["127.0.0.0/8".parse().expect("network")];
    webhooks.outbound.timeout = Duration::from_secs(2);
    webhooks.delivery.retry = RetryPolicy {
        first_delay: Duration::from_millis(200),
        max_delay: Duration::from_millis(400),
        give_up_after: Duration::from_secs(120),
    };
    webhooks.delivery.scan_interval = Duration::from_millis(100);
    webhooks.delivery.lease_ttl = Duration::from_secs(5);
}

async fn local_server() -> TestServer {
    TestServer::sqlite_with(local_webhooks).await
}

fn postgres_url(options: &sqlx::postgres::PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().expect("a test database")
    )
}

/// A session in `prompt_with_approval` mode with its host and one collaborator.
struct Team {
    id: String,
    path: String,
    host: String,
    ada: String,
}

async fn team(api: &Client, key: &str) -> Team {
    let created = api
        .post(
            "/v1/sessions",
            key,
            json!({"title": "Fix <the> flaky test", "mode": "prompt_with_approval"}),
            201,
        )
        .await;
    let joined = api
        .call(
            Method::POST,
            "/v1/join",
            None,
            Some(json!({"inviteToken": text(&created, "/invite/token"), "displayName": "Ada"})),
            201,
        )
        .await;
    let id = text(&created, "/session/id").to_owned();
    Team {
        path: format!("/v1/sessions/{id}"),
        id,
        host: text(&created, "/host/token").to_owned(),
        ada: text(&joined, "/token").to_owned(),
    }
}

impl Team {
    /// `token` submits a prompt; returns its id.
    async fn submit(&self, api: &Client, token: &str, prompt: &str) -> String {
        let prompt = api
            .post(
                &format!("{}/prompts", self.path),
                token,
                json!({ "text": prompt }),
                201,
            )
            .await;
        text(&prompt, "/id").to_owned()
    }

    async fn events(&self, api: &Client) -> Vec<Value> {
        let page = api
            .get(&format!("{}/events?limit=200", self.path), &self.host, 200)
            .await;
        page["events"].as_array().expect("events").clone()
    }

    /// The session's events once one matches `done`.
    async fn events_until(&self, api: &Client, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let events = self.events(api).await;
            if events.iter().any(&done) {
                return events;
            }
            assert!(Instant::now() < deadline, "gave up waiting: {events:?}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

/// Creates a webhook to `url` (with `extra` fields); returns its id and secret.
async fn webhook(api: &Client, key: &str, url: &str, extra: Value) -> (String, String) {
    let mut body = json!({ "url": url });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let created = api.post("/v1/webhooks", key, body, 201).await;
    (
        text(&created, "/webhook/id").to_owned(),
        text(&created, "/secret").to_owned(),
    )
}

async fn deliveries(api: &Client, key: &str, webhook: &str) -> Vec<Value> {
    let page = api
        .get(&format!("/v1/webhooks/{webhook}/deliveries"), key, 200)
        .await;
    page["deliveries"].as_array().expect("deliveries").clone()
}

/// Waits until the webhook's deliveries satisfy `done`.
async fn deliveries_until(
    api: &Client,
    key: &str,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let list = deliveries(api, key, webhook).await;
        if done(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {list:?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

// ----- the tests -----

/// What a team needs to hear of reaches its receiver, signed and in order: a
/// collaborator's prompt awaiting approval, the agent asking to run a tool, a
/// failed prompt, the end of the session; with links to act on each. A Slack
/// endpoint gets readable messages of the same.
async fn needs_you(server: &TestServer) {
    let api = server.client();
    let admin = server.admin_key.as_str();
    let receiver = Receiver::start(Mode::Ok).await;
    let created = api
        .post(
            "/v1/webhooks",
            admin,
            json!({"url": receiver.url("/standard"), "description": "team chat"}),
            201,
        )
        .await;
    let secret = text(&created, "/secret").to_owned();
    let hook = text(&created, "/webhook/id").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        created["webhook"]["eventTypes"],
        json!([
            "agent.permission_requested",
            "prompt.failed",
            "prompt.submitted:pending_approval",
            "session.closed"
        ])
    );
    assert_eq!(created["webhook"]["enabled"], true);
    let shown = api.get(&format!("/v1/webhooks/{hook}"), admin, 200).await;
    assert!(
        !shown.to_string().contains(&secret[6..]),
        "the secret is shown once"
    );
    let (slack, slack_secret) = webhook(
        &api,
        admin,
        &receiver.url("/slack"),
        json!({"format": "slack"}),
    )
    .await;
    assert_ne!(slack_secret, secret);

    let t = team(&api, admin).await;
    // 1. A collaborator's prompt waits for the host.
    let asked = t.submit(&api, &t.ada, "please fix the flaky test").await;
    t.events_until(&api, |e| e["type"] == "prompt.submitted")
        .await;
    api.post(
        &format!("{}/prompts/{asked}/approve", t.path),
        &t.host,
        json!({}),
        200,
    )
    .await;
    // 2. The agent asks to run a tool; the host allows it. (The host's own
    // prompt runs directly: no notification for it.)
    let tool = t.submit(&api, &t.host, "/permission\nrun the tests").await;
    let events = t
        .events_until(&api, |e| e["type"] == "agent.permission_requested")
        .await;
    let request = events
        .iter()
        .find(|e| e["type"] == "agent.permission_requested")
        .map(|e| text(e, "/data/requestId").to_owned())
        .expect("a permission request");
    api.post(
        &format!("{}/permissions/{request}", t.path),
        &t.host,
        json!({"optionId": "allow"}),
        200,
    )
    .await;
    // 3. A prompt fails.
    let failing = t.submit(&api, &t.host, "/fail").await;
    t.events_until(&api, |e| {
        e["type"] == "prompt.failed" && e["data"]["promptId"] == failing.as_str()
    })
    .await;
    // 4. The host closes the session.
    api.post(
        &format!("{}/close", t.path),
        &t.host,
        json!({"summary": "fixed"}),
        200,
    )
    .await;

    let hits = receiver.delivered("/standard", 4).await;
    let events = t.events(&api).await;
    let public = format!("http://{}", server.addr);
    let page = format!("{public}/s/{}", t.id);
    let mut seqs = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for hit in &hits {
        let body = verified(&secret, hit);
        assert!(hit.id().starts_with("msg_"), "{}", hit.id());
        assert!(ids.insert(hit.id().to_owned()), "one id per event");
        assert_eq!(body["sessionId"], t.id.as_str());
        assert_eq!(body["links"]["session"], page.as_str());
        // The event exactly as the events page shows it.
        let seq = body["seq"].as_u64().expect("seq");
        let mut event = body.clone();
        let object = event.as_object_mut().expect("an object");
        object.remove("sessionId");
        object.remove("links");
        let listed = events
            .iter()
            .find(|e| e["seq"] == seq)
            .expect("the event is in the log");
        assert_eq!(&event, listed);
        seqs.push(seq);
    }
    let types: Vec<Value> = hits.iter().map(|hit| hit.json()["type"].clone()).collect();
    assert_eq!(
        types,
        [
            "prompt.submitted",
            "agent.permission_requested",
            "prompt.failed",
            "session.closed"
        ]
    );
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "in order");
    let submitted = hits[0].json();
    assert_eq!(submitted["data"]["status"], "pending_approval");
    assert_eq!(submitted["data"]["id"], asked.as_str());
    assert_eq!(
        submitted["links"]["prompt"],
        format!("{page}#prompt-{asked}").as_str()
    );
    assert_eq!(
        submitted["links"]["approve"],
        format!("{public}/v1/sessions/{}/prompts/{asked}/approve", t.id).as_str()
    );
    let permission = hits[1].json();
    assert_eq!(permission["data"]["promptId"], tool.as_str());
    assert_eq!(
        permission["links"]["permission"],
        format!("{page}#permission-{request}").as_str()
    );
    assert_eq!(
        permission["links"]["answer"],
        format!("{public}/v1/sessions/{}/permissions/{request}", t.id).as_str()
    );
    assert_eq!(hits[2].json()["data"]["promptId"], failing.as_str());

    // The Slack endpoint got the same four, as readable messages.
    let messages: Vec<String> = receiver
        .delivered("/slack", 4)
        .await
        .iter()
        .map(|hit| text(&verified(&slack_secret, hit), "/text").to_owned())
        .collect();
    assert!(
        messages[0].contains("*Ada* wants to prompt the agent"),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains("&lt;the&gt;"),
        "escaped: {}",
        messages[0]
    );
    assert!(
        messages[0].contains("> please fix the flaky test"),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains(&format!("<{page}#prompt-{asked}|Review the prompt>")),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains("Answer the request"),
        "{}",
        messages[1]
    );
    assert!(messages[2].contains("A prompt failed"), "{}", messages[2]);
    assert!(
        messages[3].contains("ended (closed by host)"),
        "{}",
        messages[3]
    );
    assert!(messages[3].contains("> fixed"), "{}", messages[3]);

    // Attempts are visible.
    let list = deliveries(&api, admin, &hook).await;
    assert_eq!(list.len(), 4);
    for delivery in &list {
        assert_eq!(delivery["status"], "succeeded");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["responseStatus"], 204);
        assert!(delivery["latencyMs"].is_u64());
        assert_eq!(delivery["error"], Value::Null);
    }
    assert_eq!(
        list.iter()
            .map(|d| d["eventType"].clone())
            .collect::<Vec<_>>(),
        [
            "session.closed",
            "prompt.failed",
            "agent.permission_requested",
            "prompt.submitted"
        ],
        "newest first"
    );
    assert_eq!(deliveries(&api, admin, &slack).await.len(), 4);
}

#[tokio::test]
async fn what_needs_you_arrives_signed_and_in_order_on_sqlite() {
    let server = local_server().await;
    needs_you(&server).await;
    let metrics = support::http_client()
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"tandem_webhook_deliveries_total{outcome="succeeded"}"#),
        "{metrics}"
    );
    assert!(metrics.contains("tandem_webhook_delivery_lag_seconds_bucket"));
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn what_needs_you_arrives_signed_and_in_order_on_postgres(
    _pool: sqlx::postgres::PgPoolOptions,
    options: sqlx::postgres::PgConnectOptions,
) {
    let server = TestServer::start_with(postgres_url(&options), None, local_webhooks).await;
    needs_you(&server).await;
    server.stop().await;
}

/// A receiver that fails (503, then 429 with `Retry-After`) gets everything,
/// once each, in order, once it recovers; later events wait behind the one
/// being retried.
#[tokio::test]
async fn a_failing_receiver_gets_everything_once_it_recovers() {
    let server = local_server().await;
    let api = server.client();
    let admin = server.admin_key.as_str();
    let receiver = Receiver::start(Mode::Fail(503, None)).await;
    let (hook, secret) = webhook(&api, admin, &receiver.url("/hook"), json!({})).await;
    let t = team(&api, admin).await;
    let mut prompts = Vec::new();
    for n in 0..3 {
        prompts.push(t.submit(&api, &t.ada, &format!("prompt {n}")).await);
    }
    receiver.wait(|hits| (hits.len() >= 3).then_some(())).await;
    let list = deliveries_until(&api, admin, &hook, |list| {
        list.first()
            .is_some_and(|d| d["attempts"].as_u64() >= Some(2))
    })
    .await;
    assert_eq!(
        list.len(),
        1,
        "later events wait behind the first: {list:?}"
    );
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["responseStatus"], 503);
    assert_eq!(list[0]["error"], "the endpoint answered 503");
    assert!(list[0]["nextAttemptAt"].is_string());
    assert!(
        receiver
            .hits()
            .iter()
            .all(|hit| hit.json()["data"]["id"] == prompts[0].as_str()),
        "only the first event was attempted"
    );

    // 429 with Retry-After: 1 — the next attempt waits a second, not the
    // few hundred milliseconds of the backoff.
    let before = receiver.hits().len();
    receiver.set(Mode::Fail(429, Some(1)));
    let busy = receiver
        .wait(|hits| {
            hits.iter()
                .skip(before)
                .find(|hit| hit.answered == Some(429))
                .cloned()
        })
        .await;
    receiver.set(Mode::Ok);
    let hits = receiver.delivered("/hook", 3).await;
    let retried = receiver
        .hits()
        .into_iter()
        .find(|hit| hit.at > busy.at)
        .expect("an attempt after the 429");
    assert!(
        retried.at - busy.at >= Duration::from_millis(950),
        "Retry-After was honoured: {:?}",
        retried.at - busy.at
    );
    let delivered: Vec<Value> = hits
        .iter()
        .map(|hit| verified(&secret, hit)["data"]["id"].clone())
        .collect();
    assert_eq!(delivered, prompts, "each once, in order");
    let ids: std::collections::BTreeSet<&str> = hits.iter().map(Hit::id).collect();
    assert_eq!(ids.len(), 3);
    // Every attempt of one event carried the same id.
    let first_id = hits[0].id();
    assert!(
        receiver
            .hits()
            .iter()
            .filter(|hit| hit.json()["data"]["id"] == prompts[0].as_str())
            .all(|hit| hit.id() == first_id)
    );
    let list = deliveries_until(&api, admin, &hook, |list| list.len() == 3).await;
    assert!(list.iter().all(|d| d["status"] == "succeeded"));
    assert!(list[2]["attempts"].as_u64() >= Some(3), "{list:?}");
    server.stop().await;
}

/// A 4xx refuses one delivery for good; the next event goes on; the refused
/// one can be retried by hand.
#[tokio::test]
async fn a_refused_delivery_is_recorded_skipped_and_retried_by_hand() {
    let server = local_server().await;
    let api = server.client();
    let admin = server.admin_key.as_str();
    let receiver = Receiver::start(Mode::Fail(400, None)).await;
    let (hook, secret) = webhook(&api, admin, &receiver.url("/hook"), json!({})).await;
    let t = team(&api, admin).await;
    let refused = t.submit(&api, &t.ada, "refused").await;
    let list = deliveries_until(&api, admin, &hook, |list| {
        list.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!(list[0]["attempts"], 1, "a 400 is not retried");
    assert_eq!(list[0]["responseStatus"], 400);
    let failed = text(&list[0], "/id").to_owned();

    receiver.set(Mode::Ok);
    let next = t.submit(&api, &t.ada, "next").await;
    let hits = receiver.delivered("/hook", 1).await;
    assert_eq!(verified(&secret, &hits[0])["data"]["id"], next.as_str());

    let retried = api
        .post(
            &format!("/v1/webhooks/{hook}/deliveries/{failed}/retry"),
            admin,
            json!({}),
            200,
        )
        .await;
    assert_eq!(retried["status"], "succeeded");
    assert_eq!(retried["attempts"], 2);
    assert_eq!(retried["responseStatus"], 204);
    let hits = receiver.delivered("/hook", 2).await;
    let body = verified(&secret, &hits[1]);
    assert_eq!(body["data"]["id"], refused.as_str());
    let again = api
        .post(
            &format!("/v1/webhooks/{hook}/deliveries/{failed}/retry"),
            admin,
            json!({}),
            409,
        )
        .await;
    assert_eq!(code(&again), "WEBHOOK_DELIVERY_NOT_FAILED");
    let missing = api
        .post(
            &format!("/v1/webhooks/{hook}/deliveries/{NO_SUCH_ID}/retry"),
            admin,
            json!({}),
            404,
        )
        .await;
    assert_eq!(code(&missing), "WEBHOOK_DELIVERY_NOT_FOUND");
    let succeeded = api
        .get(
            &format!("/v1/webhooks/{hook}/deliveries?status=succeeded&limit=1"),
            admin,
            200,
        )
        .await;
    assert_eq!(succeeded["deliveries"].as_array().map(Vec::len), Some(1));
    assert!(
        succeeded["next"].is_string(),
        "a full page has a next cursor"
    );
    server.stop().await;
}

/// Deliveries failing for longer than retries last are given up and the
/// webhook is disabled; enabled again, it starts from now.
#[tokio::test]
async fn a_webhook_failing_for_too_long_is_disabled_and_restarts_from_now() {
    let server = TestServer::sqlite_with(|config| {
        local_webhooks(config);
        config.webhooks.delivery.retry.give_up_after = Duration::from_secs(1);
    })
    .await;
    let api = server.client();
    let admin = server.admin_key.as_str();
    let receiver = Receiver::start(Mode::Fail(503, None)).await;
    let (hook, secret) = webhook(&api, admin, &receiver.url("/hook"), json!({})).await;
    let t = team(&api, admin).await;
    t.submit(&api, &t.ada, "never delivered").await;
    let list = deliveries_until(&api, admin, &hook, |list| {
        list.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    let error = text(&list[0], "/error");
    assert!(error.contains("gave up after"), "{error}");
    assert!(list[0]["attempts"].as_u64() >= Some(2));
    let disabled = api.get(&format!("/v1/webhooks/{hook}"), admin, 200).await;
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["disabledReason"], "failing");
    assert!(disabled["disabledAt"].is_string());

    let attempts = receiver.hits().len();
    t.submit(&api, &t.ada, "while disabled").await;
    receiver.set(Mode::Ok);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.hits().len(),
        attempts,
        "a disabled webhook gets nothing"
    );

    let enabled = api
        .patch(
            &format!("/v1/webhooks/{hook}"),
            admin,
            json!({"enabled": true}),
            200,
        )
        .await;
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabledReason"], Value::Null);
    let after = t.submit(&api, &t.ada, "after").await;
    let hits = receiver.delivered("/hook", 1).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(verified(&secret, &hits[0])["data"]["id"], after.as_str());
    server.stop().await;
}

/// The outbound policy refuses private targets when a webhook is saved, and
/// again when it is delivered (a server whose policy is stricter than the one
/// that saved it).
#[tokio::test]
async fn private_targets_are_refused_at_creation_and_at_delivery() {
    let strict = TestServer::sqlite().await;
    let api = strict.client();
    let admin = strict.admin_key.as_str();
    for url in [
        "http://hooks.example.com/plain-http",
        "https://127.0.0.1/x",
        "https://localhost:8443/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest",
        "https://[::ffff:10.0.0.1]/x",
        "https://192.168.1.10/x",
        "https://100.64.0.1/x",
    ] {
        let refused = api
            .post("/v1/webhooks", admin, json!({ "url": url }), 422)
            .await;
        assert_eq!(code(&refused), "WEBHOOK_URL_REFUSED", "{url}");
    }
    let invalid = api
        .post("/v1/webhooks", admin, json!({"url": "ftp://x.test/"}), 422)
        .await;
    assert_eq!(code(&invalid), "VALIDATION_FAILED");
    strict.stop().await;

    // Saved where loopback was allowed, delivered where it is not.
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    let admin = "webhook-test-admin-key-0123456789abcdef".to_owned();
    let key = admin.clone();
    let receiver = Receiver::start(Mode::Ok).await;
    let lenient = TestServer::start_with(url.clone(), None, |config| {
        local_webhooks(config);
        config.bootstrap_admin_key = Some(key);
    })
    .await;
    let (hook, _) = webhook(&lenient.client(), &admin, &receiver.url("/hook"), json!({})).await;
    lenient.stop().await;
    let key = admin.clone();
    let server = TestServer::start_with(url, None, |config| {
        local_webhooks(config);
        config.webhooks.outbound.allowed_networks.clear();
        config.bootstrap_admin_key = Some(key);
    })
    .await;
    let api = server.client();
    let t = team(&api, &admin).await;
    t.submit(&api, &t.ada, "to nowhere").await;
    let list = deliveries_until(&api, &admin, &hook, |list| {
        list.first()
            .is_some_and(|d| d["attempts"].as_u64() >= Some(1))
    })
    .await;
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["responseStatus"], Value::Null);
    let error = text(&list[0], "/error");
    assert!(
        error.contains("refused") && error.contains("loopback"),
        "{error}"
    );
    assert!(receiver.hits().is_empty(), "nothing was sent");
    // Moving it to a private address is refused too.
    let moved = api
        .patch(
            &format!("/v1/webhooks/{hook}"),
            &admin,
            json!({"url": "http://10.0.0.1/hook"}),
            422,
        )
        .await;
    assert_eq!(code(&moved), "WEBHOOK_URL_REFUSED");
    server.stop().await;
}

/// A receiver that never answers delays neither writes nor other webhooks.
#[tokio::test]
async fn a_slow_endpoint_delays_nothing_else() {
    let server = local_server().await;
    let api = server.client();
    let admin = server.admin_key.as_str();
    let slow = Receiver::start(Mode::Hang).await;
    let fast = Receiver::start(Mode::Ok).await;
    webhook(&api, admin, &slow.url("/slow"), json!({})).await;
    let (_, secret) = webhook(&api, admin, &fast.url("/fast"), json!({})).await;
    let t = team(&api, admin).await;
    let first = t.submit(&api, &t.ada, "first").await;
    slow.wait(|hits| (!hits.is_empty()).then_some(())).await;
    let started = Instant::now();
    for n in 0..10 {
        api.post(
            &format!("{}/comments", t.path),
            &t.ada,
            json!({ "text": format!("comment {n}") }),
            201,
        )
        .await;
    }
    let second = t.submit(&api, &t.ada, "second").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "writes are not held up: {:?}",
        started.elapsed()
    );
    let hits = fast.delivered("/fast", 2).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the other endpoint is not held up: {:?}",
        started.elapsed()
    );
    let ids: Vec<Value> = hits
        .iter()
        .map(|hit| verified(&secret, hit)["data"]["id"].clone())
        .collect();
    assert_eq!(ids, [first, second]);
    server.stop().await;
}

/// A rotated secret signs beside the new one for its grace, so a receiver that
/// knows either verifies the request.
#[tokio::test]
async fn a_rotated_secret_keeps_signing_beside_the_new_one() {
    let server = local_server().await;
    let api = server.client();
    let admin = server.admin_key.as_str();
    let receiver = Receiver::start(Mode::Ok).await;
    let (hook, old) = webhook(&api, admin, &receiver.url("/hook"), json!({})).await;
    let rotated = api
        .post(
            &format!("/v1/webhooks/{hook}/rotate-secret"),
            admin,
            json!({}),
            200,
        )
        .await;
    let new = text(&rotated, "/secret").to_owned();
    assert_ne!(new, old);
    assert!(rotated["webhook"]["previousSecretExpiresAt"].is_string());
    let t = team(&api, admin).await;
    t.submit(&api, &t.ada, "signed twice").await;
    let hits = receiver.delivered("/hook", 1).await;
    let signatures = hits[0].headers["webhook-signature"]
        .to_str()
        .expect("ASCII");
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    verified(&old, &hits[0]);
    verified(&new, &hits[0]);
    assert!(
        standardwebhooks::Webhook::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .expect("secret")
            .verify(&hits[0].body, &hits[0].headers)
            .is_err(),
        "another secret does not verify"
    );
    server.stop().await;
}

/// Two replicas on one Postgres deliver each event to the endpoint once.
#[sqlx::test(migrations = false)]
async fn two_replicas_deliver_each_event_once_on_postgres(
    _pool: sqlx::postgres::PgPoolOptions,
    options: sqlx::postgres::PgConnectOptions,
) {
    let url = postgres_url(&options);
    let admin = "two-replica-webhook-admin-0123456789abcdef".to_owned();
    let replica = |key: String| {
        move |config: &mut Config| {
            local_webhooks(config);
            config.bootstrap_admin_key = Some(key);
        }
    };
    let a = TestServer::start_with(url.clone(), None, replica(admin.clone())).await;
    let b = TestServer::start_with(url, None, replica(admin.clone())).await;
    let (api_a, api_b) = (a.client(), b.client());
    let receiver = Receiver::start(Mode::Ok).await;
    let (_, secret) = webhook(&api_a, &admin, &receiver.url("/hook"), json!({})).await;
    let teams = [team(&api_a, &admin).await, team(&api_b, &admin).await];
    let mut prompts = Vec::new();
    for n in 0..8 {
        let api = if n % 2 == 0 { &api_a } else { &api_b };
        let t = &teams[n % 2];
        prompts.push(t.submit(api, &t.ada, &format!("prompt {n}")).await);
    }
    receiver.delivered("/hook", prompts.len()).await;
    // Several scans of both replicas later, still once each.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let hits = receiver.hits();
    let mut delivered: Vec<String> = hits
        .iter()
        .map(|hit| text(&verified(&secret, hit), "/data/id").to_owned())
        .collect();
    assert_eq!(hits.len(), prompts.len(), "no event twice");
    delivered.sort();
    prompts.sort();
    assert_eq!(delivered, prompts);
    a.stop().await;
    b.stop().await;
}

/// The webhook API: scopes, workspaces, validation, paging, changes.
#[tokio::test]
async fn the_webhook_api_checks_scopes_workspaces_and_input() {
    let server = local_server().await;
    let api = server.client();
    let admin = server.admin_key.as_str();
    let receiver = Receiver::start(Mode::Ok).await;
    let url = receiver.url("/hook");
    let key = |scopes: Value| {
        let api = api.clone();
        async move {
            let created = api
                .post(
                    "/v1/api-keys",
                    admin,
                    json!({"name": "k", "scopes": scopes}),
                    201,
                )
                .await;
            text(&created, "/secret").to_owned()
        }
    };
    let reader = key(json!(["webhooks:read"])).await;
    let writer = key(json!(["webhooks:write"])).await;
    let sessions = key(json!(["sessions:write"])).await;
    let denied = api
        .post("/v1/webhooks", &reader, json!({ "url": url }), 403)
        .await;
    assert_eq!(code(&denied), "INSUFFICIENT_SCOPE");
    let denied = api.get("/v1/webhooks", &sessions, 403).await;
    assert_eq!(code(&denied), "INSUFFICIENT_SCOPE");
    let (hook, _) = webhook(&api, &writer, &url, json!({})).await;
    assert_eq!(
        api.get("/v1/webhooks", &reader, 200).await["webhooks"][0]["id"],
        hook.as_str()
    );
    let t = team(&api, admin).await;
    let denied = api.get("/v1/webhooks", &t.host, 403).await;
    assert_eq!(code(&denied), "API_KEY_REQUIRED");

    // Another workspace sees nothing of it.
    let other = server
        .tandem
        .issue_api_key(
            tandem_domain::WorkspaceId::parse("other").expect("workspace"),
            tandem_domain::ApiKeyName::parse("other").expect("name"),
            [tandem_domain::Scope::Admin].into(),
        )
        .await
        .expect("key");
    let other = other.secret.expose();
    let hidden = api.get(&format!("/v1/webhooks/{hook}"), other, 404).await;
    assert_eq!(code(&hidden), "WEBHOOK_NOT_FOUND");
    api.get(&format!("/v1/webhooks/{hook}/deliveries"), other, 404)
        .await;
    api.delete(&format!("/v1/webhooks/{hook}"), other, 404)
        .await;
    assert_eq!(
        api.get("/v1/webhooks", other, 200).await["webhooks"],
        json!([])
    );
    let foreign_session = api
        .post(
            "/v1/webhooks",
            other,
            json!({"url": url, "sessionId": t.id}),
            404,
        )
        .await;
    assert_eq!(code(&foreign_session), "SESSION_NOT_FOUND");

    // Every invalid field is named.
    let invalid = api
        .post(
            "/v1/webhooks",
            admin,
            json!({"url": "not a url", "eventTypes": ["prompt.exploded"], "description": "x".repeat(501)}),
            422,
        )
        .await;
    let fields: Vec<&str> = invalid["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| text(error, "/field"))
        .collect();
    assert_eq!(fields, ["url", "eventTypes", "description"]);
    let empty = api
        .post(
            "/v1/webhooks",
            admin,
            json!({"url": url, "eventTypes": []}),
            422,
        )
        .await;
    assert_eq!(empty["errors"][0]["field"], "eventTypes");
    let unknown = api
        .post(
            "/v1/webhooks",
            admin,
            json!({"url": url, "secret": "mine"}),
            422,
        )
        .await;
    assert_eq!(code(&unknown), "VALIDATION_FAILED");
    let bad_path = api.get("/v1/webhooks/not-a-uuid", admin, 400).await;
    assert_eq!(code(&bad_path), "INVALID_PATH_PARAMETER");

    // Changes: one session, other events, no description.
    let changed = api
        .patch(
            &format!("/v1/webhooks/{hook}"),
            &writer,
            json!({"sessionId": t.id, "eventTypes": ["comment.posted"], "description": null, "format": "slack"}),
            200,
        )
        .await;
    assert_eq!(changed["sessionId"], t.id.as_str());
    assert_eq!(changed["eventTypes"], json!(["comment.posted"]));
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["format"], "slack");
    let cleared = api
        .patch(
            &format!("/v1/webhooks/{hook}"),
            &writer,
            json!({"sessionId": null, "enabled": false}),
            200,
        )
        .await;
    assert_eq!(cleared["sessionId"], Value::Null);
    assert_eq!(cleared["enabled"], false);
    assert_eq!(cleared["disabledReason"], "manual");

    // Pages, newest first.
    for _ in 0..2 {
        webhook(&api, admin, &url, json!({})).await;
    }
    let first = api.get("/v1/webhooks?limit=2", admin, 200).await;
    assert_eq!(first["webhooks"].as_array().map(Vec::len), Some(2));
    let next = text(&first, "/next").to_owned();
    let second = api
        .get(&format!("/v1/webhooks?limit=2&after={next}"), admin, 200)
        .await;
    assert_eq!(second["webhooks"][0]["id"], hook.as_str());
    assert_eq!(second["next"], Value::Null);

    api.delete(&format!("/v1/webhooks/{hook}"), &writer, 204)
        .await;
    let gone = api.get(&format!("/v1/webhooks/{hook}"), admin, 404).await;
    assert_eq!(code(&gone), "WEBHOOK_NOT_FOUND");
    server.stop().await;
}

// ----- the real binary, killed -----

/// A `tandem serve` process of the real binary, with webhooks to loopback
/// allowed and quick retries; killed without warning (SIGKILL) on drop.
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
            .env("TANDEM_WEBHOOK_ALLOW_HTTP", "true")
            .env("TANDEM_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("TANDEM_WEBHOOK_TIMEOUT_SECS", "2")
            .env("TANDEM_WEBHOOK_LEASE_SECS", "4")
            .env("TANDEM_WEBHOOK_RETRY_FIRST", "1s")
            .env("TANDEM_WEBHOOK_RETRY_MAX", "1s")
            .env("TANDEM_RATE_LIMIT_PER_MINUTE", "0")
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

/// Killing the server while the receiver is down, and again while a delivery
/// is in flight, loses nothing: once both are back, every notification
/// arrives (a duplicate would carry the same `webhook-id`).
#[tokio::test]
async fn a_killed_server_loses_no_notification() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    let admin = "webhook-kill-admin-key-0123456789abcdef";
    let mut receiver = Receiver::start(Mode::Ok).await;
    let addr = receiver.addr;
    receiver.stop();

    // The receiver is down: the first notification fails, and the server dies.
    let first = Process::start(&url, admin).await;
    let api = Client::new(&first.1);
    let (hook, secret) = webhook(&api, admin, &format!("http://{addr}/hook"), json!({})).await;
    let t = team(&api, admin).await;
    let one = t.submit(&api, &t.ada, "while the receiver is down").await;
    let list = deliveries_until(&api, admin, &hook, |list| {
        list.first().is_some_and(|d| d["status"] == "pending")
    })
    .await;
    assert!(text(&list[0], "/error").contains("unreachable"), "{list:?}");
    drop(first);

    // Back up, the receiver hangs; the server dies with the request in flight.
    let receiver = Receiver::start_at(addr, Mode::Hang).await;
    let second = Process::start(&url, admin).await;
    let api = Client::new(&second.1);
    let two = t.submit(&api, &t.ada, "while a delivery hangs").await;
    let in_flight = receiver.wait(|hits| hits.first().cloned()).await;
    drop(second);

    // Both back: everything arrives.
    receiver.set(Mode::Ok);
    let third = Process::start(&url, admin).await;
    let api = Client::new(&third.1);
    let hits = receiver.delivered("/hook", 2).await;
    let delivered: Vec<Value> = hits
        .iter()
        .map(|hit| verified(&secret, hit)["data"]["id"].clone())
        .collect();
    assert_eq!(delivered, [one.clone(), two], "in order, nothing lost");
    assert_eq!(
        in_flight.id(),
        hits[0].id(),
        "the delivery cut short is sent again under the same id"
    );
    let list = deliveries_until(&api, admin, &hook, |list| {
        list.len() == 2 && list.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    assert!(list[1]["attempts"].as_u64() >= Some(2), "{list:?}");
}
