//! API keys: admins of a workspace create, list and revoke its keys; the operator
//! bootstraps the first admin key.

use std::collections::BTreeSet;

use tandem_domain::{ApiKey, ApiKeyId, ApiKeyName, Scope, WorkspaceId};
use tandem_ports::{Page, StoreError};
use uuid::Uuid;

use crate::Tandem;
use crate::credentials::{Caller, Secret, TokenKind, hash_token};
use crate::error::{Invalid, Resource, ServiceError, read_error};

/// The shortest bootstrap admin key an operator may supply.
pub const MIN_BOOTSTRAP_KEY_LEN: usize = 32;

/// A new key with its secret, shown once.
#[derive(Debug)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: Secret,
}

impl Tandem {
    /// An admin key creates a key for its own workspace.
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        name: ApiKeyName,
        scopes: BTreeSet<Scope>,
    ) -> Result<CreatedApiKey, ServiceError> {
        let admin = Self::require_key(caller, Scope::Admin)?;
        self.issue_api_key(admin.workspace_id.clone(), name, scopes)
            .await
    }

    /// Creates a key for any workspace: the operator's command line, which has the
    /// database itself and so needs no credential.
    pub async fn issue_api_key(
        &self,
        workspace_id: WorkspaceId,
        name: ApiKeyName,
        scopes: BTreeSet<Scope>,
    ) -> Result<CreatedApiKey, ServiceError> {
        let key = ApiKey::new(
            ApiKeyId::from_uuid(Uuid::now_v7()),
            workspace_id,
            name,
            scopes,
            self.now(),
        )
        .map_err(Invalid::from)?;
        let (secret, hash) = Secret::generate(TokenKind::ApiKey);
        self.store
            .insert_api_key(&key, &hash)
            .await
            .map_err(ServiceError::Store)?;
        tracing::info!(api_key_id = %key.id, workspace = %key.workspace_id, "API key created");
        Ok(CreatedApiKey { key, secret })
    }

    /// The admin's workspace's keys, newest first (never their secrets).
    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        page: Page<ApiKeyId>,
    ) -> Result<Vec<ApiKey>, ServiceError> {
        let admin = Self::require_key(caller, Scope::Admin)?;
        self.store
            .api_keys(Some(&admin.workspace_id), page)
            .await
            .map_err(ServiceError::Store)
    }

    /// An admin revokes a key of its workspace; it stops working at once.
    pub async fn revoke_api_key(
        &self,
        caller: &Caller,
        id: ApiKeyId,
    ) -> Result<ApiKey, ServiceError> {
        let admin = Self::require_key(caller, Scope::Admin)?;
        let key = self
            .store
            .api_key(id)
            .await
            .map_err(read_error(Resource::ApiKey))?;
        if key.workspace_id != admin.workspace_id {
            return Err(ServiceError::NotFound(Resource::ApiKey));
        }
        let revoked = key.revoke(self.now())?;
        self.store
            .revoke_api_key(id, self.now())
            .await
            .map_err(|error| match error {
                StoreError::NotFound => ServiceError::NotFound(Resource::ApiKey),
                StoreError::Conflict => {
                    ServiceError::Rule(tandem_domain::DomainError::ApiKeyRevoked)
                }
                other @ (StoreError::SessionInactive
                | StoreError::Duplicate
                | StoreError::Refused(_)
                | StoreError::LeaseLost
                | StoreError::Backend(_)) => ServiceError::Store(other),
            })?;
        Ok(revoked)
    }

    /// Makes sure an admin key exists: when none does, the operator's `secret` (at
    /// least 32 characters) or else a fresh one becomes the admin key of workspace
    /// `default`. Returns the key created, if any; its secret is shown once by the
    /// caller (only when it was generated here).
    pub async fn bootstrap_admin_key(
        &self,
        secret: Option<String>,
    ) -> Result<Option<CreatedApiKey>, ServiceError> {
        let secret = match secret {
            Some(secret) if secret.chars().count() < MIN_BOOTSTRAP_KEY_LEN => {
                return Err(ServiceError::Invalid(Invalid(vec![
                    tandem_domain::ValidationError::new(
                        "TANDEM_BOOTSTRAP_ADMIN_KEY",
                        tandem_domain::ValidationProblem::OutOfRange("at least 32 characters"),
                    ),
                ])));
            }
            // Tokens with these prefixes are looked up as participants or invites,
            // so such a key could never authenticate.
            Some(secret)
                if [TokenKind::Participant, TokenKind::Invite]
                    .iter()
                    .any(|kind| secret.starts_with(kind.prefix())) =>
            {
                return Err(ServiceError::Invalid(Invalid(vec![
                    tandem_domain::ValidationError::new(
                        "TANDEM_BOOTSTRAP_ADMIN_KEY",
                        tandem_domain::ValidationProblem::Format(
                            "a secret not starting with tdm_pt_ or tdm_inv_",
                        ),
                    ),
                ])));
            }
            Some(secret) => Secret::from_operator(secret),
            None => Secret::generate(TokenKind::ApiKey).0,
        };
        let key = ApiKey::new(
            ApiKeyId::from_uuid(Uuid::now_v7()),
            WorkspaceId::default_workspace(),
            ApiKeyName::parse("bootstrap admin").map_err(Invalid::from)?,
            BTreeSet::from([Scope::Admin]),
            self.now(),
        )
        .map_err(Invalid::from)?;
        let inserted = self
            .store
            .insert_first_admin_key(&key, &hash_token(secret.expose()))
            .await
            .map_err(ServiceError::Store)?;
        Ok(inserted.then_some(CreatedApiKey { key, secret }))
    }
}
