//! Comments: what participants say to each other beside the agent's work.

use chrono::{DateTime, Utc};

use crate::Transition;
use crate::access::{self, Action};
use crate::error::DomainError;
use crate::event::{Actor, CommentSnapshot, EventPayload, NewEvent};
use crate::ids::{CommentId, ParticipantId, SessionId};
use crate::participant::Participant;
use crate::session::Session;
use crate::text::CommentText;

/// A comment; comments are never edited, so they carry no version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: CommentId,
    pub session_id: SessionId,
    pub author: ParticipantId,
    pub text: CommentText,
    pub created_at: DateTime<Utc>,
}

impl Comment {
    /// `by` posts a comment, if the matrix lets its role comment in this mode.
    pub fn post(
        id: CommentId,
        session: &Session,
        by: &Participant,
        text: CommentText,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        by.ensure_can_act(session, now)?;
        if !access::may_comment(by.role, session.mode) {
            return Err(DomainError::Forbidden {
                action: Action::Comment,
                role: by.role,
            });
        }
        let comment = Self {
            id,
            session_id: session.id,
            author: by.id,
            text,
            created_at: now,
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(by.id),
            EventPayload::CommentPosted(CommentSnapshot::of(&comment)),
        );
        Ok(Transition::new(comment, event))
    }
}
