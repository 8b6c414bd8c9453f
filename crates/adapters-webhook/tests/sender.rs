//! The sender against real HTTP servers on loopback: what reaches them, what
//! is refused before anything is sent, and how answers are read.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use tandem_domain::{AttemptResult, WebhookUrl};
use tandem_ports::{OutboundRequest, WebhookSender};
use tandem_webhook::{HttpWebhookSender, OutboundPolicy};

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver on 127.0.0.1 with a few behaviours, recording what reaches it.
async fn receiver() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let record = |seen: Seen| {
        move |headers: HeaderMap, body: Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push((headers, body));
                StatusCode::NO_CONTENT
            }
        }
    };
    let app = Router::new()
        .route("/ok", post(record(Arc::clone(&seen))))
        .route(
            "/redirect",
            post(|| async { (StatusCode::FOUND, [(header::LOCATION, "/ok")]) }),
        )
        .route(
            "/busy",
            post(|| async { (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")]) }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/huge",
            post(|| async {
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let stream = futures::stream::iter(
                    (0..1024).map(move |_| Ok::<_, std::convert::Infallible>(chunk.clone())),
                );
                (StatusCode::OK, Body::from_stream(stream)).into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn loopback_policy() -> OutboundPolicy {
    OutboundPolicy {
        allow_http: true,
        allowed_networks: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        timeout: Duration::from_millis(800),
        ..OutboundPolicy::default()
    }
}

fn request(url: &str) -> OutboundRequest {
    OutboundRequest {
        url: WebhookUrl::parse(url).unwrap(),
        headers: vec![("webhook-id", "msg_1".to_owned())],
        body: br#"{"hello":"world"}"#.to_vec(),
    }
}

#[tokio::test]
async fn requests_reach_an_allowed_receiver_with_their_headers() {
    let (addr, seen) = receiver().await;
    let sender = HttpWebhookSender::new(loopback_policy()).unwrap();
    let url = format!("http://{addr}/ok");
    sender
        .check(&WebhookUrl::parse(&url).unwrap())
        .await
        .expect("loopback is allowed here");
    let attempt = sender.send(request(&url)).await;
    assert_eq!(
        attempt.result,
        AttemptResult::Answered {
            status: 204,
            retry_after: None
        }
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    assert_eq!(headers["webhook-id"], "msg_1");
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("Tandem-Webhooks/")
    );
    assert_eq!(&body[..], br#"{"hello":"world"}"#);
}

#[tokio::test]
async fn internal_targets_are_refused_and_nothing_is_sent() {
    let (addr, seen) = receiver().await;
    let strict = HttpWebhookSender::new(OutboundPolicy {
        allow_http: true,
        ..OutboundPolicy::default()
    })
    .unwrap();
    for url in [
        format!("http://{addr}/ok"),
        format!("http://localhost:{}/ok", addr.port()),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::ffff:127.0.0.1]/ok".to_owned(),
        "http://10.0.0.1/ok".to_owned(),
    ] {
        let parsed = WebhookUrl::parse(&url).unwrap();
        let refused = strict.check(&parsed).await.expect_err(&url);
        assert!(
            refused.0.contains("loopback")
                || refused.0.contains("link-local")
                || refused.0.contains("private"),
            "{url}: {refused}"
        );
        let attempt = strict.send(request(&url)).await;
        assert!(
            matches!(attempt.result, AttemptResult::Refused(_)),
            "{url}: {:?}",
            attempt.result
        );
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the receiver"
    );

    let https_only = HttpWebhookSender::new(OutboundPolicy::default()).unwrap();
    let refused = https_only
        .check(&WebhookUrl::parse("http://hooks.example.com/x").unwrap())
        .await
        .unwrap_err();
    assert!(refused.0.contains("https"), "{refused}");
    let unresolvable = https_only
        .check(&WebhookUrl::parse("https://no-such-host.invalid/x").unwrap())
        .await
        .unwrap_err();
    assert!(unresolvable.0.contains("resolve"), "{unresolvable}");
}

#[tokio::test]
async fn redirects_are_not_followed_and_retry_after_is_read() {
    let (addr, seen) = receiver().await;
    let sender = HttpWebhookSender::new(loopback_policy()).unwrap();
    let redirected = sender
        .send(request(&format!("http://{addr}/redirect")))
        .await;
    assert_eq!(
        redirected.result,
        AttemptResult::Answered {
            status: 302,
            retry_after: None
        }
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the redirect was not followed"
    );
    let busy = sender.send(request(&format!("http://{addr}/busy"))).await;
    assert_eq!(
        busy.result,
        AttemptResult::Answered {
            status: 429,
            retry_after: Some(Duration::from_secs(7))
        }
    );
}

#[tokio::test]
async fn slow_dead_and_chatty_endpoints_are_bounded() {
    let (addr, _seen) = receiver().await;
    let sender = HttpWebhookSender::new(loopback_policy()).unwrap();
    let slow = sender.send(request(&format!("http://{addr}/slow"))).await;
    assert_eq!(slow.result, AttemptResult::TimedOut);
    assert!(slow.latency < Duration::from_secs(3), "{:?}", slow.latency);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = sender
        .send(request(&format!("http://127.0.0.1:{port}/ok")))
        .await;
    let AttemptResult::Unreachable(why) = &dead.result else {
        panic!("unreachable, got {:?}", dead.result);
    };
    assert!(!why.contains("127.0.0.1"), "no URL in the reason: {why}");

    // 64 MiB offered, at most the cap read: the answer comes back promptly.
    let huge = sender.send(request(&format!("http://{addr}/huge"))).await;
    assert_eq!(
        huge.result,
        AttemptResult::Answered {
            status: 200,
            retry_after: None
        }
    );
}
