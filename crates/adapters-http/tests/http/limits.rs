//! Rate limits on writes: a budget per caller (API key, participant) and per
//! client address for joins, 429 `RATE_LIMITED` with `Retry-After` beyond it,
//! reads never limited.

use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use tandem_http::{HttpConfig, RateLimit};

use crate::common::{App, Reply};

/// An app whose callers may write `burst` times, then once a minute.
async fn limited(burst: u32) -> App {
    App::with_config(HttpConfig {
        rate_limit: Some(RateLimit {
            per_minute: NonZeroU32::new(1).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }),
        ..HttpConfig::default()
    })
    .await
}

/// Asserts a 429 problem and returns its `Retry-After` in seconds.
#[track_caller]
fn retry_after(reply: &Reply) -> u64 {
    reply.expect_problem(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    reply.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .expect("whole seconds")
}

#[tokio::test]
async fn a_participant_over_its_budget_gets_429_and_others_keep_writing() {
    let app = limited(3).await;
    let session = app.create_session(json!({ "mode": "prompt_direct" })).await;
    let (_, guest) = app.join(&session.invite, "Grace").await;
    let comments = format!("/v1/sessions/{}/comments", session.id);
    for n in 0..3 {
        app.post(&comments, &session.host, json!({ "text": format!("c{n}") }))
            .await
            .expect(StatusCode::CREATED);
    }
    let refused = app
        .post(&comments, &session.host, json!({ "text": "one too many" }))
        .await;
    // One write a minute refills the budget: the next is due within a minute.
    let seconds = retry_after(&refused);
    assert!((1..=60).contains(&seconds), "Retry-After: {seconds}");
    // Every write counts, whatever the resource.
    let prompts = format!("/v1/sessions/{}/prompts", session.id);
    let refused = app
        .post(&prompts, &session.host, json!({ "text": "hi" }))
        .await;
    retry_after(&refused);
    // Reads are not limited.
    let page = app.get(&comments, &session.host).await;
    page.expect(StatusCode::OK);
    // Another participant and the API key have budgets of their own.
    app.post(&comments, &guest, json!({ "text": "mine" }))
        .await
        .expect(StatusCode::CREATED);
    app.post("/v1/sessions", &app.admin, json!({}))
        .await
        .expect(StatusCode::CREATED);
    // The refused writes did not happen.
    let texts: Vec<_> = app.get(&comments, &session.host).await.json["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|comment| comment["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["c0", "c1", "c2", "mine"]);
}

#[tokio::test]
async fn an_api_key_over_its_budget_gets_429() {
    let app = limited(2).await;
    for _ in 0..2 {
        app.post("/v1/sessions", &app.admin, json!({}))
            .await
            .expect(StatusCode::CREATED);
    }
    let refused = app.post("/v1/sessions", &app.admin, json!({})).await;
    retry_after(&refused);
    app.get("/v1/sessions", &app.admin)
        .await
        .expect(StatusCode::OK);
}

/// A join sent from `address`, as the server sees it when served with
/// connection info.
async fn join_from(app: &App, address: [u8; 4], invite: &str) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/v1/join")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({ "inviteToken": invite, "displayName": "Guest" }).to_string(),
        ))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((address, 40_000))));
    app.send(request).await
}

#[tokio::test]
async fn joins_without_a_credential_are_limited_by_client_address() {
    let app = limited(2).await;
    let session = app.create_session(json!({})).await;
    for _ in 0..2 {
        join_from(&app, [192, 0, 2, 1], &session.invite)
            .await
            .expect(StatusCode::CREATED);
    }
    retry_after(&join_from(&app, [192, 0, 2, 1], &session.invite).await);
    join_from(&app, [192, 0, 2, 2], &session.invite)
        .await
        .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn without_a_limit_nothing_is_refused() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let comments = format!("/v1/sessions/{}/comments", session.id);
    for n in 0..100 {
        app.post(&comments, &session.host, json!({ "text": format!("c{n}") }))
            .await
            .expect(StatusCode::CREATED);
    }
}
