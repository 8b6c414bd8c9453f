//! What the redactor took out of something an agent emitted: how many values of
//! each kind (`aws_access_key`, `env_value`, ...) were replaced by
//! `[REDACTED:<kind>]` before it was stored. Never the values themselves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::payload_types::payload_types;

payload_types! {
    $ __payload_types_redaction;

    /// Redacted values by kind. Empty when nothing was redacted; events leave it out
    /// then, so that events stored before redaction existed read the same.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct Redactions(BTreeMap<String, u32>);
}

impl Redactions {
    /// Nothing redacted.
    pub const fn none() -> Self {
        Self(BTreeMap::new())
    }

    /// Counts `count` more values of `kind`.
    pub fn add(&mut self, kind: &str, count: u32) {
        if count == 0 {
            return;
        }
        match self.0.get_mut(kind) {
            Some(total) => *total = total.saturating_add(count),
            None => {
                self.0.insert(kind.to_owned(), count);
            }
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (kind, count) in &other.0 {
            self.add(kind, *count);
        }
    }

    /// Whether nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many values of `kind` were redacted.
    pub fn count(&self, kind: &str) -> u32 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    /// The counts, by kind in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.0.iter().map(|(kind, count)| (kind.as_str(), *count))
    }

    /// How many values were redacted in all.
    pub fn total(&self) -> u64 {
        self.0.values().map(|count| u64::from(*count)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_by_kind_and_serialize_as_an_object() {
        let mut redactions = Redactions::none();
        redactions.add("github_token", 1);
        redactions.add("aws_access_key", 2);
        redactions.add("github_token", 1);
        redactions.add("ignored", 0);
        let mut more = Redactions::none();
        more.add("aws_access_key", 1);
        redactions.merge(&more);
        assert_eq!(redactions.count("github_token"), 2);
        assert_eq!(redactions.count("ignored"), 0);
        assert_eq!(redactions.total(), 5);
        assert_eq!(
            serde_json::to_value(&redactions).unwrap(),
            serde_json::json!({ "aws_access_key": 3, "github_token": 2 })
        );
        assert!(Redactions::none().is_empty());
    }
}
