//! Hard restarts with real `tandem serve` processes: a server killed mid-prompt
//! and started again on the same database recovers at once (its interrupted
//! prompt failed, the queue going on), on SQLite and on Postgres, without
//! waiting for its old agent lease; a replica takes over a dead one's session at
//! once but never a live one's; a graceful stop announces its last events to
//! the other replicas before it closes the database.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Client, next, open, text};

const ADMIN: &str = "restarts-test-admin-key-0123456789abcdef";

/// How long recovery may take: a scan or two, far below the 30 s agent lease
/// these servers keep (the default).
const RECOVERY: Duration = Duration::from_secs(6);

/// A `tandem serve` process of the real binary, killed on drop.
struct Process {
    child: Option<Child>,
    base: String,
}

impl Process {
    fn command(database_url: &str, port: u16) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
        command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
            ])
            .env("TANDEM_BOOTSTRAP_ADMIN_KEY", ADMIN)
            .env("TANDEM_RATE_LIMIT_PER_MINUTE", "0")
            .env_remove("TANDEM_AGENT_LEASE_SECS")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port()
    }

    /// Starts a server and waits until it is ready; its logs go to `logs`
    /// when given, else nowhere.
    async fn start(database_url: &str, logs: Option<&std::path::Path>) -> Self {
        let port = Self::free_port();
        let mut command = Self::command(database_url, port);
        if let Some(path) = logs {
            command
                .stderr(std::fs::File::create(path).expect("log file"))
                .env("RUST_LOG", "info");
        }
        let process = Self {
            child: Some(command.spawn().expect("spawn tandem")),
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = support::http_client();
        for _ in 0..200 {
            let ready = http.get(format!("{}/readyz", process.base)).send().await;
            if ready.is_ok_and(|reply| reply.status() == 200) {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tandem did not become ready");
    }

    fn api(&self) -> Client {
        Client::new(&self.base)
    }

    /// SIGKILL: no chance to record anything.
    fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("reap");
        }
    }

    /// SIGTERM, then waits for a clean exit.
    async fn terminate(mut self) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let waited = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::task::spawn_blocking(move || child.wait()),
        )
        .await
        .expect("tandem stops within 20 s of SIGTERM");
        let status = waited.expect("task").expect("exit status");
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A session and its host.
struct Session {
    path: String,
    host: String,
}

impl Session {
    async fn create(api: &Client) -> Self {
        let created = api
            .post("/v1/sessions", ADMIN, json!({"mode": "prompt_direct"}), 201)
            .await;
        Self {
            path: format!("/v1/sessions/{}", text(&created, "/session/id")),
            host: text(&created, "/host/token").to_owned(),
        }
    }

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

    /// The events once one matches `done`, waiting at most `within`.
    async fn until(
        &self,
        api: &Client,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let events = self.events(api).await;
            if events.iter().any(&done) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "not within {within:?}; events: {:?}",
                events.iter().map(kind).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn status(&self, api: &Client, prompt: &str) -> String {
        let prompt = api
            .get(&format!("{}/prompts/{prompt}", self.path), &self.host, 200)
            .await;
        text(&prompt, "/status").to_owned()
    }
}

fn kind(event: &Value) -> &str {
    text(event, "/type")
}

fn is(event: &Value, kind_of: &str, prompt: &str) -> bool {
    kind(event) == kind_of && event["data"]["promptId"].as_str() == Some(prompt)
}

fn position(events: &[Value], kind_of: &str, prompt: &str) -> usize {
    events
        .iter()
        .position(|event| is(event, kind_of, prompt))
        .unwrap_or_else(|| panic!("no {kind_of} of {prompt}"))
}

fn count(events: &[Value], kind_of: &str, prompt: &str) -> usize {
    events
        .iter()
        .filter(|event| is(event, kind_of, prompt))
        .count()
}

/// A prompt the echo agent answers slowly, one word every 300 ms.
const SLOW: &str = "/slow 300\none two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty";

/// Kills a server mid-prompt, starts another on the same database, and checks
/// that it fails the interrupted prompt and starts the next one at once.
async fn killed_mid_prompt_then_restarted(database_url: &str) {
    let first = Process::start(database_url, None).await;
    let api = first.api();
    let session = Session::create(&api).await;
    let slow = session.submit(&api, SLOW).await;
    let waiting = session.submit(&api, "after the crash").await;
    session
        .until(&api, RECOVERY, |event| is(event, "agent.output", &slow))
        .await;
    first.kill();

    let second = Process::start(database_url, None).await;
    let restarted = Instant::now();
    let api = second.api();
    let events = session
        .until(&api, RECOVERY, |event| {
            is(event, "prompt.started", &waiting)
        })
        .await;
    let recovered = restarted.elapsed();
    assert!(recovered < RECOVERY, "recovered after {recovered:?}");
    let failed = &events[position(&events, "prompt.failed", &slow)];
    let error = failed["data"]["error"].as_str().expect("error");
    assert!(error.contains("interrupted"), "{error}");
    assert!(
        position(&events, "prompt.failed", &slow) < position(&events, "prompt.started", &waiting)
    );
    let events = session
        .until(&api, RECOVERY, |event| {
            is(event, "prompt.completed", &waiting)
        })
        .await;
    assert_eq!(count(&events, "prompt.started", &slow), 1, "ran once");
    assert_eq!(count(&events, "prompt.started", &waiting), 1, "ran once");
    assert_eq!(session.status(&api, &slow).await, "failed");
}

#[tokio::test]
async fn a_killed_server_recovers_its_session_at_once_after_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    killed_mid_prompt_then_restarted(&url).await;
}

#[sqlx::test(migrations = false)]
async fn a_killed_server_recovers_its_session_at_once_after_a_restart_on_postgres(
    _pool: sqlx::postgres::PgPoolOptions,
    options: sqlx::postgres::PgConnectOptions,
) {
    killed_mid_prompt_then_restarted(&url(&options)).await;
}

fn url(options: &sqlx::postgres::PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().expect("database")
    )
}

#[tokio::test]
async fn a_second_server_on_one_sqlite_file_is_refused_while_the_first_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    let first = Process::start(&url, None).await;
    let output = Process::command(&url, Process::free_port())
        .stderr(Stdio::piped())
        .output()
        .expect("run a second tandem");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another tandem server"), "{stderr}");
    assert!(stderr.contains("tandem.db.lock"), "{stderr}");
    // The first still serves.
    first.api().get("/v1/sessions", ADMIN, 200).await;
}

#[sqlx::test(migrations = false)]
async fn a_replica_takes_over_a_dead_one_s_session_at_once_but_never_a_live_one_s(
    _pool: sqlx::postgres::PgPoolOptions,
    options: sqlx::postgres::PgConnectOptions,
) {
    let url = url(&options);
    let a = Process::start(&url, None).await;
    let api_a = a.api();
    let session = Session::create(&api_a).await;
    let slow = session.submit(&api_a, SLOW).await;
    let waiting = session.submit(&api_a, "on the other replica").await;
    session
        .until(&api_a, RECOVERY, |event| is(event, "prompt.started", &slow))
        .await;

    // While A lives, B leaves its session alone, however often it scans.
    let b = Process::start(&url, None).await;
    let api_b = b.api();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = session.events(&api_b).await;
    assert_eq!(session.status(&api_b, &slow).await, "running");
    assert_eq!(count(&events, "prompt.failed", &slow), 0);
    assert_eq!(count(&events, "prompt.started", &waiting), 0);

    // A dies: B takes the session over at once; the host's cancel, sent to B
    // while nobody runs the prompt, ends in an outcome the host sees.
    a.kill();
    let died = Instant::now();
    let cancel = api_b
        .send(
            reqwest::Method::POST,
            &format!("{}/prompts/{slow}/cancel", session.path),
            Some(&session.host),
            Some(json!({})),
        )
        .await;
    assert!(
        matches!(cancel.status, 202 | 409),
        "the cancel is taken or the prompt already ended: {cancel:?}"
    );
    let events = session
        .until(&api_b, RECOVERY, |event| {
            is(event, "prompt.started", &waiting)
        })
        .await;
    assert!(
        died.elapsed() < RECOVERY,
        "taken over after {:?}",
        died.elapsed()
    );
    let failed = &events[position(&events, "prompt.failed", &slow)];
    assert!(
        failed["data"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("interrupted")),
        "{failed}"
    );
    let events = session
        .until(&api_b, RECOVERY, |event| {
            is(event, "prompt.completed", &waiting)
        })
        .await;
    assert_eq!(count(&events, "prompt.started", &slow), 1);
    assert_eq!(count(&events, "prompt.started", &waiting), 1);
}

#[sqlx::test(migrations = false)]
async fn a_graceful_stop_announces_its_last_events_before_closing_the_database(
    _pool: sqlx::postgres::PgPoolOptions,
    options: sqlx::postgres::PgConnectOptions,
) {
    let url = url(&options);
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("a.log");
    let a = Process::start(&url, Some(&logs)).await;
    let api_a = a.api();
    let session = Session::create(&api_a).await;
    let slow = session.submit(&api_a, SLOW).await;
    session
        .until(&api_a, RECOVERY, |event| is(event, "prompt.started", &slow))
        .await;
    let b = Process::start(&url, None).await;
    let mut stream = open(
        &b.base,
        &format!("{}/events", session.path),
        Some(&session.host),
        None,
    )
    .await;

    a.terminate().await;
    // The prompt A failed as it stopped reaches B's subscriber.
    loop {
        let event = next(&mut stream).await.expect("B's stream goes on");
        if event.event == "prompt.failed" {
            assert!(event.data.contains(&slow), "{}", event.data);
            break;
        }
    }
    let logs = std::fs::read_to_string(&logs).expect("A's logs");
    assert!(logs.contains("tandem stopped"), "{logs}");
    for broken in [
        "closed pool",
        "could not send a NOTIFY",
        "LISTEN failed",
        "PoolClosed",
    ] {
        assert!(
            !logs.contains(broken),
            "A logged {broken:?} while stopping:\n{logs}"
        );
    }
}
