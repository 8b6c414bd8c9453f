//! The whole flow of issue 4 through the real server over TCP, on SQLite and on
//! Postgres: create, join, comment, prompt in each mode, approve and reject, change
//! the mode, remove a participant, close; and the denials along the way.

mod support;

use reqwest::Method;
use serde_json::json;
use support::{Client, TestServer, code, text};

/// Runs the flow against `server`.
async fn whole_flow(server: &TestServer) {
    let api = server.client();
    let admin = server.admin_key.as_str();

    // An admin creates a key that may only write sessions, and uses it.
    let created_key = api
        .post(
            "/v1/api-keys",
            admin,
            json!({"name": "ci", "scopes": ["sessions:write", "sessions:read"]}),
            201,
        )
        .await;
    let key = text(&created_key, "/secret").to_owned();
    assert!(key.starts_with("tdm_key_"));

    let created = api
        .post("/v1/sessions", &key, json!({"title": "Fix the flaky test", "mode": "prompt_with_approval", "expiresIn": "2h"}), 201)
        .await;
    let session_id = text(&created, "/session/id").to_owned();
    let host = text(&created, "/host/token").to_owned();
    let invite = text(&created, "/invite/token").to_owned();
    assert_eq!(text(&created, "/session/mode"), "prompt_with_approval");
    assert_eq!(text(&created, "/session/status"), "active");
    assert_eq!(text(&created, "/host/participant/role"), "host");
    assert!(
        text(&created, "/invite/url").ends_with(&format!("#{invite}")),
        "the invite link carries the token in its fragment"
    );
    let s = format!("/v1/sessions/{session_id}");

    // A collaborator joins through the session's invite.
    let joined = api
        .call(
            Method::POST,
            "/v1/join",
            None,
            Some(json!({"inviteToken": invite, "displayName": "Ada"})),
            201,
        )
        .await;
    assert_eq!(text(&joined, "/participant/role"), "collaborator");
    assert_eq!(text(&joined, "/session/id"), session_id);
    let ada = text(&joined, "/token").to_owned();
    assert_ne!(ada, host, "a join never returns someone else's token");

    // The host makes a one-use viewer invite; a viewer joins; the second use is refused.
    let viewer_invite = api
        .post(
            &format!("{s}/invites"),
            &host,
            json!({"role": "viewer", "maxUses": 1}),
            201,
        )
        .await;
    let viewer_token = text(&viewer_invite, "/token").to_owned();
    let joined = api
        .call(
            Method::POST,
            "/v1/join",
            None,
            Some(json!({"inviteToken": viewer_token, "displayName": "Vic"})),
            201,
        )
        .await;
    assert_eq!(text(&joined, "/participant/role"), "viewer");
    let vic = text(&joined, "/token").to_owned();
    let vic_id = text(&joined, "/participant/id").to_owned();
    let again = api
        .call(
            Method::POST,
            "/v1/join",
            None,
            Some(json!({"inviteToken": viewer_token, "displayName": "Eve"})),
            410,
        )
        .await;
    assert_eq!(code(&again), "INVITE_EXHAUSTED");

    // Everyone reads; the session lists its three participants.
    let details = api.get(&s, &vic, 200).await;
    assert_eq!(details["participants"].as_array().map(Vec::len), Some(3));

    // Comments: collaborators and the host may, viewers may not.
    api.post(
        &format!("{s}/comments"),
        &ada,
        json!({"text": "I think it's the clock"}),
        201,
    )
    .await;
    api.post(
        &format!("{s}/comments"),
        &host,
        json!({"text": "Agreed"}),
        201,
    )
    .await;
    let denied = api
        .post(
            &format!("{s}/comments"),
            &vic,
            json!({"text": "me too"}),
            403,
        )
        .await;
    assert_eq!(code(&denied), "COMMENT_NOT_ALLOWED");
    let comments = api.get(&format!("{s}/comments"), &vic, 200).await;
    assert_eq!(comments["comments"].as_array().map(Vec::len), Some(2));

    // prompt_with_approval: a collaborator's prompt waits; the host approves or rejects.
    let pending = api
        .post(
            &format!("{s}/prompts"),
            &ada,
            json!({"text": "Run the tests"}),
            201,
        )
        .await;
    assert_eq!(text(&pending, "/status"), "pending_approval");
    let pending_id = text(&pending, "/id").to_owned();
    let not_host = api
        .post(
            &format!("{s}/prompts/{pending_id}/approve"),
            &ada,
            json!({}),
            403,
        )
        .await;
    assert_eq!(code(&not_host), "HOST_ONLY");
    let approved = api
        .post(
            &format!("{s}/prompts/{pending_id}/approve"),
            &host,
            json!({}),
            200,
        )
        .await;
    assert_eq!(text(&approved, "/status"), "queued");
    let twice = api
        .post(
            &format!("{s}/prompts/{pending_id}/approve"),
            &host,
            json!({}),
            409,
        )
        .await;
    assert_eq!(code(&twice), "PROMPT_ALREADY_RESOLVED");
    let second = api
        .post(
            &format!("{s}/prompts"),
            &ada,
            json!({"text": "Delete everything"}),
            201,
        )
        .await;
    let second_id = text(&second, "/id").to_owned();
    let rejected = api
        .post(
            &format!("{s}/prompts/{second_id}/reject"),
            &host,
            json!({}),
            200,
        )
        .await;
    assert_eq!(text(&rejected, "/status"), "rejected");
    let viewer_prompt = api
        .post(&format!("{s}/prompts"), &vic, json!({"text": "hi"}), 403)
        .await;
    assert_eq!(code(&viewer_prompt), "PROMPT_NOT_ALLOWED");
    // The host's prompts run directly in every mode.
    let hosts = api
        .post(
            &format!("{s}/prompts"),
            &host,
            json!({"text": "Explain"}),
            201,
        )
        .await;
    assert_eq!(text(&hosts, "/status"), "queued");

    // prompt_direct: a collaborator's prompt is queued at once.
    let updated = api
        .patch(&s, &host, json!({"mode": "prompt_direct"}), 200)
        .await;
    assert_eq!(text(&updated, "/mode"), "prompt_direct");
    let direct = api
        .post(
            &format!("{s}/prompts"),
            &ada,
            json!({"text": "Fix it"}),
            201,
        )
        .await;
    assert_eq!(text(&direct, "/status"), "queued");
    let not_host = api.patch(&s, &ada, json!({"mode": "view_only"}), 403).await;
    assert_eq!(code(&not_host), "HOST_ONLY");

    // comment_only: no collaborator prompts; view_only: no collaborator comments.
    api.patch(&s, &host, json!({"mode": "comment_only"}), 200)
        .await;
    let denied = api
        .post(
            &format!("{s}/prompts"),
            &ada,
            json!({"text": "Fix it"}),
            403,
        )
        .await;
    assert_eq!(code(&denied), "PROMPT_NOT_ALLOWED");
    api.post(&format!("{s}/comments"), &ada, json!({"text": "ok"}), 201)
        .await;
    api.patch(&s, &host, json!({"mode": "view_only"}), 200)
        .await;
    let denied = api
        .post(&format!("{s}/comments"), &ada, json!({"text": "ok"}), 403)
        .await;
    assert_eq!(code(&denied), "COMMENT_NOT_ALLOWED");

    // Removing the viewer: its token stops working at once.
    api.delete(&format!("{s}/participants/{vic_id}"), &host, 204)
        .await;
    let gone = api.get(&s, &vic, 401).await;
    assert_eq!(code(&gone), "PARTICIPANT_GONE");

    // A revoked invite no longer admits anyone.
    let invites = api.get(&format!("{s}/invites"), &host, 200).await;
    let first_invite = invites["invites"][0]["id"]
        .as_str()
        .expect("an invite id")
        .to_owned();
    api.delete(&format!("{s}/invites/{first_invite}"), &host, 204)
        .await;
    let revoked = api
        .call(
            Method::POST,
            "/v1/join",
            None,
            Some(json!({"inviteToken": invite, "displayName": "Late"})),
            410,
        )
        .await;
    assert_eq!(code(&revoked), "INVITE_REVOKED");

    // Forged and missing credentials.
    let forged = api
        .get(
            &s,
            "tdm_pt_0000000000000000000000000000000000000000000000000000000000000000",
            401,
        )
        .await;
    assert_eq!(code(&forged), "UNAUTHENTICATED");
    let missing = api.call(Method::GET, &s, None, None, 401).await;
    assert_eq!(code(&missing), "UNAUTHENTICATED");

    // A key of another workspace does not even learn that the session exists.
    let other = server
        .tandem
        .issue_api_key(
            tandem_domain::WorkspaceId::parse("team-b").expect("workspace"),
            tandem_domain::ApiKeyName::parse("b").expect("name"),
            [tandem_domain::Scope::Admin].into_iter().collect(),
        )
        .await
        .expect("key");
    let hidden = api.get(&s, other.secret.expose(), 404).await;
    assert_eq!(code(&hidden), "SESSION_NOT_FOUND");
    let hidden = api.delete(&s, other.secret.expose(), 404).await;
    assert_eq!(code(&hidden), "SESSION_NOT_FOUND");

    // The collaborator leaves; its token stops working too.
    api.call(Method::POST, &format!("{s}/leave"), Some(&ada), None, 204)
        .await;
    api.get(&s, &ada, 401).await;

    // The agent has begun on the queue (the host's prompts run directly).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = api.get(&format!("{s}/events?limit=200"), &host, 200).await;
        let started = page["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|event| event["type"] == "prompt.started");
        if started {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no prompt started within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The host closes the session with a summary; nothing more can be written.
    let closed = api
        .post(
            &format!("{s}/close"),
            &host,
            json!({"summary": "Found it: a timezone bug."}),
            200,
        )
        .await;
    assert_eq!(text(&closed, "/status"), "closed");
    assert_eq!(text(&closed, "/summary"), "Found it: a timezone bug.");
    let late = api
        .post(
            &format!("{s}/comments"),
            &host,
            json!({"text": "one more thing"}),
            409,
        )
        .await;
    assert_eq!(code(&late), "SESSION_INACTIVE");

    // The event log holds every change, numbered 1..=N, ending with session.closed.
    let page = api.get(&format!("{s}/events?limit=200"), &host, 200).await;
    let events = page["events"].as_array().expect("events");
    let seqs: Vec<u64> = events
        .iter()
        .map(|event| event["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=u64::try_from(events.len()).expect("small")).collect::<Vec<_>>()
    );
    assert_eq!(
        events.last().map(|event| text(event, "/type")),
        Some("session.closed")
    );
    let types: Vec<&str> = events.iter().map(|event| text(event, "/type")).collect();
    for expected in [
        "session.created",
        "participant.joined",
        "comment.posted",
        "prompt.submitted",
        "prompt.approved",
        "prompt.rejected",
        "session.updated",
        "participant.removed",
        "participant.left",
        "prompt.started",
        "session.closed",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }

    // Ending the session left no prompt queued or running: each ran on the echo
    // agent or was cancelled by the close.
    let prompts = api.get(&format!("{s}/prompts"), &host, 200).await;
    for prompt in prompts["prompts"].as_array().expect("prompts") {
        let status = text(prompt, "/status");
        assert!(
            !matches!(status, "queued" | "running"),
            "a prompt left {status} after close: {prompt}"
        );
    }

    // The admin force-terminates another session.
    let other_session = api.post("/v1/sessions", admin, json!({}), 201).await;
    let other_id = text(&other_session, "/session/id");
    let terminated = api
        .delete(&format!("/v1/sessions/{other_id}"), admin, 200)
        .await;
    assert_eq!(text(&terminated, "/status"), "terminated");
    let listed = api.get("/v1/sessions?status=terminated", admin, 200).await;
    assert_eq!(listed["sessions"].as_array().map(Vec::len), Some(1));
}

/// Bad input over real TCP: always a problem document, never a 5xx.
async fn hostile_input(server: &TestServer) {
    let api: Client = server.client();
    let admin = server.admin_key.as_str();
    let malformed = api
        .send_raw(
            Method::POST,
            "/v1/sessions",
            Some(admin),
            "application/json",
            b"{\"title\": ".to_vec(),
        )
        .await;
    assert_eq!(
        (malformed.status, malformed.body["code"].as_str()),
        (400, Some("MALFORMED_JSON"))
    );
    let wrong_type = api
        .send_raw(
            Method::POST,
            "/v1/sessions",
            Some(admin),
            "text/plain",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(
        (wrong_type.status, wrong_type.body["code"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE"))
    );
    let unknown_field = api
        .post("/v1/sessions", admin, json!({"titel": "typo"}), 422)
        .await;
    assert_eq!(code(&unknown_field), "VALIDATION_FAILED");
    let bad_uuid = api.get("/v1/sessions/not-a-uuid", admin, 400).await;
    assert_eq!(code(&bad_uuid), "INVALID_PATH_PARAMETER");
    let huge = api
        .send_raw(
            Method::POST,
            "/v1/sessions",
            Some(admin),
            "application/json",
            vec![b' '; 600 * 1024],
        )
        .await;
    assert_eq!(
        (huge.status, huge.body["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );
    let invalid = api
        .post(
            "/v1/sessions",
            admin,
            json!({"expiresIn": "31d", "mode": "chaos"}),
            422,
        )
        .await;
    assert_eq!(code(&invalid), "VALIDATION_FAILED");
    let nowhere = api.get("/v1/nowhere", admin, 404).await;
    assert_eq!(code(&nowhere), "NOT_FOUND");
}

#[tokio::test]
async fn whole_flow_on_sqlite() {
    let server = TestServer::sqlite().await;
    whole_flow(&server).await;
    hostile_input(&server).await;
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn whole_flow_on_postgres(
    _pool: sqlx::postgres::PgPoolOptions,
    options: sqlx::postgres::PgConnectOptions,
) {
    let server = TestServer::postgres(&options).await;
    whole_flow(&server).await;
    hostile_input(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_everything_and_does_not_bootstrap_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let first = tandem::build(
        support::config(listener.local_addr().expect("addr"), url.clone()),
        listener,
    )
    .await
    .expect("build");
    let admin = first
        .bootstrapped_key()
        .expect("bootstrapped")
        .secret
        .expose()
        .to_owned();
    drop(first);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let second = tandem::build(
        support::config(listener.local_addr().expect("addr"), url),
        listener,
    )
    .await
    .expect("build");
    assert!(
        second.bootstrapped_key().is_none(),
        "an admin key exists already"
    );
    let caller = second
        .tandem()
        .authenticate(&admin)
        .await
        .expect("the first admin key still works");
    assert!(matches!(caller, tandem_service::Caller::ApiKey(_)));
}
