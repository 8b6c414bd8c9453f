//! What the web app reads through the API: who a token belongs to, the agent
//! profiles, an invite's preview, the host link, and sessions listed with their
//! participant counts.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{App, PUBLIC_URL, has_key};

#[tokio::test]
async fn the_create_response_carries_a_host_link_built_like_invite_links() {
    let app = App::new().await;
    let created = app.create_session(json!({})).await;
    let host = &created.reply.json["host"];
    assert_eq!(
        host["url"],
        format!("{PUBLIC_URL}/s/{}#{}", created.id, created.host)
    );
}

#[tokio::test]
async fn me_names_the_participant_or_the_api_key_behind_a_token() {
    let app = App::new().await;
    let created = app
        .create_session(json!({ "hostDisplayName": "Grace" }))
        .await;
    let (ada, ada_token) = app.join(&created.invite, "Ada").await;

    let me = app.get("/v1/me", &ada_token).await;
    let body = me.expect(StatusCode::OK);
    assert_eq!(body["kind"], "participant");
    assert_eq!(body["apiKey"], serde_json::Value::Null);
    assert_eq!(body["participant"]["id"], ada.as_str());
    assert_eq!(body["participant"]["sessionId"], created.id.as_str());
    assert_eq!(body["participant"]["role"], "collaborator");
    assert!(!has_key(body, "token"));

    // A role change shows at once (the token's participant is read afresh).
    app.call(
        Method::PATCH,
        &format!("/v1/sessions/{}/participants/{ada}", created.id),
        Some(&created.host),
        Some(json!({ "role": "viewer" })),
    )
    .await
    .expect(StatusCode::OK);
    let me = app.get("/v1/me", &ada_token).await;
    assert_eq!(me.expect(StatusCode::OK)["participant"]["role"], "viewer");

    let me = app.get("/v1/me", &app.admin).await;
    let body = me.expect(StatusCode::OK);
    assert_eq!(body["kind"], "api_key");
    assert_eq!(body["participant"], serde_json::Value::Null);
    assert_eq!(body["apiKey"]["workspaceId"], "default");
    assert_eq!(body["apiKey"]["scopes"], json!(["admin"]));

    // Removed: the token no longer says who it was.
    app.call(
        Method::DELETE,
        &format!("/v1/sessions/{}/participants/{ada}", created.id),
        Some(&created.host),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.get("/v1/me", &ada_token)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "PARTICIPANT_GONE");
    app.get("/v1/me", "tdm_key_nothing")
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn agent_profiles_are_listed_by_name_for_api_keys_only() {
    let app = App::new().await;
    let profiles = app.get("/v1/agent-profiles", &app.admin).await;
    assert_eq!(
        profiles.expect(StatusCode::OK),
        &json!({ "profiles": ["echo"], "default": "echo" })
    );
    let created = app.create_session(json!({})).await;
    app.get("/v1/agent-profiles", &created.host)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "API_KEY_REQUIRED");
}

#[tokio::test]
async fn an_invite_preview_shows_title_and_role_and_refuses_what_a_join_refuses() {
    let app = App::new().await;
    let created = app
        .create_session(json!({ "title": "Fix the flaky test", "hostDisplayName": "Grace" }))
        .await;
    let preview = app.get("/v1/invites/preview", &created.invite).await;
    let body = preview.expect(StatusCode::OK);
    assert_eq!(body["sessionId"], created.id.as_str());
    assert_eq!(body["title"], "Fix the flaky test");
    assert_eq!(body["role"], "collaborator");
    assert_eq!(body["inviteExpiresAt"], serde_json::Value::Null);
    assert!(body["sessionExpiresAt"].is_string());
    for private in [
        "participants",
        "host",
        "hostUserId",
        "uses",
        "token",
        "displayName",
    ] {
        assert!(!has_key(body, private), "{private} leaked");
    }

    // A viewer link that may be used once: previewing does not use it up.
    let viewer = app
        .post(
            &format!("/v1/sessions/{}/invites", created.id),
            &created.host,
            json!({ "role": "viewer", "maxUses": 1 }),
        )
        .await;
    let viewer = viewer.expect(StatusCode::CREATED)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let preview = app.get("/v1/invites/preview", &viewer).await;
        assert_eq!(preview.expect(StatusCode::OK)["role"], "viewer");
    }
    app.join(&viewer, "Ada").await;
    app.get("/v1/invites/preview", &viewer)
        .await
        .expect_problem(StatusCode::GONE, "INVITE_EXHAUSTED");

    app.get("/v1/invites/preview", "tdm_inv_unknown")
        .await
        .expect_problem(StatusCode::NOT_FOUND, "INVITE_NOT_FOUND");
    app.call(Method::GET, "/v1/invites/preview", None, None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");

    app.post(
        &format!("/v1/sessions/{}/close", created.id),
        &created.host,
        json!({}),
    )
    .await
    .expect(StatusCode::OK);
    app.get("/v1/invites/preview", &created.invite)
        .await
        .expect_problem(StatusCode::CONFLICT, "SESSION_INACTIVE");
}

#[tokio::test]
async fn listed_sessions_count_their_present_participants() {
    let app = App::new().await;
    let created = app.create_session(json!({})).await;
    let (ada, _) = app.join(&created.invite, "Ada").await;
    app.join(&created.invite, "Lin").await;
    let count =
        |reply: &crate::common::Reply| reply.json["sessions"][0]["participantCount"].clone();
    let listed = app.get("/v1/sessions", &app.admin).await;
    listed.expect(StatusCode::OK);
    assert_eq!(listed.json["sessions"][0]["id"], created.id.as_str());
    assert_eq!(count(&listed), 3);
    assert!(listed.json["sessions"][0]["lastActivityAt"].is_string());
    app.call(
        Method::DELETE,
        &format!("/v1/sessions/{}/participants/{ada}", created.id),
        Some(&created.host),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let listed = app.get("/v1/sessions", &app.admin).await;
    assert_eq!(count(&listed), 2, "a removed participant no longer counts");
}
