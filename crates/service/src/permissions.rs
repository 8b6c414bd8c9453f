//! Agent permission requests: the host answers them; events of the session show
//! them to everyone.

use tandem_domain::{
    Event, PermissionAnswer, PermissionRequest, PermissionRequestId, Seq, SessionId,
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
