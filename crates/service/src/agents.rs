//! The session's agent, as participants steer it: the host switches its mode.

use tandem_domain::{AgentModeId, AgentState, SessionId};
use tandem_ports::{Change, Write};

use crate::credentials::Caller;
use crate::error::ServiceError;
use crate::{Tandem, retry_on_conflict};

impl Tandem {
    /// The host asks to switch the session's agent to one of the modes it offers.
    /// The session's runner passes the request on (`session/set_mode`) right
    /// away if the agent runs, else when it next starts; `agent.mode_changed` (or
    /// `agent.mode_change_failed`) follows. Returns the agent state with the
    /// request pending.
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn set_agent_mode(
        &self,
        caller: &Caller,
        session_id: SessionId,
        mode: AgentModeId,
    ) -> Result<AgentState, ServiceError> {
        retry_on_conflict!({
            let (session, host) = self.acting(caller, session_id).await?;
            let state = self
                .store
                .agent_state(session_id)
                .await
                .map_err(ServiceError::Store)?
                .unwrap_or_else(|| AgentState::empty(session_id));
            // With no agent ever started, there are no modes: refused here.
            let requested = state.request_mode(&session, &host, mode.clone(), self.now())?;
            let change = Change::new(session_id)
                .write(Write::UpdateAgentState(requested.state.clone()))
                .events(requested.events)
                .activity(self.now());
            self.commit(change).await.map(|_| AgentState {
                version: requested.state.version + 1,
                ..requested.state
            })
        })
    }
}
