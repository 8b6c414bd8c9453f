//! Agent output storm: the echo agent streams many tiny message chunks at a set
//! rate through the real ACP subprocess; the server must coalesce them into few
//! `agent.output` rows and lose no text.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::server::Server;
use crate::sse::Stream;

/// What the storm left in the log and on the stream.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) chunks: u64,
    /// `agent.output` events of the prompt, as streamed.
    pub(crate) rows: u64,
    /// `agent.output` events of the prompt in the durable log.
    pub(crate) logged_rows: u64,
    /// From `prompt.started` to the prompt's end, as the stream delivered them.
    pub(crate) ran_for: Duration,
    /// How the prompt ended (`prompt.completed`, ...).
    pub(crate) ended: String,
    /// Whether the streamed message text is exactly what the agent sent.
    pub(crate) text_intact: bool,
}

/// Runs one prompt that makes the echo agent send `chunks` chunks at `rate` per
/// second, watching it on a stream.
pub(crate) async fn run(server: &Server, chunks: u64, rate: u64) -> anyhow::Result<Outcome> {
    let api = &server.api;
    let session = api.create_session(&server.admin).await?;
    let after = api.last_seq(&session.id, &session.host).await?;
    let mut stream = Stream::open(server.addr, &session.id, &session.host, after).await?;
    let prompt = api
        .submit_prompt(
            &session.id,
            &session.host,
            &format!("/burst {chunks}\n/rate {rate}"),
        )
        .await?;
    let patience = Duration::from_secs(chunks / rate.max(1) * 3 + 60);
    let deadline = tokio::time::Instant::now() + patience;
    let mut outputs: Vec<Vec<u8>> = Vec::new();
    let mut started = None;
    let mut ended: Option<(String, Instant)> = None;
    while ended.is_none() {
        let read = stream.next(|frame| match frame.event {
            b"agent.output" => outputs.push(frame.data.to_vec()),
            b"prompt.started" => started = Some(Instant::now()),
            b"prompt.completed" | b"prompt.failed" | b"prompt.cancelled" => {
                ended = Some((
                    String::from_utf8_lossy(frame.event).into_owned(),
                    Instant::now(),
                ));
            }
            _ => {}
        });
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => anyhow::bail!("the stream ended before the prompt did"),
            Ok(Err(error)) => return Err(error),
            Err(_) => anyhow::bail!("the prompt did not end within {patience:?}"),
        }
    }
    let (ended, ended_at) = ended.context("the prompt ended")?;
    let started = started.context("no prompt.started on the stream")?;
    let mut text = String::new();
    let mut rows = 0;
    for data in &outputs {
        let event: Value = serde_json::from_slice(data).context("agent.output is not JSON")?;
        let output = &event["data"];
        if output["promptId"] != prompt.as_str() {
            continue;
        }
        rows += 1;
        if output["kind"] == "message" {
            text.push_str(output["text"].as_str().unwrap_or_default());
        }
    }
    let logged_rows = api
        .events(&session.id, &session.host, after)
        .await?
        .iter()
        .filter(|event| {
            event["type"] == "agent.output" && event["data"]["promptId"] == prompt.as_str()
        })
        .count() as u64;
    let expected = (0..chunks).fold(String::new(), |mut text, i| {
        text.push_str(&i.to_string());
        text.push(' ');
        text
    });
    Ok(Outcome {
        chunks,
        rows,
        logged_rows,
        ran_for: ended_at.duration_since(started),
        ended,
        text_intact: text == expected,
    })
}
