//! Coalescing of agent output (DESIGN.md §3): consecutive text chunks of one kind
//! are merged into one `agent.output`; everything buffered is written together
//! about every flush interval or once the buffered text reaches a size bound, so a
//! fast agent does not write one row per token. Nothing the agent said is dropped.

use std::time::{Duration, Instant};

use serde_json::Value;
use tandem_domain::{AgentOutput, AgentOutputKind, PromptId};

/// Agent output of one prompt waiting to be written.
#[derive(Debug)]
pub(crate) struct Coalescer {
    prompt_id: PromptId,
    interval: Duration,
    max_bytes: usize,
    /// Output complete and ready to write, in order.
    ready: Vec<AgentOutput>,
    /// The text run being merged: its kind, text so far, and first chunk's JSON.
    run: Option<TextRun>,
    /// Buffered text bytes (ready and running).
    bytes: usize,
    /// When the oldest buffered output arrived.
    since: Option<Instant>,
}

#[derive(Debug)]
struct TextRun {
    kind: AgentOutputKind,
    text: String,
    raw: Value,
}

/// Where a chunk's own JSON holds its text: an ACP `session/update`, or an
/// OpenAI-compatible stream chunk.
const fn text_pointers(kind: AgentOutputKind) -> &'static [&'static str] {
    match kind {
        AgentOutputKind::Message => &["/content/text", "/choices/0/delta/content"],
        AgentOutputKind::Thought => &[
            "/content/text",
            "/choices/0/delta/reasoning_content",
            "/choices/0/delta/reasoning",
        ],
        AgentOutputKind::ToolCall
        | AgentOutputKind::ToolCallUpdate
        | AgentOutputKind::Plan
        | AgentOutputKind::Other => &[],
    }
}

impl TextRun {
    /// The merged run as one output: the first chunk's JSON carrying all the text.
    fn finish(self, prompt_id: PromptId) -> AgentOutput {
        let mut raw = self.raw;
        let slot = text_pointers(self.kind)
            .iter()
            .find(|pointer| raw.pointer(pointer).is_some_and(Value::is_string))
            .and_then(|pointer| raw.pointer_mut(pointer));
        if let Some(text) = slot {
            *text = Value::String(self.text.clone());
        }
        AgentOutput {
            prompt_id,
            kind: self.kind,
            text: Some(self.text),
            raw,
        }
    }
}

/// Whether an output kind is text that merges with the next chunk of its kind.
const fn merges(kind: AgentOutputKind) -> bool {
    match kind {
        AgentOutputKind::Message | AgentOutputKind::Thought => true,
        AgentOutputKind::ToolCall
        | AgentOutputKind::ToolCallUpdate
        | AgentOutputKind::Plan
        | AgentOutputKind::Other => false,
    }
}

impl Coalescer {
    pub(crate) fn new(prompt_id: PromptId, interval: Duration, max_bytes: usize) -> Self {
        Self {
            prompt_id,
            interval,
            max_bytes,
            ready: Vec::new(),
            run: None,
            bytes: 0,
            since: None,
        }
    }

    /// Buffers one update. True when the buffer should be written now (size bound).
    pub(crate) fn push(
        &mut self,
        kind: AgentOutputKind,
        text: Option<String>,
        raw: Value,
        now: Instant,
    ) -> bool {
        self.since.get_or_insert(now);
        self.bytes += text.as_ref().map_or(0, String::len);
        match text {
            Some(text) if merges(kind) => match &mut self.run {
                Some(run) if run.kind == kind => run.text.push_str(&text),
                run => {
                    if let Some(done) = run.take() {
                        self.ready.push(done.finish(self.prompt_id));
                    }
                    *run = Some(TextRun { kind, text, raw });
                }
            },
            text => {
                if let Some(done) = self.run.take() {
                    self.ready.push(done.finish(self.prompt_id));
                }
                self.ready.push(AgentOutput {
                    prompt_id: self.prompt_id,
                    kind,
                    text,
                    raw,
                });
            }
        }
        self.bytes >= self.max_bytes
    }

    /// When the buffer is due to be written, if it holds anything.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + self.interval)
    }

    /// Everything buffered, in order; the buffer is empty afterwards.
    pub(crate) fn drain(&mut self) -> Vec<AgentOutput> {
        if let Some(run) = self.run.take() {
            self.ready.push(run.finish(self.prompt_id));
        }
        self.bytes = 0;
        self.since = None;
        std::mem::take(&mut self.ready)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn chunk(text: &str) -> (AgentOutputKind, Option<String>, Value) {
        (
            AgentOutputKind::Message,
            Some(text.to_owned()),
            json!({ "sessionUpdate": "agent_message_chunk", "content": { "type": "text", "text": text } }),
        )
    }

    fn coalescer(max_bytes: usize) -> Coalescer {
        Coalescer::new(
            PromptId::from_uuid(Uuid::now_v7()),
            Duration::from_millis(100),
            max_bytes,
        )
    }

    #[test]
    fn consecutive_chunks_merge_into_one_output_with_the_first_chunks_json() {
        let mut buffer = coalescer(1 << 20);
        let now = Instant::now();
        for text in ["Hel", "lo, ", "world"] {
            let (kind, text, raw) = chunk(text);
            assert!(!buffer.push(kind, text, raw, now));
        }
        let out = buffer.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text.as_deref(), Some("Hello, world"));
        assert_eq!(out[0].raw["content"]["text"], "Hello, world");
        assert_eq!(out[0].raw["sessionUpdate"], "agent_message_chunk");
        assert!(buffer.drain().is_empty(), "drained");
        assert_eq!(buffer.deadline(), None);
    }

    #[test]
    fn merged_openai_chunks_carry_the_whole_text_in_their_json() {
        let mut buffer = coalescer(1 << 20);
        let now = Instant::now();
        for (id, text) in [("c1", "Hel"), ("c2", "lo")] {
            buffer.push(
                AgentOutputKind::Message,
                Some(text.to_owned()),
                json!({ "id": id, "choices": [{ "index": 0, "delta": { "content": text } }] }),
                now,
            );
        }
        buffer.push(
            AgentOutputKind::Thought,
            Some("hmm".to_owned()),
            json!({ "choices": [{ "delta": { "reasoning_content": "hmm" } }] }),
            now,
        );
        let out = buffer.drain();
        assert_eq!(out[0].raw["choices"][0]["delta"]["content"], "Hello");
        assert_eq!(out[0].raw["id"], "c1", "the first chunk's own JSON");
        assert_eq!(
            out[1].raw["choices"][0]["delta"]["reasoning_content"],
            "hmm"
        );
    }

    #[test]
    fn a_change_of_kind_or_a_tool_call_ends_the_run_in_order() {
        let mut buffer = coalescer(1 << 20);
        let now = Instant::now();
        let (kind, text, raw) = chunk("a");
        buffer.push(kind, text, raw, now);
        buffer.push(
            AgentOutputKind::Thought,
            Some("hmm".into()),
            json!({ "sessionUpdate": "agent_thought_chunk" }),
            now,
        );
        buffer.push(
            AgentOutputKind::ToolCall,
            None,
            json!({ "sessionUpdate": "tool_call", "toolCallId": "1" }),
            now,
        );
        let (kind, text, raw) = chunk("b");
        buffer.push(kind, text, raw, now);
        let (kind, text, raw) = chunk("c");
        buffer.push(kind, text, raw, now);
        let kinds: Vec<_> = buffer
            .drain()
            .into_iter()
            .map(|out| (out.kind, out.text))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (AgentOutputKind::Message, Some("a".into())),
                (AgentOutputKind::Thought, Some("hmm".into())),
                (AgentOutputKind::ToolCall, None),
                (AgentOutputKind::Message, Some("bc".into())),
            ]
        );
    }

    #[test]
    fn the_size_bound_asks_for_a_write_and_the_deadline_follows_the_oldest_output() {
        let mut buffer = coalescer(10);
        let start = Instant::now();
        let (kind, text, raw) = chunk("12345");
        assert!(!buffer.push(kind, text, raw, start));
        let (kind, text, raw) = chunk("67890");
        assert!(
            buffer.push(kind, text, raw, start + Duration::from_millis(50)),
            "10 bytes buffered"
        );
        assert_eq!(buffer.deadline(), Some(start + Duration::from_millis(100)));
        assert_eq!(buffer.drain()[0].text.as_deref(), Some("1234567890"));
    }

    #[test]
    fn a_storm_of_chunks_loses_no_text() {
        let mut buffer = coalescer(4096);
        let now = Instant::now();
        let mut written = String::new();
        let mut expected = String::new();
        let mut writes = 0;
        for i in 0..5000 {
            let piece = format!("chunk {i} ");
            expected.push_str(&piece);
            let (kind, text, raw) = chunk(&piece);
            if buffer.push(kind, text, raw, now) {
                writes += 1;
                for out in buffer.drain() {
                    written.push_str(out.text.as_deref().unwrap_or_default());
                }
            }
        }
        for out in buffer.drain() {
            written.push_str(out.text.as_deref().unwrap_or_default());
        }
        assert_eq!(written, expected);
        assert!(writes < 20, "{writes} size-bound writes");
    }
}
