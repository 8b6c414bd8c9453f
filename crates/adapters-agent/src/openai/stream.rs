//! Reading a streamed chat completion: server-sent-event lines, and the chunk each
//! `data:` line carries.

use serde_json::Value;
use tandem_domain::StopReason;

/// Splits a byte stream into lines. Bytes are kept until a line is complete, so a
/// character split across two network reads stays whole.
#[derive(Debug, Default)]
pub(super) struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// The lines completed by `bytes` (without their `\n` or `\r\n`).
    pub(super) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let Some(last_newline) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.pending.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        complete[..last_newline]
            .split(|&b| b == b'\n')
            .map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                String::from_utf8_lossy(line).into_owned()
            })
            .collect()
    }

    /// What is left once the stream has ended (a last line without a newline).
    pub(super) fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        let rest = String::from_utf8_lossy(&rest).trim_end().to_owned();
        (!rest.is_empty()).then_some(rest)
    }
}

/// What one line of the stream means.
#[derive(Debug, PartialEq)]
pub(super) enum Line {
    /// A completion chunk.
    Chunk(Chunk),
    /// `data: [DONE]`: the answer is complete.
    Done,
    /// The endpoint reported an error inside the stream.
    Error(String),
    /// Blank lines, comments, `event:` and `id:` fields, and unparsable data.
    Nothing,
}

/// The parts of one chunk Tandem uses, and the chunk as the endpoint sent it.
#[derive(Debug, PartialEq)]
pub(super) struct Chunk {
    /// Reasoning text (`reasoning_content` or `reasoning`, as vLLM, `DeepSeek` and
    /// Ollama send it).
    pub(super) thought: Option<String>,
    /// Answer text.
    pub(super) message: Option<String>,
    pub(super) finish_reason: Option<String>,
    pub(super) raw: Value,
}

/// Reads one line of the stream.
pub(super) fn parse_line(line: &str) -> Line {
    let Some(data) = line.strip_prefix("data:") else {
        return Line::Nothing;
    };
    let data = data.trim();
    if data == "[DONE]" {
        return Line::Done;
    }
    let Ok(raw) = serde_json::from_str::<Value>(data) else {
        tracing::debug!("Skipped a stream line that is not JSON.");
        return Line::Nothing;
    };
    if let Some(error) = raw.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned);
        return Line::Error(message);
    }
    let choice = raw.pointer("/choices/0");
    let delta = choice.and_then(|choice| choice.get("delta"));
    let text_at = |key: &str| {
        delta
            .and_then(|delta| delta.get(key))
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    Line::Chunk(Chunk {
        thought: text_at("reasoning_content").or_else(|| text_at("reasoning")),
        message: text_at("content"),
        finish_reason: choice
            .and_then(|choice| choice.get("finish_reason"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        raw,
    })
}

/// Why the model stopped, in ACP's terms.
pub(super) fn stop_reason(finish_reason: Option<&str>) -> StopReason {
    match finish_reason {
        Some("length") => StopReason::MaxTokens,
        Some("content_filter") => StopReason::Refusal,
        // "stop", "tool_calls", "function_call", a server's own reason, or none.
        _ => StopReason::EndTurn,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lines_survive_any_split_of_the_bytes() {
        let stream = "data: {\"a\":\"é\"}\r\n\r\ndata: [DONE]\n\nlast";
        for split in 0..stream.len() {
            let (left, right) = stream.as_bytes().split_at(split);
            let mut lines = Lines::default();
            let mut seen = lines.push(left);
            seen.extend(lines.push(right));
            seen.extend(lines.finish());
            assert_eq!(
                seen,
                ["data: {\"a\":\"é\"}", "", "data: [DONE]", "", "last"],
                "split at {split}"
            );
        }
    }

    #[test]
    fn chunks_give_their_text_and_finish_reason() {
        let line = r#"data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#;
        let Line::Chunk(chunk) = parse_line(line) else {
            panic!("not a chunk");
        };
        assert_eq!(chunk.message.as_deref(), Some("Hel"));
        assert_eq!(chunk.thought, None);
        assert_eq!(chunk.finish_reason, None);
        assert_eq!(chunk.raw["id"], "c1");

        let last = r#"data:{"choices":[{"delta":{},"finish_reason":"length"}]}"#;
        let Line::Chunk(chunk) = parse_line(last) else {
            panic!("not a chunk");
        };
        assert_eq!(chunk.message, None);
        assert_eq!(chunk.finish_reason.as_deref(), Some("length"));
    }

    #[test]
    fn reasoning_is_a_thought() {
        for key in ["reasoning_content", "reasoning"] {
            let line = format!(
                "data: {}",
                json!({ "choices": [{ "delta": { key: "hmm" } }] })
            );
            let Line::Chunk(chunk) = parse_line(&line) else {
                panic!("not a chunk");
            };
            assert_eq!(chunk.thought.as_deref(), Some("hmm"));
        }
    }

    #[test]
    fn done_errors_and_noise() {
        assert_eq!(parse_line("data: [DONE]"), Line::Done);
        assert_eq!(
            parse_line(r#"data: {"error":{"message":"model not loaded"}}"#),
            Line::Error("model not loaded".to_owned())
        );
        for noise in ["", ": keep-alive", "event: message", "data: not json"] {
            assert_eq!(parse_line(noise), Line::Nothing, "{noise:?}");
        }
    }

    #[test]
    fn finish_reasons_map_to_stop_reasons() {
        assert_eq!(stop_reason(Some("stop")), StopReason::EndTurn);
        assert_eq!(stop_reason(Some("length")), StopReason::MaxTokens);
        assert_eq!(stop_reason(Some("content_filter")), StopReason::Refusal);
        assert_eq!(stop_reason(Some("tool_calls")), StopReason::EndTurn);
        assert_eq!(stop_reason(None), StopReason::EndTurn);
    }
}
