//! What reaches the logs: each request with its id, never a token or a text.
//!
//! A test binary of its own: the subscriber is process-wide, so that no other
//! test's threads interfere with what is captured.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tandem_http::HttpConfig;
use tandem_ports::SystemClock;
use tandem_service::{LocalEventBus, ServiceConfig, Tandem};
use tandem_sqlite::SqliteStore;
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;

/// Collects everything logged, to search it afterwards.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Sends a JSON request and returns the status and the JSON body.
async fn send(
    router: &Router,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .uri(path)
        .header("x-request-id", "find-me-in-the-logs");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            request = request
                .method("POST")
                .header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn logs_name_requests_but_never_tokens_or_texts() {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish(),
    )
    .expect("the only subscriber of this binary");

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_file(&dir.path().join("tandem.db"))
        .await
        .unwrap();
    let tandem = Tandem::new(
        Arc::new(store),
        Arc::new(LocalEventBus::new()),
        Arc::new(SystemClock),
        ServiceConfig::default(),
    );
    let admin = tandem
        .bootstrap_admin_key(None)
        .await
        .unwrap()
        .unwrap()
        .secret
        .expose()
        .to_owned();
    let router = tandem_http::router(tandem, HttpConfig::default());

    let (status, created) = send(&router, "/v1/sessions", Some(&admin), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["session"]["id"].as_str().unwrap();
    let host = created["host"]["token"].as_str().unwrap();
    let invite = created["invite"]["token"].as_str().unwrap();
    let (status, joined) = send(
        &router,
        "/v1/join",
        None,
        Some(json!({ "inviteToken": invite, "displayName": "Grace" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let guest = joined["token"].as_str().unwrap();
    let comment = "my comment is private";
    let prompt = "my prompt is private";
    for (path, text) in [("comments", comment), ("prompts", prompt)] {
        let (status, _) = send(
            &router,
            &format!("/v1/sessions/{id}/{path}"),
            Some(guest),
            Some(json!({ "text": text })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, _) = send(&router, &format!("/v1/sessions/{id}"), Some(guest), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&router, "/v1/sessions", Some("tdm_key_forged"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let logs = captured.text();
    assert!(logs.contains("request_id=find-me-in-the-logs"), "{logs}");
    assert!(logs.contains("caller=participant:"), "{logs}");
    for secret in [
        admin.as_str(),
        host,
        invite,
        guest,
        "tdm_key_forged",
        comment,
        prompt,
    ] {
        assert!(!logs.contains(secret), "{secret} was logged:\n{logs}");
    }
}
