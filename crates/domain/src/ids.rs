//! Identifiers: `UUIDv7` newtypes for entities, validated slugs for names that come
//! from configuration or from clients.
//!
//! The domain never generates identifiers (that needs randomness and the clock):
//! callers build them from a `Uuid` they generated, usually `Uuid::now_v7()`, so that
//! ids sort by creation time and keyset pagination by id follows creation order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ValidationError, ValidationProblem};
use crate::payload_types::payload_types;
use crate::text::check_label;

macro_rules! uuid_id {
    ($(#[$($doc:tt)*])* $name:ident) => {
        $(#[$($doc)*])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID; new identifiers should come from `Uuid::now_v7()`.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

/// Checks a slug: 1..=`max` characters of `a-z`, `0-9`, `-`, `_`, starting with a
/// letter or digit.
fn parse_slug(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::new(field, ValidationProblem::Empty));
    }
    if raw.chars().count() > max {
        return Err(ValidationError::new(
            field,
            ValidationProblem::TooLong {
                max,
                unit: "characters",
            },
        ));
    }
    let valid_start = raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid_chars = raw
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !(valid_start && valid_chars) {
        return Err(ValidationError::new(
            field,
            ValidationProblem::Format(
                "lowercase letters, digits, '-' and '_', starting with a letter or digit",
            ),
        ));
    }
    Ok(raw.to_owned())
}

macro_rules! slug {
    ($(#[$($doc:tt)*])* $name:ident, $field:literal, $max:literal) => {
        $(#[$($doc)*])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The longest accepted value, in characters.
            pub const MAX_CHARS: usize = $max;

            /// Parses a slug (`a-z`, `0-9`, `-`, `_`; at most `MAX_CHARS`).
            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                parse_slug($field, raw, $max).map(Self)
            }

            /// The slug as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

payload_types! {
    $ __payload_types_ids;

    uuid_id!(
        /// Identifies a shared agent session.
        SessionId
    );
    uuid_id!(
        /// Identifies one participant of one session (a join creates a new one).
        ParticipantId
    );
    uuid_id!(
        /// Identifies a comment.
        CommentId
    );
    uuid_id!(
        /// Identifies a prompt, from its submission to the agent's result.
        PromptId
    );
    uuid_id!(
        /// Identifies a request of the agent to run a tool.
        PermissionRequestId
    );

    slug!(
        /// The name of an agent profile of the server's configuration; clients pick a
        /// profile by name and never supply a command.
        AgentProfileName,
        "agentProfile",
        64
    );
}

uuid_id!(
    /// Identifies an invite link of a session.
    InviteId
);
uuid_id!(
    /// Identifies an API key (not the key itself, which is a secret).
    ApiKeyId
);
uuid_id!(
    /// Identifies a webhook endpoint of a workspace.
    WebhookId
);
uuid_id!(
    /// Identifies the delivery of one event to one webhook endpoint.
    WebhookDeliveryId
);

slug!(
    /// The tenant an API key and its sessions belong to; a key never reaches
    /// another workspace's sessions.
    WorkspaceId,
    "workspace",
    64
);

impl WorkspaceId {
    /// The workspace of the bootstrap admin key.
    pub fn default_workspace() -> Self {
        Self("default".to_owned())
    }
}

impl AgentProfileName {
    /// The profile a session uses when the client names none.
    pub fn default_profile() -> Self {
        Self("echo".to_owned())
    }
}

/// An opaque identifier of a user in the caller's own system (for example an SSO
/// subject). Tandem stores it and never interprets it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// The longest accepted value, in characters.
    pub const MAX_CHARS: usize = 256;

    /// Parses a user id: not blank, 1..=256 characters, no control characters;
    /// stored as given.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        check_label("userId", raw, Self::MAX_CHARS)?;
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = ValidationError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_round_trip_through_text() {
        let id = SessionId::from_uuid(Uuid::now_v7());
        assert_eq!(id.to_string().parse::<SessionId>().unwrap(), id);
        assert!("not-a-uuid".parse::<SessionId>().is_err());
    }

    #[test]
    fn slugs_accept_lowercase_digits_dash_underscore() {
        assert_eq!(WorkspaceId::parse("team-a_1").unwrap().as_str(), "team-a_1");
        assert!(WorkspaceId::parse("").is_err());
        assert!(WorkspaceId::parse("Team").is_err());
        assert!(WorkspaceId::parse("-lead").is_err());
        assert!(WorkspaceId::parse("a b").is_err());
        assert!(WorkspaceId::parse(&"a".repeat(64)).is_ok());
        assert!(WorkspaceId::parse(&"a".repeat(65)).is_err());
        assert!(AgentProfileName::parse("gemini").is_ok());
    }

    #[test]
    fn slugs_validate_when_deserialized() {
        assert!(serde_json::from_str::<WorkspaceId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<WorkspaceId>("\"NOT OK\"").is_err());
    }

    #[test]
    fn user_ids_reject_blank_long_and_control_characters() {
        assert!(UserId::parse("alice@example.com").is_ok());
        assert!(UserId::parse("  ").is_err());
        assert!(UserId::parse("a\nb").is_err());
        assert!(UserId::parse(&"x".repeat(257)).is_err());
    }
}
