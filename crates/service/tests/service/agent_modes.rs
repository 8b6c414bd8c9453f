//! The host switches the agent's mode: only the host, only to a mode the agent
//! offers, only once an agent said which it offers; the request waits in the
//! agent state for the session's runner, and the session shows it.

use std::sync::Arc;

use tandem_domain::{
    AgentMode, AgentModeId, AgentReport, AgentStarted, AgentState, DomainError, ModeRequest,
    Resumption, SessionId, SessionMode,
};
use tandem_ports::{Change, Write};
use tandem_service::ServiceError;

use crate::common::{Harness, assert_err};

fn mode(id: &str) -> AgentModeId {
    AgentModeId::parse(id).expect("a mode id")
}

/// Records an agent start offering `ask` and `code`, as the runner would.
async fn agent_started(h: &Harness, id: SessionId) {
    let report = AgentReport {
        modes: Some(
            ["ask", "code"]
                .into_iter()
                .map(|id| AgentMode {
                    id: mode(id),
                    name: id.to_owned(),
                    description: None,
                })
                .collect(),
        ),
        current_mode: Some(mode("ask")),
        ..AgentReport::default()
    };
    let started = AgentStarted {
        agent_session_id: "agent-1".to_owned(),
        resumption: Resumption::New,
        load_session: true,
        workspace: None,
        resume_error: None,
    };
    let t = AgentState::started(id, None, started, &report, h.now());
    h.store()
        .apply(
            Change::new(id)
                .write(Write::InsertAgentState(t.state))
                .events(t.events),
        )
        .await
        .expect("agent state");
}

#[tokio::test]
async fn only_the_host_switches_to_an_offered_mode_once_an_agent_offered_modes() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptDirect).await;
    assert_err!(
        h.tandem
            .set_agent_mode(&party.host, party.id, mode("code"))
            .await,
        ServiceError::Rule(DomainError::AgentModesUnavailable)
    );
    assert!(
        h.tandem
            .session_details(&party.host, party.id)
            .await
            .expect("details")
            .agent
            .is_none()
    );

    agent_started(&h, party.id).await;
    assert_err!(
        h.tandem
            .set_agent_mode(&party.collaborator.caller, party.id, mode("code"))
            .await,
        ServiceError::Rule(DomainError::Forbidden { .. })
    );
    assert_err!(
        h.tandem
            .set_agent_mode(h.admin(), party.id, mode("code"))
            .await,
        ServiceError::ParticipantRequired
    );
    assert_err!(
        h.tandem
            .set_agent_mode(&party.host, party.id, mode("yolo"))
            .await,
        ServiceError::Rule(DomainError::UnknownAgentMode)
    );

    let state = h
        .tandem
        .set_agent_mode(&party.host, party.id, mode("code"))
        .await
        .expect("the host switches");
    let request = Some(ModeRequest {
        mode_id: mode("code"),
        by: party.host_id(),
    });
    assert_eq!(state.mode_request, request);
    assert_eq!(
        state.current_mode,
        Some(mode("ask")),
        "until the agent takes it"
    );
    let details = h
        .tandem
        .session_details(&party.collaborator.caller, party.id)
        .await
        .expect("details");
    assert_eq!(details.agent.expect("the agent").mode_request, request);
    assert_eq!(h.count(party.id, "agent.mode_requested").await, 1);
}

#[tokio::test]
async fn concurrent_switches_all_land_and_the_last_one_waits() {
    let h = Arc::new(Harness::new().await);
    let party = h.party(SessionMode::PromptDirect).await;
    agent_started(&h, party.id).await;
    let mut tasks = Vec::new();
    for n in 0..6 {
        let (h, host) = (Arc::clone(&h), party.host.clone());
        let wanted = if n % 2 == 0 { "ask" } else { "code" };
        tasks.push(tokio::spawn(async move {
            h.tandem.set_agent_mode(&host, party.id, mode(wanted)).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("every switch is recorded");
    }
    assert_eq!(h.count(party.id, "agent.mode_requested").await, 6);
    let log = h.log(party.id).await;
    let last_asked = log
        .iter()
        .rev()
        .find_map(|event| {
            if let tandem_domain::EventPayload::AgentModeRequested(requested) = &event.payload {
                Some(requested.mode_id.clone())
            } else {
                None
            }
        })
        .expect("a request");
    let state = h
        .store()
        .agent_state(party.id)
        .await
        .expect("read")
        .expect("a state");
    assert_eq!(
        state.mode_request.map(|request| request.mode_id),
        Some(last_asked),
        "the state holds the request the log shows last"
    );
}
