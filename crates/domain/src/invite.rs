//! Invites: links that let people join a session with a role chosen by the host.

use std::num::NonZeroU32;

use chrono::{DateTime, Utc};

use crate::access::{self, Action};
use crate::duration::Ttl;
use crate::enums::string_enum;
use crate::error::DomainError;
use crate::ids::{InviteId, SessionId};
use crate::participant::{Participant, Role};
use crate::session::Session;

string_enum! {
    /// The roles an invite can grant: never host (a session has exactly one).
    InviteRole("invite role") {
        Collaborator => "collaborator",
        Viewer => "viewer",
    }
}

impl From<InviteRole> for Role {
    fn from(role: InviteRole) -> Self {
        match role {
            InviteRole::Collaborator => Self::Collaborator,
            InviteRole::Viewer => Self::Viewer,
        }
    }
}

/// The host's choices for a new invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteSettings {
    pub role: InviteRole,
    /// How many joins the invite allows; `None` for no limit. Never zero: an
    /// invite nobody can use is refused when the settings are built.
    pub max_uses: Option<NonZeroU32>,
    /// How long the invite works; `None` for as long as the session.
    pub expires_in: Option<Ttl>,
}

/// An invite link of a session. Its secret token is not part of the domain: the
/// store keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: InviteId,
    pub session_id: SessionId,
    pub role: InviteRole,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version, bumped by the store on every update.
    pub version: u32,
}

impl Invite {
    /// The collaborator invite every new session starts with.
    pub(crate) fn initial(id: InviteId, session_id: SessionId, now: DateTime<Utc>) -> Self {
        Self {
            id,
            session_id,
            role: InviteRole::Collaborator,
            max_uses: None,
            uses: 0,
            created_at: now,
            expires_at: None,
            revoked_at: None,
            version: 0,
        }
    }

    /// `by` (the host) creates another invite. `max_uses` of zero cannot be
    /// expressed (`NonZeroU32`).
    pub fn create(
        id: InviteId,
        session: &Session,
        by: &Participant,
        settings: InviteSettings,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        by.ensure_can_act(session, now)?;
        if !access::may_manage_session(by.role) {
            return Err(DomainError::Forbidden {
                action: Action::ManageSession,
                role: by.role,
            });
        }
        Ok(Self {
            id,
            session_id: session.id,
            role: settings.role,
            max_uses: settings.max_uses.map(NonZeroU32::get),
            uses: 0,
            created_at: now,
            expires_at: settings.expires_in.map(|ttl| now + ttl.as_delta()),
            revoked_at: None,
            version: 0,
        })
    }

    /// Whether the invite would let someone join at `now`.
    pub fn check_usable(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.revoked_at.is_some() {
            return Err(DomainError::InviteRevoked);
        }
        if self.expires_at.is_some_and(|at| now >= at) {
            return Err(DomainError::InviteExpired);
        }
        if self.max_uses.is_some_and(|max| self.uses >= max) {
            return Err(DomainError::InviteExhausted);
        }
        Ok(())
    }

    /// Counts one use.
    pub(crate) fn redeem(&self, now: DateTime<Utc>) -> Result<Self, DomainError> {
        self.check_usable(now)?;
        Ok(Self {
            uses: self.uses + 1,
            ..self.clone()
        })
    }

    /// `by` (the host) revokes the invite; it stops working at once.
    pub fn revoke(
        &self,
        session: &Session,
        by: &Participant,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        by.ensure_can_act(session, now)?;
        if !access::may_manage_session(by.role) {
            return Err(DomainError::Forbidden {
                action: Action::ManageSession,
                role: by.role,
            });
        }
        if self.session_id != session.id {
            return Err(DomainError::WrongSession);
        }
        if self.revoked_at.is_some() {
            return Err(DomainError::InviteAlreadyRevoked);
        }
        Ok(Self {
            revoked_at: Some(now),
            ..self.clone()
        })
    }
}
