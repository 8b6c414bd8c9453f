//! The control client: sets scenarios up and writes through Tandem's HTTP API.

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

/// A session the benchmark created, with its host's token and its invite.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) invite: String,
}

/// A JSON client of one server.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// A client of the server at `base` (`http://host:port`).
    pub(crate) fn new(base: &str) -> anyhow::Result<Self> {
        // reqwest may be built with rustls and no crypto provider (the server's
        // OpenAI executor brings its own): install one, although plain HTTP is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends a request and returns the JSON body; an error unless the status is
    /// `expect`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != expect {
            bail!("{method} {path} answered {status}, not {expect}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON"))
    }

    /// Creates a session (default agent, prompts of the host run at once).
    pub(crate) async fn create_session(&self, admin: &str) -> anyhow::Result<Session> {
        let created = self
            .send(
                Method::POST,
                "/v1/sessions",
                Some(admin),
                Some(json!({ "title": "benchmark" })),
                201,
            )
            .await?;
        Ok(Session {
            id: string(&created, "/session/id")?,
            host: string(&created, "/host/token")?,
            invite: string(&created, "/invite/token")?,
        })
    }

    /// Joins `session` through its invite; the new participant's token.
    pub(crate) async fn join(&self, session: &Session, name: &str) -> anyhow::Result<String> {
        let joined = self
            .send(
                Method::POST,
                "/v1/join",
                None,
                Some(json!({ "inviteToken": session.invite, "displayName": name })),
                201,
            )
            .await?;
        string(&joined, "/token")
    }

    /// Posts a comment as `token`.
    pub(crate) async fn comment(
        &self,
        session: &str,
        token: &str,
        text: &str,
    ) -> anyhow::Result<()> {
        self.send(
            Method::POST,
            &format!("/v1/sessions/{session}/comments"),
            Some(token),
            Some(json!({ "text": text })),
            201,
        )
        .await
        .map(drop)
    }

    /// Submits a prompt as `token`; its id.
    pub(crate) async fn submit_prompt(
        &self,
        session: &str,
        token: &str,
        text: &str,
    ) -> anyhow::Result<String> {
        let prompt = self
            .send(
                Method::POST,
                &format!("/v1/sessions/{session}/prompts"),
                Some(token),
                Some(json!({ "text": text })),
                201,
            )
            .await?;
        string(&prompt, "/id")
    }

    /// The seq of the session's newest event.
    pub(crate) async fn last_seq(&self, session: &str, token: &str) -> anyhow::Result<u64> {
        let details = self
            .send(
                Method::GET,
                &format!("/v1/sessions/{session}"),
                Some(token),
                None,
                200,
            )
            .await?;
        details
            .get("lastSeq")
            .and_then(Value::as_u64)
            .context("the session has no lastSeq")
    }

    /// Every event of the session after `after`, read as JSON pages.
    pub(crate) async fn events(
        &self,
        session: &str,
        token: &str,
        mut after: u64,
    ) -> anyhow::Result<Vec<Value>> {
        let mut events = Vec::new();
        loop {
            let page = self
                .send(
                    Method::GET,
                    &format!("/v1/sessions/{session}/events?after={after}&limit=200"),
                    Some(token),
                    None,
                    200,
                )
                .await?;
            if let Some(page_events) = page.get("events").and_then(Value::as_array) {
                events.extend(page_events.iter().cloned());
            }
            match page.get("next").and_then(Value::as_u64) {
                Some(next) => after = next,
                None => return Ok(events),
            }
        }
    }
}

/// The string at `pointer` in `value`.
fn string(value: &Value, pointer: &str) -> anyhow::Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("the answer has no {pointer}: {value}"))
}
