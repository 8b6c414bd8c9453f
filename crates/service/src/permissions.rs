//! Agent permission requests: the host answers them; events of the session show
//! them to everyone.

use tandem_domain::{
    Event, PermissionAnswer, PermissionRequest, PermissionRequestId, PromptId, Seq, SessionId,
};
use tandem_ports::{Change, Write};

use crate::credentials::Caller;
use crate::error::{Resource, ServiceError, read_error};
use crate::{Tandem, retry_on_conflict};

impl Tandem {
    /// The host answers an open permission request of the agent.
    pub async fn answer_permission(
        &self,
        caller: &Caller,
        session_id: SessionId,
        id: PermissionRequestId,
        answer: PermissionAnswer,
    ) -> Result<PermissionRequest, ServiceError> {
        retry_on_conflict!({
            let (session, host) = self.acting(caller, session_id).await?;
            let request = self
                .store
                .permission_request(id)
                .await
                .map_err(read_error(Resource::PermissionRequest))?;
            if request.session_id != session_id {
                return Err(ServiceError::NotFound(Resource::PermissionRequest));
            }
            let answered = request.answer(&session, &host, answer.clone(), self.now())?;
            let change = Change::new(session_id)
                .write(Write::UpdatePermissionRequest(answered.state.clone()))
                .events(answered.events)
                .activity(self.now());
            self.commit(change).await.map(|_| answered.state)
        })
    }

    /// The agent's permission requests of one prompt that wait for an answer,
    /// oldest first: what a host who arrives late (or a client without the
    /// event stream) answers.
    pub async fn open_permission_requests(
        &self,
        caller: &Caller,
        session_id: SessionId,
        prompt_id: PromptId,
    ) -> Result<Vec<PermissionRequest>, ServiceError> {
        self.visible_session(caller, session_id).await?;
        self.prompt_of(session_id, prompt_id).await?;
        self.store
            .open_permission_requests(prompt_id)
            .await
            .map_err(ServiceError::Store)
    }

    /// A page of the session's event log after `after`, in `seq` order.
    pub async fn events(
        &self,
        caller: &Caller,
        session_id: SessionId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Event>, ServiceError> {
        self.visible_session(caller, session_id).await?;
        self.store
            .events(session_id, after, limit)
            .await
            .map_err(ServiceError::Store)
    }
}
