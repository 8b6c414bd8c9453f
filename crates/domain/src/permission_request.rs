//! Agent permission requests: the agent asks to run a tool, the session's policy
//! or its host decides (ACP `session/request_permission`).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::Transition;
use crate::access::{self, Action};
use crate::enums::string_enum;
use crate::error::DomainError;
use crate::event::{Actor, EventPayload, NewEvent};
use crate::ids::{ParticipantId, PermissionRequestId, PromptId, SessionId};
use crate::participant::Participant;
use crate::payload_types::payload_types;
use crate::prompt::{Prompt, PromptStatus};
use crate::redaction::Redactions;
use crate::session::{PermissionPolicy, Session};

payload_types! {
    $ __payload_types_permission_request;

    string_enum! {
        /// What choosing an option means (the ACP option kinds).
        PermissionOptionKind("permission option kind") {
            AllowOnce => "allow_once",
            AllowAlways => "allow_always",
            RejectOnce => "reject_once",
            RejectAlways => "reject_always",
        }
    }

    /// One answer the agent offers.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PermissionOption {
        pub id: String,
        pub name: String,
        pub kind: PermissionOptionKind,
    }

    /// The answer given back to the agent.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(
        tag = "outcome",
        rename_all = "snake_case",
        rename_all_fields = "camelCase"
    )]
    pub enum PermissionOutcome {
        /// One of the agent's options was chosen.
        Selected {
            // Named again for the HTTP adapter's schema, which does not read
            // `rename_all_fields`.
            #[serde(rename = "optionId")]
            option_id: String,
        },
        /// No option was chosen (the agent treats the tool call as refused).
        Cancelled,
    }

    string_enum! {
        /// Who or what resolved a permission request.
        PermissionCause("permission cause") {
            /// The host answered.
            Host => "host",
            /// The session's permission policy answered at once.
            Policy => "policy",
            /// Nobody answered before the deadline: rejected.
            Timeout => "timeout",
            /// The prompt ended (cancelled, failed, session closed) first.
            PromptEnded => "prompt_ended",
        }
    }
}

impl PermissionOptionKind {
    /// Whether choosing the option lets the tool run.
    pub const fn allows(self) -> bool {
        matches!(self, Self::AllowOnce | Self::AllowAlways)
    }
}

impl PermissionOutcome {
    /// The answer that refuses a tool call offering `options`: reject once if
    /// offered, else reject always; with no reject option, `Cancelled`.
    pub fn rejecting(options: &[PermissionOption]) -> Self {
        first_of(
            options,
            [
                PermissionOptionKind::RejectOnce,
                PermissionOptionKind::RejectAlways,
            ],
        )
        .unwrap_or(Self::Cancelled)
    }
}

/// The first option of the first of `kinds` offered, as chosen.
fn first_of(
    options: &[PermissionOption],
    kinds: [PermissionOptionKind; 2],
) -> Option<PermissionOutcome> {
    kinds.iter().find_map(|kind| {
        options
            .iter()
            .find(|option| option.kind == *kind)
            .map(|option| PermissionOutcome::Selected {
                option_id: option.id.clone(),
            })
    })
}

/// How a request was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionResolution {
    pub outcome: PermissionOutcome,
    pub cause: PermissionCause,
    pub by: Option<ParticipantId>,
    pub at: DateTime<Utc>,
}

/// The host's answer through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionAnswer {
    /// Choose the agent's option with this id.
    Select(String),
    /// Refuse: the agent's reject option if it offered one, otherwise no option.
    Reject,
}

/// What the agent asked and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRequest {
    pub id: PermissionRequestId,
    pub session_id: SessionId,
    pub prompt_id: PromptId,
    /// The agent's tool call, as the agent sent it.
    pub tool_call: serde_json::Value,
    pub options: Vec<PermissionOption>,
    pub created_at: DateTime<Utc>,
    /// When an unanswered request is rejected.
    pub deadline: DateTime<Utc>,
    pub resolution: Option<PermissionResolution>,
    /// Optimistic-concurrency version, bumped by the store on every update.
    pub version: u32,
}

/// The agent's request as it arrived (after redaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionAsk {
    pub id: PermissionRequestId,
    pub tool_call: serde_json::Value,
    pub options: Vec<PermissionOption>,
    /// How long the host has to answer under `ask_host`.
    pub timeout: TimeDelta,
    /// What was redacted from the tool call and options, for the event.
    pub redactions: Redactions,
}

impl PermissionRequest {
    /// Records the agent's request during a running prompt and applies the
    /// session's policy: under `allow_all` / `reject_all` it is resolved at once
    /// (and both events are still recorded, so nothing is approved silently).
    pub fn open(
        session: &Session,
        prompt: &Prompt,
        ask: PermissionAsk,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        if prompt.session_id != session.id {
            return Err(DomainError::WrongSession);
        }
        if prompt.status != PromptStatus::Running {
            return Err(DomainError::PromptInvalidTransition {
                from: prompt.status,
                action: "asked for permission",
            });
        }
        session.ensure_active(now)?;
        let request = Self {
            id: ask.id,
            session_id: session.id,
            prompt_id: prompt.id,
            tool_call: ask.tool_call,
            options: ask.options,
            created_at: now,
            deadline: now + ask.timeout,
            resolution: None,
            version: 0,
        };
        let requested = NewEvent::new(
            now,
            Actor::Agent,
            EventPayload::AgentPermissionRequested {
                request_id: request.id,
                prompt_id: request.prompt_id,
                tool_call: request.tool_call.clone(),
                options: request.options.clone(),
                deadline: request.deadline,
                redactions: ask.redactions,
            },
        );
        let outcome = match session.permission_policy {
            PermissionPolicy::AskHost => return Ok(Transition::new(request, requested)),
            PermissionPolicy::AllowAll => request.allow_outcome(),
            PermissionPolicy::RejectAll => request.reject_outcome(),
        };
        let resolved = request.resolved(outcome, PermissionCause::Policy, None, Actor::System, now);
        Ok(Transition {
            state: resolved.state,
            events: [vec![requested], resolved.events].concat(),
        })
    }

    /// The host answers an open request.
    pub fn answer(
        &self,
        session: &Session,
        by: &Participant,
        answer: PermissionAnswer,
        now: DateTime<Utc>,
    ) -> Result<Transition<Self>, DomainError> {
        if self.session_id != session.id {
            return Err(DomainError::WrongSession);
        }
        by.ensure_can_act(session, now)?;
        if !access::may_answer_permission(by.role) {
            return Err(DomainError::Forbidden {
                action: Action::AnswerPermission,
                role: by.role,
            });
        }
        self.ensure_open()?;
        let outcome = match answer {
            PermissionAnswer::Select(option_id) => {
                if !self.options.iter().any(|option| option.id == option_id) {
                    return Err(DomainError::UnknownPermissionOption);
                }
                PermissionOutcome::Selected { option_id }
            }
            PermissionAnswer::Reject => self.reject_outcome(),
        };
        Ok(self.resolved(
            outcome,
            PermissionCause::Host,
            Some(by.id),
            Actor::Participant(by.id),
            now,
        ))
    }

    /// No answer by the deadline: the request is rejected.
    pub fn time_out(&self, now: DateTime<Utc>) -> Result<Transition<Self>, DomainError> {
        self.ensure_open()?;
        if now < self.deadline {
            return Err(DomainError::PermissionNotDue);
        }
        Ok(self.resolved(
            self.reject_outcome(),
            PermissionCause::Timeout,
            None,
            Actor::System,
            now,
        ))
    }

    /// The prompt ended before anyone answered.
    pub fn cancel(&self, now: DateTime<Utc>) -> Result<Transition<Self>, DomainError> {
        self.ensure_open()?;
        Ok(self.resolved(
            PermissionOutcome::Cancelled,
            PermissionCause::PromptEnded,
            None,
            Actor::System,
            now,
        ))
    }

    /// Whether the request still waits for an answer.
    pub const fn is_open(&self) -> bool {
        self.resolution.is_none()
    }

    fn ensure_open(&self) -> Result<(), DomainError> {
        if self.is_open() {
            Ok(())
        } else {
            Err(DomainError::PermissionAlreadyResolved)
        }
    }

    fn first_of(&self, kinds: [PermissionOptionKind; 2]) -> Option<PermissionOutcome> {
        first_of(&self.options, kinds)
    }

    /// Allow once if offered, else allow always; with no allow option, nothing.
    fn allow_outcome(&self) -> PermissionOutcome {
        self.first_of([
            PermissionOptionKind::AllowOnce,
            PermissionOptionKind::AllowAlways,
        ])
        .unwrap_or(PermissionOutcome::Cancelled)
    }

    /// Reject once if offered, else reject always; with no reject option, nothing.
    fn reject_outcome(&self) -> PermissionOutcome {
        PermissionOutcome::rejecting(&self.options)
    }

    fn resolved(
        &self,
        outcome: PermissionOutcome,
        cause: PermissionCause,
        by: Option<ParticipantId>,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Transition<Self> {
        let resolution = PermissionResolution {
            outcome: outcome.clone(),
            cause,
            by,
            at: now,
        };
        let event = NewEvent::new(
            now,
            actor,
            EventPayload::AgentPermissionResolved {
                request_id: self.id,
                prompt_id: self.prompt_id,
                outcome,
                cause,
                resolved_by: by,
            },
        );
        Transition::new(
            Self {
                resolution: Some(resolution),
                ..self.clone()
            },
            event,
        )
    }
}
