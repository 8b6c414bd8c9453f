//! What a webhook request says: the body (the event as the API shows it, with
//! links to act on it; or a Slack message), its stable `webhook-id`, and its
//! Standard Webhooks signatures.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tandem_domain::{
    Actor, Event, EventPayload, PromptStatus, SessionId, WebhookEndpoint, WebhookFormat,
    WebhookSecret,
};
use uuid::Uuid;

/// The `webhook-id` of `event` for endpoint `webhook`: the same for every
/// attempt (and after a crash), different for every endpoint, so that a
/// receiver can drop duplicates.
pub(crate) fn message_id(webhook: &WebhookEndpoint, event: &Event) -> String {
    format!(
        "msg_{}_{}_{}",
        webhook.id().as_uuid().simple(),
        event.session_id.as_uuid().simple(),
        event.seq
    )
}

/// Links to see and act on an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Links {
    /// The session's page.
    pub(crate) session: String,
    /// The session's page at the prompt the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) prompt: Option<String>,
    /// The session's page at the permission request the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) permission: Option<String>,
    /// The API operation that approves the prompt (the host's token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) approve: Option<String>,
    /// The API operation that rejects the prompt (the host's token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reject: Option<String>,
    /// The API operation that answers the permission request (the host's token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) answer: Option<String>,
}

impl Links {
    /// The links of `event`, under the server's public URL.
    pub(crate) fn of(public_url: &str, event: &Event) -> Self {
        let session = event.session_id;
        let page = format!("{public_url}/s/{session}");
        let api = format!("{public_url}/v1/sessions/{session}");
        let mut links = Self {
            session: page.clone(),
            prompt: None,
            permission: None,
            approve: None,
            reject: None,
            answer: None,
        };
        if let Some(prompt) = prompt_of(&event.payload) {
            links.prompt = Some(format!("{page}#prompt-{prompt}"));
        }
        if let EventPayload::PromptSubmitted(prompt) = &event.payload
            && prompt.status == PromptStatus::PendingApproval
        {
            links.approve = Some(format!("{api}/prompts/{}/approve", prompt.id));
            links.reject = Some(format!("{api}/prompts/{}/reject", prompt.id));
        }
        if let EventPayload::AgentPermissionRequested { request_id, .. } = &event.payload {
            links.permission = Some(format!("{page}#permission-{request_id}"));
            links.answer = Some(format!("{api}/permissions/{request_id}"));
        }
        links
    }
}

/// The prompt an event is about, if any.
fn prompt_of(payload: &EventPayload) -> Option<tandem_domain::PromptId> {
    use EventPayload as E;
    match payload {
        E::PromptSubmitted(prompt) => Some(prompt.id),
        E::PromptEdited { prompt_id, .. }
        | E::PromptApproved { prompt_id, .. }
        | E::PromptRejected { prompt_id, .. }
        | E::PromptWithdrawn { prompt_id }
        | E::PromptStarted { prompt_id }
        | E::PromptCancelRequested { prompt_id, .. }
        | E::AgentPermissionRequested { prompt_id, .. }
        | E::AgentPermissionResolved { prompt_id, .. }
        | E::PromptCompleted { prompt_id, .. }
        | E::PromptFailed { prompt_id, .. }
        | E::PromptCancelled { prompt_id, .. } => Some(*prompt_id),
        E::AgentOutput(output) => Some(output.prompt_id),
        E::SessionCreated(_)
        | E::SessionUpdated { .. }
        | E::SessionClosed { .. }
        | E::ParticipantJoined(_)
        | E::ParticipantLeft { .. }
        | E::ParticipantUpdated { .. }
        | E::ParticipantRemoved { .. }
        | E::CommentPosted(_)
        | E::AgentStarted(_)
        | E::AgentCommandsUpdated(_)
        | E::AgentModeRequested(_)
        | E::AgentModeChanged(_)
        | E::AgentModeChangeFailed(_)
        | E::AgentTitleChanged(_) => None,
    }
}

/// Who caused an event, as the API shows it.
#[derive(Debug, Serialize)]
struct ActorJson {
    kind: &'static str,
    id: Option<Uuid>,
}

impl From<&Actor> for ActorJson {
    fn from(actor: &Actor) -> Self {
        Self {
            kind: actor.kind(),
            id: actor.id(),
        }
    }
}

/// The `standard` body: the event exactly as the events page shows it, with its
/// session and links.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StandardBody<'a> {
    session_id: SessionId,
    seq: u64,
    r#type: &'static str,
    created_at: chrono::DateTime<chrono::Utc>,
    actor: ActorJson,
    data: serde_json::Value,
    links: &'a Links,
}

/// What a Slack message names besides the event: the session's title and the
/// display name of the prompt's author, when there is one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    pub(crate) title: String,
    pub(crate) author: Option<String>,
}

/// The JSON body for `webhook`'s format.
pub(crate) fn body(
    format: WebhookFormat,
    event: &Event,
    links: &Links,
    context: &Context,
) -> Vec<u8> {
    let value = match format {
        WebhookFormat::Standard => serde_json::to_value(StandardBody {
            session_id: event.session_id,
            seq: event.seq.get(),
            r#type: event.payload.event_type(),
            created_at: event.at,
            actor: (&event.actor).into(),
            data: event.payload.data(),
            links,
        }),
        WebhookFormat::Slack => {
            Ok(serde_json::json!({ "text": slack_text(event, links, context) }))
        }
    };
    // Plain structs of strings, numbers and JSON values always serialize.
    value
        .map(|value| value.to_string().into_bytes())
        .unwrap_or_default()
}

/// Escapes text for Slack's `mrkdwn` (`&`, `<`, `>`).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters of `text`, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max).collect();
    clipped.push('…');
    clipped
}

/// A readable message: what happened, in which session, and where to act.
fn slack_text(event: &Event, links: &Links, context: &Context) -> String {
    use EventPayload as E;
    let session = format!("<{}|{}>", links.session, escape(&context.title));
    let who = context
        .author
        .as_deref()
        .map_or_else(|| "Someone".to_owned(), escape);
    let quote = |text: &str| {
        clip(text, 500)
            .lines()
            .map(|line| format!("> {}", escape(line)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let open = links.prompt.as_deref().unwrap_or(&links.session);
    if let EventPayload::PromptSubmitted(prompt) = &event.payload
        && prompt.status == PromptStatus::PendingApproval
    {
        return format!(
            ":raised_hand: *{who}* wants to prompt the agent in {session}; the host's approval is needed:\n{}\n<{open}|Review the prompt>",
            quote(prompt.text.as_str()),
        );
    }
    match &event.payload {
        E::AgentPermissionRequested { tool_call, .. } => {
            let tool = tool_call
                .get("title")
                .and_then(serde_json::Value::as_str)
                .map_or_else(
                    || "a tool".to_owned(),
                    |title| format!("`{}`", escape(&clip(title, 200))),
                );
            format!(
                ":lock: The agent asks to run {tool} in {session}. <{}|Answer the request>",
                links.permission.as_deref().unwrap_or(&links.session)
            )
        }
        E::PromptFailed { error, .. } => format!(
            ":x: A prompt failed in {session}: {}\n<{open}|Open the prompt>",
            escape(&clip(error, 300)),
        ),
        E::SessionClosed {
            reason, summary, ..
        } => {
            let mut text = format!(
                ":checkered_flag: The session {session} ended ({}).",
                reason.as_str().replace('_', " ")
            );
            if let Some(summary) = summary {
                text.push('\n');
                text.push_str(&quote(summary.as_str()));
            }
            text
        }
        other @ (E::SessionCreated(_)
        | E::SessionUpdated { .. }
        | E::ParticipantJoined(_)
        | E::ParticipantLeft { .. }
        | E::ParticipantUpdated { .. }
        | E::ParticipantRemoved { .. }
        | E::CommentPosted(_)
        | E::PromptSubmitted(_)
        | E::PromptEdited { .. }
        | E::PromptApproved { .. }
        | E::PromptRejected { .. }
        | E::PromptWithdrawn { .. }
        | E::PromptStarted { .. }
        | E::PromptCancelRequested { .. }
        | E::AgentOutput(_)
        | E::AgentPermissionResolved { .. }
        | E::PromptCompleted { .. }
        | E::PromptCancelled { .. }
        | E::AgentStarted(_)
        | E::AgentCommandsUpdated(_)
        | E::AgentModeRequested(_)
        | E::AgentModeChanged(_)
        | E::AgentModeChangeFailed(_)
        | E::AgentTitleChanged(_)) => {
            format!("`{}` in {session}. <{open}|Open>", other.event_type())
        }
    }
}

/// The `webhook-signature` header: `v1,<base64 HMAC-SHA256>` of
/// `{id}.{timestamp}.{body}` with each secret, space-separated.
pub(crate) fn signature(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .filter_map(|secret| {
            let key = key_of(secret)?;
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The key bytes of a secret (`whsec_` + base64).
fn key_of(secret: &WebhookSecret) -> Option<Vec<u8>> {
    let encoded = secret
        .expose()
        .strip_prefix(WebhookSecret::PREFIX)
        .unwrap_or(secret.expose());
    BASE64.decode(encoded).ok()
}

/// A new secret: `whsec_` and the base64 of 32 bytes of OS randomness.
///
/// # Panics
///
/// If the operating system cannot provide randomness: no secret may be made then.
pub(crate) fn new_secret() -> WebhookSecret {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
    WebhookSecret::new(format!("{}{}", WebhookSecret::PREFIX, BASE64.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The Standard Webhooks reference test vector.
        let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(
                &[&secret],
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                body
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let other = WebhookSecret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned());
        let both = signature(
            &[&secret, &other],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            body,
        );
        assert_eq!(both.split(' ').count(), 2);
        assert!(both.starts_with("v1,g0hM9SsE"));
    }

    #[test]
    fn secrets_are_32_random_bytes_in_base64() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(key_of(&a).map(|key| key.len()), Some(32));
    }

    #[test]
    fn slack_text_is_escaped_and_clipped() {
        assert_eq!(escape("<b> & </b>"), "&lt;b&gt; &amp; &lt;/b&gt;");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
