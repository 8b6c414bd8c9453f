//! Events on the wire: the JSON page of a session's log. The SSE stream sends the
//! same `EventResponse` object as each frame's `data`.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tandem_domain::{Actor, Event, EventType};
use utoipa::openapi::schema::{
    Discriminator, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

mod data;

/// What kind of actor caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActorKind {
    Participant,
    ApiKey,
    Agent,
    System,
}

/// Who caused an event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActorResponse {
    pub(crate) kind: ActorKind,
    /// The participant's or API key's id; `null` for the agent and the system.
    #[schema(required = true)]
    pub(crate) id: Option<Uuid>,
}

impl From<&Actor> for ActorResponse {
    fn from(actor: &Actor) -> Self {
        let (kind, id) = match actor {
            Actor::Participant { id } => (ActorKind::Participant, Some(id.as_uuid())),
            Actor::ApiKey { id } => (ActorKind::ApiKey, Some(id.as_uuid())),
            Actor::Agent => (ActorKind::Agent, None),
            Actor::System => (ActorKind::System, None),
        };
        Self { kind, id }
    }
}

/// One event of a session's log. Its schema is a union discriminated by `type`:
/// one variant per type of the domain's catalog, each with its own `data`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventResponse {
    pub(crate) seq: u64,
    pub(crate) r#type: EventType,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) actor: ActorResponse,
    pub(crate) data: serde_json::Value,
}

impl From<&Event> for EventResponse {
    fn from(event: &Event) -> Self {
        Self {
            seq: event.seq.get(),
            r#type: event.payload.kind(),
            created_at: event.at,
            actor: (&event.actor).into(),
            data: event.payload.data(),
        }
    }
}

/// The name of the schema of one event type's events: `session.created` is
/// `SessionCreatedEvent`.
fn variant_schema_name(kind: EventType) -> String {
    let mut name = String::new();
    for word in kind.as_str().split(['.', '_']) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name.push_str("Event");
    name
}

/// The schema of the events of one type: `type` is that type's name and `data`
/// its payload.
fn variant_schema(kind: EventType) -> Schema {
    ObjectBuilder::new()
        .property(
            "seq",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1))
                .description(Some(
                    "The event's position in its session's log: 1, 2, 3, ... with no gaps.",
                )),
        )
        .required("seq")
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind.as_str()])),
        )
        .required("type")
        .property(
            "createdAt",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .required("createdAt")
        .property("actor", Ref::from_schema_name(ActorResponse::name()))
        .required("actor")
        .property("data", data::data_schema(kind))
        .required("data")
        .description(Some(format!("An event of type `{kind}`.")))
        .into()
}

impl PartialSchema for EventResponse {
    fn schema() -> RefOr<Schema> {
        let mut union = OneOfBuilder::new().description(Some(
            "One event of a session's log: `type` says which, and `data` has that type's shape.",
        ));
        let mut discriminator = Discriminator::new("type");
        for kind in EventType::ALL {
            let name = variant_schema_name(*kind);
            discriminator.mapping.insert(
                kind.as_str().to_owned(),
                format!("#/components/schemas/{name}"),
            );
            union = union.item(Ref::from_schema_name(name));
        }
        union.discriminator(Some(discriminator)).into()
    }
}

impl ToSchema for EventResponse {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Event")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((ActorResponse::name().into_owned(), ActorResponse::schema()));
        <ActorResponse as ToSchema>::schemas(schemas);
        for kind in EventType::ALL {
            schemas.push((variant_schema_name(*kind), variant_schema(*kind).into()));
        }
        data::data_schemas(schemas);
    }
}

/// A one-use stream ticket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StreamTicketResponse {
    /// The ticket: pass it once as `?ticket=`.
    pub(crate) ticket: String,
    /// When the unused ticket stops working.
    pub(crate) expires_at: chrono::DateTime<chrono::Utc>,
    /// The stream's URL with the ticket, ready for `new EventSource(url)`.
    pub(crate) url: String,
}

/// A page of a session's events, in `seq` order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventPage {
    pub(crate) events: Vec<EventResponse>,
    /// The `seq` to pass as `?after=` for the next page, or `null` when this page
    /// reached the end of the log.
    #[schema(required = true)]
    pub(crate) next: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_type_has_a_schema_named_after_it() {
        assert_eq!(
            variant_schema_name(EventType::AgentPermissionRequested),
            "AgentPermissionRequestedEvent"
        );
        assert_eq!(
            variant_schema_name(EventType::SessionCreated),
            "SessionCreatedEvent"
        );
    }
}
