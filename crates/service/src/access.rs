//! Who may touch which session: authentication, visibility (a key sees its
//! workspace, a participant its session; anything else is "not found"), lazy
//! expiry, and ending a session with everything that must end with it.

use chrono::{DateTime, Utc};
use tandem_domain::{ApiKey, DomainError, Participant, Scope, Session, SessionId, Transition};
use tandem_ports::{Change, OpenWork, Plan, StoreError, Write};

use crate::Tandem;
use crate::credentials::{Caller, TokenKind, hash_token};
use crate::error::{Resource, ServiceError, missing_means, read_error};

impl Tandem {
    /// Recognises a bearer token: a present participant's or an API key's.
    /// Unknown tokens and revoked keys are `Unauthenticated`; a departed
    /// participant's token is `ParticipantGone`.
    ///
    /// A participant token that was recognised before is not looked up again:
    /// which participant a token belongs to never changes, and whether that
    /// participant is still present (and in which role) is read afresh by every
    /// use of the caller (`visible_session`, `acting`) in the same round trip as
    /// its session.
    pub async fn authenticate(&self, bearer: &str) -> Result<Caller, ServiceError> {
        let hash = hash_token(bearer);
        if bearer.starts_with(TokenKind::Participant.prefix()) {
            if let Some(participant) = self.known_tokens.get(&hash) {
                return Ok(Caller::Participant(participant));
            }
            let participant = self
                .store
                .participant_by_token(&hash)
                .await
                .map_err(missing_means(ServiceError::Unauthenticated))?;
            return if participant.is_present() {
                self.known_tokens.insert(hash, &participant);
                Ok(Caller::Participant(participant))
            } else {
                Err(ServiceError::ParticipantGone)
            };
        }
        let key = self
            .store
            .api_key_by_token(&hash)
            .await
            .map_err(missing_means(ServiceError::Unauthenticated))?;
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
    /// A participant who left or was removed gets `ParticipantGone`.
    pub(crate) async fn visible_session(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<Session, ServiceError> {
        match caller {
            Caller::ApiKey(key) => {
                let session = self
                    .store
                    .session(id)
                    .await
                    .map_err(read_error(Resource::Session))?;
                if key.workspace_id != session.workspace_id {
                    return Err(ServiceError::NotFound(Resource::Session));
                }
                if !key.allows(Scope::SessionsRead) {
                    return Err(ServiceError::MissingScope(Scope::SessionsRead));
                }
                self.settle(session).await
            }
            Caller::Participant(_) => self.acting(caller, id).await.map(|(session, _)| session),
        }
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
        if participant.session_id != id {
            return Err(ServiceError::NotFound(Resource::Session));
        }
        // Both read afresh, in one round trip: the role may have changed, or the
        // participant left, since the caller was authenticated.
        let (session, participant) = self
            .store
            .session_with_participant(id, participant.id)
            .await
            .map_err(read_error(Resource::Session))?;
        if !participant.is_present() {
            return Err(ServiceError::ParticipantGone);
        }
        let session = self.settle(session).await?;
        Ok((session, participant))
    }

    /// Expires a session that reached a limit (lazy enforcement) and returns its
    /// current state; any other session comes back as it is.
    pub(crate) async fn settle(&self, session: Session) -> Result<Session, ServiceError> {
        if session.expiry_due(self.now()).is_none() {
            return Ok(session);
        }
        match self.end_session(session.id, Session::expire).await {
            Ok(expired) => Ok(expired),
            // Someone else ended it first (or the clock moved back): report what is stored.
            Err(ServiceError::Rule(
                DomainError::SessionInactive(_) | DomainError::SessionNotExpired,
            )) => self
                .store
                .session(session.id)
                .await
                .map_err(read_error(Resource::Session)),
            Err(other) => Err(other),
        }
    }

    /// Expires active sessions past one of their limits, at most `limit` of them,
    /// and returns how many ended. The background sweeper calls this; listings call
    /// it first so that a status filter sees each session's real status.
    pub async fn expire_due_sessions(&self, limit: u32) -> Result<usize, ServiceError> {
        let due = self
            .store
            .sessions_due(self.now(), limit)
            .await
            .map_err(ServiceError::Store)?;
        let mut ended = 0;
        for session in due {
            if self.settle(session).await?.end.is_some() {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Ends a session (close, expire, terminate: `end` decides, from the session as
    /// locked). In the same transaction its queued and running prompts are
    /// cancelled with their open permission requests, and `session.closed` becomes
    /// the session's last event; nothing can be queued in between.
    pub(crate) async fn end_session<F>(
        &self,
        id: SessionId,
        end: F,
    ) -> Result<Session, ServiceError>
    where
        F: FnOnce(&Session, DateTime<Utc>) -> Result<Transition<Session>, DomainError> + Send,
    {
        let now = self.now();
        let mut ended = None;
        let slot = &mut ended;
        let plan: Plan<'_> = Box::new(move |work: OpenWork| {
            let transition = end(&work.session, now)?;
            let mut change = Change::new(work.session.id);
            for request in &work.permission_requests {
                let cancelled = request.cancel(now)?;
                change = change
                    .write(Write::UpdatePermissionRequest(cancelled.state))
                    .events(cancelled.events);
            }
            for prompt in &work.prompts {
                let abandoned = prompt.abandon(now)?;
                change = change
                    .write(Write::UpdatePrompt(abandoned.state))
                    .events(abandoned.events);
            }
            *slot = Some(transition.state.clone());
            Ok(Some(
                change
                    .write(Write::UpdateSession(transition.state))
                    .events(transition.events),
            ))
        });
        let events =
            self.store
                .apply_planned(id, plan)
                .await
                .map_err(|error| match error {
                    StoreError::Refused(rule) => ServiceError::Rule(rule),
                    StoreError::NotFound => ServiceError::NotFound(Resource::Session),
                    StoreError::SessionInactive | StoreError::Conflict => ServiceError::Conflict,
                    other @ (StoreError::Duplicate
                    | StoreError::LeaseLost
                    | StoreError::Backend(_)) => ServiceError::Store(other),
                })?;
        self.publish(id, &events);
        let mut session = ended.ok_or(ServiceError::Conflict)?;
        if let Some(last) = events.last() {
            session.last_seq = last.seq;
        }
        tracing::info!(session_id = %id, status = %session.status(), "session ended");
        Ok(session)
    }
}
