//! Sessions: create, list, read, update, close, terminate.

use tandem_domain::{
    Actor, AgentProfileName, DisplayName, Invite, InviteId, Joiner, Participant, ParticipantId,
    PermissionPolicy, Scope, Session, SessionId, SessionMode, SessionPatch, SessionSettings,
    SessionStatus, Summary, Title, Ttl, UserId,
};
use tandem_ports::{Change, Page, SessionFilter, Write};
use uuid::Uuid;

use crate::credentials::{Caller, Secret, TokenKind};
use crate::error::{Resource, ServiceError, read_error};
use crate::{Tandem, retry_on_conflict};

/// How many due sessions one listing expires before it reads.
const EXPIRY_BATCH: u32 = 500;

/// A client's choices for a new session; `None` takes the default.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    pub title: Option<Title>,
    pub mode: Option<SessionMode>,
    pub agent_profile: Option<AgentProfileName>,
    pub permission_policy: Option<PermissionPolicy>,
    pub expires_in: Option<Ttl>,
    pub idle_timeout: Option<Ttl>,
    pub host_display_name: Option<DisplayName>,
    pub host_user_id: Option<UserId>,
}

/// A new session with the secrets its creator sees once.
#[derive(Debug)]
pub struct SessionCreated {
    pub session: Session,
    pub host: Participant,
    pub host_token: Secret,
    pub invite: Invite,
    pub invite_token: Secret,
}

/// A session with everyone who took part in it, and its agent.
#[derive(Debug, Clone)]
pub struct SessionDetails {
    pub session: Session,
    pub participants: Vec<Participant>,
    /// Where the agent works, what it offers; `None` until an agent started.
    pub agent: Option<tandem_domain::AgentState>,
}

/// A session as a listing shows it: with how many people are in it now.
#[derive(Debug, Clone)]
pub struct SessionOverview {
    pub session: Session,
    /// The participants present (not departed), the host included.
    pub present_participants: u32,
}

impl Tandem {
    /// Creates a session for the key's workspace (scope `sessions:write`), with its
    /// host participant and a collaborator invite.
    pub async fn create_session(
        &self,
        caller: &Caller,
        input: NewSession,
    ) -> Result<SessionCreated, ServiceError> {
        let key = Self::require_key(caller, Scope::SessionsWrite)?;
        let agent_profile = input
            .agent_profile
            .unwrap_or_else(|| self.config.default_agent_profile.clone());
        if !self.config.agent_profiles.contains(&agent_profile) {
            return Err(ServiceError::UnknownAgentProfile(agent_profile.to_string()));
        }
        let defaults = SessionSettings::default();
        let settings = SessionSettings {
            title: input.title.unwrap_or(defaults.title),
            mode: input.mode.unwrap_or(defaults.mode),
            agent_profile,
            permission_policy: input
                .permission_policy
                .unwrap_or(defaults.permission_policy),
            expires_in: input.expires_in.unwrap_or(defaults.expires_in),
            idle_timeout: input.idle_timeout.unwrap_or(defaults.idle_timeout),
            host_user_id: input.host_user_id.clone(),
        };
        let host_name = match input.host_display_name {
            Some(name) => name,
            None => DisplayName::parse("Host", &self.config.limits)?,
        };
        let created = Session::create(
            SessionId::from_uuid(Uuid::now_v7()),
            key.workspace_id.clone(),
            settings,
            Joiner {
                id: ParticipantId::from_uuid(Uuid::now_v7()),
                display_name: host_name,
                user_id: input.host_user_id,
            },
            InviteId::from_uuid(Uuid::now_v7()),
            self.now(),
        );
        let (host_token, host_hash) = Secret::generate(TokenKind::Participant);
        let (invite_token, invite_hash) = Secret::generate(TokenKind::Invite);
        let change = Change::new(created.session.id)
            .write(Write::InsertSession(created.session.clone()))
            .write(Write::InsertParticipant {
                participant: created.host.clone(),
                token_hash: host_hash,
            })
            .write(Write::InsertInvite {
                invite: created.invite.clone(),
                token_hash: invite_hash,
            })
            .events(created.events)
            .activity(created.session.created_at);
        let events = self.commit(change).await?;
        let mut session = created.session;
        if let Some(last) = events.last() {
            session.last_seq = last.seq;
        }
        tracing::info!(session_id = %session.id, workspace = %session.workspace_id, "session created");
        Ok(SessionCreated {
            session,
            host: created.host,
            host_token,
            invite: created.invite,
            invite_token,
        })
    }

    /// The key's workspace's sessions, newest first (scope `sessions:read`).
    pub async fn list_sessions(
        &self,
        caller: &Caller,
        status: Option<SessionStatus>,
        page: Page<SessionId>,
    ) -> Result<Vec<Session>, ServiceError> {
        let key = Self::require_key(caller, Scope::SessionsRead)?;
        // Settle lazy expiry first, so that the store's status filter and its page
        // cut see every session's real status.
        self.expire_due_sessions(EXPIRY_BATCH).await?;
        let filter = SessionFilter {
            workspace_id: key.workspace_id.clone(),
            status,
        };
        let sessions = self
            .store
            .sessions(&filter, page)
            .await
            .map_err(ServiceError::Store)?;
        let mut settled = Vec::with_capacity(sessions.len());
        for session in sessions {
            settled.push(self.settle(session).await?);
        }
        // Lazy expiry may have moved a listed session out of the requested status.
        settled.retain(|session| status.is_none_or(|status| session.status() == status));
        Ok(settled)
    }

    /// The key's workspace's sessions as [`Self::list_sessions`] lists them, each
    /// with its count of present participants (for a hosts' overview).
    pub async fn list_session_overviews(
        &self,
        caller: &Caller,
        status: Option<SessionStatus>,
        page: Page<SessionId>,
    ) -> Result<Vec<SessionOverview>, ServiceError> {
        let sessions = self.list_sessions(caller, status, page).await?;
        let mut overviews = Vec::with_capacity(sessions.len());
        for session in sessions {
            let participants = self
                .store
                .participants(session.id)
                .await
                .map_err(ServiceError::Store)?;
            let present = participants.iter().filter(|p| p.is_present()).count();
            overviews.push(SessionOverview {
                session,
                present_participants: u32::try_from(present).unwrap_or(u32::MAX),
            });
        }
        Ok(overviews)
    }

    /// A session with its participants: for its participants, and for keys of its
    /// workspace with `sessions:read`.
    pub async fn session_details(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<SessionDetails, ServiceError> {
        let session = self.visible_session(caller, id).await?;
        let participants = self
            .store
            .participants(id)
            .await
            .map_err(ServiceError::Store)?;
        let agent = self
            .store
            .agent_state(id)
            .await
            .map_err(ServiceError::Store)?;
        Ok(SessionDetails {
            session,
            participants,
            agent,
        })
    }

    /// The host changes title, mode, permission policy or expiry.
    pub async fn update_session(
        &self,
        caller: &Caller,
        id: SessionId,
        patch: SessionPatch,
    ) -> Result<Session, ServiceError> {
        retry_on_conflict!({
            let (session, host) = self.acting(caller, id).await?;
            let updated = session.update(&host, patch.clone(), self.now())?;
            let change = Change::new(id)
                .write(Write::UpdateSession(updated.state.clone()))
                .events(updated.events)
                .activity(self.now());
            self.commit(change).await.map(|_| updated.state)
        })
    }

    /// The host closes the session; its queued and running prompts are cancelled.
    pub async fn close_session(
        &self,
        caller: &Caller,
        id: SessionId,
        summary: Option<Summary>,
    ) -> Result<Session, ServiceError> {
        retry_on_conflict!({
            let (_, host) = self.acting(caller, id).await?;
            let summary = summary.clone();
            self.end_session(id, |session, now| session.close(&host, summary, now))
                .await
        })
    }

    /// An admin key of the session's workspace force-ends it.
    pub async fn terminate_session(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<Session, ServiceError> {
        let key = Self::require_key(caller, Scope::Admin)?;
        retry_on_conflict!({
            let session = self
                .store
                .session(id)
                .await
                .map_err(read_error(Resource::Session))?;
            if session.workspace_id != key.workspace_id {
                return Err(ServiceError::NotFound(Resource::Session));
            }
            // A session that already ran out is expired, not terminated.
            self.settle(session).await?;
            let actor = Actor::ApiKey(key.id);
            self.end_session(id, |session, now| session.terminate(actor, now))
                .await
        })
    }
}
