//! Prompts: one entity from a participant's request to the agent's result.
//!
//! ```text
//! pending_approval ──approve──> queued ──> running ──> completed | failed | cancelled
//!        │ reject ──> rejected                 (queued ──cancel──> cancelled)
//!        │ withdraw ──> withdrawn
//! ```

use chrono::{DateTime, Utc};

use crate::Transition;
use crate::access::{self, Action, PromptAdmission};
use crate::enums::string_enum;
use crate::error::DomainError;
use crate::event::{Actor, AgentOutput, EventPayload, NewEvent, PromptSnapshot};
use crate::ids::{ParticipantId, PromptId, SessionId};
use crate::participant::Participant;
use crate::payload_types::payload_types;
use crate::redaction::Redactions;
use crate::session::Session;
use crate::text::PromptText;

payload_types! {
    $ __payload_types_prompt;

    string_enum! {
        /// Where a prompt is in its lifecycle.
        PromptStatus("prompt status") {
            PendingApproval => "pending_approval",
            Queued => "queued",
            Running => "running",
            Completed => "completed",
            Failed => "failed",
            Cancelled => "cancelled",
            Rejected => "rejected",
            Withdrawn => "withdrawn",
        }
    }

    string_enum! {
        /// Why the agent ended a turn (the ACP stop reasons).
        StopReason("stop reason") {
            EndTurn => "end_turn",
            MaxTokens => "max_tokens",
            MaxTurnRequests => "max_turn_requests",
            Refusal => "refusal",
            Cancelled => "cancelled",
        }
    }
}

impl PromptStatus {
    /// Whether the status is final: a terminal prompt never changes again.
    pub const fn is_terminal(self) -> bool {
        match self {
            Self::PendingApproval | Self::Queued | Self::Running => false,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Rejected | Self::Withdrawn => {
                true
            }
        }
    }

    /// Whether the prompt reached the agent and finished there (it can be retried).
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// The longest error text kept on a failed prompt, in bytes.
pub const MAX_ERROR_BYTES: usize = 2048;

/// A prompt and everything that happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub id: PromptId,
    pub session_id: SessionId,
    pub author: ParticipantId,
    pub text: PromptText,
    pub status: PromptStatus,
    pub created_at: DateTime<Utc>,
    /// When the prompt entered the queue; prompts run in this order (then by id).
    pub queued_at: Option<DateTime<Utc>>,
    /// When and by whom the host approved or rejected it.
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<ParticipantId>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub stop_reason: Option<StopReason>,
    pub error: Option<String>,
    /// The finished prompt this one retries.
    pub retry_of: Option<PromptId>,
    /// Optimistic-concurrency version, bumped by the store on every update.
    pub version: u32,
}

/// What a cancel request does.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// A queued prompt is cancelled at once.
    Cancelled(Box<Transition<Prompt>>),
    /// A running prompt: the agent must be told to stop. The event
    /// (`prompt.cancel_requested`) tells the runner, on whichever replica; it
    /// records `prompt.cancelled` once the agent has stopped (see
    /// `Prompt::finish_cancelled`).
    StopAgent(NewEvent),
}

impl Prompt {
    /// `by` submits a prompt: queued at once or pending approval, per the matrix.
    pub fn submit(
        id: PromptId,
        session: &Session,
        by: &Participant,
        text: PromptText,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        by.ensure_can_act(session, now)?;
        let admission =
            access::prompt_admission(by.role, session.mode).ok_or(DomainError::Forbidden {
                action: Action::SubmitPrompt,
                role: by.role,
            })?;
        let (status, queued_at) = match admission {
            PromptAdmission::Direct => (PromptStatus::Queued, Some(now)),
            PromptAdmission::NeedsApproval => (PromptStatus::PendingApproval, None),
        };
        Ok(Self::submitted(
            id, session.id, by.id, text, status, queued_at, None, now,
        ))
    }

    /// `by` (the host) runs a finished prompt again: a new prompt, same text, queued.
    pub fn retry(
        &self,
        id: PromptId,
        session: &Session,
        by: &Participant,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_in(session, by, now)?;
        if !access::may_retry_prompt(by.role) {
            return Err(DomainError::Forbidden {
                action: Action::RetryPrompt,
                role: by.role,
            });
        }
        if !self.status.is_finished() {
            return Err(DomainError::PromptInvalidTransition {
                from: self.status,
                action: "retried",
            });
        }
        let text = self.text.clone();
        Ok(Self::submitted(
            id,
            session.id,
            by.id,
            text,
            PromptStatus::Queued,
            Some(now),
            Some(self.id),
            now,
        ))
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "private constructor shared by submit and retry"
    )]
    fn submitted(
        id: PromptId,
        session_id: SessionId,
        author: ParticipantId,
        text: PromptText,
        status: PromptStatus,
        queued_at: Option<DateTime<Utc>>,
        retry_of: Option<PromptId>,
        now: DateTime<Utc>,
    ) -> Transition<Self> {
        let prompt = Self {
            id,
            session_id,
            author,
            text,
            status,
            created_at: now,
            queued_at,
            resolved_at: None,
            resolved_by: None,
            started_at: None,
            finished_at: None,
            stop_reason: None,
            error: None,
            retry_of,
            version: 0,
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(author),
            EventPayload::PromptSubmitted(PromptSnapshot::of(&prompt)),
        );
        Transition::new(prompt, event)
    }

    /// The host approves a pending prompt; it joins the queue.
    pub fn approve(
        &self,
        session: &Session,
        by: &Participant,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_resolvable(session, by, now)?;
        let state = Self {
            status: PromptStatus::Queued,
            queued_at: Some(now),
            resolved_at: Some(now),
            resolved_by: Some(by.id),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(by.id),
            EventPayload::PromptApproved {
                prompt_id: self.id,
                approved_by: by.id,
            },
        );
        Ok(Transition::new(state, event))
    }

    /// The host rejects a pending prompt.
    pub fn reject(
        &self,
        session: &Session,
        by: &Participant,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_resolvable(session, by, now)?;
        let state = Self {
            status: PromptStatus::Rejected,
            resolved_at: Some(now),
            resolved_by: Some(by.id),
            finished_at: Some(now),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(by.id),
            EventPayload::PromptRejected {
                prompt_id: self.id,
                rejected_by: by.id,
            },
        );
        Ok(Transition::new(state, event))
    }

    /// The author withdraws their pending prompt.
    pub fn withdraw(
        &self,
        session: &Session,
        by: &Participant,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_in(session, by, now)?;
        if !access::may_withdraw_prompt(by.role, by.id == self.author) {
            return Err(DomainError::Forbidden {
                action: Action::WithdrawPrompt,
                role: by.role,
            });
        }
        self.ensure_pending()?;
        let state = Self {
            status: PromptStatus::Withdrawn,
            finished_at: Some(now),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(by.id),
            EventPayload::PromptWithdrawn { prompt_id: self.id },
        );
        Ok(Transition::new(state, event))
    }

    /// The author edits their pending prompt.
    pub fn edit(
        &self,
        session: &Session,
        by: &Participant,
        text: PromptText,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_in(session, by, now)?;
        if !access::may_edit_prompt(by.role, by.id == self.author) {
            return Err(DomainError::Forbidden {
                action: Action::EditPrompt,
                role: by.role,
            });
        }
        self.ensure_pending()?;
        let state = Self {
            text: text.clone(),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Participant(by.id),
            EventPayload::PromptEdited {
                prompt_id: self.id,
                text,
            },
        );
        Ok(Transition::new(state, event))
    }

    /// The host (any prompt) or the author (their own) cancels a queued or running prompt.
    pub fn cancel(
        &self,
        session: &Session,
        by: &Participant,
        now: DateTime<Utc>,
    ) -> Result<CancelOutcome, DomainError> {
        self.ensure_in(session, by, now)?;
        if !access::may_cancel_prompt(by.role, by.id == self.author) {
            return Err(DomainError::Forbidden {
                action: Action::CancelPrompt,
                role: by.role,
            });
        }
        match self.status {
            PromptStatus::Queued => Ok(CancelOutcome::Cancelled(Box::new(self.cancelled(
                Actor::Participant(by.id),
                Some(by.id),
                now,
            )))),
            PromptStatus::Running => Ok(CancelOutcome::StopAgent(NewEvent::new(
                now,
                Actor::Participant(by.id),
                EventPayload::PromptCancelRequested {
                    prompt_id: self.id,
                    requested_by: by.id,
                },
            ))),
            from @ (PromptStatus::PendingApproval
            | PromptStatus::Completed
            | PromptStatus::Failed
            | PromptStatus::Cancelled
            | PromptStatus::Rejected
            | PromptStatus::Withdrawn) => Err(DomainError::PromptInvalidTransition {
                from,
                action: "cancelled",
            }),
        }
    }

    /// The runner hands the queued prompt to the agent.
    pub fn start(&self, now: DateTime<Utc>) -> Result<Transition<Self>, DomainError> {
        self.ensure_status(PromptStatus::Queued, "started")?;
        let state = Self {
            status: PromptStatus::Running,
            started_at: Some(now),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Agent,
            EventPayload::PromptStarted { prompt_id: self.id },
        );
        Ok(Transition::new(state, event))
    }

    /// The agent's output for this running prompt, as an event.
    pub fn output(&self, output: AgentOutput, now: DateTime<Utc>) -> Result<NewEvent, DomainError> {
        self.ensure_status(PromptStatus::Running, "given output")?;
        Ok(NewEvent::new(
            now,
            Actor::Agent,
            EventPayload::AgentOutput(output),
        ))
    }

    /// The agent ended the turn. A `cancelled` stop reason records a cancellation.
    pub fn complete(
        &self,
        stop_reason: StopReason,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_status(PromptStatus::Running, "completed")?;
        if stop_reason == StopReason::Cancelled {
            return self.finish_cancelled(None, now);
        }
        let state = Self {
            status: PromptStatus::Completed,
            finished_at: Some(now),
            stop_reason: Some(stop_reason),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Agent,
            EventPayload::PromptCompleted {
                prompt_id: self.id,
                stop_reason,
            },
        );
        Ok(Transition::new(state, event))
    }

    /// The running prompt failed (agent error, crash, or an interrupted server).
    /// The error text is cut to `MAX_ERROR_BYTES`.
    pub fn fail(&self, error: &str, now: DateTime<Utc>) -> Result<Transition<Self>, DomainError> {
        self.fail_redacted(error, Redactions::none(), now)
    }

    /// Like [`Prompt::fail`], for an error text the redactor already went
    /// through (it may quote the agent): `redactions` says what it took out.
    pub fn fail_redacted(
        &self,
        error: &str,
        redactions: Redactions,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_status(PromptStatus::Running, "failed")?;
        let error = truncate(error, MAX_ERROR_BYTES);
        let state = Self {
            status: PromptStatus::Failed,
            finished_at: Some(now),
            error: Some(error.clone()),
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            Actor::Agent,
            EventPayload::PromptFailed {
                prompt_id: self.id,
                error,
                redactions,
            },
        );
        Ok(Transition::new(state, event))
    }

    /// The agent stopped a running prompt after a cancel; `by` is who asked.
    pub fn finish_cancelled(
        &self,
        by: Option<ParticipantId>,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        self.ensure_status(PromptStatus::Running, "cancelled")?;
        let actor = by.map_or(Actor::Agent, Actor::Participant);
        Ok(self.cancelled(actor, by, now))
    }

    /// The session ended: a queued or running prompt is cancelled by the system.
    pub fn abandon(&self, now: DateTime<Utc>) -> Result<Transition<Self>, DomainError> {
        match self.status {
            PromptStatus::Queued | PromptStatus::Running => {
                Ok(self.cancelled(Actor::System, None, now))
            }
            from @ (PromptStatus::PendingApproval
            | PromptStatus::Completed
            | PromptStatus::Failed
            | PromptStatus::Cancelled
            | PromptStatus::Rejected
            | PromptStatus::Withdrawn) => Err(DomainError::PromptInvalidTransition {
                from,
                action: "abandoned",
            }),
        }
    }

    fn cancelled(
        &self,
        actor: Actor,
        by: Option<ParticipantId>,
        now: DateTime<Utc>,
    ) -> Transition<Self> {
        let stop_reason = (self.status == PromptStatus::Running).then_some(StopReason::Cancelled);
        let state = Self {
            status: PromptStatus::Cancelled,
            finished_at: Some(now),
            stop_reason,
            ..self.clone()
        };
        let event = NewEvent::new(
            now,
            actor,
            EventPayload::PromptCancelled {
                prompt_id: self.id,
                cancelled_by: by,
            },
        );
        Transition::new(state, event)
    }

    fn ensure_in(
        &self,
        session: &Session,
        by: &Participant,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        if self.session_id != session.id {
            return Err(DomainError::WrongSession);
        }
        by.ensure_can_act(session, now)
    }

    fn ensure_resolvable(
        &self,
        session: &Session,
        by: &Participant,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        self.ensure_in(session, by, now)?;
        if !access::may_resolve_prompt(by.role) {
            return Err(DomainError::Forbidden {
                action: Action::ResolvePrompt,
                role: by.role,
            });
        }
        self.ensure_pending()
    }

    fn ensure_pending(&self) -> Result<(), DomainError> {
        if self.status == PromptStatus::PendingApproval {
            Ok(())
        } else {
            Err(DomainError::PromptAlreadyResolved(self.status))
        }
    }

    fn ensure_status(
        &self,
        expected: PromptStatus,
        action: &'static str,
    ) -> Result<(), DomainError> {
        if self.status == expected {
            Ok(())
        } else {
            Err(DomainError::PromptInvalidTransition {
                from: self.status,
                action,
            })
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
