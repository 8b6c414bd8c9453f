#![doc = include_str!("echo_agent.md")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    AgentCapabilities, AuthMethod, AuthMethodAgent, AuthenticateRequest, AuthenticateResponse,
    AvailableCommand, AvailableCommandInput, AvailableCommandsUpdate, CancelNotification,
    ContentBlock, ContentChunk, CurrentModeUpdate, Diff, Implementation, InitializeRequest,
    InitializeResponse, LoadSessionRequest, LoadSessionResponse, NewSessionRequest,
    NewSessionResponse, PermissionOption, PermissionOptionKind, Plan, PlanEntry, PlanEntryPriority,
    PlanEntryStatus, PromptRequest, PromptResponse, RequestPermissionOutcome,
    RequestPermissionRequest, SessionInfoUpdate, SessionMode, SessionModeState,
    SessionNotification, SessionUpdate, SetSessionModeRequest, SetSessionModeResponse, StopReason,
    TextContent, ToolCall, ToolCallContent, ToolCallLocation, ToolCallStatus, ToolCallUpdate,
    ToolCallUpdateFields, ToolKind, UnstructuredCommandInput,
};
use agent_client_protocol::{Agent, ByteStreams, Client, Error};
use serde::{Deserialize, Serialize};
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
/// The authentication methods offered with `--require-auth`.
const AUTH_METHODS: [(&str, &str); 2] =
    [("echo-login", "Echo login"), ("echo-token", "Echo token")];
/// The longest session title, in characters (after `Echo: `).
const TITLE_CHARS: usize = 40;

/// How the echo agent behaves, from its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoOptions {
    /// `--require-auth`: offer two authentication methods and refuse sessions
    /// until `authenticate` was called with one of them.
    pub require_auth: bool,
    /// Whether the agent advertises and serves `session/load`
    /// (`--no-load-session` turns it off).
    pub load_session: bool,
    /// `--state-dir DIR`: where sessions are saved for `session/load` (by
    /// default `tandem-echo-agent` in the system's temporary directory).
    pub state_dir: PathBuf,
}

impl Default for EchoOptions {
    fn default() -> Self {
        Self {
            require_auth: false,
            load_session: true,
            state_dir: std::env::temp_dir().join("tandem-echo-agent"),
        }
    }
}

impl EchoOptions {
    /// Reads the options from command-line arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--require-auth" => options.require_auth = true,
                "--no-load-session" => options.load_session = false,
                "--state-dir" => {
                    options.state_dir = args
                        .next()
                        .map(PathBuf::from)
                        .ok_or("--state-dir needs a directory")?;
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(options)
    }
}

/// Serves the echo agent on this process's stdin and stdout until stdin closes.
/// Needs a tokio runtime with time and I/O enabled.
pub async fn serve_stdio(options: EchoOptions) -> Result<(), Error> {
    let state = Arc::new(Mutex::new(State::new(options)));
    let transport = ByteStreams::new(
        tokio::io::stdout().compat_write(),
        tokio::io::stdin().compat(),
    );
    let on_initialize = Arc::clone(&state);
    let on_authenticate = Arc::clone(&state);
    let on_new = Arc::clone(&state);
    let on_load = Arc::clone(&state);
    let on_set_mode = Arc::clone(&state);
    let on_prompt = Arc::clone(&state);
    let on_cancel = state;
    Agent
        .v1()
        .name("tandem-echo-agent")
        .on_receive_request(
            async move |request: InitializeRequest, responder, _cx| {
                let version = request.protocol_version.min(ProtocolVersion::V1);
                let options = lock(&on_initialize).options.clone();
                let methods = if options.require_auth {
                    AUTH_METHODS
                        .iter()
                        .map(|(id, name)| AuthMethod::Agent(AuthMethodAgent::new(*id, *name)))
                        .collect()
                } else {
                    Vec::new()
                };
                responder.respond(
                    InitializeResponse::new(version)
                        .agent_capabilities(
                            AgentCapabilities::new().load_session(options.load_session),
                        )
                        .auth_methods(methods)
                        .agent_info(Implementation::new(
                            "tandem-echo-agent",
                            env!("CARGO_PKG_VERSION"),
                        )),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: AuthenticateRequest, responder, _cx| {
                let method = request.method_id.to_string();
                if AUTH_METHODS.iter().any(|(id, _)| *id == method) {
                    lock(&on_authenticate).authenticated = true;
                    responder.respond(AuthenticateResponse::new())
                } else {
                    responder.respond_with_error(
                        Error::invalid_params().data(format!("unknown method {method}")),
                    )
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |_request: NewSessionRequest, responder, cx| {
                let id = match lock(&on_new).new_session() {
                    Ok(id) => id,
                    Err(error) => return responder.respond_with_error(error),
                };
                responder.respond(NewSessionResponse::new(id.clone()).modes(modes(Mode::Echo)))?;
                cx.send_notification(SessionNotification::new(id, commands()))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: LoadSessionRequest, responder, cx| {
                let id = request.session_id.to_string();
                let loaded = lock(&on_load).load_session(&id);
                let saved = match loaded {
                    Ok(saved) => saved,
                    Err(error) => return responder.respond_with_error(error),
                };
                // The conversation so far, replayed as ACP says, before the answer.
                for turn in &saved.turns {
                    let said = ContentChunk::new(ContentBlock::Text(TextContent::new(
                        turn.prompt.clone(),
                    )));
                    cx.send_notification(SessionNotification::new(
                        id.clone(),
                        SessionUpdate::UserMessageChunk(said),
                    ))?;
                    cx.send_notification(SessionNotification::new(
                        id.clone(),
                        message(turn.reply.clone()),
                    ))?;
                }
                cx.send_notification(SessionNotification::new(id.clone(), commands()))?;
                responder.respond(LoadSessionResponse::new().modes(modes(saved.mode)))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: SetSessionModeRequest, responder, _cx| {
                let set = lock(&on_set_mode).set_mode(
                    &request.session_id.to_string(),
                    &request.mode_id.to_string(),
                );
                match set {
                    Ok(()) => responder.respond(SetSessionModeResponse::new()),
                    Err(error) => responder.respond_with_error(error),
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: PromptRequest, responder, cx| {
                let session_id = request.session_id.to_string();
                let begun = lock(&on_prompt).begin_turn(&session_id);
                let (cancel, session) = match begun {
                    Ok(begun) => begun,
                    Err(error) => return responder.respond_with_error(error),
                };
                let text = prompt_text(&request.prompt);
                let state = Arc::clone(&on_prompt);
                // The turn runs outside the dispatch loop, so `session/cancel` and
                // permission answers are read while it streams.
                cx.clone().spawn(async move {
                    let result = run_turn(&cx, &session_id, &text, session, &cancel).await;
                    let title = lock(&state).end_turn(&session_id, &text, &result);
                    if let Some(title) = title {
                        let info = SessionInfoUpdate::new().title(title);
                        cx.send_notification(SessionNotification::new(
                            session_id.clone(),
                            SessionUpdate::SessionInfoUpdate(info),
                        ))?;
                    }
                    responder
                        .respond_with_result(result.map(|(reason, _)| PromptResponse::new(reason)))
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

/// How the agent answers: `echo` repeats the prompt, `shout` repeats it in
/// capitals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Echo,
    Shout,
}

impl Mode {
    const ALL: [Self; 2] = [Self::Echo, Self::Shout];

    const fn id(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Shout => "shout",
        }
    }

    fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.id() == id)
    }

    fn describe(self) -> SessionMode {
        let (name, description) = match self {
            Self::Echo => ("Echo", "Repeats the prompt"),
            Self::Shout => ("Shout", "Repeats the prompt in capitals"),
        };
        SessionMode::new(self.id(), name).description(description.to_owned())
    }
}

fn modes(current: Mode) -> SessionModeState {
    SessionModeState::new(
        current.id(),
        Mode::ALL.into_iter().map(Mode::describe).collect(),
    )
}

/// The commands the agent offers: its instructions.
fn commands() -> SessionUpdate {
    let command = |name: &str, description: &str, hint: Option<&str>| {
        let command = AvailableCommand::new(name, description);
        match hint {
            Some(hint) => command.input(AvailableCommandInput::Unstructured(
                UnstructuredCommandInput::new(hint),
            )),
            None => command,
        }
    };
    SessionUpdate::AvailableCommandsUpdate(AvailableCommandsUpdate::new(vec![
        command("slow", "Wait between message chunks", Some("milliseconds")),
        command("fail", "Answer with an error", None),
        command("crash", "Exit in the middle of the answer", None),
        command(
            "permission",
            "Ask for permission before the tool call",
            None,
        ),
        command(
            "burst",
            "Send this many tiny chunks instead of the echo",
            Some("count"),
        ),
        command("rate", "Pace the message chunks", Some("chunks per second")),
        command(
            "recall",
            "Say the earlier prompts of the session first",
            None,
        ),
        command(
            "mode",
            "Switch to another mode (echo, shout)",
            Some("mode id"),
        ),
        command(
            "leak",
            "Print fake secrets, to see them redacted",
            Some("variable names"),
        ),
    ]))
}

/// One completed turn, as saved for `session/load`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedTurn {
    prompt: String,
    reply: String,
}

/// A session as saved after each completed turn.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Saved {
    mode: Mode,
    turns: Vec<SavedTurn>,
}

/// A session of the agent: its conversation, mode, and the cancel switch of
/// its running turn.
#[derive(Debug, Default)]
struct EchoSession {
    saved: Saved,
    turn: Option<CancellationToken>,
}

/// What a turn needs to know of its session.
#[derive(Debug, Clone)]
struct TurnContext {
    mode: Mode,
    earlier: Vec<String>,
}

/// The agent's sessions.
struct State {
    options: EchoOptions,
    authenticated: bool,
    created: u64,
    sessions: HashMap<String, EchoSession>,
}

impl State {
    fn new(options: EchoOptions) -> Self {
        Self {
            options,
            authenticated: false,
            created: 0,
            sessions: HashMap::new(),
        }
    }

    fn ensure_authenticated(&self) -> Result<(), Error> {
        if self.options.require_auth && !self.authenticated {
            Err(Error::auth_required())
        } else {
            Ok(())
        }
    }

    /// A new session, with an id no other process of the agent gives (its
    /// saved conversation outlives the process).
    fn new_session(&mut self) -> Result<String, Error> {
        self.ensure_authenticated()?;
        self.created += 1;
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let id = format!(
            "echo-{since_epoch:x}-{}-{}",
            std::process::id(),
            self.created
        );
        let session = EchoSession::default();
        self.save(&id, &session.saved);
        self.sessions.insert(id.clone(), session);
        Ok(id)
    }

    /// Takes up a session a previous process saved.
    fn load_session(&mut self, id: &str) -> Result<Saved, Error> {
        self.ensure_authenticated()?;
        if !self.options.load_session {
            return Err(Error::method_not_found());
        }
        let path = self.file(id).ok_or_else(|| unknown_session(id))?;
        let text = std::fs::read_to_string(path).map_err(|_| unknown_session(id))?;
        let saved: Saved = serde_json::from_str(&text).map_err(|error| {
            Error::internal_error().data(format!("unreadable session: {error}"))
        })?;
        self.sessions.insert(
            id.to_owned(),
            EchoSession {
                saved: saved.clone(),
                turn: None,
            },
        );
        Ok(saved)
    }

    fn set_mode(&mut self, session_id: &str, mode_id: &str) -> Result<(), Error> {
        let mode =
            Mode::parse(mode_id).ok_or_else(|| Error::invalid_params().data("unknown mode"))?;
        let session = self
            .sessions
            .get_mut(session_id)
            .ok_or_else(|| unknown_session(session_id))?;
        session.saved.mode = mode;
        let saved = session.saved.clone();
        self.save(session_id, &saved);
        Ok(())
    }

    fn begin_turn(&mut self, session_id: &str) -> Result<(CancellationToken, TurnContext), Error> {
        let Some(session) = self.sessions.get_mut(session_id) else {
            return Err(unknown_session(session_id));
        };
        if session.turn.is_some() {
            return Err(Error::invalid_request().data("a prompt is already running"));
        }
        let cancel = CancellationToken::new();
        session.turn = Some(cancel.clone());
        let context = TurnContext {
            mode: session.saved.mode,
            earlier: session
                .saved
                .turns
                .iter()
                .map(|turn| first_line(&turn.prompt).to_owned())
                .collect(),
        };
        Ok((cancel, context))
    }

    /// Ends a turn; a completed one joins the conversation (and is saved). The
    /// session's title once it has one.
    fn end_turn(
        &mut self,
        session_id: &str,
        prompt: &str,
        result: &Result<(StopReason, Finished), Error>,
    ) -> Option<String> {
        let session = self.sessions.get_mut(session_id)?;
        session.turn = None;
        if let Ok((StopReason::EndTurn, finished)) = result {
            session.saved.mode = finished.mode;
            session.saved.turns.push(SavedTurn {
                prompt: prompt.to_owned(),
                reply: finished.reply.clone(),
            });
            let saved = session.saved.clone();
            self.save(session_id, &saved);
        }
        let first = self.sessions.get(session_id)?.saved.turns.first()?;
        let title: String = first_line(&first.prompt)
            .chars()
            .take(TITLE_CHARS)
            .collect();
        Some(format!("Echo: {title}"))
    }

    fn cancel(&self, session_id: &str) {
        if let Some(EchoSession {
            turn: Some(cancel), ..
        }) = self.sessions.get(session_id)
        {
            cancel.cancel();
        }
    }

    /// Where a session is saved; `None` for an id that is no file name.
    fn file(&self, id: &str) -> Option<PathBuf> {
        let safe = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        safe.then(|| self.options.state_dir.join(format!("{id}.json")))
    }

    /// Saves a session for `session/load`; a failure only means it cannot be
    /// loaded later.
    fn save(&self, id: &str, saved: &Saved) {
        if !self.options.load_session {
            return;
        }
        let Some(path) = self.file(id) else {
            return;
        };
        if let Err(error) = write_file(&self.options.state_dir, &path, saved) {
            eprintln!("echo agent: cannot save session {id}: {error}");
        }
    }
}

/// Writes a saved session, readable by this user only (it holds prompts), in a
/// directory made private if it is made here.
fn write_file(dir: &Path, path: &Path, saved: &Saved) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let text = serde_json::to_string(saved).map_err(std::io::Error::other)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

fn unknown_session(id: &str) -> Error {
    Error::invalid_params().data(format!("unknown session {id}"))
}

/// The first line of a text, trimmed.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the instruction lines of a prompt ask for.
#[derive(Debug, Default, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one switch per instruction a prompt may hold"
)]
struct Script {
    slow: Duration,
    fail: bool,
    crash: bool,
    permission: bool,
    burst: Option<usize>,
    /// Message chunks per second, evenly paced (`/rate`).
    rate: Option<u64>,
    /// Say the earlier prompts first (`/recall`).
    recall: bool,
    /// Switch to this mode first (`/mode`).
    mode: Option<Mode>,
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
                Some("/recall") => script.recall = true,
                Some("/mode") => {
                    if let Some(mode) = words.next().and_then(Mode::parse) {
                        script.mode = Some(mode);
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

/// What a completed turn leaves: the mode it ended in and its answer.
#[derive(Debug)]
struct Finished {
    mode: Mode,
    reply: String,
}

async fn run_turn(
    cx: &ConnectionTo<Client>,
    session_id: &str,
    text: &str,
    context: TurnContext,
    cancel: &CancellationToken,
) -> Result<(StopReason, Finished), Error> {
    let script = Script::parse(text);
    let mut finished = Finished {
        mode: context.mode,
        reply: String::new(),
    };
    match stream_turn(
        cx,
        session_id,
        text,
        &script,
        &context,
        &mut finished,
        cancel,
    )
    .await?
    {
        Ok(()) => Ok((StopReason::EndTurn, finished)),
        Err(Stopped::Cancelled) => Ok((StopReason::Cancelled, finished)),
    }
}

async fn stream_turn(
    cx: &ConnectionTo<Client>,
    session_id: &str,
    text: &str,
    script: &Script,
    context: &TurnContext,
    finished: &mut Finished,
    cancel: &CancellationToken,
) -> Result<Result<(), Stopped>, Error> {
    let send = |update: SessionUpdate| {
        cx.send_notification(SessionNotification::new(session_id.to_owned(), update))
    };
    if let Some(mode) = script.mode {
        finished.mode = mode;
        send(SessionUpdate::CurrentModeUpdate(CurrentModeUpdate::new(
            mode.id(),
        )))?;
    }
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
    if script.recall {
        let earlier = if context.earlier.is_empty() {
            "nothing".to_owned()
        } else {
            context.earlier.join(" | ")
        };
        let recalled = format!("previously: {earlier}\n");
        finished.reply.push_str(&recalled);
        send(message(recalled))?;
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
        let chunk = match finished.mode {
            Mode::Echo => chunk,
            Mode::Shout => chunk.to_uppercase(),
        };
        finished.reply.push_str(&chunk);
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
        let script = Script::parse(
            "hello\n/slow 250\n  /permission\n/burst 12\n/rate 5000\n/fail\n/crash\n/recall\n/mode shout",
        );
        assert_eq!(
            script,
            Script {
                slow: Duration::from_millis(250),
                fail: true,
                crash: true,
                permission: true,
                burst: Some(12),
                rate: Some(5000),
                recall: true,
                mode: Some(Mode::Shout),
                leak: None,
            }
        );
        assert_eq!(Script::parse("/mode yell").mode, None);
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
    fn options_come_from_the_command_line() {
        let parse = |args: &[&str]| EchoOptions::parse(args.iter().map(|a| (*a).to_owned()));
        assert_eq!(parse(&[]), Ok(EchoOptions::default()));
        let options = parse(&["--require-auth", "--no-load-session", "--state-dir", "/x"]).unwrap();
        assert!(options.require_auth && !options.load_session);
        assert_eq!(options.state_dir, PathBuf::from("/x"));
        assert!(parse(&["--state-dir"]).is_err());
        assert!(parse(&["--loud"]).is_err());
    }

    #[test]
    fn sessions_are_saved_and_loaded_only_under_file_names() {
        let dir = std::env::temp_dir().join(format!("echo-agent-test-{}", std::process::id()));
        let mut state = State::new(EchoOptions {
            state_dir: dir.clone(),
            ..EchoOptions::default()
        });
        let id = state.new_session().unwrap();
        state.set_mode(&id, "shout").unwrap();
        let mode = |path: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&state.file(&id).unwrap()), 0o600, "it holds prompts");
        let mut other = State::new(EchoOptions {
            state_dir: dir.clone(),
            ..EchoOptions::default()
        });
        assert_eq!(other.load_session(&id).unwrap().mode, Mode::Shout);
        assert!(other.load_session("../../etc/passwd").is_err());
        assert!(other.set_mode(&id, "yell").is_err());
        let _ = std::fs::remove_dir_all(dir);
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
