// The timeline: one entry per thing that happened, built from the session's
// events in seq order. Prompts are cards that carry their status, their
// actions and the agent's output; comments are cards; everything else is a
// short line. Events of types this page does not know are shown generically.

import { h, replace, time, words } from "./dom.js";
import { AgentOutput, rawJson, toolSummary } from "./agent.js";
import { markdown } from "./markdown.js";

const PROMPT_STATUS = {
  pending_approval: "waiting for approval",
  queued: "queued",
  running: "running",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled",
  rejected: "rejected",
  withdrawn: "withdrawn",
};

const RESUMPTION = {
  new: "The agent started",
  loaded: "The agent started again and resumed its conversation",
  fresh: "The agent started again with a new conversation",
};

/** "2 secrets redacted (aws-access-token, github-pat)", or null for none. */
export function redactedNote(redactions) {
  if (!redactions || typeof redactions !== "object") return null;
  const kinds = Object.entries(redactions).filter(([, count]) => Number(count) > 0);
  const total = kinds.reduce((sum, [, count]) => sum + Number(count), 0);
  if (!total) return null;
  const names = kinds.map(([kind, count]) => (count > 1 ? `${kind} ×${count}` : kind)).join(", ");
  return h("div", {
    class: "muted redacted",
    text: `${total} secret${total === 1 ? "" : "s"} redacted (${names})`,
  });
}

const CLOSE_REASON = {
  closed_by_host: "closed by the host",
  expired: "expired",
  idle_timeout: "ended after a period without activity",
  terminated: "ended by an administrator",
};

export class Timeline {
  /**
   * `ctx` is the session page: `name(id)`, `me`, `role`, `active`, `act(label,
   * fn)` (runs an API call, reporting failures), `api` (the actions), and
   * `announce(text)`.
   */
  constructor(list, ctx) {
    this.list = list;
    this.ctx = ctx;
    this.prompts = new Map();
    this.permissions = new Map();
  }

  /** Shows one event; `live` is false while the log is replayed on load. */
  add(event, live) {
    const data = event.data ?? {};
    const ctx = this.ctx;
    const by = event.actor?.kind === "participant" ? ctx.name(event.actor.id)
      : event.actor?.kind === "agent" ? "The agent" : event.actor?.kind === "api_key" ? "An API key"
        : "Tandem";
    switch (event.type) {
      case "session.created":
        return this.note(event, `${ctx.name(data.hostParticipantId)} started the session “${data.title}” (${words(data.mode)}, agent ${data.agentProfile}).`);
      case "session.updated":
        return this.note(event, `${by} ${ctx.describeUpdate(data)}.`);
      case "session.closed":
        return this.closed(event, data);
      case "participant.joined":
        return this.note(event, `${data.displayName} joined as ${words(data.role)}.`, "people");
      case "participant.left":
        return this.note(event, `${ctx.name(data.participantId)} left.`, "people");
      case "participant.updated":
        return this.note(event, `${by} made ${ctx.name(data.participantId)} a ${words(data.role)}.`, "people");
      case "participant.removed":
        return this.note(event, `${ctx.name(data.removedBy)} removed ${ctx.name(data.participantId)}.`, "people");
      case "comment.posted":
        return this.comment(event, data);
      case "prompt.submitted":
        return this.prompt(event, data);
      case "prompt.edited":
        return this.promptUpdate(data.promptId, (p) => { p.text = data.text; p.edited = true; });
      case "prompt.approved":
        return this.promptUpdate(data.promptId, (p) => {
          p.status = "queued";
          p.notes.push(`Approved by ${ctx.name(data.approvedBy)}`);
        });
      case "prompt.rejected":
        return this.promptUpdate(data.promptId, (p) => {
          p.status = "rejected";
          p.notes.push(`Rejected by ${ctx.name(data.rejectedBy)}`);
        });
      case "prompt.withdrawn":
        return this.promptUpdate(data.promptId, (p) => { p.status = "withdrawn"; });
      case "prompt.started":
        return this.promptUpdate(data.promptId, (p) => { p.status = "running"; });
      case "prompt.cancel_requested":
        return this.promptUpdate(data.promptId, (p) => {
          p.cancelRequested = true;
          p.notes.push(`${ctx.name(data.requestedBy)} asked to cancel`);
        });
      case "prompt.completed":
        return this.promptUpdate(data.promptId, (p) => {
          p.status = "completed";
          if (data.stopReason && data.stopReason !== "end_turn") {
            p.notes.push(`Stopped: ${words(data.stopReason)}`);
          }
          if (live && p.unannounced) ctx.announce(`The agent answered: ${p.unannounced}`);
          p.unannounced = "";
        });
      case "prompt.failed":
        return this.promptUpdate(data.promptId, (p) => {
          p.status = "failed";
          p.error = data.error;
          p.errorRedactions = data.redactions;
        });
      case "prompt.cancelled":
        return this.promptUpdate(data.promptId, (p) => {
          p.status = "cancelled";
          if (data.cancelledBy) p.notes.push(`Cancelled by ${ctx.name(data.cancelledBy)}`);
        });
      case "agent.output":
        return this.output(event, data, live);
      case "agent.permission_requested":
        return this.permissionRequested(event, data, live);
      case "agent.permission_resolved":
        return this.permissionResolved(data);
      case "agent.started":
        return this.agentStarted(event, data);
      case "agent.commands_updated":
        return this.note(event, `The agent offers ${data.commands?.length ?? 0} command${data.commands?.length === 1 ? "" : "s"}.`, "agent");
      case "agent.mode_requested":
        return this.note(event, `${ctx.name(data.requestedBy)} asked the agent to switch to the mode ${ctx.agent.modeName(data.modeId)}.`, "agent");
      case "agent.mode_changed":
        return this.note(event, data.changedBy
          ? `The agent switched to the mode ${ctx.agent.modeName(data.currentModeId)} for ${ctx.name(data.changedBy)}.`
          : `The agent's mode is now ${ctx.agent.modeName(data.currentModeId) ?? "none"}.`, "agent");
      case "agent.mode_change_failed":
        return this.note(event, `The agent did not switch to the mode ${ctx.agent.modeName(data.modeId)}: ${data.error}`, "agent");
      case "agent.title_changed":
        return this.note(event, data.title ? `The agent titled the session “${data.title}”.`
          : "The agent cleared its title for the session.", "agent");
      default:
        return this.unknown(event);
    }
  }

  /** Redraws what depends on the reader's role or the session's state. */
  refresh() {
    for (const prompt of this.prompts.values()) this.renderPrompt(prompt);
    for (const request of this.permissions.values()) this.renderPermission(request);
  }

  entry(event, className, ...children) {
    const item = h("li", { class: `entry ${className}`, dataset: { seq: event.seq } }, ...children);
    this.list.append(item);
    return item;
  }

  note(event, text, kind = "") {
    return this.entry(event, `note ${kind}`, h("span", { class: "note-text", text }), " ",
      time(event.createdAt));
  }

  closed(event, data) {
    const reason = CLOSE_REASON[data.reason] ?? words(data.reason);
    return this.entry(event, "closed",
      h("div", { class: "entry-head" },
        h("strong", { text: `Session ${words(data.status)}` }), ` — ${reason} `, time(event.createdAt)),
      data.summary ? h("div", { class: "summary" },
        h("div", { class: "block-label", text: "Summary" }),
        h("div", { class: "markdown" }, markdown(data.summary))) : null);
  }

  comment(event, data) {
    const mine = data.authorParticipantId === this.ctx.me;
    return this.entry(event, `comment${mine ? " mine" : ""}`,
      h("div", { class: "entry-head" },
        h("span", { class: "author", text: this.ctx.name(data.authorParticipantId) }),
        h("span", { class: "kind", text: "commented" }), time(event.createdAt)),
      h("div", { class: "comment-text", text: data.text }));
  }

  prompt(event, data) {
    const prompt = {
      id: data.id,
      author: data.authorParticipantId,
      text: data.text,
      status: data.status,
      notes: data.retryOf ? ["Retry of an earlier prompt"] : [],
      error: null,
      edited: false,
      editing: false,
      cancelRequested: false,
      unannounced: "",
      head: h("div", { class: "entry-head" }),
      body: h("div", { class: "prompt-text" }),
      status_: h("div", { class: "prompt-status" }),
      actions: h("div", { class: "actions" }),
      output: h("div", { class: "agent-output", "aria-label": "The agent's answer" }),
    };
    prompt.agent = new AgentOutput(prompt.output);
    prompt.head.append(
      h("span", { class: "author", text: this.ctx.name(prompt.author) }),
      h("span", { class: "kind", text: "prompted the agent" }), time(event.createdAt));
    prompt.element = this.entry(event, "prompt", prompt.head, prompt.body, prompt.status_,
      prompt.actions, prompt.output);
    prompt.element.dataset.promptId = prompt.id;
    prompt.element.id = `prompt-${prompt.id}`;
    this.prompts.set(prompt.id, prompt);
    this.renderPrompt(prompt);
    return prompt.element;
  }

  promptUpdate(id, change) {
    const prompt = this.prompts.get(id);
    if (!prompt) return null;
    change(prompt);
    this.renderPrompt(prompt);
    return prompt.element;
  }

  renderPrompt(prompt) {
    const ctx = this.ctx;
    prompt.element.dataset.status = prompt.status;
    if (prompt.editing && prompt.body.querySelector("textarea")) {
      // Being edited: keep what the author is typing.
    } else if (prompt.editing) {
      const area = h("textarea", { "aria-label": "Edit the prompt", rows: 3 });
      area.value = prompt.text;
      replace(prompt.body, area, h("div", { class: "actions" },
        h("button", {
          type: "button", text: "Save",
          onclick: () => ctx.act("Editing the prompt", async () => {
            await ctx.api.editPrompt(prompt.id, area.value);
            prompt.editing = false;
            this.renderPrompt(prompt);
          }),
        }),
        h("button", {
          type: "button", class: "secondary", text: "Cancel",
          onclick: () => { prompt.editing = false; this.renderPrompt(prompt); },
        })));
    } else {
      replace(prompt.body, h("div", { class: "text", text: prompt.text }),
        prompt.edited ? h("span", { class: "muted", text: " (edited)" }) : null);
    }
    replace(prompt.status_,
      h("span", {
        class: `badge status status-${prompt.status}`,
        text: PROMPT_STATUS[prompt.status] ?? words(prompt.status),
      }),
      prompt.cancelRequested && !["cancelled", "completed", "failed"].includes(prompt.status)
        ? h("span", { class: "muted", text: " cancelling…" }) : null,
      prompt.notes.map((note) => h("span", { class: "muted", text: ` · ${note}` })),
      prompt.error ? h("div", { class: "error-text", text: prompt.error }) : null,
      prompt.error ? redactedNote(prompt.errorRedactions) : null);
    replace(prompt.actions, this.promptActions(prompt));
  }

  promptActions(prompt) {
    const ctx = this.ctx;
    if (!ctx.active() || !ctx.me || prompt.editing) return [];
    const host = ctx.role() === "host";
    const author = prompt.author === ctx.me && ctx.role() !== "viewer";
    const button = (text, label, action, style = "") => h("button", {
      type: "button", class: style, text,
      "aria-label": `${text} the prompt “${prompt.text.slice(0, 40)}”`,
      onclick: () => ctx.act(label, action),
    });
    const actions = [];
    switch (prompt.status) {
      case "pending_approval":
        if (host) {
          actions.push(button("Approve", "Approving", () => ctx.api.approve(prompt.id)));
          actions.push(button("Reject", "Rejecting", () => ctx.api.reject(prompt.id), "danger"));
        }
        if (author) {
          actions.push(h("button", {
            type: "button", class: "secondary", text: "Edit",
            onclick: () => {
              prompt.editing = true;
              this.renderPrompt(prompt);
              prompt.body.querySelector("textarea")?.focus();
            },
          }));
          actions.push(button("Withdraw", "Withdrawing", () => ctx.api.withdraw(prompt.id), "secondary"));
        }
        break;
      case "queued":
      case "running":
        if ((host || author) && !prompt.cancelRequested) {
          actions.push(button("Cancel", "Cancelling", () => ctx.api.cancel(prompt.id), "danger"));
        }
        break;
      case "completed":
      case "failed":
      case "cancelled":
        if (host) actions.push(button("Retry", "Retrying", () => ctx.api.retry(prompt.id), "secondary"));
        break;
      default:
        break;
    }
    return actions;
  }

  output(event, data, live) {
    const prompt = this.prompts.get(data.promptId);
    if (!prompt) return this.unknown(event);
    const added = prompt.agent.add(data);
    if (added && live) prompt.unannounced += added;
    const note = redactedNote(data.redactions);
    if (note) prompt.output.append(note);
    return prompt.element;
  }

  permissionRequested(event, data, live) {
    const prompt = this.prompts.get(data.promptId);
    const request = {
      id: data.requestId,
      options: Array.isArray(data.options) ? data.options : [],
      toolCall: data.toolCall,
      redactions: data.redactions,
      deadline: data.deadline,
      resolved: null,
      element: h("div", {
        class: "permission", role: "group", "aria-label": "Permission request", id: `permission-${data.requestId}`,
      }),
    };
    this.permissions.set(request.id, request);
    if (prompt) {
      prompt.output.append(request.element);
      prompt.agent.last = null;
    } else {
      this.entry(event, "note", request.element);
    }
    this.renderPermission(request);
    if (live && !this.ctx.replaying) {
      this.ctx.announce(this.ctx.role() === "host"
        ? "The agent asks for permission to run a tool. Answer it in the timeline."
        : "The agent asks the host for permission to run a tool.");
    }
    return request.element;
  }

  permissionResolved(data) {
    const request = this.permissions.get(data.requestId);
    if (!request) return null;
    request.resolved = data;
    this.renderPermission(request);
    return request.element;
  }

  renderPermission(request) {
    const ctx = this.ctx;
    const title = request.toolCall?.title ?? "a tool";
    let footer;
    if (request.resolved) {
      const { outcome, cause, resolvedBy } = request.resolved;
      const option = request.options.find((o) => o.id === outcome?.optionId);
      const answer = outcome?.outcome === "selected" ? (option?.name ?? outcome.optionId) : "Cancelled";
      const who = cause === "host" ? `by ${ctx.name(resolvedBy)}`
        : cause === "policy" ? "by the session's policy"
          : cause === "timeout" ? "(nobody answered in time)" : "(the prompt ended first)";
      footer = h("div", { class: "permission-answer" },
        h("strong", { text: `Answer: ${answer}` }), ` ${who}`);
    } else if (ctx.role() === "host" && ctx.active()) {
      footer = h("div", { class: "actions" }, request.options.map((option) => h("button", {
        type: "button",
        class: option.kind?.startsWith("reject") ? "danger" : "",
        text: option.name,
        onclick: () => ctx.act("Answering the agent", () => ctx.api.answer(request.id, option.id)),
      })));
    } else {
      footer = h("div", { class: "muted", text: "Waiting for the host to answer…" });
    }
    replace(request.element,
      h("div", { class: "block-label", text: `The agent asks to run ${title}` }),
      toolSummary(request.toolCall),
      redactedNote(request.redactions),
      footer);
    request.element.dataset.state = request.resolved ? "resolved" : "open";
  }

  agentStarted(event, data) {
    const where = data.workspace
      ? ` in ${data.workspace.kind === "worktree" ? `the worktree ${data.workspace.path}${data.workspace.branch ? ` (branch ${data.workspace.branch})` : ""}`
        : data.workspace.path}` : "";
    const entry = this.note(event, `${RESUMPTION[data.resumption] ?? "The agent started"}${where}.`, "agent");
    if (data.resumeError) {
      entry.append(h("div", { class: "error-text", text: `It could not resume: ${data.resumeError}` }));
    }
    return entry;
  }

  unknown(event) {
    return this.entry(event, "note unknown",
      h("span", { class: "note-text", text: `${words(event.type)} ` }), time(event.createdAt),
      rawJson("Details", event.data));
  }
}
