//! Participants: join through an invite, leave, and the host's role changes and
//! removals.

use tandem_domain::{
    DisplayName, InviteRole, Joiner, Participant, ParticipantId, Session, SessionId, UserId,
};
use tandem_ports::{Change, Write};
use uuid::Uuid;

use crate::credentials::{Caller, Secret, TokenKind, hash_token};
use crate::error::{Resource, ServiceError, missing_means, read_error};
use crate::{Tandem, retry_on_conflict};

/// A new participant with the token it sees once.
#[derive(Debug)]
pub struct JoinedSession {
    pub session: Session,
    pub participant: Participant,
    pub token: Secret,
}

impl Tandem {
    /// Joins the invite's session with the invite's role: each join is a new
    /// participant with a new token, and never reveals anyone else's.
    pub async fn join(
        &self,
        invite_token: &str,
        display_name: DisplayName,
        user_id: Option<UserId>,
    ) -> Result<JoinedSession, ServiceError> {
        let invite_hash = hash_token(invite_token);
        retry_on_conflict!({
            let invite = self
                .store
                .invite_by_token(&invite_hash)
                .await
                .map_err(missing_means(ServiceError::InviteUnknown))?;
            let session = self
                .store
                .session(invite.session_id)
                .await
                .map_err(read_error(Resource::Session))?;
            let session = self.settle(session).await?;
            let joiner = Joiner {
                id: ParticipantId::from_uuid(Uuid::now_v7()),
                display_name: display_name.clone(),
                user_id: user_id.clone(),
            };
            let now = self.now();
            let admitted = Participant::join(&session, &invite, joiner, now)?;
            let (token, token_hash) = Secret::generate(TokenKind::Participant);
            let change = Change::new(session.id)
                .write(Write::InsertParticipant {
                    participant: admitted.participant.clone(),
                    token_hash,
                })
                .write(Write::RedeemInvite(admitted.invite))
                .events(admitted.events)
                .activity(now);
            self.commit(change).await.map(|_| {
                tracing::info!(session_id = %session.id, participant_id = %admitted.participant.id, role = %admitted.participant.role, "participant joined");
                JoinedSession { session, participant: admitted.participant, token }
            })
        })
    }

    /// A collaborator or viewer leaves; its token stops working at once.
    pub async fn leave(
        &self,
        caller: &Caller,
        session_id: SessionId,
    ) -> Result<Participant, ServiceError> {
        retry_on_conflict!({
            let (session, me) = self.acting(caller, session_id).await?;
            let left = me.leave(&session, self.now())?;
            let change = Change::new(session_id)
                .write(Write::UpdateParticipant(left.state.clone()))
                .events(left.events)
                .activity(self.now());
            self.commit(change).await.map(|_| left.state)
        })
    }

    /// Everyone who took part in the session, present or not, in join order.
    pub async fn list_participants(
        &self,
        caller: &Caller,
        session_id: SessionId,
    ) -> Result<Vec<Participant>, ServiceError> {
        self.visible_session(caller, session_id).await?;
        self.store
            .participants(session_id)
            .await
            .map_err(ServiceError::Store)
    }

    /// The host gives a participant another role.
    pub async fn change_role(
        &self,
        caller: &Caller,
        session_id: SessionId,
        participant_id: ParticipantId,
        role: InviteRole,
    ) -> Result<Participant, ServiceError> {
        retry_on_conflict!({
            let (session, host) = self.acting(caller, session_id).await?;
            let target = self.participant_of(session_id, participant_id).await?;
            let changed = target.change_role(&session, &host, role, self.now())?;
            let change = Change::new(session_id)
                .write(Write::UpdateParticipant(changed.state.clone()))
                .events(changed.events)
                .activity(self.now());
            self.commit(change).await.map(|_| changed.state)
        })
    }

    /// The host removes a participant; its token stops working at once.
    pub async fn remove_participant(
        &self,
        caller: &Caller,
        session_id: SessionId,
        participant_id: ParticipantId,
    ) -> Result<Participant, ServiceError> {
        retry_on_conflict!({
            let (session, host) = self.acting(caller, session_id).await?;
            let target = self.participant_of(session_id, participant_id).await?;
            let removed = target.remove(&session, &host, self.now())?;
            let change = Change::new(session_id)
                .write(Write::UpdateParticipant(removed.state.clone()))
                .events(removed.events)
                .activity(self.now());
            self.commit(change).await.map(|_| removed.state)
        })
    }

    /// A participant of this session; one of another session is "not found".
    pub(crate) async fn participant_of(
        &self,
        session_id: SessionId,
        id: ParticipantId,
    ) -> Result<Participant, ServiceError> {
        let participant = self
            .store
            .participant(id)
            .await
            .map_err(read_error(Resource::Participant))?;
        if participant.session_id == session_id {
            Ok(participant)
        } else {
            Err(ServiceError::NotFound(Resource::Participant))
        }
    }
}
