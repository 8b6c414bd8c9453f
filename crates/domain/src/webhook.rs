//! Webhooks: endpoints of a workspace that are told of its sessions' events, and
//! the deliveries of those events to them.
//!
//! An endpoint is a URL, the events it wants (names of the event catalog), an
//! optional session, a format (`standard`: the Standard Webhooks signed JSON,
//! `slack`: a readable message for an incoming-webhook URL), and the secrets its
//! requests are signed with. Deliveries start from the moment an endpoint is
//! created (or enabled again): it is never sent a session's history.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::enums::string_enum;
use crate::error::{DomainError, ValidationError, ValidationProblem};
use crate::event::{EventPayload, EventType, Seq};
use crate::ids::{SessionId, WebhookDeliveryId, WebhookId, WorkspaceId};
use crate::prompt::PromptStatus;
use crate::text::check_label;

/// Where an endpoint's requests go: an absolute `http` or `https` URL with a
/// host, no credentials and no fragment, at most 2048 characters. Whether plain
/// `http` and which addresses are allowed is the server's outbound policy,
/// checked when the endpoint is saved and again at every delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    /// The longest accepted URL, in characters.
    pub const MAX_CHARS: usize = 2048;

    /// Parses a URL.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |expected: &'static str| {
            ValidationError::new("url", ValidationProblem::Format(expected))
        };
        check_label("url", raw, Self::MAX_CHARS)?;
        // As sent: the url crate would drop surrounding spaces, tabs and line
        // breaks, and take `https:/host` for `https://host`.
        let scheme = raw.split_once("://").map(|(scheme, _)| scheme);
        if !scheme.is_some_and(|scheme| {
            scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")
        }) {
            return Err(invalid("an absolute http:// or https:// URL"));
        }
        if raw.chars().any(char::is_whitespace) {
            return Err(invalid("a URL without spaces"));
        }
        let url =
            url::Url::parse(raw).map_err(|_| invalid("an absolute http:// or https:// URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("an http:// or https:// URL"));
        }
        if url.host().is_none() {
            return Err(invalid("a URL with a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("a URL without a user name or password"));
        }
        if url.fragment().is_some() {
            return Err(invalid("a URL without a #fragment"));
        }
        Ok(Self(url))
    }

    /// The URL as text (normalized).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the URL is `https`.
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// The host as written in the URL (a name, or an IP address, IPv6 in brackets).
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The IP address, when the host is one rather than a name.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self.0.host()? {
            url::Host::Ipv4(ip) => Some(ip.into()),
            url::Host::Ipv6(ip) => Some(ip.into()),
            url::Host::Domain(_) => None,
        }
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(443)
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A note for people about an endpoint: trimmed, 1..=500 characters, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDescription(String);

impl WebhookDescription {
    /// The longest accepted description, in characters.
    pub const MAX_CHARS: usize = 500;

    /// Parses a description: not blank, at most 500 characters as sent, no
    /// control characters; stored trimmed.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        check_label("description", raw, Self::MAX_CHARS)?;
        Ok(Self(raw.trim().to_owned()))
    }

    /// The description as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One kind of event an endpoint wants: a type of the event catalog
/// (`agent.permission_requested`), or `prompt.submitted:pending_approval`, the
/// prompts submitted for the host's approval only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventSelector(&'static str);

impl EventSelector {
    /// Prompts that wait for the host's approval (not those that run directly).
    pub const PROMPT_AWAITING_APPROVAL: Self = Self("prompt.submitted:pending_approval");

    /// Parses a catalog type or `prompt.submitted:pending_approval`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw == Self::PROMPT_AWAITING_APPROVAL.0 {
            return Ok(Self::PROMPT_AWAITING_APPROVAL);
        }
        raw.parse::<EventType>()
            .map(|known| Self(known.as_str()))
            .map_err(|_| ValidationError::new(
                "eventTypes",
                ValidationProblem::Format(
                    "event types of the catalog (e.g. agent.permission_requested) or prompt.submitted:pending_approval",
                ),
            ))
    }

    /// The selector as text.
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// Whether `payload` is an event of this kind.
    pub fn matches(self, payload: &EventPayload) -> bool {
        if self == Self::PROMPT_AWAITING_APPROVAL {
            return matches!(payload, EventPayload::PromptSubmitted(prompt)
                if prompt.status == PromptStatus::PendingApproval);
        }
        payload.event_type() == self.0
    }
}

impl fmt::Display for EventSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The events an endpoint wants: 1..=64 selectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEventTypes(BTreeSet<EventSelector>);

impl WebhookEventTypes {
    /// The most selectors an endpoint may name.
    pub const MAX: usize = 64;

    /// What needs someone: a prompt awaiting approval, an agent asking to run a
    /// tool, a failed prompt, a session that ended.
    pub fn needs_you() -> Self {
        Self(BTreeSet::from([
            EventSelector::PROMPT_AWAITING_APPROVAL,
            EventSelector("agent.permission_requested"),
            EventSelector("prompt.failed"),
            EventSelector("session.closed"),
        ]))
    }

    /// Parses a list of selectors; duplicates count once.
    pub fn parse<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Self, ValidationError> {
        let mut selectors = BTreeSet::new();
        for name in raw {
            selectors.insert(EventSelector::parse(name)?);
        }
        if selectors.is_empty() {
            return Err(ValidationError::new("eventTypes", ValidationProblem::Empty));
        }
        if selectors.len() > Self::MAX {
            return Err(ValidationError::new(
                "eventTypes",
                ValidationProblem::TooLong {
                    max: Self::MAX,
                    unit: "event types",
                },
            ));
        }
        Ok(Self(selectors))
    }

    /// Whether the endpoint wants `payload`.
    pub fn matches(&self, payload: &EventPayload) -> bool {
        self.0.iter().any(|selector| selector.matches(payload))
    }

    /// The selectors, sorted.
    pub fn iter(&self) -> impl Iterator<Item = EventSelector> + '_ {
        self.0.iter().copied()
    }
}

string_enum! {
    /// How an endpoint's requests are written.
    WebhookFormat("webhook format") {
        /// Standard Webhooks: the event as JSON, signed (`webhook-signature`).
        Standard => "standard",
        /// A readable `{"text": ...}` message for a Slack (or compatible)
        /// incoming-webhook URL.
        Slack => "slack",
    }
}

string_enum! {
    /// Why an endpoint receives nothing.
    DisabledReason("webhook disabled reason") {
        /// Someone disabled it through the API.
        Manual => "manual",
        /// Its deliveries kept failing for longer than the server retries.
        Failing => "failing",
    }
}

/// When and why an endpoint was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disabled {
    pub at: DateTime<Utc>,
    pub reason: DisabledReason,
}

/// A signing secret: `whsec_` and the base64 of random bytes (the Standard
/// Webhooks form). Never shown in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// The prefix of every secret.
    pub const PREFIX: &'static str = "whsec_";

    /// Wraps a secret made (or stored) by the server.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself: to sign with, and to show its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// A replaced secret, still signing requests until `expires_at` so that
/// receivers can switch over without missing a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    pub secret: WebhookSecret,
    pub expires_at: DateTime<Utc>,
}

/// What a client chooses for a new endpoint.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: WebhookUrl,
    pub event_types: WebhookEventTypes,
    pub session_id: Option<SessionId>,
    pub description: Option<WebhookDescription>,
    pub format: WebhookFormat,
    pub enabled: bool,
}

/// A change of an endpoint; `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<WebhookUrl>,
    pub event_types: Option<WebhookEventTypes>,
    /// `Some(None)` lets the endpoint hear of every session of the workspace.
    pub session_id: Option<Option<SessionId>>,
    /// `Some(None)` removes the description.
    pub description: Option<Option<WebhookDescription>>,
    pub format: Option<WebhookFormat>,
    pub enabled: Option<bool>,
}

/// An endpoint as stored, field by field (for store adapters rebuilding one).
#[derive(Debug, Clone)]
pub struct StoredWebhook {
    pub id: WebhookId,
    pub workspace_id: WorkspaceId,
    pub url: WebhookUrl,
    pub event_types: WebhookEventTypes,
    pub session_id: Option<SessionId>,
    pub description: Option<WebhookDescription>,
    pub format: WebhookFormat,
    pub secret: WebhookSecret,
    pub previous_secret: Option<PreviousSecret>,
    pub disabled: Option<Disabled>,
    pub since: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u32,
}

/// A webhook endpoint of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    id: WebhookId,
    workspace_id: WorkspaceId,
    url: WebhookUrl,
    event_types: WebhookEventTypes,
    session_id: Option<SessionId>,
    description: Option<WebhookDescription>,
    format: WebhookFormat,
    secret: WebhookSecret,
    previous_secret: Option<PreviousSecret>,
    disabled: Option<Disabled>,
    since: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: u32,
}

/// An endpoint after a change, and whether its deliveries start again from
/// the current end of each session's log (it was enabled again, or now listens
/// to other sessions): events of the time between are not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUpdated {
    pub endpoint: WebhookEndpoint,
    pub restarted: bool,
}

impl WebhookEndpoint {
    /// A new endpoint of `workspace_id`, created at `now` with `secret`; it hears
    /// of events from `now` on.
    pub fn create(
        id: WebhookId,
        workspace_id: WorkspaceId,
        new: NewWebhook,
        secret: WebhookSecret,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            workspace_id,
            url: new.url,
            event_types: new.event_types,
            session_id: new.session_id,
            description: new.description,
            format: new.format,
            secret,
            previous_secret: None,
            disabled: (!new.enabled).then_some(Disabled {
                at: now,
                reason: DisabledReason::Manual,
            }),
            since: now,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    /// Rebuilds a stored endpoint.
    pub fn restore(stored: StoredWebhook) -> Self {
        Self {
            id: stored.id,
            workspace_id: stored.workspace_id,
            url: stored.url,
            event_types: stored.event_types,
            session_id: stored.session_id,
            description: stored.description,
            format: stored.format,
            secret: stored.secret,
            previous_secret: stored.previous_secret,
            disabled: stored.disabled,
            since: stored.since,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            version: stored.version,
        }
    }

    /// Applies a client's change at `now`.
    #[must_use]
    pub fn update(&self, patch: WebhookPatch, now: DateTime<Utc>) -> WebhookUpdated {
        let mut next = self.clone();
        let mut restarted = false;
        if let Some(url) = patch.url {
            next.url = url;
        }
        if let Some(event_types) = patch.event_types {
            next.event_types = event_types;
        }
        if let Some(session_id) = patch.session_id
            && session_id != next.session_id
        {
            next.session_id = session_id;
            restarted = true;
        }
        if let Some(description) = patch.description {
            next.description = description;
        }
        if let Some(format) = patch.format {
            next.format = format;
        }
        match (patch.enabled, self.disabled) {
            (Some(true), Some(_)) => {
                next.disabled = None;
                restarted = true;
            }
            (Some(false), None) => {
                next.disabled = Some(Disabled {
                    at: now,
                    reason: DisabledReason::Manual,
                });
            }
            (Some(true), None) | (Some(false), Some(_)) | (None, _) => {}
        }
        if restarted {
            next.since = now;
        }
        next.updated_at = now;
        WebhookUpdated {
            endpoint: next,
            restarted,
        }
    }

    /// Replaces the signing secret with `secret`; the old one keeps signing
    /// (beside the new one) for `grace`.
    #[must_use]
    pub fn rotate_secret(
        &self,
        secret: WebhookSecret,
        grace: TimeDelta,
        now: DateTime<Utc>,
    ) -> Self {
        let mut next = self.clone();
        next.previous_secret = Some(PreviousSecret {
            secret: std::mem::replace(&mut next.secret, secret),
            expires_at: now + grace,
        });
        next.updated_at = now;
        next
    }

    /// The secrets a request at `now` is signed with: the current one, and the
    /// previous one while its grace lasts.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&WebhookSecret> {
        let mut secrets = vec![&self.secret];
        if let Some(previous) = &self.previous_secret
            && previous.expires_at > now
        {
            secrets.push(&previous.secret);
        }
        secrets
    }

    /// Whether the endpoint wants `payload` of `session_id`'s log.
    pub fn wants(&self, session_id: SessionId, payload: &EventPayload) -> bool {
        self.session_id.is_none_or(|only| only == session_id) && self.event_types.matches(payload)
    }

    pub const fn id(&self) -> WebhookId {
        self.id
    }

    pub const fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }

    pub const fn url(&self) -> &WebhookUrl {
        &self.url
    }

    pub const fn event_types(&self) -> &WebhookEventTypes {
        &self.event_types
    }

    pub const fn session_id(&self) -> Option<SessionId> {
        self.session_id
    }

    pub const fn description(&self) -> Option<&WebhookDescription> {
        self.description.as_ref()
    }

    pub const fn format(&self) -> WebhookFormat {
        self.format
    }

    pub const fn secret(&self) -> &WebhookSecret {
        &self.secret
    }

    pub const fn previous_secret(&self) -> Option<&PreviousSecret> {
        self.previous_secret.as_ref()
    }

    /// When and why the endpoint was disabled; `None` while it is enabled.
    pub const fn disabled(&self) -> Option<Disabled> {
        self.disabled
    }

    pub const fn is_enabled(&self) -> bool {
        self.disabled.is_none()
    }

    /// From when on the endpoint hears of events (its creation, or when it was
    /// last enabled again or moved to other sessions).
    pub const fn since(&self) -> DateTime<Utc> {
        self.since
    }

    pub const fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    pub const fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    /// The stored version this value was read at (optimistic concurrency).
    pub const fn version(&self) -> u32 {
        self.version
    }
}

string_enum! {
    /// Where a delivery is.
    DeliveryStatus("delivery status") {
        /// Not delivered yet: attempts failed in a way worth retrying, and the
        /// next one is due at `next_attempt_at`.
        Pending => "pending",
        /// The endpoint answered 2xx.
        Succeeded => "succeeded",
        /// The endpoint refused it (a 4xx other than 408 and 429), or it kept
        /// failing until the server gave up. It can be retried by hand.
        Failed => "failed",
    }
}

/// The delivery of one event to one endpoint, with what its last attempt saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub webhook_id: WebhookId,
    pub session_id: SessionId,
    pub seq: Seq,
    /// The event's type (`prompt.failed`).
    pub event_type: String,
    pub status: DeliveryStatus,
    /// How many attempts were recorded.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last answer; `None` if there was none.
    pub response_status: Option<u16>,
    /// Why the last attempt failed, in a few words (never the response body).
    pub error: Option<String>,
    /// How long the last attempt took, in milliseconds.
    pub latency_ms: Option<u32>,
}

impl WebhookDelivery {
    /// A failed delivery is attempted again by hand; others cannot be.
    pub fn check_retryable(&self) -> Result<(), DomainError> {
        match self.status {
            DeliveryStatus::Failed => Ok(()),
            DeliveryStatus::Pending | DeliveryStatus::Succeeded => {
                Err(DomainError::DeliveryNotFailed(self.status))
            }
        }
    }
}

/// How one attempt ended, as the sender saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The endpoint answered with this status (and maybe a `Retry-After`).
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer in time.
    TimedOut,
    /// No connection (refused, reset, DNS, TLS): the text says which.
    Unreachable(String),
    /// The outbound policy refused the target (a private address, plain http).
    Refused(String),
}

/// What an attempt means for its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered.
    Succeeded,
    /// Worth another try, not before `not_before` if the endpoint said so.
    Retry { not_before: Option<Duration> },
    /// The endpoint refused it for good.
    Failed,
}

impl AttemptResult {
    /// 2xx succeeds; timeouts, connection errors, refusals, 408, 429 and 5xx are
    /// retried (honouring `Retry-After`); every other answer (3xx, since
    /// redirects are not followed, and 4xx) fails the delivery for good.
    pub fn verdict(&self) -> Verdict {
        match self {
            Self::Answered { status, .. } if (200..300).contains(status) => Verdict::Succeeded,
            Self::Answered {
                status,
                retry_after,
            } if *status == 408 || *status == 429 || *status >= 500 => Verdict::Retry {
                not_before: *retry_after,
            },
            Self::Answered { .. } => Verdict::Failed,
            Self::TimedOut | Self::Unreachable(_) | Self::Refused(_) => {
                Verdict::Retry { not_before: None }
            }
        }
    }

    /// The HTTP status, if the endpoint answered.
    pub const fn status(&self) -> Option<u16> {
        match self {
            Self::Answered { status, .. } => Some(*status),
            Self::TimedOut | Self::Unreachable(_) | Self::Refused(_) => None,
        }
    }

    /// What went wrong, in a few words; `None` on success.
    pub fn error(&self) -> Option<String> {
        match self {
            Self::Answered { status, .. } if (200..300).contains(status) => None,
            Self::Answered { status, .. } => Some(format!("the endpoint answered {status}")),
            Self::TimedOut => Some("the endpoint did not answer in time".to_owned()),
            Self::Unreachable(why) => Some(format!("the endpoint was unreachable: {why}")),
            Self::Refused(why) => Some(format!("the target was refused: {why}")),
        }
    }
}

/// How retries are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; it doubles after each one.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// How long after its first attempt a delivery is given up (and its
    /// endpoint disabled).
    pub give_up_after: Duration,
}

impl RetryPolicy {
    /// A few seconds, doubling up to an hour, for a day.
    pub const DEFAULT: Self = Self {
        first_delay: Duration::from_secs(5),
        max_delay: Duration::from_secs(3600),
        give_up_after: Duration::from_secs(24 * 3600),
    };

    /// The wait before the attempt after `attempts` failed ones: exponential
    /// (`first_delay * 2^(attempts-1)`, at most `max_delay`) with jitter (the
    /// wait is drawn from its upper half by `jitter` in `[0, 1)`), and never
    /// shorter than what the endpoint asked for (`Retry-After`, itself capped at
    /// `give_up_after`).
    pub fn delay(&self, attempts: u32, not_before: Option<Duration>, jitter: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let exponential = self
            .first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay);
        let jitter = jitter.clamp(0.0, 1.0);
        let jittered = exponential.mul_f64(0.5 + jitter / 2.0);
        match not_before {
            Some(asked) => jittered.max(asked.min(self.give_up_after)),
            None => jittered,
        }
    }

    /// Whether a delivery first attempted at `first_attempt` is given up at `now`
    /// instead of being tried again at `next`.
    pub fn gives_up(&self, first_attempt: DateTime<Utc>, next: DateTime<Utc>) -> bool {
        let limit = TimeDelta::from_std(self.give_up_after).unwrap_or(TimeDelta::MAX);
        next.signed_duration_since(first_attempt) > limit
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn endpoint(enabled: bool) -> WebhookEndpoint {
        WebhookEndpoint::create(
            WebhookId::from_uuid(Uuid::now_v7()),
            WorkspaceId::default_workspace(),
            NewWebhook {
                url: WebhookUrl::parse("https://hooks.example.com/t").unwrap(),
                event_types: WebhookEventTypes::needs_you(),
                session_id: None,
                description: None,
                format: WebhookFormat::Standard,
                enabled,
            },
            WebhookSecret::new("whsec_a".to_owned()),
            Utc::now(),
        )
    }

    #[test]
    fn urls_are_absolute_http_with_a_host_and_no_credentials() {
        assert!(WebhookUrl::parse("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook?x=1").is_ok());
        assert!(WebhookUrl::parse("http://[::1]:9000/").is_ok());
        for bad in [
            "",
            "hooks.example.com/x",
            "ftp://example.com/",
            "file:///etc/passwd",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "javascript:alert(1)",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(WebhookUrl::parse(&long).is_err());
        let url = WebhookUrl::parse("http://[::1]:9000/").unwrap();
        assert_eq!(url.ip(), Some("::1".parse().unwrap()));
        assert_eq!(url.port(), 9000);
        assert_eq!(WebhookUrl::parse("https://a.test/").unwrap().port(), 443);
    }

    #[test]
    fn selectors_are_catalog_types_or_prompts_awaiting_approval() {
        for kind in EventType::ALL {
            let name = kind.as_str();
            assert_eq!(EventSelector::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(
            EventSelector::parse("prompt.submitted:pending_approval").unwrap(),
            EventSelector::PROMPT_AWAITING_APPROVAL
        );
        assert!(EventSelector::parse("prompt.exploded").is_err());
        assert!(EventSelector::parse("*").is_err());
        assert!(WebhookEventTypes::parse([]).is_err());
        let types = WebhookEventTypes::parse(["session.closed", "session.closed"]).unwrap();
        assert_eq!(types.iter().count(), 1);
        let defaults: Vec<_> = WebhookEventTypes::needs_you()
            .iter()
            .map(EventSelector::as_str)
            .collect();
        assert_eq!(
            defaults,
            [
                "agent.permission_requested",
                "prompt.failed",
                "prompt.submitted:pending_approval",
                "session.closed"
            ]
        );
    }

    #[test]
    fn enabling_again_or_moving_to_other_sessions_restarts_from_now() {
        let disabled = endpoint(false);
        assert!(!disabled.is_enabled());
        let later = disabled.created_at() + TimeDelta::minutes(5);
        let enabled = disabled.update(
            WebhookPatch {
                enabled: Some(true),
                ..WebhookPatch::default()
            },
            later,
        );
        assert!(enabled.restarted);
        assert!(enabled.endpoint.is_enabled());
        assert_eq!(enabled.endpoint.since(), later);

        let described = enabled.endpoint.update(
            WebhookPatch {
                description: Some(Some(WebhookDescription::parse("ops").unwrap())),
                enabled: Some(true),
                ..WebhookPatch::default()
            },
            later + TimeDelta::minutes(1),
        );
        assert!(!described.restarted, "already enabled, same sessions");
        assert_eq!(described.endpoint.since(), later);

        let moved = described.endpoint.update(
            WebhookPatch {
                session_id: Some(Some(SessionId::from_uuid(Uuid::now_v7()))),
                ..WebhookPatch::default()
            },
            later + TimeDelta::minutes(2),
        );
        assert!(moved.restarted);

        let off = moved.endpoint.update(
            WebhookPatch {
                enabled: Some(false),
                ..WebhookPatch::default()
            },
            later + TimeDelta::minutes(3),
        );
        assert!(!off.restarted);
        assert_eq!(
            off.endpoint.disabled().map(|d| d.reason),
            Some(DisabledReason::Manual)
        );
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one_for_its_grace() {
        let before = endpoint(true);
        let now = before.created_at();
        let rotated = before.rotate_secret(
            WebhookSecret::new("whsec_b".to_owned()),
            TimeDelta::hours(1),
            now,
        );
        let signing: Vec<_> = rotated
            .signing_secrets(now)
            .into_iter()
            .map(WebhookSecret::expose)
            .collect();
        assert_eq!(signing, ["whsec_b", "whsec_a"]);
        assert_eq!(
            rotated.signing_secrets(now + TimeDelta::hours(1)).len(),
            1,
            "the old secret stops at the end of its grace"
        );
        assert!(!format!("{rotated:?}").contains("whsec_"));
    }

    #[test]
    fn answers_decide_retries() {
        let answered = |status| AttemptResult::Answered {
            status,
            retry_after: None,
        };
        assert_eq!(answered(200).verdict(), Verdict::Succeeded);
        assert_eq!(answered(204).verdict(), Verdict::Succeeded);
        for status in [408, 429, 500, 502, 503] {
            assert!(
                matches!(answered(status).verdict(), Verdict::Retry { .. }),
                "{status}"
            );
        }
        for status in [301, 400, 401, 404, 410, 422] {
            assert_eq!(answered(status).verdict(), Verdict::Failed, "{status}");
        }
        assert!(matches!(
            AttemptResult::TimedOut.verdict(),
            Verdict::Retry { .. }
        ));
        let wait = AttemptResult::Answered {
            status: 429,
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(
            wait.verdict(),
            Verdict::Retry {
                not_before: Some(Duration::from_secs(30))
            }
        );
        assert_eq!(answered(200).error(), None);
        assert_eq!(answered(503).error().unwrap(), "the endpoint answered 503");
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_honour_retry_after() {
        let policy = RetryPolicy::DEFAULT;
        assert_eq!(policy.delay(1, None, 1.0), Duration::from_secs(5));
        assert_eq!(policy.delay(1, None, 0.0), Duration::from_millis(2500));
        assert_eq!(policy.delay(3, None, 1.0), Duration::from_secs(20));
        assert_eq!(policy.delay(40, None, 1.0), Duration::from_secs(3600));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(120)), 0.5),
            Duration::from_secs(120)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(1_000_000)), 0.5),
            Duration::from_secs(24 * 3600),
            "Retry-After is capped at the give-up time"
        );
        let start = Utc::now();
        assert!(!policy.gives_up(start, start + TimeDelta::hours(23)));
        assert!(policy.gives_up(start, start + TimeDelta::hours(25)));
    }

    #[test]
    fn only_failed_deliveries_are_retried_by_hand() {
        let mut delivery = WebhookDelivery {
            id: WebhookDeliveryId::from_uuid(Uuid::now_v7()),
            webhook_id: WebhookId::from_uuid(Uuid::now_v7()),
            session_id: SessionId::from_uuid(Uuid::now_v7()),
            seq: Seq::new(3),
            event_type: "prompt.failed".to_owned(),
            status: DeliveryStatus::Failed,
            attempts: 1,
            created_at: Utc::now(),
            last_attempt_at: None,
            next_attempt_at: None,
            response_status: Some(404),
            error: None,
            latency_ms: Some(3),
        };
        assert!(delivery.check_retryable().is_ok());
        delivery.status = DeliveryStatus::Succeeded;
        assert_eq!(
            delivery.check_retryable(),
            Err(DomainError::DeliveryNotFailed(DeliveryStatus::Succeeded))
        );
    }
}
