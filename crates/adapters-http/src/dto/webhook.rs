//! Webhooks and their deliveries on the wire. A secret appears only in the
//! answers that create it (creation, rotation).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tandem_domain::{
    self as domain, NewWebhook, SessionId, WebhookDescription, WebhookEventTypes, WebhookPatch,
    WebhookUrl,
};
use tandem_service::{Invalid, WebhookWithSecret};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::enums::{DeliveryStatus, DisabledReason, WebhookFormat};
use super::validate::invalid;

/// An event a webhook can receive: a type of the event catalog, or
/// `prompt.submitted:pending_approval` (prompts waiting for the host's
/// approval only). The list comes from the domain's catalog.
pub(crate) struct WebhookEventType;

impl utoipa::PartialSchema for WebhookEventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let mut values: Vec<&str> = domain::EventType::ALL
            .iter()
            .map(|kind| kind.as_str())
            .collect();
        values.push(domain::EventSelector::PROMPT_AWAITING_APPROVAL.as_str());
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(values))
            .description(Some(
                "An event a webhook can receive: a type of the event catalog, or \
                 `prompt.submitted:pending_approval` (prompts waiting for the host's approval only).",
            ))
            .into()
    }
}

impl ToSchema for WebhookEventType {}

/// A field of a change that may be absent (keep the value), `null` (clear it)
/// or a value (set it).
#[derive(Debug, Default)]
pub(crate) enum Nullable<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|value| value.map_or(Self::Clear, Self::Set))
    }
}

impl<T> Nullable<T> {
    /// The domain's form: `None` keeps, `Some(None)` clears, `Some(Some(_))` sets.
    #[expect(
        clippy::option_option,
        reason = "the domain's patch says keep, clear or set with nested options"
    )]
    fn parse<U, E>(self, parse: impl FnOnce(T) -> Result<U, E>) -> Result<Option<Option<U>>, E> {
        match self {
            Self::Keep => Ok(None),
            Self::Clear => Ok(Some(None)),
            Self::Set(value) => parse(value).map(|parsed| Some(Some(parsed))),
        }
    }
}

fn event_types(
    raw: Option<&[String]>,
) -> Result<Option<WebhookEventTypes>, domain::ValidationError> {
    raw.map(|names| WebhookEventTypes::parse(names.iter().map(String::as_str)))
        .transpose()
}

/// A new webhook endpoint of the key's workspace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateWebhookRequest {
    /// Where events are sent (`POST`): an `https://` URL (plain `http://` only where the
    /// server allows it), which must not point at a loopback, private,
    /// link-local or metadata address.
    #[schema(example = "https://hooks.example.com/tandem")]
    pub(crate) url: String,
    /// The events to send: types of the event catalog (`agent.permission_requested`,
    /// `prompt.failed`, ...) or `prompt.submitted:pending_approval` (prompts
    /// that wait for the host's approval). Default: those four that need
    /// someone: `prompt.submitted:pending_approval`,
    /// `agent.permission_requested`, `prompt.failed`, `session.closed`.
    #[schema(
        value_type = Option<Vec<WebhookEventType>>,
        min_items = 1,
        example = json!(["prompt.submitted:pending_approval", "agent.permission_requested"])
    )]
    pub(crate) event_types: Option<Vec<String>>,
    /// Only this session's events (of the same workspace); default: every
    /// session of the workspace.
    pub(crate) session_id: Option<Uuid>,
    /// A note for people.
    pub(crate) description: Option<String>,
    /// `standard` (default) or `slack`.
    pub(crate) format: Option<WebhookFormat>,
    /// Whether it receives events (default true).
    pub(crate) enabled: Option<bool>,
}

impl CreateWebhookRequest {
    /// The validated endpoint, or every invalid field.
    pub(crate) fn parse(self) -> Result<NewWebhook, Invalid> {
        let url = WebhookUrl::parse(&self.url);
        let types = event_types(self.event_types.as_deref());
        let description = self
            .description
            .as_deref()
            .map(WebhookDescription::parse)
            .transpose();
        match (url, types, description) {
            (Ok(url), Ok(event_types), Ok(description)) => Ok(NewWebhook {
                url,
                event_types: event_types.unwrap_or_else(WebhookEventTypes::needs_you),
                session_id: self.session_id.map(SessionId::from_uuid),
                description,
                format: self
                    .format
                    .map_or(domain::WebhookFormat::Standard, Into::into),
                enabled: self.enabled.unwrap_or(true),
            }),
            (url, types, description) => Err(invalid([url.err(), types.err(), description.err()])),
        }
    }
}

/// A change of a webhook; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UpdateWebhookRequest {
    pub(crate) url: Option<String>,
    /// As at creation.
    #[schema(value_type = Option<Vec<WebhookEventType>>, min_items = 1)]
    pub(crate) event_types: Option<Vec<String>>,
    /// A session of the workspace, or `null` for every session. Pointing the
    /// webhook at other sessions starts its deliveries from now.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>, nullable)]
    pub(crate) session_id: Nullable<Uuid>,
    /// A note for people, or `null` to remove it.
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable)]
    pub(crate) description: Nullable<String>,
    pub(crate) format: Option<WebhookFormat>,
    /// `false` stops deliveries; `true` starts them again from now (events of
    /// the time between are not sent).
    pub(crate) enabled: Option<bool>,
}

impl UpdateWebhookRequest {
    /// The validated change, or every invalid field.
    pub(crate) fn parse(self) -> Result<WebhookPatch, Invalid> {
        let url = self.url.as_deref().map(WebhookUrl::parse).transpose();
        let types = event_types(self.event_types.as_deref());
        let description = self
            .description
            .parse(|text| WebhookDescription::parse(&text));
        match (url, types, description) {
            (Ok(url), Ok(event_types), Ok(description)) => Ok(WebhookPatch {
                url,
                event_types,
                session_id: self
                    .session_id
                    .parse(|id| Ok::<_, std::convert::Infallible>(SessionId::from_uuid(id)))
                    .unwrap_or_else(|never| match never {}),
                description,
                format: self.format.map(Into::into),
                enabled: self.enabled,
            }),
            (url, types, description) => Err(invalid([url.err(), types.err(), description.err()])),
        }
    }
}

/// A webhook endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookResponse {
    pub(crate) id: Uuid,
    pub(crate) url: String,
    /// The events it receives (see `CreateWebhookRequest.eventTypes`).
    #[schema(value_type = Vec<WebhookEventType>)]
    pub(crate) event_types: Vec<String>,
    /// The one session it hears of; `null` for every session of the workspace.
    #[schema(required = true)]
    pub(crate) session_id: Option<Uuid>,
    #[schema(required = true)]
    pub(crate) description: Option<String>,
    pub(crate) format: WebhookFormat,
    pub(crate) enabled: bool,
    /// When it was disabled; `null` while it is enabled.
    #[schema(required = true)]
    pub(crate) disabled_at: Option<DateTime<Utc>>,
    /// Why it was disabled; `null` while it is enabled.
    #[schema(required = true)]
    pub(crate) disabled_reason: Option<DisabledReason>,
    /// Until when the secret replaced by the last rotation still signs
    /// requests beside the new one; `null` if none does.
    #[schema(required = true)]
    pub(crate) previous_secret_expires_at: Option<DateTime<Utc>>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl From<&domain::WebhookEndpoint> for WebhookResponse {
    fn from(webhook: &domain::WebhookEndpoint) -> Self {
        let disabled = webhook.disabled();
        Self {
            id: webhook.id().as_uuid(),
            url: webhook.url().to_string(),
            event_types: webhook
                .event_types()
                .iter()
                .map(|selector| selector.as_str().to_owned())
                .collect(),
            session_id: webhook.session_id().map(|id| id.as_uuid()),
            description: webhook.description().map(|d| d.as_str().to_owned()),
            format: webhook.format().into(),
            enabled: webhook.is_enabled(),
            disabled_at: disabled.map(|d| d.at),
            disabled_reason: disabled.map(|d| d.reason.into()),
            previous_secret_expires_at: webhook.previous_secret().map(|p| p.expires_at),
            created_at: webhook.created_at(),
            updated_at: webhook.updated_at(),
        }
    }
}

/// A webhook with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookSecretResponse {
    pub(crate) webhook: WebhookResponse,
    /// The signing secret (`whsec_` + base64), for verifying the
    /// `webhook-signature` of requests (Standard Webhooks); shown only here.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub(crate) secret: String,
}

impl From<&WebhookWithSecret> for WebhookSecretResponse {
    fn from(created: &WebhookWithSecret) -> Self {
        Self {
            webhook: WebhookResponse::from(&created.webhook),
            secret: created.secret.expose().to_owned(),
        }
    }
}

/// A page of webhooks, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookPage {
    pub(crate) webhooks: Vec<WebhookResponse>,
    /// The cursor of the next page (`?after=`), or `null` on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<Uuid>,
}

/// The delivery of one event to a webhook, as its last attempt left it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookDeliveryResponse {
    pub(crate) id: Uuid,
    pub(crate) webhook_id: Uuid,
    pub(crate) session_id: Uuid,
    /// The event's `seq` in its session's log.
    pub(crate) seq: u64,
    pub(crate) event_type: String,
    pub(crate) status: DeliveryStatus,
    /// Attempts made so far.
    pub(crate) attempts: u32,
    /// The HTTP status of the last answer; `null` if there was none (timeout,
    /// connection error, refused target).
    #[schema(required = true)]
    pub(crate) response_status: Option<u16>,
    /// How long the last attempt took, in milliseconds.
    #[schema(required = true)]
    pub(crate) latency_ms: Option<u32>,
    /// Why the last attempt failed; `null` if it succeeded.
    #[schema(required = true)]
    pub(crate) error: Option<String>,
    /// When it was first attempted.
    pub(crate) created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub(crate) last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due (`pending` only).
    #[schema(required = true)]
    pub(crate) next_attempt_at: Option<DateTime<Utc>>,
}

impl From<&domain::WebhookDelivery> for WebhookDeliveryResponse {
    fn from(delivery: &domain::WebhookDelivery) -> Self {
        Self {
            id: delivery.id.as_uuid(),
            webhook_id: delivery.webhook_id.as_uuid(),
            session_id: delivery.session_id.as_uuid(),
            seq: delivery.seq.get(),
            event_type: delivery.event_type.clone(),
            status: delivery.status.into(),
            attempts: delivery.attempts,
            response_status: delivery.response_status,
            latency_ms: delivery.latency_ms,
            error: delivery.error.clone(),
            created_at: delivery.created_at,
            last_attempt_at: delivery.last_attempt_at,
            next_attempt_at: delivery.next_attempt_at,
        }
    }
}

/// A page of a webhook's deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookDeliveryPage {
    pub(crate) deliveries: Vec<WebhookDeliveryResponse>,
    /// The cursor of the next page (`?after=`), or `null` on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<Uuid>,
}

/// A page of deliveries, optionally of one status.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryListQuery {
    /// Only deliveries with this status.
    pub(crate) status: Option<DeliveryStatus>,
    /// The `next` cursor of the previous page.
    pub(crate) after: Option<Uuid>,
    /// How many deliveries to return (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub(crate) limit: Option<u32>,
}
