//! API keys: credentials of scripts and services, bound to one workspace.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::enums::string_enum;
use crate::error::{DomainError, ValidationError, ValidationProblem};
use crate::ids::{ApiKeyId, WorkspaceId};
use crate::text::check_label;

string_enum! {
    /// What an API key may do. `admin` includes every other scope.
    Scope("scope") {
        SessionsRead => "sessions:read",
        SessionsWrite => "sessions:write",
        WebhooksRead => "webhooks:read",
        WebhooksWrite => "webhooks:write",
        Admin => "admin",
    }
}

/// A human label for an API key: trimmed, 1..=100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    /// The longest accepted name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses a key name: not blank, at most 100 characters as sent, no control
    /// characters; stored trimmed.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        check_label("name", raw, Self::MAX_CHARS)?;
        Ok(Self(raw.trim().to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An API key's record. The secret itself is not part of the domain: the store
/// keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: ApiKeyName,
    pub scopes: BTreeSet<Scope>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// A new key; it needs at least one scope.
    pub fn new(
        id: ApiKeyId,
        workspace_id: WorkspaceId,
        name: ApiKeyName,
        scopes: BTreeSet<Scope>,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        if scopes.is_empty() {
            return Err(ValidationError::new("scopes", ValidationProblem::Empty));
        }
        Ok(Self {
            id,
            workspace_id,
            name,
            scopes,
            created_at: now,
            revoked_at: None,
        })
    }

    /// Whether the key (not revoked) grants `scope`; `admin` grants every scope.
    pub fn allows(&self, scope: Scope) -> bool {
        self.revoked_at.is_none()
            && (self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope))
    }

    /// Revokes the key; it stops working at once.
    pub fn revoke(&self, now: DateTime<Utc>) -> Result<Self, DomainError> {
        if self.revoked_at.is_some() {
            return Err(DomainError::ApiKeyRevoked);
        }
        Ok(Self {
            revoked_at: Some(now),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn key(scopes: &[Scope]) -> ApiKey {
        ApiKey::new(
            ApiKeyId::from_uuid(Uuid::now_v7()),
            WorkspaceId::default_workspace(),
            ApiKeyName::parse("ci").unwrap(),
            scopes.iter().copied().collect(),
            Utc::now(),
        )
        .unwrap()
    }

    #[test]
    fn admin_includes_every_scope() {
        let admin = key(&[Scope::Admin]);
        for scope in Scope::ALL {
            assert!(admin.allows(*scope));
        }
    }

    #[test]
    fn other_scopes_grant_only_themselves() {
        let read = key(&[Scope::SessionsRead]);
        assert!(read.allows(Scope::SessionsRead));
        assert!(!read.allows(Scope::SessionsWrite));
        assert!(!read.allows(Scope::Admin));
        let write = key(&[Scope::SessionsWrite]);
        assert!(!write.allows(Scope::SessionsRead));
        assert!(write.allows(Scope::SessionsWrite));
    }

    #[test]
    fn revoked_keys_grant_nothing_and_revoke_once() {
        let revoked = key(&[Scope::Admin]).revoke(Utc::now()).unwrap();
        for scope in Scope::ALL {
            assert!(!revoked.allows(*scope));
        }
        assert_eq!(revoked.revoke(Utc::now()), Err(DomainError::ApiKeyRevoked));
    }

    #[test]
    fn keys_need_a_scope_and_a_name() {
        let err = ApiKey::new(
            ApiKeyId::from_uuid(Uuid::now_v7()),
            WorkspaceId::default_workspace(),
            ApiKeyName::parse("x").unwrap(),
            BTreeSet::new(),
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(err.field, "scopes");
        assert!(ApiKeyName::parse("  ").is_err());
        assert!("sessions:write".parse::<Scope>().is_ok());
        assert!("root".parse::<Scope>().is_err());
    }
}
