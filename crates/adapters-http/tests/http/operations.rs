//! Probes, the document and its UI, request ids and CORS.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tandem_domain::TextLimits;
use tandem_http::HttpConfig;
use tandem_service::ServiceConfig;

use crate::common::App;

#[tokio::test]
async fn probes_answer_without_credentials() {
    let app = App::new().await;
    for path in ["/healthz", "/readyz"] {
        let reply = app.call(Method::GET, path, None, None).await;
        assert_eq!(reply.expect(StatusCode::OK), &json!({ "status": "ok" }));
    }
}

#[tokio::test]
async fn metrics_are_served_only_with_a_recorder() {
    let app = App::new().await;
    app.call(Method::GET, "/metrics", None, None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn the_document_and_its_ui_are_served() {
    let app = App::new().await;
    let document = app.call(Method::GET, "/openapi.json", None, None).await;
    let mut served = document.expect(StatusCode::OK).clone();
    let mut general = serde_json::to_value(tandem_http::openapi()).unwrap();
    // The served document names this server's agent profiles; the general one
    // allows any profile name. Everything else is the same.
    let profile = "/components/schemas/CreateSessionRequest/properties/agentProfile";
    assert_eq!(
        served.pointer(&format!("{profile}/enum")),
        Some(&json!(["echo", null]))
    );
    assert_eq!(
        general.pointer(&format!("{profile}/pattern")),
        Some(&json!("^[a-z0-9][a-z0-9_-]*$"))
    );
    for document in [&mut served, &mut general] {
        let field = document
            .pointer_mut(profile)
            .and_then(Value::as_object_mut)
            .unwrap();
        for rule in ["enum", "pattern", "minLength", "maxLength"] {
            field.remove(rule);
        }
    }
    assert_eq!(served, general);
    let request = Request::get("/docs/").body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = App::new().await;
    let reply = app.call(Method::GET, "/healthz", None, None).await;
    assert!(!reply.headers["x-request-id"].is_empty());
    let problem = app.call(Method::GET, "/v1/sessions", None, None).await;
    assert!(!problem.headers["x-request-id"].is_empty());

    let request = Request::get("/healthz")
        .header("x-request-id", "trace-me-42")
        .body(Body::empty())
        .unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.headers["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn cors_is_off_unless_origins_are_configured() {
    let preflight = || {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/sessions")
            .header(header::ORIGIN, "https://app.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(Body::empty())
            .unwrap()
    };
    let closed = App::new().await.send(preflight()).await;
    assert!(
        !closed
            .headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );

    let open = App::with_config(HttpConfig {
        cors_origins: vec!["https://app.example".to_owned()],
        ..HttpConfig::default()
    })
    .await;
    let reply = open.send(preflight()).await;
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    // A problem answer carries the CORS headers too, so a browser can read it.
    let request = Request::get("/v1/sessions")
        .header(header::ORIGIN, "https://app.example")
        .body(Body::empty())
        .unwrap();
    let reply = open.send(request).await;
    reply.expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
}

#[tokio::test]
async fn a_smaller_body_limit_applies() {
    let app = App::with_config(HttpConfig {
        body_limit_bytes: 64,
        ..HttpConfig::default()
    })
    .await;
    app.post(
        "/v1/sessions",
        &app.admin,
        json!({ "title": "a title long enough to take the body past its limit of sixty-four bytes" }),
    )
    .await
    .expect_problem(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    app.post("/v1/sessions", &app.admin, json!({ "title": "short" }))
        .await
        .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn the_served_document_has_the_servers_own_limits() {
    let service = ServiceConfig {
        limits: TextLimits {
            title_chars: 10,
            comment_chars: 20,
            ..TextLimits::DEFAULT
        },
        ..ServiceConfig::default()
    };
    let app = App::with_configs(
        HttpConfig {
            public_url: "http://tandem.test/".to_owned(),
            ..HttpConfig::default()
        },
        service,
    )
    .await;
    let reply = app.call(Method::GET, "/openapi.json", None, None).await;
    let document = reply.expect(StatusCode::OK);
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["CreateSessionRequest"]["properties"]["title"]["maxLength"],
        10
    );
    assert_eq!(
        schemas["UpdateSessionRequest"]["properties"]["title"]["maxLength"],
        10
    );
    assert_eq!(
        schemas["PostCommentRequest"]["properties"]["text"]["maxLength"],
        20
    );
    // And the server holds to them: ten characters pass, eleven do not.
    let admin = app.admin.clone();
    app.call(
        Method::POST,
        "/v1/sessions",
        Some(&admin),
        Some(json!({"title": "é".repeat(10)})),
    )
    .await
    .expect(StatusCode::CREATED);
    app.call(
        Method::POST,
        "/v1/sessions",
        Some(&admin),
        Some(json!({"title": "é".repeat(11)})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
}
