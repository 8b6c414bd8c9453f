//! Translation between ACP's wire values and Tandem's domain values. The ACP
//! crate's schema types validate what the agent sent; the agent's own JSON is what
//! Tandem keeps, so fields and update kinds this crate version does not know are
//! never lost.

use agent_client_protocol::schema::MaybeUndefined;
use agent_client_protocol::v1::schema::{
    AvailableCommandsUpdate, ContentBlock, ContentChunk, CurrentModeUpdate, Plan,
    RequestPermissionOutcome, RequestPermissionRequest, SelectedPermissionOutcome,
    SessionInfoUpdate, SessionModeState, StopReason as AcpStopReason, ToolCall, ToolCallUpdate,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tandem_domain::{
    AgentCommand, AgentMode, AgentModeId, AgentOutputKind, AgentReport, PermissionOption,
    PermissionOutcome, StopReason,
};
use tandem_ports::AgentUpdate;

/// Where a `session/update` goes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// To the state of the agent's session (commands, mode, title): never a
    /// prompt's output.
    Session(SessionState),
    /// A session-level update with nothing Tandem can use (malformed, or
    /// without a field Tandem shows): dropped.
    Dropped,
    /// To the running prompt, as output.
    Prompt,
}

/// A change of the agent's session-level state.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SessionState {
    Commands(Vec<AgentCommand>),
    CurrentMode(AgentModeId),
    /// The agent's title for the session; empty when it cleared it.
    Title(String),
}

impl SessionState {
    /// Takes the change into what the agent has reported so far.
    pub(super) fn apply_to(self, report: &mut AgentReport) {
        match self {
            Self::Commands(commands) => report.commands = Some(commands),
            Self::CurrentMode(mode) => report.current_mode = Some(mode),
            Self::Title(title) => report.title = Some(title),
        }
    }
}

/// Routes the `update` object of a `session/update` notification: the agent's
/// commands, its current mode and its session info are session state; anything
/// else is a prompt's output.
pub(super) fn route(update: &Value) -> Route {
    let dropped = |kind: &str| {
        tracing::debug!(kind, "Dropped a session update Tandem cannot use.");
        Route::Dropped
    };
    match update.get("sessionUpdate").and_then(Value::as_str) {
        Some(kind @ "available_commands_update") => {
            match AvailableCommandsUpdate::deserialize(update) {
                Ok(commands) => Route::Session(SessionState::Commands(
                    commands
                        .available_commands
                        .into_iter()
                        .map(command)
                        .collect(),
                )),
                Err(_) => dropped(kind),
            }
        }
        Some(kind @ "current_mode_update") => {
            match CurrentModeUpdate::deserialize(update)
                .ok()
                .and_then(|mode| AgentModeId::parse(&mode.current_mode_id.to_string()).ok())
            {
                Some(mode) => Route::Session(SessionState::CurrentMode(mode)),
                None => dropped(kind),
            }
        }
        Some(kind @ "session_info_update") => match SessionInfoUpdate::deserialize(update) {
            Ok(info) => match info.title {
                MaybeUndefined::Value(title) => Route::Session(SessionState::Title(title)),
                MaybeUndefined::Null => Route::Session(SessionState::Title(String::new())),
                MaybeUndefined::Undefined => dropped(kind),
            },
            Err(_) => dropped(kind),
        },
        _ => Route::Prompt,
    }
}

/// An offered command as Tandem shows it.
fn command(command: agent_client_protocol::v1::schema::AvailableCommand) -> AgentCommand {
    // The input is an open union; its `hint` is read from its JSON form.
    let input_hint = serde_json::to_value(&command.input)
        .ok()
        .and_then(|input| input.get("hint").and_then(Value::as_str).map(str::to_owned));
    AgentCommand {
        name: command.name,
        description: command.description,
        input_hint,
    }
}

/// The modes an agent offers in its answer to `session/new` or `session/load`
/// (those with an id Tandem cannot take are left out), and the current one.
pub(super) fn modes(state: SessionModeState) -> (Vec<AgentMode>, Option<AgentModeId>) {
    let modes = state
        .available_modes
        .into_iter()
        .filter_map(|mode| {
            Some(AgentMode {
                id: AgentModeId::parse(&mode.id.to_string()).ok()?,
                name: mode.name,
                description: mode.description,
            })
        })
        .collect();
    let current = AgentModeId::parse(&state.current_mode_id.to_string()).ok();
    (modes, current)
}

/// The `update` object of a `session/update` notification as agent output.
/// Unknown or malformed updates are `Other`, with the raw JSON kept.
pub(super) fn output(update: Value) -> AgentUpdate {
    let tag = update.get("sessionUpdate").and_then(Value::as_str);
    let (kind, text) = match tag {
        Some("agent_message_chunk") => chunk(&update, AgentOutputKind::Message),
        Some("agent_thought_chunk") => chunk(&update, AgentOutputKind::Thought),
        Some("tool_call") => checked::<ToolCall>(&update, AgentOutputKind::ToolCall),
        Some("tool_call_update") => {
            checked::<ToolCallUpdate>(&update, AgentOutputKind::ToolCallUpdate)
        }
        Some("plan") => checked::<Plan>(&update, AgentOutputKind::Plan),
        _ => (AgentOutputKind::Other, None),
    };
    AgentUpdate::Output {
        kind,
        text,
        raw: update,
    }
}

/// A message or thought chunk and its text (`None` for a non-text content block).
fn chunk(update: &Value, kind: AgentOutputKind) -> (AgentOutputKind, Option<String>) {
    match ContentChunk::deserialize(update) {
        Ok(chunk) => {
            let text = if let ContentBlock::Text(text) = chunk.content {
                Some(text.text)
            } else {
                None
            };
            (kind, text)
        }
        Err(_) => (AgentOutputKind::Other, None),
    }
}

/// `kind` if the update is a well-formed `T`, otherwise `Other`.
fn checked<T: DeserializeOwned>(
    update: &Value,
    kind: AgentOutputKind,
) -> (AgentOutputKind, Option<String>) {
    if T::deserialize(update).is_ok() {
        (kind, None)
    } else {
        (AgentOutputKind::Other, None)
    }
}

/// The parts of a `session/request_permission` request Tandem needs: the agent's
/// tool call as it sent it, and the options (those of a kind Tandem does not know
/// are left out, since nobody could choose them knowingly).
pub(super) fn permission_request(
    params: &Value,
) -> Result<(Value, Vec<PermissionOption>), serde_json::Error> {
    let request = RequestPermissionRequest::deserialize(params)?;
    let tool_call = params.get("toolCall").cloned().unwrap_or(Value::Null);
    let options = request
        .options
        .into_iter()
        .filter_map(|option| {
            let kind = same_text(&option.kind);
            if kind.is_none() {
                tracing::warn!(
                    option_id = %option.option_id,
                    "Left out a permission option of an unknown kind."
                );
            }
            Some(PermissionOption {
                id: option.option_id.to_string(),
                name: option.name,
                kind: kind?,
            })
        })
        .collect();
    Ok((tool_call, options))
}

/// The answer to a permission request, in ACP's terms.
pub(super) fn permission_outcome(outcome: PermissionOutcome) -> RequestPermissionOutcome {
    match outcome {
        PermissionOutcome::Selected { option_id } => {
            RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(option_id))
        }
        PermissionOutcome::Cancelled => RequestPermissionOutcome::Cancelled,
    }
}

/// Tandem's stop reason for ACP's (both use the same snake-case names).
pub(super) fn stop_reason(reason: AcpStopReason) -> Option<StopReason> {
    same_text(&reason)
}

/// Converts between two enums that serialize to the same strings.
fn same_text<From: serde::Serialize, To: DeserializeOwned>(value: &From) -> Option<To> {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| serde_json::from_value(value).ok())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tandem_domain::PermissionOptionKind;

    use super::*;

    fn parts(update: &AgentUpdate) -> (AgentOutputKind, Option<&str>, &Value) {
        match update {
            AgentUpdate::Output { kind, text, raw } => (*kind, text.as_deref(), raw),
            AgentUpdate::PermissionRequested { .. } => panic!("not output: {update:?}"),
        }
    }

    #[test]
    fn text_chunks_carry_their_text_and_raw_json() {
        let raw = json!({
            "sessionUpdate": "agent_message_chunk",
            "content": { "type": "text", "text": "hi" },
            "futureField": 1
        });
        let update = output(raw.clone());
        assert_eq!(parts(&update), (AgentOutputKind::Message, Some("hi"), &raw));
        let thought = output(json!({
            "sessionUpdate": "agent_thought_chunk",
            "content": { "type": "text", "text": "hmm" }
        }));
        assert_eq!(parts(&thought).0, AgentOutputKind::Thought);
        assert_eq!(parts(&thought).1, Some("hmm"));
    }

    #[test]
    fn non_text_chunks_have_no_text() {
        let update = output(json!({
            "sessionUpdate": "agent_message_chunk",
            "content": { "type": "image", "data": "AAAA", "mimeType": "image/png" }
        }));
        assert_eq!(parts(&update).0, AgentOutputKind::Message);
        assert_eq!(parts(&update).1, None);
    }

    #[test]
    fn tool_calls_and_plans_are_recognised() {
        let call = output(json!({
            "sessionUpdate": "tool_call", "toolCallId": "t1", "title": "Read a file"
        }));
        assert_eq!(parts(&call).0, AgentOutputKind::ToolCall);
        let progress = output(json!({
            "sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "completed"
        }));
        assert_eq!(parts(&progress).0, AgentOutputKind::ToolCallUpdate);
        let plan = output(json!({ "sessionUpdate": "plan", "entries": [] }));
        assert_eq!(parts(&plan).0, AgentOutputKind::Plan);
    }

    #[test]
    fn unknown_and_malformed_updates_are_other_and_kept() {
        for raw in [
            json!({ "sessionUpdate": "hologram", "data": [1, 2, 3] }),
            json!({ "sessionUpdate": "available_commands_update", "availableCommands": [] }),
            json!({ "sessionUpdate": "tool_call" }),
            json!({ "sessionUpdate": "agent_message_chunk", "content": 7 }),
            json!({ "no": "tag" }),
        ] {
            let update = output(raw.clone());
            assert_eq!(parts(&update), (AgentOutputKind::Other, None, &raw));
        }
    }

    #[test]
    fn session_level_updates_are_routed_to_the_session_state() {
        let commands = route(&json!({
            "sessionUpdate": "available_commands_update",
            "availableCommands": [
                { "name": "review", "description": "Review", "input": { "hint": "what" } },
                { "name": "init", "description": "Init" },
                { "broken": true }
            ]
        }));
        assert_eq!(
            commands,
            Route::Session(SessionState::Commands(vec![
                AgentCommand {
                    name: "review".into(),
                    description: "Review".into(),
                    input_hint: Some("what".into()),
                },
                AgentCommand {
                    name: "init".into(),
                    description: "Init".into(),
                    input_hint: None,
                },
            ]))
        );
        assert_eq!(
            route(&json!({ "sessionUpdate": "current_mode_update", "currentModeId": "plan" })),
            Route::Session(SessionState::CurrentMode(
                AgentModeId::parse("plan").unwrap()
            ))
        );
        assert_eq!(
            route(&json!({ "sessionUpdate": "session_info_update", "title": "Fix it" })),
            Route::Session(SessionState::Title("Fix it".into()))
        );
        assert_eq!(
            route(&json!({ "sessionUpdate": "session_info_update", "title": null })),
            Route::Session(SessionState::Title(String::new()))
        );
        assert_eq!(
            route(
                &json!({ "sessionUpdate": "session_info_update", "updatedAt": "2026-01-01T00:00:00Z" })
            ),
            Route::Dropped
        );
        assert_eq!(
            route(&json!({ "sessionUpdate": "current_mode_update" })),
            Route::Dropped
        );
        assert_eq!(
            route(
                &json!({ "sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "x"} })
            ),
            Route::Prompt
        );
        assert_eq!(
            route(&json!({ "sessionUpdate": "usage_update" })),
            Route::Prompt
        );
    }

    #[test]
    fn permission_requests_keep_the_raw_tool_call_and_known_options() {
        let params = json!({
            "sessionId": "s1",
            "toolCall": { "toolCallId": "t1", "title": "rm -rf", "vendorExtra": true },
            "options": [
                { "optionId": "yes", "name": "Yes", "kind": "allow_once" },
                { "optionId": "always", "name": "Always", "kind": "allow_always" },
                { "optionId": "no", "name": "No", "kind": "reject_once" }
            ]
        });
        let (tool_call, options) = permission_request(&params).unwrap();
        assert_eq!(tool_call, params["toolCall"]);
        let kinds: Vec<_> = options.iter().map(|o| (o.id.as_str(), o.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("yes", PermissionOptionKind::AllowOnce),
                ("always", PermissionOptionKind::AllowAlways),
                ("no", PermissionOptionKind::RejectOnce),
            ]
        );
        assert!(permission_request(&json!({ "sessionId": "s1" })).is_err());
    }

    #[test]
    fn outcomes_and_stop_reasons_translate() {
        let selected = permission_outcome(PermissionOutcome::Selected {
            option_id: "yes".to_owned(),
        });
        assert_eq!(
            serde_json::to_value(selected).unwrap(),
            json!({ "outcome": "selected", "optionId": "yes" })
        );
        assert_eq!(
            serde_json::to_value(permission_outcome(PermissionOutcome::Cancelled)).unwrap(),
            json!({ "outcome": "cancelled" })
        );
        assert_eq!(
            stop_reason(AcpStopReason::EndTurn),
            Some(StopReason::EndTurn)
        );
        assert_eq!(
            stop_reason(AcpStopReason::Cancelled),
            Some(StopReason::Cancelled)
        );
        assert_eq!(
            stop_reason(AcpStopReason::MaxTokens),
            Some(StopReason::MaxTokens)
        );
        assert_eq!(
            stop_reason(AcpStopReason::MaxTurnRequests),
            Some(StopReason::MaxTurnRequests)
        );
        assert_eq!(
            stop_reason(AcpStopReason::Refusal),
            Some(StopReason::Refusal)
        );
    }
}
