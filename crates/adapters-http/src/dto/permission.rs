//! Agent permission requests on the wire.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_domain::{self as domain, PermissionAnswer, ValidationError, ValidationProblem};
use tandem_service::Invalid;
use utoipa::ToSchema;
use uuid::Uuid;

use super::enums::{PermissionCause, PermissionOptionKind};

/// The host's answer: exactly one of `optionId` or `reject: true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct AnswerPermissionRequest {
    /// Choose the agent's option with this id.
    pub(crate) option_id: Option<String>,
    /// Refuse the tool call (the agent's reject option, if it offered one).
    pub(crate) reject: Option<bool>,
}

/// Exactly one of the two answers, as `oneOf` (the derive would make both
/// fields optional and say nothing of the rule). `null` counts as absent.
impl utoipa::PartialSchema for AnswerPermissionRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let schema = serde_json::json!({
            "description": "The host's answer: exactly one of `optionId` or `reject: true` \
                (the other absent or `null`).",
            "oneOf": [
                {
                    "type": "object",
                    "title": "Select",
                    "required": ["optionId"],
                    "properties": {
                        "optionId": {
                            "type": "string",
                            "minLength": 1,
                            "description": "Choose the agent's option with this id (one of the request's `options`)."
                        },
                        "reject": { "type": "null" }
                    },
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "title": "Reject",
                    "required": ["reject"],
                    "properties": {
                        "reject": {
                            "type": "boolean",
                            "enum": [true],
                            "description": "Refuse the tool call (the agent's reject option, if it offered one)."
                        },
                        "optionId": { "type": "null" }
                    },
                    "additionalProperties": false
                }
            ]
        });
        serde_json::from_value(schema).expect("the answer's schema is a valid schema")
    }
}

impl ToSchema for AnswerPermissionRequest {}

impl AnswerPermissionRequest {
    /// The answer, or why the body names none or both.
    pub(crate) fn parse(self) -> Result<PermissionAnswer, Invalid> {
        match (self.option_id, self.reject) {
            (Some(id), None) if !id.is_empty() => Ok(PermissionAnswer::Select(id)),
            (Some(_), None) => {
                Err(ValidationError::new("optionId", ValidationProblem::Empty).into())
            }
            (None, Some(true)) => Ok(PermissionAnswer::Reject),
            (Some(_), Some(_)) => Err(ValidationError::new(
                "reject",
                ValidationProblem::OutOfRange("absent when optionId is given"),
            )
            .into()),
            (None, Some(false) | None) => Err(ValidationError::new(
                "optionId",
                ValidationProblem::Format(
                    "the id of an option the agent offered, unless reject is true",
                ),
            )
            .into()),
        }
    }
}

/// One answer the agent offered.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PermissionOptionResponse {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: PermissionOptionKind,
}

/// How a request was resolved.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PermissionResolutionResponse {
    /// Whether one of the agent's options was chosen (`selected`) or none
    /// (`cancelled`).
    pub(crate) outcome: ResolutionOutcome,
    /// The chosen option, when `outcome` is `selected`.
    #[schema(required = true)]
    pub(crate) option_id: Option<String>,
    pub(crate) cause: PermissionCause,
    /// The host who answered, when `cause` is `host`.
    #[schema(required = true)]
    pub(crate) resolved_by: Option<Uuid>,
    pub(crate) resolved_at: DateTime<Utc>,
}

/// Whether an option was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ResolutionOutcome {
    Selected,
    Cancelled,
}

/// A request of the agent to run a tool.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PermissionRequestResponse {
    pub(crate) id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) prompt_id: Uuid,
    /// The agent's tool call, as the agent sent it.
    #[schema(value_type = Object)]
    pub(crate) tool_call: serde_json::Value,
    pub(crate) options: Vec<PermissionOptionResponse>,
    pub(crate) created_at: DateTime<Utc>,
    /// When an unanswered request is rejected.
    pub(crate) deadline: DateTime<Utc>,
    /// How it was resolved; `null` while open.
    #[schema(required = true)]
    pub(crate) resolution: Option<PermissionResolutionResponse>,
}

impl From<&domain::PermissionRequest> for PermissionRequestResponse {
    fn from(request: &domain::PermissionRequest) -> Self {
        Self {
            id: request.id.as_uuid(),
            session_id: request.session_id.as_uuid(),
            prompt_id: request.prompt_id.as_uuid(),
            tool_call: request.tool_call.clone(),
            options: request
                .options
                .iter()
                .map(|option| PermissionOptionResponse {
                    id: option.id.clone(),
                    name: option.name.clone(),
                    kind: option.kind.into(),
                })
                .collect(),
            created_at: request.created_at,
            deadline: request.deadline,
            resolution: request.resolution.as_ref().map(|resolution| {
                let (outcome, option_id) = match &resolution.outcome {
                    domain::PermissionOutcome::Selected { option_id } => {
                        (ResolutionOutcome::Selected, Some(option_id.clone()))
                    }
                    domain::PermissionOutcome::Cancelled => (ResolutionOutcome::Cancelled, None),
                };
                PermissionResolutionResponse {
                    outcome,
                    option_id,
                    cause: resolution.cause.into(),
                    resolved_by: resolution.by.map(|id| id.as_uuid()),
                    resolved_at: resolution.at,
                }
            }),
        }
    }
}

/// A prompt's permission requests that wait for the host's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OpenPermissionRequests {
    /// Oldest first.
    pub(crate) permissions: Vec<PermissionRequestResponse>,
}
