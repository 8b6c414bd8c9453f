//! The wire forms of the domain's closed sets. Each mirrors a domain enum
//! variant for variant (converted with exhaustive matches, so a new domain
//! variant breaks the build here) and carries the OpenAPI schema.

use serde::{Deserialize, Serialize};
use tandem_domain as domain;
use utoipa::ToSchema;

macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        $name:ident <=> $domain:ty {
            $( $(#[$vdoc:meta])* $variant:ident ),+ $(,)?
        }
    ) => {
        // utoipa cannot read a `rename` from a macro fragment, so the texts come
        // from `rename_all`; a test checks them against the domain's.
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub(crate) enum $name {
            $( $(#[$vdoc])* $variant ),+
        }

        impl From<$domain> for $name {
            fn from(value: $domain) -> Self {
                type Domain = $domain;
                match value {
                    $( Domain::$variant => Self::$variant ),+
                }
            }
        }

        impl From<$name> for $domain {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => Self::$variant ),+
                }
            }
        }
    };
}

wire_enum! {
    /// What collaborators may do: `view_only` (watch), `comment_only`,
    /// `prompt_with_approval` (prompts wait for the host), `prompt_direct`.
    SessionMode <=> domain::SessionMode {
        ViewOnly,
        CommentOnly,
        PromptWithApproval,
        PromptDirect,
    }
}

wire_enum! {
    /// Where a session is in its life; every status but `active` is final.
    SessionStatus <=> domain::SessionStatus {
        Active,
        Closed,
        Expired,
        Terminated,
    }
}

wire_enum! {
    /// Why a session ended.
    CloseReason <=> domain::CloseReason {
        ClosedByHost,
        Expired,
        IdleTimeout,
        Terminated,
    }
}

wire_enum! {
    /// How the agent's requests to run tools are answered.
    PermissionPolicy <=> domain::PermissionPolicy {
        AskHost,
        AllowAll,
        RejectAll,
    }
}

wire_enum! {
    /// A participant's role.
    Role <=> domain::Role {
        Host,
        Collaborator,
        Viewer,
    }
}

wire_enum! {
    /// The roles an invite can grant (never host).
    InviteRole <=> domain::InviteRole {
        Collaborator,
        Viewer,
    }
}

wire_enum! {
    /// Where a prompt is in its lifecycle.
    PromptStatus <=> domain::PromptStatus {
        PendingApproval,
        Queued,
        Running,
        Completed,
        Failed,
        Cancelled,
        Rejected,
        Withdrawn,
    }
}

wire_enum! {
    /// Why the agent ended a turn.
    StopReason <=> domain::StopReason {
        EndTurn,
        MaxTokens,
        MaxTurnRequests,
        Refusal,
        Cancelled,
    }
}

/// What an API key may do; `admin` includes every other scope.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub(crate) enum Scope {
    #[serde(rename = "sessions:read")]
    SessionsRead,
    #[serde(rename = "sessions:write")]
    SessionsWrite,
    #[serde(rename = "webhooks:read")]
    WebhooksRead,
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    #[serde(rename = "admin")]
    Admin,
}

impl From<domain::Scope> for Scope {
    fn from(value: domain::Scope) -> Self {
        match value {
            domain::Scope::SessionsRead => Self::SessionsRead,
            domain::Scope::SessionsWrite => Self::SessionsWrite,
            domain::Scope::WebhooksRead => Self::WebhooksRead,
            domain::Scope::WebhooksWrite => Self::WebhooksWrite,
            domain::Scope::Admin => Self::Admin,
        }
    }
}

impl From<Scope> for domain::Scope {
    fn from(value: Scope) -> Self {
        match value {
            Scope::SessionsRead => Self::SessionsRead,
            Scope::SessionsWrite => Self::SessionsWrite,
            Scope::WebhooksRead => Self::WebhooksRead,
            Scope::WebhooksWrite => Self::WebhooksWrite,
            Scope::Admin => Self::Admin,
        }
    }
}

wire_enum! {
    /// What choosing a permission option means.
    PermissionOptionKind <=> domain::PermissionOptionKind {
        AllowOnce,
        AllowAlways,
        RejectOnce,
        RejectAlways,
    }
}

wire_enum! {
    /// Who or what resolved a permission request.
    PermissionCause <=> domain::PermissionCause {
        Host,
        Policy,
        Timeout,
        PromptEnded,
    }
}

wire_enum! {
    /// How a webhook's requests are written: `standard` (the event as JSON,
    /// signed the Standard Webhooks way) or `slack` (a readable `{"text"}`
    /// message for a Slack-compatible incoming-webhook URL).
    WebhookFormat <=> domain::WebhookFormat {
        Standard,
        Slack,
    }
}

wire_enum! {
    /// Where a session's agent works: `shared` (one directory for every session
    /// of its profile), `directory` (the session's own), `worktree` (a git
    /// worktree of the session's own, on a branch of its own).
    WorkspaceKind <=> domain::WorkspaceKind {
        Shared,
        Directory,
        Worktree,
    }
}

wire_enum! {
    /// Why a webhook receives nothing: `manual` (disabled through the API) or
    /// `failing` (its deliveries failed for longer than the server retries).
    DisabledReason <=> domain::DisabledReason {
        Manual,
        Failing,
    }
}

wire_enum! {
    /// Where a delivery is: `pending` (to be retried at `nextAttemptAt`),
    /// `succeeded`, or `failed` (refused by the endpoint, or given up).
    DeliveryStatus <=> domain::DeliveryStatus {
        Pending,
        Succeeded,
        Failed,
    }
}

wire_enum! {
    /// What became of a session's own workspace once the session ended.
    WorkspaceCleanup <=> domain::WorkspaceCleanup {
        Removed,
        Kept,
        Failed,
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use serde::Serialize;

    use super::*;

    /// Every domain value crosses the wire as the domain's own text, and back.
    fn same_texts<D, W>(all: &[D], text: impl Fn(D) -> &'static str)
    where
        D: Copy + Debug + PartialEq + From<W>,
        W: From<D> + Serialize + serde::de::DeserializeOwned,
    {
        for value in all {
            let wire = serde_json::to_value(W::from(*value)).unwrap();
            assert_eq!(wire, serde_json::Value::from(text(*value)), "{value:?}");
            let back: W = serde_json::from_value(wire).unwrap();
            assert_eq!(D::from(back), *value);
        }
    }

    #[test]
    fn wire_texts_are_the_domain_texts() {
        same_texts::<_, SessionMode>(domain::SessionMode::ALL, domain::SessionMode::as_str);
        same_texts::<_, SessionStatus>(domain::SessionStatus::ALL, domain::SessionStatus::as_str);
        same_texts::<_, CloseReason>(domain::CloseReason::ALL, domain::CloseReason::as_str);
        same_texts::<_, PermissionPolicy>(
            domain::PermissionPolicy::ALL,
            domain::PermissionPolicy::as_str,
        );
        same_texts::<_, Role>(domain::Role::ALL, domain::Role::as_str);
        same_texts::<_, InviteRole>(domain::InviteRole::ALL, domain::InviteRole::as_str);
        same_texts::<_, PromptStatus>(domain::PromptStatus::ALL, domain::PromptStatus::as_str);
        same_texts::<_, StopReason>(domain::StopReason::ALL, domain::StopReason::as_str);
        same_texts::<_, Scope>(domain::Scope::ALL, domain::Scope::as_str);
        same_texts::<_, PermissionOptionKind>(
            domain::PermissionOptionKind::ALL,
            domain::PermissionOptionKind::as_str,
        );
        same_texts::<_, PermissionCause>(
            domain::PermissionCause::ALL,
            domain::PermissionCause::as_str,
        );
        same_texts::<_, WebhookFormat>(domain::WebhookFormat::ALL, domain::WebhookFormat::as_str);
        same_texts::<_, DisabledReason>(
            domain::DisabledReason::ALL,
            domain::DisabledReason::as_str,
        );
        same_texts::<_, DeliveryStatus>(
            domain::DeliveryStatus::ALL,
            domain::DeliveryStatus::as_str,
        );
        same_texts::<_, WorkspaceKind>(domain::WorkspaceKind::ALL, domain::WorkspaceKind::as_str);
        same_texts::<_, WorkspaceCleanup>(
            domain::WorkspaceCleanup::ALL,
            domain::WorkspaceCleanup::as_str,
        );
    }
}
