//! The schema of each event type's `data`, derived from the domain's own
//! definitions of its payload types.
//!
//! `tandem_domain::payload_type_definitions!` hands those definitions over as
//! tokens, and `mirror!` declares each type again here: same name, same doc
//! comments, same `#[serde]` attributes, but `#[derive(ToSchema)]` instead of
//! the domain's derives. A field's type names the mirror of its domain type,
//! so the schemas follow the definitions. For the domain's type macros
//! (`string_enum!`, `uuid_id!`, `slug!`, `text_value!`, `event_catalog!`)
//! `mirror!` re-creates the serde form they expand to. The domain's sample
//! payloads, serialized by the domain, are checked against these schemas
//! (`tests`), so a mirror that drifts from its type fails there.
//!
//! A struct's field is required unless serde may leave it out
//! (`skip_serializing_if`): an `Option` that is always sent is required and
//! nullable. Fields of enum variants are taken as written.

#![expect(
    dead_code,
    reason = "the mirrors only describe schemas: nothing builds or reads them"
)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tandem_domain::EventType;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

/// Declares the mirror of each definition it is given (see the module's doc).
///
/// Everything is matched as token trees, identifiers and types, never as
/// `meta` or `literal` fragments: `ToSchema` cannot see into those.
macro_rules! mirror {
    () => {};

    // An item's attributes, one by one: all but `derive` are kept.
    (@attrs [$($kept:tt)*] #[derive $derives:tt] $($rest:tt)*) => {
        mirror!(@attrs [$($kept)*] $($rest)*);
    };
    (@attrs [$($kept:tt)*] #[$($attr:tt)*] $($rest:tt)*) => {
        mirror!(@attrs [$($kept)* #[$($attr)*]] $($rest)*);
    };
    (@attrs [$($kept:tt)*] pub struct $name:ident { $($fields:tt)* } $($rest:tt)*) => {
        mirror!(@fields [$($kept)* struct $name] [] $($fields)*);
        mirror! { $($rest)* }
    };
    (@attrs [$($kept:tt)*] pub struct $name:ident ($vis:vis $inner:ty); $($rest:tt)*) => {
        #[derive(ToSchema)]
        $($kept)*
        struct $name($inner);
        mirror! { $($rest)* }
    };
    (@attrs [$($kept:tt)*] pub enum $name:ident { $($variants:tt)* } $($rest:tt)*) => {
        #[derive(ToSchema)]
        $($kept)*
        enum $name { $($variants)* }
        mirror! { $($rest)* }
    };
    (@attrs $kept:tt $($other:tt)*) => {
        compile_error!(concat!("no mirror for: ", stringify!($($other)*)));
    };

    // A struct's fields, one by one: `@fields [head] [fields done] rest`, and
    // for each field `@field [head] [fields done] [its attributes] required?`.
    (@fields [$($head:tt)*] [$($done:tt)*] $(,)?) => {
        #[derive(ToSchema)]
        $($head)* { $($done)* }
    };
    (@fields $head:tt $done:tt $($rest:tt)+) => {
        mirror!(@field $head $done [] required $($rest)+);
    };
    (@field $head:tt $done:tt [$($attrs:tt)*] $required:ident
        #[serde($($args:tt)*)] $($rest:tt)*
    ) => {
        mirror!(@skipped [$($args)*] $head $done [$($attrs)* #[serde($($args)*)]] $required
            $($rest)*);
    };
    (@field $head:tt $done:tt [$($attrs:tt)*] $required:ident #[$($attr:tt)*] $($rest:tt)*) => {
        mirror!(@field $head $done [$($attrs)* #[$($attr)*]] $required $($rest)*);
    };
    // Whether a `#[serde(..)]` of the field says `skip_serializing_if`.
    (@skipped [skip_serializing_if $($args:tt)*] $head:tt $done:tt $attrs:tt $required:ident
        $($rest:tt)*
    ) => {
        mirror!(@field $head $done $attrs optional $($rest)*);
    };
    (@skipped [$arg:tt $($args:tt)*] $($state:tt)*) => {
        mirror!(@skipped [$($args)*] $($state)*);
    };
    (@skipped [] $($state:tt)*) => {
        mirror!(@field $($state)*);
    };
    (@field $head:tt [$($done:tt)*] [$($attrs:tt)*] required
        $vis:vis $name:ident : $type:ty $(, $($rest:tt)*)?
    ) => {
        mirror!(@fields $head [$($done)* $($attrs)* #[schema(required = true)] $name: $type,]
            $($($rest)*)?);
    };
    (@field $head:tt [$($done:tt)*] [$($attrs:tt)*] optional
        $vis:vis $name:ident : $type:ty $(, $($rest:tt)*)?
    ) => {
        mirror!(@fields $head [$($done)* $($attrs)* $name: $type,] $($($rest)*)?);
    };

    // One type of the event catalog: its `data` schema, the named schemas
    // that one refers to, and for a struct variant the struct of its fields.
    (@data_schema $variant:ident ($payload:ty)) => {
        <$payload as PartialSchema>::schema()
    };
    (@data_schema $variant:ident { $($fields:tt)* }) => {
        <variant::$variant as PartialSchema>::schema()
    };
    (@data_schemas $out:ident $variant:ident ($payload:ty)) => {
        <$payload as ToSchema>::schemas($out)
    };
    (@data_schemas $out:ident $variant:ident { $($fields:tt)* }) => {
        <variant::$variant as ToSchema>::schemas($out)
    };
    (@variant $variant:ident ($payload:ty)) => {};
    (@variant $variant:ident { $($fields:tt)* }) => {
        mirror!(@fields [#[serde(rename_all = "camelCase")] pub(super) struct $variant] []
            $($fields)*);
    };

    // The domain's type macros, as invoked there.
    (
        string_enum! {
            $(#[$($doc:tt)*])*
            $name:ident ($kind:tt) {
                $( $(#[$($vdoc:tt)*])* $variant:ident => $text:tt ),+ $(,)?
            }
        }
        $($rest:tt)*
    ) => {
        #[derive(ToSchema)]
        $(#[$($doc)*])*
        enum $name {
            $( $(#[$($vdoc)*])* #[serde(rename = $text)] $variant ),+
        }
        mirror! { $($rest)* }
    };
    (uuid_id!($(#[$($doc:tt)*])* $name:ident); $($rest:tt)*) => {
        #[derive(ToSchema)]
        $(#[$($doc)*])*
        #[serde(transparent)]
        struct $name(Uuid);
        mirror! { $($rest)* }
    };
    // Slugs and texts: a string, whose limits the HTTP adapter's rules state
    // where clients send one.
    (slug!($(#[$($doc:tt)*])* $name:ident, $($limits:tt)*); $($rest:tt)*) => {
        #[derive(ToSchema)]
        $(#[$($doc)*])*
        #[serde(transparent)]
        struct $name(String);
        mirror! { $($rest)* }
    };
    (text_value!($(#[$($doc:tt)*])* $name:ident, $($limits:tt)*); $($rest:tt)*) => {
        #[derive(ToSchema)]
        $(#[$($doc)*])*
        #[serde(transparent)]
        struct $name(String);
        mirror! { $($rest)* }
    };
    (
        event_catalog! {
            $(#[doc = $doc:tt])*
            pub enum EventPayload {
                $( $(#[doc = $vdoc:tt])* $variant:ident => $wire:tt $body:tt ),+ $(,)?
            }
        }
        $($rest:tt)*
    ) => {
        /// The schema of `data` in events of type `kind` (OpenAPI 3.1).
        pub(super) fn data_schema(kind: EventType) -> RefOr<Schema> {
            match kind {
                $( EventType::$variant => mirror!(@data_schema $variant $body) ),+
            }
        }

        /// The named schemas the `data` schemas of all types refer to.
        pub(super) fn data_schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
            $( mirror!(@data_schemas out $variant $body); )+
        }

        /// The catalog's struct variants, each as a struct of its fields (the
        /// enum cannot describe them: its variants share one `data` property).
        mod variant {
            use super::*;

            $( mirror!(@variant $variant $body); )+
        }

        mirror! { $($rest)* }
    };

    // Any other item: its attributes first.
    ($($item:tt)+) => {
        mirror!(@attrs [] $($item)+);
    };
}

tandem_domain::payload_type_definitions!(mirror);

// The domain writes a `Ttl` as its display text (`90m`, `1d12h`; serde's
// `into = "String"`), which its definition does not show: this one mirror is
// written here.
/// A time-to-live between one second and 30 days, with whole-second precision.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^([0-9]{1,9}[smhd])+$", example = "24h")]
struct Ttl(u32);

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use tandem_domain::samples::every_payload;

    use super::*;

    /// Where `data` differs from the schema of `kind`'s `data`.
    fn errors(kind: EventType, data: &Value) -> Vec<String> {
        let mut named = Vec::new();
        data_schemas(&mut named);
        let components: serde_json::Map<String, Value> = named
            .into_iter()
            .map(|(name, schema)| (name, serde_json::to_value(schema).expect("JSON")))
            .collect();
        let schema = json!({
            "allOf": [data_schema(kind)],
            "components": {"schemas": components},
        });
        let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
        validator
            .iter_errors(data)
            .map(|error| format!("{error} at {}", error.instance_path()))
            .collect()
    }

    /// The domain's samples, serialized by the domain's own serde, match what
    /// the mirrors say: a mirror that drifted from its type fails here.
    #[test]
    fn every_sample_payload_matches_its_data_schema() {
        for (payload, _) in every_payload() {
            let data = payload.data();
            let errors = errors(payload.kind(), &data);
            assert!(errors.is_empty(), "{}: {errors:?}\n{data}", payload.kind());
        }
    }

    #[test]
    fn data_the_domain_would_not_send_does_not_match() {
        let (payload, _) = every_payload()
            .into_iter()
            .find(|(payload, _)| payload.kind() == EventType::AgentStarted)
            .expect("a sample of agent.started");
        let mut data = payload.data();
        data["resumption"] = json!("resumed");
        assert!(!errors(EventType::AgentStarted, &data).is_empty());
        let mut data = payload.data();
        data.as_object_mut().expect("an object").remove("workspace");
        assert!(!errors(EventType::AgentStarted, &data).is_empty());
    }

    fn required(kind: EventType) -> Vec<String> {
        let schema = serde_json::to_value(data_schema(kind)).expect("a schema is JSON");
        let Value::Array(names) = &schema["required"] else {
            panic!("{kind}: no required list in {schema}");
        };
        names
            .iter()
            .filter_map(|name| name.as_str().map(str::to_owned))
            .collect()
    }

    #[test]
    fn a_field_is_required_unless_serde_may_leave_it_out() {
        // A payload type: `workspace` is an `Option` always sent,
        // `resumeError` is left out when `None`.
        let started = required(EventType::AgentStarted);
        assert!(started.contains(&"workspace".to_owned()), "{started:?}");
        assert!(!started.contains(&"resumeError".to_owned()), "{started:?}");

        // A struct variant of the catalog: `redactions` is left out when empty.
        let failed = required(EventType::PromptFailed);
        assert_eq!(failed, ["promptId", "error"], "{failed:?}");

        // An `Option` always sent, in a struct variant.
        let cancelled = required(EventType::PromptCancelled);
        assert!(
            cancelled.contains(&"cancelledBy".to_owned()),
            "{cancelled:?}"
        );
    }
}
