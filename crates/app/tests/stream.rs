//! The live event stream over real TCP, parsed by a standard SSE client library:
//! order, resume without loss or duplicate, slow subscribers, endings, tickets,
//! shutdown, and two server processes sharing one Postgres.

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use eventsource_stream::Event;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use support::{Client, Events, TestServer, next, open, text};

/// Reads events until (and including) `seq`.
async fn read_until(events: &mut Events, seq: u64) -> Vec<Event> {
    let mut read = Vec::new();
    while let Some(event) = next(events).await {
        let this = event.id.parse::<u64>().expect("numeric id");
        read.push(event);
        if this >= seq {
            break;
        }
    }
    read
}

fn ids(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .map(|event| event.id.parse().expect("numeric id"))
        .collect()
}

struct Party {
    path: String,
    host: String,
    invite: String,
}

async fn party(api: &Client, admin: &str) -> Party {
    let created = api
        .post("/v1/sessions", admin, json!({"mode": "prompt_direct"}), 201)
        .await;
    Party {
        path: format!("/v1/sessions/{}", text(&created, "/session/id")),
        host: text(&created, "/host/token").to_owned(),
        invite: text(&created, "/invite/token").to_owned(),
    }
}

async fn comment(api: &Client, party: &Party, n: usize) {
    api.post(
        &format!("{}/comments", party.path),
        &party.host,
        json!({"text": format!("comment {n}")}),
        201,
    )
    .await;
}

#[test]
fn the_event_schema_holds_each_type_to_its_own_data() {
    let prompt = "0190c0de-0000-7000-8000-000000000001";
    let event = json!({
        "seq": 7,
        "type": "prompt.completed",
        "createdAt": "2026-01-01T00:00:00Z",
        "actor": { "kind": "agent", "id": null },
        "data": { "promptId": prompt, "stopReason": "end_turn" },
    });
    assert_eq!(support::event_errors(&event), Vec::<String>::new());
    let mut wrong_type = event.clone();
    wrong_type["type"] = json!("prompt.failed");
    assert!(
        !support::event_errors(&wrong_type).is_empty(),
        "prompt.failed needs an error"
    );
    let mut missing = event.clone();
    missing["data"]
        .as_object_mut()
        .unwrap()
        .remove("stopReason");
    assert!(
        !support::event_errors(&missing).is_empty(),
        "a required field"
    );
    let mut unknown_reason = event.clone();
    unknown_reason["data"]["stopReason"] = json!("bored");
    assert!(
        !support::event_errors(&unknown_reason).is_empty(),
        "an enum"
    );
    let mut unknown_type = event;
    unknown_type["type"] = json!("prompt.exploded");
    assert!(
        !support::event_errors(&unknown_type).is_empty(),
        "the catalog is closed"
    );
}

/// The check every answer of the suite goes through refuses what the document
/// does not say: an undeclared status, a media type, a body of another shape.
#[test]
fn the_answer_check_holds_each_operation_to_the_document() {
    let path = "/v1/sessions/0190c0de-0000-7000-8000-000000000001/prompts";
    let json = "application/json";
    let page = json!({"prompts": [], "next": null});
    assert_eq!(
        support::response_errors("GET", path, 200, json, &page),
        Vec::<String>::new()
    );
    assert!(!support::response_errors("GET", path, 418, json, &page).is_empty());
    assert!(!support::response_errors("GET", path, 200, "text/plain", &page).is_empty());
    assert!(!support::response_errors("GET", path, 200, json, &json!({"prompts": 7})).is_empty());
    // Shared problem responses are followed.
    let problem = json!({"type": "about:blank", "title": "Not Found", "status": 404});
    assert!(
        !support::response_errors("GET", path, 404, "application/problem+json", &problem)
            .is_empty(),
        "a problem without its code"
    );
    // Paths the document does not have are not its business.
    assert_eq!(
        support::response_errors("GET", "/nowhere", 404, json, &page),
        Vec::<String>::new()
    );
}

/// Frames carry id, type and the same JSON as the events page, in order, live.
async fn live_events_match_the_log(server: &TestServer) {
    let api = server.client();
    let p = party(&api, &server.admin_key).await;
    let mut events = open(
        &api.base,
        &format!("{}/events", p.path),
        Some(&p.host),
        None,
    )
    .await;
    let first = read_until(&mut events, 2).await;
    assert_eq!(
        first.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        vec!["session.created", "participant.joined"]
    );
    // The first bytes on the wire announce the reconnection delay.
    let raw = support::http_client()
        .get(format!("{}{}/events", api.base, p.path))
        .header("accept", "text/event-stream")
        .bearer_auth(&p.host)
        .send()
        .await
        .expect("connect");
    let mut body = raw.bytes_stream();
    let head = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("bytes")
        .expect("a chunk")
        .expect("ok");
    assert!(head.starts_with(b"retry: 2000\n\n"), "{head:?}");
    for n in 0..20 {
        comment(&api, &p, n).await;
    }
    let live = read_until(&mut events, 22).await;
    assert_eq!(ids(&live), (3..=22).collect::<Vec<_>>());
    let page = api
        .get(&format!("{}/events?limit=200", p.path), &p.host, 200)
        .await;
    for (frame, logged) in first
        .iter()
        .chain(&live)
        .zip(page["events"].as_array().expect("events"))
    {
        let data: Value = serde_json::from_str(&frame.data).expect("JSON data");
        assert_eq!(
            &data, logged,
            "a frame's data is the event as the page shows it"
        );
        assert_eq!(frame.event, logged["type"].as_str().expect("type"));
    }
}

/// A client that drops and resumes with Last-Event-ID gets exactly 1..=N.
async fn resume_loses_nothing(server: &TestServer) {
    let api = server.client();
    let p = party(&api, &server.admin_key).await;
    let path = format!("{}/events", p.path);
    let mut events = open(&api.base, &path, Some(&p.host), None).await;
    for n in 0..5 {
        comment(&api, &p, n).await;
    }
    let mut seen = ids(&read_until(&mut events, 5).await);
    drop(events);
    for n in 5..40 {
        comment(&api, &p, n).await;
    }
    let mut events = open(
        &api.base,
        &path,
        Some(&p.host),
        Some(*seen.last().expect("some")),
    )
    .await;
    seen.extend(ids(&read_until(&mut events, 42).await));
    assert_eq!(
        seen,
        (1..=42).collect::<Vec<_>>(),
        "nothing lost, nothing doubled"
    );
    // `?after=` resumes the same way.
    let mut events = open(&api.base, &format!("{path}?after=40"), Some(&p.host), None).await;
    assert_eq!(ids(&read_until(&mut events, 42).await), vec![41, 42]);
}

/// Live events, then resume.
async fn live_events_and_resume(server: TestServer) {
    live_events_match_the_log(&server).await;
    resume_loses_nothing(&server).await;
    server.stop().await;
}

async fn a_slow_subscriber_still_gets_every_event(server: TestServer) {
    let api = server.client();
    let p = party(&api, &server.admin_key).await;
    // This subscriber reads nothing while a burst is written that is far larger
    // than the broadcast buffer, its outbox and the loopback socket buffers
    // together (2500 events of ~4 KiB), so it must fall behind and catch up.
    let mut slow = open(
        &api.base,
        &format!("{}/events", p.path),
        Some(&p.host),
        None,
    )
    .await;
    let total = 2500;
    let mut writers = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let api = api.clone();
        let path = p.path.clone();
        let host = p.host.clone();
        writers.spawn(async move {
            for n in 0..total / 4 {
                let text = format!("w{worker} {n} {}", "x".repeat(4000));
                api.post(
                    &format!("{path}/comments"),
                    &host,
                    json!({ "text": text }),
                    201,
                )
                .await;
            }
        });
    }
    while writers.join_next().await.is_some() {}
    let last = 2 + u64::try_from(total).expect("small");
    let received = ids(&read_until(&mut slow, last).await);
    assert_eq!(
        received,
        (1..=last).collect::<Vec<_>>(),
        "every event exactly once, in order"
    );
    server.stop().await;
}

async fn streams_end_with_the_session_or_the_participant(server: TestServer) {
    let api = server.client();
    let p = party(&api, &server.admin_key).await;
    let joined = api
        .call(
            Method::POST,
            "/v1/join",
            None,
            Some(json!({"inviteToken": p.invite, "displayName": "Ada"})),
            201,
        )
        .await;
    let ada = text(&joined, "/token").to_owned();
    let ada_id = text(&joined, "/participant/id").to_owned();
    let path = format!("{}/events", p.path);
    let mut adas = open(&api.base, &path, Some(&ada), None).await;
    let mut hosts = open(&api.base, &path, Some(&p.host), None).await;
    read_until(&mut adas, 3).await;
    // Ada is removed: her stream shows it, then ends at once.
    api.delete(&format!("{}/participants/{ada_id}", p.path), &p.host, 204)
        .await;
    let last = read_until(&mut adas, 4).await;
    assert_eq!(
        last.last().map(|e| e.event.as_str()),
        Some("participant.removed")
    );
    assert!(
        next(&mut adas).await.is_none(),
        "a removed participant's stream ends"
    );
    // The host closes: every stream ends with session.closed.
    api.post(&format!("{}/close", p.path), &p.host, json!({}), 200)
        .await;
    let rest = read_until(&mut hosts, 5).await;
    assert_eq!(
        rest.last().map(|e| e.event.as_str()),
        Some("session.closed")
    );
    assert!(
        next(&mut hosts).await.is_none(),
        "the stream ends after session.closed"
    );
    // Resuming after the end ends at once.
    let mut late = open(&api.base, &path, Some(&p.host), Some(5)).await;
    assert!(next(&mut late).await.is_none());
    server.stop().await;
}

/// A client resuming from beyond the end of the log (a cursor from another
/// database, say) is taken to have everything: it gets what comes next, and its
/// stream still ends with `session.closed`.
async fn a_cursor_beyond_the_log_gets_what_comes_next(server: TestServer) {
    let api = server.client();
    let p = party(&api, &server.admin_key).await;
    let mut events = open(
        &api.base,
        &format!("{}/events", p.path),
        Some(&p.host),
        Some(1000),
    )
    .await;
    comment(&api, &p, 0).await;
    let next_one = read_until(&mut events, 3).await;
    assert_eq!(ids(&next_one), vec![3]);
    api.post(&format!("{}/close", p.path), &p.host, json!({}), 200)
        .await;
    let rest = read_until(&mut events, 4).await;
    assert_eq!(
        rest.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        vec!["session.closed"]
    );
    assert!(
        next(&mut events).await.is_none(),
        "the stream ends after session.closed"
    );
    server.stop().await;
}

async fn a_ticket_opens_a_stream_once(server: TestServer) {
    let api = server.client();
    let p = party(&api, &server.admin_key).await;
    let issued = api
        .post(
            &format!("{}/stream-tickets", p.path),
            &p.host,
            json!({}),
            201,
        )
        .await;
    let url = text(&issued, "/url").to_owned();
    assert!(url.contains("?ticket=tdm_tkt_"), "{url}");
    assert!(
        !url.contains(&p.host),
        "the participant's token is never in a URL"
    );
    let path = url.trim_start_matches(&api.base).to_owned();
    let mut events = open(&api.base, &path, None, None).await;
    assert_eq!(ids(&read_until(&mut events, 2).await), vec![1, 2]);
    // Used up.
    let again = api.send(Method::GET, &path, None, None).await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    server.stop().await;
}

async fn shutdown_ends_open_streams(server: TestServer) {
    let api = server.client();
    let p = party(&api, &server.admin_key).await;
    let mut events = open(
        &api.base,
        &format!("{}/events", p.path),
        Some(&p.host),
        None,
    )
    .await;
    read_until(&mut events, 2).await;
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("a graceful stop does not wait for streams");
    assert!(
        next(&mut events).await.is_none(),
        "the stream ended cleanly"
    );
}

/// A stream that opens while the session closes ends with `session.closed`,
/// whichever comes first: the close before the stream's backlog is read, between
/// that and the hub's start, or once it is live.
async fn a_stream_opened_during_a_close_ends_with_it(server: TestServer) {
    let api = server.client();
    for round in 0..20 {
        let p = party(&api, &server.admin_key).await;
        let close = {
            let api = api.clone();
            let path = format!("{}/close", p.path);
            let host = p.host.clone();
            tokio::spawn(async move {
                // Vary who goes first.
                tokio::time::sleep(Duration::from_millis(round % 4)).await;
                api.post(&path, &host, json!({}), 200).await;
            })
        };
        let mut events = open(
            &api.base,
            &format!("{}/events", p.path),
            Some(&p.host),
            None,
        )
        .await;
        let mut types = Vec::new();
        while let Some(event) = next(&mut events).await {
            types.push(event.event);
        }
        close.await.expect("the close");
        assert_eq!(
            types.last().map(String::as_str),
            Some("session.closed"),
            "round {round}: the stream ends with session.closed, got {types:?}"
        );
        assert_eq!(types.len(), 3, "round {round}: created, joined, closed");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_quiet_stream_sends_keep_alive_comments() {
    let server = TestServer::sqlite_with(|config| {
        config.stream_keep_alive = Duration::from_millis(300);
    })
    .await;
    let api = server.client();
    let p = party(&api, &server.admin_key).await;
    let response = support::http_client()
        .get(format!("{}{}/events", api.base, p.path))
        .header("accept", "text/event-stream")
        .bearer_auth(&p.host)
        .send()
        .await
        .expect("connect");
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    let began = tokio::time::Instant::now();
    while seen.matches(": keep-alive\n\n").count() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("the stream is never silent for long")
            .expect("open")
            .expect("bytes");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        began.elapsed() >= Duration::from_millis(550),
        "two keep-alives are 300 ms apart"
    );
    assert!(seen.starts_with("retry: 2000\n\n"), "{seen}");
    assert!(seen.contains("event: participant.joined"), "{seen}");
    server.stop().await;
}

/// Runs each scenario twice: on a fresh SQLite file, and on a fresh Postgres
/// database (`#[sqlx::test]` makes one per test).
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(TestServer::sqlite().await).await;
                }
            )*
        }
        mod on_postgres {
            use super::*;
            $(
                #[sqlx::test(migrations = false)]
                async fn $scenario(
                    _pool: sqlx::postgres::PgPoolOptions,
                    options: sqlx::postgres::PgConnectOptions,
                ) {
                    super::$scenario(TestServer::postgres(&options).await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    live_events_and_resume,
    a_slow_subscriber_still_gets_every_event,
    streams_end_with_the_session_or_the_participant,
    a_cursor_beyond_the_log_gets_what_comes_next,
    a_ticket_opens_a_stream_once,
    shutdown_ends_open_streams,
    a_stream_opened_during_a_close_ends_with_it,
);

/// A `tandem serve` process of the real binary.
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tandem");
        // From here on, Drop kills the process and waits for it on every path.
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

#[sqlx::test(migrations = false)]
async fn two_processes_on_one_postgres_share_the_stream(
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
    let admin = "two-process-admin-key-0123456789abcdef";
    let a = Process::start(&url, admin).await;
    let b = Process::start(&url, admin).await;
    let api_a = Client::new(&a.1);
    let p = party(&api_a, admin).await;
    let mut on_b = open(&b.1, &format!("{}/events", p.path), Some(&p.host), None).await;
    read_until(&mut on_b, 2).await;
    for n in 0..50 {
        comment(&api_a, &p, n).await;
    }
    let received = read_until(&mut on_b, 52).await;
    assert_eq!(
        ids(&received),
        (3..=52).collect::<Vec<_>>(),
        "in order, through the other process"
    );
    let texts: BTreeSet<String> = received
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(&e.data).expect("json")["data"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(texts.len(), 50);
}
