//! The shapes clients rely on (DESIGN.md §4) and each resource's lifecycle.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{App, PUBLIC_URL, has_key};

#[tokio::test]
async fn creating_a_session_returns_it_with_host_credentials_and_an_invite() {
    let app = App::new().await;
    let created = app
        .create_session(json!({
            "title": "Fix the flaky test",
            "mode": "prompt_direct",
            "permissionPolicy": "reject_all",
            "expiresIn": "1h",
            "idleTimeout": "30m",
            "hostDisplayName": "Ada",
            "hostUserId": "ada@example.com",
        }))
        .await;
    let body = &created.reply.json;
    let session = &body["session"];
    assert_eq!(session["id"], created.id.as_str());
    assert_eq!(session["title"], "Fix the flaky test");
    assert_eq!(session["mode"], "prompt_direct");
    assert_eq!(session["permissionPolicy"], "reject_all");
    assert_eq!(session["agentProfile"], "echo");
    assert_eq!(session["status"], "active");
    assert_eq!(session["idleTimeout"], "30m");
    assert_eq!(session["hostUserId"], "ada@example.com");
    assert_eq!(session["workspaceId"], "default");
    for null in ["closedAt", "closeReason", "summary"] {
        assert_eq!(session[null], Value::Null, "{null}");
    }
    assert!(session["lastSeq"].as_u64().unwrap() >= 1);
    for time in ["createdAt", "expiresAt", "lastActivityAt"] {
        assert!(session[time].as_str().unwrap().ends_with('Z'), "{time}");
    }

    let host = &body["host"];
    assert_eq!(host["participant"]["role"], "host");
    assert_eq!(host["participant"]["displayName"], "Ada");
    assert!(host["token"].as_str().unwrap().starts_with("tdm_pt_"));

    let invite = &body["invite"];
    assert_eq!(invite["invite"]["role"], "collaborator");
    assert_eq!(invite["invite"]["uses"], 0);
    let token = invite["token"].as_str().unwrap();
    assert!(token.starts_with("tdm_inv_"));
    assert_eq!(invite["url"], format!("{PUBLIC_URL}/join#{token}"));

    for secret_field in ["version", "tokenHash", "token_hash", "hash"] {
        assert!(!has_key(body, secret_field), "{secret_field} leaked");
    }
}

#[tokio::test]
async fn joining_returns_the_session_a_new_participant_and_its_token() {
    let app = App::new().await;
    let created = app.create_session(json!({})).await;
    let reply = app
        .call(
            Method::POST,
            "/v1/join",
            None,
            Some(json!({
                "inviteToken": created.invite,
                "displayName": "  Grace  ",
                "userId": "grace",
            })),
        )
        .await;
    let body = reply.expect(StatusCode::CREATED);
    assert_eq!(body["session"]["id"], created.id.as_str());
    assert_eq!(body["participant"]["role"], "collaborator");
    assert_eq!(body["participant"]["displayName"], "Grace");
    assert_eq!(body["participant"]["userId"], "grace");
    assert_eq!(body["participant"]["leftAt"], Value::Null);
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("tdm_pt_"));
    assert_ne!(token, created.host);
    assert!(!has_key(body, "version"));

    // Each join is a new participant with a new token.
    let (_, second) = app.join(&created.invite, "Grace").await;
    assert_ne!(second, token);

    let details = app
        .get(&format!("/v1/sessions/{}", created.id), token)
        .await;
    let details = details.expect(StatusCode::OK);
    assert_eq!(details["id"], created.id.as_str());
    assert_eq!(details["status"], "active");
    let roles: Vec<&str> = details["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|participant| participant["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["host", "collaborator", "collaborator"]);
}

#[tokio::test]
async fn an_unknown_invite_is_404() {
    let app = App::new().await;
    app.call(
        Method::POST,
        "/v1/join",
        None,
        Some(json!({ "inviteToken": "tdm_inv_nothing", "displayName": "Eve" })),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "INVITE_NOT_FOUND");
}

#[tokio::test]
async fn sessions_are_listed_newest_first_by_page_and_status() {
    let app = App::new().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.create_session(json!({})).await.id);
    }
    let first = app.get("/v1/sessions?limit=2", &app.admin).await;
    let first = first.expect(StatusCode::OK);
    let listed: Vec<&str> = first["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| session["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    assert_eq!(first["next"], ids[1].as_str());
    let second = app
        .get(
            &format!("/v1/sessions?limit=2&after={}", ids[1]),
            &app.admin,
        )
        .await;
    let second = second.expect(StatusCode::OK);
    assert_eq!(second["sessions"][0]["id"], ids[0].as_str());
    assert_eq!(second["next"], Value::Null);

    app.call(
        Method::DELETE,
        &format!("/v1/sessions/{}", ids[0]),
        Some(&app.admin),
        None,
    )
    .await
    .expect(StatusCode::OK);
    let terminated = app.get("/v1/sessions?status=terminated", &app.admin).await;
    let terminated = terminated.expect(StatusCode::OK);
    assert_eq!(terminated["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(terminated["sessions"][0]["status"], "terminated");
    assert_eq!(terminated["sessions"][0]["closeReason"], "terminated");
}

#[tokio::test]
async fn the_host_updates_and_closes_a_session() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let (_, guest) = app.join(&session.invite, "Grace").await;
    let path = format!("/v1/sessions/{}", session.id);

    let updated = app
        .call(
            Method::PATCH,
            &path,
            Some(&session.host),
            Some(json!({ "title": "Renamed", "mode": "view_only", "expiresIn": "2h" })),
        )
        .await;
    let updated = updated.expect(StatusCode::OK);
    assert_eq!(updated["title"], "Renamed");
    assert_eq!(updated["mode"], "view_only");

    app.call(
        Method::PATCH,
        &path,
        Some(&guest),
        Some(json!({ "title": "Mine" })),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "HOST_ONLY");
    app.call(
        Method::PATCH,
        &path,
        Some(&session.host),
        Some(json!({ "expiresIn": "30d" })),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "EXPIRY_BEYOND_MAX");

    let closed = app
        .post(
            &format!("{path}/close"),
            &session.host,
            json!({ "summary": "Done." }),
        )
        .await;
    let closed = closed.expect(StatusCode::OK);
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["closeReason"], "closed_by_host");
    assert_eq!(closed["summary"], "Done.");
    assert!(closed["closedAt"].is_string());

    app.post(
        &format!("{path}/comments"),
        &session.host,
        json!({ "text": "too late" }),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "SESSION_INACTIVE");
}

#[tokio::test]
async fn comments_are_posted_per_the_matrix_and_paged() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let (_, guest) = app.join(&session.invite, "Grace").await;
    let path = format!("/v1/sessions/{}/comments", session.id);

    let mut ids = Vec::new();
    for (token, text) in [
        (&session.host, "one"),
        (&guest, "two"),
        (&session.host, "three"),
    ] {
        let reply = app.post(&path, token, json!({ "text": text })).await;
        let comment = reply.expect(StatusCode::CREATED);
        assert_eq!(comment["text"], text);
        assert_eq!(comment["sessionId"], session.id.as_str());
        ids.push(comment["id"].as_str().unwrap().to_owned());
    }
    let page = app.get(&format!("{path}?limit=2"), &guest).await;
    let page = page.expect(StatusCode::OK);
    assert_eq!(page["comments"][0]["text"], "one");
    assert_eq!(
        page["comments"][1]["authorParticipantId"]
            .as_str()
            .unwrap()
            .len(),
        36
    );
    assert_eq!(page["next"], ids[1].as_str());
    let rest = app.get(&format!("{path}?after={}", ids[1]), &guest).await;
    let rest = rest.expect(StatusCode::OK);
    assert_eq!(rest["comments"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next"], Value::Null);

    // Too long, and blank.
    let problem = app
        .post(&path, &guest, json!({ "text": "x".repeat(8 * 1024 + 1) }))
        .await;
    let problem = problem.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "text");
    app.post(&path, &guest, json!({ "text": "   " }))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");

    // A viewer may not comment.
    let viewer_invite = app
        .post(
            &format!("/v1/sessions/{}/invites", session.id),
            &session.host,
            json!({ "role": "viewer" }),
        )
        .await;
    let viewer_invite = viewer_invite.expect(StatusCode::CREATED)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, viewer) = app.join(&viewer_invite, "Vic").await;
    app.post(&path, &viewer, json!({ "text": "hi" }))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "COMMENT_NOT_ALLOWED");
}

#[tokio::test]
async fn prompts_follow_their_lifecycle() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let (_, guest) = app.join(&session.invite, "Grace").await;
    let prompts = format!("/v1/sessions/{}/prompts", session.id);

    // A collaborator's prompt waits for approval; its author may edit it.
    let pending = app
        .post(&prompts, &guest, json!({ "text": "add a test" }))
        .await;
    let pending = pending.expect(StatusCode::CREATED).clone();
    assert_eq!(pending["status"], "pending_approval");
    assert_eq!(pending["queuedAt"], Value::Null);
    let id = pending["id"].as_str().unwrap();
    let one = format!("{prompts}/{id}");
    let edited = app
        .call(
            Method::PATCH,
            &one,
            Some(&guest),
            Some(json!({ "text": "add two tests" })),
        )
        .await;
    assert_eq!(edited.expect(StatusCode::OK)["text"], "add two tests");
    app.call(
        Method::PATCH,
        &one,
        Some(&session.host),
        Some(json!({ "text": "mine now" })),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "NOT_PROMPT_AUTHOR");

    // Only the host approves; approving twice is a conflict.
    app.call(Method::POST, &format!("{one}/approve"), Some(&guest), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "HOST_ONLY");
    let approved = app
        .call(
            Method::POST,
            &format!("{one}/approve"),
            Some(&session.host),
            None,
        )
        .await;
    let approved = approved.expect(StatusCode::OK);
    assert_eq!(approved["status"], "queued");
    assert_eq!(approved["resolvedBy"], session.host_id.as_str());
    app.call(
        Method::POST,
        &format!("{one}/reject"),
        Some(&session.host),
        None,
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "PROMPT_ALREADY_RESOLVED");

    let read = app.get(&one, &guest).await;
    assert_eq!(read.expect(StatusCode::OK)["status"], "queued");

    // Cancelling a queued prompt ends it at once; then the host may retry it.
    let cancelled = app
        .call(Method::POST, &format!("{one}/cancel"), Some(&guest), None)
        .await;
    assert_eq!(cancelled.expect(StatusCode::OK)["status"], "cancelled");
    let retried = app
        .call(
            Method::POST,
            &format!("{one}/retry"),
            Some(&session.host),
            None,
        )
        .await;
    let retried = retried.expect(StatusCode::CREATED);
    assert_eq!(retried["status"], "queued");
    assert_eq!(retried["retryOf"], id);
    assert_ne!(retried["id"], id);

    // Withdraw and reject.
    let second = app
        .post(&prompts, &guest, json!({ "text": "never mind" }))
        .await;
    let second = second.expect(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let withdrawn = app
        .call(
            Method::POST,
            &format!("{prompts}/{second}/withdraw"),
            Some(&guest),
            None,
        )
        .await;
    assert_eq!(withdrawn.expect(StatusCode::OK)["status"], "withdrawn");
    let third = app
        .post(&prompts, &guest, json!({ "text": "rm -rf" }))
        .await;
    let third = third.expect(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rejected = app
        .call(
            Method::POST,
            &format!("{prompts}/{third}/reject"),
            Some(&session.host),
            None,
        )
        .await;
    assert_eq!(rejected.expect(StatusCode::OK)["status"], "rejected");

    // The host's own prompt is queued directly; lists filter by status.
    let direct = app
        .post(&prompts, &session.host, json!({ "text": "go" }))
        .await;
    assert_eq!(direct.expect(StatusCode::CREATED)["status"], "queued");
    let queued = app.get(&format!("{prompts}?status=queued"), &guest).await;
    assert_eq!(
        queued.expect(StatusCode::OK)["prompts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let all = app.get(&prompts, &guest).await;
    assert_eq!(
        all.expect(StatusCode::OK)["prompts"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    app.get(&format!("{prompts}/{}", uuid::Uuid::now_v7()), &guest)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "PROMPT_NOT_FOUND");
}

#[tokio::test]
async fn a_viewer_may_not_prompt() {
    let app = App::new().await;
    let session = app.create_session(json!({ "mode": "comment_only" })).await;
    let (_, guest) = app.join(&session.invite, "Grace").await;
    app.post(
        &format!("/v1/sessions/{}/prompts", session.id),
        &guest,
        json!({ "text": "hi" }),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "PROMPT_NOT_ALLOWED");
}

#[tokio::test]
async fn the_events_page_shows_the_log_in_order() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let (guest_id, guest) = app.join(&session.invite, "Grace").await;
    app.post(
        &format!("/v1/sessions/{}/comments", session.id),
        &guest,
        json!({ "text": "hello" }),
    )
    .await
    .expect(StatusCode::CREATED);
    let events = format!("/v1/sessions/{}/events", session.id);

    let page = app.get(&events, &guest).await;
    let page = page.expect(StatusCode::OK);
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "session.created",
            "participant.joined",
            "participant.joined",
            "comment.posted"
        ]
    );
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(page["next"], Value::Null);
    let comment = &page["events"][3];
    assert_eq!(
        comment["actor"],
        json!({ "kind": "participant", "id": guest_id })
    );
    assert_eq!(comment["data"]["text"], "hello");
    assert!(comment["createdAt"].is_string());

    let first = app.get(&format!("{events}?limit=1"), &guest).await;
    let first = first.expect(StatusCode::OK);
    assert_eq!(first["events"].as_array().unwrap().len(), 1);
    assert_eq!(first["next"], 1);
    let rest = app.get(&format!("{events}?after=1&limit=2"), &guest).await;
    let rest = rest.expect(StatusCode::OK);
    assert_eq!(rest["events"][0]["seq"], 2);
    assert_eq!(rest["next"], 3);
    let end = app.get(&format!("{events}?after=4"), &guest).await;
    assert_eq!(end.expect(StatusCode::OK)["events"], json!([]));
}

#[tokio::test]
async fn the_host_manages_invites() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let invites = format!("/v1/sessions/{}/invites", session.id);

    let created = app
        .post(
            &invites,
            &session.host,
            json!({ "role": "viewer", "maxUses": 1, "expiresIn": "1h" }),
        )
        .await;
    let created = created.expect(StatusCode::CREATED).clone();
    assert_eq!(created["invite"]["role"], "viewer");
    assert_eq!(created["invite"]["maxUses"], 1);
    assert!(created["invite"]["expiresAt"].is_string());
    let token = created["token"].as_str().unwrap();
    assert_eq!(created["url"], format!("{PUBLIC_URL}/join#{token}"));

    let (_, viewer) = app.join(token, "Vic").await;
    app.call(
        Method::POST,
        "/v1/join",
        None,
        Some(json!({ "inviteToken": token, "displayName": "Late" })),
    )
    .await
    .expect_problem(StatusCode::GONE, "INVITE_EXHAUSTED");

    let listed = app.get(&invites, &session.host).await;
    let listed = listed.expect(StatusCode::OK);
    assert_eq!(listed["invites"].as_array().unwrap().len(), 2);
    assert_eq!(listed["invites"][1]["uses"], 1);
    assert_eq!(listed["next"], Value::Null);
    let paged = app.get(&format!("{invites}?limit=1"), &session.host).await;
    let paged = paged.expect(StatusCode::OK);
    assert_eq!(paged["next"], paged["invites"][0]["id"]);
    app.get(&invites, &viewer)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "HOST_ONLY");

    let original = listed["invites"][0]["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("{invites}/{original}"),
        Some(&session.host),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.call(
        Method::DELETE,
        &format!("{invites}/{original}"),
        Some(&session.host),
        None,
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "INVITE_ALREADY_REVOKED");
    app.call(
        Method::POST,
        "/v1/join",
        None,
        Some(json!({ "inviteToken": session.invite, "displayName": "Late" })),
    )
    .await
    .expect_problem(StatusCode::GONE, "INVITE_REVOKED");

    app.post(
        &invites,
        &session.host,
        json!({ "maxUses": 0, "expiresIn": "soon" }),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    app.call(
        Method::DELETE,
        &format!("{invites}/{}", uuid::Uuid::now_v7()),
        Some(&session.host),
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "INVITE_NOT_FOUND");
}

#[tokio::test]
async fn the_host_changes_roles_and_removes_participants() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let (guest_id, guest) = app.join(&session.invite, "Grace").await;
    let participants = format!("/v1/sessions/{}/participants", session.id);

    let changed = app
        .call(
            Method::PATCH,
            &format!("{participants}/{guest_id}"),
            Some(&session.host),
            Some(json!({ "role": "viewer" })),
        )
        .await;
    assert_eq!(changed.expect(StatusCode::OK)["role"], "viewer");
    app.call(
        Method::PATCH,
        &format!("{participants}/{guest_id}"),
        Some(&session.host),
        Some(json!({ "role": "viewer" })),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "ROLE_UNCHANGED");
    app.call(
        Method::PATCH,
        &format!("{participants}/{}", session.host_id),
        Some(&session.host),
        Some(json!({ "role": "viewer" })),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "HOST_ROLE_FIXED");
    app.call(
        Method::PATCH,
        &format!("{participants}/{guest_id}"),
        Some(&session.host),
        Some(json!({ "role": "host" })),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");

    let listed = app.get(&participants, &guest).await;
    let listed = listed.expect(StatusCode::OK);
    assert_eq!(listed["participants"].as_array().unwrap().len(), 2);
    assert_eq!(listed["next"], Value::Null);

    app.call(
        Method::DELETE,
        &format!("{participants}/{guest_id}"),
        Some(&session.host),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let listed = app.get(&participants, &session.host).await;
    let removed = &listed.expect(StatusCode::OK)["participants"][1];
    assert!(removed["leftAt"].is_string());
    assert_eq!(removed["removedBy"], session.host_id.as_str());

    app.call(
        Method::DELETE,
        &format!("{participants}/{}", uuid::Uuid::now_v7()),
        Some(&session.host),
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "PARTICIPANT_NOT_FOUND");
    app.call(
        Method::POST,
        &format!("/v1/sessions/{}/leave", session.id),
        Some(&session.host),
        None,
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "HOST_CANNOT_LEAVE");
}

#[tokio::test]
async fn admins_manage_api_keys() {
    let app = App::new().await;
    let created = app
        .post(
            "/v1/api-keys",
            &app.admin,
            json!({ "name": "ci", "scopes": ["sessions:read", "sessions:write"] }),
        )
        .await;
    let created = created.expect(StatusCode::CREATED).clone();
    assert_eq!(created["apiKey"]["name"], "ci");
    assert_eq!(created["apiKey"]["workspaceId"], "default");
    assert_eq!(
        created["apiKey"]["scopes"],
        json!(["sessions:read", "sessions:write"])
    );
    assert_eq!(created["apiKey"]["revokedAt"], Value::Null);
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("tdm_key_"));
    let id = created["apiKey"]["id"].as_str().unwrap();

    let listed = app.get("/v1/api-keys", &app.admin).await;
    let listed = listed.expect(StatusCode::OK);
    assert_eq!(listed["apiKeys"].as_array().unwrap().len(), 2);
    assert!(!has_key(listed, "secret"));

    app.get("/v1/sessions", secret).await.expect(StatusCode::OK);
    app.get("/v1/api-keys", secret)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
    let path = format!("/v1/api-keys/{id}");
    app.call(Method::DELETE, &path, Some(&app.admin), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    app.get("/v1/sessions", secret)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    app.call(Method::DELETE, &path, Some(&app.admin), None)
        .await
        .expect_problem(StatusCode::CONFLICT, "API_KEY_ALREADY_REVOKED");
    app.call(
        Method::DELETE,
        &format!("/v1/api-keys/{}", uuid::Uuid::now_v7()),
        Some(&app.admin),
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "API_KEY_NOT_FOUND");
    app.post(
        "/v1/api-keys",
        &app.admin,
        json!({ "name": " ", "scopes": [] }),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
}

#[tokio::test]
async fn an_unknown_agent_profile_is_422() {
    let app = App::new().await;
    let reply = app
        .post(
            "/v1/sessions",
            &app.admin,
            json!({ "agentProfile": "gemini" }),
        )
        .await;
    let problem = reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "UNKNOWN_AGENT_PROFILE");
    assert_eq!(problem["errors"], Value::Null);
}
