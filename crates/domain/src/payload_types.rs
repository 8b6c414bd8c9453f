//! The payload types: what an event's `data` is made of (its payload structs,
//! and the ids, texts and enums in them), defined once and handed to adapters
//! as tokens.
//!
//! They are defined inside `payload_types!` blocks, one per module. A block
//! defines its types here, as written, and exports the very same definitions as
//! a macro; `payload_type_definitions!` hands all of them to an adapter's macro,
//! which derives what it needs from them. The HTTP adapter derives the OpenAPI
//! schema of each event type's `data` this way
//! (`adapters-http/src/dto/event/data.rs`), so the domain knows no such
//! framework and the catalog is still written once.
//!
//! An adapter's macro receives ordinary item definitions (`pub struct`,
//! `pub enum`, with their doc comments, derives and `#[serde]` attributes) and
//! the invocations of the domain's type macros, as written: `string_enum!`,
//! `uuid_id!`, `slug!`, `text_value!` and `event_catalog!`. An adapter that
//! reads those invocations re-creates what they expand to, so a change to one
//! of these macros' serde forms is a change there too; the sample payloads
//! (`samples.rs`, feature `testing`) are what the adapters check against.

/// Defines the items of a block and exports them, as tokens, under `$export`.
///
/// The first token is `$` itself: the exported macro needs one of its own to
/// name its parameter, and a macro can only write a `$` it was given.
macro_rules! payload_types {
    ($d:tt $export:ident; $($item:tt)*) => {
        $($item)*

        #[doc(hidden)]
        #[macro_export]
        macro_rules! $export {
            ($d callback:ident) => {
                $d callback! { $($item)* }
            };
        }
    };
}

pub(crate) use payload_types;

/// Hands the definitions of every payload type to `$callback!`, one block per
/// call (the blocks of `ids`, `text`, `session`, `participant`, `prompt`,
/// `permission_request`, `agent`, `redaction` and `event`).
///
/// The block of `event` holds the event catalog (`event_catalog! { ... }`).
/// `Ttl` is not among them: it is sent as its display text (`24h`, through
/// `#[serde(into = "String")]`) while its definition holds seconds, and what
/// derives from a definition sees the seconds. An adapter describes it itself.
#[macro_export]
macro_rules! payload_type_definitions {
    ($callback:ident) => {
        $crate::__payload_types_ids!($callback);
        $crate::__payload_types_text!($callback);
        $crate::__payload_types_session!($callback);
        $crate::__payload_types_participant!($callback);
        $crate::__payload_types_prompt!($callback);
        $crate::__payload_types_permission_request!($callback);
        $crate::__payload_types_agent!($callback);
        $crate::__payload_types_redaction!($callback);
        $crate::__payload_types_event!($callback);
    };
}
