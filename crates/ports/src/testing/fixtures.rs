//! Builders of realistic domain data for tests: sessions with their host and
//! invite, participants, prompts, all made with the domain's own transitions.

use chrono::{DateTime, TimeDelta, Utc};
use tandem_domain::{
    Created, DisplayName, InviteId, Joined, Joiner, Participant, ParticipantId, PromptId,
    PromptText, Session, SessionId, SessionSettings, TextLimits, WorkspaceId,
};
use uuid::Uuid;

use crate::{Change, TokenHash, Write};

/// A fixed instant all fixtures start from (whole microseconds).
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T09:00:00.123456Z")
        .map_or_else(|_| Utc::now(), |t| t.to_utc())
}

/// `t0` plus `secs` seconds.
pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

/// A unique token hash (two `UUIDv7`s side by side).
pub fn token() -> TokenHash {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::now_v7().as_bytes());
    bytes[16..].copy_from_slice(Uuid::now_v7().as_bytes());
    TokenHash::from_bytes(bytes)
}

/// A display name.
pub fn name(text: &str) -> DisplayName {
    DisplayName::parse(text, &TextLimits::DEFAULT)
        .unwrap_or_else(|e| panic!("bad fixture name: {e}"))
}

/// A prompt text.
pub fn prompt_text(text: &str) -> PromptText {
    PromptText::parse(text, &TextLimits::DEFAULT)
        .unwrap_or_else(|e| panic!("bad fixture prompt: {e}"))
}

/// A new prompt id.
pub fn prompt_id() -> PromptId {
    PromptId::from_uuid(Uuid::now_v7())
}

/// A session being created, with the tokens of its host and invite.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub created: Created,
    pub host_token: TokenHash,
    pub invite_token: TokenHash,
}

impl NewSession {
    /// The change that stores the session, its host and its invite.
    pub fn change(&self) -> Change {
        Change::new(self.created.session.id)
            .write(Write::InsertSession(self.created.session.clone()))
            .write(Write::InsertParticipant {
                participant: self.created.host.clone(),
                token_hash: self.host_token,
            })
            .write(Write::InsertInvite {
                invite: self.created.invite.clone(),
                token_hash: self.invite_token,
            })
            .events(self.created.events.clone())
            .activity(self.created.session.created_at)
    }
}

/// A session of `workspace` created at `now` with `settings`.
pub fn session_with(workspace: &str, settings: SessionSettings, now: DateTime<Utc>) -> NewSession {
    let created = Session::create(
        SessionId::from_uuid(Uuid::now_v7()),
        WorkspaceId::parse(workspace).unwrap_or_else(|e| panic!("bad fixture workspace: {e}")),
        settings,
        Joiner {
            id: ParticipantId::from_uuid(Uuid::now_v7()),
            display_name: name("Host"),
            user_id: None,
        },
        InviteId::from_uuid(Uuid::now_v7()),
        now,
    );
    NewSession {
        created,
        host_token: token(),
        invite_token: token(),
    }
}

/// A default session of workspace `default`, created at `t0`.
pub fn session() -> NewSession {
    session_with("default", SessionSettings::default(), t0())
}

/// `display_name` joins `session` through its first invite at `now`; returns the
/// participant (with the updated invite) and the change that stores it.
pub fn join(created: &Created, display_name: &str, now: DateTime<Utc>) -> (Joined, Change) {
    let joined = Participant::join(
        &created.session,
        &created.invite,
        Joiner {
            id: ParticipantId::from_uuid(Uuid::now_v7()),
            display_name: name(display_name),
            user_id: None,
        },
        now,
    )
    .unwrap_or_else(|e| panic!("fixture join failed: {e}"));
    let change = Change::new(created.session.id)
        .write(Write::InsertParticipant {
            participant: joined.participant.clone(),
            token_hash: token(),
        })
        .write(Write::RedeemInvite(joined.invite.clone()))
        .events(joined.events.clone())
        .activity(now);
    (joined, change)
}
