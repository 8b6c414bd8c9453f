//! A real browser on the live stream: headless Chromium runs the README's browser
//! client, which opens the stream with `EventSource` and a one-use ticket; the
//! server restarts (dropping the connection) on the same port and database; the
//! client resumes with a fresh ticket and `?after=`, and has then received every
//! event exactly once, in order.
//!
//! Needs `chromium` on PATH (`scripts/ensure-chromium` installs it, and
//! `scripts/test` runs that first).

mod support;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use rustix::process::{Pid, Signal, kill_process_group};
use serde::Deserialize;
use serde_json::json;
use support::{Client, text};
use tandem::Config;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// The page Chromium runs: the README's browser client, instrumented to report
/// what it received to `POST /report`.
const PAGE: &str = include_str!("browser/page.html");
/// Where the page takes the README's client.
const PAGE_MARKER: &str = "// README CLIENT";
const README: &str = include_str!("../../../README.md");

/// How long the test waits for the page to reach a state. Generous: Chromium
/// starts slowly on a busy machine, and the page backs off up to 2 s per retry.
const PAGE_WAIT: Duration = Duration::from_secs(45);

/// What the page last reported.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    /// Increases with every report, so an older one never replaces a newer one.
    n: u64,
    /// Every event the client showed, in order, unfiltered.
    events: Vec<Received>,
    /// How many times a stream opened.
    opens: u32,
    /// How many times a stream dropped (the page then resumes).
    drops: u32,
    /// Ticket requests that reached no server (while it restarts).
    ticket_failures: u32,
    /// Anything unexpected: a refused ticket, a script error.
    problems: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Received {
    /// The event's `lastEventId`: its seq.
    id: String,
    #[serde(rename = "type")]
    event_type: String,
}

impl Report {
    /// The seqs received, in order.
    fn seqs(&self) -> Vec<u64> {
        self.events
            .iter()
            .map(|event| {
                event
                    .id
                    .parse()
                    .unwrap_or_else(|_| panic!("a numeric lastEventId, got {event:?}"))
            })
            .collect()
    }

    fn has(&self, seq: u64) -> bool {
        self.seqs().contains(&seq)
    }
}

/// The page with the README's browser client (its first `js` block) in place, so
/// that the README shows the code this test runs.
fn page_with_client() -> String {
    let (_, after) = README
        .split_once("```js\n")
        .expect("the README shows the browser client in a ```js block");
    let (client, _) = after.split_once("```").expect("the js block ends");
    assert!(
        PAGE.contains(PAGE_MARKER),
        "the page has a place for the client"
    );
    PAGE.replace(PAGE_MARKER, client)
}

/// What the page server shares with its handlers.
struct PageServer {
    page: String,
    reports: watch::Sender<Report>,
}

/// Serves the page and collects its reports on 127.0.0.1; returns the page's origin.
async fn serve_page() -> (String, watch::Receiver<Report>) {
    async fn page(State(server): State<Arc<PageServer>>) -> Html<String> {
        Html(server.page.clone())
    }
    async fn report(
        State(server): State<Arc<PageServer>>,
        Json(report): Json<Report>,
    ) -> StatusCode {
        server.reports.send_if_modified(|latest| {
            let newer = report.n > latest.n;
            if newer {
                *latest = report;
            }
            newer
        });
        StatusCode::NO_CONTENT
    }
    let (reports, received) = watch::channel(Report::default());
    let app = Router::new()
        .route("/", get(page))
        .route("/report", post(report))
        .with_state(Arc::new(PageServer {
            page: page_with_client(),
            reports,
        }));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (origin, received)
}

/// Waits until the page's report satisfies `done`; panics with the last report.
async fn wait_for(
    reports: &mut watch::Receiver<Report>,
    what: &str,
    done: impl FnMut(&Report) -> bool,
) -> Report {
    let waited = tokio::time::timeout(PAGE_WAIT, async {
        reports.wait_for(done).await.map(|report| report.clone())
    })
    .await;
    match waited {
        Ok(Ok(report)) => report,
        Ok(Err(closed)) => panic!("the page server stopped: {closed}"),
        Err(elapsed) => panic!(
            "the page did not {what} ({elapsed}, {PAGE_WAIT:?}); its last report: {:?}",
            *reports.borrow()
        ),
    }
}

/// A Tandem server on a given address, stopped gracefully by [`Running::stop`].
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts Tandem on `addr` over `database_url`, allowing CORS from `origin`;
/// returns it and the admin key when this start created one.
async fn start_tandem(
    addr: SocketAddr,
    database_url: &str,
    origin: &str,
) -> (Running, Option<String>) {
    // The port was just released by the previous server; give the OS a moment
    // if it is not free yet.
    let mut attempts = 0;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(error) if attempts < 50 => {
                attempts += 1;
                eprintln!("{addr} is not free yet ({error}); retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("cannot listen on {addr} again: {error}"),
        }
    };
    let mut config = Config::new(addr, database_url);
    config.cors_origins = vec![origin.to_owned()];
    let server = tandem::build(config, listener)
        .await
        .expect("server builds");
    let admin = server
        .bootstrapped_key()
        .map(|created| created.secret.expose().to_owned());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    (Running { stop, task }, admin)
}

impl Running {
    /// Stops the server gracefully: it ends every open stream and stops listening.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the server stops within 15 s, open streams or not")
            .expect("server task")
            .expect("server stopped cleanly");
    }
}

/// Headless Chromium on one page, killed (its whole process group) on drop, so
/// also when the test panics.
struct Browser {
    child: Child,
    _profile: TempDir,
}

impl Browser {
    fn open(url: &str) -> Self {
        let profile = tempfile::tempdir().expect("temp dir");
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that killing it ends its helper processes.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start `chromium` ({error}). This test drives a real headless \
                     Chromium: run scripts/ensure-chromium to install it (scripts/test \
                     does), or put a Chromium binary on PATH as `chromium`."
                )
            });
        Self {
            child,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(group) = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `value` percent-encoded for a URL fragment parameter.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Posts `count` comments as the host.
async fn comment(api: &Client, session: &str, host: &str, count: usize, label: &str) {
    for n in 0..count {
        api.post(
            &format!("{session}/comments"),
            host,
            json!({"text": format!("{label} {n}")}),
            201,
        )
        .await;
    }
}

/// The session's whole log as `(seq, type)`, read as JSON pages.
async fn log(api: &Client, session: &str, host: &str) -> Vec<(u64, String)> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .get(
                &format!("{session}/events?after={after}&limit=200"),
                host,
                200,
            )
            .await;
        for event in page["events"].as_array().expect("events") {
            events.push((
                event["seq"].as_u64().expect("seq"),
                text(event, "/type").to_owned(),
            ));
        }
        match page["next"].as_u64() {
            Some(next) => after = next,
            None => return events,
        }
    }
}

fn last_seq(log: &[(u64, String)]) -> u64 {
    log.last().map_or(0, |(seq, _)| *seq)
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("tandem.db").display())
}

#[tokio::test]
async fn a_browser_event_source_resumes_across_a_restart_without_loss_or_duplicates() {
    let (origin, mut reports) = serve_page().await;
    let data = tempfile::tempdir().expect("temp dir");
    let database_url = sqlite_url(data.path());
    // A free port, kept for the restart.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let (server, admin) = start_tandem(addr, &database_url, &origin).await;
    let admin = admin.expect("a fresh database bootstraps an admin key");
    let base = format!("http://{addr}");
    let api = Client::new(&base);
    let created = api
        .post(
            "/v1/sessions",
            &admin,
            json!({"title": "in a browser"}),
            201,
        )
        .await;
    let session_id = text(&created, "/session/id").to_owned();
    let session = format!("/v1/sessions/{session_id}");
    let host = text(&created, "/host/token").to_owned();

    // The page gets the token in the URL fragment, which no server sees.
    let browser = Browser::open(&format!(
        "{origin}/#api={}&session={}&token={}",
        encode(&base),
        encode(&session_id),
        encode(&host)
    ));
    wait_for(&mut reports, "receive the first events", |r| {
        r.opens >= 1 && r.has(2)
    })
    .await;

    // Live, on the first connection.
    comment(&api, &session, &host, 10, "before the restart").await;
    let before = last_seq(&log(&api, &session, &host).await);
    wait_for(&mut reports, "receive the first comments", |r| {
        r.has(before)
    })
    .await;

    // The server goes away: its streams end and it stops listening.
    server.stop().await;
    wait_for(
        &mut reports,
        "notice the dropped stream and find no server",
        |r| r.drops >= 1 && r.ticket_failures >= 1,
    )
    .await;

    // Back on the same port and database. These comments are written at once,
    // normally before the page (retrying every 250 ms to 2 s) has a new stream, so
    // it gets them replayed from the log; either way it must get each once.
    let (server, bootstrapped) = start_tandem(addr, &database_url, &origin).await;
    assert!(
        bootstrapped.is_none(),
        "the same database keeps its admin key"
    );
    comment(&api, &session, &host, 10, "right after the restart").await;
    let replayed = last_seq(&log(&api, &session, &host).await);
    wait_for(&mut reports, "resume after the restart", |r| {
        r.opens >= 2 && r.has(replayed)
    })
    .await;

    // And live again on the new connection.
    comment(&api, &session, &host, 10, "after resuming").await;
    let log = log(&api, &session, &host).await;
    let last = last_seq(&log);
    let report = wait_for(&mut reports, "receive the last comment", |r| r.has(last)).await;
    drop(browser);

    assert!(
        report.problems.is_empty(),
        "the page saw problems: {report:?}"
    );
    assert_eq!(
        log.iter().filter(|(_, t)| t == "comment.posted").count(),
        30,
        "every comment is in the log"
    );
    assert_eq!(
        report.seqs(),
        (1..=last).collect::<Vec<_>>(),
        "the browser received every event exactly once, in order"
    );
    let received: Vec<(u64, String)> = report
        .seqs()
        .into_iter()
        .zip(report.events.iter().map(|event| event.event_type.clone()))
        .collect();
    assert_eq!(received, log, "each under its own type");
    server.stop().await;
}
