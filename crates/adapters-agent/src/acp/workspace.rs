//! Where an ACP profile's agents work: one directory shared by every session, a
//! directory of each session's own, or a git worktree of each session's own on
//! a branch of its own. A session's own workspace is made (private to the
//! server's user) for its first agent, reused by the agents after it (so that a
//! resumed conversation finds its files), and cleaned up once the session ended.

use std::collections::BTreeSet;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tandem_domain::{SessionId, Workspace, WorkspaceCleanup, WorkspaceKind};
use tandem_ports::AgentError;

use super::excerpt;

/// The placeholder a per-session template must hold.
const SESSION_ID: &str = "{session_id}";

/// How long one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest quote of git's own error message, in bytes.
const GIT_ERROR_BYTES: usize = 500;

/// What becomes of a session's own workspace once the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cleanup {
    /// Deleted; a worktree's branch too.
    Remove,
    /// Deleted unless it has changes: any file, in a directory; uncommitted
    /// changes or commits that no other branch has, in a worktree.
    #[default]
    KeepIfChanged,
    /// Never deleted.
    Keep,
}

/// Where a profile's agents work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceConfig {
    /// Every session in this one directory (the server's current directory when
    /// `None`): two sessions' agents edit the same files.
    Shared(Option<PathBuf>),
    /// A directory of each session's own: `template` with `{session_id}`
    /// replaced.
    Directory { template: String, cleanup: Cleanup },
    /// A git worktree of each session's own, in `template` (with `{session_id}`
    /// replaced), on a new branch `tandem/<session id>` made from `base` (the
    /// repository's `HEAD` when `None`).
    Worktree {
        repository: PathBuf,
        base: Option<String>,
        template: String,
        cleanup: Cleanup,
    },
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        Self::Shared(None)
    }
}

impl WorkspaceConfig {
    /// Checks the settings: a per-session template holds `{session_id}` (else
    /// every session would get the same directory).
    pub fn check(&self) -> Result<(), String> {
        if let Self::Worktree { repository, .. } = self
            && repository.as_os_str().is_empty()
        {
            return Err("a worktree workspace needs a repository".to_owned());
        }
        let template = match self {
            Self::Shared(_) => return Ok(()),
            Self::Directory { template, .. } | Self::Worktree { template, .. } => template,
        };
        if template.contains(SESSION_ID) {
            Ok(())
        } else {
            Err(format!(
                "the workspace template {template:?} must contain {SESSION_ID}, or every session would share one directory"
            ))
        }
    }

    /// The directory a session's agent works in, and how it shows to
    /// participants: a session's own is made when missing. `earlier` is where
    /// the session's last agent worked: its directory is reused while it exists.
    pub(super) async fn prepare(
        &self,
        session_id: SessionId,
        earlier: Option<&Workspace>,
        withheld: &BTreeSet<String>,
    ) -> Result<(PathBuf, Workspace), AgentError> {
        let unusable = |error: String| {
            AgentError::Unavailable(format!("the agent's workspace is unusable: {error}"))
        };
        let earlier = earlier
            .filter(|earlier| earlier.kind == self.kind())
            .map(|earlier| PathBuf::from(&earlier.path))
            .filter(|path| path.is_dir());
        match self {
            Self::Shared(dir) => {
                let path = match dir {
                    Some(dir) => std::path::absolute(dir),
                    None => std::env::current_dir(),
                }
                .map_err(|error| unusable(error.to_string()))?;
                let workspace = shown(WorkspaceKind::Shared, &path, None).map_err(unusable)?;
                Ok((path, workspace))
            }
            Self::Directory { template, .. } => {
                let path = if let Some(path) = earlier {
                    path
                } else {
                    let path = expand(template, session_id).map_err(unusable)?;
                    make_private_dir(&path).await.map_err(unusable)?;
                    tracing::info!(%session_id, path = %path.display(), "Made a session's workspace directory.");
                    path
                };
                let workspace = shown(WorkspaceKind::Directory, &path, None).map_err(unusable)?;
                Ok((path, workspace))
            }
            Self::Worktree {
                repository,
                base,
                template,
                ..
            } => {
                let branch = branch(session_id);
                let path = if let Some(path) = earlier {
                    path
                } else {
                    let path = expand(template, session_id).map_err(unusable)?;
                    // Made before, by a start that failed after it.
                    if !is_worktree_on(&path, &branch, withheld).await {
                        add_worktree(repository, base.as_deref(), &branch, &path, withheld)
                            .await
                            .map_err(unusable)?;
                        tracing::info!(%session_id, path = %path.display(), branch, "Added a session's git worktree.");
                    }
                    path
                };
                let workspace =
                    shown(WorkspaceKind::Worktree, &path, Some(branch)).map_err(unusable)?;
                Ok((path, workspace))
            }
        }
    }

    /// Cleans up a session's own workspace once the session ended, as `cleanup`
    /// says. Only the directory this configuration makes for this session is
    /// ever deleted: a workspace recorded elsewhere (the configuration changed)
    /// is kept.
    pub(super) async fn release(
        &self,
        session_id: SessionId,
        workspace: &Workspace,
        withheld: &BTreeSet<String>,
    ) -> WorkspaceCleanup {
        let outcome = match self {
            Self::Shared(_) => Ok(WorkspaceCleanup::Kept),
            Self::Directory { template, cleanup } => match ours(template, session_id, workspace) {
                Some(path) => release_directory(&path, *cleanup).await,
                None => Ok(WorkspaceCleanup::Kept),
            },
            Self::Worktree {
                repository,
                template,
                cleanup,
                ..
            } => match ours(template, session_id, workspace) {
                Some(path) => {
                    release_worktree(repository, &path, &branch(session_id), *cleanup, withheld)
                        .await
                }
                None => Ok(WorkspaceCleanup::Kept),
            },
        };
        match outcome {
            Ok(cleanup) => {
                tracing::info!(%session_id, path = %workspace.path, cleanup = %cleanup, "Cleaned up a session's workspace.");
                cleanup
            }
            Err(error) => {
                tracing::warn!(%session_id, path = %workspace.path, %error, "Cleaning up a session's workspace failed.");
                WorkspaceCleanup::Failed
            }
        }
    }

    const fn kind(&self) -> WorkspaceKind {
        match self {
            Self::Shared(_) => WorkspaceKind::Shared,
            Self::Directory { .. } => WorkspaceKind::Directory,
            Self::Worktree { .. } => WorkspaceKind::Worktree,
        }
    }
}

/// The branch of a session's worktree.
fn branch(session_id: SessionId) -> String {
    format!("tandem/{session_id}")
}

/// The absolute path `template` names for `session_id`.
fn expand(template: &str, session_id: SessionId) -> Result<PathBuf, String> {
    let path = template.replace(SESSION_ID, &session_id.to_string());
    std::path::absolute(&path).map_err(|error| format!("{path}: {error}"))
}

/// The workspace as participants see it.
fn shown(kind: WorkspaceKind, path: &Path, branch: Option<String>) -> Result<Workspace, String> {
    let path = path
        .to_str()
        .ok_or_else(|| format!("the path {} is not UTF-8", path.display()))?;
    Ok(Workspace {
        kind,
        path: path.to_owned(),
        branch,
    })
}

/// The path of `workspace` if it is the one `template` makes for `session_id`.
fn ours(template: &str, session_id: SessionId, workspace: &Workspace) -> Option<PathBuf> {
    let expected = expand(template, session_id).ok()?;
    if Path::new(&workspace.path) == expected {
        Some(expected)
    } else {
        tracing::warn!(%session_id, path = %workspace.path, "A session's workspace is not where its profile puts workspaces now; keeping it.");
        None
    }
}

/// Makes `path` (and its parents): the directory itself readable by the
/// server's user only.
async fn make_private_dir(path: &Path) -> Result<(), String> {
    let shown = path.display().to_string();
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {}
            Err(error) => return Err(error),
        }
        // The mode given at creation is masked by the umask; this is not.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
    })
    .await
    .map_err(|error| error.to_string())?
    .map_err(|error| format!("cannot make {shown}: {error}"))
}

/// Whether `path` is a worktree with `branch` checked out.
async fn is_worktree_on(path: &Path, branch: &str, withheld: &BTreeSet<String>) -> bool {
    path.join(".git").exists()
        && git(path, &["rev-parse", "--abbrev-ref", "HEAD"], withheld)
            .await
            .is_ok_and(|head| head.trim() == branch)
}

/// Adds a worktree of `repository` at `path` on `branch`: a new branch from
/// `base`, or the branch as it is if it exists (its worktree was deleted).
async fn add_worktree(
    repository: &Path,
    base: Option<&str>,
    branch: &str,
    path: &Path,
    withheld: &BTreeSet<String>,
) -> Result<(), String> {
    make_private_dir(path).await?;
    let target = path
        .to_str()
        .ok_or_else(|| format!("the path {} is not UTF-8", path.display()))?;
    let exists = git(
        repository,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
        withheld,
    )
    .await
    .is_ok();
    if exists {
        // A worktree deleted by hand stays registered until pruned.
        git(repository, &["worktree", "prune"], withheld).await?;
        git(repository, &["worktree", "add", target, branch], withheld).await?;
    } else {
        git(
            repository,
            &[
                "worktree",
                "add",
                "-b",
                branch,
                target,
                base.unwrap_or("HEAD"),
            ],
            withheld,
        )
        .await?;
    }
    Ok(())
}

async fn release_directory(path: &Path, cleanup: Cleanup) -> Result<WorkspaceCleanup, String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let remove = match cleanup {
            Cleanup::Keep => false,
            Cleanup::Remove => true,
            Cleanup::KeepIfChanged => match std::fs::read_dir(&path) {
                Ok(mut entries) => entries.next().is_none(),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
                Err(error) => return Err(error),
            },
        };
        if !remove {
            return Ok(WorkspaceCleanup::Kept);
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => Ok(WorkspaceCleanup::Removed),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok(WorkspaceCleanup::Removed)
            }
            Err(error) => Err(error),
        }
    })
    .await
    .map_err(|error| error.to_string())?
    .map_err(|error| error.to_string())
}

async fn release_worktree(
    repository: &Path,
    path: &Path,
    branch: &str,
    cleanup: Cleanup,
    withheld: &BTreeSet<String>,
) -> Result<WorkspaceCleanup, String> {
    let target = path
        .to_str()
        .ok_or_else(|| format!("the path {} is not UTF-8", path.display()))?;
    let remove = match cleanup {
        Cleanup::Keep => false,
        Cleanup::Remove => true,
        Cleanup::KeepIfChanged => !worktree_changed(repository, path, branch, withheld).await?,
    };
    if !remove {
        return Ok(WorkspaceCleanup::Kept);
    }
    if path.exists() {
        git(
            repository,
            &["worktree", "remove", "--force", target],
            withheld,
        )
        .await?;
    } else {
        git(repository, &["worktree", "prune"], withheld).await?;
    }
    let reference = format!("refs/heads/{branch}");
    if git(
        repository,
        &["rev-parse", "--verify", "--quiet", &reference],
        withheld,
    )
    .await
    .is_ok()
    {
        git(repository, &["branch", "-D", branch], withheld).await?;
    }
    Ok(WorkspaceCleanup::Removed)
}

/// Whether a worktree has uncommitted changes (untracked files included), or
/// its branch has commits that no other branch has.
async fn worktree_changed(
    repository: &Path,
    path: &Path,
    branch: &str,
    withheld: &BTreeSet<String>,
) -> Result<bool, String> {
    if path.exists() {
        let status = git(path, &["status", "--porcelain"], withheld).await?;
        if !status.trim().is_empty() {
            return Ok(true);
        }
    }
    let reference = format!("refs/heads/{branch}");
    if git(
        repository,
        &["rev-parse", "--verify", "--quiet", &reference],
        withheld,
    )
    .await
    .is_err()
    {
        return Ok(false);
    }
    let unique = git(
        repository,
        &[
            "rev-list",
            "--count",
            &reference,
            "--not",
            // `--branches` matches its exclusions without `refs/heads/`.
            &format!("--exclude={branch}"),
            "--branches",
        ],
        withheld,
    )
    .await?;
    Ok(unique.trim() != "0")
}

/// Runs `git -C dir args...` without the server's secrets in its environment
/// and without a terminal to prompt on; its output, or its error in plain text.
async fn git(dir: &Path, args: &[&str], withheld: &BTreeSet<String>) -> Result<String, String> {
    let mut command = tokio::process::Command::new("git");
    for name in withheld {
        command.env_remove(name);
    }
    command
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let shown = args.join(" ");
    let output = tokio::time::timeout(GIT_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            format!(
                "`git {shown}` did not finish within {} s",
                GIT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|error| format!("cannot run git: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`git {shown}` failed ({}): {}",
            output.status,
            excerpt::plain(&String::from_utf8_lossy(&output.stderr), GIT_ERROR_BYTES)
        ))
    }
}
