//! `string_enum!`: a closed set of values with one stable text form, used alike in
//! the database, on the wire and in messages.

/// A text that names no variant of the enum it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}: {value:?}")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

/// A closed set of values, each written as its text (`#[serde(rename)]`), with
/// `ALL`, `as_str`, `Display` and `FromStr`.
///
/// Its invocations are payload types (see `payload_types.rs`): the HTTP adapter
/// re-creates the serde form of the enum from them.
macro_rules! string_enum {
    (
        $(#[$($doc:tt)*])*
        $name:ident ($kind:literal) {
            $( $(#[$($vdoc:tt)*])* $variant:ident => $text:tt ),+ $(,)?
        }
    ) => {
        $(#[$($doc)*])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$($vdoc)*])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stable text form (database, wire, messages).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text ),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::enums::UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok(Self::$variant), )+
                    other => Err($crate::enums::UnknownVariant { kind: $kind, value: other.to_owned() }),
                }
            }
        }
    };
}

pub(crate) use string_enum;
