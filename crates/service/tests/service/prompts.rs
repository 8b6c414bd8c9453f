//! Prompts: who may submit them in each mode, and their lifecycle around the queue
//! (approve, reject, withdraw, edit, cancel, retry), including concurrent answers.

use std::sync::Arc;

use tandem_domain::{
    Action, Actor, DomainError, Event, EventPayload, Prompt, PromptId, PromptStatus, Role,
    SessionId, SessionMode,
};
use tandem_ports::{Page, PromptFilter};
use tandem_service::{Caller, CancelResult, Resource, ServiceError, Tandem};
use tokio::sync::Barrier;

use crate::common::{Harness, Party, assert_err, prompt};

/// A collaborator's prompt waiting for the host.
async fn pending(h: &Harness, party: &Party, text: &str) -> Prompt {
    let submitted = h
        .tandem
        .submit_prompt(&party.collaborator.caller, party.id, prompt(text))
        .await
        .expect("submit");
    assert_eq!(submitted.status, PromptStatus::PendingApproval);
    submitted
}

async fn stored(h: &Harness, id: PromptId) -> Prompt {
    h.store().prompt(id).await.expect("stored prompt")
}

/// The events of a log that concern one prompt's resolution, as (type, by).
fn resolutions(log: &[Event], id: PromptId) -> Vec<&'static str> {
    log.iter()
        .filter(|event| match &event.payload {
            EventPayload::PromptApproved { prompt_id, .. }
            | EventPayload::PromptRejected { prompt_id, .. }
            | EventPayload::PromptWithdrawn { prompt_id } => *prompt_id == id,
            EventPayload::SessionCreated(_)
            | EventPayload::SessionUpdated { .. }
            | EventPayload::SessionClosed { .. }
            | EventPayload::ParticipantJoined(_)
            | EventPayload::ParticipantLeft { .. }
            | EventPayload::ParticipantUpdated { .. }
            | EventPayload::ParticipantRemoved { .. }
            | EventPayload::CommentPosted(_)
            | EventPayload::PromptSubmitted(_)
            | EventPayload::PromptEdited { .. }
            | EventPayload::PromptStarted { .. }
            | EventPayload::PromptCancelRequested { .. }
            | EventPayload::AgentOutput(_)
            | EventPayload::AgentPermissionRequested { .. }
            | EventPayload::AgentPermissionResolved { .. }
            | EventPayload::PromptCompleted { .. }
            | EventPayload::PromptFailed { .. }
            | EventPayload::PromptCancelled { .. }
            | EventPayload::AgentStarted(_)
            | EventPayload::AgentCommandsUpdated(_)
            | EventPayload::AgentModeRequested(_)
            | EventPayload::AgentModeChanged(_)
            | EventPayload::AgentModeChangeFailed(_)
            | EventPayload::AgentTitleChanged(_) => false,
        })
        .map(|event| event.payload.event_type())
        .collect()
}

#[tokio::test]
async fn who_may_prompt_in_each_mode_and_where_the_prompt_lands() {
    let h = Harness::new().await;
    for mode in SessionMode::ALL.iter().copied() {
        let party = h.party(mode).await;
        let id = party.id;
        let by_host = h
            .tandem
            .submit_prompt(&party.host, id, prompt("host asks"))
            .await
            .expect("the host always prompts");
        assert_eq!(by_host.status, PromptStatus::Queued, "{mode}");
        assert_eq!(by_host.queued_at, Some(h.now()));
        assert_eq!(by_host.author, party.host_id());

        let by_collaborator = h
            .tandem
            .submit_prompt(&party.collaborator.caller, id, prompt("collaborator asks"))
            .await;
        let expected_collaborator = match mode {
            SessionMode::PromptWithApproval => Some(PromptStatus::PendingApproval),
            SessionMode::PromptDirect => Some(PromptStatus::Queued),
            SessionMode::ViewOnly | SessionMode::CommentOnly => None,
        };
        match expected_collaborator {
            Some(status) => {
                let submitted = by_collaborator.expect("collaborators prompt here");
                assert_eq!(submitted.status, status, "{mode}");
                assert_eq!(submitted.author, party.collaborator.participant.id);
                assert_eq!(stored(&h, submitted.id).await, submitted);
            }
            None => assert_err!(
                by_collaborator,
                ServiceError::Rule(DomainError::Forbidden {
                    action: Action::SubmitPrompt,
                    role: Role::Collaborator
                })
            ),
        }
        assert_err!(
            h.tandem
                .submit_prompt(&party.viewer.caller, id, prompt("viewer asks"))
                .await,
            ServiceError::Rule(DomainError::Forbidden {
                action: Action::SubmitPrompt,
                role: Role::Viewer
            })
        );

        let listed = h
            .tandem
            .list_prompts(&party.viewer.caller, id, None, Page::first(10))
            .await
            .expect("list");
        let expected_count = 1 + usize::from(expected_collaborator.is_some());
        assert_eq!(listed.len(), expected_count, "{mode}");
        assert_eq!(listed[0].id, by_host.id);
        assert_eq!(
            h.count(id, "prompt.submitted").await,
            expected_count,
            "{mode}"
        );
        let queued = h
            .tandem
            .list_prompts(&party.host, id, Some(PromptStatus::Queued), Page::first(10))
            .await
            .expect("list");
        let expected_queued = if mode == SessionMode::PromptDirect {
            2
        } else {
            1
        };
        assert_eq!(queued.len(), expected_queued, "{mode}");
    }
}

#[tokio::test]
async fn the_host_approves_a_pending_prompt_into_the_queue() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let submitted = pending(&h, &party, "refactor the parser").await;

    for member in [&party.collaborator, &party.viewer] {
        assert_err!(
            h.tandem
                .approve_prompt(&member.caller, party.id, submitted.id)
                .await,
            ServiceError::Rule(DomainError::Forbidden {
                action: Action::ResolvePrompt,
                ..
            })
        );
    }
    let approved = h
        .tandem
        .approve_prompt(&party.host, party.id, submitted.id)
        .await
        .expect("approve");
    assert_eq!(approved.status, PromptStatus::Queued);
    assert_eq!(approved.resolved_by, Some(party.host_id()));
    assert_eq!(approved.resolved_at, Some(h.now()));
    assert_eq!(approved.queued_at, Some(h.now()));
    let in_store = stored(&h, submitted.id).await;
    assert_eq!(in_store.status, PromptStatus::Queued);
    assert_eq!(in_store.resolved_by, Some(party.host_id()));
    assert_eq!(
        h.store()
            .next_queued_prompt(party.id)
            .await
            .expect("read")
            .map(|p| p.id),
        Some(submitted.id)
    );
    let log = h.log(party.id).await;
    let last = log.last().expect("events");
    assert_eq!(last.actor, Actor::Participant(party.host_id()));
    assert_eq!(
        last.payload,
        EventPayload::PromptApproved {
            prompt_id: submitted.id,
            approved_by: party.host_id()
        }
    );

    assert_err!(
        h.tandem
            .approve_prompt(&party.host, party.id, submitted.id)
            .await,
        ServiceError::Rule(DomainError::PromptAlreadyResolved(PromptStatus::Queued))
    );
    assert_err!(
        h.tandem
            .reject_prompt(&party.host, party.id, submitted.id)
            .await,
        ServiceError::Rule(DomainError::PromptAlreadyResolved(PromptStatus::Queued))
    );
    assert_eq!(
        resolutions(&h.log(party.id).await, submitted.id),
        ["prompt.approved"]
    );
}

#[tokio::test]
async fn the_host_rejects_a_pending_prompt() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let submitted = pending(&h, &party, "rm -rf the tests").await;
    assert_err!(
        h.tandem
            .reject_prompt(&party.collaborator.caller, party.id, submitted.id)
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::ResolvePrompt,
            role: Role::Collaborator
        })
    );
    let rejected = h
        .tandem
        .reject_prompt(&party.host, party.id, submitted.id)
        .await
        .expect("reject");
    assert_eq!(rejected.status, PromptStatus::Rejected);
    assert_eq!(rejected.resolved_by, Some(party.host_id()));
    assert_eq!(rejected.finished_at, Some(h.now()));
    assert_eq!(
        stored(&h, submitted.id).await.status,
        PromptStatus::Rejected
    );
    assert_eq!(
        h.store().next_queued_prompt(party.id).await.expect("read"),
        None
    );

    assert_err!(
        h.tandem
            .approve_prompt(&party.host, party.id, submitted.id)
            .await,
        ServiceError::Rule(DomainError::PromptAlreadyResolved(PromptStatus::Rejected))
    );
    assert_err!(
        h.tandem
            .withdraw_prompt(&party.collaborator.caller, party.id, submitted.id)
            .await,
        ServiceError::Rule(DomainError::PromptAlreadyResolved(PromptStatus::Rejected))
    );
    assert_eq!(
        resolutions(&h.log(party.id).await, submitted.id),
        ["prompt.rejected"]
    );
}

#[tokio::test]
async fn the_author_withdraws_their_own_pending_prompt() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let other = h.join(&party.invite_token, "Other collaborator").await;
    let submitted = pending(&h, &party, "try another approach").await;

    assert_err!(
        h.tandem
            .withdraw_prompt(&party.host, party.id, submitted.id)
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::WithdrawPrompt,
            role: Role::Host
        })
    );
    assert_err!(
        h.tandem
            .withdraw_prompt(&other.caller, party.id, submitted.id)
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::WithdrawPrompt,
            role: Role::Collaborator
        })
    );
    let withdrawn = h
        .tandem
        .withdraw_prompt(&party.collaborator.caller, party.id, submitted.id)
        .await
        .expect("withdraw");
    assert_eq!(withdrawn.status, PromptStatus::Withdrawn);
    assert_eq!(withdrawn.finished_at, Some(h.now()));
    assert_eq!(
        stored(&h, submitted.id).await.status,
        PromptStatus::Withdrawn
    );
    assert_err!(
        h.tandem
            .approve_prompt(&party.host, party.id, submitted.id)
            .await,
        ServiceError::Rule(DomainError::PromptAlreadyResolved(PromptStatus::Withdrawn))
    );
    assert_eq!(
        resolutions(&h.log(party.id).await, submitted.id),
        ["prompt.withdrawn"]
    );
}

#[tokio::test]
async fn the_author_edits_their_pending_prompt() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let submitted = pending(&h, &party, "fix the bug").await;

    assert_err!(
        h.tandem
            .edit_prompt(&party.host, party.id, submitted.id, prompt("host's words"))
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::EditPrompt,
            role: Role::Host
        })
    );
    let edited = h
        .tandem
        .edit_prompt(
            &party.collaborator.caller,
            party.id,
            submitted.id,
            prompt("fix the off-by-one in the lexer"),
        )
        .await
        .expect("edit");
    assert_eq!(edited.text.as_str(), "fix the off-by-one in the lexer");
    assert_eq!(edited.status, PromptStatus::PendingApproval);
    let in_store = stored(&h, submitted.id).await;
    assert_eq!(in_store.text.as_str(), "fix the off-by-one in the lexer");
    let last = h.log(party.id).await.pop().expect("events");
    assert_eq!(
        last.payload,
        EventPayload::PromptEdited {
            prompt_id: submitted.id,
            text: prompt("fix the off-by-one in the lexer")
        }
    );

    // Approval takes the edited text; after it the prompt can no longer be edited.
    let approved = h
        .tandem
        .approve_prompt(&party.host, party.id, submitted.id)
        .await
        .expect("approve");
    assert_eq!(approved.text.as_str(), "fix the off-by-one in the lexer");
    assert_err!(
        h.tandem
            .edit_prompt(
                &party.collaborator.caller,
                party.id,
                submitted.id,
                prompt("too late")
            )
            .await,
        ServiceError::Rule(DomainError::PromptAlreadyResolved(PromptStatus::Queued))
    );
    assert_eq!(
        stored(&h, submitted.id).await.text.as_str(),
        "fix the off-by-one in the lexer"
    );
}

#[tokio::test]
async fn queued_prompts_are_cancelled_by_the_host_or_their_author() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptDirect).await;
    let other = h.join(&party.invite_token, "Other collaborator").await;
    let submit = |text: &'static str| {
        let tandem = h.tandem.clone();
        let caller = party.collaborator.caller.clone();
        let id = party.id;
        async move {
            tandem
                .submit_prompt(&caller, id, prompt(text))
                .await
                .expect("submit")
        }
    };
    let first = submit("first").await;
    let second = submit("second").await;
    assert_eq!(first.status, PromptStatus::Queued);

    for (caller, role) in [
        (&other.caller, Role::Collaborator),
        (&party.viewer.caller, Role::Viewer),
    ] {
        assert_err!(
            h.tandem.cancel_prompt(caller, party.id, first.id).await,
            ServiceError::Rule(DomainError::Forbidden {
                action: Action::CancelPrompt,
                role: r
            }) if r == role
        );
    }

    let by_host = h
        .tandem
        .cancel_prompt(&party.host, party.id, first.id)
        .await
        .expect("the host cancels any prompt");
    let CancelResult::Cancelled(cancelled) = by_host else {
        panic!("a queued prompt is cancelled at once, got {by_host:?}");
    };
    assert_eq!(cancelled.status, PromptStatus::Cancelled);
    assert_eq!(cancelled.finished_at, Some(h.now()));
    assert_eq!(cancelled.stop_reason, None);
    assert_eq!(stored(&h, first.id).await.status, PromptStatus::Cancelled);
    assert_eq!(
        h.log(party.id).await.pop().expect("events").payload,
        EventPayload::PromptCancelled {
            prompt_id: first.id,
            cancelled_by: Some(party.host_id())
        }
    );

    let by_author = h
        .tandem
        .cancel_prompt(&party.collaborator.caller, party.id, second.id)
        .await
        .expect("the author cancels their own");
    assert!(
        matches!(by_author, CancelResult::Cancelled(ref p) if p.status == PromptStatus::Cancelled)
    );
    assert_eq!(
        h.store().next_queued_prompt(party.id).await.expect("read"),
        None
    );

    // A finished prompt cannot be cancelled again.
    assert_err!(
        h.tandem
            .cancel_prompt(&party.host, party.id, first.id)
            .await,
        ServiceError::Rule(DomainError::PromptInvalidTransition {
            from: PromptStatus::Cancelled,
            ..
        })
    );
    assert_eq!(h.count(party.id, "prompt.cancelled").await, 2);
}

#[tokio::test]
async fn a_pending_prompt_is_withdrawn_not_cancelled() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let submitted = pending(&h, &party, "maybe").await;
    assert_err!(
        h.tandem
            .cancel_prompt(&party.collaborator.caller, party.id, submitted.id)
            .await,
        ServiceError::Rule(DomainError::PromptInvalidTransition {
            from: PromptStatus::PendingApproval,
            action: "cancelled"
        })
    );
    assert_eq!(
        stored(&h, submitted.id).await.status,
        PromptStatus::PendingApproval
    );
}

#[tokio::test]
async fn the_host_retries_a_finished_prompt_as_a_new_queued_one() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptDirect).await;
    let original = h
        .tandem
        .submit_prompt(
            &party.collaborator.caller,
            party.id,
            prompt("run the tests"),
        )
        .await
        .expect("submit");

    // Not finished yet: a queued prompt is not retried.
    assert_err!(
        h.tandem
            .retry_prompt(&party.host, party.id, original.id)
            .await,
        ServiceError::Rule(DomainError::PromptInvalidTransition {
            from: PromptStatus::Queued,
            action: "retried"
        })
    );
    h.tandem
        .cancel_prompt(&party.host, party.id, original.id)
        .await
        .expect("cancel");
    assert_err!(
        h.tandem
            .retry_prompt(&party.collaborator.caller, party.id, original.id)
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::RetryPrompt,
            role: Role::Collaborator
        })
    );

    let retried = h
        .tandem
        .retry_prompt(&party.host, party.id, original.id)
        .await
        .expect("retry");
    assert_ne!(retried.id, original.id);
    assert_eq!(retried.status, PromptStatus::Queued);
    assert_eq!(retried.text, original.text);
    assert_eq!(retried.retry_of, Some(original.id));
    assert_eq!(retried.author, party.host_id());
    assert_eq!(stored(&h, retried.id).await, retried);
    // The original stays as it was.
    assert_eq!(
        stored(&h, original.id).await.status,
        PromptStatus::Cancelled
    );
    assert_eq!(
        h.store()
            .next_queued_prompt(party.id)
            .await
            .expect("read")
            .map(|p| p.id),
        Some(retried.id)
    );
    let logged = h.log(party.id).await.pop().expect("events").payload;
    let EventPayload::PromptSubmitted(snapshot) = logged else {
        panic!("retry logged {logged:?}");
    };
    assert_eq!(snapshot.id, retried.id);
    assert_eq!(snapshot.retry_of, Some(original.id));
    assert_eq!(snapshot.status, PromptStatus::Queued);
}

#[tokio::test]
async fn prompts_that_never_reached_the_agent_are_not_retried() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let rejected = pending(&h, &party, "one").await;
    h.tandem
        .reject_prompt(&party.host, party.id, rejected.id)
        .await
        .expect("reject");
    let withdrawn = pending(&h, &party, "two").await;
    h.tandem
        .withdraw_prompt(&party.collaborator.caller, party.id, withdrawn.id)
        .await
        .expect("withdraw");
    let waiting = pending(&h, &party, "three").await;
    for (id, from) in [
        (rejected.id, PromptStatus::Rejected),
        (withdrawn.id, PromptStatus::Withdrawn),
        (waiting.id, PromptStatus::PendingApproval),
    ] {
        assert_err!(
            h.tandem.retry_prompt(&party.host, party.id, id).await,
            ServiceError::Rule(DomainError::PromptInvalidTransition { from: f, .. }) if f == from
        );
    }
    assert_eq!(h.count(party.id, "prompt.submitted").await, 3);
}

#[tokio::test]
async fn a_prompt_of_another_session_is_not_found() {
    let h = Harness::new().await;
    let ours = h.party(SessionMode::PromptWithApproval).await;
    let theirs = h.party(SessionMode::PromptWithApproval).await;
    let their_prompt = pending(&h, &theirs, "theirs").await;
    assert_err!(
        h.tandem
            .approve_prompt(&ours.host, ours.id, their_prompt.id)
            .await,
        ServiceError::NotFound(Resource::Prompt)
    );
    assert_err!(
        h.tandem
            .get_prompt(&ours.host, ours.id, their_prompt.id)
            .await,
        ServiceError::NotFound(Resource::Prompt)
    );
    assert_err!(
        h.tandem
            .get_prompt(
                &ours.host,
                ours.id,
                PromptId::from_uuid(uuid::Uuid::now_v7())
            )
            .await,
        ServiceError::NotFound(Resource::Prompt)
    );
    assert_eq!(
        stored(&h, their_prompt.id).await.status,
        PromptStatus::PendingApproval
    );
    let got = h
        .tandem
        .get_prompt(&theirs.viewer.caller, theirs.id, their_prompt.id)
        .await
        .expect("read");
    assert_eq!(got, their_prompt);
}

/// How the host answers a pending prompt.
#[derive(Debug, Clone, Copy)]
enum Resolve {
    Approve,
    Reject,
}

/// Runs two answers to one pending prompt at the same moment, from two tasks of
/// the host.
async fn race(
    h: &Harness,
    party: &Party,
    prompt_id: PromptId,
    answers: [Resolve; 2],
) -> [Result<Prompt, ServiceError>; 2] {
    let barrier = Arc::new(Barrier::new(2));
    let spawn = |answer: Resolve| {
        let tandem: Tandem = h.tandem.clone();
        let host: Caller = party.host.clone();
        let barrier = barrier.clone();
        let id: SessionId = party.id;
        tokio::spawn(async move {
            barrier.wait().await;
            match answer {
                Resolve::Approve => tandem.approve_prompt(&host, id, prompt_id).await,
                Resolve::Reject => tandem.reject_prompt(&host, id, prompt_id).await,
            }
        })
    };
    let first = spawn(answers[0]);
    let second = spawn(answers[1]);
    [first.await.expect("task"), second.await.expect("task")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_approvals_exactly_one_wins() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    for round in 0..10 {
        let submitted = pending(&h, &party, &format!("round {round}")).await;
        let results = race(&h, &party, submitted.id, [Resolve::Approve; 2]).await;
        let winners: Vec<&Prompt> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        assert_eq!(winners[0].status, PromptStatus::Queued);
        let loser = results
            .iter()
            .find_map(|r| r.as_ref().err())
            .expect("one loses");
        assert!(
            matches!(
                loser,
                ServiceError::Rule(DomainError::PromptAlreadyResolved(PromptStatus::Queued))
            ),
            "round {round}: {loser:?}"
        );
        assert_eq!(stored(&h, submitted.id).await.status, PromptStatus::Queued);
        assert_eq!(
            resolutions(&h.log(party.id).await, submitted.id),
            ["prompt.approved"],
            "round {round}"
        );
    }
    // Ten prompts, each approved once, all queued once.
    assert_eq!(h.count(party.id, "prompt.approved").await, 10);
    let queued = h
        .store()
        .prompts(
            &PromptFilter {
                session_id: party.id,
                status: Some(PromptStatus::Queued),
            },
            Page::first(100),
        )
        .await
        .expect("read");
    assert_eq!(queued.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_racing_a_rejection_has_exactly_one_winner() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    for round in 0..10 {
        let submitted = pending(&h, &party, &format!("round {round}")).await;
        // Alternate who starts first, so that either side gets to win.
        let results = if round % 2 == 0 {
            race(
                &h,
                &party,
                submitted.id,
                [Resolve::Approve, Resolve::Reject],
            )
            .await
        } else {
            race(
                &h,
                &party,
                submitted.id,
                [Resolve::Reject, Resolve::Approve],
            )
            .await
        };
        let winners: Vec<&Prompt> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let final_status = winners[0].status;
        assert!(matches!(
            final_status,
            PromptStatus::Queued | PromptStatus::Rejected
        ));
        let loser = results
            .iter()
            .find_map(|r| r.as_ref().err())
            .expect("one loses");
        assert!(
            matches!(
                loser,
                ServiceError::Rule(DomainError::PromptAlreadyResolved(s)) if *s == final_status
            ),
            "round {round}: {loser:?}"
        );
        assert_eq!(stored(&h, submitted.id).await.status, final_status);
        let expected = if final_status == PromptStatus::Queued {
            "prompt.approved"
        } else {
            "prompt.rejected"
        };
        assert_eq!(
            resolutions(&h.log(party.id).await, submitted.id),
            [expected],
            "round {round}"
        );
    }
}
