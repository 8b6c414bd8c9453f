//! Comments: read by everyone, posted per the permission matrix.

use tandem_domain::{Comment, CommentId, CommentText, SessionId};
use tandem_ports::{Change, Page, Write};
use uuid::Uuid;

use crate::credentials::Caller;
use crate::error::ServiceError;
use crate::{Tandem, retry_on_conflict};

impl Tandem {
    /// A session's comments in posting order.
    pub async fn list_comments(
        &self,
        caller: &Caller,
        session_id: SessionId,
        page: Page<CommentId>,
    ) -> Result<Vec<Comment>, ServiceError> {
        self.visible_session(caller, session_id).await?;
        self.store
            .comments(session_id, page)
            .await
            .map_err(ServiceError::Store)
    }

    /// A participant posts a comment, if its role may comment in the session's mode.
    pub async fn post_comment(
        &self,
        caller: &Caller,
        session_id: SessionId,
        text: CommentText,
    ) -> Result<Comment, ServiceError> {
        let id = CommentId::from_uuid(Uuid::now_v7());
        retry_on_conflict!({
            let (session, author) = self.acting(caller, session_id).await?;
            let now = self.now();
            let posted = Comment::post(id, &session, &author, text.clone(), now)?;
            let change = Change::new(session_id)
                .write(Write::InsertComment(posted.state.clone()))
                .events(posted.events)
                .activity(now);
            self.commit(change).await.map(|_| posted.state)
        })
    }
}
