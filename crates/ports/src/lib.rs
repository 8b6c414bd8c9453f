//! The ports of Tandem's hexagon: what the core needs from the world, stated in
//! domain types only.
//!
//! - [`SessionStore`]: all persistence; every state change and its events commit in
//!   one transaction.
//! - [`EventBus`]: wakes stream subscribers after a commit (the log stays the truth).
//! - [`AgentExecutor`]: runs agent sessions and streams their updates back.
//! - [`Clock`]: the current time, so that the core never reads it itself.
//! - [`WebhookStore`] (part of every `SessionStore`) and [`WebhookSender`]:
//!   webhook endpoints, their deliveries, and the outbound requests.
//!
//! With the `testing` feature, [`testing`] holds the storage contract suite that
//! every `SessionStore` adapter runs, and a manual clock.

mod agent;
mod bus;
mod clock;
mod store;
mod token;
mod webhook;

#[cfg(feature = "testing")]
pub mod testing;

pub use agent::{
    AgentError, AgentExecutor, AgentSession, AgentStart, AgentUpdate, PermissionReply, Resume,
};
pub use bus::EventBus;
pub use clock::{Clock, SystemClock};
pub use store::{
    Change, MAX_LEASE_HOLDER_LEN, OpenWork, Page, Plan, PromptFilter, SessionFilter, SessionStore,
    StoreError, StreamTicket, TicketHolder, Write, is_valid_lease_holder,
};
pub use token::TokenHash;
pub use webhook::{
    Attempt, NoWebhooks, OutboundRequest, TargetRefused, WEBHOOK_SINCE_MARGIN, WebhookBacklog,
    WebhookProgress, WebhookSender, WebhookStore,
};
