//! Comments on the wire.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_domain::{self as domain, CommentText, TextLimits};
use tandem_service::Invalid;
use utoipa::ToSchema;
use uuid::Uuid;

use super::validate::at;

/// A new comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PostCommentRequest {
    /// The comment (at most 8,192 characters by default; not blank; no
    /// control characters but line breaks and tabs).
    pub(crate) text: String,
}

impl PostCommentRequest {
    /// The validated text.
    pub(crate) fn parse(self, limits: &TextLimits) -> Result<CommentText, Invalid> {
        at("text", CommentText::parse(&self.text, limits)).map_err(Invalid::from)
    }
}

/// A comment of a participant.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommentResponse {
    pub(crate) id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) author_participant_id: Uuid,
    pub(crate) text: String,
    pub(crate) created_at: DateTime<Utc>,
}

impl From<&domain::Comment> for CommentResponse {
    fn from(comment: &domain::Comment) -> Self {
        Self {
            id: comment.id.as_uuid(),
            session_id: comment.session_id.as_uuid(),
            author_participant_id: comment.author.as_uuid(),
            text: comment.text.to_string(),
            created_at: comment.created_at,
        }
    }
}

/// A page of comments, in posting order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommentPage {
    pub(crate) comments: Vec<CommentResponse>,
    /// The cursor of the next page (`?after=`), or `null` on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<Uuid>,
}
