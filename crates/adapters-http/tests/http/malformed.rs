//! Bad input of every kind gets a problem document with the right status and
//! code: never a plain-text framework reply, never a 5xx.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::common::App;

fn raw(method: Method, path: &str, token: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = App::new().await;
    let request = raw(Method::POST, "/v1/sessions", &app.admin)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"title": "#))
        .unwrap();
    app.send(request)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "MALFORMED_JSON");
    for body in ["[1,", "nope", "{\"title\": \"a\"} trailing"] {
        let request = raw(Method::POST, "/v1/sessions", &app.admin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        app.send(request)
            .await
            .expect_problem(StatusCode::BAD_REQUEST, "MALFORMED_JSON");
    }
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415() {
    let app = App::new().await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = raw(Method::POST, "/v1/sessions", &app.admin);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(Body::from(r#"{"title":"x"}"#)).unwrap();
        app.send(request)
            .await
            .expect_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    }
}

#[tokio::test]
async fn an_empty_body_reads_as_an_empty_object() {
    let app = App::new().await;
    let request = raw(Method::POST, "/v1/sessions", &app.admin)
        .body(Body::empty())
        .unwrap();
    let reply = app.send(request).await;
    reply.expect(StatusCode::CREATED);
    assert_eq!(reply.json["session"]["title"], "Untitled session");

    // An empty body still lacks a required field.
    let session = app.create_session(json!({})).await;
    let request = raw(
        Method::POST,
        &format!("/v1/sessions/{}/comments", session.id),
        &session.host,
    )
    .body(Body::empty())
    .unwrap();
    let problem = app.send(request).await;
    let problem = problem.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "text");
}

#[tokio::test]
async fn fields_of_the_wrong_shape_are_422_naming_the_field() {
    let app = App::new().await;
    let cases = [
        (json!({ "colour": "blue" }), "colour", "unknown field"),
        (json!({ "title": 3 }), "title", "invalid type"),
        (json!({ "mode": "turbo" }), "mode", "unknown variant"),
        (json!({ "title": ["a"] }), "title", "invalid type"),
    ];
    for (body, field, message) in cases {
        let reply = app.post("/v1/sessions", &app.admin, body.clone()).await;
        let problem = reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with(message),
            "{problem:#}"
        );
    }
    for body in [json!(["Title"]), json!("Title"), json!(null)] {
        let reply = app.post("/v1/sessions", &app.admin, body).await;
        let problem = reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        assert_eq!(problem["errors"][0]["field"], "body");
        assert_eq!(problem["errors"][0]["message"], "must be a JSON object");
    }
}

#[tokio::test]
async fn a_missing_field_is_422_naming_it() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let reply = app
        .call(
            Method::POST,
            "/v1/join",
            None,
            Some(json!({ "inviteToken": session.invite })),
        )
        .await;
    let problem = reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "displayName");
    assert_eq!(
        problem["errors"][0]["message"],
        "missing field `displayName`"
    );
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let app = App::new().await;
    let reply = app
        .post(
            "/v1/sessions",
            &app.admin,
            json!({
                "title": "t".repeat(201),
                "expiresIn": "forever",
                "idleTimeout": "31d",
                "hostDisplayName": "  ",
                "agentProfile": "Not A Slug",
            }),
        )
        .await;
    let problem = reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "title",
            "agentProfile",
            "expiresIn",
            "idleTimeout",
            "hostDisplayName"
        ]
    );
    assert_eq!(
        problem["errors"][0]["message"],
        "must be at most 200 characters"
    );
}

#[tokio::test]
async fn a_bad_uuid_in_the_path_is_400() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    for path in [
        "/v1/sessions/not-a-uuid".to_owned(),
        format!("/v1/sessions/{}/prompts/123", session.id),
        "/v1/api-keys/xyz".to_owned(),
    ] {
        let method = if path.starts_with("/v1/api-keys") {
            Method::DELETE
        } else {
            Method::GET
        };
        app.call(method, &path, Some(&app.admin), None)
            .await
            .expect_problem(StatusCode::BAD_REQUEST, "INVALID_PATH_PARAMETER");
    }
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let app = App::new().await;
    let big = json!({ "title": "t".repeat(600 * 1024) }).to_string();
    // Declared with Content-Length: refused before the body is read.
    let request = raw(Method::POST, "/v1/sessions", &app.admin)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    app.send(request)
        .await
        .expect_problem(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    // Without a length: refused while reading.
    let request = raw(Method::POST, "/v1/sessions", &app.admin)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    app.send(request)
        .await
        .expect_problem(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_bad_query_is_400() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    for query in [
        "/v1/sessions?limit=abc",
        "/v1/sessions?limit=0",
        "/v1/sessions?limit=201",
        "/v1/sessions?status=sleeping",
        "/v1/sessions?after=not-a-uuid",
        "/v1/sessions?colour=blue",
    ] {
        app.get(query, &app.admin)
            .await
            .expect_problem(StatusCode::BAD_REQUEST, "INVALID_QUERY_PARAMETER");
    }
    app.get(
        &format!("/v1/sessions/{}/events?after=-1", session.id),
        &session.host,
    )
    .await
    .expect_problem(StatusCode::BAD_REQUEST, "INVALID_QUERY_PARAMETER");
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let app = App::new().await;
    for path in ["/v2/sessions", "/v1/nothing", "/"] {
        app.get(path, &app.admin)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let app = App::new().await;
    let reply = app
        .call(Method::PUT, "/v1/sessions", Some(&app.admin), None)
        .await;
    reply.expect_problem(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    let allow = reply.headers[header::ALLOW].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[tokio::test]
async fn the_events_endpoint_refuses_a_client_that_takes_neither_json_nor_a_stream() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let request = raw(
        Method::GET,
        &format!("/v1/sessions/{}/events", session.id),
        &session.host,
    )
    .header(header::ACCEPT, "text/html")
    .body(Body::empty())
    .unwrap();
    app.send(request)
        .await
        .expect_problem(StatusCode::NOT_ACCEPTABLE, "NOT_ACCEPTABLE");
}

#[tokio::test]
async fn a_permission_answer_names_exactly_one_choice() {
    let app = App::new().await;
    let session = app.create_session(json!({})).await;
    let path = format!(
        "/v1/sessions/{}/permissions/{}",
        session.id,
        uuid::Uuid::now_v7()
    );
    for body in [
        json!({}),
        json!({ "reject": false }),
        json!({ "optionId": "allow", "reject": true }),
        json!({ "optionId": "" }),
    ] {
        app.post(&path, &session.host, body)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    }
    app.post(&path, &session.host, json!({ "reject": true }))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "PERMISSION_REQUEST_NOT_FOUND");
}
