// The session's agent, beside the timeline: where it works, its own title for
// the session, its mode (the host switches it here) and the commands it offers
// (a click puts `/name ` in the composer). It starts from the session's `agent`
// and follows the agent.* events.

import { byId, h, replace, words } from "./dom.js";

const WORKSPACE = {
  shared: "the profile's shared directory",
  directory: "a directory of its own",
  worktree: "a git worktree of its own",
};

export class AgentPanel {
  constructor(page) {
    this.page = page;
    this.panel = byId("agent-panel");
    this.body = byId("agent-body");
    this.state = {
      workspace: null, cleanup: null, commands: [], modes: [], currentModeId: null,
      requestedModeId: null, title: null,
    };
  }

  /** Takes the session's `agent` (null before its agent first started). */
  load(agent) {
    if (!agent) return;
    Object.assign(this.state, {
      workspace: agent.workspace,
      cleanup: agent.workspace?.cleanup ?? null,
      commands: agent.commands ?? [],
      modes: agent.modes ?? [],
      currentModeId: agent.currentModeId,
      requestedModeId: agent.requestedMode?.modeId ?? null,
      title: agent.title,
    });
  }

  /** Follows one event; true when it changed what the panel shows. */
  apply(event) {
    const data = event.data ?? {};
    const state = this.state;
    switch (event.type) {
      case "agent.started":
        state.workspace = data.workspace ?? null;
        return true;
      case "agent.commands_updated":
        state.commands = Array.isArray(data.commands) ? data.commands : [];
        return true;
      case "agent.mode_requested":
        state.requestedModeId = data.modeId;
        return true;
      case "agent.mode_changed":
        state.currentModeId = data.currentModeId;
        state.modes = Array.isArray(data.availableModes) ? data.availableModes : [];
        state.requestedModeId = null;
        return true;
      case "agent.mode_change_failed":
        state.requestedModeId = null;
        return true;
      case "agent.title_changed":
        state.title = data.title;
        return true;
      default:
        return false;
    }
  }

  render() {
    const { state, page } = this;
    const known = state.workspace || state.commands.length || state.modes.length || state.title;
    this.panel.hidden = !known;
    if (!known) return;
    const host = page.role() === "host" && page.active();
    const mode = state.modes.find((m) => m.id === state.currentModeId);
    replace(this.body,
      state.title ? h("p", { class: "agent-title" },
        h("span", { class: "muted", text: "Its title: " }), h("strong", { text: state.title })) : null,
      state.workspace ? h("p", { class: "agent-workspace" },
        h("span", { class: "muted", text: `Works in ${WORKSPACE[state.workspace.kind] ?? words(state.workspace.kind)}: ` }),
        h("code", { text: state.workspace.path }),
        state.workspace.branch ? [" on ", h("code", { text: state.workspace.branch })] : null,
        state.cleanup ? h("span", { class: "muted", text: ` (${words(state.cleanup)} when the session ended)` }) : null)
        : null,
      state.modes.length ? this.modes(host, mode) : null,
      state.commands.length ? this.commands(page) : null);
  }

  modes(host, current) {
    const { state, page } = this;
    const pending = state.requestedModeId
      ? h("span", { class: "muted", text: ` (switching to ${this.modeName(state.requestedModeId)}…)` }) : null;
    if (!host) {
      return h("p", { class: "agent-mode" }, h("span", { class: "muted", text: "Mode: " }),
        h("strong", { text: current?.name ?? state.currentModeId ?? "—" }), pending);
    }
    const select = h("select", { id: "agent-mode", "aria-label": "The agent's mode" },
      state.modes.map((m) => h("option", {
        value: m.id, text: m.name, title: m.description ?? "", selected: m.id === state.currentModeId,
      })));
    select.addEventListener("change", () => page.act("Switching the agent's mode",
      () => page.api.setAgentMode(select.value)));
    return h("p", { class: "agent-mode" }, h("label", { for: "agent-mode", class: "muted", text: "Mode " }),
      select, pending);
  }

  modeName(id) {
    return this.state.modes.find((m) => m.id === id)?.name ?? id;
  }

  commands(page) {
    const canPrompt = page.active() && page.role() !== "viewer";
    return h("div", { class: "agent-commands" },
      h("div", { class: "block-label", text: "Commands (type /name at the start of a prompt)" }),
      h("ul", { class: "commands" }, this.state.commands.map((command) => h("li", { class: "command" },
        canPrompt
          ? h("button", {
            type: "button", class: "secondary small", text: `/${command.name}`,
            "aria-label": `Start a prompt with /${command.name}`,
            onclick: () => page.composer.insert(`/${command.name} `),
          })
          : h("code", { text: `/${command.name}` }),
        " ",
        h("span", { class: "muted", text: command.description }),
        command.inputHint ? h("span", { class: "muted", text: ` (${command.inputHint})` }) : null))));
  }
}
