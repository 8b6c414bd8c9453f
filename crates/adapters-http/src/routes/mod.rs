//! The handlers, one file per resource. Each is annotated for the OpenAPI
//! document and registered in `openapi::api_router`.

pub(crate) mod agent;
pub(crate) mod api_keys;
pub(crate) mod comments;
pub(crate) mod events;
pub(crate) mod identity;
pub(crate) mod invites;
pub(crate) mod ops;
pub(crate) mod participants;
pub(crate) mod permissions;
pub(crate) mod prompts;
pub(crate) mod sessions;
pub(crate) mod webhooks;
