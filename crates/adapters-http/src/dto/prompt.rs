//! Prompts on the wire.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_domain::{self as domain, PromptText, TextLimits};
use tandem_service::Invalid;
use utoipa::ToSchema;
use uuid::Uuid;

use super::enums::{PromptStatus, StopReason};
use super::validate::at;

/// A new prompt, or a pending prompt's new text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PromptTextRequest {
    /// What to ask the agent (at most 32,768 characters by default; not
    /// blank; no control characters but line breaks and tabs).
    pub(crate) text: String,
}

impl PromptTextRequest {
    /// The validated text.
    pub(crate) fn parse(self, limits: &TextLimits) -> Result<PromptText, Invalid> {
        at("text", PromptText::parse(&self.text, limits)).map_err(Invalid::from)
    }
}

/// A prompt, from its submission to the agent's result.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptResponse {
    pub(crate) id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) author_participant_id: Uuid,
    pub(crate) text: String,
    pub(crate) status: PromptStatus,
    pub(crate) created_at: DateTime<Utc>,
    /// When the prompt entered the queue.
    #[schema(required = true)]
    pub(crate) queued_at: Option<DateTime<Utc>>,
    /// When the host approved or rejected it.
    #[schema(required = true)]
    pub(crate) resolved_at: Option<DateTime<Utc>>,
    /// The host who approved or rejected it.
    #[schema(required = true)]
    pub(crate) resolved_by: Option<Uuid>,
    #[schema(required = true)]
    pub(crate) started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// Why the agent ended its turn, once completed.
    #[schema(required = true)]
    pub(crate) stop_reason: Option<StopReason>,
    /// What went wrong, if the prompt failed.
    #[schema(required = true)]
    pub(crate) error: Option<String>,
    /// The finished prompt this one retries.
    #[schema(required = true)]
    pub(crate) retry_of: Option<Uuid>,
}

impl From<&domain::Prompt> for PromptResponse {
    fn from(prompt: &domain::Prompt) -> Self {
        Self {
            id: prompt.id.as_uuid(),
            session_id: prompt.session_id.as_uuid(),
            author_participant_id: prompt.author.as_uuid(),
            text: prompt.text.to_string(),
            status: prompt.status.into(),
            created_at: prompt.created_at,
            queued_at: prompt.queued_at,
            resolved_at: prompt.resolved_at,
            resolved_by: prompt.resolved_by.map(|id| id.as_uuid()),
            started_at: prompt.started_at,
            finished_at: prompt.finished_at,
            stop_reason: prompt.stop_reason.map(Into::into),
            error: prompt.error.clone(),
            retry_of: prompt.retry_of.map(|id| id.as_uuid()),
        }
    }
}

/// A page of prompts, in submission order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptPage {
    pub(crate) prompts: Vec<PromptResponse>,
    /// The cursor of the next page (`?after=`), or `null` on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<Uuid>,
}
