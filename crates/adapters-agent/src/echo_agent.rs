#![doc = include_str!("echo_agent.md")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    AgentCapabilities, CancelNotification, ContentBlock, ContentChunk, Diff, Implementation,
    InitializeRequest, InitializeResponse, NewSessionRequest, NewSessionResponse, PermissionOption,
    PermissionOptionKind, Plan, PlanEntry, PlanEntryPriority, PlanEntryStatus, PromptRequest,
    PromptResponse, RequestPermissionOutcome, RequestPermissionRequest, SessionNotification,
    SessionUpdate, StopReason, TextContent, ToolCall, ToolCallContent, ToolCallLocation,
    ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields, ToolKind,
};
use agent_client_protocol::{Agent, ByteStreams, Client, Error};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

/// The id of the one tool call a turn reports.
const TOOL_CALL_ID: &str = "echo-1";
/// The id of the tool call `/leak` reports.
const LEAK_TOOL_CALL_ID: &str = "leak-1";
/// The exit status of `/crash`.
const CRASH_STATUS: i32 = 17;
const MAX_SLOW_MS: u64 = 60_000;
const MAX_BURST: usize = 1_000_000;
const MAX_RATE: u64 = 1_000_000;

/// Serves the echo agent on this process's stdin and stdout until stdin closes.
/// Needs a tokio runtime with time and I/O enabled.
pub async fn serve_stdio() -> Result<(), Error> {
    let state = Arc::new(Mutex::new(State::default()));
    let transport = ByteStreams::new(
        tokio::io::stdout().compat_write(),
        tokio::io::stdin().compat(),
    );
    let on_new = Arc::clone(&state);
    let on_prompt = Arc::clone(&state);
    let on_cancel = state;
    Agent
        .v1()
        .name("tandem-echo-agent")
        .on_receive_request(
            async |request: InitializeRequest, responder, _cx| {
                let version = request.protocol_version.min(ProtocolVersion::V1);
                responder.respond(
                    InitializeResponse::new(version)
                        .agent_capabilities(AgentCapabilities::new())
                        .agent_info(Implementation::new(
                            "tandem-echo-agent",
                            env!("CARGO_PKG_VERSION"),
                        )),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |_request: NewSessionRequest, responder, _cx| {
                let id = lock(&on_new).new_session();
                responder.respond(NewSessionResponse::new(id))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: PromptRequest, responder, cx| {
                let session_id = request.session_id.to_string();
                let cancel = match lock(&on_prompt).begin_turn(&session_id) {
                    Ok(cancel) => cancel,
                    Err(error) => return responder.respond_with_error(error),
                };
                let text = prompt_text(&request.prompt);
                let state = Arc::clone(&on_prompt);
                // The turn runs outside the dispatch loop, so `session/cancel` and
                // permission answers are read while it streams.
                cx.clone().spawn(async move {
                    let result = run_turn(&cx, &session_id, &text, &cancel).await;
                    lock(&state).end_turn(&session_id);
                    responder.respond_with_result(result.map(PromptResponse::new))
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |notification: CancelNotification, _cx| {
                lock(&on_cancel).cancel(&notification.session_id.to_string());
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_to(transport)
        .await
}

/// The agent's sessions and the cancel switch of each running turn.
#[derive(Default)]
struct State {
    created: u64,
    sessions: HashMap<String, Option<CancellationToken>>,
}

impl State {
    fn new_session(&mut self) -> String {
        self.created += 1;
        let id = format!("echo-session-{}", self.created);
        self.sessions.insert(id.clone(), None);
        id
    }

    fn begin_turn(&mut self, session_id: &str) -> Result<CancellationToken, Error> {
        let Some(turn) = self.sessions.get_mut(session_id) else {
            return Err(Error::invalid_params().data(format!("unknown session {session_id}")));
        };
        if turn.is_some() {
            return Err(Error::invalid_request().data("a prompt is already running"));
        }
        let cancel = CancellationToken::new();
        *turn = Some(cancel.clone());
        Ok(cancel)
    }

    fn end_turn(&mut self, session_id: &str) {
        if let Some(turn) = self.sessions.get_mut(session_id) {
            *turn = None;
        }
    }

    fn cancel(&self, session_id: &str) {
        if let Some(Some(cancel)) = self.sessions.get(session_id) {
            cancel.cancel();
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the instruction lines of a prompt ask for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Script {
    slow: Duration,
    fail: bool,
    crash: bool,
    permission: bool,
    burst: Option<usize>,
    /// Message chunks per second, evenly paced (`/rate`).
    rate: Option<u64>,
    /// `/leak [NAME...]`: print fake secrets (and the values of these
    /// environment variables) everywhere an agent can.
    leak: Option<Vec<String>>,
}

impl Script {
    fn parse(text: &str) -> Self {
        let mut script = Self::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let number = |word: Option<&str>| word.and_then(|w| w.parse::<u64>().ok());
            match words.next() {
                Some("/slow") => {
                    if let Some(ms) = number(words.next()) {
                        script.slow = Duration::from_millis(ms.min(MAX_SLOW_MS));
                    }
                }
                Some("/fail") => script.fail = true,
                Some("/crash") => script.crash = true,
                Some("/permission") => script.permission = true,
                Some("/burst") => {
                    if let Some(n) = number(words.next()) {
                        script.burst = Some(usize::try_from(n).unwrap_or(MAX_BURST).min(MAX_BURST));
                    }
                }
                Some("/rate") => {
                    if let Some(rate) = number(words.next()).filter(|rate| *rate > 0) {
                        script.rate = Some(rate.min(MAX_RATE));
                    }
                }
                Some("/leak") => script.leak = Some(words.map(str::to_owned).collect()),
                _ => {}
            }
        }
        script
    }

    /// The message chunks of the turn.
    fn chunks(&self, text: &str) -> Vec<String> {
        match self.burst {
            Some(n) => (0..n).map(|i| format!("{i} ")).collect(),
            None => text.split_inclusive(char::is_whitespace).fold(
                Vec::new(),
                |mut chunks: Vec<String>, piece| {
                    // Runs of whitespace stay with the word before them.
                    match chunks.last_mut() {
                        Some(last) if piece.trim().is_empty() => last.push_str(piece),
                        _ => chunks.push(piece.to_owned()),
                    }
                    chunks
                },
            ),
        }
    }
}

/// The text blocks of a prompt, joined.
fn prompt_text(blocks: &[ContentBlock]) -> String {
    blocks
        .iter()
        .filter_map(|block| {
            if let ContentBlock::Text(text) = block {
                Some(text.text.as_str())
            } else {
                None
            }
        })
        .collect()
}

/// How a turn ended early.
enum Stopped {
    Cancelled,
}

async fn run_turn(
    cx: &ConnectionTo<Client>,
    session_id: &str,
    text: &str,
    cancel: &CancellationToken,
) -> Result<StopReason, Error> {
    let script = Script::parse(text);
    match stream_turn(cx, session_id, text, &script, cancel).await? {
        Ok(()) => Ok(StopReason::EndTurn),
        Err(Stopped::Cancelled) => Ok(StopReason::Cancelled),
    }
}

async fn stream_turn(
    cx: &ConnectionTo<Client>,
    session_id: &str,
    text: &str,
    script: &Script,
    cancel: &CancellationToken,
) -> Result<Result<(), Stopped>, Error> {
    let send = |update: SessionUpdate| {
        cx.send_notification(SessionNotification::new(session_id.to_owned(), update))
    };
    send(SessionUpdate::Plan(Plan::new(vec![
        PlanEntry::new(
            "Read the prompt",
            PlanEntryPriority::High,
            PlanEntryStatus::Completed,
        ),
        PlanEntry::new(
            "Echo it back",
            PlanEntryPriority::Medium,
            PlanEntryStatus::InProgress,
        ),
    ])))?;
    if script.fail {
        let mut why = "the echo agent was told to fail (/fail)".to_owned();
        if script.leak.is_some() {
            why = format!("{why} with GITHUB_TOKEN={}", FakeSecrets::new().github);
        }
        return Err(Error::internal_error().data(why));
    }
    let mut tool_call = true;
    if script.permission {
        let answer = tokio::select! {
            answer = ask_permission(cx, session_id, script.leak.is_some()) => answer?,
            () = cancel.cancelled() => return Ok(Err(Stopped::Cancelled)),
        };
        tool_call = answer == "allow";
        send(thought(&format!("permission: {answer}")))?;
    }
    if cancel.is_cancelled() {
        return Ok(Err(Stopped::Cancelled));
    }
    if tool_call {
        send(SessionUpdate::ToolCall(
            ToolCall::new(TOOL_CALL_ID, "Echo the prompt")
                .kind(ToolKind::Other)
                .status(ToolCallStatus::InProgress),
        ))?;
    }
    if let Some(names) = &script.leak
        && let Err(stopped) = leak(&send, names, script.crash, cancel).await?
    {
        return Ok(Err(stopped));
    }
    let chunks = script.chunks(text);
    let last = chunks.len().saturating_sub(1);
    let began = tokio::time::Instant::now();
    for (index, chunk) in chunks.into_iter().enumerate() {
        if cancel.is_cancelled() {
            return Ok(Err(Stopped::Cancelled));
        }
        send(message(chunk))?;
        if script.crash {
            crash(script.leak.is_some()).await;
        }
        if let Some(rate) = script.rate {
            // Chunk `index + 1` is due at (index + 1) / rate seconds. Sleeping
            // only when that is a timer tick (1 ms) away keeps the average pace
            // exact at rates far above the timer's resolution.
            let due = began + paced(index + 1, rate);
            if due > tokio::time::Instant::now() + Duration::from_millis(1) {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = cancel.cancelled() => return Ok(Err(Stopped::Cancelled)),
                }
            } else {
                tokio::task::yield_now().await;
            }
        } else if script.slow.is_zero() {
            // Let the writer send the chunk and the reader see a cancel.
            tokio::task::yield_now().await;
        } else if index < last {
            tokio::select! {
                () = tokio::time::sleep(script.slow) => {}
                () = cancel.cancelled() => return Ok(Err(Stopped::Cancelled)),
            }
        }
    }
    if script.crash {
        crash(script.leak.is_some()).await;
    }
    if tool_call {
        send(SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
            TOOL_CALL_ID,
            ToolCallUpdateFields::new().status(ToolCallStatus::Completed),
        )))?;
    }
    Ok(Ok(()))
}

/// When chunk number `sent` is due at `rate` chunks per second.
fn paced(sent: usize, rate: u64) -> Duration {
    let sent = u64::try_from(sent).unwrap_or(u64::MAX);
    Duration::from_nanos(sent.saturating_mul(1_000_000_000) / rate)
}

/// Asks the client whether the tool may run; the chosen option's id, or
/// `cancelled`. With `/leak`, the tool call shows a secret.
async fn ask_permission(
    cx: &ConnectionTo<Client>,
    session_id: &str,
    leak: bool,
) -> Result<String, Error> {
    let mut fields = ToolCallUpdateFields::new()
        .title("Echo the prompt".to_owned())
        .kind(ToolKind::Other)
        .status(ToolCallStatus::Pending);
    if leak {
        let fake = FakeSecrets::new();
        fields = fields
            .title(format!("Deploy with {}", fake.aws_access_key))
            .raw_input(serde_json::json!({ "command": "deploy", "token": fake.github }));
    }
    let request = RequestPermissionRequest::new(
        session_id.to_owned(),
        ToolCallUpdate::new(TOOL_CALL_ID, fields),
        vec![
            PermissionOption::new("allow", "Allow", PermissionOptionKind::AllowOnce),
            PermissionOption::new("reject", "Reject", PermissionOptionKind::RejectOnce),
        ],
    );
    let response = cx.send_request(request).block_task().await?;
    Ok(
        if let RequestPermissionOutcome::Selected(selected) = response.outcome {
            selected.option_id.to_string()
        } else {
            "cancelled".to_owned()
        },
    )
}

fn message(text: String) -> SessionUpdate {
    SessionUpdate::AgentMessageChunk(ContentChunk::new(ContentBlock::Text(TextContent::new(
        text,
    ))))
}

fn thought(text: &str) -> SessionUpdate {
    SessionUpdate::AgentThoughtChunk(ContentChunk::new(ContentBlock::Text(TextContent::new(
        text,
    ))))
}

/// `/crash`: leave mid-turn without answering. The short pause lets the chunk
/// already sent reach the client. With `/leak`, stderr quotes a secret.
async fn crash(leak: bool) -> ! {
    tokio::time::sleep(Duration::from_millis(20)).await;
    if leak {
        eprintln!(
            "echo agent: crashing as told; AWS_ACCESS_KEY_ID={}",
            FakeSecrets::new().aws_access_key
        );
    } else {
        eprintln!("echo agent: crashing as told");
    }
    std::process::exit(CRASH_STATUS);
}

/// How many bytes each message chunk of `/leak` carries: every secret is cut
/// across several chunks.
const LEAK_CHUNK_BYTES: usize = 5;

/// How long `/leak` pauses in the middle of the AWS key: longer than the
/// server's coalescing interval, so that a flush falls inside the key.
const LEAK_PAUSE: Duration = Duration::from_millis(250);

/// Realistic fake credentials, the same in every run. Built at run time from a
/// fixed seed, so that this file holds none for secret scanners to flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSecrets {
    pub aws_access_key: String,
    pub github: String,
    pub slack: String,
    pub stripe: String,
    pub jwt: String,
    pub tandem_token: String,
    /// The password of a database URL the agent prints.
    pub database_password: String,
    /// A whole PEM private key block.
    pub private_key: String,
}

impl FakeSecrets {
    /// The fake secrets `/leak` prints.
    pub fn new() -> Self {
        const UPPER32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        const HEX: &[u8] = b"0123456789abcdef";
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut fake = Fake(0x7a6e_6465_6d5f_6c65);
        let key_lines: Vec<String> = (0..4).map(|_| fake.chars(B64, 64)).collect();
        Self {
            aws_access_key: format!("{}{}", "AK", "IA") + &fake.chars(UPPER32, 16),
            github: format!("{}{}", "gh", "p_") + &fake.chars(ALNUM, 36),
            slack: format!(
                "{}{}-{}-{}",
                "xox",
                "b-",
                fake.chars(b"0123456789", 12),
                fake.chars(ALNUM, 24)
            ),
            stripe: format!("{}{}", "sk_li", "ve_") + &fake.chars(ALNUM, 24),
            jwt: format!(
                "{}{}.{}{}.{}",
                "ey",
                "JhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
                "ey",
                "JzdWIiOiJsZWFrLWRlbW8iLCJyb2xlIjoiYWRtaW4ifQ",
                fake.chars(URL, 43)
            ),
            tandem_token: format!("{}{}", "tdm_", "key_") + &fake.chars(HEX, 64),
            database_password: fake.chars(ALNUM, 20),
            private_key: format!(
                "-----BEGIN RSA {}-----\n{}\n-----END RSA {}-----",
                "PRIVATE KEY",
                key_lines.join("\n"),
                "PRIVATE KEY"
            ),
        }
    }

    /// Every secret, with the kind the server's redactor reports for it.
    pub fn all(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("aws_access_key", &self.aws_access_key),
            ("github_token", &self.github),
            ("slack_token", &self.slack),
            ("stripe_key", &self.stripe),
            ("jwt", &self.jwt),
            ("tandem_token", &self.tandem_token),
            ("url_password", &self.database_password),
            ("private_key", &self.private_key),
        ]
    }

    /// The message `/leak` prints, `env` being the environment variables it
    /// was asked for, with their values (`None` when not set).
    pub fn message(&self, env: &[(String, Option<String>)]) -> String {
        let mut text = format!(
            "Here is what I found in the environment.\n\
             AWS_ACCESS_KEY_ID={}\n\
             GITHUB_TOKEN={}\n\
             SLACK_BOT_TOKEN={} (for the bot)\n\
             DATABASE_URL=postgres://app:{}@db.internal:5432/app\n\
             An API key of this server: {}.\n\
             The deploy key:\n{}\n",
            self.aws_access_key,
            self.github,
            self.slack,
            self.database_password,
            self.tandem_token,
            self.private_key
        );
        for (name, value) in env {
            let line = match value {
                Some(value) => format!("{name}={value}\n"),
                None => format!("{name} is not set\n"),
            };
            text.push_str(&line);
        }
        text.push_str("That is all I could find.\n");
        text
    }

    /// The thought `/leak` has first.
    pub fn thought(&self) -> String {
        format!("The billing key {} must not be shown.", self.stripe)
    }
}

impl Default for FakeSecrets {
    fn default() -> Self {
        Self::new()
    }
}

/// A deterministic source of fake characters (splitmix64).
struct Fake(u64);

impl Fake {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chars(&mut self, alphabet: &[u8], count: usize) -> String {
        let len = u64::try_from(alphabet.len()).unwrap_or(u64::MAX);
        (0..count)
            .map(|_| {
                let index = usize::try_from(self.next() % len).unwrap_or(0);
                char::from(alphabet[index])
            })
            .collect()
    }
}

/// `/leak`: fake secrets in a thought, a plan, a tool call and its result, and
/// a message cut into small chunks with a pause inside the AWS key; `names` are
/// environment variables whose values the message prints too.
async fn leak(
    send: &impl Fn(SessionUpdate) -> Result<(), Error>,
    names: &[String],
    crash_after: bool,
    cancel: &CancellationToken,
) -> Result<Result<(), Stopped>, Error> {
    let fake = FakeSecrets::new();
    send(thought(&fake.thought()))?;
    send(SessionUpdate::Plan(Plan::new(vec![PlanEntry::new(
        format!("Rotate the AWS key {} after the demo", fake.aws_access_key),
        PlanEntryPriority::High,
        PlanEntryStatus::Pending,
    )])))?;
    send(SessionUpdate::ToolCall(
        ToolCall::new(
            LEAK_TOOL_CALL_ID,
            format!("Read .env (GITHUB_TOKEN={})", fake.github),
        )
        .kind(ToolKind::Read)
        .status(ToolCallStatus::InProgress)
        .raw_input(serde_json::json!({ "path": ".env", "env": { "GITHUB_TOKEN": fake.github } }))
        .locations(vec![ToolCallLocation::new(format!(
            "/tmp/{}.log",
            fake.slack
        ))]),
    ))?;
    send(SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
        LEAK_TOOL_CALL_ID,
        ToolCallUpdateFields::new()
            .status(ToolCallStatus::Completed)
            .content(vec![
                ToolCallContent::from(format!("STRIPE_KEY={}\nJWT={}\n", fake.stripe, fake.jwt)),
                ToolCallContent::from(
                    Diff::new("config/secrets.yml", format!("token: {}\n", fake.jwt))
                        .old_text("token: changeme\n".to_owned()),
                ),
            ])
            .raw_output(serde_json::json!({ "stdout": fake.private_key })),
    )))?;
    let env: Vec<(String, Option<String>)> = names
        .iter()
        .map(|name| (name.clone(), std::env::var(name).ok()))
        .collect();
    let text = fake.message(&env);
    let pause_at = text
        .find(&fake.aws_access_key)
        .map_or(0, |at| at + fake.aws_access_key.len() / 2);
    let mut done = 0;
    while done < text.len() {
        if cancel.is_cancelled() {
            return Ok(Err(Stopped::Cancelled));
        }
        let mut end = (done + LEAK_CHUNK_BYTES).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        send(message(text[done..end].to_owned()))?;
        if crash_after {
            crash(true).await;
        }
        if done < pause_at && pause_at <= end {
            tokio::select! {
                () = tokio::time::sleep(LEAK_PAUSE) => {}
                () = cancel.cancelled() => return Ok(Err(Stopped::Cancelled)),
            }
        } else {
            tokio::task::yield_now().await;
        }
        done = end;
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_read_from_their_own_lines() {
        let script =
            Script::parse("hello\n/slow 250\n  /permission\n/burst 12\n/rate 5000\n/fail\n/crash");
        assert_eq!(
            script,
            Script {
                slow: Duration::from_millis(250),
                fail: true,
                crash: true,
                permission: true,
                burst: Some(12),
                rate: Some(5000),
                leak: None,
            }
        );
        assert_eq!(
            Script::parse("/leak DEMO_KEY OTHER").leak,
            Some(vec!["DEMO_KEY".to_owned(), "OTHER".to_owned()])
        );
        assert_eq!(Script::parse("/rate 0").rate, None);
        assert_eq!(Script::parse("say /fail please"), Script::default());
        assert_eq!(Script::parse("/slow soon"), Script::default());
        assert_eq!(
            Script::parse("/slow 999999999").slow,
            Duration::from_millis(MAX_SLOW_MS)
        );
    }

    #[test]
    fn echo_chunks_join_to_the_prompt() {
        let text = "  hello  brave\nnew world \t";
        let chunks = Script::default().chunks(text);
        assert_eq!(chunks, ["  ", "hello  ", "brave\n", "new ", "world \t"]);
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn a_rate_spaces_chunks_evenly() {
        assert_eq!(paced(1, 5000), Duration::from_micros(200));
        assert_eq!(paced(5000, 5000), Duration::from_secs(1));
        assert_eq!(paced(3, 1), Duration::from_secs(3));
    }

    #[test]
    fn burst_chunks_count_up() {
        let script = Script::parse("/burst 3");
        assert_eq!(script.chunks("ignored"), ["0 ", "1 ", "2 "]);
    }

    #[test]
    fn the_fake_secrets_are_fixed_and_the_message_prints_them_all() {
        let fake = FakeSecrets::new();
        assert_eq!(fake, FakeSecrets::new(), "the same in every run");
        assert_eq!(fake.aws_access_key.len(), 20);
        assert_eq!(fake.github.len(), 40);
        let message = fake.message(&[
            ("DEMO_API_KEY".to_owned(), Some("demo-value-123".to_owned())),
            ("NOPE".to_owned(), None),
        ]);
        for (kind, secret) in fake.all() {
            let printed = match kind {
                "stripe_key" => fake.thought().contains(secret),
                // In the tool call's result only.
                "jwt" => !message.contains(secret),
                _ => message.contains(secret),
            };
            assert!(printed, "{kind}");
        }
        assert!(message.contains("DEMO_API_KEY=demo-value-123\n"));
        assert!(message.contains("NOPE is not set\n"));
    }
}
