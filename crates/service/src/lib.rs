//! Tandem's use cases: one function per action of DESIGN.md §2 (`create_session`,
//! `join`, `post_comment`, `submit_prompt`, `approve_prompt`, ...). Each authorizes
//! with the domain's rules, writes through the `SessionStore` port, publishes on the
//! `EventBus`, and the per-session prompt runner drives the `AgentExecutor`. It does
//! no I/O of its own. The use cases arrive with the HTTP API.
