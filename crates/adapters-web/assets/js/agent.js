// The agent's output of one prompt, as it streams: message text appended to one
// Markdown block, thoughts collapsed, tool calls updated in place by their
// toolCallId (kind, status, locations, content, diffs), the plan as a checklist
// updated in place, and anything else shown generically. `data.raw` is the ACP
// `session/update` the agent sent.

import { h, replace, words } from "./dom.js";
import { diffView } from "./diff.js";
import { link, markdown } from "./markdown.js";

/** A collapsed view of any JSON value, as text. */
export function rawJson(label, value) {
  let text;
  try {
    text = JSON.stringify(value, null, 2);
  } catch {
    text = String(value);
  }
  return h("details", { class: "raw" },
    h("summary", { text: label }),
    h("pre", { tabindex: "0" }, h("code", { text })));
}

/** The text of an ACP content block (text, resource, link, image...). */
function contentBlock(block) {
  if (!block || typeof block !== "object") return h("span", { text: String(block ?? "") });
  switch (block.type) {
    case "text":
      return h("pre", { class: "tool-output", tabindex: "0", text: block.text ?? "" });
    case "resource_link":
      return h("div", {}, link(block.uri, block.name || block.uri));
    case "resource":
      return h("pre", {
        class: "tool-output", tabindex: "0",
        text: block.resource?.text ?? block.resource?.uri ?? "",
      });
    case "image":
    case "audio":
      return h("div", { class: "muted", text: `[${block.type}${block.mimeType ? `: ${block.mimeType}` : ""}]` });
    default:
      return rawJson(`${block.type ?? "content"}`, block);
  }
}

/** One item of a tool call's `content`: a content block, a diff, a terminal. */
function toolContent(item) {
  switch (item?.type) {
    case "content":
      return contentBlock(item.content);
    case "diff":
      return diffView(item.path, item.oldText, item.newText);
    case "terminal":
      return h("div", { class: "muted", text: `Terminal ${item.terminalId ?? ""}` });
    default:
      return rawJson(item?.type ?? "content", item);
  }
}

const STATUS_WORDS = {
  pending: "pending", in_progress: "running", completed: "done", failed: "failed",
};

/** Renders a tool call's merged state into its element. */
function renderTool(element, tool) {
  const status = tool.status ?? "pending";
  const locations = Array.isArray(tool.locations) ? tool.locations : [];
  const content = Array.isArray(tool.content) ? tool.content : [];
  element.className = `tool status-${status}`;
  replace(element,
    h("div", { class: "tool-head" },
      h("span", { class: "badge tool-kind", text: words(tool.kind ?? "tool") }),
      h("span", { class: "tool-title", text: tool.title ?? tool.toolCallId ?? "Tool call" }),
      h("span", { class: `badge status status-${status}`, text: STATUS_WORDS[status] ?? words(status) })),
    locations.length
      ? h("ul", { class: "locations" }, locations.map((location) =>
        h("li", {}, h("code", {
          text: `${location.path ?? ""}${location.line ? `:${location.line}` : ""}`,
        }))))
      : null,
    content.map(toolContent),
    tool.rawInput !== undefined ? rawJson("Input", tool.rawInput) : null,
    tool.rawOutput !== undefined ? rawJson("Output", tool.rawOutput) : null);
}

/** Renders a plan as a checklist. */
function renderPlan(element, entries) {
  replace(element,
    h("div", { class: "block-label", text: "Plan" }),
    h("ul", { class: "plan-entries" }, (Array.isArray(entries) ? entries : []).map((entry) =>
      h("li", { class: `plan-entry status-${entry.status ?? "pending"}` },
        h("input", {
          type: "checkbox", disabled: true, checked: entry.status === "completed",
          "aria-label": words(entry.status ?? "pending"),
        }),
        h("span", { class: "plan-text", text: entry.content ?? "" }),
        entry.status === "in_progress" ? h("span", { class: "badge", text: "in progress" }) : null,
        entry.priority === "high" ? h("span", { class: "badge priority", text: "high" }) : null))));
}

/**
 * The output area of one prompt. `add(data)` takes the `data` of an
 * `agent.output` event; `tool(id)` finds a tool call's element (permission
 * requests show theirs).
 */
export class AgentOutput {
  constructor(container) {
    this.container = container;
    this.last = null; // the open text block: { kind, element, body, text }
    this.tools = new Map();
    this.plan = null;
  }

  /** Adds one `agent.output` event's data; returns the text it added, if any. */
  add(data) {
    const raw = data.raw && typeof data.raw === "object" ? data.raw : {};
    switch (data.kind) {
      case "message":
        return this.text("message", data.text ?? "");
      case "thought":
        return this.text("thought", data.text ?? "") && "";
      case "tool_call":
      case "tool_call_update":
        this.toolCall(raw, data.kind === "tool_call");
        return "";
      case "plan":
        this.showPlan(raw.entries);
        return "";
      default:
        this.other(data, raw);
        return "";
    }
  }

  text(kind, text) {
    if (this.last?.kind !== kind) {
      const body = h("div", { class: "markdown" });
      const element = kind === "thought"
        ? h("details", { class: "thought" }, h("summary", { text: "Thinking" }), body)
        : h("div", { class: "message" }, body);
      this.container.append(element);
      this.last = { kind, element, body, text: "" };
    }
    this.last.text += text;
    replace(this.last.body, markdown(this.last.text));
    return text;
  }

  toolCall(raw, started) {
    const id = raw.toolCallId ?? `tool-${this.tools.size}`;
    let tool = this.tools.get(id);
    if (!tool) {
      tool = { element: h("div", { class: "tool", dataset: { toolCallId: id } }), state: {} };
      this.tools.set(id, tool);
      this.container.append(tool.element);
      this.last = null;
    }
    const { sessionUpdate, ...fields } = raw;
    for (const [key, value] of Object.entries(fields)) {
      if (value !== null && value !== undefined) tool.state[key] = value;
    }
    if (started && !tool.state.status) tool.state.status = "pending";
    renderTool(tool.element, tool.state);
  }

  showPlan(entries) {
    if (!this.plan) {
      this.plan = h("div", { class: "plan" });
      this.container.append(this.plan);
      this.last = null;
    }
    renderPlan(this.plan, entries);
  }

  other(data, raw) {
    const label = raw.sessionUpdate ? words(raw.sessionUpdate) : `agent output (${data.kind})`;
    this.container.append(h("div", { class: "agent-other" }, rawJson(`Agent update: ${label}`, raw)));
    this.last = null;
  }
}

/** Renders the tool call a permission request is about. */
export function toolSummary(toolCall) {
  const element = h("div", { class: "tool" });
  renderTool(element, toolCall && typeof toolCall === "object" ? toolCall : {});
  return element;
}
