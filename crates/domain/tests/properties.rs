//! Property tests of the domain's rules:
//!
//! - the permission matrix: the outcome of every real transition, for every role,
//!   mode and authorship, equals an oracle written straight from DESIGN.md §2 (not
//!   from `access.rs`), so changing any rule there fails a test here;
//! - the prompt state machine: random operations by random actors keep every
//!   prompt in a legal state, moving only along the diagram's edges;
//! - value types: `Ttl` display/parse round trips and its 30-day cap; text values
//!   never exceed their limits.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::json;
use tandem_domain::prompt::MAX_ERROR_BYTES;
use tandem_domain::{
    Action, CancelOutcome, Comment, CommentId, CommentText, DisplayName, DomainError, EventPayload,
    Invite, InviteId, InviteRole, InviteSettings, Joiner, NewEvent, Participant, ParticipantId,
    PermissionAnswer, PermissionAsk, PermissionOption, PermissionOptionKind, PermissionRequest,
    PermissionRequestId, Prompt, PromptId, PromptStatus, PromptText, Role, Session, SessionId,
    SessionMode, SessionPatch, SessionSettings, StopReason, Summary, TextLimits, Title, Transition,
    Ttl, WorkspaceId,
};
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
        .expect("a valid RFC 3339 timestamp")
        .with_timezone(&Utc)
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn joiner(n: u128) -> Joiner {
    Joiner {
        id: ParticipantId::from_uuid(uuid(n)),
        display_name: DisplayName::parse(&format!("Participant {n}"), &TextLimits::DEFAULT)
            .expect("a valid display name"),
        user_id: None,
    }
}

fn prompt_text(raw: &str) -> PromptText {
    PromptText::parse(raw, &TextLimits::DEFAULT).expect("a valid prompt text")
}

fn invite_settings(role: InviteRole) -> InviteSettings {
    InviteSettings {
        role,
        max_uses: None,
        expires_in: None,
    }
}

fn mode_patch(mode: SessionMode) -> SessionPatch {
    SessionPatch {
        mode: Some(mode),
        ..SessionPatch::default()
    }
}

fn roles() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL)
}

fn modes() -> impl Strategy<Value = SessionMode> {
    prop::sample::select(SessionMode::ALL)
}

// ===========================================================================
// The permission matrix
// ===========================================================================

/// Every action of DESIGN.md §2's matrix, as the transitions that perform it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Comment,
    SubmitPrompt,
    Approve,
    Reject,
    Withdraw,
    Edit,
    Cancel,
    Retry,
    AnswerPermission,
    UpdateSession,
    CloseSession,
    CreateInvite,
    RevokeInvite,
    RemoveParticipant,
    ChangeRole,
    Leave,
}

const ACTS: [Act; 16] = [
    Act::Comment,
    Act::SubmitPrompt,
    Act::Approve,
    Act::Reject,
    Act::Withdraw,
    Act::Edit,
    Act::Cancel,
    Act::Retry,
    Act::AnswerPermission,
    Act::UpdateSession,
    Act::CloseSession,
    Act::CreateInvite,
    Act::RevokeInvite,
    Act::RemoveParticipant,
    Act::ChangeRole,
    Act::Leave,
];

/// What happens when a participant tries an action.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Allowed,
    /// A prompt admitted straight into the queue.
    RunsDirectly,
    /// A prompt admitted to wait for the host.
    WaitsForApproval,
    Forbidden(Action),
    HostCannotLeave,
    /// Any other refusal: never expected in these scenarios.
    Unexpected(DomainError),
}

/// DESIGN.md §2's permission matrix, transcribed cell by cell. `own` says whether
/// the prompt acted on is the actor's own.
fn oracle(act: Act, role: Role, mode: SessionMode, own: bool) -> Verdict {
    let host = role == Role::Host;
    let collaborator = role == Role::Collaborator;
    let allowed_or = |yes: bool, action| {
        if yes {
            Verdict::Allowed
        } else {
            Verdict::Forbidden(action)
        }
    };
    match act {
        // comment: host yes; collaborator if mode ≠ view_only; viewer no.
        Act::Comment => allowed_or(
            host || (collaborator && mode != SessionMode::ViewOnly),
            Action::Comment,
        ),
        // prompt: host runs directly; collaborator waits for approval in
        // prompt_with_approval, runs directly in prompt_direct, else no; viewer no.
        Act::SubmitPrompt => {
            if host || (collaborator && mode == SessionMode::PromptDirect) {
                Verdict::RunsDirectly
            } else if collaborator && mode == SessionMode::PromptWithApproval {
                Verdict::WaitsForApproval
            } else {
                Verdict::Forbidden(Action::SubmitPrompt)
            }
        }
        // approve / reject: host only.
        Act::Approve | Act::Reject => allowed_or(host, Action::ResolvePrompt),
        // withdraw own pending prompt: host and collaborator, their own only.
        Act::Withdraw => allowed_or((host || collaborator) && own, Action::WithdrawPrompt),
        // edit: "the author may edit their prompt while it is pending_approval".
        Act::Edit => allowed_or((host || collaborator) && own, Action::EditPrompt),
        // cancel a queued or running prompt: host any; collaborator own only.
        Act::Cancel => allowed_or(host || (collaborator && own), Action::CancelPrompt),
        // "the host may retry a finished prompt".
        Act::Retry => allowed_or(host, Action::RetryPrompt),
        // answer an agent permission request: host only.
        Act::AnswerPermission => allowed_or(host, Action::AnswerPermission),
        // change mode, invites, roles, remove participant, close: host only.
        Act::UpdateSession
        | Act::CloseSession
        | Act::CreateInvite
        | Act::RevokeInvite
        | Act::RemoveParticipant
        | Act::ChangeRole => allowed_or(host, Action::ManageSession),
        // leave: host no (close instead); collaborator and viewer yes.
        Act::Leave => {
            if host {
                Verdict::HostCannotLeave
            } else {
                Verdict::Allowed
            }
        }
    }
}

/// A session in `mode` with the actor in `role`, and one entity of each kind for
/// the actor to act on.
struct World {
    session: Session,
    host: Participant,
    actor: Participant,
    /// A viewer the actor may try to remove or promote (never the actor).
    target: Participant,
    invite: Invite,
    pending: Prompt,
    queued: Prompt,
    running: Prompt,
    completed: Prompt,
    request: PermissionRequest,
}

/// Builds the world through real transitions: the actor joins as `joined_as` and
/// is then given `role` by the host; the session starts in `prompt_with_approval`,
/// passes through the `history` of modes and ends in `mode`.
fn world(
    role: Role,
    joined_as: InviteRole,
    mode: SessionMode,
    history: &[SessionMode],
    own: bool,
) -> World {
    let created = Session::create(
        SessionId::from_uuid(uuid(1)),
        WorkspaceId::default_workspace(),
        SessionSettings::default(),
        joiner(10),
        InviteId::from_uuid(uuid(20)),
        t0(),
    );
    let (session, host, invite) = (created.session, created.host, created.invite);
    let join = |n, role| {
        let invite = Invite::create(
            InviteId::from_uuid(uuid(n + 1000)),
            &session,
            &host,
            invite_settings(role),
            t0(),
        )
        .expect("the host creates invites");
        Participant::join(&session, &invite, joiner(n), t0())
            .expect("joins")
            .participant
    };
    let other = join(11, InviteRole::Collaborator);
    let target = join(12, InviteRole::Viewer);
    let actor = match role {
        Role::Host => host.clone(),
        Role::Collaborator | Role::Viewer => {
            let joined = join(13, joined_as);
            if joined.role == role {
                joined
            } else {
                let new_role = if role == Role::Viewer {
                    InviteRole::Viewer
                } else {
                    InviteRole::Collaborator
                };
                joined
                    .change_role(&session, &host, new_role, t0())
                    .expect("the host changes roles")
                    .state
            }
        }
    };
    assert_eq!(actor.role, role);
    let (pending, queued, running, completed, request) = prompts(
        &session,
        &host,
        &other,
        if own { actor.id } else { other.id },
    );
    let mut session = session;
    for next in history.iter().copied().chain([mode]) {
        session = session
            .update(&host, mode_patch(next), t0())
            .expect("the host changes the mode")
            .state;
    }
    World {
        session,
        host,
        actor,
        target,
        invite,
        pending,
        queued,
        running,
        completed,
        request,
    }
}

/// One prompt in each status the matrix needs, all by `author`, and a permission
/// request of the running one.
fn prompts(
    session: &Session,
    host: &Participant,
    other: &Participant,
    author: ParticipantId,
) -> (Prompt, Prompt, Prompt, Prompt, PermissionRequest) {
    // Prompts by `other` (pending, as the session is still prompt_with_approval),
    // then handed to the actor when `own`.
    let submitted = Prompt::submit(
        PromptId::from_uuid(uuid(100)),
        session,
        other,
        prompt_text("refactor the parser"),
        t0(),
    )
    .expect("a collaborator prompts")
    .state;
    let pending = Prompt {
        author,
        ..submitted
    };
    let queued = pending
        .approve(session, host, t0())
        .expect("the host approves")
        .state;
    let running = queued.start(t0()).expect("starts").state;
    let completed = running
        .complete(StopReason::EndTurn, t0())
        .expect("completes")
        .state;
    let request = PermissionRequest::open(
        session,
        &running,
        PermissionAsk {
            id: PermissionRequestId::from_uuid(uuid(500)),
            tool_call: json!({"toolCallId": "call-1"}),
            options: vec![PermissionOption {
                id: "allow".to_owned(),
                name: "Allow".to_owned(),
                kind: PermissionOptionKind::AllowOnce,
            }],
            timeout: TimeDelta::minutes(5),
            redactions: tandem_domain::Redactions::none(),
        },
        t0(),
    )
    .expect("asks")
    .state;
    (pending, queued, running, completed, request)
}

fn verdict<T>(result: Result<T, DomainError>, role: Role, allowed: Verdict) -> Verdict {
    match result {
        Ok(_) => allowed,
        Err(DomainError::Forbidden { action, role: r }) if r == role => Verdict::Forbidden(action),
        Err(DomainError::HostCannotLeave) => Verdict::HostCannotLeave,
        Err(error) => Verdict::Unexpected(error),
    }
}

/// Performs `act` as the world's actor, through the real transition.
fn perform(w: &World, act: Act) -> Verdict {
    let (s, by, now) = (&w.session, &w.actor, at(1));
    let role = by.role;
    match act {
        Act::Comment => {
            let text = CommentText::parse("hi", &TextLimits::DEFAULT).expect("valid");
            verdict(
                Comment::post(CommentId::from_uuid(uuid(60)), s, by, text, now),
                role,
                Verdict::Allowed,
            )
        }
        Act::SubmitPrompt => {
            match Prompt::submit(
                PromptId::from_uuid(uuid(101)),
                s,
                by,
                prompt_text("go"),
                now,
            ) {
                Ok(t) if t.state.status == PromptStatus::Queued => Verdict::RunsDirectly,
                Ok(t) if t.state.status == PromptStatus::PendingApproval => {
                    Verdict::WaitsForApproval
                }
                result => verdict(result, role, Verdict::Allowed),
            }
        }
        Act::Approve => verdict(w.pending.approve(s, by, now), role, Verdict::Allowed),
        Act::Reject => verdict(w.pending.reject(s, by, now), role, Verdict::Allowed),
        Act::Withdraw => verdict(w.pending.withdraw(s, by, now), role, Verdict::Allowed),
        Act::Edit => verdict(
            w.pending.edit(s, by, prompt_text("better"), now),
            role,
            Verdict::Allowed,
        ),
        Act::Cancel => {
            // Queued and running prompts follow the same rule.
            let queued = verdict(w.queued.cancel(s, by, now), role, Verdict::Allowed);
            let running = verdict(w.running.cancel(s, by, now), role, Verdict::Allowed);
            if queued == running {
                queued
            } else {
                Verdict::Unexpected(DomainError::PromptInvalidTransition {
                    from: PromptStatus::Running,
                    action: "cancelled differently from a queued prompt",
                })
            }
        }
        Act::Retry => verdict(
            w.completed
                .retry(PromptId::from_uuid(uuid(102)), s, by, now),
            role,
            Verdict::Allowed,
        ),
        Act::AnswerPermission => verdict(
            w.request.answer(s, by, PermissionAnswer::Reject, now),
            role,
            Verdict::Allowed,
        ),
        Act::UpdateSession => verdict(
            s.update(by, mode_patch(SessionMode::CommentOnly), now),
            role,
            Verdict::Allowed,
        ),
        Act::CloseSession => verdict(s.close(by, None, now), role, Verdict::Allowed),
        Act::CreateInvite => verdict(
            Invite::create(
                InviteId::from_uuid(uuid(30)),
                s,
                by,
                invite_settings(InviteRole::Viewer),
                now,
            ),
            role,
            Verdict::Allowed,
        ),
        Act::RevokeInvite => verdict(w.invite.revoke(s, by, now), role, Verdict::Allowed),
        Act::RemoveParticipant => verdict(w.target.remove(s, by, now), role, Verdict::Allowed),
        Act::ChangeRole => verdict(
            w.target.change_role(s, by, InviteRole::Collaborator, now),
            role,
            Verdict::Allowed,
        ),
        Act::Leave => verdict(by.leave(s, now), role, Verdict::Allowed),
    }
}

#[test]
fn every_cell_of_the_matrix_matches_the_design() {
    let mut checked = 0;
    for role in Role::ALL.iter().copied() {
        for mode in SessionMode::ALL.iter().copied() {
            for own in [true, false] {
                let w = world(role, InviteRole::Collaborator, mode, &[], own);
                for act in ACTS {
                    assert_eq!(
                        perform(&w, act),
                        oracle(act, role, mode, own),
                        "{act:?} by a {role} in {mode} (own prompt: {own})"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 3 * 4 * 2 * ACTS.len());
}

#[test]
fn everyone_in_a_session_may_read_it() {
    for role in Role::ALL.iter().copied() {
        assert!(tandem_domain::access::may_read(role), "{role}");
    }
}

#[test]
fn the_matrix_world_holds_one_entity_in_each_state() {
    // The matrix tests rely on this: prompts that are not `own` belong to someone
    // else, and each entity is in the state its action needs.
    let w = world(
        Role::Host,
        InviteRole::Collaborator,
        SessionMode::ViewOnly,
        &[],
        false,
    );
    assert_ne!(w.pending.author, w.actor.id);
    assert_eq!(w.pending.status, PromptStatus::PendingApproval);
    assert_eq!(w.queued.status, PromptStatus::Queued);
    assert_eq!(w.running.status, PromptStatus::Running);
    assert_eq!(w.completed.status, PromptStatus::Completed);
    assert!(w.request.is_open());
    assert_eq!(w.target.role, Role::Viewer);
    assert_ne!(w.target.id, w.host.id);
}

proptest! {
    /// The verdict depends on the actor's current role and the session's current
    /// mode only, whatever role it joined with and whatever modes came before.
    #[test]
    fn the_matrix_follows_the_current_role_and_mode(
        act in prop::sample::select(ACTS.to_vec()),
        role in roles(),
        joined_as in prop::sample::select(InviteRole::ALL),
        mode in modes(),
        history in prop::collection::vec(modes(), 0..4),
        own in any::<bool>(),
    ) {
        let w = world(role, joined_as, mode, &history, own);
        prop_assert_eq!(w.session.mode, mode);
        prop_assert_eq!(perform(&w, act), oracle(act, role, mode, own));
    }
}

// ===========================================================================
// The prompt state machine
// ===========================================================================

/// Who attempts an operation on the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Host,
    /// The collaborator who wrote the prompt.
    Author,
    /// Another collaborator.
    Other,
    Viewer,
}

#[derive(Debug, Clone)]
enum Op {
    Approve(Who),
    Reject(Who),
    Withdraw(Who),
    Edit(Who),
    Cancel(Who),
    Retry(Who),
    Start,
    Output,
    Complete(StopReason),
    Fail(String),
    FinishCancelled(Option<Who>),
    Abandon,
}

fn who() -> impl Strategy<Value = Who> {
    prop::sample::select(vec![Who::Host, Who::Author, Who::Other, Who::Viewer])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        who().prop_map(Op::Approve),
        who().prop_map(Op::Reject),
        who().prop_map(Op::Withdraw),
        who().prop_map(Op::Edit),
        who().prop_map(Op::Cancel),
        who().prop_map(Op::Retry),
        Just(Op::Start),
        Just(Op::Output),
        prop::sample::select(StopReason::ALL).prop_map(Op::Complete),
        ".{0,1200}".prop_map(Op::Fail),
        prop::option::of(who()).prop_map(Op::FinishCancelled),
        Just(Op::Abandon),
    ]
}

struct Cast {
    session: Session,
    host: Participant,
    author: Participant,
    other: Participant,
    viewer: Participant,
}

impl Cast {
    fn new(mode: SessionMode) -> Self {
        let created = Session::create(
            SessionId::from_uuid(uuid(1)),
            WorkspaceId::default_workspace(),
            SessionSettings {
                mode,
                ..SessionSettings::default()
            },
            joiner(10),
            InviteId::from_uuid(uuid(20)),
            t0(),
        );
        let session = created.session;
        let author = Participant::join(&session, &created.invite, joiner(11), t0()).expect("joins");
        let other = Participant::join(&session, &author.invite, joiner(12), t0()).expect("joins");
        let viewers = Invite::create(
            InviteId::from_uuid(uuid(21)),
            &session,
            &created.host,
            invite_settings(InviteRole::Viewer),
            t0(),
        )
        .expect("creates");
        let viewer = Participant::join(&session, &viewers, joiner(13), t0()).expect("joins");
        Self {
            session,
            host: created.host,
            author: author.participant,
            other: other.participant,
            viewer: viewer.participant,
        }
    }

    fn get(&self, who: Who) -> &Participant {
        match who {
            Who::Host => &self.host,
            Who::Author => &self.author,
            Who::Other => &self.other,
            Who::Viewer => &self.viewer,
        }
    }
}

/// What a successful operation does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    /// The prompt moves to this status (possibly the same one, for an edit).
    To(PromptStatus),
    /// A running prompt: the agent is told to stop; the prompt does not change yet.
    StopAgent,
    /// An `agent.output` event; the prompt does not change.
    Output,
    /// A new prompt retrying this one; this one does not change.
    Retried,
}

/// The expected outcome of `op` on a prompt in `status`, from DESIGN.md §2's
/// diagram and matrix. The author is always a collaborator.
fn model(status: PromptStatus, op: &Op) -> Result<Effect, DomainError> {
    use PromptStatus::{Cancelled, Completed, Failed, PendingApproval, Queued, Running};
    let invalid = |action| {
        Err(DomainError::PromptInvalidTransition {
            from: status,
            action,
        })
    };
    let forbidden = |action, who| {
        Err(DomainError::Forbidden {
            action,
            role: match who {
                Who::Host => Role::Host,
                Who::Author | Who::Other => Role::Collaborator,
                Who::Viewer => Role::Viewer,
            },
        })
    };
    let pending_then = |to| {
        if status == PendingApproval {
            Ok(Effect::To(to))
        } else {
            Err(DomainError::PromptAlreadyResolved(status))
        }
    };
    let running_then = |to, action| {
        if status == Running {
            Ok(Effect::To(to))
        } else {
            invalid(action)
        }
    };
    match op {
        Op::Approve(who) | Op::Reject(who) if *who != Who::Host => {
            forbidden(Action::ResolvePrompt, *who)
        }
        Op::Approve(_) => pending_then(Queued),
        Op::Reject(_) => pending_then(PromptStatus::Rejected),
        Op::Withdraw(who) if *who != Who::Author => forbidden(Action::WithdrawPrompt, *who),
        Op::Withdraw(_) => pending_then(PromptStatus::Withdrawn),
        Op::Edit(who) if *who != Who::Author => forbidden(Action::EditPrompt, *who),
        Op::Edit(_) => pending_then(PendingApproval),
        Op::Cancel(who) if !matches!(who, Who::Host | Who::Author) => {
            forbidden(Action::CancelPrompt, *who)
        }
        Op::Cancel(_) if status == Queued => Ok(Effect::To(Cancelled)),
        Op::Cancel(_) if status == Running => Ok(Effect::StopAgent),
        Op::Cancel(_) => invalid("cancelled"),
        Op::Retry(who) if *who != Who::Host => forbidden(Action::RetryPrompt, *who),
        Op::Retry(_) if matches!(status, Completed | Failed | Cancelled) => Ok(Effect::Retried),
        Op::Retry(_) => invalid("retried"),
        Op::Start if status == Queued => Ok(Effect::To(Running)),
        Op::Start => invalid("started"),
        Op::Output if status == Running => Ok(Effect::Output),
        Op::Output => invalid("given output"),
        Op::Complete(StopReason::Cancelled) => running_then(Cancelled, "completed"),
        Op::Complete(_) => running_then(Completed, "completed"),
        Op::Fail(_) => running_then(Failed, "failed"),
        Op::FinishCancelled(_) => running_then(Cancelled, "cancelled"),
        Op::Abandon if matches!(status, Queued | Running) => Ok(Effect::To(Cancelled)),
        Op::Abandon => invalid("abandoned"),
    }
}

/// The edges of DESIGN.md §2's diagram (plus editing a pending prompt in place).
fn is_edge(from: PromptStatus, to: PromptStatus) -> bool {
    use PromptStatus::{
        Cancelled, Completed, Failed, PendingApproval, Queued, Rejected, Running, Withdrawn,
    };
    matches!(
        (from, to),
        (
            PendingApproval,
            PendingApproval | Queued | Rejected | Withdrawn
        ) | (Queued, Running | Cancelled)
            | (Running, Completed | Failed | Cancelled)
    )
}

/// The event type that announces a prompt reaching `status`.
fn event_type_for(status: PromptStatus) -> &'static str {
    match status {
        PromptStatus::PendingApproval => "prompt.edited",
        PromptStatus::Queued => "prompt.approved",
        PromptStatus::Running => "prompt.started",
        PromptStatus::Completed => "prompt.completed",
        PromptStatus::Failed => "prompt.failed",
        PromptStatus::Cancelled => "prompt.cancelled",
        PromptStatus::Rejected => "prompt.rejected",
        PromptStatus::Withdrawn => "prompt.withdrawn",
    }
}

/// What a real operation did, reduced to what the model predicts, plus the
/// prompt's new state and the events it emitted.
struct Outcome {
    effect: Effect,
    prompt: Prompt,
    events: Vec<NewEvent>,
}

fn from_transition(t: Transition<Prompt>) -> Outcome {
    Outcome {
        effect: Effect::To(t.state.status),
        prompt: t.state,
        events: t.events,
    }
}

fn apply(cast: &Cast, prompt: &Prompt, op: &Op, step: i64) -> Result<Outcome, DomainError> {
    let (s, now) = (&cast.session, at(step));
    let unchanged = |effect, events| Outcome {
        effect,
        prompt: prompt.clone(),
        events,
    };
    match op {
        Op::Approve(who) => prompt.approve(s, cast.get(*who), now).map(from_transition),
        Op::Reject(who) => prompt.reject(s, cast.get(*who), now).map(from_transition),
        Op::Withdraw(who) => prompt.withdraw(s, cast.get(*who), now).map(from_transition),
        Op::Edit(who) => {
            let text = prompt_text(&format!("edited at step {step}"));
            prompt
                .edit(s, cast.get(*who), text, now)
                .map(from_transition)
        }
        Op::Cancel(who) => prompt
            .cancel(s, cast.get(*who), now)
            .map(|outcome| match outcome {
                CancelOutcome::Cancelled(t) => from_transition(*t),
                CancelOutcome::StopAgent(event) => unchanged(Effect::StopAgent, vec![event]),
            }),
        Op::Retry(who) => prompt
            .retry(PromptId::from_uuid(uuid(900)), s, cast.get(*who), now)
            .map(|t| {
                assert_eq!(t.state.status, PromptStatus::Queued);
                assert_eq!(t.state.retry_of, Some(prompt.id));
                assert_eq!(t.state.text, prompt.text);
                assert_eq!(t.state.author, cast.host.id);
                unchanged(Effect::Retried, t.events)
            }),
        Op::Start => prompt.start(now).map(from_transition),
        Op::Output => {
            let output = tandem_domain::AgentOutput {
                prompt_id: prompt.id,
                kind: tandem_domain::AgentOutputKind::Message,
                text: Some("chunk".to_owned()),
                raw: json!({"sessionUpdate": "agent_message_chunk"}),
                redactions: tandem_domain::Redactions::none(),
            };
            prompt
                .output(output, now)
                .map(|event| unchanged(Effect::Output, vec![event]))
        }
        Op::Complete(reason) => prompt.complete(*reason, now).map(from_transition),
        Op::Fail(error) => prompt.fail(error, now).map(from_transition),
        Op::FinishCancelled(who) => prompt
            .finish_cancelled(who.map(|w| cast.get(w).id), now)
            .map(from_transition),
        Op::Abandon => prompt.abandon(now).map(from_transition),
    }
}

/// The invariants every reachable prompt satisfies.
fn check_invariants(p: &Prompt, first: &Prompt, host: ParticipantId) -> Result<(), TestCaseError> {
    use PromptStatus::{
        Cancelled, Completed, Failed, PendingApproval, Queued, Rejected, Running, Withdrawn,
    };
    // Identity never changes.
    prop_assert_eq!(p.id, first.id);
    prop_assert_eq!(p.session_id, first.session_id);
    prop_assert_eq!(p.author, first.author);
    prop_assert_eq!(p.created_at, first.created_at);
    prop_assert_eq!(p.retry_of, first.retry_of);
    // Per status.
    let status = p.status;
    prop_assert_eq!(p.finished_at.is_some(), status.is_terminal(), "{:?}", p);
    match status {
        PendingApproval | Withdrawn => {
            prop_assert!(p.queued_at.is_none() && p.started_at.is_none(), "{:?}", p);
            prop_assert!(
                p.resolved_by.is_none() && p.resolved_at.is_none(),
                "{:?}",
                p
            );
        }
        Rejected => {
            prop_assert!(p.queued_at.is_none() && p.started_at.is_none(), "{:?}", p);
            prop_assert_eq!(p.resolved_by, Some(host));
            prop_assert!(p.resolved_at.is_some());
        }
        Queued => prop_assert!(p.queued_at.is_some() && p.started_at.is_none(), "{:?}", p),
        Running | Completed | Failed => {
            prop_assert!(p.queued_at.is_some() && p.started_at.is_some(), "{:?}", p);
        }
        Cancelled => {
            prop_assert!(p.queued_at.is_some(), "{:?}", p);
            // Cancelled before the agent saw it: no stop reason; after: `cancelled`.
            prop_assert_eq!(
                p.stop_reason,
                p.started_at.map(|_| StopReason::Cancelled),
                "{:?}",
                p
            );
        }
    }
    if status == Completed {
        prop_assert!(
            p.stop_reason.is_some() && p.stop_reason != Some(StopReason::Cancelled),
            "{:?}",
            p
        );
    }
    prop_assert_eq!(p.error.is_some(), status == Failed, "{:?}", p);
    if let Some(error) = &p.error {
        prop_assert!(error.len() <= MAX_ERROR_BYTES);
    }
    prop_assert!(
        p.stop_reason.is_none() || matches!(status, Completed | Cancelled),
        "{:?}",
        p
    );
    if p.resolved_by.is_some() {
        prop_assert_eq!(p.resolved_by, Some(host));
    }
    // Time only moves forward along the lifecycle.
    let times = [Some(p.created_at), p.queued_at, p.started_at, p.finished_at];
    let set: Vec<_> = times.iter().flatten().collect();
    prop_assert!(set.windows(2).all(|w| w[0] <= w[1]), "{:?}", p);
    Ok(())
}

/// A failure keeps the longest prefix of the error that fits, cut on a character.
fn check_error_cut(input: &str, kept: &str) -> Result<(), TestCaseError> {
    prop_assert!(input.starts_with(kept));
    if input.len() <= MAX_ERROR_BYTES {
        prop_assert_eq!(kept, input);
    } else {
        let next = input[kept.len()..].chars().next().map_or(0, char::len_utf8);
        prop_assert!(kept.len() <= MAX_ERROR_BYTES && kept.len() + next > MAX_ERROR_BYTES);
    }
    Ok(())
}

fn check_step(
    cast: &Cast,
    before: &Prompt,
    op: &Op,
    result: Result<Outcome, DomainError>,
) -> Result<Prompt, TestCaseError> {
    let expected = model(before.status, op);
    let outcome = match (result, expected) {
        (Err(actual), Err(expected)) => {
            prop_assert_eq!(actual, expected, "{:?} on {:?}", op, before.status);
            return Ok(before.clone());
        }
        (Ok(outcome), Ok(expected)) => {
            prop_assert_eq!(
                &outcome.effect,
                &expected,
                "{:?} on {:?}",
                op,
                before.status
            );
            outcome
        }
        (actual, expected) => {
            let actual = actual.map(|o| o.effect);
            return Err(TestCaseError::fail(format!(
                "{op:?} on {:?}: got {actual:?}, the design says {expected:?}",
                before.status
            )));
        }
    };
    // Once terminal, the prompt never changes (retrying creates another prompt).
    if before.status.is_terminal() {
        prop_assert!(
            matches!(op, Op::Retry(_)),
            "{:?} succeeded on {:?}",
            op,
            before
        );
        prop_assert_eq!(&outcome.prompt, before);
    }
    let after = outcome.prompt;
    // Exactly one event per successful operation, of the right type.
    let expected_type = match &outcome.effect {
        Effect::StopAgent => Some("prompt.cancel_requested"),
        Effect::To(status) => Some(event_type_for(*status)),
        Effect::Output => Some("agent.output"),
        Effect::Retried => Some("prompt.submitted"),
    };
    if let Some(expected_type) = expected_type {
        prop_assert_eq!(outcome.events.len(), 1, "{:?}", op);
        let payload = &outcome.events[0].payload;
        prop_assert_eq!(payload.event_type(), expected_type, "{:?}", op);
        let data = payload.data();
        let back = EventPayload::from_parts(payload.event_type(), data.clone()).ok();
        prop_assert_eq!(back.as_ref(), Some(payload));
        if let Effect::To(_) = outcome.effect {
            prop_assert_eq!(&data["promptId"], &json!(before.id.to_string()));
        }
    } else {
        prop_assert!(outcome.events.is_empty());
    }
    if after.status != before.status || matches!(op, Op::Edit(_)) {
        prop_assert!(
            is_edge(before.status, after.status),
            "{:?} → {:?}",
            before.status,
            after.status
        );
    } else {
        prop_assert_eq!(
            &after,
            before,
            "{:?} changed the prompt without a status change",
            op
        );
    }
    if let (Op::Fail(input), Some(kept)) = (op, &after.error) {
        check_error_cut(input, kept)?;
    }
    check_invariants(&after, before, cast.host.id)?;
    Ok(after)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random operations by random actors only ever take a prompt along the
    /// diagram's edges, exactly when the design allows it.
    #[test]
    fn prompts_only_move_along_the_lifecycle(
        direct in any::<bool>(),
        ops in prop::collection::vec(op(), 0..40),
    ) {
        let mode = if direct { SessionMode::PromptDirect } else { SessionMode::PromptWithApproval };
        let cast = Cast::new(mode);
        let submitted = Prompt::submit(
            PromptId::from_uuid(uuid(100)),
            &cast.session,
            &cast.author,
            prompt_text("add a regression test"),
            t0(),
        )
        .expect("a collaborator prompts in these modes");
        prop_assert_eq!(submitted.events.len(), 1);
        prop_assert_eq!(submitted.events[0].payload.event_type(), "prompt.submitted");
        let mut prompt = submitted.state;
        let first = prompt.clone();
        check_invariants(&prompt, &first, cast.host.id)?;
        for (step, op) in (1..).zip(&ops) {
            let result = apply(&cast, &prompt, op, step);
            prompt = check_step(&cast, &prompt, op, result)?;
            check_invariants(&prompt, &first, cast.host.id)?;
        }
    }

    /// A terminal prompt refuses every operation but a retry, and never changes.
    #[test]
    fn terminal_prompts_are_final(
        ending in prop::sample::select(vec![
            Op::Reject(Who::Host),
            Op::Withdraw(Who::Author),
            Op::Complete(StopReason::EndTurn),
            Op::Complete(StopReason::Cancelled),
            Op::Fail("boom".to_owned()),
            Op::FinishCancelled(None),
            Op::Abandon,
            Op::Cancel(Who::Host),
        ]),
        ops in prop::collection::vec(op(), 1..20),
    ) {
        let cast = Cast::new(SessionMode::PromptWithApproval);
        let mut prompt = Prompt::submit(
            PromptId::from_uuid(uuid(100)),
            &cast.session,
            &cast.author,
            prompt_text("add a regression test"),
            t0(),
        )
        .expect("prompts")
        .state;
        // Walk to a state from which `ending` applies, then end there.
        let path: &[Op] = match ending {
            Op::Reject(_) | Op::Withdraw(_) => &[],
            Op::Cancel(_) => &[Op::Approve(Who::Host)],
            Op::Approve(_) | Op::Edit(_) | Op::Retry(_) | Op::Start | Op::Output
            | Op::Complete(_) | Op::Fail(_) | Op::FinishCancelled(_) | Op::Abandon => {
                &[Op::Approve(Who::Host), Op::Start]
            }
        };
        for (step, op) in (1..).zip(path.iter().chain([&ending])) {
            prompt = apply(&cast, &prompt, op, step).expect("a legal step").prompt;
        }
        prop_assert!(prompt.status.is_terminal());
        let terminal = prompt.clone();
        for (step, op) in (10..).zip(&ops) {
            if let Ok(outcome) = apply(&cast, &prompt, op, step) {
                prop_assert!(matches!(op, Op::Retry(Who::Host)), "{:?} on {:?}", op, terminal);
                prop_assert!(terminal.status.is_finished());
                prop_assert_eq!(&outcome.prompt, &terminal);
            }
        }
    }
}

// ===========================================================================
// Value types
// ===========================================================================

const MAX_TTL_SECS: u32 = 30 * 24 * 3600;

fn units() -> impl Strategy<Value = (char, u64)> {
    prop::sample::select(vec![('s', 1), ('m', 60), ('h', 3600), ('d', 86_400)])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn ttl_display_parses_back_to_itself(secs in 1..=MAX_TTL_SECS) {
        let ttl = Ttl::from_secs(secs).expect("in range");
        let shown = ttl.to_string();
        prop_assert_eq!(Ttl::parse(&shown), Ok(ttl));
        prop_assert_eq!(ttl.as_secs(), secs);
        prop_assert_eq!(ttl.as_delta(), TimeDelta::seconds(i64::from(secs)));
        // Serde uses the same text.
        prop_assert_eq!(serde_json::to_value(ttl).ok(), Some(json!(shown)));
    }

    #[test]
    fn ttl_seconds_outside_one_second_to_30_days_are_refused(
        secs in prop_oneof![Just(0_u32), (MAX_TTL_SECS + 1)..=u32::MAX],
    ) {
        prop_assert!(Ttl::from_secs(secs).is_err());
    }

    /// Any well-formed duration is accepted exactly when it totals 1 s to 30 d.
    #[test]
    fn ttl_groups_are_summed_and_capped_at_30_days(
        groups in prop::collection::vec((0_u64..1_000_000_000, units()), 1..6),
    ) {
        let mut text = String::new();
        for (n, (unit, _)) in &groups {
            text.push_str(&n.to_string());
            text.push(*unit);
        }
        let total: u64 = groups.iter().map(|(n, (_, secs))| n * secs).sum();
        let parsed = Ttl::parse(&text);
        if (1..=u64::from(MAX_TTL_SECS)).contains(&total) {
            prop_assert_eq!(parsed.map(Ttl::as_secs).ok(), Some(u32::try_from(total).expect("fits")));
        } else {
            prop_assert!(parsed.is_err(), "{} = {}s accepted", text, total);
        }
    }

    /// Whatever the input, an accepted duration is within 1 s..=30 d.
    #[test]
    fn ttl_parse_never_exceeds_30_days(raw in "[0-9smhdw .-]{0,16}|.{0,16}") {
        if let Ok(ttl) = Ttl::parse(&raw) {
            prop_assert!((1..=MAX_TTL_SECS).contains(&ttl.as_secs()), "{:?} → {:?}", raw, ttl);
            prop_assert_eq!(Ttl::parse(&ttl.to_string()), Ok(ttl));
        }
    }
}

/// Text that mixes letters, blanks, control and multi-byte characters.
fn messy_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-z]{1,8}",
        2 => Just(" ".to_owned()),
        1 => Just("\n".to_owned()),
        1 => Just("\t".to_owned()),
        1 => Just("\r".to_owned()),
        1 => Just("\u{0}".to_owned()),
        1 => Just("\u{7f}".to_owned()),
        1 => Just("é".to_owned()),
        1 => Just("😀".to_owned()),
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

fn limits_all(limit: usize) -> TextLimits {
    TextLimits {
        display_name_chars: limit,
        title_chars: limit,
        comment_chars: limit,
        prompt_chars: limit,
        summary_chars: limit,
    }
}

/// The label rule: not blank, at most `limit` characters as sent, no control
/// characters at all; stored trimmed.
fn label_ok(raw: &str, limit: usize) -> Option<String> {
    (!raw.trim().is_empty() && raw.chars().count() <= limit && !raw.chars().any(char::is_control))
        .then(|| raw.trim().to_owned())
}

/// The body rule: kept as written, not blank, at most `limit` characters, no
/// control characters but newline, carriage return and tab.
fn body_ok(raw: &str, limit: usize) -> Option<String> {
    let allowed = |c: char| !c.is_control() || matches!(c, '\n' | '\r' | '\t');
    (!raw.trim().is_empty() && raw.chars().count() <= limit && raw.chars().all(allowed))
        .then(|| raw.to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn labels_never_exceed_their_limit(raw in messy_text(), limit in 1_usize..60) {
        let limits = limits_all(limit);
        let expected = label_ok(&raw, limit);
        let name = DisplayName::parse(&raw, &limits).ok().map(|v| v.as_str().to_owned());
        let title = Title::parse(&raw, &limits).ok().map(|v| v.as_str().to_owned());
        prop_assert_eq!(&name, &expected);
        prop_assert_eq!(&title, &expected);
        if let Some(value) = name {
            prop_assert!(value.chars().count() <= limit);
            let stored = serde_json::to_value(DisplayName::from_stored(&value).expect("re-reads"));
            prop_assert_eq!(stored.ok(), Some(json!(value)));
        }
    }

    #[test]
    fn bodies_never_exceed_their_limit(raw in messy_text(), limit in 1_usize..120) {
        let limits = limits_all(limit);
        let expected = body_ok(&raw, limit);
        let comment = CommentText::parse(&raw, &limits).ok().map(|v| v.as_str().to_owned());
        let prompt = PromptText::parse(&raw, &limits).ok().map(|v| v.as_str().to_owned());
        let summary = Summary::parse(&raw, &limits).ok().map(|v| v.as_str().to_owned());
        prop_assert_eq!(&comment, &expected);
        prop_assert_eq!(&prompt, &expected);
        prop_assert_eq!(&summary, &expected);
        if let Some(value) = comment {
            prop_assert!(value.chars().count() <= limit);
            let back: Result<CommentText, _> = serde_json::from_value(json!(value));
            prop_assert_eq!(back.ok().map(|v| v.as_str().to_owned()), Some(value));
        }
    }

    #[test]
    fn the_default_limits_hold_for_long_text(len in 0_usize..40_000, wide in any::<bool>()) {
        let raw = if wide { "é".repeat(len / 2) } else { "a".repeat(len) };
        let limits = TextLimits::DEFAULT;
        prop_assert_eq!(
            CommentText::parse(&raw, &limits).is_ok(),
            !raw.is_empty() && raw.chars().count() <= limits.comment_chars
        );
        prop_assert_eq!(
            PromptText::parse(&raw, &limits).is_ok(),
            !raw.is_empty() && raw.chars().count() <= limits.prompt_chars
        );
        prop_assert_eq!(
            Title::parse(&raw, &limits).is_ok(),
            !raw.is_empty() && raw.chars().count() <= limits.title_chars
        );
    }
}
