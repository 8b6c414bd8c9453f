//! Credentials: none, forged, of another workspace, of a departed participant.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use tandem_domain::{ApiKeyName, Scope, WorkspaceId};

use crate::common::App;

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge() {
    let app = App::new().await;
    for path in ["/v1/sessions", "/v1/api-keys"] {
        let reply = app.call(Method::GET, path, None, None).await;
        reply.expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
}

#[tokio::test]
async fn another_scheme_is_401() {
    let app = App::new().await;
    let request = Request::builder()
        .uri("/v1/sessions")
        .header(header::AUTHORIZATION, format!("Basic {}", app.admin))
        .body(Body::empty())
        .unwrap();
    app.send(request)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_forged_token_is_401() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let forged_key = format!("tdm_key_{}", "0".repeat(64));
    let forged_participant = format!("tdm_pt_{}", "0".repeat(64));
    app.get("/v1/sessions", &forged_key)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    app.get(&format!("/v1/sessions/{}", session.id), &forged_participant)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // An invite token is not a bearer credential.
    app.get(&format!("/v1/sessions/{}", session.id), &session.invite)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_key_of_another_workspace_never_reaches_a_session() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let other = app
        .tandem
        .issue_api_key(
            WorkspaceId::parse("team-b").unwrap(),
            ApiKeyName::parse("b admin").unwrap(),
            BTreeSet::from([Scope::Admin]),
        )
        .await
        .unwrap();
    let other = other.secret.expose();
    let path = format!("/v1/sessions/{}", session.id);
    app.get(&path, other)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    app.call(Method::DELETE, &path, Some(other), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    app.get(&format!("{path}/events"), other)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    let listed = app.get("/v1/sessions", other).await;
    assert_eq!(listed.expect(StatusCode::OK)["sessions"], json!([]));
}

#[tokio::test]
async fn a_participant_of_another_session_sees_nothing_of_this_one() {
    let app = App::new().await;
    let first = app.create_session(json!({})).await;
    let second = app.create_session(json!({})).await;
    app.get(&format!("/v1/sessions/{}", first.id), &second.host)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    app.post(
        &format!("/v1/sessions/{}/comments", first.id),
        &second.host,
        json!({ "text": "hello" }),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
}

#[tokio::test]
async fn a_removed_participants_token_stops_working() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let (participant, token) = app.join(&session.invite, "Grace").await;
    let path = format!("/v1/sessions/{}", session.id);
    app.get(&path, &token).await.expect(StatusCode::OK);
    app.call(
        Method::DELETE,
        &format!("{path}/participants/{participant}"),
        Some(&session.host),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let reply = app.get(&path, &token).await;
    reply.expect_problem(StatusCode::UNAUTHORIZED, "PARTICIPANT_GONE");
    assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test]
async fn a_departed_participants_token_stops_working() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let (_, token) = app.join(&session.invite, "Grace").await;
    let path = format!("/v1/sessions/{}", session.id);
    app.call(Method::POST, &format!("{path}/leave"), Some(&token), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    app.get(&path, &token)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "PARTICIPANT_GONE");
}

#[tokio::test]
async fn keys_and_participants_keep_to_their_own_actions() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    // A participant cannot create sessions or manage keys.
    app.post("/v1/sessions", &session.host, json!({}))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "API_KEY_REQUIRED");
    app.get("/v1/api-keys", &session.host)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "API_KEY_REQUIRED");
    // A key cannot act as a participant.
    app.post(
        &format!("/v1/sessions/{}/comments", session.id),
        &app.admin,
        json!({ "text": "hello" }),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "PARTICIPANT_TOKEN_REQUIRED");
    // A key without the scope is refused.
    let reader = app
        .post(
            "/v1/api-keys",
            &app.admin,
            json!({ "name": "reader", "scopes": ["sessions:read"] }),
        )
        .await;
    let reader = reader.expect(StatusCode::CREATED)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/v1/sessions", &reader)
        .await
        .expect(StatusCode::OK);
    app.post("/v1/sessions", &reader, json!({}))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
}
