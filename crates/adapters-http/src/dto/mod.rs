//! Request and response bodies. Responses are built from domain values
//! explicitly; requests are parsed into domain values explicitly, reporting every
//! invalid field at once. Nothing here serializes a `version` or a token hash.

pub(crate) mod agent;
pub(crate) mod api_key;
pub(crate) mod comment;
pub(crate) mod enums;
pub(crate) mod event;
pub(crate) mod identity;
pub(crate) mod invite;
pub(crate) mod page;
pub(crate) mod participant;
pub(crate) mod permission;
pub(crate) mod prompt;
pub(crate) mod rules;
pub(crate) mod session;
mod validate;
pub(crate) mod webhook;

use serde::Serialize;
use utoipa::ToSchema;

/// The answer of the health and readiness probes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    #[schema(example = "ok")]
    pub(crate) status: String,
}
