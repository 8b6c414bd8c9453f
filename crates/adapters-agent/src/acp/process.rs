//! The agent's process: spawned in its own process group (so that stopping it also
//! ends whatever it started), its exit watched, the tail of its stderr kept for the
//! error that explains a crash.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tandem_ports::AgentError;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::AcpProfile;
use super::excerpt;

/// How many stderr lines a crash report quotes.
const STDERR_LINES: usize = 5;
/// The longest stderr line kept, in bytes (of plain text).
const STDERR_LINE_BYTES: usize = 200;
/// The longest stderr excerpt a crash report quotes, in bytes.
const STDERR_EXCERPT_BYTES: usize = 800;
/// How long a stopped agent gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// How long a crash report waits for the exit status after the pipe broke.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// A running agent process. Dropping it kills its process group.
#[derive(Debug)]
pub(super) struct AgentProcess {
    pid: u32,
    exit: watch::Receiver<Option<ExitStatus>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    waiter: JoinHandle<()>,
}

impl AgentProcess {
    /// Spawns the profile's command with piped stdio, in a new process group.
    pub(super) fn spawn(
        profile: &AcpProfile,
        cwd: &Path,
    ) -> Result<(Self, ChildStdin, ChildStdout), AgentError> {
        let mut command = Command::new(&profile.command);
        for name in &profile.withheld_env {
            command.env_remove(name);
        }
        let mut child = command
            .args(&profile.args)
            .envs(&profile.env)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                AgentError::Unavailable(format!(
                    "could not start `{}`: {error}",
                    profile.command.display()
                ))
            })?;
        let missing = || AgentError::Unavailable("the agent's stdio is not piped".to_owned());
        let pid = child.id().ok_or_else(missing)?;
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let stderr_pipe = child.stderr.take().ok_or_else(missing)?;
        let stderr = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_LINES)));
        tokio::spawn(keep_stderr_tail(stderr_pipe, Arc::clone(&stderr)));
        let (exit_tx, exit) = watch::channel(None);
        let waiter = tokio::spawn(async move {
            // The task owns the child: aborting it drops the child, which kills it.
            let status = child.wait().await;
            match status {
                Ok(status) => {
                    exit_tx.send_replace(Some(status));
                }
                Err(error) => tracing::warn!(%error, pid, "Could not wait for an agent process."),
            }
        });
        let process = Self {
            pid,
            exit,
            stderr,
            waiter,
        };
        Ok((process, stdin, stdout))
    }

    /// The operating system's id of the agent process (and of its group).
    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves once the process has exited (never, if it cannot be waited for).
    pub(super) async fn exited(&self) -> ExitStatus {
        let mut exit = self.exit.clone();
        let status = exit
            .wait_for(Option::is_some)
            .await
            .map(|status| status.unwrap_or_default());
        match status {
            Ok(status) => status,
            Err(_closed) => std::future::pending().await,
        }
    }

    /// The exit status, if the process has exited.
    pub(super) fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Why the agent is gone, for an error message: its exit status (waited for a
    /// moment) and the last lines it wrote to stderr, in plain text (no colours
    /// or control characters) and bounded in size.
    pub(super) async fn describe_exit(&self) -> String {
        let status = tokio::time::timeout(EXIT_WAIT, self.exited()).await;
        let mut text = match status {
            Ok(status) => format!("the agent process exited ({status})"),
            Err(_elapsed) => "the agent closed its connection".to_owned(),
        };
        let tail = self.stderr_tail();
        if !tail.is_empty() {
            text.push_str("; last stderr lines: ");
            text.push_str(&excerpt::bounded(&tail.join(" | "), STDERR_EXCERPT_BYTES));
        }
        text
    }

    fn stderr_tail(&self) -> Vec<String> {
        let lines = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect()
    }

    /// Ends the agent and everything in its process group: SIGTERM, a short grace
    /// period, then SIGKILL.
    pub(super) async fn kill(&self) {
        self.signal(Signal::TERM);
        let _ = tokio::time::timeout(STOP_GRACE, self.exited()).await;
        self.signal(Signal::KILL);
        let _ = tokio::time::timeout(STOP_GRACE, self.exited()).await;
    }

    fn signal(&self, signal: Signal) {
        let Some(group) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) else {
            return;
        };
        // ESRCH (the group is already gone) is the expected case after an exit.
        let _ = kill_process_group(group, signal);
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.signal(Signal::KILL);
        self.waiter.abort();
    }
}

/// Reads the agent's stderr to its end (so the agent never blocks on a full pipe),
/// keeping the last few non-blank lines as plain text.
async fn keep_stderr_tail(pipe: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut reader = BufReader::new(pipe);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = excerpt::plain_line(&String::from_utf8_lossy(&buffer));
        if line.is_empty() {
            continue;
        }
        let line = excerpt::bounded(&line, STDERR_LINE_BYTES);
        let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == STDERR_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}
