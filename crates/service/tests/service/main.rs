//! Integration tests of Tandem's use cases: the `Tandem` facade over a real SQLite
//! store, the local event bus and a hand-moved clock. Each test asserts what a user
//! would observe: what the use case returns, and what the store and the event log
//! show afterwards.
//!
//! One test binary (modules below) so that the harness in `tests/common` is built
//! and linked once.

#[path = "../common/mod.rs"]
mod common;

mod agent_modes;
mod api_keys;
mod auth;
mod comments;
mod expiry;
mod invites;
mod lifecycle;
mod participants;
mod permissions;
mod prompts;
mod sessions;
mod subscriptions;
mod wakeups;
