//! Where each session's agent works: a private directory or git worktree of its
//! own, reused by the session's later agents, cleaned up as the profile says.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tandem_agent::{AcpProfile, Cleanup, WorkspaceConfig};
use tandem_domain::{SessionId, Workspace, WorkspaceCleanup, WorkspaceKind};
use tandem_ports::{AgentExecutor, Resume};

use crate::common::{ECHO, executor, new_session, profile_name, run, start, stop};

/// The echo agent behind a shell that first writes its working directory to
/// `seen/<pid>`.
fn echo_in(workspace: WorkspaceConfig, seen: &Path, state: &Path) -> AcpProfile {
    let mut profile = AcpProfile::new("/bin/sh");
    profile.args = vec![
        "-c".to_owned(),
        r#"pwd > "$1/$$"; exec "$2" --state-dir "$3""#.to_owned(),
        "sh".to_owned(),
        seen.display().to_string(),
        ECHO.to_owned(),
        state.display().to_string(),
    ];
    profile.workspace = workspace;
    profile
}

/// The working directories the agents reported.
fn seen(dir: &Path) -> Vec<String> {
    let mut seen: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            std::fs::read_to_string(entry.unwrap().path())
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    seen.sort();
    seen
}

fn mode_of(path: &str) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn template(root: &Path) -> String {
    root.join("{session_id}").display().to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A repository with one commit on `main`.
fn repository(root: &Path) -> PathBuf {
    let repo = root.join("project");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch", "main"]);
    std::fs::write(repo.join("README.md"), "# project\n").unwrap();
    git(&repo, &["add", "README.md"]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    repo
}

async fn release(
    executor: &tandem_agent::AcpExecutor,
    session_id: SessionId,
    workspace: &Workspace,
) -> WorkspaceCleanup {
    executor
        .release_workspace(&profile_name(), session_id, workspace)
        .await
}

#[tokio::test]
async fn each_session_gets_a_private_directory_of_its_own() {
    let root = tempfile::tempdir().unwrap();
    let (seen_dir, state) = (root.path().join("seen"), root.path().join("state"));
    std::fs::create_dir_all(&seen_dir).unwrap();
    let config = |cleanup| WorkspaceConfig::Directory {
        template: template(&root.path().join("sessions")),
        cleanup,
    };
    let executor = executor(echo_in(config(Cleanup::KeepIfChanged), &seen_dir, &state));
    let (a, b) = (new_session(), new_session());
    let agent_a = start(&executor, a, None).await;
    let agent_b = start(&executor, b, None).await;
    let workspace_a = agent_a.started().workspace.clone().expect("a workspace");
    let workspace_b = agent_b.started().workspace.clone().expect("a workspace");
    assert_eq!(workspace_a.kind, WorkspaceKind::Directory);
    assert_eq!(workspace_a.branch, None);
    assert_eq!(
        workspace_a.path,
        root.path()
            .join("sessions")
            .join(a.to_string())
            .display()
            .to_string()
    );
    assert_ne!(workspace_a.path, workspace_b.path);
    assert_eq!(
        mode_of(&workspace_a.path),
        0o700,
        "private to the server's user"
    );
    let mut expected = vec![workspace_a.path.clone(), workspace_b.path.clone()];
    expected.sort();
    assert_eq!(seen(&seen_dir), expected, "each agent runs in its own");

    // The session's later agent works in the same directory.
    std::fs::write(Path::new(&workspace_a.path).join("notes.txt"), "kept").unwrap();
    stop(agent_a).await;
    let again = start(
        &executor,
        a,
        Some(Resume {
            agent_session_id: "echo-gone".to_owned(),
            workspace: Some(workspace_a.clone()),
        }),
    )
    .await;
    assert_eq!(again.started().workspace.as_ref(), Some(&workspace_a));
    stop(again).await;
    stop(agent_b).await;

    // Kept with changes, removed without.
    assert_eq!(
        release(&executor, a, &workspace_a).await,
        WorkspaceCleanup::Kept
    );
    assert!(Path::new(&workspace_a.path).join("notes.txt").exists());
    assert_eq!(
        release(&executor, b, &workspace_b).await,
        WorkspaceCleanup::Removed
    );
    assert!(!Path::new(&workspace_b.path).exists());
    // Another session's directory, or one the profile does not make, is kept.
    assert_eq!(
        release(&executor, b, &workspace_a).await,
        WorkspaceCleanup::Kept
    );
    assert!(Path::new(&workspace_a.path).exists());
    // `remove` removes changes too.
    let removing = executor_with_cleanup(config(Cleanup::Remove), &seen_dir, &state);
    assert_eq!(
        release(&removing, a, &workspace_a).await,
        WorkspaceCleanup::Removed
    );
    assert!(!Path::new(&workspace_a.path).exists());
}

fn executor_with_cleanup(
    config: WorkspaceConfig,
    seen: &Path,
    state: &Path,
) -> tandem_agent::AcpExecutor {
    executor(echo_in(config, seen, state))
}

#[tokio::test]
async fn each_session_gets_a_git_worktree_on_a_branch_of_its_own() {
    let root = tempfile::tempdir().unwrap();
    let (seen_dir, state) = (root.path().join("seen"), root.path().join("state"));
    std::fs::create_dir_all(&seen_dir).unwrap();
    let repo = repository(root.path());
    let config = |cleanup| WorkspaceConfig::Worktree {
        repository: repo.clone(),
        base: Some("main".to_owned()),
        template: template(&root.path().join("worktrees")),
        cleanup,
    };
    let executor = executor(echo_in(config(Cleanup::KeepIfChanged), &seen_dir, &state));
    let sessions = [new_session(), new_session(), new_session()];
    let mut workspaces = Vec::new();
    for session_id in sessions {
        let agent = start(&executor, session_id, None).await;
        run(agent.as_ref(), "hello").await;
        workspaces.push(agent.started().workspace.clone().expect("a workspace"));
        stop(agent).await;
    }
    for (session_id, workspace) in sessions.iter().zip(&workspaces) {
        assert_eq!(workspace.kind, WorkspaceKind::Worktree);
        let branch = format!("tandem/{session_id}");
        assert_eq!(workspace.branch.as_deref(), Some(branch.as_str()));
        assert_eq!(mode_of(&workspace.path), 0o700);
        let path = Path::new(&workspace.path);
        assert!(path.join("README.md").exists(), "checked out from main");
        assert_eq!(
            git(path, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
            branch
        );
    }
    let mut expected: Vec<String> = workspaces.iter().map(|w| w.path.clone()).collect();
    expected.sort();
    assert_eq!(
        seen(&seen_dir),
        expected,
        "each agent runs in its own worktree"
    );

    let [clean, dirty, committed] = sessions;
    let path = |n: usize| PathBuf::from(&workspaces[n].path);
    std::fs::write(path(1).join("draft.txt"), "uncommitted").unwrap();
    std::fs::write(path(2).join("fix.txt"), "committed").unwrap();
    git(&path(2), &["add", "fix.txt"]);
    git(&path(2), &["commit", "--quiet", "-m", "fix"]);

    // A worktree deleted by hand is made again, on its branch as it was.
    std::fs::remove_dir_all(path(2)).unwrap();
    let again = start(
        &executor,
        committed,
        Some(Resume {
            agent_session_id: "echo-gone".to_owned(),
            workspace: Some(workspaces[2].clone()),
        }),
    )
    .await;
    assert_eq!(again.started().workspace.as_ref(), Some(&workspaces[2]));
    assert!(
        path(2).join("fix.txt").exists(),
        "the branch's commit is there"
    );
    stop(again).await;

    assert_eq!(
        release(&executor, clean, &workspaces[0]).await,
        WorkspaceCleanup::Removed
    );
    assert!(!path(0).exists());
    let branches = git(&repo, &["branch", "--list", "tandem/*"]);
    assert!(!branches.contains(&clean.to_string()), "{branches}");
    assert_eq!(
        release(&executor, dirty, &workspaces[1]).await,
        WorkspaceCleanup::Kept,
        "uncommitted changes keep it"
    );
    assert_eq!(
        release(&executor, committed, &workspaces[2]).await,
        WorkspaceCleanup::Kept,
        "commits no other branch has keep it"
    );
    assert!(path(1).join("draft.txt").exists() && path(2).join("fix.txt").exists());

    let removing = executor_with_cleanup(config(Cleanup::Remove), &seen_dir, &state);
    assert_eq!(
        release(&removing, dirty, &workspaces[1]).await,
        WorkspaceCleanup::Removed
    );
    assert!(!path(1).exists());
    let branches = git(&repo, &["branch", "--list", "tandem/*"]);
    assert!(!branches.contains(&dirty.to_string()), "{branches}");
    assert!(branches.contains(&committed.to_string()), "{branches}");
}

#[tokio::test]
async fn a_worktree_that_cannot_be_made_fails_the_start_with_gits_reason() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let not_a_repository = root.path().join("plain");
    std::fs::create_dir_all(&not_a_repository).unwrap();
    let mut profile = AcpProfile::new(ECHO);
    profile.args = vec!["--state-dir".to_owned(), state.display().to_string()];
    profile.workspace = WorkspaceConfig::Worktree {
        repository: not_a_repository,
        base: None,
        template: template(&root.path().join("worktrees")),
        cleanup: Cleanup::default(),
    };
    let error = crate::common::try_start(&executor(profile), new_session(), None)
        .await
        .err()
        .expect("no worktree");
    let message = error.to_string();
    assert!(message.contains("workspace is unusable"), "{message}");
    assert!(message.contains("not a git repository"), "{message}");
    assert!(!message.contains('\u{1b}'), "{message}");
}

#[tokio::test]
async fn a_start_that_fails_after_making_the_worktree_leaves_it_for_the_next() {
    let root = tempfile::tempdir().unwrap();
    let repo = repository(root.path());
    let config = WorkspaceConfig::Worktree {
        repository: repo,
        base: None,
        template: template(&root.path().join("worktrees")),
        cleanup: Cleanup::default(),
    };
    let echo = |auth_method: Option<&str>| {
        let mut profile = AcpProfile::new(ECHO);
        profile.args = vec![
            "--require-auth".to_owned(),
            "--state-dir".to_owned(),
            root.path().join("state").display().to_string(),
        ];
        profile.workspace = config.clone();
        profile.auth_method = auth_method.map(str::to_owned);
        executor(profile)
    };
    let session_id = new_session();
    for _ in 0..2 {
        let error = crate::common::try_start(&echo(None), session_id, None)
            .await
            .err()
            .expect("authentication is required");
        assert!(
            matches!(error, tandem_ports::AgentError::AuthRequired(_)),
            "the agent's own refusal each time, not a workspace error: {error:?}"
        );
    }
    let agent = start(&echo(Some("echo-login")), session_id, None).await;
    let workspace = agent.started().workspace.clone().expect("a workspace");
    assert_eq!(
        workspace.path,
        root.path()
            .join("worktrees")
            .join(session_id.to_string())
            .display()
            .to_string()
    );
    stop(agent).await;
}
