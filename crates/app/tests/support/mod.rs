//! Boots the real server on 127.0.0.1:0 and drives it over HTTP with a small client
//! that asserts the status it expects.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures::{Stream, StreamExt};

use reqwest::Method;
use serde_json::Value;
use tandem::Config;
use tandem_ports::{Clock, SystemClock};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// An HTTP client for tests. reqwest is built with rustls and no default crypto
/// provider (the OpenAI executor brings its own configuration), so install the
/// same *ring* provider process-wide before building a client.
pub(crate) fn http_client() -> reqwest::Client {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::new()
}

/// Settings of a test server on `addr` over `database_url`: the echo agent is the
/// real `tandem echo-agent` (a test binary is not `tandem`), and agent leases are
/// short so that a test can watch one expire.
pub(crate) fn config(addr: SocketAddr, database_url: impl Into<String>) -> Config {
    let mut config = Config::new(addr, database_url);
    config.agents.insert(
        tandem_domain::AgentProfileName::default_profile(),
        tandem::AgentProfile::echo(env!("CARGO_BIN_EXE_tandem")),
    );
    config.runner.lease_ttl = Duration::from_secs(3);
    config.runner.scan_interval = Duration::from_millis(200);
    // Tests write far faster than people do; rate limits have tests of their own.
    config.rate_limit = None;
    config
}

/// The echo agent behind a shell that first appends its pid to `pid_file`, so
/// that a test can check the agent process is gone once it should be.
pub(crate) fn echo_recording_pids(pid_file: &std::path::Path) -> tandem::AgentProfile {
    let mut profile = tandem_agent::AcpProfile::new("/bin/sh");
    profile.args = vec![
        "-c".to_owned(),
        r#"echo $$ >> "$1"; exec "$2" echo-agent"#.to_owned(),
        "sh".to_owned(),
        pid_file.display().to_string(),
        env!("CARGO_BIN_EXE_tandem").to_owned(),
    ];
    tandem::AgentProfile::Acp(profile)
}

/// The pids `echo_recording_pids` wrote, once there are `count` of them.
pub(crate) async fn recorded_pids(pid_file: &std::path::Path, count: usize) -> Vec<u32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pids: Vec<u32> = std::fs::read_to_string(pid_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect();
        if pids.len() >= count {
            return pids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} agent pids never appeared in {}",
            pid_file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until process `pid` has exited (gone, or a zombie not yet reaped).
pub(crate) async fn wait_until_dead(pid: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
        });
        if !alive {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent process {pid} still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running server and what a test needs to talk to it.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) admin_key: String,
    pub(crate) tandem: tandem_service::Tandem,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Option<TempDir>,
}

impl TestServer {
    /// A server over a fresh SQLite file.
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
        Self::start(url, Some(dir)).await
    }

    /// A server over the Postgres database `options` name (a fresh one per test).
    pub(crate) async fn postgres(options: &sqlx::postgres::PgConnectOptions) -> Self {
        let url = format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().expect("a test database")
        );
        Self::start(url, None).await
    }

    async fn start(database_url: String, dir: Option<TempDir>) -> Self {
        Self::start_with(database_url, dir, |_| {}).await
    }

    /// A server over a fresh SQLite file, with settings changed by `adjust`.
    pub(crate) async fn sqlite_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
        Self::start_with(url, Some(dir), adjust).await
    }

    /// A server over `database_url`, with settings changed by `adjust`; `dir`
    /// (the SQLite file's) lives as long as the server.
    pub(crate) async fn start_with(
        database_url: String,
        dir: Option<TempDir>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_at(database_url, dir, adjust, Arc::new(SystemClock)).await
    }

    /// A server over a fresh SQLite file whose time is `clock`.
    pub(crate) async fn sqlite_at(clock: Arc<dyn Clock>, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
        Self::start_at(url, Some(dir), adjust, clock).await
    }

    async fn start_at(
        database_url: String,
        dir: Option<TempDir>,
        adjust: impl FnOnce(&mut Config),
        clock: Arc<dyn Clock>,
    ) -> Self {
        let listener = tandem::listen("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = config(addr, database_url);
        adjust(&mut config);
        let chosen_key = config.bootstrap_admin_key.clone();
        let server = tandem::build_with_clock(config, listener, clock)
            .await
            .expect("server builds");
        let admin_key = server
            .bootstrapped_key()
            .map(|created| created.secret.expose().to_owned())
            .or(chosen_key)
            .expect("a fresh database bootstraps an admin key, or the test chose it");
        let tandem = server.tandem().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            admin_key,
            tandem,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// A client of this server.
    pub(crate) fn client(&self) -> Client {
        Client {
            http: http_client(),
            base: format!("http://{}", self.addr),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }
}

/// An HTTP client for the API; every call states the status it expects.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    pub(crate) base: String,
}

/// A response: status, content type and JSON body (Null when empty).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Value,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`).
    pub(crate) fn new(base: &str) -> Self {
        Self {
            http: http_client(),
            base: base.to_owned(),
        }
    }

    /// Sends `body` (if any) as JSON with `token` (if any) and asserts the status.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let reply = self.send(method.clone(), path, token, body).await;
        assert_eq!(
            reply.status, expect,
            "{method} {path} answered {} with {}",
            reply.status, reply.body
        );
        if reply.status >= 400 {
            assert_eq!(
                reply.content_type, "application/problem+json",
                "{method} {path}: errors are problem+json"
            );
        }
        reply.body
    }

    /// Sends a request and returns whatever came back.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.finish(request).await
    }

    /// Sends a raw body with a given content type.
    pub(crate) async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.finish(request).await
    }

    async fn finish(&self, request: reqwest::RequestBuilder) -> Reply {
        let request = request.build().expect("a request");
        let request_method = request.method().clone();
        let response = self
            .http
            .execute(request)
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let method = request_method.to_string();
        let path = response.url().path().to_owned();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("a JSON body, got {:?}", String::from_utf8_lossy(&bytes))
            })
        };
        check_response(&method, &path, status, &content_type, &body);
        Reply {
            status,
            content_type,
            body,
        }
    }

    pub(crate) async fn get(&self, path: &str, token: &str, expect: u16) -> Value {
        self.call(Method::GET, path, Some(token), None, expect)
            .await
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: Value, expect: u16) -> Value {
        self.call(Method::POST, path, Some(token), Some(body), expect)
            .await
    }

    pub(crate) async fn patch(&self, path: &str, token: &str, body: Value, expect: u16) -> Value {
        self.call(Method::PATCH, path, Some(token), Some(body), expect)
            .await
    }

    pub(crate) async fn delete(&self, path: &str, token: &str, expect: u16) -> Value {
        self.call(Method::DELETE, path, Some(token), None, expect)
            .await
    }
}

/// The `code` of a problem document.
pub(crate) fn code(problem: &Value) -> &str {
    problem["code"]
        .as_str()
        .unwrap_or_else(|| panic!("a problem with a code, got {problem}"))
}

/// A string field of a JSON object.
pub(crate) fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {value}"))
}

pub(crate) type Events = std::pin::Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>;

/// Opens `path` as an event stream with a bearer token (or none, for tickets).
pub(crate) async fn open(
    base: &str,
    path: &str,
    token: Option<&str>,
    last_event_id: Option<u64>,
) -> Events {
    let mut request = http_client()
        .get(format!("{base}{path}"))
        .header("accept", "text/event-stream");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.expect("connect");
    assert_eq!(response.status(), 200, "the stream opens");
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    Box::pin(
        response
            .bytes_stream()
            .eventsource()
            .map(|event| event.map_err(|error| error.to_string())),
    )
}

/// The next event, or `None` when the stream ended; panics after 10 s of silence.
/// Every event is checked against the OpenAPI document.
pub(crate) async fn next(events: &mut Events) -> Option<Event> {
    match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
        Ok(Some(Ok(event))) => {
            let data: Value = serde_json::from_str(&event.data)
                .unwrap_or_else(|_| panic!("a frame of JSON, got {:?}", event.data));
            check_event(&data);
            assert_eq!(data["type"], event.event.as_str(), "`event:` is the type");
            assert_eq!(data["seq"].to_string(), event.id, "`id:` is the seq");
            Some(event)
        }
        Ok(Some(Err(error))) => panic!("the stream broke: {error}"),
        Ok(None) => None,
        Err(elapsed) => panic!("no event within 10 s ({elapsed})"),
    }
}

/// The OpenAPI document, as JSON (built once per test binary).
fn document() -> &'static Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_value(tandem_http::openapi()).expect("the document"))
}

/// A validator of `schema`, a schema of the document whose references lead into
/// its `components` (each compiled once per test binary).
fn validator(schema: &Value) -> Arc<jsonschema::Validator> {
    static VALIDATORS: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<String, Arc<jsonschema::Validator>>>,
    > = std::sync::LazyLock::new(Default::default);
    let key = schema.to_string();
    let mut validators = VALIDATORS
        .lock()
        .expect("no test panicked holding the lock");
    let validator = validators.entry(key).or_insert_with(|| {
        let rooted = serde_json::json!({
            "allOf": [schema],
            "components": document()["components"],
        });
        Arc::new(jsonschema::draft202012::new(&rooted).expect("the document's schemas compile"))
    });
    Arc::clone(validator)
}

/// Where `value` differs from `schema`.
fn schema_errors(schema: &Value, value: &Value) -> Vec<String> {
    validator(schema)
        .iter_errors(value)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

/// The document's path template that `path` is an instance of: the one with
/// the most literal segments in common (`/v1/sessions/{id}` for `/v1/sessions/7`).
fn path_template(path: &str) -> Option<(&'static str, &'static Value)> {
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object()?;
    paths
        .iter()
        .filter_map(|(template, item)| {
            let parts: Vec<&str> = template.split('/').collect();
            let fits = parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(part, segment)| part.starts_with('{') || part == segment);
            let literal = parts.iter().filter(|part| !part.starts_with('{')).count();
            fits.then_some((literal, template.as_str(), item))
        })
        .max_by_key(|(literal, ..)| *literal)
        .map(|(_, template, item)| (template, item))
}

/// Where the answer `method path` gave differs from what the document
/// declares: the status must be among the operation's responses, and the body
/// as its schema says. Paths the document does not have (the router's own 404,
/// the web app) pass.
pub(crate) fn response_errors(
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Vec<String> {
    let Some((template, item)) = path_template(path) else {
        return Vec::new();
    };
    let Some(operation) = item.get(method.to_ascii_lowercase()) else {
        return Vec::new();
    };
    let Some(response) = operation["responses"].get(status.to_string()) else {
        return vec![format!(
            "{method} {template} answered {status}, which the document does not declare"
        )];
    };
    let response = match response["$ref"].as_str() {
        Some(reference) => document()
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{reference} is in the document")),
        None => response,
    };
    if body.is_null() {
        return Vec::new();
    }
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let Some(schema) = response["content"]
        .get(media_type)
        .map(|content| &content["schema"])
    else {
        return vec![format!(
            "{method} {template} answered {status} with {media_type}, which the document does not declare"
        )];
    };
    schema_errors(schema, body)
}

/// Panics unless the answer is one the document declares ([`response_errors`]).
fn check_response(method: &str, path: &str, status: u16, content_type: &str, body: &Value) {
    let errors = response_errors(method, path, status, content_type, body);
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} as the document does not say: {errors:?}\n{body}"
    );
}

/// Where `event` differs from what the OpenAPI document says of its type.
pub(crate) fn event_errors(event: &Value) -> Vec<String> {
    schema_errors(
        &serde_json::json!({"$ref": "#/components/schemas/Event"}),
        event,
    )
}

/// Panics unless `event` is exactly as the OpenAPI document describes its type.
pub(crate) fn check_event(event: &Value) {
    let errors = event_errors(event);
    assert!(
        errors.is_empty(),
        "the event does not match the document: {errors:?}\n{event}"
    );
}
