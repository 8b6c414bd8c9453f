//! Invites on the wire.

use std::num::NonZeroU32;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_domain::{self as domain, InviteSettings, Ttl, ValidationError, ValidationProblem};
use tandem_service::Invalid;
use utoipa::ToSchema;
use uuid::Uuid;

use super::enums::InviteRole;
use super::validate::{invalid, optional, whole_number};

/// A new invite; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateInviteRequest {
    /// The role joiners get (default `collaborator`).
    pub(crate) role: Option<InviteRole>,
    /// How many joins the invite allows (default: no limit).
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_u64)]
    pub(crate) max_uses: Option<u32>,
    /// How long the invite works: a number and one unit (`s`, `m`, `h`, `d`),
    /// e.g. `24h`, at most `30d` (default: as long as the session).
    #[schema(example = "24h")]
    pub(crate) expires_in: Option<String>,
}

impl CreateInviteRequest {
    /// The service's input, or every invalid field.
    pub(crate) fn parse(self) -> Result<InviteSettings, Invalid> {
        let max_uses = self
            .max_uses
            .map(|uses| {
                NonZeroU32::new(uses).ok_or(ValidationError::new(
                    "maxUses",
                    ValidationProblem::OutOfRange("at least 1"),
                ))
            })
            .transpose();
        let expires_in = optional("expiresIn", self.expires_in.as_deref(), Ttl::parse_single);
        match (max_uses, expires_in) {
            (Ok(max_uses), Ok(expires_in)) => Ok(InviteSettings {
                role: self
                    .role
                    .map_or(domain::InviteRole::Collaborator, Into::into),
                max_uses,
                expires_in,
            }),
            (max_uses, expires_in) => Err(invalid([max_uses.err(), expires_in.err()])),
        }
    }
}

/// An invite link of a session (its token is shown only when it is created).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InviteResponse {
    pub(crate) id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) role: InviteRole,
    /// How many joins the invite allows; `null` for no limit.
    #[schema(required = true)]
    pub(crate) max_uses: Option<u32>,
    /// How many joins it has admitted.
    pub(crate) uses: u32,
    pub(crate) created_at: DateTime<Utc>,
    /// When the invite stops working; `null` for as long as the session.
    #[schema(required = true)]
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// When the host revoked it; `null` if not revoked.
    #[schema(required = true)]
    pub(crate) revoked_at: Option<DateTime<Utc>>,
}

impl From<&domain::Invite> for InviteResponse {
    fn from(invite: &domain::Invite) -> Self {
        Self {
            id: invite.id.as_uuid(),
            session_id: invite.session_id.as_uuid(),
            role: invite.role.into(),
            max_uses: invite.max_uses,
            uses: invite.uses,
            created_at: invite.created_at,
            expires_at: invite.expires_at,
            revoked_at: invite.revoked_at,
        }
    }
}

/// A new invite with its token and link, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InviteCreatedResponse {
    pub(crate) invite: InviteResponse,
    /// The invite's secret token, for `POST /v1/join`.
    pub(crate) token: String,
    /// The link to share: the token travels in the URL fragment, which browsers
    /// never send to a server.
    #[schema(format = "uri", example = "http://127.0.0.1:8080/join#tdm_inv_...")]
    pub(crate) url: String,
}

/// A page of invites, in creation order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvitePage {
    pub(crate) invites: Vec<InviteResponse>,
    /// The cursor of the next page (`?after=`), or `null` on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<Uuid>,
}

/// What an invite lets its holder join, for the join page: the session's title
/// and the role, nothing about who is in it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvitePreviewResponse {
    pub(crate) session_id: Uuid,
    /// The session's title.
    pub(crate) title: String,
    /// The role a join through this invite gives.
    pub(crate) role: InviteRole,
    /// When the session expires at the latest.
    pub(crate) session_expires_at: DateTime<Utc>,
    /// When the invite stops working; `null` for as long as the session.
    #[schema(required = true)]
    pub(crate) invite_expires_at: Option<DateTime<Utc>>,
}

impl From<&tandem_service::InvitePreview> for InvitePreviewResponse {
    fn from(preview: &tandem_service::InvitePreview) -> Self {
        Self {
            session_id: preview.session_id.as_uuid(),
            title: preview.title.to_string(),
            role: preview.role.into(),
            session_expires_at: preview.session_expires_at,
            invite_expires_at: preview.invite_expires_at,
        }
    }
}
