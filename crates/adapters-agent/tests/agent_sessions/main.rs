//! The `acp` executor's session-level work against the real echo agent: where
//! each session's agent works (shared, own directory, own git worktree) and how
//! that is cleaned up, resuming a conversation with `session/load`,
//! authentication, and what the agent reports about its session (commands,
//! modes, title) apart from any prompt.

mod auth;
mod common;
mod reports;
mod resume;
mod workspaces;
