//! Sessions: a shared agent session, its mode, its lifetime and how it ends.

use chrono::{DateTime, Utc};

use crate::access::{self, Action};
use crate::duration::Ttl;
use crate::enums::string_enum;
use crate::error::DomainError;
use crate::event::{Actor, EventPayload, NewEvent, ParticipantSnapshot, SessionSnapshot};
use crate::ids::{AgentProfileName, InviteId, SessionId, UserId, WorkspaceId};
use crate::invite::Invite;
use crate::participant::{Joiner, Participant};
use crate::payload_types::payload_types;
use crate::text::{Summary, Title};
use crate::{Seq, Transition};

payload_types! {
    $ __payload_types_session;

    string_enum! {
        /// What collaborators may do in a session (see `access`).
        SessionMode("mode") {
            ViewOnly => "view_only",
            CommentOnly => "comment_only",
            PromptWithApproval => "prompt_with_approval",
            PromptDirect => "prompt_direct",
        }
    }

    string_enum! {
        /// Where a session is in its life. Every status but `active` is final.
        SessionStatus("status") {
            Active => "active",
            Closed => "closed",
            Expired => "expired",
            Terminated => "terminated",
        }
    }

    string_enum! {
        /// Why a session ended.
        CloseReason("close reason") {
            /// The host closed it.
            ClosedByHost => "closed_by_host",
            /// Its absolute `expires_at` passed.
            Expired => "expired",
            /// No activity for its idle timeout.
            IdleTimeout => "idle_timeout",
            /// An admin force-ended it.
            Terminated => "terminated",
        }
    }

    string_enum! {
        /// How the agent's requests to run tools are answered.
        PermissionPolicy("permission policy") {
            /// Everyone sees the request and the host answers; no answer in time rejects.
            AskHost => "ask_host",
            /// Every request is allowed (and still recorded).
            AllowAll => "allow_all",
            /// Every request is rejected (and still recorded).
            RejectAll => "reject_all",
        }
    }
}

#[expect(
    clippy::derivable_impls,
    reason = "string_enum! variants cannot carry #[default]"
)]
impl Default for SessionMode {
    fn default() -> Self {
        Self::PromptWithApproval
    }
}

impl CloseReason {
    /// The final status a session ends in for this reason.
    pub const fn status(self) -> SessionStatus {
        match self {
            Self::ClosedByHost => SessionStatus::Closed,
            Self::Expired | Self::IdleTimeout => SessionStatus::Expired,
            Self::Terminated => SessionStatus::Terminated,
        }
    }
}

#[expect(
    clippy::derivable_impls,
    reason = "string_enum! variants cannot carry #[default]"
)]
impl Default for PermissionPolicy {
    fn default() -> Self {
        Self::AskHost
    }
}

/// How a session ended: set once, never changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    pub reason: CloseReason,
    pub at: DateTime<Utc>,
    pub summary: Option<Summary>,
}

/// A shared agent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub workspace_id: WorkspaceId,
    pub title: Title,
    pub host_user_id: Option<UserId>,
    pub agent_profile: AgentProfileName,
    /// The agent's own id for the session, once an agent was started.
    pub agent_session_id: Option<String>,
    pub mode: SessionMode,
    pub permission_policy: PermissionPolicy,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub idle_timeout: Ttl,
    /// The last participant write or agent output; maintained by the store.
    pub last_activity_at: DateTime<Utc>,
    /// `None` while active.
    pub end: Option<SessionEnd>,
    /// The highest event `seq` written; maintained by the store.
    pub last_seq: Seq,
    /// Optimistic-concurrency version, bumped by the store on every update.
    pub version: u32,
}

/// The creator's choices for a new session; every field has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    pub title: Title,
    pub mode: SessionMode,
    pub agent_profile: AgentProfileName,
    pub permission_policy: PermissionPolicy,
    pub expires_in: Ttl,
    pub idle_timeout: Ttl,
    pub host_user_id: Option<UserId>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            title: Title::untitled(),
            mode: SessionMode::default(),
            agent_profile: AgentProfileName::default_profile(),
            permission_policy: PermissionPolicy::default(),
            expires_in: Ttl::DEFAULT_EXPIRES_IN,
            idle_timeout: Ttl::DEFAULT_IDLE_TIMEOUT,
            host_user_id: None,
        }
    }
}

/// A new session with its host and its first (collaborator) invite.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub session: Session,
    pub host: Participant,
    pub invite: Invite,
    pub events: Vec<NewEvent>,
}

/// The host's changes to a session; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionPatch {
    pub title: Option<Title>,
    pub mode: Option<SessionMode>,
    pub permission_policy: Option<PermissionPolicy>,
    /// Sets `expires_at` to now + this, within the session's maximum lifetime.
    pub expires_in: Option<Ttl>,
}

impl Session {
    /// Creates a session, its host participant and its collaborator invite.
    pub fn create(
        id: SessionId,
        workspace_id: WorkspaceId,
        settings: SessionSettings,
        host: Joiner,
        invite_id: InviteId,
        now: DateTime<Utc>,
    ) -> Created {
        let session = Self {
            id,
            workspace_id,
            title: settings.title,
            host_user_id: settings.host_user_id,
            agent_profile: settings.agent_profile,
            agent_session_id: None,
            mode: settings.mode,
            permission_policy: settings.permission_policy,
            created_at: now,
            expires_at: now + settings.expires_in.as_delta(),
            idle_timeout: settings.idle_timeout,
            last_activity_at: now,
            end: None,
            last_seq: Seq::ZERO,
            version: 0,
        };
        let host = Participant::host(id, host, now);
        let invite = Invite::initial(invite_id, id, now);
        let actor = Actor::Participant(host.id);
        let events = vec![
            NewEvent::new(
                now,
                actor,
                EventPayload::SessionCreated(SessionSnapshot::of(&session, host.id)),
            ),
            NewEvent::new(
                now,
                actor,
                EventPayload::ParticipantJoined(ParticipantSnapshot::of(&host)),
            ),
        ];
        Created {
            session,
            host,
            invite,
            events,
        }
    }

    /// The session's status; `active` until it ends.
    pub fn status(&self) -> SessionStatus {
        self.end
            .as_ref()
            .map_or(SessionStatus::Active, |end| end.reason.status())
    }

    /// The latest moment the session may be extended to.
    pub fn max_expires_at(&self) -> DateTime<Utc> {
        self.created_at + Ttl::MAX.as_delta()
    }

    /// When the idle timeout will end the session, absent new activity.
    pub fn idle_deadline(&self) -> DateTime<Utc> {
        self.last_activity_at + self.idle_timeout.as_delta()
    }

    /// Which limit, if any, has ended this active session at `now`: the absolute
    /// expiry first, then the idle timeout. `None` for a session that has ended.
    pub fn expiry_due(&self, now: DateTime<Utc>) -> Option<CloseReason> {
        if self.end.is_some() {
            return None;
        }
        if now >= self.expires_at {
            Some(CloseReason::Expired)
        } else if now >= self.idle_deadline() {
            Some(CloseReason::IdleTimeout)
        } else {
            None
        }
    }

    /// Succeeds only for an active session that is not due to expire at `now`; a
    /// due session reports `expired` (lazy enforcement: the caller then expires it).
    pub fn ensure_active(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        match (self.status(), self.expiry_due(now)) {
            (SessionStatus::Active, None) => Ok(()),
            (SessionStatus::Active, Some(reason)) => {
                Err(DomainError::SessionInactive(reason.status()))
            }
            (
                status @ (SessionStatus::Closed
                | SessionStatus::Expired
                | SessionStatus::Terminated),
                _,
            ) => Err(DomainError::SessionInactive(status)),
        }
    }

    /// The host changes title, mode, permission policy or expiry.
    pub fn update(
        &self,
        by: &Participant,
        patch: SessionPatch,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_host(by, now)?;
        let expires_at = match patch.expires_in {
            Some(ttl) => {
                let at = now + ttl.as_delta();
                if at > self.max_expires_at() {
                    return Err(DomainError::ExpiryBeyondMax);
                }
                at
            }
            None => self.expires_at,
        };
        let state = Self {
            title: patch.title.unwrap_or_else(|| self.title.clone()),
            mode: patch.mode.unwrap_or(self.mode),
            permission_policy: patch.permission_policy.unwrap_or(self.permission_policy),
            expires_at,
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(by.id),
            EventPayload::SessionUpdated {
                title: state.title.clone(),
                mode: state.mode,
                permission_policy: state.permission_policy,
                expires_at: state.expires_at,
            },
        );
        Ok(Transition::new(state, event))
    }

    /// The host closes the session, with an optional summary.
    pub fn close(
        &self,
        by: &Participant,
        summary: Option<Summary>,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_host(by, now)?;
        Ok(self.end_with(
            CloseReason::ClosedByHost,
            summary,
            Actor::Participant(by.id),
            now,
        ))
    }

    /// Ends a session that reached one of its limits.
    pub fn expire(&self, now: DateTime<Utc>) -> Result<Transition<Self>, DomainError> {
        if let Some(end) = &self.end {
            return Err(DomainError::SessionInactive(end.reason.status()));
        }
        let reason = self.expiry_due(now).ok_or(DomainError::SessionNotExpired)?;
        Ok(self.end_with(reason, None, Actor::System, now))
    }

    /// An admin force-ends the session; `actor` is the admin's credential.
    pub fn terminate(
        &self,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        if let Some(end) = &self.end {
            return Err(DomainError::SessionInactive(end.reason.status()));
        }
        Ok(self.end_with(CloseReason::Terminated, None, actor, now))
    }

    /// Records the agent's own session id once the agent started.
    #[must_use]
    pub fn attach_agent(&self, agent_session_id: String) -> Self {
        Self {
            agent_session_id: Some(agent_session_id),
            ..self.clone()
        }
    }

    fn end_with(
        &self,
        reason: CloseReason,
        summary: Option<Summary>,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Transition<Self> {
        let end = SessionEnd {
            reason,
            at: now,
            summary,
        };
        let event = NewEvent::new(
            now,
            actor,
            EventPayload::SessionClosed {
                status: reason.status(),
                reason,
                summary: end.summary.clone(),
            },
        );
        Transition::new(
            Self {
                end: Some(end),
                ..self.clone()
            },
            event,
        )
    }

    fn ensure_host(&self, by: &Participant, now: DateTime<Utc>) -> Result<(), DomainError> {
        by.ensure_can_act(self, now)?;
        if access::may_manage_session(by.role) {
            Ok(())
        } else {
            Err(DomainError::Forbidden {
                action: Action::ManageSession,
                role: by.role,
            })
        }
    }
}
