//! Invites: the host lists, creates and revokes them.

use tandem_domain::{Invite, InviteId, InviteSettings, SessionId};
use tandem_ports::{Change, Write};
use uuid::Uuid;

use crate::credentials::{Caller, Secret, TokenKind};
use crate::error::{Resource, ServiceError, read_error};
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
