//! A router over a fresh SQLite database, and a small client for it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tandem_http::HttpConfig;
use tandem_ports::SystemClock;
use tandem_service::{LocalEventBus, ServiceConfig, Tandem};
use tandem_sqlite::SqliteStore;
use tempfile::TempDir;
use tower::ServiceExt;

pub(crate) const PUBLIC_URL: &str = "http://tandem.test:8080";

/// The app under test, with the bootstrap admin key of workspace `default`.
pub(crate) struct App {
    pub(crate) router: Router,
    pub(crate) tandem: Tandem,
    pub(crate) admin: String,
    _dir: TempDir,
}

impl App {
    pub(crate) async fn new() -> Self {
        Self::with_config(HttpConfig {
            public_url: format!("{PUBLIC_URL}/"),
            ..HttpConfig::default()
        })
        .await
    }

    pub(crate) async fn with_config(config: HttpConfig) -> Self {
        Self::with_configs(config, ServiceConfig::default()).await
    }

    pub(crate) async fn with_configs(config: HttpConfig, service: ServiceConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open_file(&dir.path().join("tandem.db"))
            .await
            .expect("open the database");
        let tandem = Tandem::new(
            Arc::new(store),
            Arc::new(LocalEventBus::new()),
            Arc::new(SystemClock),
            service,
        );
        let admin = tandem
            .bootstrap_admin_key(None)
            .await
            .expect("bootstrap")
            .expect("a first admin key")
            .secret
            .expose()
            .to_owned();
        Self {
            router: tandem_http::router(tandem.clone(), config),
            tandem,
            admin,
            _dir: dir,
        }
    }

    /// Sends a request as built.
    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("the body")
            .to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{status}: the body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    /// Sends `body` (if any) as JSON with `token` (if any) as bearer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("a valid request"))
            .await
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Creates a session with the admin key.
    pub(crate) async fn create_session(&self, body: Value) -> Created {
        let reply = self.post("/v1/sessions", &self.admin, body).await;
        reply.expect(StatusCode::CREATED);
        Created {
            id: reply.json["session"]["id"].as_str().unwrap().to_owned(),
            host: reply.json["host"]["token"].as_str().unwrap().to_owned(),
            host_id: reply.json["host"]["participant"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            invite: reply.json["invite"]["token"].as_str().unwrap().to_owned(),
            reply,
        }
    }

    /// Joins through `invite`; returns the participant's id and token.
    pub(crate) async fn join(&self, invite: &str, name: &str) -> (String, String) {
        let reply = self
            .call(
                Method::POST,
                "/v1/join",
                None,
                Some(json!({ "inviteToken": invite, "displayName": name })),
            )
            .await;
        reply.expect(StatusCode::CREATED);
        (
            reply.json["participant"]["id"].as_str().unwrap().to_owned(),
            reply.json["token"].as_str().unwrap().to_owned(),
        )
    }
}

/// A session created through the API.
pub(crate) struct Created {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) host_id: String,
    pub(crate) invite: String,
    pub(crate) reply: Reply,
}

/// A response with its body read as JSON (`Null` when empty).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) json: Value,
}

impl Reply {
    /// Asserts the status (showing the body when it differs).
    #[track_caller]
    pub(crate) fn expect(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "body: {:#}", self.json);
        &self.json
    }

    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub(crate) fn expect_problem(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.json["code"].as_str()),
            (status, Some(code)),
            "body: {:#}",
            self.json
        );
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(self.json["status"], status.as_u16());
        for field in ["type", "title", "detail"] {
            assert!(self.json[field].is_string(), "problem without {field}");
        }
        &self.json
    }
}

/// Whether a JSON document holds a key anywhere (to prove a field never leaks).
pub(crate) fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(name, value)| name == key || has_key(value, key)),
        Value::Array(items) => items.iter().any(|item| has_key(item, key)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => false,
    }
}
