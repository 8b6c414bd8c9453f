//! Who may touch which session: authentication, visibility (a key sees its
//! workspace, a participant its session; anything else is "not found"), lazy
//! expiry, and ending a session with everything that must end with it.

use tandem_domain::{ApiKey, Participant, PromptStatus, Scope, Session, SessionId, Transition};
use tandem_ports::{Change, Page, PromptFilter, StoreError, Write};

use crate::credentials::{Caller, TokenKind, hash_token};
use crate::error::{Resource, ServiceError, read_error};
use crate::{MAX_ATTEMPTS, Tandem};

/// At most this many queued prompts are cancelled with their session in one change.
const MAX_PROMPTS_ENDED: u32 = 1000;

impl Tandem {
    /// Recognises a bearer token: a present participant's or an API key's.
    /// Unknown tokens and revoked keys are `Unauthenticated`; a departed
    /// participant's token is `ParticipantGone`.
    pub async fn authenticate(&self, bearer: &str) -> Result<Caller, ServiceError> {
        let hash = hash_token(bearer);
        if bearer.starts_with(TokenKind::Participant.prefix()) {
            let participant = self
                .store
                .participant_by_token(&hash)
                .await
                .map_err(|error| match error {
                    StoreError::NotFound => ServiceError::Unauthenticated,
                    other @ (StoreError::SessionInactive
                    | StoreError::Conflict
                    | StoreError::Duplicate
                    | StoreError::Backend(_)) => ServiceError::Store(other),
                })?;
            return if participant.is_present() {
                Ok(Caller::Participant(participant))
            } else {
                Err(ServiceError::ParticipantGone)
            };
        }
        let key = self
            .store
            .api_key_by_token(&hash)
            .await
            .map_err(|error| match error {
                StoreError::NotFound => ServiceError::Unauthenticated,
                other @ (StoreError::SessionInactive
                | StoreError::Conflict
                | StoreError::Duplicate
                | StoreError::Backend(_)) => ServiceError::Store(other),
            })?;
        if key.revoked_at.is_some() {
            Err(ServiceError::Unauthenticated)
        } else {
            Ok(Caller::ApiKey(key))
        }
    }

    /// The API key of the caller, if it grants `scope`.
    pub(crate) fn require_key(caller: &Caller, scope: Scope) -> Result<&ApiKey, ServiceError> {
        match caller {
            Caller::ApiKey(key) if key.allows(scope) => Ok(key),
            Caller::ApiKey(_) => Err(ServiceError::MissingScope(scope)),
            Caller::Participant(_) => Err(ServiceError::ApiKeyRequired),
        }
    }

    /// Reads a session the caller may see, settling lazy expiry. A key of another
    /// workspace or a participant of another session gets `NotFound`, so that
    /// existence does not leak.
    pub(crate) async fn visible_session(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<Session, ServiceError> {
        let session = self
            .store
            .session(id)
            .await
            .map_err(read_error(Resource::Session))?;
        match caller {
            Caller::ApiKey(key) => {
                if key.workspace_id != session.workspace_id {
                    return Err(ServiceError::NotFound(Resource::Session));
                }
                if !key.allows(Scope::SessionsRead) {
                    return Err(ServiceError::MissingScope(Scope::SessionsRead));
                }
            }
            Caller::Participant(participant) => {
                if participant.session_id != id {
                    return Err(ServiceError::NotFound(Resource::Session));
                }
            }
        }
        self.settle(session).await
    }

    /// The session and the acting participant, for a participant's write.
    pub(crate) async fn acting(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<(Session, Participant), ServiceError> {
        let Caller::Participant(participant) = caller else {
            return Err(ServiceError::ParticipantRequired);
        };
        let session = self.visible_session(caller, id).await?;
        // Re-read the participant: its role may have changed since authentication.
        let participant = self
            .store
            .participant(participant.id)
            .await
            .map_err(read_error(Resource::Participant))?;
        if !participant.is_present() {
            return Err(ServiceError::ParticipantGone);
        }
        Ok((session, participant))
    }

    /// Expires a session that reached a limit (lazy enforcement) and returns its
    /// current state; any other session comes back as it is.
    pub(crate) async fn settle(&self, session: Session) -> Result<Session, ServiceError> {
        let now = self.now();
        if session.expiry_due(now).is_none() {
            return Ok(session);
        }
        let mut current = session;
        for _ in 0..MAX_ATTEMPTS {
            // An error here means the session has ended meanwhile: report it as stored.
            let Ok(expired) = current.expire(now) else {
                return Ok(current);
            };
            match self.end_session(&current, expired).await {
                Err(ServiceError::Conflict) => {
                    current = self
                        .store
                        .session(current.id)
                        .await
                        .map_err(read_error(Resource::Session))?;
                }
                outcome => return outcome,
            }
        }
        // Still racing after several attempts: the session is due either way, and
        // `ensure_active` reports it as expired.
        Ok(current)
    }

    /// Ends `session` with the given transition (close, expire, terminate): cancels
    /// its queued and running prompts and their open permission requests, then
    /// writes `session.closed` as the session's last event.
    pub(crate) async fn end_session(
        &self,
        session: &Session,
        ended: Transition<Session>,
    ) -> Result<Session, ServiceError> {
        let now = self.now();
        let mut change = Change::new(session.id);
        for status in [PromptStatus::Running, PromptStatus::Queued] {
            let filter = PromptFilter {
                session_id: session.id,
                status: Some(status),
            };
            let prompts = self
                .store
                .prompts(&filter, Page::first(MAX_PROMPTS_ENDED))
                .await
                .map_err(ServiceError::Store)?;
            for prompt in prompts {
                for request in self
                    .store
                    .open_permission_requests(prompt.id)
                    .await
                    .map_err(ServiceError::Store)?
                {
                    let cancelled = request.cancel(now)?;
                    change = change
                        .write(Write::UpdatePermissionRequest(cancelled.state))
                        .events(cancelled.events);
                }
                let abandoned = prompt.abandon(now)?;
                change = change
                    .write(Write::UpdatePrompt(abandoned.state))
                    .events(abandoned.events);
            }
        }
        let change = change
            .write(Write::UpdateSession(ended.state.clone()))
            .events(ended.events);
        self.commit(change).await?;
        Ok(ended.state)
    }
}
