//! The `openai` executor against a local mock of an OpenAI-compatible endpoint.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem_agent::{OpenAiExecutor, OpenAiProfile};
use tandem_domain::{
    AgentOutputKind, AgentProfileName, PromptText, SessionId, StopReason, TextLimits,
};
use tandem_ports::{AgentError, AgentExecutor, AgentSession, AgentStart, AgentUpdate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::timeout;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PATIENCE: Duration = Duration::from_secs(20);

fn executor(profile: OpenAiProfile) -> OpenAiExecutor {
    OpenAiExecutor::new(BTreeMap::from([(
        AgentProfileName::parse("model").unwrap(),
        profile,
    )]))
    .unwrap()
}

async fn start(executor: &OpenAiExecutor) -> Box<dyn AgentSession> {
    let request = AgentStart {
        session_id: SessionId::from_uuid(uuid::Uuid::now_v7()),
        profile: AgentProfileName::parse("model").unwrap(),
        resume: None,
    };
    timeout(PATIENCE, executor.start(request))
        .await
        .unwrap()
        .unwrap()
}

/// One server-sent event carrying `data`.
fn event(data: &Value) -> String {
    format!("data: {data}\n\n")
}

const DONE: &str = "data: [DONE]\n\n";

/// A streamed answer: one chunk per piece of text, then `finish_reason`, then
/// `[DONE]`.
fn sse(pieces: &[&str], finish_reason: &str) -> String {
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "model": "test-model",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }]
        })
    };
    let mut events = vec![event(&chunk(json!({ "role": "assistant" }), Value::Null))];
    events.extend(
        pieces
            .iter()
            .map(|piece| event(&chunk(json!({ "content": piece }), Value::Null))),
    );
    events.push(event(&chunk(json!({}), json!(finish_reason))));
    events.push(DONE.to_owned());
    events.concat()
}

fn streamed(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

#[derive(Debug)]
struct Output {
    kind: AgentOutputKind,
    text: Option<String>,
    raw: Value,
}

async fn run(
    session: &dyn AgentSession,
    prompt: &str,
) -> (Result<StopReason, AgentError>, Vec<Output>) {
    let prompt = PromptText::parse(prompt, &TextLimits::DEFAULT).unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let collect = async {
        let mut outputs = Vec::new();
        while let Some(update) = rx.recv().await {
            match update {
                AgentUpdate::Output { kind, text, raw } => outputs.push(Output { kind, text, raw }),
                AgentUpdate::PermissionRequested { .. } => panic!("a model asks no permission"),
            }
        }
        outputs
    };
    timeout(PATIENCE, async {
        tokio::join!(session.prompt(&prompt, tx), collect)
    })
    .await
    .expect("the prompt ended in time")
}

fn message_text(outputs: &[Output]) -> String {
    outputs
        .iter()
        .filter(|o| o.kind == AgentOutputKind::Message)
        .filter_map(|o| o.text.as_deref())
        .collect()
}

#[tokio::test]
async fn deltas_stream_in_order_with_their_raw_chunks() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .and(body_partial_json(
            json!({ "model": "test-model", "stream": true }),
        ))
        .respond_with(streamed(sse(&["Hel", "lo, ", "world"], "stop")))
        .expect(1)
        .mount(&server)
        .await;
    let profile = OpenAiProfile {
        base_url: format!("{}/v1/", server.uri()),
        model: "test-model".to_owned(),
        api_key: Some("sk-test".to_owned()),
        system_prompt: Some("Be brief.".to_owned()),
    };
    let executor = executor(profile);
    let session = start(&executor).await;

    let (result, outputs) = run(session.as_ref(), "Say hello").await;

    assert_eq!(result.unwrap(), StopReason::EndTurn);
    assert_eq!(message_text(&outputs), "Hello, world");
    assert_eq!(
        outputs.len(),
        3,
        "only deltas with text are output: {outputs:?}"
    );
    assert!(outputs.iter().all(|o| o.kind == AgentOutputKind::Message));
    assert_eq!(outputs[0].raw["choices"][0]["delta"]["content"], "Hel");
    assert_eq!(outputs[0].raw["object"], "chat.completion.chunk");
    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        body["messages"],
        json!([
            { "role": "system", "content": "Be brief." },
            { "role": "user", "content": "Say hello" }
        ])
    );
}

#[tokio::test]
async fn the_conversation_is_remembered_across_prompts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(streamed(sse(&["first answer"], "stop")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(streamed(sse(&["second answer"], "stop")))
        .mount(&server)
        .await;
    let executor = executor(OpenAiProfile::new(server.uri(), "m"));
    let session = start(&executor).await;
    assert!(session.agent_session_id().starts_with("openai-"));

    let (first, _) = run(session.as_ref(), "first question").await;
    let (second, outputs) = run(session.as_ref(), "second question").await;

    assert_eq!(first.unwrap(), StopReason::EndTurn);
    assert_eq!(second.unwrap(), StopReason::EndTurn);
    assert_eq!(message_text(&outputs), "second answer");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].headers.get("authorization").is_none());
    let body: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(
        body["messages"],
        json!([
            { "role": "user", "content": "first question" },
            { "role": "assistant", "content": "first answer" },
            { "role": "user", "content": "second question" }
        ])
    );
}

#[tokio::test]
async fn finish_reason_length_is_max_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(streamed(sse(&["cut"], "length")))
        .mount(&server)
        .await;
    let session = start(&executor(OpenAiProfile::new(server.uri(), "m"))).await;
    let (result, outputs) = run(session.as_ref(), "write a novel").await;
    assert_eq!(result.unwrap(), StopReason::MaxTokens);
    assert_eq!(message_text(&outputs), "cut");
}

#[tokio::test]
async fn reasoning_deltas_are_thoughts() {
    let server = MockServer::start().await;
    let body = [
        event(&json!({ "choices": [{ "delta": { "reasoning_content": "thinking" }, "finish_reason": null }] })),
        event(&json!({ "choices": [{ "delta": { "content": "answer" }, "finish_reason": "stop" }] })),
        DONE.to_owned(),
    ]
    .concat();
    Mock::given(method("POST"))
        .respond_with(streamed(body))
        .mount(&server)
        .await;
    let session = start(&executor(OpenAiProfile::new(server.uri(), "m"))).await;
    let (result, outputs) = run(session.as_ref(), "think").await;
    assert_eq!(result.unwrap(), StopReason::EndTurn);
    let kinds: Vec<_> = outputs
        .iter()
        .map(|o| (o.kind, o.text.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            (AgentOutputKind::Thought, Some("thinking")),
            (AgentOutputKind::Message, Some("answer")),
        ]
    );
}

#[tokio::test]
async fn an_error_answer_is_a_protocol_error_with_the_endpoints_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({ "error": { "message": "Incorrect API key provided", "type": "invalid_request_error" } }),
        ))
        .mount(&server)
        .await;
    let session = start(&executor(OpenAiProfile::new(server.uri(), "m"))).await;
    let (result, outputs) = run(session.as_ref(), "hi").await;
    let Err(AgentError::Protocol(message)) = result else {
        panic!("expected a protocol error, got {result:?}");
    };
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("Incorrect API key provided"), "{message}");
    assert!(outputs.is_empty());
}

#[tokio::test]
async fn an_error_inside_the_stream_is_a_protocol_error() {
    let server = MockServer::start().await;
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"part\"}}]}\n\n\
                data: {\"error\":{\"message\":\"model crashed\"}}\n\n";
    Mock::given(method("POST"))
        .respond_with(streamed(body.to_owned()))
        .mount(&server)
        .await;
    let session = start(&executor(OpenAiProfile::new(server.uri(), "m"))).await;
    let (result, outputs) = run(session.as_ref(), "hi").await;
    let Err(AgentError::Protocol(message)) = result else {
        panic!("expected a protocol error, got {result:?}");
    };
    assert!(message.contains("model crashed"), "{message}");
    assert_eq!(message_text(&outputs), "part");
}

#[tokio::test]
async fn a_stream_cut_short_is_an_error() {
    let server = MockServer::start().await;
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"half an\"}}]}\n\n";
    Mock::given(method("POST"))
        .respond_with(streamed(body.to_owned()))
        .mount(&server)
        .await;
    let session = start(&executor(OpenAiProfile::new(server.uri(), "m"))).await;
    let (result, _) = run(session.as_ref(), "hi").await;
    assert!(matches!(result, Err(AgentError::Protocol(_))), "{result:?}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    // Bind a port, then free it, so nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let session = start(&executor(OpenAiProfile::new(
        format!("http://{address}/v1"),
        "m",
    )))
    .await;
    let (result, _) = run(session.as_ref(), "anyone?").await;
    assert!(
        matches!(result, Err(AgentError::Unavailable(_))),
        "{result:?}"
    );
}

/// Serves one streamed answer that sends a first chunk and then stays silent.
async fn stalling_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0; 64 * 1024];
        let _ = socket.read(&mut request).await;
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
        let chunk = "data: {\"choices\":[{\"delta\":{\"content\":\"first\"}}]}\n\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(chunk.as_bytes()).await.unwrap();
        // Hold the connection open, silent, until the client goes away.
        let mut rest = [0; 1024];
        let _ = timeout(PATIENCE, socket.read(&mut rest)).await;
    });
    format!("http://{address}")
}

#[tokio::test]
async fn cancel_stops_the_stream_and_returns_cancelled() {
    let base_url = stalling_endpoint().await;
    let session = start(&executor(OpenAiProfile::new(base_url, "m"))).await;
    let prompt = PromptText::parse("tell me everything", &TextLimits::DEFAULT).unwrap();
    let (tx, mut rx) = mpsc::channel(16);

    let cancel_after_first = async {
        let first = rx.recv().await.expect("a first chunk");
        let cancelled_at = Instant::now();
        session.cancel().await.unwrap();
        while rx.recv().await.is_some() {}
        (first, cancelled_at)
    };
    let (result, (first, cancelled_at)) = timeout(PATIENCE, async {
        tokio::join!(session.prompt(&prompt, tx), cancel_after_first)
    })
    .await
    .expect("the prompt ended in time");

    assert_eq!(result.unwrap(), StopReason::Cancelled);
    assert!(cancelled_at.elapsed() < Duration::from_secs(2));
    let AgentUpdate::Output { text, .. } = first else {
        panic!("expected output, got {first:?}");
    };
    assert_eq!(text.as_deref(), Some("first"));
}

#[tokio::test]
async fn an_unknown_profile_is_refused() {
    let executor = executor(OpenAiProfile::new("http://127.0.0.1:9", "m"));
    let request = AgentStart {
        session_id: SessionId::from_uuid(uuid::Uuid::now_v7()),
        profile: AgentProfileName::parse("other").unwrap(),
        resume: None,
    };
    let error = executor.start(request).await.err().unwrap();
    assert!(
        matches!(&error, AgentError::UnknownProfile(name) if name == "other"),
        "{error:?}"
    );
}

#[tokio::test]
async fn https_endpoints_are_spoken_to_over_tls() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let first_bytes = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut bytes = [0; 3];
        socket.read_exact(&mut bytes).await.unwrap();
        bytes
    });
    let base_url = format!("https://localhost:{}/v1", address.port());
    let session = start(&executor(OpenAiProfile::new(base_url, "m"))).await;

    let (result, _) = run(session.as_ref(), "hello").await;

    // The fake server never answers the handshake; what matters is that the client
    // opened with a TLS handshake record (content type 22, version 3.x).
    assert!(
        matches!(result, Err(AgentError::Unavailable(_))),
        "{result:?}"
    );
    let bytes = timeout(PATIENCE, first_bytes).await.unwrap().unwrap();
    assert_eq!(bytes[..2], [0x16, 0x03], "{bytes:?}");
}

#[test]
fn the_api_key_never_shows_in_debug_output() {
    let profile = OpenAiProfile {
        api_key: Some("sk-very-secret".to_owned()),
        system_prompt: Some("private instructions".to_owned()),
        ..OpenAiProfile::new("http://localhost:11434/v1", "llama3")
    };
    let shown = format!("{profile:?} {:?}", executor(profile.clone()));
    assert!(!shown.contains("sk-very-secret"), "{shown}");
    assert!(!shown.contains("private instructions"), "{shown}");
    assert!(shown.contains("llama3"), "{shown}");
}
