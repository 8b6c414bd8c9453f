//! Sample payloads of every event type, with the keys their `data` has: the
//! domain's own tests check their serde form, and the adapters' tests check
//! what they derive from the payload types (the HTTP adapter: each type's
//! `data` schema) against them. Only with the `testing` feature.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::event::{CommentSnapshot, ParticipantSnapshot, PromptSnapshot, SessionSnapshot};
use crate::{
    AgentOutput, AgentOutputKind, AgentProfileName, CloseReason, CommentId, CommentText,
    DisplayName, EventPayload, ParticipantId, PermissionCause, PermissionOption,
    PermissionOptionKind, PermissionOutcome, PermissionPolicy, PermissionRequestId, PromptId,
    PromptStatus, PromptText, Redactions, Role, SessionId, SessionMode, SessionStatus, StopReason,
    Summary, TextLimits, Title, Ttl,
};

/// A sample payload and the keys of its `data`.
pub type Sample = (EventPayload, &'static [&'static str]);

const MINUTE: i64 = 60;
const DAY: i64 = 24 * 60 * MINUTE;

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// The instant the samples happen at.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
        .expect("a valid RFC 3339 timestamp")
        .with_timezone(&Utc)
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

fn title(raw: &str) -> Title {
    Title::parse(raw, &TextLimits::DEFAULT).expect("a valid title")
}

fn prompt_text(raw: &str) -> PromptText {
    PromptText::parse(raw, &TextLimits::DEFAULT).expect("a valid prompt text")
}

fn comment_text(raw: &str) -> CommentText {
    CommentText::parse(raw, &TextLimits::DEFAULT).expect("a valid comment text")
}

fn summary(raw: &str) -> Summary {
    Summary::parse(raw, &TextLimits::DEFAULT).expect("a valid summary")
}

/// An option the agent offers, named after its kind.
pub fn option(id: &str, kind: PermissionOptionKind) -> PermissionOption {
    PermissionOption {
        id: id.to_owned(),
        name: format!("{kind} option"),
        kind,
    }
}

/// Every option kind, each "always" first, so a preference for "once" shows.
pub fn all_options() -> Vec<PermissionOption> {
    vec![
        option("allow-always", PermissionOptionKind::AllowAlways),
        option("reject-always", PermissionOptionKind::RejectAlways),
        option("allow-once", PermissionOptionKind::AllowOnce),
        option("reject-once", PermissionOptionKind::RejectOnce),
    ]
}

fn selected(option_id: &str) -> PermissionOutcome {
    PermissionOutcome::Selected {
        option_id: option_id.to_owned(),
    }
}

fn session_payloads() -> Vec<Sample> {
    let pid = ParticipantId::from_uuid(uuid(10));
    vec![
        (
            EventPayload::SessionCreated(SessionSnapshot {
                id: SessionId::from_uuid(uuid(1)),
                title: title("Demo"),
                mode: SessionMode::PromptWithApproval,
                permission_policy: PermissionPolicy::AskHost,
                agent_profile: AgentProfileName::default_profile(),
                host_participant_id: pid,
                created_at: t0(),
                expires_at: at(DAY),
                idle_timeout: Ttl::DEFAULT_IDLE_TIMEOUT,
            }),
            &[
                "agentProfile",
                "createdAt",
                "expiresAt",
                "hostParticipantId",
                "id",
                "idleTimeout",
                "mode",
                "permissionPolicy",
                "title",
            ],
        ),
        (
            EventPayload::SessionUpdated {
                title: title("Demo 2"),
                mode: SessionMode::PromptDirect,
                permission_policy: PermissionPolicy::AllowAll,
                expires_at: at(2 * DAY),
            },
            &["expiresAt", "mode", "permissionPolicy", "title"],
        ),
        (
            EventPayload::SessionClosed {
                status: SessionStatus::Closed,
                reason: CloseReason::ClosedByHost,
                summary: Some(summary("done")),
            },
            &["reason", "status", "summary"],
        ),
        (
            EventPayload::SessionClosed {
                status: SessionStatus::Expired,
                reason: CloseReason::IdleTimeout,
                summary: None,
            },
            &["reason", "status", "summary"],
        ),
    ]
}

fn participant_payloads() -> Vec<Sample> {
    let pid = ParticipantId::from_uuid(uuid(11));
    let host = ParticipantId::from_uuid(uuid(10));
    vec![
        (
            EventPayload::ParticipantJoined(ParticipantSnapshot {
                id: pid,
                display_name: DisplayName::parse("Cole", &TextLimits::DEFAULT).expect("valid"),
                role: Role::Collaborator,
                joined_at: t0(),
            }),
            &["displayName", "id", "joinedAt", "role"],
        ),
        (
            EventPayload::ParticipantLeft {
                participant_id: pid,
            },
            &["participantId"],
        ),
        (
            EventPayload::ParticipantUpdated {
                participant_id: pid,
                role: Role::Viewer,
            },
            &["participantId", "role"],
        ),
        (
            EventPayload::ParticipantRemoved {
                participant_id: pid,
                removed_by: host,
            },
            &["participantId", "removedBy"],
        ),
        (
            EventPayload::CommentPosted(CommentSnapshot {
                id: CommentId::from_uuid(uuid(60)),
                author_participant_id: pid,
                text: comment_text("hi"),
                created_at: t0(),
            }),
            &["authorParticipantId", "createdAt", "id", "text"],
        ),
    ]
}

fn prompt_payloads() -> Vec<Sample> {
    let prompt_id = PromptId::from_uuid(uuid(100));
    let pid = ParticipantId::from_uuid(uuid(11));
    let snapshot = PromptSnapshot {
        id: prompt_id,
        author_participant_id: pid,
        text: prompt_text("go"),
        status: PromptStatus::Queued,
        created_at: t0(),
        retry_of: None,
    };
    vec![
        (
            EventPayload::PromptSubmitted(snapshot.clone()),
            &["authorParticipantId", "createdAt", "id", "status", "text"],
        ),
        (
            EventPayload::PromptSubmitted(PromptSnapshot {
                retry_of: Some(PromptId::from_uuid(uuid(99))),
                ..snapshot
            }),
            &[
                "authorParticipantId",
                "createdAt",
                "id",
                "retryOf",
                "status",
                "text",
            ],
        ),
        (
            EventPayload::PromptEdited {
                prompt_id,
                text: prompt_text("go faster"),
            },
            &["promptId", "text"],
        ),
        (
            EventPayload::PromptApproved {
                prompt_id,
                approved_by: pid,
            },
            &["approvedBy", "promptId"],
        ),
        (
            EventPayload::PromptRejected {
                prompt_id,
                rejected_by: pid,
            },
            &["promptId", "rejectedBy"],
        ),
        (EventPayload::PromptWithdrawn { prompt_id }, &["promptId"]),
        (EventPayload::PromptStarted { prompt_id }, &["promptId"]),
        (
            EventPayload::PromptCancelRequested {
                prompt_id,
                requested_by: pid,
            },
            &["promptId", "requestedBy"],
        ),
        (
            EventPayload::PromptCompleted {
                prompt_id,
                stop_reason: StopReason::MaxTokens,
            },
            &["promptId", "stopReason"],
        ),
        (
            EventPayload::PromptFailed {
                prompt_id,
                error: "boom".to_owned(),
                redactions: Redactions::none(),
            },
            &["error", "promptId"],
        ),
        (
            EventPayload::PromptFailed {
                prompt_id,
                error: "exit 1: token=[REDACTED:github_token]".to_owned(),
                redactions: redactions(&[("github_token", 1)]),
            },
            &["error", "promptId", "redactions"],
        ),
        (
            EventPayload::PromptCancelled {
                prompt_id,
                cancelled_by: Some(pid),
            },
            &["cancelledBy", "promptId"],
        ),
        (
            EventPayload::PromptCancelled {
                prompt_id,
                cancelled_by: None,
            },
            &["cancelledBy", "promptId"],
        ),
    ]
}

fn redactions(counts: &[(&str, u32)]) -> Redactions {
    let mut redactions = Redactions::none();
    for (kind, count) in counts {
        redactions.add(kind, *count);
    }
    redactions
}

fn agent_payloads() -> Vec<Sample> {
    let prompt_id = PromptId::from_uuid(uuid(100));
    let request_id = PermissionRequestId::from_uuid(uuid(500));
    vec![
        (
            EventPayload::AgentOutput(AgentOutput {
                prompt_id,
                kind: AgentOutputKind::Thought,
                text: Some("thinking".to_owned()),
                raw: json!({"sessionUpdate": "agent_thought_chunk", "snake_key": [1, 2]}),
                redactions: Redactions::none(),
            }),
            &["kind", "promptId", "raw", "text"],
        ),
        (
            EventPayload::AgentOutput(AgentOutput {
                prompt_id,
                kind: AgentOutputKind::Message,
                text: Some("key [REDACTED:aws_access_key]".to_owned()),
                raw: json!({"content": {"text": "key [REDACTED:aws_access_key]"}}),
                redactions: redactions(&[("aws_access_key", 1)]),
            }),
            &["kind", "promptId", "raw", "redactions", "text"],
        ),
        (
            EventPayload::AgentOutput(AgentOutput {
                prompt_id,
                kind: AgentOutputKind::Plan,
                text: None,
                raw: json!({"entries": []}),
                redactions: Redactions::none(),
            }),
            &["kind", "promptId", "raw"],
        ),
        (
            EventPayload::AgentPermissionRequested {
                request_id,
                prompt_id,
                tool_call: json!({"toolCallId": "c1", "raw_input": {"cmd": "ls"}}),
                options: all_options(),
                deadline: at(MINUTE),
                redactions: Redactions::none(),
            },
            &["deadline", "options", "promptId", "requestId", "toolCall"],
        ),
        (
            EventPayload::AgentPermissionResolved {
                request_id,
                prompt_id,
                outcome: selected("allow-once"),
                cause: PermissionCause::Host,
                resolved_by: Some(ParticipantId::from_uuid(uuid(10))),
            },
            &["cause", "outcome", "promptId", "requestId", "resolvedBy"],
        ),
        (
            EventPayload::AgentPermissionResolved {
                request_id,
                prompt_id,
                outcome: PermissionOutcome::Cancelled,
                cause: PermissionCause::Timeout,
                resolved_by: None,
            },
            &["cause", "outcome", "promptId", "requestId", "resolvedBy"],
        ),
    ]
}

/// The agent's session-level events (no prompt id).
fn agent_session_payloads() -> Vec<Sample> {
    use crate::{
        AgentCommand, AgentCommandsUpdated, AgentMode, AgentModeChangeFailed, AgentModeChanged,
        AgentModeId, AgentModeRequested, AgentStarted, AgentTitleChanged, Resumption, Workspace,
        WorkspaceKind,
    };
    let pid = ParticipantId::from_uuid(uuid(10));
    let plan = AgentModeId::parse("plan").expect("a mode id");
    let modes = vec![AgentMode {
        id: plan.clone(),
        name: "Plan".to_owned(),
        description: Some("Think first".to_owned()),
    }];
    vec![
        (
            EventPayload::AgentStarted(AgentStarted {
                agent_session_id: "s-1".to_owned(),
                resumption: Resumption::Fresh,
                load_session: false,
                workspace: Some(Workspace {
                    kind: WorkspaceKind::Worktree,
                    path: "/srv/w/1".to_owned(),
                    branch: Some("tandem/1".to_owned()),
                }),
                resume_error: Some("no such session".to_owned()),
            }),
            &[
                "agentSessionId",
                "loadSession",
                "resumeError",
                "resumption",
                "workspace",
            ],
        ),
        (
            EventPayload::AgentStarted(AgentStarted {
                agent_session_id: "s-2".to_owned(),
                resumption: Resumption::Loaded,
                load_session: true,
                workspace: None,
                resume_error: None,
            }),
            &["agentSessionId", "loadSession", "resumption", "workspace"],
        ),
        (
            EventPayload::AgentCommandsUpdated(AgentCommandsUpdated {
                commands: vec![AgentCommand {
                    name: "review".to_owned(),
                    description: "Review the diff".to_owned(),
                    input_hint: Some("what to focus on".to_owned()),
                }],
            }),
            &["commands"],
        ),
        (
            EventPayload::AgentModeRequested(AgentModeRequested {
                mode_id: plan.clone(),
                requested_by: pid,
            }),
            &["modeId", "requestedBy"],
        ),
        (
            EventPayload::AgentModeChanged(AgentModeChanged {
                current_mode_id: Some(plan.clone()),
                available_modes: modes,
                changed_by: Some(pid),
            }),
            &["availableModes", "changedBy", "currentModeId"],
        ),
        (
            EventPayload::AgentModeChangeFailed(AgentModeChangeFailed {
                mode_id: plan,
                requested_by: pid,
                error: "no".to_owned(),
            }),
            &["error", "modeId", "requestedBy"],
        ),
        (
            EventPayload::AgentTitleChanged(AgentTitleChanged {
                title: Some("Fixing the login test".to_owned()),
            }),
            &["title"],
        ),
        (
            EventPayload::AgentTitleChanged(AgentTitleChanged { title: None }),
            &["title"],
        ),
    ]
}

/// One sample of every event type, several where an optional field may be
/// sent or left out, each with the keys of its `data` in sorted order.
pub fn every_payload() -> Vec<Sample> {
    [
        session_payloads(),
        participant_payloads(),
        prompt_payloads(),
        agent_payloads(),
        agent_session_payloads(),
    ]
    .concat()
}
