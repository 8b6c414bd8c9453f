//! Redaction throughput: how fast the server's redactor gets through agent text,
//! measured in this process on the same code the prompt runner uses (the text
//! streamed in small chunks, released at every coalescing flush). A figure next
//! to the output storm, which runs with redaction on.

use std::time::{Duration, Instant};

use tandem_service::Redactor;

/// What one run measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Bytes of agent text redacted.
    pub(crate) bytes: usize,
    /// Streamed: chunks of `CHUNK_BYTES`, released every `FLUSH_BYTES`.
    pub(crate) streamed: Duration,
    /// The same text redacted whole (tool call strings, error texts).
    pub(crate) whole: Duration,
    /// Secrets replaced (the text holds one every few KiB).
    pub(crate) redacted: u64,
    /// Whether streaming gave exactly what redacting the whole text gave.
    pub(crate) consistent: bool,
}

/// The size of a message chunk (a token or a few).
const CHUNK_BYTES: usize = 16;

/// Text between two flushes.
const FLUSH_BYTES: usize = 4096;

/// Redacts about `bytes` of agent-like text: prose, code and shell output, with
/// a fake credential every few KiB.
pub(crate) fn run(bytes: usize) -> Outcome {
    let text = agent_text(bytes);
    let redactor = Redactor::builtin();
    let started = Instant::now();
    let (whole_text, whole_redactions) = redactor.redact_text(&text);
    let whole = started.elapsed();

    let started = Instant::now();
    let mut stream = redactor.stream();
    let mut out = String::with_capacity(text.len());
    let mut since_flush = 0;
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + CHUNK_BYTES).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        stream.push(&text[at..end]);
        since_flush += end - at;
        at = end;
        if since_flush >= FLUSH_BYTES {
            out.push_str(&stream.release(&redactor).0);
            since_flush = 0;
        }
    }
    out.push_str(&stream.finish(&redactor).0);
    let streamed = started.elapsed();
    Outcome {
        bytes: text.len(),
        streamed,
        whole,
        redacted: whole_redactions.total(),
        consistent: out == whole_text,
    }
}

/// Agent-like text of about `bytes` bytes.
fn agent_text(bytes: usize) -> String {
    let pieces = [
        "I looked at the failing test and the cause is the retry loop in `commit`: \
         it re-reads the session but not the prompt, so a concurrent approve wins. ",
        "```rust\nfn flush(&mut self) -> Result<(), Error> {\n    let outputs = self.buffer.drain();\n    self.write(outputs)\n}\n```\n",
        "$ cargo test -p tandem-service --lib\nrunning 42 tests\ntest result: ok. 42 passed; 0 failed\n",
        "{\"path\": \"src/main.rs\", \"line\": 118, \"message\": \"unused variable: `key`\"}\n",
        "Les données sont à jour — 東京 🚀 naïve café. ",
        "See https://docs.rs/regex/latest/regex/ and http://localhost:8080/v1/sessions for details.\n",
    ];
    let secrets = [
        concat!("AWS_ACCESS_KEY_ID=AK", "IAQYLPMN5HHHFPZAM2\n"),
        concat!(
            "export GITHUB_TOKEN=gh",
            "p_R8cXbT3kQ9mZ2vW7nL4pY6sJ1hF0dG5aE8uK\n"
        ),
        "DATABASE_URL=postgres://app:Zq8-vR2m_Lx9@db:5432/app\n",
        "password = \"S3cr3t-Pa55w0rd!x\"\n",
    ];
    let mut text = String::with_capacity(bytes + 256);
    let mut index = 0;
    while text.len() < bytes {
        text.push_str(pieces[index % pieces.len()]);
        if index % 20 == 19 {
            text.push_str(secrets[(index / 20) % secrets.len()]);
        }
        index += 1;
    }
    text
}
