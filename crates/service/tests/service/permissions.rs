//! Agent permission requests, answered by the host.
//!
//! No prompt runner exists yet, so a test puts a prompt into `running` and opens a
//! request itself, through the store and with the domain's own transitions, just as
//! the runner will.

use std::sync::Arc;

use chrono::TimeDelta;
use tandem_domain::{
    Action, Actor, DomainError, EventPayload, PermissionAnswer, PermissionAsk, PermissionCause,
    PermissionOption, PermissionOptionKind, PermissionOutcome, PermissionRequest,
    PermissionRequestId, Prompt, PromptStatus, Role, SessionMode, SessionStatus, StopReason,
};
use tandem_ports::{Change, Write};
use tandem_service::{CancelResult, Resource, ServiceError};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::common::{Harness, Party, assert_err, prompt, summary};

fn option(id: &str, kind: PermissionOptionKind) -> PermissionOption {
    PermissionOption {
        id: id.to_owned(),
        name: id.replace('_', " "),
        kind,
    }
}

/// A prompt of the host, started, with one open permission request of the agent.
async fn running_with_request(h: &Harness, party: &Party) -> (Prompt, PermissionRequest) {
    let queued = h
        .tandem
        .submit_prompt(&party.host, party.id, prompt("edit src/main.rs"))
        .await
        .expect("submit");
    let started = queued.start(h.now()).expect("start");
    h.store()
        .apply(
            Change::new(party.id)
                .write(Write::UpdatePrompt(started.state.clone()))
                .events(started.events)
                .activity(h.now()),
        )
        .await
        .expect("store the start");
    let running = h.store().prompt(queued.id).await.expect("read");
    assert_eq!(running.status, PromptStatus::Running);

    let session = h.stored(party.id).await;
    let ask = PermissionAsk {
        id: PermissionRequestId::from_uuid(Uuid::now_v7()),
        tool_call: "write_file src/main.rs".into(),
        options: vec![
            option("allow_once", PermissionOptionKind::AllowOnce),
            option("reject_once", PermissionOptionKind::RejectOnce),
        ],
        timeout: TimeDelta::minutes(5),
        redactions: tandem_domain::Redactions::none(),
    };
    let opened = PermissionRequest::open(&session, &running, ask, h.now()).expect("open");
    assert!(opened.state.is_open(), "ask_host leaves the request open");
    h.store()
        .apply(
            Change::new(party.id)
                .write(Write::InsertPermissionRequest(opened.state.clone()))
                .events(opened.events)
                .activity(h.now()),
        )
        .await
        .expect("store the request");
    assert_eq!(
        h.log(party.id)
            .await
            .pop()
            .expect("events")
            .payload
            .event_type(),
        "agent.permission_requested"
    );
    (running, opened.state)
}

#[tokio::test]
async fn the_host_answers_an_open_request_once() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let (running, request) = running_with_request(&h, &party).await;
    let allow = || PermissionAnswer::Select("allow_once".to_owned());

    for (member, role) in [
        (&party.collaborator, Role::Collaborator),
        (&party.viewer, Role::Viewer),
    ] {
        assert_err!(
            h.tandem
                .answer_permission(&member.caller, party.id, request.id, allow())
                .await,
            ServiceError::Rule(DomainError::Forbidden {
                action: Action::AnswerPermission,
                role: r
            }) if r == role
        );
    }
    assert_err!(
        h.tandem
            .answer_permission(h.admin(), party.id, request.id, allow())
            .await,
        ServiceError::ParticipantRequired
    );
    assert!(
        h.store()
            .permission_request(request.id)
            .await
            .expect("read")
            .is_open()
    );

    let answered = h
        .tandem
        .answer_permission(&party.host, party.id, request.id, allow())
        .await
        .expect("the host answers");
    let resolution = answered.resolution.as_ref().expect("resolved");
    assert_eq!(
        resolution.outcome,
        PermissionOutcome::Selected {
            option_id: "allow_once".to_owned()
        }
    );
    assert_eq!(resolution.cause, PermissionCause::Host);
    assert_eq!(resolution.by, Some(party.host_id()));
    assert_eq!(resolution.at, h.now());
    let in_store = h
        .store()
        .permission_request(request.id)
        .await
        .expect("read");
    assert_eq!(in_store.resolution, answered.resolution);
    assert!(
        h.store()
            .open_permission_requests(running.id)
            .await
            .expect("read")
            .is_empty()
    );
    let last = h.log(party.id).await.pop().expect("events");
    assert_eq!(last.actor, Actor::Participant(party.host_id()));
    assert_eq!(
        last.payload,
        EventPayload::AgentPermissionResolved {
            request_id: request.id,
            prompt_id: running.id,
            outcome: PermissionOutcome::Selected {
                option_id: "allow_once".to_owned()
            },
            cause: PermissionCause::Host,
            resolved_by: Some(party.host_id()),
        }
    );

    // A second answer, either way, is refused and changes nothing.
    assert_err!(
        h.tandem
            .answer_permission(&party.host, party.id, request.id, allow())
            .await,
        ServiceError::Rule(DomainError::PermissionAlreadyResolved)
    );
    assert_err!(
        h.tandem
            .answer_permission(&party.host, party.id, request.id, PermissionAnswer::Reject)
            .await,
        ServiceError::Rule(DomainError::PermissionAlreadyResolved)
    );
    assert_eq!(
        h.store()
            .permission_request(request.id)
            .await
            .expect("read")
            .resolution,
        answered.resolution
    );
    assert_eq!(h.count(party.id, "agent.permission_resolved").await, 1);
}

#[tokio::test]
async fn an_answer_picks_an_offered_option_and_reject_picks_the_agents_reject() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let (_, request) = running_with_request(&h, &party).await;
    assert_err!(
        h.tandem
            .answer_permission(
                &party.host,
                party.id,
                request.id,
                PermissionAnswer::Select("allow_forever".to_owned())
            )
            .await,
        ServiceError::Rule(DomainError::UnknownPermissionOption)
    );
    let rejected = h
        .tandem
        .answer_permission(&party.host, party.id, request.id, PermissionAnswer::Reject)
        .await
        .expect("reject");
    assert_eq!(
        rejected.resolution.map(|r| r.outcome),
        Some(PermissionOutcome::Selected {
            option_id: "reject_once".to_owned()
        })
    );
}

#[tokio::test]
async fn a_request_of_another_session_is_not_found() {
    let h = Harness::new().await;
    let ours = h.party(SessionMode::PromptWithApproval).await;
    let theirs = h.party(SessionMode::PromptWithApproval).await;
    let (_, their_request) = running_with_request(&h, &theirs).await;
    assert_err!(
        h.tandem
            .answer_permission(
                &ours.host,
                ours.id,
                their_request.id,
                PermissionAnswer::Reject
            )
            .await,
        ServiceError::NotFound(Resource::PermissionRequest)
    );
    assert_err!(
        h.tandem
            .answer_permission(
                &ours.host,
                ours.id,
                PermissionRequestId::from_uuid(Uuid::now_v7()),
                PermissionAnswer::Reject
            )
            .await,
        ServiceError::NotFound(Resource::PermissionRequest)
    );
    assert!(
        h.store()
            .permission_request(their_request.id)
            .await
            .expect("read")
            .is_open()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_answers_exactly_one_counts() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let (_, request) = running_with_request(&h, &party).await;
    let barrier = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = [
        PermissionAnswer::Select("allow_once".to_owned()),
        PermissionAnswer::Reject,
    ]
    .into_iter()
    .map(|answer| {
        let tandem = h.tandem.clone();
        let host = party.host.clone();
        let barrier = barrier.clone();
        let (session, id) = (party.id, request.id);
        tokio::spawn(async move {
            barrier.wait().await;
            tandem.answer_permission(&host, session, id, answer).await
        })
    })
    .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(answered) => winners.push(answered),
            Err(ServiceError::Rule(DomainError::PermissionAlreadyResolved)) => {}
            Err(other) => panic!("an answer failed otherwise: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let in_store = h
        .store()
        .permission_request(request.id)
        .await
        .expect("read");
    assert_eq!(in_store.resolution, winners[0].resolution);
    assert_eq!(h.count(party.id, "agent.permission_resolved").await, 1);
}

#[tokio::test]
async fn cancelling_a_running_prompt_asks_the_agent_to_stop() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptDirect).await;
    let (running, _) = running_with_request(&h, &party).await;
    assert_err!(
        h.tandem
            .cancel_prompt(&party.collaborator.caller, party.id, running.id)
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::CancelPrompt,
            role: Role::Collaborator
        })
    );
    let before = h.log(party.id).await.len();
    let outcome = h
        .tandem
        .cancel_prompt(&party.host, party.id, running.id)
        .await
        .expect("cancel");
    // The request is logged for the runner, on whichever replica runs the agent;
    // it records `prompt.cancelled` once the agent has stopped. Until then the
    // prompt is still running.
    assert_eq!(outcome, CancelResult::Requested(running.clone()));
    assert_eq!(
        h.store().prompt(running.id).await.expect("read").status,
        PromptStatus::Running
    );
    let log = h.log(party.id).await;
    assert_eq!(log.len(), before + 1, "one event: the request to stop");
    assert_eq!(
        log[before].payload,
        EventPayload::PromptCancelRequested {
            prompt_id: running.id,
            requested_by: party.host_id(),
        }
    );
}

#[tokio::test]
async fn closing_ends_the_running_prompt_and_its_open_request_first() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let (running, request) = running_with_request(&h, &party).await;
    let queued = h
        .tandem
        .submit_prompt(&party.host, party.id, prompt("next"))
        .await
        .expect("submit");
    h.tandem
        .close_session(&party.host, party.id, Some(summary("Stopping here.")))
        .await
        .expect("close");

    let request = h
        .store()
        .permission_request(request.id)
        .await
        .expect("read");
    let resolution = request.resolution.expect("resolved by the close");
    assert_eq!(resolution.cause, PermissionCause::PromptEnded);
    assert_eq!(resolution.outcome, PermissionOutcome::Cancelled);
    let running = h.store().prompt(running.id).await.expect("read");
    assert_eq!(running.status, PromptStatus::Cancelled);
    assert_eq!(running.stop_reason, Some(StopReason::Cancelled));
    assert_eq!(
        h.store().prompt(queued.id).await.expect("read").status,
        PromptStatus::Cancelled
    );
    let log = h.log(party.id).await;
    let tail: Vec<&str> = log[log.len() - 4..]
        .iter()
        .map(|e| e.payload.event_type())
        .collect();
    assert_eq!(
        tail,
        [
            "agent.permission_resolved",
            "prompt.cancelled",
            "prompt.cancelled",
            "session.closed"
        ]
    );
    assert_err!(
        h.tandem
            .answer_permission(&party.host, party.id, request.id, PermissionAnswer::Reject)
            .await,
        ServiceError::Rule(DomainError::SessionInactive(SessionStatus::Closed))
    );
}
