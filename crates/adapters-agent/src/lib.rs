//! Tandem's agent adapters: the `acp` executor ([`AcpExecutor`]: an Agent Client
//! Protocol agent as a subprocess, JSON-RPC 2.0 over stdio, protocol v1), the
//! `openai` executor ([`OpenAiExecutor`]: streamed chat completions from an
//! OpenAI-compatible endpoint), and the echo agent ([`echo_agent`], also the
//! `tandem-echo-agent` binary), a deterministic ACP agent that is the default
//! profile and what the tests drive.
//!
//! Agent profiles are server configuration only: each executor is built from a map
//! of profile names to profiles, and a client only ever picks a name.

mod acp;
pub mod echo_agent;
mod openai;

pub use acp::{AcpExecutor, AcpProfile, Cleanup, WorkspaceConfig};
pub use openai::{OpenAiExecutor, OpenAiProfile};
