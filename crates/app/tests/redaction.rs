//! Secrets an agent prints never reach a teammate, a page, the database or the
//! log: the real `tandem` binary (its log is its stderr) runs the real echo agent,
//! told by `/leak` to print fake credentials, the values of secret environment
//! variables and a private key in a thought, a plan, a tool call, a permission
//! request, a message cut into small chunks (paused inside a key, so that a
//! coalescing flush falls in it), a crash report and an error. A teammate watches
//! over SSE; then the JSON pages, every stored row and the whole log are
//! searched. The text around the secrets must come through intact.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Client, next, open, text};
use tandem_agent::echo_agent::FakeSecrets;

/// Values of secret environment variables: one in the agent profile's `env`,
/// one in the server's environment with a secret-looking name, one named in
/// `[redaction] env`.
const PROFILE_VALUE: &str = "profile-Value-7c1e0b9a58";
const SERVER_VALUE: &str = "server-Value-3f7a6d2c91";
const NAMED_VALUE: &str = "named-Value-5b8e4d1f06";

const ADMIN_KEY: &str = "redaction-test-admin-key-0123456789abcdef";

/// A `tandem serve` child process, its address, and what it logs (read as it
/// comes, so that the pipe never fills).
struct Server {
    child: Option<Child>,
    base: String,
    log: Option<std::thread::JoinHandle<String>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary over `database_url` with a config file that adds the
    /// leaky profile (and `extra` settings), and waits until it is ready.
    async fn start(database_url: &str, dir: tempfile::TempDir, extra: &str) -> Self {
        let config = dir.path().join("tandem.toml");
        std::fs::write(
            &config,
            format!(
                r#"
                default_agent = "leaky"

                [agents.leaky]
                kind = "acp"
                command = "{binary}"
                args = ["echo-agent"]
                env = {{ DEMO_API_KEY = "{PROFILE_VALUE}" }}

                [redaction]
                env = ["ODD_SETTING"]
                {extra}
                "#,
                binary = env!("CARGO_BIN_EXE_tandem"),
            ),
        )
        .expect("config file");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env("TANDEM_CONFIG", &config)
            .env("TANDEM_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY)
            .env("TANDEM_RATE_LIMIT_PER_MINUTE", "0")
            .env("LEAK_SERVER_TOKEN", SERVER_VALUE)
            .env("ODD_SETTING", NAMED_VALUE)
            // Everything the server logs, at its most talkative.
            .env("RUST_LOG", "trace")
            .env_remove("TANDEM_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tandem");
        let mut stderr = child.stderr.take().expect("stderr");
        let log = std::thread::spawn(move || {
            let mut log = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stderr, &mut log);
            String::from_utf8_lossy(&log).into_owned()
        });
        let server = Self {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            log: Some(log),
            _dir: dir,
        };
        let http = support::http_client();
        for _ in 0..200 {
            let ready = http.get(format!("{}/readyz", server.base)).send().await;
            if ready.is_ok_and(|reply| reply.status() == 200) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tandem did not become ready");
    }

    /// Stops the server with SIGTERM and returns everything it logged.
    async fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::task::spawn_blocking(move || child.wait()),
        )
        .await
        .expect("tandem stops within 20 s of SIGTERM")
        .expect("the waiting task")
        .expect("the exit status");
        assert!(status.success(), "{status:?}");
        let log = self.log.take().expect("the log reader");
        tokio::task::spawn_blocking(move || log.join().expect("the log reader"))
            .await
            .expect("the log")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Everything that must never be seen: the fake credentials, each line of the
/// private key's body, and the secret variables' values.
fn secrets() -> Vec<String> {
    let fake = FakeSecrets::new();
    let mut secrets: Vec<String> = fake
        .all()
        .into_iter()
        .map(|(_, secret)| secret.to_owned())
        .collect();
    secrets.extend(
        fake.private_key
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .map(str::to_owned),
    );
    secrets.extend([PROFILE_VALUE, SERVER_VALUE, NAMED_VALUE].map(str::to_owned));
    secrets
}

/// Panics if `haystack` (what `place` shows) holds any secret.
fn assert_clean(place: &str, haystack: &str) {
    for secret in secrets() {
        assert!(
            !haystack.contains(&secret),
            "{place} shows a secret ({}...)",
            &secret[..8]
        );
    }
}

/// The message the agent's first prompt writes, as a teammate must see it.
fn expected_message(prompt: &str) -> String {
    let fake = FakeSecrets::new();
    let printed = fake.message(&[
        ("DEMO_API_KEY".to_owned(), Some(PROFILE_VALUE.to_owned())),
        (
            "LEAK_SERVER_TOKEN".to_owned(),
            Some(SERVER_VALUE.to_owned()),
        ),
        ("ODD_SETTING".to_owned(), Some(NAMED_VALUE.to_owned())),
    ]);
    let mut expected = printed;
    for (kind, secret) in fake.all() {
        expected = expected.replace(secret, &format!("[REDACTED:{kind}]"));
    }
    for value in [PROFILE_VALUE, SERVER_VALUE, NAMED_VALUE] {
        expected = expected.replace(value, "[REDACTED:env_value]");
    }
    expected + prompt
}

/// Runs the scenario against a server over `database_url`; returns the log.
async fn leaky_session(database_url: &str, dir: tempfile::TempDir) -> String {
    let server = Server::start(database_url, dir, "").await;
    let api = Client::new(&server.base);
    let created = api
        .post(
            "/v1/sessions",
            ADMIN_KEY,
            json!({ "mode": "prompt_direct", "permissionPolicy": "allow_all" }),
            201,
        )
        .await;
    let path = format!("/v1/sessions/{}", text(&created, "/session/id"));
    let host = text(&created, "/host/token").to_owned();
    let joined = api
        .call(
            Method::POST,
            "/v1/join",
            None,
            Some(json!({ "inviteToken": text(&created, "/invite/token"), "displayName": "Teammate" })),
            201,
        )
        .await;
    let teammate = text(&joined, "/token").to_owned();
    let mut stream = open(
        &server.base,
        &format!("{path}/events"),
        Some(&teammate),
        None,
    )
    .await;

    let first = "/leak DEMO_API_KEY LEAK_SERVER_TOKEN ODD_SETTING\n/permission";
    let prompts = [first, "/leak\n/crash", "/leak\n/fail"];
    for prompt in prompts {
        api.post(
            &format!("{path}/prompts"),
            &host,
            json!({ "text": prompt }),
            201,
        )
        .await;
    }
    // What the teammate saw, frame by frame, until the third prompt ended.
    let mut streamed = String::new();
    let mut ended = 0;
    while ended < prompts.len() {
        let event = next(&mut stream).await.expect("the stream stays open");
        streamed.push_str(&event.data);
        streamed.push('\n');
        if ["prompt.completed", "prompt.failed", "prompt.cancelled"].contains(&event.event.as_str())
        {
            ended += 1;
        }
    }
    assert_clean("the teammate's stream", &streamed);

    // Every page of the log, as sent.
    let mut page = String::new();
    let mut events: Vec<Value> = Vec::new();
    loop {
        let body = support::http_client()
            .get(format!(
                "{}{path}/events?after={}&limit=200",
                server.base,
                events.len()
            ))
            .bearer_auth(&teammate)
            .header("accept", "application/json")
            .send()
            .await
            .expect("the events page")
            .text()
            .await
            .expect("a body");
        let more = serde_json::from_str::<Value>(&body).expect("JSON")["events"]
            .as_array()
            .unwrap_or_else(|| panic!("events in {body}"))
            .clone();
        page.push_str(&body);
        if more.is_empty() {
            break;
        }
        events.extend(more);
    }
    assert_clean("the events pages", &page);
    let prompts_page = api.get(&format!("{path}/prompts"), &teammate, 200).await;
    assert_clean("the prompts page", &prompts_page.to_string());

    // The text around the secrets comes through whole, in order.
    let prompt_ids: Vec<&str> = events
        .iter()
        .filter(|event| event["type"] == "prompt.started")
        .map(|event| text(event, "/data/promptId"))
        .collect();
    let message: String = events
        .iter()
        .filter(|event| {
            event["type"] == "agent.output"
                && event["data"]["kind"] == "message"
                && event["data"]["promptId"] == prompt_ids[0]
        })
        .map(|event| text(event, "/data/text").to_owned())
        .collect();
    assert_eq!(message, expected_message(first));
    let counted = |kind: &str| -> u64 {
        events
            .iter()
            .filter_map(|event| event["data"]["redactions"][kind].as_u64())
            .sum()
    };
    assert!(
        counted("aws_access_key") >= 3,
        "message, plan, permission request, crash"
    );
    assert!(counted("env_value") >= 3, "{page}");
    assert!(counted("private_key") >= 2, "message and tool call output");
    let requested = events
        .iter()
        .find(|event| event["type"] == "agent.permission_requested")
        .expect("a permission request");
    assert_eq!(
        requested["data"]["toolCall"]["title"],
        "Deploy with [REDACTED:aws_access_key]"
    );
    assert_eq!(requested["data"]["redactions"]["github_token"], 1);
    let failures: Vec<&Value> = events
        .iter()
        .filter(|event| event["type"] == "prompt.failed")
        .collect();
    assert_eq!(failures.len(), 2);
    assert!(
        text(failures[0], "/data/error")
            .ends_with("echo agent: crashing as told; AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key]"),
        "{}",
        failures[0]
    );
    assert_eq!(failures[0]["data"]["redactions"]["aws_access_key"], 1);
    assert!(
        text(failures[1], "/data/error")
            .ends_with("(/fail) with GITHUB_TOKEN=[REDACTED:github_token]"),
        "{}",
        failures[1]
    );

    let metrics = support::http_client()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("a body");
    assert!(
        metrics.contains("tandem_redactions_total{kind=\"aws_access_key\"}"),
        "{metrics}"
    );
    assert_clean("the metrics", &metrics);

    let log = server.stop().await;
    assert!(log.contains("redacting secrets from agent output"), "{log}");
    assert_clean("the server log", &log);
    log
}

/// Everything stored in a SQLite database: the raw bytes of its files (freed
/// pages and the write-ahead log included).
fn sqlite_bytes(dir: &Path) -> String {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the database directory") {
        let path = entry.expect("an entry").path();
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("tandem.db"))
        {
            all.extend(std::fs::read(&path).expect("a database file"));
        }
    }
    assert!(!all.is_empty(), "no database files");
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn an_agents_secrets_never_reach_a_teammate_a_page_the_sqlite_file_or_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", db_dir.path().join("tandem.db").display());
    leaky_session(&url, dir).await;
    let stored = sqlite_bytes(db_dir.path());
    assert!(
        stored.contains("[REDACTED:aws_access_key]"),
        "the rows are there"
    );
    assert_clean("the SQLite files", &stored);
}

#[sqlx::test(migrations = false)]
async fn an_agents_secrets_never_reach_a_postgres_row(
    _pool: sqlx::postgres::PgPoolOptions,
    options: sqlx::postgres::PgConnectOptions,
) {
    let url = format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().expect("a test database")
    );
    let dir = tempfile::tempdir().expect("temp dir");
    leaky_session(&url, dir).await;
    let pool = sqlx::PgPool::connect_with(options).await.expect("connect");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    assert!(tables.iter().any(|table| table == "events"), "{tables:?}");
    let mut stored = String::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
            .fetch_all(&pool)
            .await
            .expect("rows");
        stored.push_str(&rows.join("\n"));
    }
    assert!(
        stored.contains("[REDACTED:aws_access_key]"),
        "the rows are there"
    );
    assert_clean("the Postgres rows", &stored);
}

#[tokio::test]
async fn turned_off_redaction_is_said_at_start_and_lets_everything_through() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", db_dir.path().join("tandem.db").display());
    let server = Server::start(&url, dir, "enabled = false").await;
    let api = Client::new(&server.base);
    let created = api
        .post(
            "/v1/sessions",
            ADMIN_KEY,
            json!({ "mode": "prompt_direct" }),
            201,
        )
        .await;
    let path = format!("/v1/sessions/{}", text(&created, "/session/id"));
    let host = text(&created, "/host/token").to_owned();
    let mut stream = open(&server.base, &format!("{path}/events"), Some(&host), None).await;
    api.post(
        &format!("{path}/prompts"),
        &host,
        json!({ "text": "/leak" }),
        201,
    )
    .await;
    let mut streamed = String::new();
    loop {
        let event = next(&mut stream).await.expect("the stream stays open");
        streamed.push_str(&event.data);
        if event.event == "prompt.completed" {
            break;
        }
    }
    assert!(
        streamed.contains(&FakeSecrets::new().stripe),
        "shown as sent"
    );
    assert!(!streamed.contains("REDACTED"));
    let log = server.stop().await;
    assert!(log.contains("REDACTION IS OFF"), "{log}");
}
