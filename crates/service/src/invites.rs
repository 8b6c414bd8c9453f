//! Invites: the host lists, creates and revokes them.

use chrono::{DateTime, Utc};
use tandem_domain::{Invite, InviteId, InviteRole, InviteSettings, SessionId, Title};
use tandem_ports::{Change, Write};
use uuid::Uuid;

use crate::credentials::{Caller, Secret, TokenKind, hash_token};
use crate::error::{Resource, ServiceError, missing_means, read_error};
use crate::{Tandem, retry_on_conflict};

/// A new invite with the token its link carries, shown once.
#[derive(Debug)]
pub struct CreatedInvite {
    pub invite: Invite,
    pub token: Secret,
}

impl Tandem {
    /// The session's invites (host only).
    pub async fn list_invites(
        &self,
        caller: &Caller,
        session_id: SessionId,
    ) -> Result<Vec<Invite>, ServiceError> {
        let (_, me) = self.acting(caller, session_id).await?;
        me.ensure_host()?;
        self.store
            .invites(session_id)
            .await
            .map_err(ServiceError::Store)
    }

    /// The host creates an invite.
    pub async fn create_invite(
        &self,
        caller: &Caller,
        session_id: SessionId,
        settings: InviteSettings,
    ) -> Result<CreatedInvite, ServiceError> {
        let (session, host) = self.acting(caller, session_id).await?;
        let invite = Invite::create(
            InviteId::from_uuid(Uuid::now_v7()),
            &session,
            &host,
            settings,
            self.now(),
        )?;
        let (token, token_hash) = Secret::generate(TokenKind::Invite);
        let change = Change::new(session_id)
            .write(Write::InsertInvite {
                invite: invite.clone(),
                token_hash,
            })
            .activity(self.now());
        self.commit(change).await?;
        Ok(CreatedInvite { invite, token })
    }

    /// The host revokes an invite; it stops working at once.
    pub async fn revoke_invite(
        &self,
        caller: &Caller,
        session_id: SessionId,
        invite_id: InviteId,
    ) -> Result<Invite, ServiceError> {
        retry_on_conflict!({
            let (session, host) = self.acting(caller, session_id).await?;
            let invite = self
                .store
                .invite(invite_id)
                .await
                .map_err(read_error(Resource::Invite))?;
            if invite.session_id != session_id {
                return Err(ServiceError::NotFound(Resource::Invite));
            }
            let revoked = invite.revoke(&session, &host, self.now())?;
            self.commit(
                Change::new(session_id)
                    .write(Write::UpdateInvite(revoked.clone()))
                    .activity(self.now()),
            )
            .await
            .map(|_| revoked)
        })
    }
}

/// What the join page shows before someone joins: the session's title and the
/// role the invite gives, nothing about who is in it.
#[derive(Debug, Clone)]
pub struct InvitePreview {
    pub session_id: SessionId,
    pub title: Title,
    pub role: InviteRole,
    pub session_expires_at: DateTime<Utc>,
    /// When the invite stops working; `None` for as long as the session.
    pub invite_expires_at: Option<DateTime<Utc>>,
}

impl Tandem {
    /// What an invite token would let its holder join, checked as a join would
    /// check it: an unknown, revoked, used up or expired invite, or a session that
    /// ended, is refused with the same error the join would get.
    pub async fn preview_invite(&self, invite_token: &str) -> Result<InvitePreview, ServiceError> {
        let invite = self
            .store
            .invite_by_token(&hash_token(invite_token))
            .await
            .map_err(missing_means(ServiceError::InviteUnknown))?;
        let session = self
            .store
            .session(invite.session_id)
            .await
            .map_err(read_error(Resource::Session))?;
        let session = self.settle(session).await?;
        let now = self.now();
        session.ensure_active(now)?;
        invite.check_usable(now)?;
        Ok(InvitePreview {
            session_id: session.id,
            title: session.title,
            role: invite.role,
            session_expires_at: session.expires_at,
            invite_expires_at: invite.expires_at,
        })
    }
}
