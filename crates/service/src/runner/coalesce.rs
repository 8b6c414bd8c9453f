//! Coalescing of agent output (DESIGN.md §3): consecutive text chunks of one kind
//! are merged into one `agent.output`; everything buffered is written together
//! about every flush interval or once the buffered text reaches a size bound, so a
//! fast agent does not write one row per token. Nothing the agent said is dropped.
//!
//! Redaction happens here too, before anything leaves the buffer: a text run is
//! streamed through the redactor, so that a secret cut across chunks or across a
//! flush is still caught; at a flush, only a tail that could still become a
//! secret stays behind, until more text of the run arrives or the run ends.
//! Every other update has its JSON redacted whole.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tandem_domain::{AgentOutput, AgentOutputKind, PromptId, Redactions};

use crate::redact::{Redactor, TextStream};

/// Agent output of one prompt waiting to be written.
#[derive(Debug)]
pub(crate) struct Coalescer {
    prompt_id: PromptId,
    interval: Duration,
    max_bytes: usize,
    redactor: Arc<Redactor>,
    /// Output complete and ready to write, in order (redacted).
    ready: Vec<AgentOutput>,
    /// The text run being merged, while it lasts (across flushes).
    run: Option<TextRun>,
    /// Text bytes buffered since the last flush (ready and running).
    bytes: usize,
    /// When the oldest output buffered since the last flush arrived.
    since: Option<Instant>,
}

#[derive(Debug)]
struct TextRun {
    kind: AgentOutputKind,
    /// The first chunk's own JSON (unredacted: only redacted copies leave).
    raw: Value,
    /// The run's text, redacted as it streams.
    text: TextStream,
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

/// Every place a chunk's JSON holds text, of either kind.
const TEXT_POINTERS: [&str; 4] = [
    "/content/text",
    "/choices/0/delta/content",
    "/choices/0/delta/reasoning_content",
    "/choices/0/delta/reasoning",
];

impl TextRun {
    /// Redacted text of the run as one output: the first chunk's JSON carrying
    /// that text; `None` if there is no text to write.
    fn output(
        &self,
        prompt_id: PromptId,
        redactor: &Redactor,
        (text, mut redactions): (String, Redactions),
    ) -> Option<AgentOutput> {
        if text.is_empty() {
            return None;
        }
        let mut raw = self.raw.clone();
        let pointer = text_pointers(self.kind)
            .iter()
            .find(|pointer| raw.pointer(pointer).is_some_and(Value::is_string));
        // A chunk may carry text of the other kind too (an OpenAI-compatible
        // delta with both reasoning and content): that text is a piece of the
        // other run, written (redacted as a whole) in that run's output.
        for other in TEXT_POINTERS {
            if Some(other) != pointer.copied()
                && let Some(text) = raw.pointer_mut(other).filter(|text| text.is_string())
            {
                *text = Value::String(String::new());
            }
        }
        match pointer {
            Some(pointer) => {
                if let Some(slot) = raw.pointer_mut(pointer) {
                    *slot = Value::String(text.clone());
                }
                redactions.merge(&redactor.redact_json_except(&mut raw, pointer));
            }
            None => redactions.merge(&redactor.redact_json(&mut raw)),
        }
        Some(AgentOutput {
            prompt_id,
            kind: self.kind,
            text: Some(text),
            raw,
            redactions,
        })
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
    pub(crate) fn new(
        prompt_id: PromptId,
        interval: Duration,
        max_bytes: usize,
        redactor: Arc<Redactor>,
    ) -> Self {
        Self {
            prompt_id,
            interval,
            max_bytes,
            redactor,
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
            Some(text) if merges(kind) => {
                if self.run.as_ref().is_none_or(|run| run.kind != kind) {
                    self.end_run();
                    self.run = Some(TextRun {
                        kind,
                        raw,
                        text: self.redactor.stream(),
                    });
                }
                if let Some(run) = &mut self.run {
                    run.text.push(&text);
                }
            }
            text => {
                self.end_run();
                let mut raw = raw;
                let mut redactions = self.redactor.redact_json(&mut raw);
                let text = text.map(|text| {
                    let (text, counted) = self.redactor.redact_text(&text);
                    redactions.merge(&counted);
                    text
                });
                self.ready.push(AgentOutput {
                    prompt_id: self.prompt_id,
                    kind,
                    text,
                    raw,
                    redactions,
                });
            }
        }
        self.bytes >= self.max_bytes
    }

    /// Ends the text run: all of its text is decided now.
    fn end_run(&mut self) {
        if let Some(mut run) = self.run.take() {
            let rest = run.text.finish(&self.redactor);
            if let Some(output) = run.output(self.prompt_id, &self.redactor, rest) {
                self.ready.push(output);
            }
        }
    }

    /// When the buffer is due to be written, if it holds anything new.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + self.interval)
    }

    /// Everything buffered that is decided, in order; the run's tail that could
    /// still become a secret stays until more text comes or the run ends.
    pub(crate) fn drain(&mut self) -> Vec<AgentOutput> {
        if let Some(run) = &mut self.run {
            let released = run.text.release(&self.redactor);
            if let Some(output) = run.output(self.prompt_id, &self.redactor, released) {
                self.ready.push(output);
            }
        }
        self.bytes = 0;
        self.since = None;
        std::mem::take(&mut self.ready)
    }

    /// Everything buffered, the text run included: the agent's output ended (or
    /// something else comes between it and what follows).
    pub(crate) fn drain_all(&mut self) -> Vec<AgentOutput> {
        self.end_run();
        self.drain()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::Strategy;
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
            Redactor::builtin(),
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
        let out = buffer.drain_all();
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
        let out = buffer.drain_all();
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
            .drain_all()
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

    fn aws_key() -> String {
        ["AKIA", "QYLPMN5HHHFPZAM2"].concat()
    }

    #[test]
    fn a_key_cut_across_chunks_and_a_flush_is_redacted_and_the_rest_flows() {
        let mut buffer = coalescer(1 << 20);
        let now = Instant::now();
        let key = aws_key();
        for text in ["Your key: ", &key[..7]] {
            let (kind, text, raw) = chunk(text);
            buffer.push(kind, text, raw, now);
        }
        let first = buffer.drain();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].text.as_deref(), Some("Your key: "));
        assert_eq!(first[0].raw["content"]["text"], "Your key: ");
        assert_eq!(buffer.deadline(), None, "a held tail alone is not due");
        let (kind, text, raw) = chunk(&format!("{} is set.", &key[7..]));
        buffer.push(kind, text, raw, now);
        let second = buffer.drain_all();
        assert_eq!(second.len(), 1);
        assert_eq!(
            second[0].text.as_deref(),
            Some("[REDACTED:aws_access_key] is set.")
        );
        assert_eq!(
            second[0].raw["content"]["text"],
            "[REDACTED:aws_access_key] is set."
        );
        assert_eq!(second[0].redactions.count("aws_access_key"), 1);
        assert!(first[0].redactions.is_empty());
    }

    #[test]
    fn a_chunk_with_both_kinds_of_text_carries_only_its_own_in_each_output() {
        let mut buffer = coalescer(1 << 20);
        let now = Instant::now();
        let key = aws_key();
        let raw = json!({ "choices": [{ "delta": {
            "reasoning_content": "think ", "content": &key[..8] } }] });
        buffer.push(
            AgentOutputKind::Thought,
            Some("think ".into()),
            raw.clone(),
            now,
        );
        buffer.push(
            AgentOutputKind::Message,
            Some(key[..8].to_owned()),
            raw,
            now,
        );
        buffer.push(
            AgentOutputKind::Message,
            Some(format!("{} ok", &key[8..])),
            json!({ "choices": [{ "delta": { "content": format!("{} ok", &key[8..]) } }] }),
            now,
        );
        let out = buffer.drain_all();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].raw["choices"][0]["delta"]["reasoning_content"],
            "think "
        );
        assert_eq!(out[0].raw["choices"][0]["delta"]["content"], "");
        assert_eq!(
            out[1].raw["choices"][0]["delta"]["content"],
            "[REDACTED:aws_access_key] ok"
        );
        assert_eq!(out[1].raw["choices"][0]["delta"]["reasoning_content"], "");
    }

    #[test]
    fn tool_calls_plans_and_their_json_are_redacted_whole() {
        let mut buffer = coalescer(1 << 20);
        let now = Instant::now();
        let key = aws_key();
        let (kind, text, raw) = chunk("Reading: AKIA");
        buffer.push(kind, text, raw, now);
        buffer.push(
            AgentOutputKind::ToolCall,
            None,
            json!({ "sessionUpdate": "tool_call", "toolCallId": "t1", "title": format!("cat {key}"),
                    "rawInput": { "key": key }, "locations": [{ "path": format!("/tmp/{key}") }] }),
            now,
        );
        buffer.push(
            AgentOutputKind::Plan,
            None,
            json!({ "sessionUpdate": "plan", "entries": [{ "content": format!("rotate {key}") }] }),
            now,
        );
        let out = buffer.drain();
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0].text.as_deref(),
            Some("Reading: AKIA"),
            "the run ended with the tool call: no secret after all"
        );
        let json = serde_json::to_string(&out).unwrap();
        assert!(!json.contains(&key), "{json}");
        assert_eq!(out[1].raw["title"], "cat [REDACTED:aws_access_key]");
        assert_eq!(out[1].redactions.count("aws_access_key"), 3);
        assert_eq!(out[2].redactions.count("aws_access_key"), 1);
    }

    /// A message made of ordinary text around one secret, and the part of the
    /// secret that must not be written.
    fn message() -> impl Strategy<Value = (String, String)> {
        let body = "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu";
        let secrets = vec![
            (aws_key(), aws_key()),
            (
                ["gh", "p_R8cXbT3kQ9mZ2vW7nL4pY6sJ1hF0dG5aE8uK"].concat(),
                "R8cXbT3kQ9mZ2vW7nL4pY6sJ1hF0dG5aE8uK".to_owned(),
            ),
            (
                [
                    "-----BEGIN RSA PRIVATE KEY-----\n",
                    body,
                    "\n-----END RSA PRIVATE KEY-----",
                ]
                .concat(),
                body.to_owned(),
            ),
            (
                "postgres://app:Zq8-vR2m_Lx9@db:5432/app".to_owned(),
                "Zq8-vR2m_Lx9".to_owned(),
            ),
        ];
        (
            "[a-zA-Z0-9 .,:\n]{0,40}",
            proptest::sample::select(secrets),
            "[a-zA-Z0-9 .,:\n]{0,40}",
        )
            .prop_map(|(before, (secret, hidden), after)| {
                (format!("{before} {secret}\n{after}"), hidden)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// However the agent cuts its message into chunks, and wherever the
        /// coalescing flushes fall, the written text is the whole message
        /// redacted: the secret never reaches an output, and nothing else changes.
        #[test]
        fn secrets_cut_across_chunks_and_flushes_never_survive(
            (text, secret) in message(),
            cuts in proptest::collection::vec(0usize..512, 0..10),
            flushes in proptest::collection::vec(proptest::bool::ANY, 10),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (text.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut buffer = coalescer(1 << 20);
            let now = Instant::now();
            let mut written = Vec::new();
            let mut at = 0;
            for (index, cut) in cuts.into_iter().chain([text.len()]).enumerate() {
                let (kind, piece, raw) = chunk(&text[at..cut]);
                at = cut;
                buffer.push(kind, piece, raw, now);
                if flushes[index % flushes.len()] {
                    written.extend(buffer.drain());
                }
            }
            written.extend(buffer.drain_all());
            let joined: String = written.iter().filter_map(|out| out.text.clone()).collect();
            let (expected, redactions) = Redactor::builtin().redact_text(&text);
            proptest::prop_assert_eq!(&joined, &expected);
            let mut counted = Redactions::none();
            for out in &written {
                proptest::prop_assert_eq!(&out.raw["content"]["text"], &Value::from(out.text.clone()));
                counted.merge(&out.redactions);
            }
            proptest::prop_assert_eq!(counted, redactions);
            let stored = serde_json::to_string(&written).unwrap();
            proptest::prop_assert!(!stored.contains(&secret));
        }
    }
}
