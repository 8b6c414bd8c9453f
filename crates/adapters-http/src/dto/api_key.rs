//! API keys on the wire.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_domain::{self as domain, ApiKeyName};
use tandem_service::Invalid;
use utoipa::ToSchema;
use uuid::Uuid;

use super::enums::Scope;
use super::validate::at;

/// A new API key for the caller's workspace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateApiKeyRequest {
    /// A label for people (`ci`, `dashboard`).
    #[schema(example = "ci")]
    pub(crate) name: String,
    /// What the key may do (at least one scope); `admin` includes every other
    /// scope.
    #[schema(min_items = 1)]
    pub(crate) scopes: Vec<Scope>,
}

impl CreateApiKeyRequest {
    /// The validated name and scopes.
    pub(crate) fn parse(self) -> Result<(ApiKeyName, BTreeSet<domain::Scope>), Invalid> {
        let name = at("name", ApiKeyName::parse(&self.name))?;
        Ok((name, self.scopes.into_iter().map(Into::into).collect()))
    }
}

/// An API key's record (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeyResponse {
    pub(crate) id: Uuid,
    pub(crate) workspace_id: String,
    pub(crate) name: String,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) created_at: DateTime<Utc>,
    /// When the key was revoked; `null` while it works.
    #[schema(required = true)]
    pub(crate) revoked_at: Option<DateTime<Utc>>,
}

impl From<&domain::ApiKey> for ApiKeyResponse {
    fn from(key: &domain::ApiKey) -> Self {
        Self {
            id: key.id.as_uuid(),
            workspace_id: key.workspace_id.to_string(),
            name: key.name.as_str().to_owned(),
            scopes: key.scopes.iter().copied().map(Into::into).collect(),
            created_at: key.created_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// A new API key with its secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeyCreatedResponse {
    pub(crate) api_key: ApiKeyResponse,
    /// The key itself, to send as `Authorization: Bearer <secret>`; shown only in
    /// this response.
    pub(crate) secret: String,
}

/// A page of API keys, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeyPage {
    pub(crate) api_keys: Vec<ApiKeyResponse>,
    /// The cursor of the next page (`?after=`), or `null` on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<Uuid>,
}
