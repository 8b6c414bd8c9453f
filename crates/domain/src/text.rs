//! Validated text values. Each is checked once, when parsed at the edge, and is
//! valid wherever it travels afterwards.
//!
//! Limits are configurable per deployment (`TextLimits`), but never above
//! `TextLimits::CEILING`, which is also what stored values are re-read with, so a
//! deployment that lowers a limit can still read what it stored before.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, ValidationProblem};
use crate::payload_types::payload_types;

/// The maximum sizes of client-supplied text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimits {
    /// Display name, in characters.
    pub display_name_chars: usize,
    /// Session title, in characters.
    pub title_chars: usize,
    /// Comment text, in characters.
    pub comment_chars: usize,
    /// Prompt text, in characters.
    pub prompt_chars: usize,
    /// Closing summary, in characters.
    pub summary_chars: usize,
}

impl TextLimits {
    /// The limits of DESIGN.md §4.
    pub const DEFAULT: Self = Self {
        display_name_chars: 64,
        title_chars: 200,
        comment_chars: 8 * 1024,
        prompt_chars: 32 * 1024,
        summary_chars: 8 * 1024,
    };

    /// The highest limits a deployment may configure; stored values are re-read
    /// with these.
    pub const CEILING: Self = Self {
        display_name_chars: 256,
        title_chars: 1000,
        comment_chars: 64 * 1024,
        prompt_chars: 1024 * 1024,
        summary_chars: 64 * 1024,
    };

    /// Checks that no limit is zero or above the ceiling.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let pairs = [
            (
                "displayNameChars",
                self.display_name_chars,
                Self::CEILING.display_name_chars,
            ),
            ("titleChars", self.title_chars, Self::CEILING.title_chars),
            (
                "commentChars",
                self.comment_chars,
                Self::CEILING.comment_chars,
            ),
            ("promptChars", self.prompt_chars, Self::CEILING.prompt_chars),
            (
                "summaryChars",
                self.summary_chars,
                Self::CEILING.summary_chars,
            ),
        ];
        for (field, value, ceiling) in pairs {
            if value == 0 || value > ceiling {
                return Err(ValidationError::new(
                    field,
                    ValidationProblem::OutOfRange("between 1 and the built-in ceiling"),
                ));
            }
        }
        Ok(())
    }
}

impl Default for TextLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whether `c` may appear in a one-line label: anything but a control
/// character (Unicode `Cc`: U+0000–U+001F, U+007F–U+009F).
fn label_char(c: char) -> bool {
    !c.is_control()
}

/// Whether `c` may appear in a multi-line body: anything but a control
/// character other than newline, carriage return and tab.
fn body_char(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\r' | '\t')
}

/// Checks text as the client sent it: not blank (something other than
/// whitespace), at most `max` characters (Unicode scalar values, as JSON
/// Schema's `maxLength` counts them), and only characters `allowed` lets
/// through. The OpenAPI document states the same rules as `pattern` and
/// `maxLength`, so a request that fits the document is never refused for them.
fn check_text(
    field: &'static str,
    raw: &str,
    max: usize,
    allowed: fn(char) -> bool,
) -> Result<(), ValidationError> {
    if raw.trim().is_empty() {
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
    if !raw.chars().all(allowed) {
        return Err(ValidationError::new(
            field,
            ValidationProblem::ControlCharacters,
        ));
    }
    Ok(())
}

/// A one-line label (see [`check_label`]), stored trimmed.
fn parse_label(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    check_label(field, raw, max)?;
    Ok(raw.trim().to_owned())
}

/// Checks a one-line label: not blank, at most `max` characters as sent, no
/// control characters.
pub(crate) fn check_label(
    field: &'static str,
    raw: &str,
    max: usize,
) -> Result<(), ValidationError> {
    check_text(field, raw, max, label_char)
}

/// A multi-line body: kept as written, not blank, at most `max` characters,
/// and no control characters other than newline, carriage return and tab.
fn parse_body(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    check_text(field, raw, max, body_char)?;
    Ok(raw.to_owned())
}

macro_rules! text_value {
    ($(#[$($doc:tt)*])* $name:ident, $parser:ident, $field:literal, $limit:ident) => {
        $(#[$($doc)*])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses client input against the deployment's limits.
            pub fn parse(raw: &str, limits: &TextLimits) -> Result<Self, ValidationError> {
                $parser($field, raw, limits.$limit).map(Self)
            }

            /// Re-reads a stored value, checked against `TextLimits::CEILING`.
            pub fn from_stored(raw: &str) -> Result<Self, ValidationError> {
                Self::parse(raw, &TextLimits::CEILING)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Deserializing re-reads stored data (event payloads), so it checks against
        /// the ceiling; client input goes through `parse` with the configured limits.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::from_stored(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

payload_types! {
    $ __payload_types_text;

    text_value!(
        /// How a participant appears to the others.
        DisplayName,
        parse_label,
        "displayName",
        display_name_chars
    );
    text_value!(
        /// A session's title.
        Title,
        parse_label,
        "title",
        title_chars
    );
    text_value!(
        /// The body of a comment.
        CommentText,
        parse_body,
        "text",
        comment_chars
    );
    text_value!(
        /// What a participant asks the agent.
        PromptText,
        parse_body,
        "text",
        prompt_chars
    );
    text_value!(
        /// The host's closing summary of a session.
        Summary,
        parse_body,
        "summary",
        summary_chars
    );
}

impl Title {
    /// The title of a session created without one.
    pub fn untitled() -> Self {
        Self("Untitled session".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TextLimits = TextLimits::DEFAULT;

    #[test]
    fn labels_are_trimmed_and_bounded_in_characters_as_sent() {
        assert_eq!(
            DisplayName::parse("  Ada  ", &LIMITS).unwrap().as_str(),
            "Ada"
        );
        assert!(DisplayName::parse(&"é".repeat(64), &LIMITS).is_ok());
        let err = DisplayName::parse(&"é".repeat(65), &LIMITS).unwrap_err();
        assert_eq!(err.field, "displayName");
        assert_eq!(
            err.problem,
            ValidationProblem::TooLong {
                max: 64,
                unit: "characters"
            }
        );
        assert!(Title::parse(&"t".repeat(200), &LIMITS).is_ok());
        assert!(Title::parse(&"t".repeat(201), &LIMITS).is_err());
        // The limit applies to the text as sent, spaces around it included.
        assert!(Title::parse(&format!(" {} ", "t".repeat(199)), &LIMITS).is_err());
    }

    #[test]
    fn labels_reject_blank_and_control_characters() {
        assert_eq!(
            DisplayName::parse(" \t ", &LIMITS).unwrap_err().problem,
            ValidationProblem::Empty
        );
        assert_eq!(
            DisplayName::parse("a\u{7}b", &LIMITS).unwrap_err().problem,
            ValidationProblem::ControlCharacters
        );
        assert!(Title::parse("two\nlines", &LIMITS).is_err());
        // Control characters are refused wherever they are, even where
        // trimming would have removed them.
        assert_eq!(
            Title::parse("title\n", &LIMITS).unwrap_err().problem,
            ValidationProblem::ControlCharacters
        );
    }

    #[test]
    fn bodies_keep_their_text_and_are_bounded_in_characters() {
        let text = "  line one\n\tline two  ";
        assert_eq!(CommentText::parse(text, &LIMITS).unwrap().as_str(), text);
        assert!(CommentText::parse(&"a".repeat(8 * 1024), &LIMITS).is_ok());
        assert!(CommentText::parse(&"a".repeat(8 * 1024 + 1), &LIMITS).is_err());
        // A 4-byte character counts as one, as JSON Schema's maxLength counts.
        assert!(CommentText::parse(&"😀".repeat(8 * 1024), &LIMITS).is_ok());
        assert!(CommentText::parse(&"😀".repeat(8 * 1024 + 1), &LIMITS).is_err());
        assert!(PromptText::parse(&"p".repeat(32 * 1024), &LIMITS).is_ok());
        assert!(PromptText::parse(&"p".repeat(32 * 1024 + 1), &LIMITS).is_err());
        assert!(Summary::parse("done", &LIMITS).is_ok());
    }

    #[test]
    fn bodies_reject_blank_and_stray_control_characters() {
        assert_eq!(
            PromptText::parse("\n\n", &LIMITS).unwrap_err().problem,
            ValidationProblem::Empty
        );
        assert!(CommentText::parse("nul\0byte", &LIMITS).is_err());
        assert!(CommentText::parse("crlf\r\nok", &LIMITS).is_ok());
    }

    #[test]
    fn configured_limits_apply_and_stored_values_use_the_ceiling() {
        let tight = TextLimits {
            comment_chars: 4,
            ..LIMITS
        };
        assert!(CommentText::parse("12345", &tight).is_err());
        assert!(CommentText::from_stored("12345").is_ok());
    }

    #[test]
    fn limits_must_be_positive_and_under_the_ceiling() {
        assert!(TextLimits::DEFAULT.validate().is_ok());
        assert!(TextLimits::CEILING.validate().is_ok());
        assert!(
            TextLimits {
                title_chars: 0,
                ..LIMITS
            }
            .validate()
            .is_err()
        );
        assert!(
            TextLimits {
                prompt_chars: 2 * 1024 * 1024,
                ..LIMITS
            }
            .validate()
            .is_err()
        );
    }
}
