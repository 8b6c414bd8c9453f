//! Participants: who is in a session, with which role, and until when.

use chrono::{DateTime, Utc};

use crate::Transition;
use crate::access::{self, Action};
use crate::enums::string_enum;
use crate::error::DomainError;
use crate::event::{Actor, EventPayload, NewEvent, ParticipantSnapshot};
use crate::ids::{ParticipantId, SessionId, UserId};
use crate::invite::{Invite, InviteRole};
use crate::payload_types::payload_types;
use crate::session::Session;
use crate::text::DisplayName;

payload_types! {
    $ __payload_types_participant;

    string_enum! {
        /// What a participant may do (see `access`).
        Role("role") {
            Host => "host",
            Collaborator => "collaborator",
            Viewer => "viewer",
        }
    }
}

/// One person's presence in one session. Each join creates a new participant with
/// its own token; a participant who left or was removed stays in the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub id: ParticipantId,
    pub session_id: SessionId,
    pub user_id: Option<UserId>,
    pub display_name: DisplayName,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    /// When the participant left or was removed; `None` while present.
    pub left_at: Option<DateTime<Utc>>,
    /// The host who removed the participant, if it was removed.
    pub removed_by: Option<ParticipantId>,
    /// Optimistic-concurrency version, bumped by the store on every update.
    pub version: u32,
}

/// Who joins: the fields of a new participant that come from the joiner.
#[derive(Debug, Clone)]
pub struct Joiner {
    pub id: ParticipantId,
    pub display_name: DisplayName,
    pub user_id: Option<UserId>,
}

/// The result of a join: the new participant and the invite with one more use.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub participant: Participant,
    pub invite: Invite,
    pub events: Vec<NewEvent>,
}

impl Participant {
    /// The host, created with its session.
    pub(crate) fn host(session_id: SessionId, joiner: Joiner, now: DateTime<Utc>) -> Self {
        Self {
            id: joiner.id,
            session_id,
            user_id: joiner.user_id,
            display_name: joiner.display_name,
            role: Role::Host,
            joined_at: now,
            left_at: None,
            removed_by: None,
            version: 0,
        }
    }

    /// Joins `session` through `invite`; the role comes from the invite, never from
    /// the joiner.
    pub fn join(
        session: &Session,
        invite: &Invite,
        joiner: Joiner,
        now: DateTime<Utc>,
    ) -> Result<Joined, DomainError> {
        if invite.session_id != session.id {
            return Err(DomainError::WrongSession);
        }
        session.ensure_active(now)?;
        let invite = invite.redeem(now)?;
        let participant = Self {
            id: joiner.id,
            session_id: session.id,
            user_id: joiner.user_id,
            display_name: joiner.display_name,
            role: invite.role.into(),
            joined_at: now,
            left_at: None,
            removed_by: None,
            version: 0,
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(participant.id),
            EventPayload::ParticipantJoined(ParticipantSnapshot::of(&participant)),
        );
        Ok(Joined {
            participant,
            invite,
            events: vec![event],
        })
    }

    /// Whether the participant is still in the session (its token works).
    pub const fn is_present(&self) -> bool {
        self.left_at.is_none()
    }

    /// Checks that this participant can act in `session` at `now`: same session,
    /// still present, session active.
    pub fn ensure_can_act(&self, session: &Session, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.session_id != session.id {
            return Err(DomainError::WrongSession);
        }
        if !self.is_present() {
            return Err(DomainError::ParticipantGone);
        }
        session.ensure_active(now)
    }

    /// Checks that this participant may manage the session (host-only reads, such
    /// as the invite list, which holds no secrets but is the host's business).
    pub fn ensure_host(&self) -> Result<(), DomainError> {
        if access::may_manage_session(self.role) {
            Ok(())
        } else {
            Err(DomainError::Forbidden {
                action: Action::ManageSession,
                role: self.role,
            })
        }
    }

    /// Leaves the session. The host closes it instead.
    pub fn leave(
        &self,
        session: &Session,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_can_act(session, now)?;
        if !access::may_leave(self.role) {
            return Err(DomainError::HostCannotLeave);
        }
        let state = Self {
            left_at: Some(now),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(self.id),
            EventPayload::ParticipantLeft {
                participant_id: self.id,
            },
        );
        Ok(Transition::new(state, event))
    }

    /// `by` (the host) removes this participant; its token stops working at once.
    pub fn remove(
        &self,
        session: &Session,
        by: &Self,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_managed_by(session, by, now)?;
        let state = Self {
            left_at: Some(now),
            removed_by: Some(by.id),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(by.id),
            EventPayload::ParticipantRemoved {
                participant_id: self.id,
                removed_by: by.id,
            },
        );
        Ok(Transition::new(state, event))
    }

    /// `by` (the host) gives this participant another (non-host) role.
    pub fn change_role(
        &self,
        session: &Session,
        by: &Self,
        role: InviteRole,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_managed_by(session, by, now)?;
        let role = Role::from(role);
        if role == self.role {
            return Err(DomainError::RoleUnchanged);
        }
        let state = Self {
            role,
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(by.id),
            EventPayload::ParticipantUpdated {
                participant_id: self.id,
                role,
            },
        );
        Ok(Transition::new(state, event))
    }

    fn ensure_managed_by(
        &self,
        session: &Session,
        by: &Self,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
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
        if self.role == Role::Host {
            return Err(DomainError::HostIsFixed);
        }
        if !self.is_present() {
            return Err(DomainError::ParticipantGone);
        }
        Ok(())
    }
}
