//! The wire types' definitions, written once and handed to adapters as tokens.
//!
//! The types an event's `data` is made of are defined inside `wire_types!`
//! blocks. Each block defines its types here, as written, and exports the very
//! same definitions as a macro; `wire_definitions!` hands all of them to an
//! adapter's macro, which derives what it needs from them. The HTTP adapter
//! derives the OpenAPI schema of each event type's `data` this way, so the
//! domain knows no such framework and the catalog is still written once.
//!
//! An adapter's macro receives ordinary item definitions (`pub struct`,
//! `pub enum`, with their doc comments, derives and `#[serde]` attributes) and
//! the invocations of the domain's type macros as written: `string_enum!`,
//! `uuid_id!`, `slug!`, `text_value!` and `event_catalog!`. They arrive as plain
//! token trees, as written in the source.

/// Defines the items of a block and exports them, as tokens, under `$export`.
///
/// The first token is `$` itself: the exported macro needs one of its own to
/// name its parameter, and a macro can only write a `$` it was given.
macro_rules! wire_types {
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

pub(crate) use wire_types;

/// Hands the definitions of every wire type to `$callback!`, one block per
/// call (the blocks of `ids`, `text`, `session`, `participant`, `prompt`,
/// `permission_request`, `agent`, `redaction` and `event`).
///
/// The block of `event` holds the event catalog (`event_catalog! { ... }`).
/// `Ttl` is not among them: its wire form is the text its own `Display` writes
/// (`#[serde(into = "String")]`), which no definition shows.
#[macro_export]
macro_rules! wire_definitions {
    ($callback:ident) => {
        $crate::__wire_ids!($callback);
        $crate::__wire_text!($callback);
        $crate::__wire_session!($callback);
        $crate::__wire_participant!($callback);
        $crate::__wire_prompt!($callback);
        $crate::__wire_permission_request!($callback);
        $crate::__wire_agent!($callback);
        $crate::__wire_redaction!($callback);
        $crate::__wire_event!($callback);
    };
}
