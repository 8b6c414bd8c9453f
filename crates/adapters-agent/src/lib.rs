//! Tandem's agent adapters: the `acp` executor (an Agent Client Protocol agent as
//! a subprocess, JSON-RPC over stdio), the `openai` executor (streamed chat
//! completions from an OpenAI-compatible endpoint), and the `tandem-echo-agent`
//! binary, a deterministic ACP agent that is the default profile and what the tests
//! drive. They arrive with agent execution.
